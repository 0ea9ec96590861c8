"""The one NinjaAPI of fablab, mounted at /api/v1/.

Each domain app contributes a `Router` in its `api.py`; they are mounted here.
Every endpoint needs an API key (`X-API-Key`) unless it says otherwise, every
error is an RFC 7807 problem document, and lists are paginated with a maximum.
"""

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from ninja import NinjaAPI, Status

from billing.api import router as billing_router
from catalog.api import router as catalog_router
from fablab.api_auth import read_key
from fablab.api_openapi import document_errors
from fablab.api_throttling import OrganizationRateThrottle
from fablab.health import health_report
from fablab.org_api import router as organization_router
from fablab.problems import install_problem_handlers, problem_response
from fablab.schemas import HealthOut
from inventory.api import router as inventory_router
from inventory.api import sales_router
from printers.api import router as printers_router
from production.api import books_router
from production.api import router as production_router
from reconstruction.api import router as scans_router


class PartnerAPI(NinjaAPI):
    """The NinjaAPI whose OpenAPI document also lists every operation's error answers (fablab.api_openapi)."""

    def get_openapi_schema(self, *, path_prefix: str | None = None, path_params: dict | None = None):
        return document_errors(self, super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params))


api = PartnerAPI(
    title="fablab API",
    version="1",
    description=(
        "The partner API of fablab. Authenticate with the `X-API-Key` header. "
        "Errors are `application/problem+json` (RFC 7807). Lists take `limit` "
        f"(at most {settings.API_PAGE_SIZE_MAX}) and `offset`."
    ),
    urls_namespace="api",
    docs_url="/docs",
    auth=read_key,
    throttle=[OrganizationRateThrottle(settings.API_RATE_LIMIT)],
)
install_problem_handlers(api)

api.add_router("/", organization_router)
api.add_router("/catalog", catalog_router)
api.add_router("/printers", printers_router)
api.add_router("/inventory", inventory_router)
api.add_router("/sales", sales_router)
api.add_router("/", production_router)  # its paths name what they are about: /printers/{id}/files
api.add_router("/production/books", books_router)
api.add_router("/scans", scans_router)
api.add_router("/billing", billing_router)


@api.get("/health", auth=None, response={200: HealthOut, 503: HealthOut}, tags=["system"], throttle=[])
def health(request: HttpRequest):
    """Whether the database, the task broker and the file storage answer."""
    report = health_report()
    return Status(200 if report["status"] == "ok" else 503, report)


def not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    """Unknown paths under /api/v1/ answer in the API's own error format."""
    return problem_response(
        request, status=404, title="Not found",
        detail=f"There is no API endpoint at {request.path}. See /api/v1/docs.", code="not-found",
    )
