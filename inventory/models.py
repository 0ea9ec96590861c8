"""Filament stock kept as a ledger: spools change only through movements.

A spool's `remaining_grams` is a cached figure that services keep equal to
`initial_grams + sum(movement.delta_grams)` in the same transaction as each
movement, under a row lock. The movements are append-only.

Grams are stored to the microgram (six decimals): a Klipper host reports a few
millimetres of filament (a few milligrams) many times a minute, and rounding each
report to a coarser unit would lose or invent real stock. Screens, labels and
messages round for display (see `grams_display`); the ledger never does.
"""

from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from fablab.models import TimeStampedModel
from inventory.choices import (
    AlertItem,
    LocationKind,
    MovementKind,
    ProductKind,
    ProductMovementKind,
    SalesChannel,
    SourceType,
)

HEX_COLOUR = RegexValidator(r"^#[0-9A-F]{6}$", _("A colour is written as #RRGGBB."))
RFID_TAG_MAX_LENGTH = 64
# Printers report a tray without a tag as all zeros: that is no spool's tag.
RFID_TAG = RegexValidator(r"^(?!0+$)[0-9A-F]{8,64}$",
                          _("An RFID tag is 8 to 64 hexadecimal digits (0-9, A-F), not all zeros."))
CURRENCY = RegexValidator(r"^[A-Z]{3}$", _("Use a three-letter currency code such as EUR."))

# Every stored quantity of filament: up to 999 999.999999 g, to the microgram.
GRAM_DIGITS, GRAM_PLACES = 12, 6
GRAM_QUANTUM = Decimal(1).scaleb(-GRAM_PLACES)


def grams_display(value, places: int = 2) -> Decimal:
    """A stored amount of grams rounded for people (screens, labels, messages): 0.01 g unless told."""
    return Decimal(str(value or 0)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


class Location(TimeStampedModel):
    """Where stock sits: a shelf, a dry box, a printer's AMS slot. Locations nest."""

    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=16, choices=LocationKind.choices, default=LocationKind.SHELF)
    parent = models.ForeignKey(
        "self", verbose_name=_("inside"), null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("location")
        verbose_name_plural = _("locations")
        constraints = [
            models.UniqueConstraint(fields=["parent", "name"], name="inventory_location_unique_name_in_parent"),
        ]

    def __str__(self) -> str:
        return " › ".join(location.name for location in self.path())

    def clean(self) -> None:
        if self.parent_id is not None and self.pk is not None and any(
            node.pk == self.pk for node in self.parent.path()
        ):
            raise ValidationError({"parent": _("A location cannot lie inside itself.")})

    def path(self) -> list["Location"]:
        chain, node, seen = [], self, set()
        while node is not None and node.pk not in seen:
            seen.add(node.pk)
            chain.append(node)
            node = node.parent
        return list(reversed(chain))


class Vendor(TimeStampedModel):
    """A filament maker as Spoolman clients see it.

    `Filament.brand` stays the filament's own field; a filament's `vendor` is the row Spoolman
    clients see. The services link a filament to the (oldest) vendor of its brand's name, make
    one the first time a brand is used, and rename the brand on a vendor's filaments when the
    vendor is renamed. Names need not be unique (Spoolman's need not be); deleting a vendor
    leaves its filaments without one, their brand kept.
    """

    name = models.CharField(_("name"), max_length=80, blank=True)
    comment = models.CharField(_("comment"), max_length=1024, blank=True)
    empty_spool_weight_g = models.DecimalField(
        _("empty spool (g)"), max_digits=7, decimal_places=1, null=True, blank=True,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("5000"))],
    )
    external_id = models.CharField(_("external id"), max_length=256, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("vendor")
        verbose_name_plural = _("vendors")

    def __str__(self) -> str:
        return self.name


class SpoolmanExtra(models.Model):
    """A Spoolman client's extra field on a vendor, filament or spool: a key and its JSON-encoded value."""

    resource = models.CharField(_("resource"), max_length=10,
                                choices=[("vendor", _("vendor")), ("filament", _("filament")), ("spool", _("spool"))])
    object_id = models.PositiveIntegerField(_("id"))
    key = models.CharField(_("key"), max_length=64)
    value = models.TextField(_("value (JSON)"))

    class Meta:
        ordering = ["resource", "object_id", "key"]
        verbose_name = _("Spoolman extra field")
        verbose_name_plural = _("Spoolman extra fields")
        constraints = [
            models.UniqueConstraint(fields=["resource", "object_id", "key"], name="inventory_spoolmanextra_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.resource} {self.object_id} {self.key}"


class Filament(TimeStampedModel):
    """A filament product: brand, material, colour and what a spool of it weighs and costs."""

    # Brand, material and name may be blank only for filaments registered by a Spoolman client
    # (Spoolman asks for none of them); the admin keeps requiring them.
    brand = models.CharField(_("brand"), max_length=80, blank=True)
    vendor = models.ForeignKey(Vendor, verbose_name=_("vendor"), null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="filaments")
    material = models.CharField(_("material"), max_length=30, blank=True, help_text=_("PLA, PETG, ASA, TPU, …"))
    name = models.CharField(_("name"), max_length=120, blank=True,
                            help_text=_("The maker's colour name, e.g. 'Galaxy Black'."))
    article_number = models.CharField(_("article number"), max_length=64, blank=True)
    comment = models.CharField(_("comment"), max_length=1024, blank=True)
    external_id = models.CharField(_("external id"), max_length=256, blank=True)
    settings_extruder_temp = models.PositiveSmallIntegerField(_("nozzle temperature (°C)"), null=True, blank=True)
    settings_bed_temp = models.PositiveSmallIntegerField(_("bed temperature (°C)"), null=True, blank=True)
    colour_hex = models.CharField(_("colour"), max_length=7, validators=[HEX_COLOUR])
    extra_colours = models.JSONField(
        _("further colours"), default=list, blank=True,
        help_text=_("For multicolour or gradient filament: the other colours as #RRGGBB."),
    )
    # What Spoolman clients keep besides the colours: the opacity of a single colour (two hex digits)
    # and how several colours run (coaxial or longitudinal).
    colour_alpha = models.CharField(_("colour opacity"), max_length=2, blank=True,
                                    validators=[RegexValidator(r"^[0-9A-F]{2}$")])
    multi_colour_direction = models.CharField(_("direction of the colours"), max_length=12, blank=True,
                                              choices=[("coaxial", _("coaxial")),
                                                       ("longitudinal", _("longitudinal"))])
    diameter_mm = models.DecimalField(
        _("diameter (mm)"), max_digits=4, decimal_places=2, default=Decimal("1.75"),
        validators=[MinValueValidator(Decimal("1.0")), MaxValueValidator(Decimal("3.5"))],
    )
    density_g_cm3 = models.DecimalField(
        _("density (g/cm³)"), max_digits=5, decimal_places=3, default=Decimal("1.240"),
        validators=[MinValueValidator(Decimal("0.5")), MaxValueValidator(Decimal("3.0"))],
    )
    net_weight_g = models.DecimalField(
        _("net filament per spool (g)"), max_digits=8, decimal_places=1, default=Decimal("1000"),
        validators=[MinValueValidator(Decimal("1")), MaxValueValidator(Decimal("50000"))],
    )
    spool_weight_g = models.DecimalField(
        _("empty spool (g)"), max_digits=7, decimal_places=1, default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("5000"))],
        help_text=_("What the empty spool weighs; used when a spool is weighed on a scale."),
    )
    cost_per_kg = models.DecimalField(
        _("cost per kg"), max_digits=8, decimal_places=2, default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    currency = models.CharField(_("currency"), max_length=3, default="EUR", validators=[CURRENCY])
    supplier = models.CharField(_("supplier"), max_length=120, blank=True)
    purchase_url = models.URLField(_("purchase link"), blank=True)
    reorder_threshold_g = models.DecimalField(
        _("reorder below (g)"), max_digits=9, decimal_places=1, default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    lead_time_days = models.PositiveIntegerField(_("lead time (days)"), default=7)
    retired_at = models.DateTimeField(
        _("deleted by a Spoolman client"), null=True, blank=True, editable=False,
        help_text=_("Spoolman clients no longer see it; its spools and their ledger stay."),
    )

    class Meta:
        ordering = ["brand", "material", "name"]
        verbose_name = _("filament")
        verbose_name_plural = _("filaments")

    def __str__(self) -> str:
        return f"{self.brand} {self.material} {self.name}"

    def clean(self) -> None:
        colours = self.extra_colours if isinstance(self.extra_colours, list) else [self.extra_colours]
        for colour in colours:
            if not isinstance(colour, str) or not HEX_COLOUR.regex.search(colour):
                raise ValidationError(
                    {"extra_colours": _("Further colour %(colour)r is not #RRGGBB.") % {"colour": colour}}
                )

    @property
    def colours(self) -> list[str]:
        return [self.colour_hex, *self.extra_colours]


class Spool(TimeStampedModel):
    filament = models.ForeignKey(Filament, verbose_name=_("filament"), on_delete=models.PROTECT, related_name="spools")
    code = models.CharField(_("label code"), max_length=12, unique=True, editable=False,
                            help_text=_("Printed on the spool's label; scan it in the admin search."))
    location = models.ForeignKey(
        Location, verbose_name=_("location"), null=True, blank=True, on_delete=models.PROTECT, related_name="spools"
    )
    lot_number = models.CharField(_("lot"), max_length=60, blank=True)
    comment = models.CharField(_("comment"), max_length=1024, blank=True)
    rfid_tag = models.CharField(
        _("RFID tag"), max_length=RFID_TAG_MAX_LENGTH, blank=True, default="", validators=[RFID_TAG],
        help_text=_("The id a printer reads from the spool's RFID tag (a Bambu spool's tray UUID, 32 hex "
                    "digits): a printer slot that reports it is fed from this spool."),
    )
    initial_grams = models.DecimalField(
        _("filament when received (g)"), max_digits=GRAM_DIGITS, decimal_places=GRAM_PLACES,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("50000"))],
    )
    remaining_grams = models.DecimalField(_("remaining (g)"), max_digits=GRAM_DIGITS, decimal_places=GRAM_PLACES,
                                          editable=False)
    opened_at = models.DateTimeField(_("opened"), null=True, blank=True)
    archived_at = models.DateTimeField(_("archived"), null=True, blank=True)
    retired_at = models.DateTimeField(
        _("deleted by a Spoolman client"), null=True, blank=True, editable=False,
        help_text=_("Archived and no longer shown to Spoolman clients; the spool and its ledger stay."),
    )

    class Meta:
        ordering = ["filament", "code"]
        verbose_name = _("spool")
        verbose_name_plural = _("spools")
        constraints = [
            models.CheckConstraint(condition=models.Q(initial_grams__gte=0),
                                   name="inventory_spool_initial_not_negative"),
            # A tag names one spool in stock; an archived (empty) spool's tag may come back on a refill.
            models.UniqueConstraint(
                fields=["rfid_tag"], condition=models.Q(archived_at__isnull=True) & ~models.Q(rfid_tag=""),
                name="inventory_spool_rfid_tag_unique_in_stock",
                violation_error_message=_("Another spool in stock already has this RFID tag."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} · {self.filament}"


class LedgerEntry(models.Model):
    """What every stock change records besides its amount: why, from where, once, by whom, when."""

    reason = models.CharField(_("reason"), max_length=255, blank=True)
    source_type = models.CharField(_("source"), max_length=16, choices=SourceType.choices)
    source_id = models.CharField(_("source id"), max_length=100, blank=True)
    idempotency_key = models.CharField(
        _("idempotency key"), max_length=200, unique=True,
        help_text=_("Unique per source event: the same event applied twice is recorded once."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("by"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("at"), auto_now_add=True, db_index=True)

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]


class Movement(LedgerEntry):
    """One change of a spool's stock. Append-only: corrections are new movements."""

    spool = models.ForeignKey(Spool, verbose_name=_("spool"), on_delete=models.PROTECT, related_name="movements")
    kind = models.CharField(_("kind"), max_length=16, choices=MovementKind.choices)
    delta_grams = models.DecimalField(_("change (g)"), max_digits=GRAM_DIGITS, decimal_places=GRAM_PLACES)
    from_location = models.ForeignKey(
        Location, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("from")
    )
    to_location = models.ForeignKey(
        Location, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("to")
    )

    class Meta(LedgerEntry.Meta):
        verbose_name = _("stock movement")
        verbose_name_plural = _("stock movements")
        indexes = [models.Index(fields=["spool", "created_at"])]

    def __str__(self) -> str:
        return f"{self.spool.code} {grams_display(self.delta_grams):+} g ({self.get_kind_display()})"


class Product(TimeStampedModel):
    """A finished item kept in stock: a printed catalog variant or a bought-in part."""

    sku = models.CharField(
        _("SKU"), max_length=64, unique=True,
        validators=[RegexValidator(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", _("Letters, digits, dot, dash, underscore."))],
    )
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=10, choices=ProductKind.choices, default=ProductKind.PRINTED)
    variant = models.ForeignKey(
        "catalog.ModelVariant", verbose_name=_("catalog variant"), null=True, blank=True, on_delete=models.PROTECT,
        related_name="products",
    )
    unit_cost = models.DecimalField(_("unit cost"), max_digits=10, decimal_places=2, default=Decimal("0"),
                                    validators=[MinValueValidator(Decimal("0"))],
                                    help_text=_("Printed products: the mean cost per unit of the variant's recent "
                                                "prints, updated after each completed print."))
    sale_price = models.DecimalField(_("sale price (gross)"), max_digits=10, decimal_places=2, null=True, blank=True,
                                     validators=[MinValueValidator(Decimal("0"))],
                                     help_text=_("What a unit sells for, VAT included, in the product's currency. "
                                                 "Empty: not for sale or not priced yet."))
    currency = models.CharField(_("currency"), max_length=3, default="EUR", validators=[CURRENCY])
    supplier = models.CharField(_("supplier"), max_length=120, blank=True)
    purchase_url = models.URLField(_("purchase link"), blank=True)
    reorder_threshold_units = models.PositiveIntegerField(_("reorder below (units)"), default=0)
    lead_time_days = models.PositiveIntegerField(_("lead time (days)"), default=7)

    class Meta:
        ordering = ["sku"]
        verbose_name = _("product")
        verbose_name_plural = _("products")
        constraints = [
            # Printed products are catalog variants; bought-in items are not.
            models.CheckConstraint(
                condition=(models.Q(kind="printed", variant__isnull=False)
                           | models.Q(kind="bought", variant__isnull=True)),
                name="inventory_product_printed_has_variant",
                violation_error_message=_("A printed product needs its catalog variant; a bought-in item has none."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sku} · {self.name}"


class ProductStock(models.Model):
    """Units of a product at one location; changed only with a ProductMovement."""

    product = models.ForeignKey(Product, verbose_name=_("product"), on_delete=models.PROTECT, related_name="stock")
    location = models.ForeignKey(Location, verbose_name=_("location"), on_delete=models.PROTECT, related_name="+")
    quantity = models.IntegerField(_("units"), default=0, editable=False)

    class Meta:
        ordering = ["product", "location"]
        verbose_name = _("product stock")
        verbose_name_plural = _("product stock")
        constraints = [
            models.UniqueConstraint(fields=["product", "location"], name="inventory_productstock_unique"),
            models.CheckConstraint(condition=models.Q(quantity__gte=0), name="inventory_productstock_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.product.sku} @ {self.location}: {self.quantity}"


class ProductMovement(LedgerEntry):
    """One change of a product's stock at a location. Append-only."""

    product = models.ForeignKey(Product, verbose_name=_("product"), on_delete=models.PROTECT,
                                related_name="movements")
    location = models.ForeignKey(Location, verbose_name=_("location"), on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(_("kind"), max_length=12, choices=ProductMovementKind.choices)
    delta_units = models.IntegerField(_("change (units)"))

    class Meta(LedgerEntry.Meta):
        verbose_name = _("product movement")
        verbose_name_plural = _("product movements")

    def __str__(self) -> str:
        return f"{self.product.sku} {self.delta_units:+} ({self.get_kind_display()})"


class Sale(models.Model):
    """A sale of units of a product, or a return of units of an earlier sale; sales velocity is computed from them.

    A sale has a positive quantity and takes its units out of stock with a 'sold' movement; a return has a
    negative quantity, names the sale it returns (`return_of`) and puts its units back with a 'returned'
    movement. So the units sold over any period are the sum of `quantity`, returns included, and every row
    has its one movement in the product ledger.
    """

    product = models.ForeignKey(Product, verbose_name=_("product"), on_delete=models.PROTECT, related_name="sales")
    sold_on = models.DateField(_("date"), db_index=True)
    channel = models.CharField(_("channel"), max_length=12, choices=SalesChannel.choices)
    quantity = models.IntegerField(_("units"), help_text=_("Negative for a return."))
    unit_price = models.DecimalField(_("unit price"), max_digits=10, decimal_places=2,
                                     validators=[MinValueValidator(Decimal("0"))])
    currency = models.CharField(_("currency"), max_length=3, default="EUR", validators=[CURRENCY])
    reference = models.CharField(_("reference"), max_length=100, blank=True, db_index=True,
                                 help_text=_("The shop's order number, a receipt or invoice number."))
    return_of = models.ForeignKey("self", verbose_name=_("return of"), null=True, blank=True,
                                  on_delete=models.PROTECT, related_name="returns")
    movement = models.OneToOneField(ProductMovement, on_delete=models.PROTECT, related_name="sale",
                                    verbose_name=_("stock movement"))
    created_at = models.DateTimeField(_("recorded"), auto_now_add=True)

    class Meta:
        ordering = ["-sold_on", "-id"]
        verbose_name = _("sale")
        verbose_name_plural = _("sales")
        indexes = [models.Index(fields=["product", "sold_on"])]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(quantity__gt=0, return_of__isnull=True)
                           | models.Q(quantity__lt=0, return_of__isnull=False)),
                name="inventory_sale_return_is_negative_and_linked",
                violation_error_message=_("A sale has units; a return has negative units and names its sale."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sold_on} {self.product.sku} ×{self.quantity}"

    @property
    def is_return(self) -> bool:
        return self.return_of_id is not None

    @property
    def total(self) -> Decimal:
        return self.quantity * self.unit_price


class StockAlert(models.Model):
    """A filament or product fell below its reorder level. Raised once per crossing."""

    item_type = models.CharField(_("item"), max_length=10, choices=AlertItem.choices)
    filament = models.ForeignKey(Filament, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    product = models.ForeignKey(Product, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    level = models.DecimalField(_("stock when raised"), max_digits=12, decimal_places=2)
    threshold = models.DecimalField(_("reorder level"), max_digits=12, decimal_places=2)
    raised_at = models.DateTimeField(_("raised"), auto_now_add=True)
    cleared_at = models.DateTimeField(_("cleared"), null=True, blank=True)
    notified_at = models.DateTimeField(_("e-mailed"), null=True, blank=True)

    class Meta:
        ordering = ["-raised_at"]
        verbose_name = _("stock alert")
        verbose_name_plural = _("stock alerts")
        constraints = [
            models.UniqueConstraint(fields=["filament"], condition=models.Q(cleared_at__isnull=True),
                                    name="inventory_alert_one_open_per_filament"),
            models.UniqueConstraint(fields=["product"], condition=models.Q(cleared_at__isnull=True),
                                    name="inventory_alert_one_open_per_product"),
        ]

    def __str__(self) -> str:
        return f"{self.filament or self.product}: {self.level} < {self.threshold}"
