from datetime import date, datetime

from ninja import Field, Schema

from catalog.choices import ExtractionStatus
from catalog.schemas import VersionOut
from fablab.api_types import ApiDecimal, choice
from inventory.choices import ForecastMethod
from production.choices import ImportStatus, PrintJobStatus, Priority, Purpose


class PrinterFileOut(Schema):
    """A file on a printer's storage; `downloadable`: it can go into the catalog."""

    path: str = Field(alias="file.path")
    name: str = Field(alias="file.name")
    size_bytes: int | None = Field(alias="file.size_bytes")
    modified: datetime | None = Field(alias="file.modified")
    folder: str = Field(alias="file.folder")
    downloadable: bool = Field(alias="importable")


class PrinterFileImportIn(Schema):
    path: str
    variant_id: int | None = None


class PrinterFileImportOut(Schema):
    id: int
    printer_id: int
    path: str
    status: choice(ImportStatus)
    error: str
    created_at: datetime
    finished_at: datetime | None
    # Once succeeded: the catalog version made from the file, as the catalog API shows versions ...
    catalog_version: VersionOut | None = None
    # ... and its key figures at the top level.
    model_id: int | None = None
    variant_id: int | None = None
    version: int | None = None
    sliced_file_id: int | None = None
    sha256: str | None = None
    metadata_status: choice(ExtractionStatus) | None = None
    metadata: dict | None = None

    @staticmethod
    def resolve_catalog_version(obj):
        return obj.version if obj.version_id else None

    @staticmethod
    def resolve_model_id(obj) -> int | None:
        return obj.version.variant.model_id if obj.version_id else None

    @staticmethod
    def resolve_variant_id(obj) -> int | None:  # the variant that got the version, not the one asked for
        return obj.version.variant_id if obj.version_id else None

    @staticmethod
    def resolve_version(obj) -> int | None:
        return obj.version.number if obj.version_id else None

    @staticmethod
    def resolve_sliced_file_id(obj) -> int | None:
        return obj.version.sliced_file_id if obj.version_id else None

    @staticmethod
    def resolve_sha256(obj) -> str | None:
        return obj.version.sliced_file.sha256 if obj.version_id else None

    @staticmethod
    def resolve_metadata_status(obj) -> str | None:
        return obj.version.sliced_file.status if obj.version_id else None

    @staticmethod
    def resolve_metadata(obj) -> dict | None:
        return obj.version.sliced_file.metadata if obj.version_id else None


# --- the print queue -----------------------------------------------------------------------------

MAX_ID = 2**63 - 1


class PrintJobCreateIn(Schema):
    version_id: int = Field(..., ge=1, le=MAX_ID, description="The catalog version to print (its `id` in the "
                                                               "catalog API's version objects).")
    copies: int = Field(1, ge=1, le=1000, description="How many times the plate is printed.")
    priority: choice(Priority) = "normal"
    due: datetime | None = Field(None, description="When the prints are needed (ISO 8601 with a time zone).")
    purpose: choice(Purpose) = "business"
    reference: str = Field("", max_length=200, description="Your customer or order reference.")
    plate: int = Field(1, ge=1, le=1000, description="The plate of a multi-plate 3MF (1 for other files).")


class PrintJobFilterIn(Schema):
    status: choice(PrintJobStatus) | None = None
    version_id: int | None = Field(None, ge=1, le=MAX_ID)


class FeasibilityOut(Schema):
    ok: bool = Field(description="Whether the job can be printed now: filament in stock for every slot once the "
                                 "jobs ahead have theirs, and a printer that takes it. False while not checked.")
    reasons: list[str] = Field(description="Why not, as sentences (empty when ok).")


class CostOut(Schema):
    """The cost of the print so far: the sum over every attempt that ended (a failed one included), in
    `currency`, each part rounded half-up to cents and `total` their sum. Every value is null until the first
    attempt ends."""

    currency: str | None = None
    material: ApiDecimal | None = Field(None, description="Grams booked per slot × the spool's price per kg.")
    energy: ApiDecimal | None = Field(None, description="The printer's average power × hours × the tariff per kWh.")
    machine: ApiDecimal | None = Field(None, description="(Purchase price ÷ lifetime hours + maintenance per hour) × "
                                                      "hours.")
    labour: ApiDecimal | None = Field(None, description="Handling minutes × the hourly rate, per attempt.")
    total: ApiDecimal | None = None


class VariantCostOut(Schema):
    """What one unit of a catalog variant costs to print, and its margin against the product's sale price."""

    variant_id: int
    sku: str
    currency: str = Field(alias="unit_cost.currency")
    unit_cost: ApiDecimal | None = Field(alias="unit_cost.amount", description="The mean cost per good unit of the "
                                      "variant's recent completed prints (failed attempts included); null before "
                                      "the first.")
    recent_prints: int = Field(alias="unit_cost.jobs", description="How many completed print jobs the mean is "
                                                                   "over.")
    sale_price_gross: ApiDecimal | None = Field(alias="margin.sale_price_gross", description="The product's sale "
                                             "price, VAT included; null when it has none (or one in another "
                                             "currency).")
    sale_price_net: ApiDecimal | None = Field(alias="margin.sale_price_net")
    vat_percent: ApiDecimal = Field(alias="margin.vat_percent")
    margin: ApiDecimal | None = Field(alias="margin.margin", description="Net sale price − unit cost.")
    margin_percent: ApiDecimal | None = Field(alias="margin.margin_percent", description="The margin as a "
                                                                                     "percentage of the net price.")


class PrintJobOut(Schema):
    id: int
    status: choice(PrintJobStatus) = Field(description="queued → assigned → sent → printing → completed, failed or "
                                                       "cancelled.")
    version_id: int
    plate: int
    copies: int
    copies_done: int = Field(0, description="The plates printed well so far; the job is completed when it reaches "
                                            "`copies`. Between copies the job is queued again.")
    priority: choice(Priority)
    purpose: choice(Purpose)
    reference: str
    due: datetime | None = Field(None, alias="due_at")
    printer_id: int | None = Field(None, description="The printer it went to; null until it is dispatched.")
    planned_printer_id: int | None = Field(None, description="The printer the farm plan gives the waiting job; "
                                           "null when it has no plan (it left the queue, cannot print, or the "
                                           "plan has not run yet).")
    planned_start: datetime | None = Field(None, description="When the plan starts it.")
    planned_finish: datetime | None = Field(None, description="When the plan has it done; later than `due` means "
                                                              "late.")
    attempts: int = Field(0, description="How many times it went to a printer.")
    feasibility: FeasibilityOut
    filament_booked_g: list[float] = Field(default_factory=list, description="Grams booked per filament slot "
                                           "once the printer reports the end; empty until booking arrives.")
    cost: CostOut
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @staticmethod
    def resolve_attempts(obj) -> int:
        count = getattr(obj, "attempt_count", None)
        return count if count is not None else obj.attempts.count()

    @staticmethod
    def resolve_feasibility(obj) -> dict:
        from production.selectors import print_job_feasibility_texts

        return {"ok": bool(obj.feasible), "reasons": print_job_feasibility_texts(job=obj)}

    @staticmethod
    def resolve_filament_booked_g(obj) -> list[float]:
        from production.selectors import print_job_booked_grams

        return print_job_booked_grams(job=obj)

    @staticmethod
    def resolve_cost(obj) -> dict:
        return {"currency": obj.cost_currency or None, "material": obj.cost_material, "energy": obj.cost_energy,
                "machine": obj.cost_machine, "labour": obj.cost_labour, "total": obj.cost_total}


class VersionSuccessRateOut(Schema):
    """How often prints of a catalog version came out: every ended print of it that reached a printer."""

    version_id: int
    attempts: int = Field(description="Prints of the version that ended (completed, failed or cancelled); one the "
                                      "printer never started is not counted.")
    completed: int
    rate: float | None = Field(description="completed / attempts; null without attempts.")
    low: float | None = Field(description="Lower end of the Wilson score 95 % interval of the rate; null without "
                                          "attempts.")
    high: float | None = Field(description="Upper end of that interval; null without attempts.")

    @staticmethod
    def resolve_rate(obj) -> float | None:
        return None if obj.rate is None else round(obj.rate, 4)

    @staticmethod
    def resolve_low(obj) -> float | None:
        return None if obj.low is None else round(obj.low, 4)

    @staticmethod
    def resolve_high(obj) -> float | None:
        return None if obj.high is None else round(obj.high, 4)


class BooksQueryIn(Schema):
    """The period and format of an export for the accountant (production.books)."""

    start: date = Field(..., alias="from", description="The first day, yyyy-mm-dd (the lab's time zone).")
    end: date = Field(..., alias="to", description="The last day, yyyy-mm-dd, included.")
    format: str = Field("csv", max_length=20, description="csv (German CSV when the request's language is "
                        "German), csv-de or xlsx.")


class RestockOut(Schema):
    """One printed product's restock recommendation (production.restock): its forecast, the reorder point and
    the plates to print."""

    product_id: int = Field(alias="product.pk")
    sku: str = Field(alias="product.sku")
    name: str = Field(alias="product.name")
    variant_id: int = Field(alias="product.variant_id")
    version_id: int | None = Field(description="The catalog version a restock job prints; null when the variant "
                                               "has none.")
    method: choice(ForecastMethod) = Field(alias="recommendation.method",
                                           description="The forecast method (see the README's Restock section).")
    forecast_per_week: float = Field(description="Forecast units per week over the lead time and review period.")
    sigma_per_week: float = Field(description="Standard deviation of one week's forecast error (units).")
    weeks_of_history: int = Field(alias="recommendation.forecast.weeks_of_history")
    units_in_stock: int = Field(alias="recommendation.units_in_stock")
    units_queued: int = Field(alias="recommendation.units_queued",
                              description="Units still to print in jobs that wait or are on a printer.")
    queue_wait_hours: float
    print_hours: float
    lead_time_weeks: float
    service_level_percent: float
    review_weeks: float = Field(alias="recommendation.review_weeks")
    reorder_point: float
    order_up_to: float
    quantity: int = Field(alias="recommendation.quantity",
                          description="Units recommended to print now; 0 while stock and queued units are above "
                                      "the reorder point.")
    units_per_plate: int
    plates: int = Field(description="Copies of the plate to queue: ceil(quantity / units per plate).")

    @staticmethod
    def resolve_version_id(row) -> int | None:
        return row.version.pk if row.version is not None else None

    @staticmethod
    def resolve_forecast_per_week(row) -> float:
        return round(row.recommendation.per_week, 3)

    @staticmethod
    def resolve_sigma_per_week(row) -> float:
        return round(row.recommendation.sigma, 3)

    @staticmethod
    def resolve_queue_wait_hours(row) -> float:
        return round(row.queue_wait_hours, 2)

    @staticmethod
    def resolve_print_hours(row) -> float:
        return round(row.print_hours, 2)

    @staticmethod
    def resolve_lead_time_weeks(row) -> float:
        return round(row.recommendation.lead_time_weeks, 3)

    @staticmethod
    def resolve_service_level_percent(row) -> float:
        return round(row.recommendation.service_level * 100, 2)

    @staticmethod
    def resolve_reorder_point(row) -> float:
        return round(row.recommendation.reorder_point, 2)

    @staticmethod
    def resolve_order_up_to(row) -> float:
        return round(row.recommendation.order_up_to, 2)

