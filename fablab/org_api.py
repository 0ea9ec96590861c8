"""The partner's own organization: its profile, members and API keys."""

from django.http import HttpRequest
from ninja import Router
from ninja.pagination import paginate

from fablab import selectors, services
from fablab.api_auth import tenant, write_key
from fablab.api_pagination import Pagination
from fablab.schemas import ApiKeyOut, MemberOut, OrganizationOut

router = Router(tags=["organization"])


@router.get("/organization", response=OrganizationOut, summary="The organization of this API key")
def organization_detail(request: HttpRequest):
    return tenant(request)


@router.get("/organization/members", response=list[MemberOut], summary="Members of the organization")
@paginate(Pagination)
def member_list(request: HttpRequest):
    return selectors.membership_list(organization=tenant(request))


@router.get("/api-keys", response=list[ApiKeyOut], summary="API keys of the organization (never their secrets)")
@paginate(Pagination)
def api_key_list(request: HttpRequest):
    return selectors.api_key_list(organization=tenant(request))


@router.get("/api-keys/{key_id}", response=ApiKeyOut, summary="One API key")
def api_key_detail(request: HttpRequest, key_id: int):
    return selectors.api_key_get_for_organization(organization=tenant(request), key_id=key_id)


@router.post("/api-keys/{key_id}/revoke", response=ApiKeyOut, auth=write_key, summary="Revoke an API key")
def api_key_revoke(request: HttpRequest, key_id: int):
    api_key = selectors.api_key_get_for_organization(organization=tenant(request), key_id=key_id)
    return services.api_key_revoke(api_key=api_key)
