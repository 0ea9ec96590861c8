"""Production: the print queue, and the work that joins the other apps.

PrintJob is one queue item: a catalog version (and plate) printed `copies` times, one plate after the
other (`copies_done` counts the good ones). Each time it goes to a printer it gets a PrintAttempt
(linked to the printer's own PrinterJob), and each attempt's SlotAllocation rows say which spool fed
which filament slot and how many grams were planned and booked. Only `services` write these rows.

PrinterFileImport records one request to download a file from a printer's storage into the
catalog; `services.printer_file_import_request` writes it and a background task carries it out
(`services.printer_file_import_run`).
"""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Case, IntegerField, Value, When
from django.utils.translation import gettext_lazy as _

from fablab.choices import OrganizationKind
from fablab.models import TimeStampedModel
from production.choices import (
    PRIORITY_RANK,
    AttemptOutcome,
    EventTheme,
    ImportStatus,
    MarketEventStatus,
    PrintJobStatus,
    Priority,
    Purpose,
    SlicerUploadStatus,
    SpoolSource,
)

MAX_COPIES = 1000


class PrintJobQuerySet(models.QuerySet):
    def for_organization(self, organization) -> "PrintJobQuerySet":
        """What an organization's API keys see: its own jobs; the lab's keys also see the jobs staff queued."""
        if organization.kind == OrganizationKind.LAB:
            return self.filter(models.Q(organization=organization) | models.Q(organization__isnull=True))
        return self.filter(organization=organization)

    def with_rank(self) -> "PrintJobQuerySet":
        return self.annotate(priority_rank=Case(
            *(When(priority=priority, then=Value(rank)) for priority, rank in PRIORITY_RANK.items()),
            default=Value(len(PRIORITY_RANK)), output_field=IntegerField(),
        ))

    def in_queue_order(self) -> "PrintJobQuerySet":
        """Priority first, then the position staff set by hand, then age."""
        return self.with_rank().order_by("priority_rank", "position", "created_at", "id")


class CostBreakdown(models.Model):
    """What a print cost (production.costs): materials, energy, machine and labour, with the inputs used.

    An attempt's cost is computed when it ends; its job's cost is the sum of its attempts'.
    """

    cost_currency = models.CharField(_("currency"), max_length=3, blank=True, editable=False)
    cost_material = models.DecimalField(_("material cost"), max_digits=10, decimal_places=2, null=True,
                                        blank=True, editable=False)
    cost_energy = models.DecimalField(_("energy cost"), max_digits=10, decimal_places=2, null=True, blank=True,
                                      editable=False)
    cost_machine = models.DecimalField(_("machine cost"), max_digits=10, decimal_places=2, null=True, blank=True,
                                       editable=False)
    cost_labour = models.DecimalField(_("labour cost"), max_digits=10, decimal_places=2, null=True, blank=True,
                                      editable=False)
    cost_total = models.DecimalField(_("total cost"), max_digits=10, decimal_places=2, null=True, blank=True,
                                     editable=False)
    cost_inputs = models.JSONField(_("cost inputs"), default=dict, blank=True, editable=False)

    class Meta:
        abstract = True


class PrintJob(CostBreakdown, TimeStampedModel):
    """One item of the print queue: print plate `plate` of a catalog version `copies` times."""

    organization = models.ForeignKey(
        "fablab.Organization", verbose_name=_("organization"), null=True, blank=True, on_delete=models.PROTECT,
        related_name="print_jobs", help_text=_("The partner (or the lab's own system) that queued it through the "
                                                "API; empty for jobs staff queued."),
    )
    version = models.ForeignKey("catalog.VariantVersion", verbose_name=_("catalog version"),
                                on_delete=models.PROTECT, related_name="+")
    plate = models.PositiveSmallIntegerField(_("plate"), default=1, validators=[MinValueValidator(1)],
                                             help_text=_("The plate of a multi-plate 3MF; 1 for other files."))
    copies = models.PositiveIntegerField(_("copies"), default=1,
                                         validators=[MinValueValidator(1), MaxValueValidator(MAX_COPIES)],
                                         help_text=_("How many times the plate is printed."))
    copies_done = models.PositiveIntegerField(_("copies done"), default=0, editable=False,
                                              help_text=_("Plates printed well so far; the job is completed with "
                                                          "the last copy."))
    priority = models.CharField(_("priority"), max_length=8, choices=Priority.choices, default=Priority.NORMAL,
                                db_index=True)
    position = models.IntegerField(_("position"), default=0, db_index=True,
                                   help_text=_("Hand ordering within a priority: smaller goes first."))
    due_at = models.DateTimeField(_("due"), null=True, blank=True)
    purpose = models.CharField(_("purpose"), max_length=10, choices=Purpose.choices, default=Purpose.BUSINESS)
    reference = models.CharField(_("reference"), max_length=200, blank=True,
                                 help_text=_("A customer or order reference."))
    notes = models.TextField(_("notes"), blank=True, max_length=5000)
    queued_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("queued by"), null=True, blank=True,
                                  on_delete=models.SET_NULL, related_name="+")
    idempotency_key = models.CharField(_("idempotency key"), max_length=200, blank=True, editable=False)
    status = models.CharField(_("status"), max_length=10, choices=PrintJobStatus.choices,
                              default=PrintJobStatus.QUEUED, db_index=True)
    # Feasibility, computed when the job is queued and again when stock, printers or the queue change.
    feasible = models.BooleanField(_("feasible"), null=True, editable=False)
    feasibility_reasons = models.JSONField(_("why not"), default=list, blank=True, editable=False)
    feasibility_checked_at = models.DateTimeField(_("checked"), null=True, blank=True, editable=False)
    # Filled by dispatch and by the printer's report.
    printer = models.ForeignKey("printers.Printer", verbose_name=_("printer"), null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="+", editable=False)
    started_at = models.DateTimeField(_("started"), null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True, editable=False)
    unplanned = models.BooleanField(_("started at the printer"), default=False, editable=False,
                                    help_text=_("Not queued: adopted when a printer started its file by hand."))
    # The farm's plan for a waiting job (services.print_queue_replan); empty once it leaves the queue.
    planned_printer = models.ForeignKey("printers.Printer", verbose_name=_("planned printer"), null=True,
                                        blank=True, on_delete=models.SET_NULL, related_name="+", editable=False)
    planned_start = models.DateTimeField(_("planned start"), null=True, blank=True, editable=False)
    planned_finish = models.DateTimeField(_("planned finish"), null=True, blank=True, editable=False)

    objects = PrintJobQuerySet.as_manager()

    class Meta:
        ordering = ["position", "created_at", "id"]
        verbose_name = _("print job")
        verbose_name_plural = _("print queue")
        constraints = [
            models.UniqueConstraint(fields=["organization", "idempotency_key"],
                                    condition=~models.Q(idempotency_key=""), name="production_job_idempotent"),
            models.CheckConstraint(condition=models.Q(copies__gte=1, copies__lte=MAX_COPIES),
                                   name="production_job_copies_range"),
            models.CheckConstraint(condition=models.Q(plate__gte=1), name="production_job_plate_positive"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.version} ×{self.copies}"

    @property
    def copies_left(self) -> int:
        """The plates still to print well (at least one while the job waits)."""
        return max(0, self.copies - self.copies_done)


class PrintAttempt(CostBreakdown):
    """One try at a print job on one printer; a re-queued job gets a new attempt when it goes out again."""

    job = models.ForeignKey(PrintJob, verbose_name=_("print job"), on_delete=models.CASCADE,
                            related_name="attempts")
    number = models.PositiveIntegerField(_("attempt"))
    printer = models.ForeignKey("printers.Printer", verbose_name=_("printer"), null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="+")
    printer_job = models.ForeignKey("printers.PrinterJob", verbose_name=_("printer job"), null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=10, choices=AttemptOutcome.choices,
                               default=AttemptOutcome.RUNNING, db_index=True)
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    file_name = models.CharField(_("file on the printer"), max_length=255, blank=True,
                                 help_text=_("The name the file was sent under; the printer's job is matched by it."))
    booked_at = models.DateTimeField(_("filament booked"), null=True, blank=True)

    class Meta:
        ordering = ["job", "number"]
        verbose_name = _("print attempt")
        verbose_name_plural = _("print attempts")
        constraints = [
            models.UniqueConstraint(fields=["job", "number"], name="production_attempt_unique_number"),
            models.UniqueConstraint(fields=["printer_job"], condition=models.Q(printer_job__isnull=False),
                                    name="production_attempt_one_per_printer_job"),
        ]

    def __str__(self) -> str:
        return f"{self.job} attempt {self.number}"


class SlotAllocation(models.Model):
    """Which spool fed one filament slot of an attempt, with the grams planned and the grams booked."""

    attempt = models.ForeignKey(PrintAttempt, verbose_name=_("attempt"), on_delete=models.CASCADE,
                                related_name="slots")
    slot = models.PositiveSmallIntegerField(_("slot"), validators=[MinValueValidator(1)])
    spool = models.ForeignKey("inventory.Spool", verbose_name=_("spool"), null=True, blank=True,
                              on_delete=models.PROTECT, related_name="+")
    grams_planned = models.DecimalField(_("planned (g)"), max_digits=10, decimal_places=3,
                                        validators=[MinValueValidator(0)])
    grams_booked = models.DecimalField(_("booked (g)"), max_digits=10, decimal_places=3, null=True, blank=True)
    tray = models.IntegerField(_("printer slot"), null=True, blank=True,
                               help_text=_("The printer's slot that fed it (Bambu: AMS unit × 4 + tray, 254 the "
                                           "external spool); empty when unknown."))
    spool_source = models.CharField(_("spool from"), max_length=10, choices=SpoolSource.choices, blank=True)

    class Meta:
        ordering = ["attempt", "slot"]
        verbose_name = _("slot allocation")
        verbose_name_plural = _("slot allocations")
        constraints = [
            models.UniqueConstraint(fields=["attempt", "slot"], name="production_slot_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.attempt} slot {self.slot}"


class PrinterFileImport(models.Model):
    """One file on a printer's storage being downloaded into the catalog by a background task.

    Downloads from a printer can take minutes (PrusaLink sends a few hundred kB a second),
    longer than a web request may wait.
    """

    printer = models.ForeignKey("printers.Printer", verbose_name=_("printer"), on_delete=models.CASCADE,
                                related_name="file_imports")
    path = models.CharField(_("path on the printer"), max_length=512)
    variant = models.ForeignKey("catalog.ModelVariant", verbose_name=_("into variant"), null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="+",
                                help_text=_("Empty: a new model named after the file."))
    requested_by = models.ForeignKey("fablab.User", verbose_name=_("requested by"), null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(_("status"), max_length=12, choices=ImportStatus.choices, default=ImportStatus.QUEUED,
                              db_index=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    version = models.ForeignKey("catalog.VariantVersion", verbose_name=_("catalog version"), null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("requested"), auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("file download")
        verbose_name_plural = _("file downloads")

    def __str__(self) -> str:
        return f"{self.printer}: {self.path} ({self.status})"


def slicer_upload_path(instance: "SlicerUpload", filename: str) -> str:
    return f"production/{instance.storage_owner}/slicer-uploads/{instance.sha256}/{filename}"


class SlicerUpload(models.Model):
    """A file a slicer sent to fablab as if to an OctoPrint server ("send to printer").

    Its name or folder named a catalog variant (SLICER_UPLOAD_SKU_RULES): it went straight in as a new
    version (`version`) and the row records that. Otherwise it waits in the inbox, with its file, until
    staff file it into a variant. `print_requested`: the slicer asked to print it; the job is queued as
    soon as the file is in the catalog (`job`).
    """

    organization = models.ForeignKey("fablab.Organization", verbose_name=_("sent with a key of"),
                                      on_delete=models.PROTECT, related_name="+")
    original_name = models.CharField(_("file name"), max_length=255)
    folder = models.CharField(_("folder"), max_length=255, blank=True)
    size_bytes = models.PositiveBigIntegerField(_("size (bytes)"))
    sha256 = models.CharField(max_length=64, editable=False)
    file = models.FileField(_("file"), upload_to=slicer_upload_path, max_length=500, blank=True)
    status = models.CharField(_("status"), max_length=8, choices=SlicerUploadStatus.choices,
                              default=SlicerUploadStatus.INBOX, db_index=True)
    print_requested = models.BooleanField(_("print requested"), default=False)
    version = models.ForeignKey("catalog.VariantVersion", verbose_name=_("catalog version"), null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="+")
    job = models.ForeignKey(PrintJob, verbose_name=_("print job"), null=True, blank=True, on_delete=models.SET_NULL,
                            related_name="+")
    received_at = models.DateTimeField(_("received"), auto_now_add=True, db_index=True)
    filed_at = models.DateTimeField(_("filed"), null=True, blank=True)
    filed_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("filed by"), null=True, blank=True,
                                 on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = _("upload from a slicer")
        verbose_name_plural = _("uploads from slicers")

    def __str__(self) -> str:
        return f"{self.folder}/{self.original_name}" if self.folder else self.original_name

    @property
    def storage_owner(self) -> str:
        return f"org-{self.organization_id}"


class SpoolLoad(models.Model):
    """The spool staff loaded into one filament slot of a printer (an AMS tray or the external holder)."""

    printer = models.ForeignKey("printers.Printer", verbose_name=_("printer"), on_delete=models.CASCADE,
                                related_name="+")
    tray = models.IntegerField(_("printer slot"), validators=[MinValueValidator(0), MaxValueValidator(255)],
                               help_text=_("As the printer numbers it: Bambu AMS unit × 4 + tray (0–15), 254 the "
                                           "external spool; PrusaLink and single-extruder printers 0."))
    spool = models.ForeignKey("inventory.Spool", verbose_name=_("spool"), on_delete=models.PROTECT, related_name="+")
    loaded_at = models.DateTimeField(_("loaded"), auto_now=True)
    loaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("loaded by"), null=True, blank=True,
                                  on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["printer", "tray"]
        verbose_name = _("loaded spool")
        verbose_name_plural = _("loaded spools")
        constraints = [
            models.UniqueConstraint(fields=["printer", "tray"], name="production_spool_load_one_per_slot"),
            models.UniqueConstraint(fields=["spool"], name="production_spool_load_one_place"),
        ]

    def __str__(self) -> str:
        return f"{self.printer} slot {self.tray}: {self.spool}"


class UnknownPrint(models.Model):
    """A print a printer ran that matches neither a dispatched job nor a catalog file: shown to staff."""

    printer = models.ForeignKey("printers.Printer", verbose_name=_("printer"), on_delete=models.CASCADE,
                                related_name="+")
    printer_job = models.OneToOneField("printers.PrinterJob", verbose_name=_("printer job"), on_delete=models.CASCADE,
                                       related_name="+")
    file_name = models.CharField(_("file"), max_length=255, blank=True)
    outcome = models.CharField(_("outcome"), max_length=10, choices=AttemptOutcome.choices,
                               default=AttemptOutcome.RUNNING)
    seen_at = models.DateTimeField(_("seen"), auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-seen_at", "-id"]
        verbose_name = _("unknown print")
        verbose_name_plural = _("unknown prints")

    def __str__(self) -> str:
        return f"{self.printer}: {self.file_name or self.printer_job_id}"


class PrinterStation(models.Model):
    """Production's side of one printer: whether dispatch may send it jobs by itself, its plate, and what an
    hour on it costs."""

    printer = models.OneToOneField("printers.Printer", verbose_name=_("printer"), primary_key=True,
                                   on_delete=models.CASCADE, related_name="station")
    auto_dispatch = models.BooleanField(_("automatic dispatch"), default=False,
                                        help_text=_("Queued jobs are sent to it by themselves when it is free."))
    plate_clear = models.BooleanField(_("plate cleared"), default=True,
                                      help_text=_("False after a print ends, until an operator confirms the plate "
                                                  "is empty (or a job is started at the printer by hand)."))
    # What a print on it costs besides its material (production.costs); empty: the PRODUCTION_* setting.
    power_w = models.DecimalField(
        _("average power (W)"), max_digits=7, decimal_places=1, null=True, blank=True,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("20000"))],
        help_text=_("What the printer draws on average while printing. Empty: PRODUCTION_PRINTER_POWER_W."))
    purchase_price = models.DecimalField(
        _("purchase price"), max_digits=10, decimal_places=2, null=True, blank=True,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1000000"))],
        help_text=_("In PRODUCTION_CURRENCY. Empty: PRODUCTION_PRINTER_PRICE."))
    lifetime_hours = models.PositiveIntegerField(
        _("expected lifetime (hours)"), null=True, blank=True,
        validators=[MinValueValidator(100), MaxValueValidator(1000000)],
        help_text=_("Printing hours over which the purchase price is written off. Empty: "
                    "PRODUCTION_PRINTER_LIFETIME_HOURS."))
    maintenance_per_hour = models.DecimalField(
        _("maintenance per hour"), max_digits=8, decimal_places=4, null=True, blank=True,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1000"))],
        help_text=_("Nozzles, belts, plates and service per printing hour. Empty: "
                    "PRODUCTION_PRINTER_MAINTENANCE_PER_HOUR."))
    handling_minutes = models.DecimalField(
        _("handling per print (minutes)"), max_digits=6, decimal_places=1, null=True, blank=True,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1440"))],
        help_text=_("Staff time per print: starting it, clearing the plate, post-processing. Empty: "
                    "PRODUCTION_HANDLING_MINUTES."))
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("printer station")
        verbose_name_plural = _("printer stations")
        constraints = [
            models.CheckConstraint(condition=models.Q(lifetime_hours__isnull=True) | models.Q(lifetime_hours__gte=1),
                                   name="production_station_lifetime_positive"),
        ]

    def __str__(self) -> str:
        return str(self.printer)


class QueueRecheck(models.Model):
    """The one row that spaces out the background checks of the queue's feasibility after stock or printers
    change (services.print_jobs_recheck_request): at most one check waits at a time, and checks start at most
    once in PRODUCTION_RECHECK_SECONDS."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    queued_at = models.DateTimeField(_("check queued"), null=True, blank=True,
                                     help_text=_("A check is waiting to start; empty when none is."))
    started_at = models.DateTimeField(_("last check started"), null=True, blank=True)

    class Meta:
        verbose_name = _("queue recheck")
        verbose_name_plural = _("queue rechecks")

    def __str__(self) -> str:
        return f"queued {self.queued_at}, started {self.started_at}"


class QueueReplan(models.Model):
    """The one row that spaces out the background plans of the queue (services.print_queue_replan_request):
    at most one plan waits at a time, and plans start at most once in PRODUCTION_RECHECK_SECONDS."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    queued_at = models.DateTimeField(_("plan queued"), null=True, blank=True,
                                     help_text=_("A plan is waiting to start; empty when none is."))
    started_at = models.DateTimeField(_("last plan started"), null=True, blank=True)
    planned_at = models.DateTimeField(_("last plan stored"), null=True, blank=True)
    solver = models.CharField(_("solver"), max_length=20, blank=True)

    class Meta:
        verbose_name = _("queue plan")
        verbose_name_plural = _("queue plans")

    def __str__(self) -> str:
        return f"queued {self.queued_at}, started {self.started_at}, stored {self.planned_at}"


# --- market events (production.events) -------------------------------------------------------------------------

MAX_EVENT_UNITS = 10_000  # units of one product at one stall; more is a typing error
MAX_STALL_FEE = Decimal("99999999.99")


class MarketEvent(TimeStampedModel):
    """A market or fair the lab sells at: its dates, place, stall fee, themes, the products it takes (EventProduct)
    and its checklist (EventChecklistItem). planned → preparing → done; closing it records its sales."""

    name = models.CharField(_("name"), max_length=200)
    starts_on = models.DateField(_("first day"), db_index=True)
    ends_on = models.DateField(_("last day"))
    place = models.CharField(_("place"), max_length=200, blank=True)
    stall_fee = models.DecimalField(_("stall fee"), max_digits=10, decimal_places=2, default=Decimal("0"),
                                    validators=[MinValueValidator(Decimal("0")), MaxValueValidator(MAX_STALL_FEE)])
    currency = models.CharField(_("currency"), max_length=3, default="EUR",
                                validators=[RegexValidator(r"^[A-Z]{3}$",
                                                           _("Use a three-letter currency code such as EUR."))])
    themes = models.JSONField(_("themes"), default=list, blank=True,
                              help_text=_("What the market is about (Christmas, Easter, …): past events sharing a "
                                          "theme feed the recommendations."))
    status = models.CharField(_("status"), max_length=10, choices=MarketEventStatus.choices,
                              default=MarketEventStatus.PLANNED, db_index=True)
    notes = models.TextField(_("notes"), blank=True, max_length=5000)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True, editable=False)
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("closed by"), null=True, blank=True,
                                  on_delete=models.SET_NULL, related_name="+", editable=False)

    class Meta:
        ordering = ["-starts_on", "-id"]
        verbose_name = _("market event")
        verbose_name_plural = _("market events")
        constraints = [
            models.CheckConstraint(condition=models.Q(ends_on__gte=models.F("starts_on")),
                                   name="production_event_ends_after_start",
                                   violation_error_message=_("The last day cannot lie before the first.")),
            models.CheckConstraint(condition=models.Q(stall_fee__gte=0), name="production_event_fee_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.starts_on.isoformat()})" if self.starts_on else self.name

    def clean(self) -> None:
        themes = self.themes
        if not isinstance(themes, list) or not all(isinstance(theme, str) for theme in themes):
            raise ValidationError({"themes": _("Themes are a list of names.")})
        unknown = [theme for theme in themes if theme not in EventTheme.values]
        if unknown:
            raise ValidationError({"themes": _("Unknown theme %(theme)r; choose from %(choices)s.")
                                   % {"theme": unknown[0], "choices": ", ".join(EventTheme.values)}})
        if len(set(themes)) != len(themes):
            raise ValidationError({"themes": _("A theme is listed twice.")})
        if self.starts_on and self.ends_on and self.ends_on < self.starts_on:
            raise ValidationError({"ends_on": _("The last day cannot lie before the first.")})

    @property
    def days(self) -> int:
        return (self.ends_on - self.starts_on).days + 1


class EventProduct(models.Model):
    """A product an event takes: how many units it should have (target), how many went (taken) and came back
    (returned). Closing the event records taken − returned as a market sale (`sale`) at the product's price and
    keeps the unit cost of that day (`unit_cost`) for the margin."""

    event = models.ForeignKey(MarketEvent, verbose_name=_("event"), on_delete=models.CASCADE,
                              related_name="products")
    product = models.ForeignKey("inventory.Product", verbose_name=_("product"), on_delete=models.PROTECT,
                                related_name="+")
    target_units = models.PositiveIntegerField(_("target (units)"), default=0,
                                               validators=[MaxValueValidator(MAX_EVENT_UNITS)])
    taken_units = models.PositiveIntegerField(_("taken (units)"), null=True, blank=True,
                                              validators=[MaxValueValidator(MAX_EVENT_UNITS)],
                                              help_text=_("Units that went to the market."))
    returned_units = models.PositiveIntegerField(_("returned (units)"), null=True, blank=True,
                                                 validators=[MaxValueValidator(MAX_EVENT_UNITS)],
                                                 help_text=_("Units that came back unsold."))
    recommended_units = models.PositiveIntegerField(_("recommended (units)"), null=True, blank=True, editable=False)
    sale = models.OneToOneField("inventory.Sale", verbose_name=_("sale"), null=True, blank=True,
                                on_delete=models.PROTECT, related_name="+", editable=False)
    unit_cost = models.DecimalField(_("unit cost when closed"), max_digits=10, decimal_places=2, null=True,
                                    blank=True, editable=False)

    class Meta:
        ordering = ["event", "product__sku"]
        verbose_name = _("product at the event")
        verbose_name_plural = _("products at the event")
        constraints = [
            models.UniqueConstraint(fields=["event", "product"], name="production_event_product_unique",
                                    violation_error_message=_("The product is on the event already.")),
            models.CheckConstraint(
                condition=models.Q(returned_units__isnull=True) | models.Q(taken_units__gte=models.F("returned_units")),
                name="production_event_returned_not_above_taken",
                violation_error_message=_("More units cannot come back than were taken.")),
        ]

    def __str__(self) -> str:
        return f"{self.event}: {self.product}"

    def clean(self) -> None:
        if self.returned_units is not None and (self.taken_units is None or self.returned_units > self.taken_units):
            raise ValidationError({"returned_units": _("More units cannot come back (%(returned)s) than were taken "
                                                       "(%(taken)s).") % {"returned": self.returned_units,
                                                                          "taken": self.taken_units or 0}})

    @property
    def sold_units(self) -> int | None:
        if self.taken_units is None or self.returned_units is None:
            return None
        return self.taken_units - self.returned_units


class EventChecklistItem(models.Model):
    """Something to do before the event (book the stall, pack the card reader), who does it, and whether it is
    done."""

    event = models.ForeignKey(MarketEvent, verbose_name=_("event"), on_delete=models.CASCADE,
                              related_name="checklist")
    text = models.CharField(_("to do"), max_length=300)
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("who"), null=True, blank=True,
                                 on_delete=models.SET_NULL, related_name="+")
    done = models.BooleanField(_("done"), default=False)
    done_at = models.DateTimeField(_("done at"), null=True, blank=True, editable=False)
    position = models.PositiveIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["event", "position", "id"]
        verbose_name = _("checklist item")
        verbose_name_plural = _("checklist")

    def __str__(self) -> str:
        return self.text
