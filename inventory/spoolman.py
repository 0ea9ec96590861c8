"""The part of Spoolman's REST API that Moonraker's and OctoPrint's Spoolman integrations use.

Point either integration at fablab instead of a Spoolman server and the filament
they report lands in the same ledger as everything else:

- Moonraker (`[spoolman]` in moonraker.conf): `server: https://fablab.example.com/spoolman`
  with `additional_headers: X-API-Key: fl_...`, or put the key in the URL:
  `server: https://fablab.example.com/spoolman/fl_...`.
- OctoPrint-Spoolman: Spoolman URL `https://fablab.example.com/spoolman/fl_...`
  (the plugin cannot send headers, so the key goes in the URL).

The key must belong to the lab's own systems (organization kind 'lab'); reporting
usage needs the write scope. Spool ids are fablab's spool ids. Responses have
Spoolman's shapes; errors are `{"message": ...}` as Spoolman sends them.
Moonraker also keeps a WebSocket open at `/api/v1/spool` (see fablab/asgi.py).
"""

import math
import uuid
from decimal import Decimal

from django.http import HttpRequest, JsonResponse
from django.urls import path, re_path, resolve
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError

from fablab.api_auth import lab_read_key, lab_write_key
from fablab.exceptions import ApplicationError, InvalidInput, NotFound
from fablab.services import API_KEY_PATTERN
from inventory import selectors, services
from inventory.choices import SourceType
from inventory.models import GRAM_QUANTUM, Filament, Spool

SPOOLMAN_VERSION = "0.22.1"

spoolman = NinjaAPI(
    title="fablab: Spoolman-compatible API", version="spoolman", urls_namespace="spoolman",
    docs_url=None, openapi_url=None, auth=lab_read_key,
)


def _message(status: int, message: str) -> JsonResponse:
    return JsonResponse({"message": message}, status=status)


@spoolman.exception_handler(ApplicationError)
def _application_error(request, exc: ApplicationError):
    return _message(exc.status, exc.message)


@spoolman.exception_handler(AuthenticationError)
def _authentication_error(request, exc):
    return _message(401, "Send a key of the lab's own systems in X-API-Key or in the URL (/spoolman/fl_.../).")


@spoolman.exception_handler(ValidationError)
def _validation_error(request, exc: ValidationError):
    first = exc.errors[0] if exc.errors else {}
    return _message(422, f"{'.'.join(str(p) for p in first.get('loc', ()))}: {first.get('msg', 'invalid input')}")


@spoolman.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    return _message(exc.status_code, str(exc))


def _iso(value):
    return value.isoformat() if value else None


def _area_mm2(filament: Filament) -> float:
    return math.pi * (float(filament.diameter_mm) / 2) ** 2


def _length_mm(filament: Filament, grams: Decimal) -> float:
    """Filament length of `grams` (mm): grams / density (g/cm³) is cm³, × 1000 is mm³."""
    return float(grams) / float(filament.density_g_cm3) * 1000 / _area_mm2(filament)


def _grams(filament: Filament, length_mm: float) -> Decimal:
    return Decimal(str(length_mm * _area_mm2(filament) / 1000 * float(filament.density_g_cm3)))


def _filament(filament: Filament) -> dict:
    return {
        "id": filament.pk,
        "registered": _iso(filament.created_at),
        "name": filament.name,
        "vendor": {"id": 0, "registered": _iso(filament.created_at), "name": filament.brand, "extra": {}},
        "material": filament.material,
        "price": float(filament.cost_per_kg * filament.net_weight_g / 1000),
        "density": float(filament.density_g_cm3),
        "diameter": float(filament.diameter_mm),
        "weight": float(filament.net_weight_g),
        "spool_weight": float(filament.spool_weight_g),
        "color_hex": filament.colour_hex.lstrip("#"),
        "multi_color_hexes": ",".join(c.lstrip("#") for c in filament.colours) if filament.extra_colours else None,
        "extra": {},
    }


def _spool(spool: Spool) -> dict:
    filament = spool.filament
    used = spool.initial_grams - spool.remaining_grams
    return {
        "id": spool.pk,
        "registered": _iso(spool.created_at),
        "first_used": _iso(spool.opened_at),
        "last_used": _iso(spool.last_used),
        "filament": _filament(filament),
        "initial_weight": float(spool.initial_grams),
        "spool_weight": float(filament.spool_weight_g),
        "remaining_weight": float(spool.remaining_grams),
        "used_weight": float(used),
        "remaining_length": round(_length_mm(filament, spool.remaining_grams), 1),
        "used_length": round(_length_mm(filament, used), 1),
        "location": str(spool.location) if spool.location_id else None,
        "lot_nr": spool.lot_number or None,
        "comment": spool.code,
        "archived": spool.archived_at is not None,
        "extra": {},
    }


def _spool_or_404(spool_id: int) -> Spool:
    spool = selectors.spool_list(archived=None).filter(pk=spool_id).first()
    if spool is None:
        raise NotFound(f"No spool with ID {spool_id} found.")
    return spool


@spoolman.get("/info", auth=None)
def info(request: HttpRequest):
    return {"version": SPOOLMAN_VERSION, "debug_mode": False, "automatic_backups": False, "data_dir": "",
            "logs_dir": "", "backups_dir": "", "db_type": "fablab", "git_commit": None, "build_date": None}


@spoolman.get("/health", auth=None)
def health(request: HttpRequest):
    return {"status": "healthy"}


@spoolman.get("/filament")
def filament_list(request: HttpRequest):
    return [_filament(f) for f in selectors.filament_list()]


@spoolman.get("/filament/{filament_id}")
def filament_detail(request: HttpRequest, filament_id: int):
    filament = selectors.filament_list().filter(pk=filament_id).first()
    if filament is None:
        raise NotFound(f"No filament with ID {filament_id} found.")
    return _filament(filament)


@spoolman.get("/spool")
def spool_list(request: HttpRequest, allow_archived: bool = False):
    spools = selectors.spool_list(archived=None if allow_archived else False).order_by("pk")
    return [_spool(s) for s in spools]


@spoolman.get("/spool/{spool_id}")
def spool_detail(request: HttpRequest, spool_id: int):
    return _spool(_spool_or_404(spool_id))


class UseIn(Schema):
    use_weight: float | None = None
    use_length: float | None = None


@spoolman.put("/spool/{spool_id}/use", auth=lab_write_key)
def spool_use(request: HttpRequest, spool_id: int, payload: UseIn):
    spool = _spool_or_404(spool_id)
    if (payload.use_weight is None) == (payload.use_length is None):
        raise InvalidInput("Specify either use_weight or use_length.")
    amount = payload.use_weight if payload.use_weight is not None else None
    if amount is None:
        if not math.isfinite(payload.use_length) or payload.use_length < 0:
            raise InvalidInput("use_length must be a positive number of millimetres.")
        grams = _grams(spool.filament, payload.use_length)
    else:
        if not math.isfinite(amount) or amount < 0:
            raise InvalidInput("use_weight must be a positive number of grams.")
        grams = Decimal(str(amount))
    if grams.quantize(GRAM_QUANTUM) > 0:  # the ledger keeps micrograms; a zero report books nothing
        # Spoolman's protocol has no event id: every report is a new event.
        services.spool_use(
            spool=spool, grams_used=grams, idempotency_key=f"spoolman-{uuid.uuid4()}",
            source_type=SourceType.SPOOLMAN, source_id=f"fl_{request.auth.prefix}",
            reason="Reported by a Spoolman client",
        )
    return _spool(_spool_or_404(spool_id))


@csrf_exempt
def keyed(request: HttpRequest, key: str, rest: str):
    """/spoolman/<key>/api/v1/... for clients that cannot send headers: the key is taken from the URL."""
    request.META["HTTP_X_API_KEY"] = key
    request.__dict__.pop("headers", None)  # rebuilt from META on next access
    match = resolve(f"/spoolman/api/v1/{rest}")
    return match.func(request, *match.args, **match.kwargs)


# Mounted at /spoolman/ (fablab/urls.py): the key comes in X-API-Key, or in the URL for clients without headers.
urlpatterns = [
    path("api/v1/", spoolman.urls),
    re_path(rf"^(?P<key>{API_KEY_PATTERN})/api/v1/(?P<rest>.*)$", keyed),
]
