"""Every write of the printers app."""

import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import BinaryIO

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from fablab.choices import AuditAction
from fablab.db import update_rows
from fablab.exceptions import ApplicationError, InvalidInput
from fablab.services import audit_record
from fablab.states import check_transition
from fablab.validation import validate
from printers import conf, lifecycle
from printers import credentials as creds
from printers.choices import (
    ALLOWED_TRANSITIONS,
    AuthMethod,
    CommandAction,
    CommandStatus,
    JobOutcome,
    PrinterState,
)
from printers.drivers import registry
from printers.drivers.base import (
    COMMAND_CAPABILITY,
    UNUSED_SLOT,
    Capability,
    ConnectionMode,
    PrinterAccess,
    StorageFile,
)
from printers.models import (
    Printer,
    PrinterCommand,
    PrinterJob,
    PrinterLiveState,
    StateTransition,
    TelemetrySample,
)
from printers.signals import job_finished, job_started, printer_changed
from printers.state import NormalisedState, offline_state

logger = logging.getLogger(__name__)

OFFLINE_AFTER_FAILURES = 3
TELEMETRY_INTERVAL = timedelta(seconds=60)


# --- Printers and credentials ----------------------------------------------------------------


@transaction.atomic
def printer_create(*, name: str, driver: str, host: str, port: int | None = None, model: str = "",
                   serial: str = "", secret: str = "", username: str = "", auth_method: str = AuthMethod.DIGEST,
                   location: str = "", **fields) -> Printer:
    printer = Printer(name=(name or "").strip(), driver=driver, host=(host or "").strip(), port=port,
                      model=model.strip(), serial=serial.strip(), auth_method=auth_method, location=location.strip(),
                      **fields)
    validate(printer)
    printer.save()
    PrinterLiveState.objects.create(printer=printer)
    if secret:
        printer_set_credentials(printer=printer, secret=secret, username=username)
    _printer_changed(printer.pk, ["added"])
    return printer


def _printer_changed(printer_id: int, changes: list[str]) -> None:
    """Tell other apps (printers.signals.printer_changed) once the current transaction commits."""
    transaction.on_commit(lambda: printer_changed.send(sender=Printer, printer_id=printer_id, changes=changes))


# What staff may change on a printer (printer_update); credentials go through printer_set_credentials.
EDITABLE_FIELDS = frozenset({
    "name", "driver", "model", "serial", "host", "port", "files_port", "auth_method", "nozzle_diameter_mm",
    "bed_x_mm", "bed_y_mm", "bed_z_mm", "location", "is_active", "shared_with_partners",
})
SECRET_MAX_LENGTH = 200
_STRIPPED = ("name", "host", "model", "serial", "location")


@transaction.atomic
def printer_update(*, printer: Printer, secret: str = "", username: str = "", **fields) -> Printer:
    """Change a printer's settings (EDITABLE_FIELDS) and, when `secret` is given, its credentials.

    run_printers notices a changed address, serial or access code by itself and reconnects.
    """
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise InvalidInput(_("These printer fields cannot be changed here: %(fields)s.")
                           % {"fields": ", ".join(sorted(unknown))})
    if fields:
        for name, value in fields.items():
            setattr(printer, name, (value or "").strip() if name in _STRIPPED else value)
        validate(printer)
        printer.save(update_fields=[*fields, "updated_at"])
        logger.info("Printer %s was changed (%s).", printer.pk, ", ".join(sorted(fields)))
        _printer_changed(printer.pk, ["settings"])
    if secret:
        printer_set_credentials(printer=printer, secret=secret, username=username)
    return printer


def printer_set_credentials(*, printer: Printer, secret: str, username: str = "") -> Printer:
    """Store the printer's secret (Bambu access code, PrusaLink password) encrypted; never log it."""
    secret = (secret or "").strip()
    if not secret:
        raise InvalidInput(_("Enter the printer's password or access code."))
    if len(secret) > SECRET_MAX_LENGTH:
        raise InvalidInput(_("The password or access code is too long."))
    driver = registry.find(printer.driver)
    username = (username or "").strip() or (driver.default_username if driver is not None else "")
    printer.credentials_ciphertext = creds.encrypt(creds.Credentials(username=username, secret=secret))
    printer.save(update_fields=["credentials_ciphertext", "updated_at"])
    logger.info("Credentials of printer %s were changed.", printer.pk)
    return printer


def printer_get_credentials(*, printer: Printer) -> creds.Credentials:
    if not printer.credentials_ciphertext:
        raise ApplicationError(_("Printer %(name)s has no credentials yet.") % {"name": printer.name})
    return creds.decrypt(printer.credentials_ciphertext)


def printer_clear_credentials(*, printer: Printer) -> Printer:
    printer.credentials_ciphertext = b""
    printer.save(update_fields=["credentials_ciphertext", "updated_at"])
    return printer


# --- Live state, transitions, jobs ------------------------------------------------------------


def _live_for_update(printer: Printer) -> PrinterLiveState:
    live = PrinterLiveState.objects.select_for_update().filter(printer=printer).first()
    if live is None:  # the first state of a new printer
        PrinterLiveState.objects.get_or_create(printer=printer)
        live = PrinterLiveState.objects.select_for_update().get(printer=printer)
    return live


def _job_transition(job: PrinterJob, outcome: str) -> None:
    check_transition(ALLOWED_TRANSITIONS, job.outcome, outcome, what=_("The outcome of a print job"))
    job.outcome = outcome


def _close_job(job: PrinterJob, *, outcome: str, at: datetime, reason: str, progress: float | None,
               layer: int | None = None) -> None:
    """End a job in memory (saved by the caller); job_finished is sent once the transaction commits."""
    _job_transition(job, outcome)
    job.ended_at = max(at, job.started_at)
    job.duration_seconds = int((job.ended_at - job.started_at).total_seconds())
    if outcome == JobOutcome.COMPLETED:
        job.progress_reached = 100.0
    elif progress is not None:
        job.progress_reached = max(job.progress_reached, progress)
    if layer is not None:
        job.last_layer = max(job.last_layer or 0, layer)
    job.end_reason = reason[:300]
    transaction.on_commit(lambda: job_finished.send(sender=PrinterJob, job=job, printer=job.printer, outcome=outcome))


def _new_job(printer: Printer, state: NormalisedState, *, at: datetime, adopted: bool) -> PrinterJob:
    """A started job in memory (created by the caller); job_started is sent once the transaction commits."""
    job = PrinterJob(printer=printer, external_job_id=state.job_key, file_name=state.current_file[:255],
                     started_at=at, progress_reached=state.progress_percent or 0, observed_start=not adopted,
                     last_layer=state.layer if state.layer else None)
    transaction.on_commit(lambda: job_started.send(sender=PrinterJob, job=job, printer=printer, adopted=adopted))
    return job


def _filaments(slots) -> set[tuple]:
    """What is loaded, slot by slot, as far as printing a job goes: material, colour and RFID tag."""
    return {(slot.get("slot"), slot.get("type"), slot.get("colour"), slot.get("tag"))
            for slot in slots or [] if isinstance(slot, dict)}


def _fleet_changes(live: PrinterLiveState, state: NormalisedState) -> list[str]:
    """How an online report changes what the printer can print (printer_changed), against its live row."""
    changes = []
    if not live.online:
        changes.append("online")
    if (live.nozzle_type, live.nozzle_diameter_mm) != (state.nozzle_type, state.nozzle_diameter_mm):
        changes.append("nozzle")
    if _filaments(live.filament_slots) != _filaments(state.filament_slots):
        changes.append("filaments")
    return changes


def _observe(live: PrinterLiveState, state: NormalisedState, *, at: datetime, changed: bool) -> TelemetrySample | None:
    """Copy an online state onto the live row; returns the telemetry sample that is due (unsaved), if any."""
    for name, value in state.as_fields().items():
        setattr(live, name, value)
    live.consecutive_failures = 0
    live.last_error = ""
    live.last_report_at = at
    if live.last_sample_at is not None and at - live.last_sample_at < TELEMETRY_INTERVAL and not changed:
        return None
    live.last_sample_at = at
    return TelemetrySample(
        printer_id=live.printer_id, at=at, nozzle_c=state.nozzle_temp_c, nozzle_target_c=state.nozzle_target_c,
        bed_c=state.bed_temp_c, bed_target_c=state.bed_target_c, chamber_c=state.chamber_temp_c,
        progress_percent=state.progress_percent)


LIVE_FIELDS = [*(name for name in NormalisedState.__dataclass_fields__ if name != "reason"),
               "consecutive_failures", "last_error", "last_report_at", "last_sample_at", "updated_at"]
JOB_FIELDS = ["outcome", "ended_at", "duration_seconds", "progress_reached", "last_layer", "end_reason"]


def unwatched_gap() -> timedelta:
    """A gap between two reports of a printer longer than this means nobody watched it in between.

    While run_printers runs, a Bambu printer reports at least every BAMBU_WATCHDOG_SECONDS or is
    recorded offline; while the task cluster polls, a PrusaLink printer answers every
    PRUSALINK_POLL_SECONDS or is recorded offline after OFFLINE_AFTER_FAILURES failed polls. Twice
    the watchdog, or one poll more than the failures (each with its timeout), covers both.
    """
    poll = settings.PRUSALINK_POLL_SECONDS + settings.PRINTER_HTTP_TIMEOUT_SECONDS
    return timedelta(seconds=max(2 * float(conf.value("BAMBU_WATCHDOG_SECONDS")),
                                 (OFFLINE_AFTER_FAILURES + 1) * poll))


Report = tuple[Printer, NormalisedState, datetime | None] | tuple[Printer, NormalisedState, datetime | None, bool]


@transaction.atomic
def printer_apply_states(*, reports: list[Report]) -> dict[int, PrinterLiveState]:
    """Record one observed state for each of many printers: live rows, transitions, job start/end, telemetry.

    Each report is (printer, state, at) or (printer, state, at, sync); `sync` True says that it is
    the first report of a new connection to the printer (run_printers sets it, so a listener that
    was killed without its clean shutdown cannot make the first report after its restart look like
    a change). A report is a sync as well when the printer was offline, or when it comes more than
    `unwatched_gap()` after the printer's last recorded report (the observer was down: a killed
    task cluster, a rebooted host). printers.lifecycle says what a sync does with jobs: never a job
    made up from the reconnect, and an open job the printer shows ended closes at its estimated end.

    The rules of the job lifecycle apply to each printer on its own, and the writes of all printers
    share about eight queries, however many printers there are, so a large fleet's reports are
    cheap. At most one report per printer; a printer's next report goes into the next call. Safe to
    replay: the same state again changes nothing; a report older than the last one recorded is
    ignored. Returns the live rows by printer id.
    """
    by_printer = {}
    syncs = set()
    for printer, state, at, *sync in reports:
        by_printer[printer.pk] = (printer, state, at or timezone.now())
        if sync and sync[0]:
            syncs.add(printer.pk)
    if len(by_printer) != len(reports):
        raise ValueError("printer_apply_states takes at most one report per printer.")
    lives = {live.printer_id: live for live in
             PrinterLiveState.objects.select_for_update().filter(printer_id__in=by_printer)}
    if len(lives) < len(by_printer):  # the first state of new printers
        PrinterLiveState.objects.bulk_create([PrinterLiveState(printer_id=pk) for pk in by_printer if pk not in lives],
                                             ignore_conflicts=True)
        lives.update((live.printer_id, live) for live in PrinterLiveState.objects.select_for_update().filter(
            printer_id__in=[pk for pk in by_printer if pk not in lives]))
    open_jobs = {job.printer_id: job for job in PrinterJob.objects.select_for_update().filter(
        printer_id__in=by_printer, outcome=JobOutcome.RUNNING)}  # at most one each (a constraint)
    now, gap = timezone.now(), unwatched_gap()
    saved_jobs, new_jobs, transitions, samples, changed_lives, fleet = [], [], [], [], [], []
    for printer_id, (printer, state, at) in by_printer.items():
        live = lives[printer_id]
        if live.last_report_at and at < live.last_report_at:
            logger.info("Ignored a report of printer %s older than the last one.", printer_id)
            continue
        previous_state, previous_key = live.state, live.job_key
        sync = printer_id in syncs or (live.last_report_at is not None and at - live.last_report_at > gap)
        open_job = open_jobs.get(printer_id)
        if open_job is not None:
            open_job.printer = printer  # for the signals, without a query
        decision = lifecycle.decide(
            previous_state=previous_state, previous_job_key=previous_key, current=state, sync=sync,
            open_job=lifecycle.OpenJob(open_job.external_job_id, open_job.progress_reached, open_job.file_name)
            if open_job else None,
        )
        sync = sync or previous_state == PrinterState.OFFLINE
        if decision.close_outcome and open_job is not None:
            ended = at if decision.end_observed else lifecycle.estimated_end(
                last_report_at=live.last_report_at, remaining_seconds=live.remaining_seconds, now=at)
            _close_job(open_job, outcome=decision.close_outcome, at=ended, reason=decision.close_reason,
                       progress=state.progress_percent if decision.own_progress else None,
                       layer=state.layer if decision.own_progress else None)
            saved_jobs.append(open_job)
            open_job = None
        if decision.missed_outcome and not PrinterJob.objects.filter(
                printer_id=printer_id, external_job_id=state.job_key).exists():
            missed = _new_job(printer, replace(state, progress_percent=state.progress_percent or 0), at=at,
                              adopted=True)
            _close_job(missed, outcome=decision.missed_outcome, at=at, reason="the job ran between two reports",
                       progress=state.progress_percent, layer=state.layer)
            new_jobs.append(missed)
        if decision.start:
            new_jobs.append(_new_job(printer, state, at=at, adopted=decision.adopted))
        elif open_job is not None and state.is_active:
            progressed = state.progress_percent is not None and state.progress_percent > open_job.progress_reached
            layered = state.layer is not None and state.layer > (open_job.last_layer or 0)
            if progressed:
                open_job.progress_reached = state.progress_percent
            if layered:
                open_job.last_layer = state.layer
            if progressed or layered:
                saved_jobs.append(open_job)

        if previous_state != state.state:
            transitions.append(StateTransition(
                printer=printer, from_state=previous_state, to_state=state.state, at=at,
                reason=(state.reason or ("reconnected" if sync else ""))[:300]))
        if state.state == PrinterState.OFFLINE:
            live.state, live.online = state.state, False
            live.last_error = (state.reason or live.last_error)[:500]
        else:
            changes = _fleet_changes(live, state)
            if changes:
                fleet.append((printer_id, changes))
            sample = _observe(live, state, at=at, changed=previous_state != state.state)
            if sample is not None:
                samples.append(sample)
        live.updated_at = now  # update_rows does not apply auto_now
        changed_lives.append(live)
    # Ended jobs first: a printer's next job may start in the same call (one running job per printer).
    update_rows(saved_jobs, JOB_FIELDS)
    PrinterJob.objects.bulk_create(new_jobs)
    StateTransition.objects.bulk_create(transitions)
    TelemetrySample.objects.bulk_create(samples)
    update_rows(changed_lives, LIVE_FIELDS)
    for printer_id, changes in fleet:
        _printer_changed(printer_id, changes)
    return lives


def printer_apply_state(*, printer: Printer, state: NormalisedState, at: datetime | None = None,
                        sync: bool = False) -> PrinterLiveState:
    """Record one observed state of one printer (see `printer_apply_states`)."""
    return printer_apply_states(reports=[(printer, state, at, sync)])[printer.pk]


@transaction.atomic
def printer_record_failure(*, printer: Printer, error: str, at: datetime | None = None) -> PrinterLiveState:
    """Count one failed contact; the printer goes offline at the third in a row."""
    at = at or timezone.now()
    live = _live_for_update(printer)
    live.consecutive_failures += 1
    live.last_error = error[:500]
    live.save(update_fields=["consecutive_failures", "last_error", "updated_at"])
    if live.consecutive_failures >= OFFLINE_AFTER_FAILURES and live.state != PrinterState.OFFLINE:
        live = printer_apply_state(printer=printer, state=offline_state(reason=error[:300]), at=at)
    return live


def telemetry_purge(*, older_than_days: int | None = None, now: datetime | None = None) -> int:
    """Delete telemetry samples older than N days (PRINTER_TELEMETRY_RETENTION_DAYS, default 30)."""
    days = older_than_days if older_than_days is not None else settings.PRINTER_TELEMETRY_RETENTION_DAYS
    if days < 1:
        raise InvalidInput(_("Keep telemetry for at least one day."))
    cutoff = (now or timezone.now()) - timedelta(days=days)
    deleted, _details = TelemetrySample.objects.filter(at__lt=cutoff).delete()
    return deleted


# --- Reaching a printer through its driver ------------------------------------------------------


def printer_access(*, printer: Printer) -> PrinterAccess:
    """What the printer's driver needs to reach it: address and credentials (ApplicationError without them)."""
    credentials = printer_get_credentials(printer=printer)
    return PrinterAccess(
        printer_id=printer.pk, name=printer.name, host=printer.host, port=printer.effective_port or 0,
        serial=printer.serial, model=printer.model, username=credentials.username, secret=credentials.secret,
        auth_method=printer.auth_method, files_port=printer.files_port or None,
    )


def printer_poll(*, printer: Printer, at: datetime | None = None) -> PrinterLiveState:
    """Ask a printer the app polls (PrusaLink) for its state through its driver, and record the state.

    A failure (unreachable, 5xx, timeout, refused or missing credentials, unreadable answer) is
    counted; the third in a row makes the printer offline. The next good answer brings it back.
    """
    from printers.exceptions import PrinterAuthError, PrinterUnreachable, ReportError

    driver = registry.for_printer(printer)
    if driver.mode != ConnectionMode.POLL:
        raise InvalidInput(_("%(name)s reports by itself; the app does not poll it.") % {"name": printer.name})
    try:
        access = printer_access(printer=printer)
    except ApplicationError as exc:
        return printer_record_failure(printer=printer, error=exc.message, at=at)
    live = PrinterLiveState.objects.filter(printer=printer).first()
    try:
        state = driver.poll(access, job_key=live.job_key if live else "",
                            current_file=live.current_file if live else "")
    except (PrinterUnreachable, PrinterAuthError, ReportError) as exc:
        logger.info("Polling printer %s failed: %s", printer.pk, exc.message)
        return printer_record_failure(printer=printer, error=exc.message, at=at)
    return printer_apply_state(printer=printer, state=state, at=at)


# --- Files onto the printer's storage --------------------------------------------------------------

MAX_UPLOAD_NAME = 200
FORBIDDEN_NAME_CHARACTERS = frozenset('/\\:*?"<>|')


def _upload_name(name, driver, printer: Printer) -> str:
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name or name in (".", "..") or len(name) > MAX_UPLOAD_NAME \
            or any(ord(ch) < 32 or ord(ch) == 127 or ch in FORBIDDEN_NAME_CHARACTERS for ch in name):
        raise InvalidInput(_("Give the file a plain name of at most %(max)s characters, without folders, control "
                             "characters or any of \\ / : * ? \" < > |.") % {"max": MAX_UPLOAD_NAME})
    if driver.upload_suffixes and not name.lower().endswith(driver.upload_suffixes):
        raise InvalidInput(_("%(printer)s takes %(suffixes)s files; %(name)s is not one.") % {
            "printer": printer.name, "suffixes": ", ".join(driver.upload_suffixes), "name": name})
    return name


def printer_file_upload(*, printer: Printer, name: str, source: BinaryIO, size: int | None = None) -> StorageFile:
    """Store the file `source` holds on the printer's storage as `name`, replacing a file of that name.

    Where it lands depends on the driver (Bambu: the root of the SD card over FTPS; PrusaLink: its
    USB stick over HTTP); the returned entry's `path` is what `printer_start_file` takes. One
    transfer per printer at a time, like downloads. Takes as long as the transfer: call it from a
    task, not a web request.
    """
    from printers.files import _one_transfer

    driver = registry.for_printer(printer)
    if not driver.can(Capability.FILE_UPLOAD):
        raise InvalidInput(_("%(name)s cannot receive files through the app.") % {"name": printer.name})
    name = _upload_name(name, driver, printer)
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise InvalidInput(_("The file size must be a whole number of bytes."))
    access = printer_access(printer=printer)
    with _one_transfer(printer):
        entry = driver.upload_file(access, name=name, source=source, size=size)
    logger.info("Printer %s: uploaded %s (%s bytes).", printer.pk, entry.path, entry.size_bytes)
    return entry


# --- Commands -------------------------------------------------------------------------------------
#
# One path for every command, whoever asks (the admin, the API, the production app): a PrinterCommand
# row is written and the request returns at once. The printer's driver decides who carries it out:
# for a printer with its own session (PUSH: Bambu) the printer listener (run_printers) sends it on
# that session and records the acknowledgement; for a printer the app polls (POLL: PrusaLink) a
# django-q2 task carries it out through the driver. A schedule expires what nobody took in time.

_COMMAND_STATES = {
    CommandAction.PAUSE: {PrinterState.PRINTING, PrinterState.PREPARING},
    CommandAction.RESUME: {PrinterState.PAUSED, PrinterState.NEEDS_ATTENTION},
    CommandAction.STOP: {PrinterState.PRINTING, PrinterState.PREPARING, PrinterState.PAUSED,
                         PrinterState.NEEDS_ATTENTION},
}
IDLE_LIKE_STATES = {PrinterState.IDLE, PrinterState.FINISHED, PrinterState.CANCELLED, PrinterState.FAILED}
# A pending command is taken within the command timeout plus this margin, or not at all.
PICKUP_MARGIN_SECONDS = 3.0


def _pickup_window() -> timedelta:
    return timedelta(seconds=float(conf.value("BAMBU_COMMAND_TIMEOUT_SECONDS")) + PICKUP_MARGIN_SECONDS)


def command_mark_sent(*, command: PrinterCommand, sequence_id: str) -> PrinterCommand:
    command.status, command.sequence_id, command.sent_at = CommandStatus.SENT, sequence_id, timezone.now()
    command.save(update_fields=["status", "sequence_id", "sent_at"])
    return command


def command_finish(*, command: PrinterCommand, ok: bool, error: str = "") -> PrinterCommand:
    """Record a command's outcome once (the first outcome wins)."""
    status = CommandStatus.SUCCEEDED if ok else CommandStatus.FAILED
    updated = PrinterCommand.objects.filter(pk=command.pk, status__in=[CommandStatus.PENDING, CommandStatus.SENT]) \
        .update(status=status, error=error[:500], finished_at=timezone.now())
    if updated:
        command.status, command.error = status, error[:500]
    return command


# --- Requesting a command ---------------------------------------------------------------------------

CONTROL_ACTIONS = (CommandAction.PAUSE, CommandAction.RESUME, CommandAction.STOP, CommandAction.LIGHT)


def command_refusal(*, printer: Printer, action: str, live: PrinterLiveState | None = None) -> str:
    """Why `action` cannot be sent to `printer` now, as a sentence for the user; "" when it can."""
    driver = registry.find(printer.driver)
    if driver is None:
        return _("%(name)s has a driver the app does not know (%(driver)s).") % {"name": printer.name,
                                                                                 "driver": printer.driver}
    capability = COMMAND_CAPABILITY.get(action)
    if capability is not None and not driver.can(capability):
        brands = registry.brands(capability=capability)
        if capability == Capability.LIGHT and brands:
            return _("Only %(brands)s printers have a light the app can switch.") % {"brands": brands}
        return _("%(name)s cannot %(action)s through the app.") % {
            "name": printer.name, "action": CommandAction(action).label.lower()}
    if not printer.is_active:
        return _("%(name)s is inactive; activate it first.") % {"name": printer.name}
    if live is None:
        live = PrinterLiveState.objects.filter(printer=printer).first()
    state = live.state if live else PrinterState.OFFLINE
    if state == PrinterState.OFFLINE:
        return _("%(name)s is offline.") % {"name": printer.name}
    allowed = _COMMAND_STATES.get(action)
    if allowed is not None and state not in allowed:
        return _("%(name)s cannot %(action)s while %(state)s.") % {
            "name": printer.name, "action": CommandAction(action).label.lower(),
            "state": PrinterState(state).label.lower()}
    return ""


def _redact(message: str, printer: Printer) -> str:
    """A driver's error without the printer's address (partners read command errors)."""
    if printer.host:
        message = message.replace(printer.host, printer.name)
    return message[:500]


def _request_command(*, printer: Printer, action: str, params: dict, organization,
                     idempotency_key: str) -> PrinterCommand:
    from printers.exceptions import PrinterConflict

    key = (idempotency_key or "").strip()
    if len(key) > 200:
        raise InvalidInput(_("The Idempotency-Key is too long (at most 200 characters)."))
    driver = registry.for_printer(printer)
    with transaction.atomic():
        Printer.objects.select_for_update().filter(pk=printer.pk).first()  # one request per printer at a time
        if key:
            earlier = PrinterCommand.objects.filter(organization=organization, idempotency_key=key).first()
            if earlier is not None:
                if earlier.printer_id != printer.pk or earlier.action != action or earlier.params != params:
                    raise PrinterConflict(_("This Idempotency-Key was already used for another command; "
                                            "send a new key for a new command."))
                return earlier
        refusal = command_refusal(printer=printer, action=action)
        if refusal:
            raise PrinterConflict(refusal)
        command = PrinterCommand.objects.create(printer=printer, action=action, params=params,
                                                organization=organization, idempotency_key=key)
        audit_record(action=AuditAction.PRINTER_COMMAND, organization=organization, target=printer,
                     extra={"command": command.pk, "action": action, "params": params})
        if driver.mode == ConnectionMode.POLL:
            transaction.on_commit(lambda: _enqueue_command(command.pk), robust=True)
    logger.info("Requested %s for printer %s (command %s).", action, printer.pk, command.pk)
    return command


def printer_command_request(*, printer: Printer, action: str, light_on: bool | None = None,
                            organization=None, idempotency_key: str = "") -> PrinterCommand:
    """Request pause, resume, stop or the light (`light_on`) for `printer`; returns the command at once.

    The command is `pending` until the printer listener (printers with a session of their own) or a
    task (printers the app polls) takes it, then `sent`, then `succeeded` or `failed`; `expired` when
    nobody took it in time. With an `idempotency_key`, the same key sent again by the same
    `organization` (None: the lab's staff) returns the first command and sends nothing; the key for a
    different request is refused (PrinterConflict). A state that does not allow the command is refused
    with a PrinterConflict that says why.
    """
    if action not in CONTROL_ACTIONS:
        raise InvalidInput(_("Unknown printer command %(action)s; use pause, resume, stop or light.")
                           % {"action": action})
    params: dict = {}
    if action == CommandAction.LIGHT:
        if light_on is None:
            raise InvalidInput(_("Say whether the light goes on or off."))
        params["mode"] = "on" if light_on else "off"
    return _request_command(printer=printer, action=action, params=params, organization=organization,
                            idempotency_key=idempotency_key)


def _filament_mapping(printer: Printer, driver, filament_mapping, live: PrinterLiveState) -> list[int]:
    mapping = []
    for value in filament_mapping or []:
        if isinstance(value, bool):
            raise InvalidInput(_("Filament slot mapping entries must be slot numbers."))
        try:
            mapping.append(int(value))
        except (TypeError, ValueError):
            raise InvalidInput(_("Filament slot mapping entries must be slot numbers.")) from None
    used = [slot for slot in mapping if slot != UNUSED_SLOT]
    if used and not driver.can(Capability.FILAMENT_MAPPING):
        raise InvalidInput(_("%(name)s takes no filament slot mapping; start the file without one.")
                           % {"name": printer.name})
    loaded = {slot.get("slot") for slot in live.filament_slots or [] if isinstance(slot, dict)}
    for slot in used:
        if slot not in loaded:
            raise InvalidInput(_("Tray %(tray)s holds no filament on %(name)s; the printer would wait for it "
                                 "forever instead of printing.") % {"tray": slot, "name": printer.name})
    return mapping


def printer_start_file(*, printer: Printer, path: str, plate: int = 1, filament_mapping: list[int] | None = None,
                       organization=None, idempotency_key: str = "") -> PrinterCommand:
    """Request the start of a file already on the printer's storage (e.g. from `printer_file_upload`).

    `path`: the file as the printer's file list or the upload names it. `plate`: the plate of a
    multi-plate project (Bambu). `filament_mapping`: one entry per filament of the file, the slot
    that feeds it (a `slot` of the printer's loaded filament slots; Bambu: ams*4 + tray, 254 the
    external spool) or -1 for none; it is checked against the slots the printer reports, because a
    printer told to use an empty slot waits for it without an error. Only an idle printer, or one
    whose last job ended, starts a file. Returns the command at once; it travels like any other
    (`printer_command_request`), with the same idempotency rules.
    """
    from printers.exceptions import PrinterConflict

    driver = registry.for_printer(printer)
    if not driver.can(Capability.START_FILE):
        raise InvalidInput(_("%(name)s cannot start files through the app.") % {"name": printer.name})
    try:
        plate = int(plate)
    except (TypeError, ValueError):
        raise InvalidInput(_("The plate number must be between 1 and 64.")) from None
    if not 1 <= plate <= 64:
        raise InvalidInput(_("The plate number must be between 1 and 64."))
    live = PrinterLiveState.objects.filter(printer=printer).first()
    if live is None or live.state not in IDLE_LIKE_STATES:
        raise PrinterConflict(_("%(name)s is busy or offline; start a file only when it is idle or its last job "
                                "has ended.") % {"name": printer.name})
    mapping = _filament_mapping(printer, driver, filament_mapping, live)
    params = driver.start_params(path=path if isinstance(path, str) else "", plate=plate, filament_mapping=mapping,
                                 model=printer.model)
    return _request_command(printer=printer, action=CommandAction.PROJECT_FILE, params=params,
                            organization=organization, idempotency_key=idempotency_key)


def _enqueue_command(command_id: int) -> None:
    from django_q.tasks import async_task

    async_task("printers.tasks.run_printer_command", command_id, task_name=f"printer command {command_id}")


# --- Carrying commands out and expiring them --------------------------------------------------------

NOT_TAKEN_BY_LISTENER = "no printer listener picked the command up (is manage.py run_printers running?)"
NO_OUTCOME_FROM_LISTENER = "the printer listener recorded no outcome"
NOT_TAKEN_BY_TASK = "no task worker picked the command up in time"
NO_OUTCOME_FROM_TASK = "no outcome was recorded for the command"


def command_carry_out(*, command_id: int) -> PrinterCommand | None:
    """Carry out a pending command of a printer the app polls, through its driver (the task).

    Safe to run twice: only a pending command is taken, and only within its pick-up time (one found
    later is expired instead: a pause wanted a minute ago may be wrong now). The printer is polled
    right after a command it took, so its page shows the effect at once. Commands of printers with
    a session of their own are left to the printer listener.
    """
    command = PrinterCommand.objects.select_related("printer").filter(pk=command_id).first()
    if command is None or command.status != CommandStatus.PENDING:
        return command
    printer = command.printer
    driver = registry.find(printer.driver)
    if driver is None or driver.mode != ConnectionMode.POLL:
        return command
    now = timezone.now()
    live = PrinterLiveState.objects.filter(printer=printer).first()
    job_key = live.job_key if live else ""
    claimed = PrinterCommand.objects.filter(pk=command.pk, status=CommandStatus.PENDING,
                                            created_at__gte=now - _pickup_window()) \
        .update(status=CommandStatus.SENT, sent_at=now, sequence_id=job_key[:20])
    if not claimed:
        PrinterCommand.objects.filter(pk=command.pk, status=CommandStatus.PENDING).update(
            status=CommandStatus.EXPIRED, finished_at=now, error=NOT_TAKEN_BY_TASK)
        command.refresh_from_db()
        return command
    command.status, command.sent_at, command.sequence_id = CommandStatus.SENT, now, job_key[:20]
    try:
        driver.run_command(printer_access(printer=printer), action=command.action, params=command.params,
                           job_key=job_key)
    except ApplicationError as exc:
        command_finish(command=command, ok=False, error=_redact(exc.message, printer))
    except Exception:  # noqa: BLE001 - recorded for the person waiting; the details go to the log
        logger.exception("Command %s for printer %s failed.", command.pk, printer.pk)
        command_finish(command=command, ok=False,
                       error=_("The command failed unexpectedly; the details are in the server log."))
    else:
        logger.info("Printer %s: %s done (command %s).", printer.pk, command.action, command.pk)
        command_finish(command=command, ok=True)
        printer_poll(printer=printer)
    return command


def commands_expire_unclaimed(*, now: datetime | None = None) -> int:
    """Mark commands that nobody can take any more (or that never got an outcome) as expired; returns how many.

    A pending command is taken (by the printer listener or a task) within the command timeout plus the
    pick-up margin, or never; one taken but without an outcome after twice that will not get one.
    Run by a schedule every minute (one UPDATE per kind), never by a page or an endpoint that reads.
    """
    now = now or timezone.now()
    wait = _pickup_window()
    pending = PrinterCommand.objects.filter(status=CommandStatus.PENDING, created_at__lt=now - wait)
    sent = PrinterCommand.objects.filter(status=CommandStatus.SENT, created_at__lt=now - 2 * wait)
    listened = Q(printer__driver__in=registry.names(mode=ConnectionMode.PUSH))
    expired = 0
    for commands, error in ((pending.filter(listened), NOT_TAKEN_BY_LISTENER),
                            (pending.exclude(listened), NOT_TAKEN_BY_TASK),
                            (sent.filter(listened), NO_OUTCOME_FROM_LISTENER),
                            (sent.exclude(listened), NO_OUTCOME_FROM_TASK)):
        expired += commands.update(status=CommandStatus.EXPIRED, finished_at=now, error=error)
    if expired:
        logger.info("Expired %s printer commands nobody took or answered.", expired)
    return expired
