"""Stock through the API: partners and the lab read it (customers do not); the lab's own systems change it,
once per event."""

from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Query, Router, Status
from ninja.pagination import paginate

from fablab.api_auth import idempotency_key, lab_read_key, lab_write_key, partner_or_lab_read_key
from fablab.api_pagination import Pagination
from fablab.exceptions import InvalidInput
from inventory import matching, selectors, services
from inventory.choices import SourceType
from inventory.schemas import (
    AdjustIn,
    FilamentStockOut,
    LocationOut,
    MatchIn,
    MovementOut,
    ProductMovementOut,
    ProductOut,
    ProductStockIn,
    ReceiveIn,
    SaleCreateIn,
    SaleDetailOut,
    SaleFilterIn,
    SaleIn,
    SaleOut,
    SaleReturnIn,
    SlotMatchOut,
    SpoolOut,
    UseIn,
    WeighIn,
)

# Reading stock: partners and the lab; customers' keys get 403. Changing it: the lab's write keys only.
router = Router(tags=["inventory"], auth=partner_or_lab_read_key)
# Mounted at /api/v1/sales: the lab's shops and tills record sales; partners neither record nor read them.
sales_router = Router(tags=["sales"], auth=lab_read_key)


@router.get("/filaments", response=list[FilamentStockOut], summary="Filaments with the grams in stock")
@paginate(Pagination)
def filament_list(request: HttpRequest, material: str = ""):
    return selectors.filament_list(material=material)


@router.get("/products", response=list[ProductOut], summary="Products with the units in stock")
@paginate(Pagination)
def product_list(request: HttpRequest):
    return selectors.product_list()


@router.get("/locations", response=list[LocationOut], summary="Storage locations")
@paginate(Pagination)
def location_list(request: HttpRequest):
    return selectors.location_list()


@router.get("/spools", response=list[SpoolOut], summary="Spools in stock (archived ones with archived=true)")
@paginate(Pagination)
def spool_list(request: HttpRequest, filament: int | None = None, archived: bool = False, code: str = ""):
    return selectors.spool_list(archived=archived, filament_id=filament, code=code)


@router.get("/spools/{spool_id}", response=SpoolOut)
def spool_detail(request: HttpRequest, spool_id: int):
    return selectors.spool_get(spool_id=spool_id)


@router.get("/spools/{spool_id}/movements", response=list[MovementOut], summary="A spool's ledger, newest first")
@paginate(Pagination)
def spool_movements(request: HttpRequest, spool_id: int):
    return selectors.movement_list(spool=selectors.spool_get(spool_id=spool_id))


@router.post("/spools", response={201: SpoolOut}, auth=lab_write_key,
             summary="Receive a new spool (needs an Idempotency-Key header)")
def spool_receive(request: HttpRequest, payload: ReceiveIn):
    key = idempotency_key(request)
    filament = selectors.filament_get(filament_id=payload.filament_id)
    location = selectors.location_get(location_id=payload.location_id) if payload.location_id else None
    spool = services.spool_receive(
        filament=filament, initial_grams=payload.grams, location=location, lot_number=payload.lot_number,
        rfid_tag=payload.rfid_tag, idempotency_key=key, source_type=SourceType.API, source_id=str(request.auth.pk),
    )
    return Status(201, selectors.spool_get(spool_id=spool.pk))


@router.post("/spools/{spool_id}/use", response={201: MovementOut}, auth=lab_write_key,
             summary="Take filament off a spool (needs an Idempotency-Key header)")
def spool_use(request: HttpRequest, spool_id: int, payload: UseIn):
    key = idempotency_key(request)
    spool = selectors.spool_get(spool_id=spool_id)
    movement = services.spool_use(spool=spool, grams_used=payload.grams, kind=payload.kind, reason=payload.reason,
                                  idempotency_key=key, source_type=SourceType.API, source_id=payload.source_id)
    return Status(201, movement)


@router.post("/spools/{spool_id}/weigh", response={201: MovementOut}, auth=lab_write_key,
             summary="Book what a scale shows (needs an Idempotency-Key header)")
def spool_weigh(request: HttpRequest, spool_id: int, payload: WeighIn):
    key = idempotency_key(request)
    spool = selectors.spool_get(spool_id=spool_id)
    return Status(201, services.spool_weigh(spool=spool, gross_grams=payload.gross_grams, idempotency_key=key,
                                            source_type=SourceType.API))


@router.post("/spools/{spool_id}/adjust", response={201: MovementOut}, auth=lab_write_key,
             summary="Set a spool's grams to a counted value, with the reason (needs an Idempotency-Key header)")
def spool_adjust(request: HttpRequest, spool_id: int, payload: AdjustIn):
    key = idempotency_key(request)
    spool = selectors.spool_get(spool_id=spool_id)
    return Status(201, services.spool_adjust(spool=spool, remaining_grams=payload.remaining_grams,
                                             reason=payload.reason, idempotency_key=key, source_type=SourceType.API))


@router.post("/products/{product_id}/stock", response={201: ProductMovementOut}, auth=lab_write_key,
             summary="Book units of a product in or count them at a location (needs an Idempotency-Key header)")
def product_stock_change(request: HttpRequest, product_id: int, payload: ProductStockIn):
    key = idempotency_key(request)
    product = selectors.product_get(product_id=product_id)
    location = selectors.location_get(location_id=payload.location_id)
    return Status(201, services.product_stock_book(
        product=product, location=location, kind=payload.kind, quantity=payload.quantity, reason=payload.reason,
        idempotency_key=key, source_type=SourceType.API, source_id=payload.source_id,
    ))


@router.post("/products/{product_id}/sales", response={201: SaleOut}, auth=lab_write_key,
             summary="Record a sale and take its units out of stock (needs an Idempotency-Key header)")
def sale_record(request: HttpRequest, product_id: int, payload: SaleIn):
    key = idempotency_key(request)
    product = selectors.product_get(product_id=product_id)
    location = selectors.location_get(location_id=payload.location_id)
    return Status(201, services.sale_record(
        product=product, location=location, quantity=payload.quantity, unit_price=payload.unit_price,
        currency=payload.currency, sold_on=payload.sold_on or timezone.localdate(), channel=payload.channel,
        idempotency_key=key, source_type=SourceType.API,
    ))


@router.post("/match", response=list[SlotMatchOut], summary="Which filaments in stock fit these filament slots")
def match(request: HttpRequest, payload: MatchIn):
    results = matching.match_slots(
        materials=[s.material for s in payload.slots], colours=[s.colour for s in payload.slots],
        grams_needed=[s.grams for s in payload.slots], brands=[s.brand for s in payload.slots],
        tolerance=payload.tolerance,
    )
    return [
        {
            "slot": r.slot, "material": r.material, "colour": r.colour, "needed_g": r.needed_g,
            "available_g": r.available_g, "enough": r.enough, "note": r.note,
            "candidates": [
                {"filament": c.filament, "delta_e": None if c.delta_e is None else round(c.delta_e, 2),
                 "available_g": c.available_g, "spool_codes": c.spool_codes}
                for c in r.candidates
            ],
        }
        for r in results
    ]


# --- /api/v1/sales ---------------------------------------------------------------------------


@sales_router.post("", response={201: SaleDetailOut}, auth=lab_write_key,
                   summary="Record a sale and take its units out of stock (needs an Idempotency-Key header)")
def sale_create(request: HttpRequest, payload: SaleCreateIn):
    """Name the product by `product_id` or `sku`. The same Idempotency-Key sent again answers the sale recorded
    the first time; a sale may not take more units than its location holds."""
    key = idempotency_key(request)
    if (payload.product_id is None) == (not payload.sku):
        raise InvalidInput(_("Name the product by product_id or by sku, one of them."))
    product = (selectors.product_get(product_id=payload.product_id) if payload.product_id is not None
               else selectors.product_get_by_sku(sku=payload.sku))
    location = selectors.location_get(location_id=payload.location_id) if payload.location_id else None
    sale = services.sale_record(
        product=product, location=location, quantity=payload.quantity, unit_price=payload.unit_price,
        currency=payload.currency, sold_on=payload.sold_at or timezone.localdate(), channel=payload.channel,
        reference=payload.reference, idempotency_key=key, source_type=SourceType.API,
        source_id=str(request.auth.pk),
    )
    return Status(201, selectors.sale_get(sale_id=sale.pk))


@sales_router.get("", response=list[SaleDetailOut], summary="Sales and returns, newest first")
@paginate(Pagination)
def sale_list(request: HttpRequest, filters: Query[SaleFilterIn]):
    return selectors.sale_list(product_id=filters.product_id, sku=filters.sku, channel=filters.channel or "",
                               since=filters.since, until=filters.until, reference=filters.reference,
                               returns=filters.returns)


@sales_router.get("/{sale_id}", response=SaleDetailOut, summary="One sale or return")
def sale_detail(request: HttpRequest, sale_id: int):
    return selectors.sale_get(sale_id=sale_id)


@sales_router.post("/{sale_id}/returns", response={201: SaleDetailOut}, auth=lab_write_key,
                   summary="Units of a sale came back (needs an Idempotency-Key header)")
def sale_return(request: HttpRequest, sale_id: int, payload: SaleReturnIn):
    key = idempotency_key(request)
    sale = selectors.sale_get(sale_id=sale_id)
    location = selectors.location_get(location_id=payload.location_id) if payload.location_id else None
    returned = services.sale_return(sale=sale, quantity=payload.quantity, location=location,
                                    returned_on=payload.returned_on, idempotency_key=key,
                                    source_type=SourceType.API, source_id=str(request.auth.pk))
    return Status(201, selectors.sale_get(sale_id=returned.pk))
