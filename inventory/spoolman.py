"""Spoolman's REST API over fablab's stock, for Moonraker, OctoPrint-Spoolman, Mainsail and Fluidd.

Point any of them at fablab instead of a Spoolman server and the filament they
report lands in the same ledger as everything else:

- Moonraker (`[spoolman]` in moonraker.conf): `server: https://fablab.example.com/spoolman/fl_...`
  (Moonraker cannot send headers; the key goes in the URL). Mainsail and Fluidd reach
  fablab through Moonraker's proxy.
- OctoPrint-Spoolman: Spoolman URL `https://fablab.example.com/spoolman/fl_...`.
- Clients that can send headers use `/spoolman/api/v1/...` with `X-API-Key: fl_...`.

The key must belong to the lab's own systems (organization kind 'lab'); every change needs the
write scope. A printer host's key (scope 'printer_host') reads spools, filaments, vendors and
settings and reports use, nothing else, here or anywhere; hosts whose address SPOOLMAN_ALLOW_HOSTS
lists may do the same without a key (off by default). Keys in URL paths are redacted from the logs
(fablab/logs.py). Ids are fablab's ids; vendors are
the filament brands (inventory.models.Vendor). Responses have Spoolman's shapes;
errors are `{"message": ...}` everywhere under the mount, unknown paths included.
Spoolman's semantics where they differ from fablab's own API: a report of more
filament than a spool holds books what is left and answers 200 with the spool at 0
(the reorder alert is raised as usual), and an archived spool still takes reports.
Moonraker also keeps a WebSocket open at `/api/v1/spool` (see fablab/asgi.py).
"""

import json
import math
import uuid
from collections import Counter
from decimal import Decimal

from django.db import transaction
from django.db.models import DecimalField as DecimalExpression
from django.db.models import ExpressionWrapper, F, Q, QuerySet
from django.http import HttpRequest, JsonResponse
from django.urls import path, re_path, resolve
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError

from fablab.api_auth import AllowedHost, lab_write_key, spoolman_read_key, spoolman_use_key
from fablab.exceptions import ApplicationError, Conflict, InvalidInput, NotFound
from fablab.services import API_KEY_PATTERN
from inventory import selectors, services
from inventory.choices import LocationKind, SourceType
from inventory.models import GRAM_QUANTUM, Filament, Spool, SpoolmanExtra, Vendor, grams_display

SPOOLMAN_VERSION = "0.22.1"

spoolman = NinjaAPI(
    title="fablab: Spoolman-compatible API", version="spoolman", urls_namespace="spoolman",
    docs_url=None, openapi_url=None, auth=spoolman_read_key,
)


def _message(status: int, message: str) -> JsonResponse:
    return JsonResponse({"message": message}, status=status)


class BadQuery(ApplicationError):
    """A filter or sort Spoolman would refuse: 400, as Spoolman answers it."""

    status = 400


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


# --- Spoolman's shapes ------------------------------------------------------------------------


def _iso(value):
    return value.isoformat() if value else None


def _area_mm2(filament: Filament) -> float:
    return math.pi * (float(filament.diameter_mm) / 2) ** 2


def _length_mm(filament: Filament, grams: Decimal) -> float:
    """Filament length of `grams` (mm): grams / density (g/cm³) is cm³, × 1000 is mm³."""
    return float(grams) / float(filament.density_g_cm3) * 1000 / _area_mm2(filament)


def _grams(filament: Filament, length_mm: float) -> Decimal:
    return Decimal(str(length_mm * _area_mm2(filament) / 1000 * float(filament.density_g_cm3)))


def _vendor(vendor: Vendor, context: "_Context | None" = None) -> dict:
    return {
        "id": vendor.pk,
        "registered": _iso(vendor.created_at),
        "name": vendor.name,
        "comment": vendor.comment or None,
        "empty_spool_weight": float(vendor.empty_spool_weight_g) if vendor.empty_spool_weight_g is not None else None,
        "external_id": vendor.external_id or None,
        "extra": (context or _Context()).extra("vendor", vendor.pk),
    }


class _Context:
    """What every shape of a request needs, read once: the vendors, the extra fields."""

    def __init__(self):
        self.by_pk = {vendor.pk: vendor for vendor in selectors.vendor_list()}
        self.extras: dict[tuple[str, int], dict[str, str]] = {}
        for extra in SpoolmanExtra.objects.all():
            self.extras.setdefault((extra.resource, extra.object_id), {})[extra.key] = extra.value

    def of(self, filament: Filament) -> dict | None:
        vendor = self.by_pk.get(filament.vendor_id)
        return _vendor(vendor, self) if vendor is not None else None

    def extra(self, resource: str, pk: int) -> dict[str, str]:
        return dict(self.extras.get((resource, pk), {}))



def _filament(filament: Filament, vendors: _Context) -> dict:
    return {
        "id": filament.pk,
        "registered": _iso(filament.created_at),
        "name": filament.name or None,
        "vendor": vendors.of(filament),
        "material": filament.material or None,
        "price": float(filament.cost_per_kg * filament.net_weight_g / 1000),
        "density": float(filament.density_g_cm3),
        "diameter": float(filament.diameter_mm),
        "weight": float(filament.net_weight_g),
        "spool_weight": float(filament.spool_weight_g),
        "article_number": filament.article_number or None,
        "comment": filament.comment or None,
        "settings_extruder_temp": filament.settings_extruder_temp,
        "settings_bed_temp": filament.settings_bed_temp,
        "color_hex": filament.colour_hex.lstrip("#") + filament.colour_alpha,
        "multi_color_hexes": ",".join(c.lstrip("#") for c in filament.colours) if filament.extra_colours else None,
        "multi_color_direction": filament.multi_colour_direction or None,
        "external_id": filament.external_id or None,
        "extra": vendors.extra("filament", filament.pk),
    }


def _spool(spool: Spool, vendors: _Context) -> dict:
    filament = spool.filament
    remaining = max(spool.remaining_grams, Decimal("0"))
    used = max(spool.initial_grams - remaining, Decimal("0"))
    return {
        "id": spool.pk,
        "registered": _iso(spool.created_at),
        "first_used": _iso(spool.opened_at),
        "last_used": _iso(spool.last_used),
        "filament": _filament(filament, vendors),
        "initial_weight": float(spool.initial_grams),
        "spool_weight": float(filament.spool_weight_g),
        "remaining_weight": float(remaining),
        "used_weight": float(used),
        "remaining_length": round(_length_mm(filament, remaining), 1),
        "used_length": round(_length_mm(filament, used), 1),
        "location": str(spool.location) if spool.location_id else None,
        "lot_nr": spool.lot_number or None,
        "comment": spool.comment or spool.code,
        "archived": spool.archived_at is not None,
        "extra": vendors.extra("spool", spool.pk),
    }


def _caller(request: HttpRequest) -> str:
    """Who reported, for the ledger: the key's public prefix, or the address of a host let in without a key."""
    if isinstance(request.auth, AllowedHost):
        return request.auth.prefix
    return f"fl_{request.auth.prefix}"


def _spools(*, archived: bool | None = None) -> QuerySet[Spool]:
    """The spools Spoolman clients see: all but those they deleted (retired)."""
    return selectors.spool_list(archived=archived).filter(retired_at__isnull=True)


def _filaments() -> QuerySet[Filament]:
    """The filaments Spoolman clients see: all but those they deleted (retired)."""
    return selectors.filament_list().filter(retired_at__isnull=True)


def _spool_or_404(spool_id: int) -> Spool:
    spool = _spools().filter(pk=spool_id).first()
    if spool is None:
        raise NotFound(f"No spool with ID {spool_id} found.")
    return spool


# --- Spoolman's query language: filters, sort, limit/offset, X-Total-Count ---------------------


def _param(request: HttpRequest, *names: str) -> str | None:
    """The first of `names` present in the query (Spoolman's dotted names first, then the old ones)."""
    for name in names:
        if name in request.GET:
            return request.GET[name]
    return None


def _ids(value: str | None, name: str) -> list[int] | None:
    if value is None:
        return None
    try:
        return [int(part) for part in value.split(",")]
    except ValueError:
        raise InvalidInput(f"{name}: expected IDs separated by commas, got {value!r}.") from None


def _text_q(lookup: str, value: str | None, *, nullable: bool = False) -> Q:
    """Spoolman's text filter: terms separated by commas, "quoted" is exact, empty matches no value."""
    if value is None:
        return Q()
    q = Q(pk__in=[])
    for term in value.split(","):
        if not term:
            q |= Q(**{lookup: ""}) | (Q(**{f"{lookup}__isnull": True}) if nullable else Q(pk__in=[]))
        elif len(term) >= 2 and term[0] == term[-1] == '"':
            q |= Q(**{lookup: term[1:-1]})
        else:
            q |= Q(**{f"{lookup}__icontains": term})
    return q


def _location_q(value: str | None) -> Q:
    """Locations are written as their path ("Shelf › Dry box"), so they are matched on that path."""
    if value is None:
        return Q()
    paths = {location.pk: str(location) for location in selectors.location_list()}
    q = Q(pk__in=[])
    for term in value.split(","):
        if not term:
            q |= Q(location__isnull=True)
        elif len(term) >= 2 and term[0] == term[-1] == '"':
            q |= Q(location_id__in=[pk for pk, text in paths.items() if text == term[1:-1]])
        else:
            q |= Q(location_id__in=[pk for pk, text in paths.items() if term.lower() in text.lower()])
    return q


def _vendor_ids_q(lookup: str, ids: list[int] | None) -> Q:
    """filament.vendor.id: -1 asks for filaments without a vendor."""
    if ids is None:
        return Q()
    q = Q(**{f"{lookup}_id__in": ids})
    if -1 in ids:
        q |= Q(**{f"{lookup}__isnull": True})
    return q


def _filament_sort_fields(prefix: str = "") -> dict:
    return {
        "id": F(f"{prefix}pk" if not prefix else f"{prefix}id"),
        "registered": F(f"{prefix}created_at"),
        "name": F(f"{prefix}name"),
        "material": F(f"{prefix}material"),
        "density": F(f"{prefix}density_g_cm3"),
        "diameter": F(f"{prefix}diameter_mm"),
        "weight": F(f"{prefix}net_weight_g"),
        "spool_weight": F(f"{prefix}spool_weight_g"),
        "color_hex": F(f"{prefix}colour_hex"),
        "price": ExpressionWrapper(F(f"{prefix}cost_per_kg") * F(f"{prefix}net_weight_g"),
                                   output_field=DecimalExpression()),
        "vendor.name": F(f"{prefix}vendor__name"),
        "vendor.id": F(f"{prefix}vendor_id"),
    }


SPOOL_SORT = {
    "id": F("pk"),
    "registered": F("created_at"),
    "first_used": F("opened_at"),
    "last_used": F("last_used"),
    "filament_id": F("filament_id"),
    "initial_weight": F("initial_grams"),
    "remaining_weight": F("remaining_grams"),
    "used_weight": ExpressionWrapper(F("initial_grams") - F("remaining_grams"), output_field=DecimalExpression()),
    "spool_weight": F("filament__spool_weight_g"),
    "location": F("location__name"),
    "lot_nr": F("lot_number"),
    "comment": F("code"),
    "archived": F("archived_at"),
    **{f"filament.{name}": expression for name, expression in _filament_sort_fields("filament__").items()},
}
FILAMENT_SORT = {**_filament_sort_fields(), "vendor_id": F("vendor_id")}
VENDOR_SORT = {"id": F("pk"), "registered": F("created_at"), "name": F("name"), "comment": F("comment"),
               "empty_spool_weight": F("empty_spool_weight_g"), "external_id": F("external_id")}


def _sorted(queryset: QuerySet, sort: str | None, fields: dict) -> QuerySet:
    """`sort=field:asc,other:desc` as Spoolman reads it; missing values last either way."""
    order = []
    for item in (sort or "").split(","):
        item = item.strip()
        if not item:
            continue
        field, separator, direction = item.partition(":")
        if not separator or not field:
            raise BadQuery(f"Invalid sort '{item}', expected the form 'field:asc' or 'field:desc'.")
        direction = direction.strip().lower()
        if direction not in ("asc", "desc"):
            raise BadQuery(f"Invalid sort direction '{direction}' for field '{field}', expected 'asc' or 'desc'.")
        if field not in fields:
            raise BadQuery(f"Invalid field name '{field}'.")
        expression = fields[field]
        order.append(expression.asc(nulls_last=True) if direction == "asc" else expression.desc(nulls_last=True))
    return queryset.order_by(*order, "pk")


def _whole(request: HttpRequest, name: str) -> int | None:
    value = request.GET.get(name)
    if value is None:
        return None
    if not value.strip().isdigit():
        raise InvalidInput(f"{name} must be a whole number of 0 or more, not {value!r}.")
    return int(value)


def _listing(request: HttpRequest, queryset: QuerySet, shape) -> JsonResponse:
    """One page of `queryset` (limit/offset as Spoolman takes them) with the total in X-Total-Count."""
    limit, start = _whole(request, "limit"), _whole(request, "offset") or 0
    total = queryset.count()
    page = queryset[start:start + limit] if limit is not None else queryset[start:]
    response = JsonResponse([shape(item) for item in page], safe=False)
    response["X-Total-Count"] = str(total)
    response["Access-Control-Expose-Headers"] = "X-Total-Count"
    return response


# --- Endpoints ----------------------------------------------------------------------------------


@spoolman.get("/info", auth=None)
def info(request: HttpRequest):
    return {"version": SPOOLMAN_VERSION, "debug_mode": False, "automatic_backups": False, "data_dir": "",
            "logs_dir": "", "backups_dir": "", "db_type": "fablab", "git_commit": None, "build_date": None}


@spoolman.get("/health", auth=None)
def health(request: HttpRequest):
    return {"status": "healthy"}


@spoolman.get("/vendor")
def vendor_list(request: HttpRequest):
    vendors = selectors.vendor_list().filter(
        _text_q("name", _param(request, "name")) & _text_q("external_id", _param(request, "external_id")))
    context = _Context()
    return _listing(request, _sorted(vendors, _param(request, "sort"), VENDOR_SORT),
                    lambda vendor: _vendor(vendor, context))


@spoolman.get("/vendor/{vendor_id}")
def vendor_detail(request: HttpRequest, vendor_id: int):
    vendor = selectors.vendor_list().filter(pk=vendor_id).first()
    if vendor is None:
        raise NotFound(f"No vendor with ID {vendor_id} found.")
    return _vendor(vendor)


@spoolman.get("/filament")
def filament_list(request: HttpRequest):
    filaments = _filaments().filter(
        _text_q("name", _param(request, "name"))
        & _text_q("material", _param(request, "material"))
        & _text_q("vendor__name", _param(request, "vendor.name", "vendor_name"), nullable=True)
        & _vendor_ids_q("vendor", _ids(_param(request, "vendor.id", "vendor_id"), "vendor.id"))
    )
    vendors = _Context()
    return _listing(request, _sorted(filaments, _param(request, "sort"), FILAMENT_SORT),
                    lambda filament: _filament(filament, vendors))


@spoolman.get("/filament/{filament_id}")
def filament_detail(request: HttpRequest, filament_id: int):
    filament = _filaments().filter(pk=filament_id).first()
    if filament is None:
        raise NotFound(f"No filament with ID {filament_id} found.")
    return _filament(filament, _Context())


@spoolman.get("/spool")
def spool_list(request: HttpRequest, allow_archived: bool = False):
    spools = _spools(archived=None if allow_archived else False)
    filament_ids = _ids(_param(request, "filament.id", "filament_id"), "filament.id")
    if filament_ids is not None:
        spools = spools.filter(filament_id__in=filament_ids)
    spools = spools.filter(
        _text_q("filament__name", _param(request, "filament.name", "filament_name"))
        & _text_q("filament__material", _param(request, "filament.material", "filament_material"))
        & _text_q("filament__vendor__name", _param(request, "filament.vendor.name", "vendor_name"), nullable=True)
        & _vendor_ids_q("filament__vendor", _ids(_param(request, "filament.vendor.id", "vendor_id"),
                                                "filament.vendor.id"))
        & _location_q(_param(request, "location"))
        & _text_q("lot_number", _param(request, "lot_nr"))
    )
    vendors = _Context()
    return _listing(request, _sorted(spools, _param(request, "sort"), SPOOL_SORT),
                    lambda spool: _spool(spool, vendors))


@spoolman.get("/spool/{spool_id}")
def spool_detail(request: HttpRequest, spool_id: int):
    return _spool(_spool_or_404(spool_id), _Context())


class UseIn(Schema):
    use_weight: float | None = None
    use_length: float | None = None


@spoolman.put("/spool/{spool_id}/use", auth=spoolman_use_key)
def spool_use(request: HttpRequest, spool_id: int, payload: UseIn):
    """Book a report as Spoolman would: an archived spool takes it, more than is left empties the spool."""
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
            source_type=SourceType.SPOOLMAN, source_id=_caller(request),
            reason=f"Reported by a Spoolman client: {grams_display(grams, 3)} g",
            clamp=True, allow_archived=True,
        )
    return _spool(_spool_or_404(spool_id), _Context())


# --- Changes: vendors, filaments and spools, onto fablab's models and ledger ------------------

SUCCESS = {"message": "Success!"}


def _decimal(value: float | None, name: str) -> Decimal | None:
    if value is None:
        return None
    if not math.isfinite(value) or value < 0:
        raise InvalidInput(f"{name} must be a number of 0 or more.")
    return Decimal(str(value))


def _vendor_or_404(vendor_id: int) -> Vendor:
    vendor = selectors.vendor_list().filter(pk=vendor_id).first()
    if vendor is None:
        raise NotFound(f"No vendor with ID {vendor_id} found.")
    return vendor


def _filament_or_404(filament_id: int) -> Filament:
    filament = _filaments().filter(pk=filament_id).first()
    if filament is None:
        raise NotFound(f"No filament with ID {filament_id} found.")
    return filament


class VendorIn(Schema):
    name: str | None = None
    comment: str | None = None
    empty_spool_weight: float | None = None
    external_id: str | None = None
    extra: dict[str, str | None] | None = None


def _vendor_fields(payload: VendorIn) -> dict:
    data = payload.dict(exclude_unset=True)
    fields = {key: data[key] or "" for key in ("name", "comment", "external_id") if key in data}
    if "empty_spool_weight" in data:
        fields["empty_spool_weight_g"] = _decimal(data["empty_spool_weight"], "empty_spool_weight")
    return fields


@spoolman.post("/vendor", auth=lab_write_key)
@transaction.atomic
def vendor_create(request: HttpRequest, payload: VendorIn):
    if payload.name is None:
        raise InvalidInput("name: a vendor needs a name (it may be empty).")
    vendor = services.vendor_create(**_vendor_fields(payload))
    services.extra_set(resource="vendor", object_id=vendor.pk, values=payload.extra)
    return _vendor(vendor)


@spoolman.patch("/vendor/{vendor_id}", auth=lab_write_key)
@transaction.atomic
def vendor_update(request: HttpRequest, vendor_id: int, payload: VendorIn):
    vendor = services.vendor_update(vendor=_vendor_or_404(vendor_id), **_vendor_fields(payload))
    services.extra_set(resource="vendor", object_id=vendor.pk, values=payload.extra)
    return _vendor(vendor)


@spoolman.delete("/vendor/{vendor_id}", auth=lab_write_key)
def vendor_delete(request: HttpRequest, vendor_id: int):
    services.vendor_delete(vendor=_vendor_or_404(vendor_id))
    return SUCCESS


class FilamentIn(Schema):
    name: str | None = None
    vendor_id: int | None = None
    material: str | None = None
    price: float | None = None
    density: float | None = None
    diameter: float | None = None
    weight: float | None = None
    spool_weight: float | None = None
    color_hex: str | None = None
    multi_color_hexes: str | None = None
    multi_color_direction: str | None = None
    settings_extruder_temp: int | None = None
    settings_bed_temp: int | None = None
    article_number: str | None = None
    comment: str | None = None
    external_id: str | None = None
    extra: dict[str, str | None] | None = None


def _filament_fields(payload: FilamentIn, filament: Filament | None = None) -> dict:
    """Spoolman's filament fields as fablab's; the price of a spool becomes a price per kg."""
    data = payload.dict(exclude_unset=True)
    fields = {}
    for name in ("name", "material", "article_number", "comment", "external_id"):
        if name in data:
            fields[name] = (data[name] or "").strip()
    if data.get("vendor_id") is not None:
        fields["vendor"] = _vendor_or_404(data["vendor_id"])
    elif filament is None or "vendor_id" in data:
        fields["vendor"] = None  # without a vendor, as in Spoolman; the filament keeps any brand it had
    for theirs, ours in (("density", "density_g_cm3"), ("diameter", "diameter_mm"), ("weight", "net_weight_g"),
                         ("spool_weight", "spool_weight_g")):
        if theirs in data and data[theirs] is not None:
            fields[ours] = _decimal(data[theirs], theirs)
    if data.get("price") is not None:
        weight = fields.get("net_weight_g") or (filament.net_weight_g if filament else Decimal("1000"))
        fields["cost_per_kg"] = (_decimal(data["price"], "price") * 1000 / weight).quantize(Decimal("0.01"))
    for name in ("settings_extruder_temp", "settings_bed_temp"):
        if name in data:
            if data[name] is not None and not 0 <= data[name] <= 1000:
                raise InvalidInput(f"{name} must be a temperature between 0 and 1000 °C.")
            fields[name] = data[name]
    fields.update(_colour_fields(data, filament))
    return fields


def _hex(text: str, name: str, *, alpha: bool = False) -> str:
    text = text.strip().lstrip("#").upper()
    if not (len(text) == 6 or (alpha and len(text) == 8)) or any(c not in "0123456789ABCDEF" for c in text):
        raise InvalidInput(f"{name}: {text!r} is not a colour written as RRGGBB" + (" or RRGGBBAA." if alpha else "."))
    return text


def _colour_fields(data: dict, filament: Filament | None) -> dict:
    """color_hex (RRGGBB, or RRGGBBAA with an opacity) or multi_color_hexes with their direction, as Spoolman
    checks them: several colours need a direction and a direction needs several colours."""
    fields = {}
    if data.get("color_hex"):
        text = _hex(data["color_hex"], "color_hex", alpha=True)
        fields.update(colour_hex=f"#{text[:6]}", colour_alpha=text[6:])
    if "multi_color_hexes" in data or "multi_color_direction" in data:
        hexes = data.get("multi_color_hexes")
        direction = data.get("multi_color_direction")
        if hexes is None and "multi_color_hexes" not in data and filament is not None and filament.extra_colours:
            hexes = ",".join(c.lstrip("#") for c in filament.colours)
        if direction is None and "multi_color_direction" not in data and filament is not None:
            direction = filament.multi_colour_direction or None
        if hexes and not direction:
            raise InvalidInput("multi_color_direction: several colours need their direction.")
        if direction and not hexes:
            raise InvalidInput("multi_color_hexes: a direction needs several colours.")
        if direction and direction not in ("coaxial", "longitudinal"):
            raise InvalidInput("multi_color_direction: coaxial or longitudinal.")
        if hexes and "multi_color_hexes" in data and data.get("color_hex"):
            raise InvalidInput("color_hex: give either one colour or multi_color_hexes, not both.")
        if hexes:
            colours = [f"#{_hex(part, 'multi_color_hexes')}" for part in hexes.split(",")]
            if len(colours) < 2:
                raise InvalidInput("multi_color_hexes: at least two colours, or use color_hex.")
            fields.update(colour_hex=colours[0], extra_colours=colours[1:], colour_alpha="")
        elif "multi_color_hexes" in data:
            fields["extra_colours"] = []
        fields["multi_colour_direction"] = direction or ""
    return fields


@spoolman.post("/filament", auth=lab_write_key)
@transaction.atomic
def filament_create(request: HttpRequest, payload: FilamentIn):
    fields = _filament_fields(payload)
    fields.setdefault("colour_hex", "#FFFFFF")
    filament = services.filament_create(**fields)
    services.extra_set(resource="filament", object_id=filament.pk, values=payload.extra)
    return _filament(_filament_or_404(filament.pk), _Context())


@spoolman.patch("/filament/{filament_id}", auth=lab_write_key)
@transaction.atomic
def filament_update(request: HttpRequest, filament_id: int, payload: FilamentIn):
    filament = _filament_or_404(filament_id)
    services.filament_update(filament=filament, **_filament_fields(payload, filament))
    services.extra_set(resource="filament", object_id=filament.pk, values=payload.extra)
    return _filament(_filament_or_404(filament_id), _Context())


@spoolman.delete("/filament/{filament_id}", auth=lab_write_key)
def filament_delete(request: HttpRequest, filament_id: int):
    """As Spoolman: refused (403) while the filament has spools; once they are deleted it goes too."""
    try:
        services.filament_delete(filament=_filament_or_404(filament_id))
    except Conflict as exc:
        return _message(403, exc.message)
    return SUCCESS


class SpoolIn(Schema):
    filament_id: int | None = None
    initial_weight: float | None = None
    remaining_weight: float | None = None
    used_weight: float | None = None
    location: str | None = None
    lot_nr: str | None = None
    comment: str | None = None
    archived: bool | None = None
    extra: dict[str, str | None] | None = None


def _location_for(text: str | None):
    """Spoolman keeps a location as text: the fablab location with that path (or name), made if new."""
    text = (text or "").strip()
    if not text:
        return None
    locations = list(selectors.location_list())
    for location in locations:
        if str(location) == text:
            return location
    for location in locations:
        if location.name == text and location.parent_id is None:
            return location
    return services.location_create(name=text[:100], kind=LocationKind.SHELF)


def _count(spool: Spool, payload: SpoolIn, key: str) -> None:
    """remaining_weight or used_weight set by a client: a counted correction in the ledger."""
    if payload.remaining_weight is not None and payload.used_weight is not None:
        raise BadQuery("Only specify either remaining_weight or used_weight.")
    if payload.remaining_weight is not None:
        target = _decimal(payload.remaining_weight, "remaining_weight")
    elif payload.used_weight is not None:
        target = max(spool.initial_grams - _decimal(payload.used_weight, "used_weight"), Decimal("0"))
    else:
        return
    spool.refresh_from_db()
    if target.quantize(GRAM_QUANTUM) != spool.remaining_grams:
        services.spool_adjust(spool=spool, remaining_grams=target, idempotency_key=key,
                              reason="Set by a Spoolman client", source_type=SourceType.SPOOLMAN)


def _archive(spool: Spool, archived: bool | None) -> None:
    if archived is True:
        services.spool_archive(spool=spool)
    elif archived is False:
        services.spool_unarchive(spool=spool)


@spoolman.post("/spool", auth=lab_write_key)
@transaction.atomic
def spool_create(request: HttpRequest, payload: SpoolIn):
    """A spool created by a client is a spool received: its weight enters the ledger as 'received'."""
    if payload.filament_id is None:
        raise InvalidInput("filament_id: a spool needs its filament.")
    filament = _filament_or_404(payload.filament_id)
    initial = _decimal(payload.initial_weight, "initial_weight") or filament.net_weight_g
    event = f"spoolman-{uuid.uuid4()}"
    spool = services.spool_receive(filament=filament, initial_grams=initial, idempotency_key=event,
                                   location=_location_for(payload.location), lot_number=payload.lot_nr or "",
                                   source_type=SourceType.SPOOLMAN, source_id=_caller(request))
    if payload.comment:
        services.spool_update(spool=spool, comment=payload.comment)
    _count(spool, payload, f"{event}:count")
    _archive(spool, payload.archived)
    services.extra_set(resource="spool", object_id=spool.pk, values=payload.extra)
    return _spool(_spool_or_404(spool.pk), _Context())


@spoolman.patch("/spool/{spool_id}", auth=lab_write_key)
@transaction.atomic
def spool_update(request: HttpRequest, spool_id: int, payload: SpoolIn):
    spool = _spool_or_404(spool_id)
    data = payload.dict(exclude_unset=True)
    if "filament_id" in data and data["filament_id"] != spool.filament_id:
        raise InvalidInput("filament_id: a spool keeps its filament; receive a new spool instead.")
    if "initial_weight" in data and _decimal(data["initial_weight"], "initial_weight") != spool.initial_grams:
        raise InvalidInput("initial_weight: what a spool held when received stays; set remaining_weight.")
    event = f"spoolman-{uuid.uuid4()}"
    _count(spool, payload, f"{event}:count")
    if "location" in data:
        location = _location_for(data["location"])
        if location != spool.location:
            services.spool_move(spool=spool, location=location, idempotency_key=f"{event}:move")
    if "lot_nr" in data or "comment" in data:
        services.spool_update(spool=spool, lot_number=data["lot_nr"] or "" if "lot_nr" in data else None,
                              comment=data["comment"] or "" if "comment" in data else None)
    _archive(spool, data.get("archived"))
    services.extra_set(resource="spool", object_id=spool.pk, values=payload.extra)
    return _spool(_spool_or_404(spool_id), _Context())


@spoolman.delete("/spool/{spool_id}", auth=lab_write_key)
def spool_delete(request: HttpRequest, spool_id: int):
    """Spools are never deleted (their ledger stays): deleting one archives it and hides it from Spoolman clients."""
    services.spool_retire(spool=_spool_or_404(spool_id))
    return SUCCESS


# --- Settings: what Mainsail and Fluidd read ---------------------------------------------------


def _currency() -> str:
    """The currency most filaments are priced in: Spoolman has one for all prices."""
    counts = Counter(selectors.filament_list().values_list("currency", flat=True))
    return counts.most_common(1)[0][0] if counts else "EUR"


def _settings() -> dict[str, tuple[str, object]]:
    """Spoolman's settings as (type, value); fablab keeps none of them, so they are read-only."""
    return {
        "currency": ("string", _currency()),
        "round_prices": ("boolean", False),
        "print_presets": ("array", []),
        "label_designs": ("array", []),
        "extra_fields_vendor": ("array", []),
        "extra_fields_filament": ("array", []),
        "extra_fields_spool": ("array", []),
        "base_url": ("string", ""),
        "locations": ("array", sorted(str(location) for location in selectors.location_list())),
        "locations_spoolorders": ("object", {}),
    }


def _setting(kind: str, value) -> dict:
    return {"value": json.dumps(value), "is_set": False, "type": kind}


@spoolman.get("/setting/")
def setting_list(request: HttpRequest):
    return {key: _setting(kind, value) for key, (kind, value) in _settings().items()}


@spoolman.get("/setting")
def setting_list_without_slash(request: HttpRequest):
    return setting_list(request)


@spoolman.get("/setting/{key}")
def setting_detail(request: HttpRequest, key: str):
    settings = _settings()
    if key not in settings:
        raise NotFound(f"Setting {key} does not exist.")
    return _setting(*settings[key])


# --- Routing: the key in the URL, and {"message"} for every unknown path --------------------


@csrf_exempt
def unknown(request: HttpRequest, **_kwargs):
    return _message(404, "Not Found")


@csrf_exempt
def keyed(request: HttpRequest, key: str, rest: str):
    """/spoolman/<key>/api/v1/... for clients that cannot send headers: the key is taken from the URL."""
    request.META["HTTP_X_API_KEY"] = key
    request.__dict__.pop("headers", None)  # rebuilt from META on next access
    match = resolve(f"/spoolman/api/v1/{rest}")
    return match.func(request, *match.args, **match.kwargs)


@csrf_exempt
def root(request: HttpRequest, key: str = ""):
    """The mount itself answers as Spoolman's does (clients and monitors poll it to see that the server is up);
    Spoolman serves its web page there, fablab says where its API is."""
    if request.method not in ("GET", "HEAD"):
        return _message(405, "Method Not Allowed")
    return JsonResponse({"message": "fablab: Spoolman-compatible API at api/v1/", "version": SPOOLMAN_VERSION})


# Mounted at /spoolman/ (fablab/urls.py): the key comes in X-API-Key, or in the URL for clients without headers.
urlpatterns = [
    path("", root),
    re_path(rf"^(?P<key>{API_KEY_PATTERN})/?$", root),
    path("api/v1/", spoolman.urls),
    re_path(rf"^(?P<key>{API_KEY_PATTERN})/api/v1/(?P<rest>.*)$", keyed),
    re_path(r"^.*$", unknown),
]
