from django.db import models
from django.utils.translation import gettext_lazy as _


class LocationKind(models.TextChoices):
    SHELF = "shelf", _("Shelf")
    DRY_BOX = "dry_box", _("Dry box")
    AMS_SLOT = "ams_slot", _("Printer AMS slot")
    PRINTER = "printer", _("Printer")
    OTHER = "other", _("Other")


class MovementKind(models.TextChoices):
    RECEIVED = "received", _("Received")
    USED = "used", _("Used by a print")
    FAILED_PRINT = "failed_print", _("Used by a failed print")
    WEIGHED = "weighed", _("Weighed correction")
    WASTE = "waste", _("Waste")
    MOVED = "moved", _("Moved")
    ADJUSTED = "adjusted", _("Adjusted")


class SourceType(models.TextChoices):
    USER = "user", _("A person")
    PRINT_JOB = "print_job", _("A print job")
    IMPORT = "import", _("An import")
    API = "api", _("The API")
    SPOOLMAN = "spoolman", _("A Spoolman client")


# Kinds that take filament off a spool (their delta is negative).
CONSUMING_KINDS = frozenset({MovementKind.USED, MovementKind.FAILED_PRINT, MovementKind.WASTE})

MOVEMENT_KIND_COLORS = {
    MovementKind.RECEIVED: "success",
    MovementKind.USED: "info",
    MovementKind.FAILED_PRINT: "warning",
    MovementKind.WEIGHED: "primary",
    MovementKind.WASTE: "danger",
    MovementKind.MOVED: "info",
    MovementKind.ADJUSTED: "primary",
}


class ProductKind(models.TextChoices):
    PRINTED = "printed", _("Printed here")
    BOUGHT = "bought", _("Bought in")


class ProductMovementKind(models.TextChoices):
    PRODUCED = "produced", _("Produced")
    RECEIVED = "received", _("Received")
    SOLD = "sold", _("Sold")
    RETURNED = "returned", _("Returned")
    ADJUSTED = "adjusted", _("Adjusted")
    MOVED_OUT = "moved_out", _("Moved out")
    MOVED_IN = "moved_in", _("Moved in")


# What staff and the lab's systems book by hand; sales are recorded as sales, transfers come in pairs.
BOOKED_PRODUCT_KINDS = (
    ProductMovementKind.RECEIVED, ProductMovementKind.PRODUCED, ProductMovementKind.RETURNED,
    ProductMovementKind.ADJUSTED,
)


class SalesChannel(models.TextChoices):
    SHOP = "shop", _("Own shop")
    MARKET = "market", _("Market or fair")
    ETSY = "etsy", "Etsy"
    EBAY = "ebay", "eBay"
    AMAZON = "amazon", "Amazon"
    WHOLESALE = "wholesale", _("Wholesale")
    OTHER = "other", _("Other")


class AlertItem(models.TextChoices):
    FILAMENT = "filament", _("Filament")
    PRODUCT = "product", _("Product")


class ForecastMethod(models.TextChoices):
    """How inventory.forecasting predicted a product's weekly demand (see its rule for choosing)."""

    NONE = "none", _("No sales")
    SES = "ses", _("Exponential smoothing")
    HOLT = "holt", _("Holt (trend)")
    HOLT_WINTERS = "holt_winters", _("Holt-Winters (trend and season)")
    TSB = "tsb", _("TSB (sporadic demand)")
