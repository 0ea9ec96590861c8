"""API-key authentication and the one place where a request gets its organization."""

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja.security import APIKeyHeader

from fablab.api_throttling import count_failure, refuse_if_too_many_failures
from fablab.choices import ApiKeyScope, OrganizationKind
from fablab.exceptions import InvalidInput, PermissionDenied
from fablab.models import ApiKey, Organization
from fablab.security import client_ip
from fablab.services import AuthenticationFailed, api_key_authenticate

# The organization kinds that may use the partners' doors of the API (catalog, stock, printers, print queue).
PARTNER_OR_LAB = frozenset({OrganizationKind.PARTNER, OrganizationKind.LAB})


def require_partner_or_lab(api_key: ApiKey) -> ApiKey:
    """Refuse (PermissionDenied) a customer's key: the catalog, the stock, the printers and the print queue are
    open to partners (organization kind 'partner') and the lab's own systems (kind 'lab') only.

    A customer's key (made in the portal) reaches its own organization, its scans and its billing.
    """
    if api_key.organization.kind not in PARTNER_OR_LAB:
        raise PermissionDenied(_(
            "This part of the API is open to partners and the lab's own systems, not to customers' keys. "
            "A customer's key may use the organization, scans and billing endpoints."
        ))
    return api_key


def require_partner(api_key: ApiKey) -> ApiKey:
    """Refuse (PermissionDenied) a key that is not a partner's: changing a design's versions through the API is
    for its designer, always a partner (the lab's own designs are changed in the admin)."""
    if api_key.organization.kind != OrganizationKind.PARTNER:
        raise PermissionDenied(_("Only partners' API keys (an organization of kind 'partner') may do this: "
                                 "a design's versions are changed by its designer."))
    return api_key


def require_lab_key(api_key: ApiKey) -> ApiKey:
    """Refuse (PermissionDenied) a key that is not one of the lab's own systems (organization kind 'lab').

    The one lab-only rule for every door that takes API keys: the lab's REST endpoints (stock changes,
    files on printers), the Spoolman-compatible API and its WebSocket.
    """
    if api_key.organization.kind != OrganizationKind.LAB:
        raise PermissionDenied(_("Only the lab's own API keys (an organization of kind 'lab') may do this."))
    return api_key


def refuse_printer_host(api_key: ApiKey) -> None:
    """Refuse (PermissionDenied) a printer host's key: it reads spools and reports their use through the
    Spoolman API (inventory/spoolman.py) and may do nothing else, anywhere."""
    if api_key.scope == ApiKeyScope.PRINTER_HOST:
        raise PermissionDenied(_(
            "A printer host's key may only read spools, filaments, vendors and settings and report filament "
            "use through the Spoolman API (/spoolman/). Use a key with the read or write scope here."
        ))


@dataclass(frozen=True)
class AllowedHost:
    """A caller let into the Spoolman API without a key because its address is in SPOOLMAN_ALLOW_HOSTS.

    It may do what a printer host's key may (read, report use). `prefix` names it where a key's prefix would.
    """

    address: str
    scope: str = ApiKeyScope.PRINTER_HOST

    @property
    def prefix(self) -> str:
        return f"host {self.address}"


def allowed_host(address: str) -> AllowedHost | None:
    """The caller at `address` as an AllowedHost when SPOOLMAN_ALLOW_HOSTS lists it (empty, the default: none)."""
    if not settings.SPOOLMAN_ALLOW_HOSTS or not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if any(ip in network for network in settings.SPOOLMAN_ALLOW_HOSTS):
        return AllowedHost(address=str(ip))
    return None


class ApiKeyAuth(APIKeyHeader):
    """`X-API-Key: fl_...` of any organization; `scope="write"` refuses read-only keys with 403.

    Subclasses name the organization kinds an operation is open to through `guard` (a function that takes the
    authenticated key and raises PermissionDenied, e.g. `require_lab_key`); the kind is checked before the
    scope, so a customer's write key on a partner's operation hears why, not that its scope is too small.
    Both run before ninja reads the parameters: a refused key gets 403, never 422 for its body.
    """

    param_name = settings.API_KEY_HEADER
    guard: Callable[[ApiKey], ApiKey] | None = None
    # Whether a printer host's key is accepted: only on the Spoolman API's reads and its use report.
    printer_hosts = False

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
        if self.guard is not None:
            self.guard(api_key)
        if api_key.scope == ApiKeyScope.PRINTER_HOST:
            if not self.printer_hosts:
                refuse_printer_host(api_key)
        elif not api_key.allows(self.scope):
            raise PermissionDenied(
                "This API key may only read. Create a key with the write scope for this operation."
            )
        return api_key


class PartnerOrLabKeyAuth(ApiKeyAuth):
    """A key of a partner or of the lab (never a customer's); `scope` as for every key."""

    guard = staticmethod(require_partner_or_lab)


class PartnerKeyAuth(ApiKeyAuth):
    """A key of a partner (neither a customer's nor the lab's); `scope` as for every key."""

    guard = staticmethod(require_partner)


class LabKeyAuth(ApiKeyAuth):
    """A key of the lab's own organization (kind 'lab'); `scope` as for every key."""

    guard = staticmethod(require_lab_key)


class SpoolmanKeyAuth(LabKeyAuth):
    """The Spoolman API's reads and its use report: a key of the lab (a printer host's included) or, without a
    key, a caller whose address SPOOLMAN_ALLOW_HOSTS lists (as a printer host). Nothing else takes either."""

    printer_hosts = True

    def authenticate(self, request: HttpRequest, key: str | None) -> ApiKey | AllowedHost | None:
        if not key:
            return allowed_host(client_ip(request))
        return super().authenticate(request, key)


# The auth of every API operation is one of these seven (the README's authorisation table, walked by
# tests/test_authorization_table.py): who may call it follows the key's organization kind, then its scope.
read_key = ApiKeyAuth(ApiKeyScope.READ)  # any organization: its own rows
write_key = ApiKeyAuth(ApiKeyScope.WRITE)
partner_or_lab_read_key = PartnerOrLabKeyAuth(ApiKeyScope.READ)  # partners and the lab
partner_or_lab_write_key = PartnerOrLabKeyAuth(ApiKeyScope.WRITE)
partner_write_key = PartnerKeyAuth(ApiKeyScope.WRITE)  # partners only
lab_read_key = LabKeyAuth(ApiKeyScope.READ)  # the lab's own systems only
lab_write_key = LabKeyAuth(ApiKeyScope.WRITE)
# Only under /spoolman/ (inventory/spoolman.py), never on /api/v1/: where printer hosts read and report use.
spoolman_read_key = SpoolmanKeyAuth(ApiKeyScope.READ)
spoolman_use_key = SpoolmanKeyAuth(ApiKeyScope.WRITE)


def tenant(request: HttpRequest) -> Organization:
    """The organization whose data this request may see: always the API key's own.

    Every endpoint filters through `Model.objects.for_organization(tenant(request))`,
    so a row of another organization is simply not found (404).
    """
    return request.auth.organization


def idempotency_key(request: HttpRequest) -> str:
    """The Idempotency-Key header of a stock-changing request (required)."""
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        raise InvalidInput("Send an Idempotency-Key header: a unique string per real-world event "
                           "(the same key sent again changes nothing).")
    return key
