"""The printer fleet: printers, their live state, state history, telemetry and jobs.

Printer ─1:1─ PrinterLiveState (the current normalised state, written only by
`services.printer_apply_state`), ─1:n─ StateTransition, TelemetrySample, PrinterJob.
Credentials (Bambu access code, PrusaLink password) are stored as Fernet ciphertext
only; `services.printer_set_credentials` / `printer_get_credentials` are the only way in and out.
"""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from fablab.models import TimeStampedModel
from printers.choices import AuthMethod, CommandAction, CommandStatus, JobOutcome, PrinterState
from printers.drivers.registry import driver_choices


class Printer(TimeStampedModel):
    name = models.CharField(_("name"), max_length=100, unique=True)
    # One of the registered drivers (printers.drivers.registry): a new brand needs no migration.
    driver = models.CharField(_("driver"), max_length=16, choices=driver_choices)
    model = models.CharField(_("model"), max_length=60, blank=True, help_text=_("e.g. P1S, A1, Core One, MK4S"))
    serial = models.CharField(_("serial number"), max_length=64, blank=True)
    host = models.CharField(_("host"), max_length=255, help_text=_("IP address or host name on the lab network."))
    port = models.PositiveIntegerField(
        _("port"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(65535)],
        help_text=_("Empty: the driver's default (8883 for Bambu MQTT, 80 for PrusaLink)."),
    )
    files_port = models.PositiveIntegerField(
        _("file transfer port"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(65535)],
        help_text=_("Bambu only: the printer's FTPS port. Empty: 990, as every Bambu printer uses."),
    )
    auth_method = models.CharField(
        _("authentication"), max_length=16, choices=AuthMethod.choices, default=AuthMethod.DIGEST,
        help_text=_("PrusaLink only: digest with the user 'maker' and the password, or the X-Api-Key header with "
                    "the API key; the printer shows both under Settings → Network → PrusaLink."),
    )
    credentials_ciphertext = models.BinaryField(_("encrypted credentials"), blank=True, default=b"", editable=False)
    nozzle_diameter_mm = models.DecimalField(
        _("nozzle diameter (mm)"), max_digits=4, decimal_places=2, default="0.40",
        validators=[MinValueValidator(0.1), MaxValueValidator(2)],
    )
    bed_x_mm = models.PositiveIntegerField(_("bed size X (mm)"), default=250)
    bed_y_mm = models.PositiveIntegerField(_("bed size Y (mm)"), default=250)
    bed_z_mm = models.PositiveIntegerField(_("build height Z (mm)"), default=250)
    is_active = models.BooleanField(_("active"), default=True, help_text=_("Inactive printers are not polled."))
    location = models.CharField(pgettext_lazy("where a printer stands", "location"), max_length=200, blank=True)
    shared_with_partners = models.BooleanField(
        _("shared with partners"), default=False,
        help_text=_("Partners can read its state and jobs through the API (never its address or credentials)."),
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("printer")
        verbose_name_plural = _("printers")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(bed_x_mm__gt=0, bed_y_mm__gt=0, bed_z_mm__gt=0), name="printers_printer_bed_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        # Never the credentials, not even their ciphertext.
        return f"<Printer {self.pk} {self.name!r} {self.driver} {self.host}>"

    @property
    def has_credentials(self) -> bool:
        return bool(self.credentials_ciphertext)

    @property
    def effective_port(self) -> int | None:
        """The port set here, else the driver's default (None for a printer of an unknown driver)."""
        if self.port:
            return self.port
        from printers.drivers import registry

        driver = registry.find(self.driver)
        return driver.default_port if driver is not None else None


class PrinterLiveState(models.Model):
    """The current normalised state of one printer; exactly one row per printer."""

    printer = models.OneToOneField(
        Printer, verbose_name=_("printer"), primary_key=True, on_delete=models.CASCADE, related_name="live"
    )
    state = models.CharField(
        _("state"), max_length=20, choices=PrinterState.choices, default=PrinterState.OFFLINE, db_index=True
    )
    raw_state = models.CharField(_("state reported by the printer"), max_length=40, blank=True)
    online = models.BooleanField(_("online"), default=False)
    progress_percent = models.FloatField(_("progress (%)"), null=True, blank=True)
    remaining_seconds = models.PositiveIntegerField(_("remaining (s)"), null=True, blank=True)
    layer = models.PositiveIntegerField(_("layer"), null=True, blank=True)
    total_layers = models.PositiveIntegerField(_("total layers"), null=True, blank=True)
    nozzle_temp_c = models.FloatField(_("nozzle (°C)"), null=True, blank=True)
    nozzle_target_c = models.FloatField(_("nozzle target (°C)"), null=True, blank=True)
    bed_temp_c = models.FloatField(_("bed (°C)"), null=True, blank=True)
    bed_target_c = models.FloatField(_("bed target (°C)"), null=True, blank=True)
    chamber_temp_c = models.FloatField(_("chamber (°C)"), null=True, blank=True)
    chamber_target_c = models.FloatField(_("chamber target (°C)"), null=True, blank=True)
    current_file = models.CharField(_("current file"), max_length=255, blank=True)
    job_key = models.CharField(_("job key"), max_length=255, blank=True,
                               help_text=_("The printer's id of the current job, when it gives one."))
    filament_slots = models.JSONField(_("filament slots"), default=list, blank=True)
    nozzle_type = models.CharField(
        _("nozzle type"), max_length=40, blank=True,
        help_text=_("As the printer reports it, e.g. hardened_steel or stainless_steel; empty when it does not say. "
                    "Carbon- and glass-fibre filament needs a hardened nozzle."),
    )
    nozzle_diameter_mm = models.FloatField(_("reported nozzle diameter (mm)"), null=True, blank=True)
    ams_units = models.JSONField(
        _("AMS units"), default=list, blank=True,
        help_text=_("Per AMS unit: its humidity level (1 dry … 5 wet, as Bambu Studio shows it), relative "
                    "humidity, temperature and whether it is wet."),
    )
    errors = models.JSONField(_("errors"), default=list, blank=True)
    last_report_at = models.DateTimeField(_("last report"), null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(_("consecutive failures"), default=0)
    last_error = models.CharField(_("last connection error"), max_length=500, blank=True)
    last_sample_at = models.DateTimeField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("live state")
        verbose_name_plural = _("live states")

    def __str__(self) -> str:
        return f"{self.printer}: {self.get_state_display()}"


class StateTransition(models.Model):
    printer = models.ForeignKey(Printer, verbose_name=_("printer"), on_delete=models.CASCADE,
                                related_name="transitions")
    from_state = models.CharField(_("from"), max_length=20, choices=PrinterState.choices)
    to_state = models.CharField(_("to"), max_length=20, choices=PrinterState.choices)
    at = models.DateTimeField(_("at"), db_index=True)
    reason = models.CharField(_("reason"), max_length=300, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("state transition")
        verbose_name_plural = _("state transitions")
        indexes = [models.Index(fields=["printer", "-at"], name="printers_transition_recent")]

    def __str__(self) -> str:
        return f"{self.printer}: {self.from_state} → {self.to_state}"


class TelemetrySample(models.Model):
    """A compact sample for charts; deleted after PRINTER_TELEMETRY_RETENTION_DAYS by a schedule."""

    printer = models.ForeignKey(Printer, verbose_name=_("printer"), on_delete=models.CASCADE,
                                related_name="samples")
    at = models.DateTimeField(_("at"), db_index=True)
    nozzle_c = models.FloatField(_("nozzle (°C)"), null=True, blank=True)
    nozzle_target_c = models.FloatField(_("nozzle target (°C)"), null=True, blank=True)
    bed_c = models.FloatField(_("bed (°C)"), null=True, blank=True)
    bed_target_c = models.FloatField(_("bed target (°C)"), null=True, blank=True)
    chamber_c = models.FloatField(_("chamber (°C)"), null=True, blank=True)
    progress_percent = models.FloatField(_("progress (%)"), null=True, blank=True)

    class Meta:
        ordering = ["-at"]
        verbose_name = _("telemetry sample")
        verbose_name_plural = _("telemetry samples")
        indexes = [models.Index(fields=["printer", "-at"], name="printers_sample_recent")]

    def __str__(self) -> str:
        return f"{self.printer} @ {self.at:%Y-%m-%d %H:%M:%S}"


class PrinterJob(models.Model):
    printer = models.ForeignKey(Printer, verbose_name=_("printer"), on_delete=models.CASCADE, related_name="jobs")
    external_job_id = models.CharField(_("printer's job id"), max_length=100, blank=True)
    file_name = models.CharField(_("file"), max_length=255, blank=True)
    started_at = models.DateTimeField(_("started"), db_index=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    outcome = models.CharField(
        _("outcome"), max_length=16, choices=JobOutcome.choices, default=JobOutcome.RUNNING, db_index=True
    )
    progress_reached = models.FloatField(_("progress reached (%)"), default=0)
    last_layer = models.PositiveIntegerField(
        _("last layer reported"), null=True, blank=True,
        help_text=_("The highest layer the printer reported for this job; empty when it reports no layers."),
    )
    duration_seconds = models.PositiveIntegerField(_("duration (s)"), null=True, blank=True)
    observed_start = models.BooleanField(
        _("start observed"), default=True,
        help_text=_("False when the app found the job already running (after a restart or reconnect)."),
    )
    end_reason = models.CharField(_("end reason"), max_length=300, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = _("printer job")
        verbose_name_plural = _("printer jobs")
        constraints = [
            models.UniqueConstraint(
                fields=["printer"], condition=models.Q(outcome="running"), name="printers_job_one_running_per_printer"
            ),
            models.CheckConstraint(
                condition=models.Q(ended_at__isnull=True) | models.Q(ended_at__gte=models.F("started_at")),
                name="printers_job_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.printer}: {self.file_name or self.external_job_id or self.pk}"


class PrinterCommand(models.Model):
    """One command for a printer, requested by the admin or the API and carried out in the background.

    `services.printer_command_request` writes a pending row and returns at once. The printer's driver
    decides who takes it: for printers with a session of their own (Bambu) the printer listener
    (run_printers) sends it on that session with a fresh sequence_id and records the acknowledgement
    (or its absence); for printers the app polls (PrusaLink) a task carries it out. The admin and
    the API show the row's status; commands nobody took are expired by a schedule.
    """

    printer = models.ForeignKey(Printer, verbose_name=_("printer"), on_delete=models.CASCADE,
                                related_name="commands")
    action = models.CharField(_("action"), max_length=20, choices=CommandAction.choices)
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    # Set for commands a partner sent through the API; the same key from the same organization
    # returns the first command instead of sending a second one.
    organization = models.ForeignKey("fablab.Organization", verbose_name=_("requested by"), null=True,
                                     blank=True, on_delete=models.SET_NULL, related_name="printer_commands")
    idempotency_key = models.CharField(_("idempotency key"), max_length=200, blank=True)
    status = models.CharField(_("status"), max_length=12, choices=CommandStatus.choices,
                              default=CommandStatus.PENDING, db_index=True)
    sequence_id = models.CharField(_("sequence id"), max_length=20, blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("requested"), auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "idempotency_key"],
                                    condition=~models.Q(idempotency_key=""), name="printers_command_idempotent"),
        ]
        verbose_name = _("printer command")
        verbose_name_plural = _("printer commands")

    def __str__(self) -> str:
        return f"{self.printer}: {self.action} ({self.status})"

