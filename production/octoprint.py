""""Send to printer" from a slicer: the part of OctoPrint's REST API that slicers upload through.

PrusaSlicer, SuperSlicer, OrcaSlicer and Cura (its OctoPrint connection) upload a sliced file to a
*physical printer* of type OctoPrint. Set one up with fablab's address and a key of the lab's own
systems with the write scope, and every upload lands in fablab instead of on a printer:

- `GET /api/version`: what OctoPrint answers (the slicers' "Test" button checks `api` and that
  `text` starts with "OctoPrint").
- `POST /api/files/local`: multipart `file`, optional `path` (a folder), `print`, `select`. The file
  becomes a new version of the catalog variant its folder or name names (SLICER_UPLOAD_SKU_RULES:
  `SKU/anything.gcode` or `SKU_anything.gcode`), else it waits in the inbox for staff
  (production.services.slicer_upload_receive). `print=true` also queues it as a print job.

The key comes in `X-Api-Key` (or `Authorization: Bearer ...`). Answers have OctoPrint 1.x's shapes
and status codes: 201 with `{"files": {"local": {...}}, "done": true, "effectiveSelect": ...,
"effectivePrint": ...}`; errors are `{"error": "..."}`: 403 without a valid key of the lab's own
systems (OctoPrint treats an unknown key as an anonymous caller), 400 for a missing file or a bad
name, 415 for a file type the catalog does not take, 404 for a storage other than `local`.
"""

import logging

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from catalog import services as catalog_services
from fablab.api_auth import require_lab_key
from fablab.choices import ApiKeyScope
from fablab.exceptions import ApplicationError, PermissionDenied
from fablab.models import ApiKey
from fablab.services import AuthenticationFailed, api_key_authenticate
from production import services

logger = logging.getLogger(__name__)

# The OctoPrint release whose answers this door gives (API version 0.1: the shapes of OctoPrint 1.x).
OCTOPRINT_API = "0.1"
OCTOPRINT_SERVER = "1.11.7"
LOCAL = "local"
# OctoPrint's octoprint.util.valid_boolean_trues
_TRUES = {"true", "yes", "y", "1", "on"}


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": str(message)}, status=status)


def _raw_key(request: HttpRequest) -> str:
    key = request.headers.get("X-Api-Key", "").strip()
    if not key:
        scheme, _space, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            key = value.strip()
    return key


def _lab_key(request: HttpRequest, *, scope: str) -> ApiKey:
    """The lab's own key the request carries, allowed `scope`; PermissionDenied otherwise (OctoPrint's 403)."""
    raw = _raw_key(request)
    if not raw:
        raise PermissionDenied(_("Send a key of the lab's own systems in X-Api-Key."))
    try:
        api_key = require_lab_key(api_key_authenticate(raw_key=raw))
    except AuthenticationFailed as exc:
        raise PermissionDenied(exc.message) from exc
    if not api_key.allows(scope):
        raise PermissionDenied(_("This API key may only read; uploads need a key with the write scope."))
    return api_key


@require_GET
def version(request: HttpRequest) -> JsonResponse:
    try:
        _lab_key(request, scope=ApiKeyScope.READ)
    except ApplicationError as exc:
        return _error(exc.status, exc.message)
    return JsonResponse({"api": OCTOPRINT_API, "server": OCTOPRINT_SERVER,
                         "text": f"OctoPrint {OCTOPRINT_SERVER} (fablab)"})


def _true(request: HttpRequest, name: str) -> bool:
    return request.POST.get(name, "").strip().lower() in _TRUES


@csrf_exempt
@require_POST
def upload(request: HttpRequest, location: str) -> JsonResponse:
    try:
        api_key = _lab_key(request, scope=ApiKeyScope.WRITE)
    except ApplicationError as exc:
        return _error(exc.status, exc.message)
    if location != LOCAL:
        return _error(404, _("fablab stores uploads only in 'local'."))
    try:
        sent = request.FILES.get("file")
        folder = request.POST.get("path", "")
        to_print = _true(request, "print")
        to_select = _true(request, "select")
    except (MultiPartParserError, RequestDataTooBig, SuspiciousOperation) as exc:
        return _error(400, _("The upload could not be read: %(reason)s") % {"reason": exc})
    if sent is None:
        return _error(400, _("No file to upload and no folder to create"))
    if catalog_services.sliced_file_suffix(name=sent.name or "") is None:
        return _error(415, _("Could not upload file, invalid type: the catalog takes .gcode, .bgcode, .3mf, "
                             ".gcode.3mf, .ufp and .stl files."))
    try:
        row = services.slicer_upload_receive(organization=api_key.organization, upload=sent, folder=folder,
                                             print_requested=to_print)
    except ApplicationError as exc:
        return _error(400 if exc.status == 422 else exc.status, exc.message)
    stored_path = f"{row.folder}/{row.original_name}" if row.folder else row.original_name
    resource = request.build_absolute_uri(reverse("admin:production_slicerupload_change", args=[row.pk]))
    logger.info("Slicer upload %s received with key %s (print=%s, select=%s).", row.pk, api_key.prefix,
                to_print, to_select)
    answer = JsonResponse({
        "files": {LOCAL: {"name": row.original_name, "path": stored_path, "origin": LOCAL,
                          "refs": {"resource": resource}}},
        "done": True,
        "effectiveSelect": False,  # fablab has no printer to select a file on
        "effectivePrint": row.job_id is not None,
    }, status=201)
    answer["Location"] = resource
    return answer


urlpatterns = [
    path("version", version, name="octoprint_version"),
    path("files/<str:location>", upload, name="octoprint_upload"),
]
