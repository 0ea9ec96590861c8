"""Every write of the printers app."""

import logging
import time
from dataclasses import replace
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from fablab.db import update_rows
from fablab.exceptions import ApplicationError, InvalidInput
from fablab.states import check_transition
from fablab.validation import validate
from printers import conf, lifecycle
from printers import credentials as creds
from printers.choices import (
    ALLOWED_TRANSITIONS,
    COMMAND_DONE,
    AuthMethod,
    CommandAction,
    CommandStatus,
    Driver,
    JobOutcome,
    PrinterState,
)
from printers.models import (
    Printer,
    PrinterCommand,
    PrinterJob,
    PrinterLiveState,
    StateTransition,
    TelemetrySample,
)
from printers.signals import job_finished, job_started
from printers.state import NormalisedState, offline_state

logger = logging.getLogger(__name__)

OFFLINE_AFTER_FAILURES = 3
TELEMETRY_INTERVAL = timedelta(seconds=60)
DEFAULT_USERNAMES = {Driver.BAMBU: "bblp", Driver.PRUSALINK: "maker"}


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
    return printer


def printer_set_credentials(*, printer: Printer, secret: str, username: str = "") -> Printer:
    """Store the printer's secret (Bambu access code, PrusaLink password) encrypted; never log it."""
    secret = (secret or "").strip()
    if not secret:
        raise InvalidInput(_("Enter the printer's password or access code."))
    if len(secret) > 200:
        raise InvalidInput(_("The password or access code is too long."))
    username = (username or "").strip() or DEFAULT_USERNAMES.get(printer.driver, "")
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


def _close_job(job: PrinterJob, *, outcome: str, at: datetime, reason: str, progress: float | None) -> None:
    """End a job in memory (saved by the caller); job_finished is sent once the transaction commits."""
    _job_transition(job, outcome)
    job.ended_at = max(at, job.started_at)
    job.duration_seconds = int((job.ended_at - job.started_at).total_seconds())
    if outcome == JobOutcome.COMPLETED:
        job.progress_reached = 100.0
    elif progress is not None:
        job.progress_reached = max(job.progress_reached, progress)
    job.end_reason = reason[:300]
    transaction.on_commit(lambda: job_finished.send(sender=PrinterJob, job=job, printer=job.printer, outcome=outcome))


def _new_job(printer: Printer, state: NormalisedState, *, at: datetime, adopted: bool) -> PrinterJob:
    """A started job in memory (created by the caller); job_started is sent once the transaction commits."""
    job = PrinterJob(printer=printer, external_job_id=state.job_key, file_name=state.current_file[:255],
                     started_at=at, progress_reached=state.progress_percent or 0, observed_start=not adopted)
    transaction.on_commit(lambda: job_started.send(sender=PrinterJob, job=job, printer=printer, adopted=adopted))
    return job


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
JOB_FIELDS = ["outcome", "ended_at", "duration_seconds", "progress_reached", "end_reason"]


@transaction.atomic
def printer_apply_states(*, reports: list[tuple[Printer, NormalisedState, datetime]]) -> dict[int, PrinterLiveState]:
    """Record one observed state for each of many printers: live rows, transitions, job start/end, telemetry.

    The rules of the job lifecycle (printers.lifecycle) apply to each printer on its own, and the
    writes of all printers share about eight queries, however many printers there are, so a large
    fleet's reports are cheap. At most one report per printer; a printer's next report goes into the
    next call. Safe to replay: the same state again changes nothing; a report older than the last
    one recorded is ignored. Returns the live rows by printer id.
    """
    by_printer = {printer.pk: (printer, state, at or timezone.now()) for printer, state, at in reports}
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
    now = timezone.now()
    saved_jobs, new_jobs, transitions, samples, changed_lives = [], [], [], [], []
    for printer_id, (printer, state, at) in by_printer.items():
        live = lives[printer_id]
        if live.last_report_at and at < live.last_report_at:
            logger.info("Ignored a report of printer %s older than the last one.", printer_id)
            continue
        previous_state, previous_key = live.state, live.job_key
        open_job = open_jobs.get(printer_id)
        if open_job is not None:
            open_job.printer = printer  # for the signals, without a query
        decision = lifecycle.decide(
            previous_state=previous_state, previous_job_key=previous_key, current=state,
            open_job=lifecycle.OpenJob(open_job.external_job_id, open_job.progress_reached) if open_job else None,
        )
        if decision.close_outcome and open_job is not None:
            _close_job(open_job, outcome=decision.close_outcome, at=at, reason=decision.close_reason,
                       progress=state.progress_percent if not decision.start else None)
            saved_jobs.append(open_job)
            open_job = None
        if decision.missed_outcome and not PrinterJob.objects.filter(
                printer_id=printer_id, external_job_id=state.job_key).exists():
            missed = _new_job(printer, replace(state, progress_percent=state.progress_percent or 0), at=at,
                              adopted=True)
            _close_job(missed, outcome=decision.missed_outcome, at=at, reason="the job ran between two reports",
                       progress=state.progress_percent)
            new_jobs.append(missed)
        if decision.start:
            new_jobs.append(_new_job(printer, state, at=at, adopted=decision.adopted))
        elif open_job is not None and state.is_active and state.progress_percent is not None \
                and state.progress_percent > open_job.progress_reached:
            open_job.progress_reached = state.progress_percent
            saved_jobs.append(open_job)

        if previous_state != state.state:
            transitions.append(StateTransition(
                printer=printer, from_state=previous_state, to_state=state.state, at=at,
                reason=(state.reason or ("reconnected" if previous_state == PrinterState.OFFLINE else ""))[:300]))
        if state.state == PrinterState.OFFLINE:
            live.state, live.online = state.state, False
            live.last_error = (state.reason or live.last_error)[:500]
        else:
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
    return lives


def printer_apply_state(*, printer: Printer, state: NormalisedState, at: datetime | None = None) -> PrinterLiveState:
    """Record one observed state of one printer (see `printer_apply_states`)."""
    return printer_apply_states(reports=[(printer, state, at)])[printer.pk]


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


# --- PrusaLink polling and commands -----------------------------------------------------------


def prusalink_client(*, printer: Printer, timeout: float | None = None):
    from printers.drivers.prusalink import PrusaLinkClient

    if printer.driver != Driver.PRUSALINK:
        raise InvalidInput(_("%(name)s is not a PrusaLink printer.") % {"name": printer.name})
    credentials = printer_get_credentials(printer=printer)
    return PrusaLinkClient(
        host=printer.host, port=printer.effective_port, username=credentials.username or "maker",
        password=credentials.secret, use_api_key=printer.auth_method == AuthMethod.API_KEY,
        timeout=timeout if timeout is not None else settings.PRINTER_HTTP_TIMEOUT_SECONDS,
    )


def printer_poll_prusalink(*, printer: Printer, client=None, at: datetime | None = None) -> PrinterLiveState:
    """Read /api/v1/status (and /api/v1/job when the job changed) and record the state.

    A failure (unreachable, 5xx, timeout, refused credentials, unreadable answer) is counted;
    the third in a row makes the printer offline. The next good answer brings it back.
    """
    from printers.drivers import prusalink
    from printers.exceptions import PrinterAuthError, PrinterUnreachable, ReportError

    own_client = client is None
    try:
        client = client or prusalink_client(printer=printer)
    except ApplicationError as exc:
        return printer_record_failure(printer=printer, error=exc.message, at=at)
    live = PrinterLiveState.objects.filter(printer=printer).first()
    try:
        status = client.status()
        job = None
        status_job = status.get("job")
        if isinstance(status_job, dict) and status_job.get("id") is not None:
            if live is None or str(status_job["id"]) != live.job_key or not live.current_file:
                job = client.job()
        state = prusalink.normalise(status, job)
        if job is None and live is not None and state.job_key and state.job_key == live.job_key:
            state = replace(state, current_file=live.current_file)
    except (PrinterUnreachable, PrinterAuthError, ReportError) as exc:
        logger.info("Polling printer %s failed: %s", printer.pk, exc.message)
        return printer_record_failure(printer=printer, error=exc.message, at=at)
    finally:
        if own_client and client is not None:
            client.close()
    return printer_apply_state(printer=printer, state=state, at=at)


def _command(printer: Printer, action: str) -> PrinterLiveState:
    if printer.driver == Driver.BAMBU:
        bambu_command(printer=printer, action=action)
        return PrinterLiveState.objects.get(printer=printer)
    live = PrinterLiveState.objects.filter(printer=printer).first()
    if live is None or not live.job_key:
        verbs = {"pause": _("pause"), "resume": _("resume"), "stop": _("stop")}
        raise ApplicationError(_("%(name)s has no job to %(action)s.")
                               % {"name": printer.name, "action": verbs.get(action, action)})
    client = prusalink_client(printer=printer)
    try:
        getattr(client, action)(live.job_key)
        logger.info("Sent %s to printer %s (job %s).", action, printer.pk, live.job_key)
        return printer_poll_prusalink(printer=printer, client=client)
    finally:
        client.close()


def printer_pause(*, printer: Printer) -> PrinterLiveState:
    return _command(printer, "pause")


def printer_resume(*, printer: Printer) -> PrinterLiveState:
    return _command(printer, "resume")


def printer_stop(*, printer: Printer) -> PrinterLiveState:
    return _command(printer, "stop")


def printer_set_light(*, printer: Printer, on: bool) -> PrinterCommand:
    """Switch a Bambu printer's chamber light on or off."""
    if printer.driver != Driver.BAMBU:
        raise InvalidInput(_("Only Bambu printers have a light the app can switch."))
    return bambu_command(printer=printer, action=CommandAction.LIGHT, params={"mode": "on" if on else "off"})


def printer_start_file(*, printer: Printer, file_name: str, plate: int = 1,
                       ams_mapping: list[int] | None = None) -> PrinterCommand:
    """Start printing a .3mf already on a Bambu printer's storage (`project_file`, printers.md §1.7).

    `ams_mapping`: one global tray id per filament of the file (ams*4 + slot, 254 = external spool,
    -1 = unused), checked against the trays the printer reports, because a wrong index makes the
    printer hang in "preparing AMS" without an error.
    """
    if printer.driver != Driver.BAMBU:
        raise InvalidInput(_("Starting a file on the printer's storage works for Bambu printers only."))
    file_name = (file_name or "").strip().lstrip("/")
    if not file_name or ".." in file_name.split("/") or not file_name.lower().endswith(".3mf") \
            or len(file_name) > 200:
        raise InvalidInput(_("Name a .3mf file on the printer's storage, e.g. benchy.gcode.3mf."))
    if not 1 <= int(plate) <= 64:
        raise InvalidInput(_("The plate number must be between 1 and 64."))
    live = PrinterLiveState.objects.filter(printer=printer).first()
    if live is None or live.state not in IDLE_LIKE_STATES:
        raise ApplicationError(_("%(name)s is busy or offline; start a file only when it is idle or its last job "
                                 "has ended.") % {"name": printer.name})
    mapping = []
    loaded = {slot.get("slot") for slot in live.filament_slots or []}
    for value in ams_mapping or []:
        try:
            tray = int(value)
        except (TypeError, ValueError):
            raise InvalidInput(_("AMS mapping entries must be tray numbers.")) from None
        if tray != -1 and tray not in loaded:
            raise InvalidInput(_("Tray %(tray)s holds no filament on %(name)s; the printer would wait forever in "
                                 "\"preparing AMS\".") % {"tray": tray, "name": printer.name})
        mapping.append(tray)
    return bambu_command(printer=printer, action=CommandAction.PROJECT_FILE, params={
        "file": file_name, "plate": int(plate), "ams_mapping": mapping, "model": printer.model})


# --- Bambu commands through run_printers ------------------------------------------------------
#
# The web process never opens its own MQTT connection: a Bambu printer accepts very few clients
# and run_printers holds the one the app may use. A command is a PrinterCommand row; run_printers
# publishes it, waits for the acknowledgement and writes the outcome; the caller waits for it.

COMMAND_POLL_SECONDS = 0.1
_sleep = time.sleep  # the waiting seam (tests let run_printers work while the service waits)

_COMMAND_STATES = {
    CommandAction.PAUSE: {PrinterState.PRINTING, PrinterState.PREPARING},
    CommandAction.RESUME: {PrinterState.PAUSED, PrinterState.NEEDS_ATTENTION},
    CommandAction.STOP: {PrinterState.PRINTING, PrinterState.PREPARING, PrinterState.PAUSED,
                         PrinterState.NEEDS_ATTENTION},
}
IDLE_LIKE_STATES = {PrinterState.IDLE, PrinterState.FINISHED, PrinterState.CANCELLED, PrinterState.FAILED}


def bambu_command(*, printer: Printer, action: str, params: dict | None = None,
                  timeout: float | None = None) -> PrinterCommand:
    """Hand one command to run_printers and wait for its outcome; PrinterCommandError when it failed."""
    from printers.exceptions import PrinterCommandError, PrinterListenerDown

    if action not in CommandAction.values:
        raise InvalidInput(_("Unknown printer command %(action)s.") % {"action": action})
    refusal = command_refusal(printer=printer, action=action)
    if refusal:
        raise ApplicationError(refusal)
    command = PrinterCommand.objects.create(printer=printer, action=action, params=params or {})
    logger.info("Queued %s for printer %s (command %s).", action, printer.pk, command.pk)
    wait = (timeout if timeout is not None else float(conf.value("BAMBU_COMMAND_TIMEOUT_SECONDS"))) \
        + PICKUP_MARGIN_SECONDS
    deadline = time.monotonic() + wait
    while True:
        command.refresh_from_db(fields=["status", "error", "sequence_id", "sent_at", "finished_at"])
        if command.status in COMMAND_DONE:
            break
        if time.monotonic() >= deadline:
            if command.status == CommandStatus.PENDING and PrinterCommand.objects.filter(
                    pk=command.pk, status=CommandStatus.PENDING).update(
                    status=CommandStatus.EXPIRED, finished_at=timezone.now(),
                    error="no printer listener picked the command up"):
                raise PrinterListenerDown(_("The printer listener (manage.py run_printers) is not running, so "
                                            "the command did not reach %(name)s.") % {"name": printer.name})
            if time.monotonic() >= deadline + wait:  # sent, but run_printers never wrote the outcome
                raise PrinterCommandError(_("%(name)s: no outcome for the command.") % {"name": printer.name})
        _sleep(COMMAND_POLL_SECONDS)
    if command.status != CommandStatus.SUCCEEDED:
        raise PrinterCommandError(f"{printer.name}: {command.error}")
    return command


PICKUP_MARGIN_SECONDS = 3.0


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


def printer_ensure_live_state(*, printer: Printer) -> PrinterLiveState:
    """Every printer has its live-state row (the admin creates printers through the model form)."""
    live, _created = PrinterLiveState.objects.get_or_create(printer=printer)
    return live


# --- Commands requested without waiting (the API) ----------------------------------------------

CONTROL_ACTIONS = (CommandAction.PAUSE, CommandAction.RESUME, CommandAction.STOP, CommandAction.LIGHT)


def command_refusal(*, printer: Printer, action: str, live: PrinterLiveState | None = None) -> str:
    """Why `action` cannot be sent to `printer` now, as a sentence for the user; "" when it can."""
    if action == CommandAction.LIGHT and printer.driver != Driver.BAMBU:
        return _("Only Bambu printers have a light the app can switch.")
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


def printer_command_request(*, printer: Printer, action: str, light_on: bool | None = None,
                            organization=None, idempotency_key: str = "") -> PrinterCommand:
    """Record one control command and hand it on without waiting for a Bambu printer's answer.

    Bambu: the row stays pending until run_printers publishes it and records the outcome; the caller
    polls the row. PrusaLink: the request goes to the printer over HTTP at once and the row holds
    its outcome. With `organization` and `idempotency_key`, the same key sent again by the same
    organization returns the first command and sends nothing; the key for another request is refused.
    """
    from printers.exceptions import PrinterConflict

    if action not in CONTROL_ACTIONS:
        raise InvalidInput(_("Unknown printer command %(action)s; use pause, resume, stop or light.")
                           % {"action": action})
    params: dict = {}
    if action == CommandAction.LIGHT:
        if light_on is None:
            raise InvalidInput(_("Say whether the light goes on or off."))
        params["mode"] = "on" if light_on else "off"
    key = (idempotency_key or "").strip()
    if len(key) > 200:
        raise InvalidInput(_("The Idempotency-Key is too long (at most 200 characters)."))
    with transaction.atomic():
        Printer.objects.select_for_update().filter(pk=printer.pk).first()  # one request per printer at a time
        if organization is not None and key:
            earlier = PrinterCommand.objects.filter(organization=organization, idempotency_key=key).first()
            if earlier is not None:
                if earlier.printer_id != printer.pk or earlier.action != action \
                        or earlier.params.get("mode") != params.get("mode"):
                    raise PrinterConflict(_("This Idempotency-Key was already used for another command; "
                                            "send a new key for a new command."))
                return earlier
        refusal = command_refusal(printer=printer, action=action)
        if refusal:
            raise PrinterConflict(refusal)
        command = PrinterCommand.objects.create(printer=printer, action=action, params=params,
                                                organization=organization, idempotency_key=key)
    logger.info("Requested %s for printer %s (command %s).", action, printer.pk, command.pk)
    if printer.driver == Driver.PRUSALINK:
        _prusalink_execute(printer, command)
    return command


def _prusalink_execute(printer: Printer, command: PrinterCommand) -> None:
    live = PrinterLiveState.objects.filter(printer=printer).first()
    if live is None or not live.job_key:
        command_finish(command=command, ok=False, error=_("The printer has no job."))
        return
    try:
        client = prusalink_client(printer=printer)
    except ApplicationError as exc:
        command_finish(command=command, ok=False, error=_redact(exc.message, printer))
        return
    try:
        command_mark_sent(command=command, sequence_id=str(live.job_key)[:20])
        getattr(client, command.action)(live.job_key)
    except ApplicationError as exc:
        command_finish(command=command, ok=False, error=_redact(exc.message, printer))
    else:
        command_finish(command=command, ok=True)
        printer_poll_prusalink(printer=printer, client=client)
    finally:
        client.close()


def commands_expire_unclaimed(*, printer: Printer | None = None) -> int:
    """Mark commands that run_printers can no longer take (or never answered) as expired; returns how many.

    run_printers takes a pending command only within the command timeout plus the pick-up margin,
    so a command still pending after that was never sent; one sent but without an outcome after
    twice that will not get one. Safe to call often (one UPDATE each).
    """
    wait = timedelta(seconds=float(conf.value("BAMBU_COMMAND_TIMEOUT_SECONDS")) + PICKUP_MARGIN_SECONDS)
    now = timezone.now()
    commands = PrinterCommand.objects.all() if printer is None else PrinterCommand.objects.filter(printer=printer)
    expired = commands.filter(status=CommandStatus.PENDING, created_at__lt=now - wait).update(
        status=CommandStatus.EXPIRED, finished_at=now, error="no printer listener picked the command up")
    expired += commands.filter(status=CommandStatus.SENT, created_at__lt=now - 2 * wait).update(
        status=CommandStatus.EXPIRED, finished_at=now, error="the printer listener recorded no outcome")
    return expired
