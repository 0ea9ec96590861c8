"""API-key authentication and the one place where a request gets its organization."""

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja.security import APIKeyHeader

from fablab.api_throttling import count_failure, refuse_if_too_many_failures
from fablab.choices import ApiKeyScope, OrganizationKind
from fablab.exceptions import InvalidInput, PermissionDenied
from fablab.models import ApiKey, Organization
from fablab.services import AuthenticationFailed, api_key_authenticate


class ApiKeyAuth(APIKeyHeader):
    """`X-API-Key: fl_...`; `scope="write"` refuses read-only keys with 403."""

    param_name = settings.API_KEY_HEADER

    def __init__(self, scope: str = ApiKeyScope.READ):
        self.scope = scope
        super().__init__()

    def authenticate(self, request: HttpRequest, key: str | None) -> ApiKey | None:
        if not key:
            return None
        refuse_if_too_many_failures(request)  # 429, before the key is looked at
        try:
            api_key = api_key_authenticate(raw_key=key)
        except AuthenticationFailed:
            count_failure(request)
            raise
        if not api_key.allows(self.scope):
            raise PermissionDenied(
                "This API key may only read. Create a key with the write scope for this operation."
            )
        return api_key


read_key = ApiKeyAuth(ApiKeyScope.READ)
write_key = ApiKeyAuth(ApiKeyScope.WRITE)


def tenant(request: HttpRequest) -> Organization:
    """The organization whose data this request may see: always the API key's own.

    Every endpoint filters through `Model.objects.for_organization(tenant(request))`,
    so a row of another organization is simply not found (404).
    """
    return request.auth.organization


def require_lab_key(api_key: ApiKey) -> ApiKey:
    """Refuse (PermissionDenied) a key that is not one of the lab's own systems (organization kind 'lab').

    The one lab-only rule for every door that takes API keys: the lab's REST endpoints (stock changes,
    files on printers), the Spoolman-compatible API and its WebSocket.
    """
    if api_key.organization.kind != OrganizationKind.LAB:
        raise PermissionDenied(_("Only the lab's own API keys (an organization of kind 'lab') may do this."))
    return api_key


class LabKeyAuth(ApiKeyAuth):
    """A key of the lab's own organization (kind 'lab'); `scope` as for every key."""

    def authenticate(self, request: HttpRequest, key: str | None) -> ApiKey | None:
        api_key = super().authenticate(request, key)
        return None if api_key is None else require_lab_key(api_key)


lab_read_key = LabKeyAuth(ApiKeyScope.READ)
lab_write_key = LabKeyAuth(ApiKeyScope.WRITE)


def idempotency_key(request: HttpRequest) -> str:
    """The Idempotency-Key header of a stock-changing request (required)."""
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        raise InvalidInput("Send an Idempotency-Key header: a unique string per real-world event "
                           "(the same key sent again changes nothing).")
    return key
