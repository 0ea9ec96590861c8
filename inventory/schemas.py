from datetime import date, datetime
from decimal import Decimal

from ninja import Field, Schema

from fablab.api_types import ApiDecimal, choice, decimal_type
from inventory.choices import (
    BOOKED_PRODUCT_KINDS,
    CONSUMING_KINDS,
    LocationKind,
    MovementKind,
    ProductKind,
    ProductMovementKind,
    SalesChannel,
    SourceType,
)


def _grams_text(value: Decimal) -> str:
    """Grams as stored (to the microgram), written with at least two decimals: "950.00", "0.004474"."""
    value = Decimal(value)
    cents = value.quantize(Decimal("0.01"))
    return format(cents if cents == value else value.normalize(), "f")


# Stored grams in JSON: nothing rounded away, no trailing zeros beyond the cents.
Grams = decimal_type(_grams_text)


class LocationOut(Schema):
    id: int
    name: str
    kind: choice(LocationKind)
    parent_id: int | None
    path: str

    @staticmethod
    def resolve_path(obj) -> str:
        return str(obj)


class FilamentOut(Schema):
    id: int
    brand: str
    material: str
    name: str
    colour_hex: str
    extra_colours: list[str]
    diameter_mm: ApiDecimal
    density_g_cm3: ApiDecimal
    net_weight_g: ApiDecimal
    spool_weight_g: ApiDecimal
    reorder_threshold_g: ApiDecimal


class FilamentStockOut(FilamentOut):
    stock_g: Grams


class SpoolOut(Schema):
    id: int
    code: str
    filament: FilamentOut
    location: LocationOut | None
    lot_number: str
    rfid_tag: str = Field(..., description="The id a printer reads from the spool's RFID tag; empty without one.")
    initial_grams: Grams
    remaining_grams: Grams
    opened_at: datetime | None
    archived_at: datetime | None


class MovementOut(Schema):
    id: int
    spool_id: int
    kind: choice(MovementKind)
    delta_grams: Grams
    reason: str
    source_type: choice(SourceType)
    source_id: str
    idempotency_key: str
    created_at: datetime


class ReceiveIn(Schema):
    filament_id: int
    grams: ApiDecimal = Field(..., description="Net filament on the new spool, in grams.")
    location_id: int | None = None
    lot_number: str = Field("", max_length=60)
    rfid_tag: str = Field("", max_length=200, description=(
        "The id a printer reads from the spool's RFID tag (a Bambu spool's tray UUID): 8 to 64 hex digits, "
        "dashes and spaces ignored; unique among spools in stock. A printer slot that reports it is fed from "
        "this spool."))


class UseIn(Schema):
    grams: ApiDecimal
    kind: choice(MovementKind, *CONSUMING_KINDS) = Field("used", description="What took the filament.")
    reason: str = Field("", max_length=255)
    source_id: str = Field("", max_length=100, description="Your id of the event, e.g. the print job.")


class WeighIn(Schema):
    gross_grams: ApiDecimal = Field(..., description="What the scale shows: filament plus the empty spool.")


class AdjustIn(Schema):
    remaining_grams: ApiDecimal = Field(..., description="The counted grams left on the spool (0 or more).")
    reason: str = Field(..., max_length=255, description="Why the stock is corrected, e.g. 'stocktaking'.")


class ProductStockIn(Schema):
    location_id: int
    kind: choice(ProductMovementKind, *BOOKED_PRODUCT_KINDS) = Field("received", description="adjusted sets the count.")
    quantity: int = Field(..., description="Units received, produced or returned; for adjusted the counted units.")
    reason: str = Field("", max_length=255)
    source_id: str = Field("", max_length=100, description="Your id of the event, e.g. the delivery note.")


class ProductMovementOut(Schema):
    id: int
    product_id: int
    location_id: int
    kind: choice(ProductMovementKind)
    delta_units: int
    reason: str
    source_type: choice(SourceType)
    source_id: str
    idempotency_key: str
    created_at: datetime


class SaleIn(Schema):
    location_id: int = Field(..., description="Where the sold units are taken from.")
    quantity: int
    unit_price: ApiDecimal
    currency: str = Field("EUR", pattern=r"^[A-Z]{3}$")
    channel: choice(SalesChannel)
    sold_on: date | None = Field(None, description="The day of the sale; today when left out.")


class SaleOut(Schema):
    id: int
    product_id: int
    movement_id: int
    sold_on: date
    channel: choice(SalesChannel)
    quantity: int
    unit_price: ApiDecimal
    currency: str


SALES_CHANNELS = choice(SalesChannel)
MAX_ID = 2**63 - 1


class SaleCreateIn(Schema):
    """One sale of a product, named by `product_id` or by `sku` (one of them)."""

    product_id: int | None = Field(None, ge=1, le=MAX_ID)
    sku: str | None = Field(None, max_length=64)
    channel: SALES_CHANNELS = Field(..., description="Where it sold; shop is the own online shop.")
    quantity: int = Field(..., description="Units sold, 1 to 100000.")
    unit_price: ApiDecimal = Field(..., description="What one unit sold for, VAT included.")
    currency: str = Field("EUR", pattern=r"^[A-Z]{3}$")
    sold_at: date | datetime | None = Field(None, description="The day (or moment) of the sale; today when left "
                                                              "out. A moment counts on its day in the lab's time zone.")
    reference: str = Field("", max_length=100, description="Your order, receipt or invoice number.")
    location_id: int | None = Field(None, ge=1, le=MAX_ID, description="Where the units are taken from; left out: "
                                                                        "the location holding most of them.")


class SaleReturnIn(Schema):
    quantity: int = Field(..., description="Units that came back, at most what the sale sold less earlier returns.")
    returned_on: date | None = Field(None, description="The day they came back; today when left out.")
    location_id: int | None = Field(None, ge=1, le=MAX_ID, description="Where they go; left out: where they were "
                                                                        "sold from.")


class SaleFilterIn(Schema):
    product_id: int | None = Field(None, ge=1, le=MAX_ID)
    sku: str = Field("", max_length=64)
    channel: SALES_CHANNELS | None = None
    since: date | None = Field(None, description="Sales on or after this day.")
    until: date | None = Field(None, description="Sales on or before this day.")
    reference: str = Field("", max_length=100)
    returns: bool | None = Field(None, description="true: only returns; false: no returns; left out: both.")


class SaleDetailOut(Schema):
    """A sale, or a return (negative `quantity`, `return_of_id` names the sale)."""

    id: int
    product_id: int
    sku: str = Field(..., alias="product.sku")
    location_id: int = Field(..., alias="movement.location_id")
    movement_id: int
    sold_on: date
    channel: SALES_CHANNELS
    quantity: int
    unit_price: ApiDecimal
    currency: str
    reference: str
    return_of_id: int | None
    created_at: datetime


class SlotIn(Schema):
    material: str = ""
    colour: str = ""
    grams: ApiDecimal | None = None
    brand: str = ""


class MatchIn(Schema):
    slots: list[SlotIn] = Field(..., max_length=32)
    tolerance: float | None = Field(None, gt=0, le=100, description="Largest CIEDE2000 difference accepted.")


class CandidateOut(Schema):
    filament: FilamentOut
    delta_e: float | None
    available_g: ApiDecimal
    spool_codes: list[str]


class SlotMatchOut(Schema):
    slot: int
    material: str
    colour: str | None
    needed_g: ApiDecimal | None
    available_g: ApiDecimal
    enough: bool
    note: str
    candidates: list[CandidateOut]


class ProductOut(Schema):
    id: int
    sku: str
    name: str
    kind: choice(ProductKind)
    variant_id: int | None
    units_in_stock: int = 0
    reorder_threshold_units: int
    sale_price: ApiDecimal | None = Field(None, description="What a unit sells for, VAT included; null when not "
                                                          "priced.")
    currency: str
