"""Dispatch: a queued job goes to a free printer that has its filaments loaded, the best one first (exact
colour, earliest predicted finish, success with the variant, fullest spools last); claims are atomic; a job of
several copies goes out once per copy."""

import io
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from catalog.tests.factories import VariantFactory
from fablab.exceptions import Conflict, IllegalTransition
from inventory.models import Product
from inventory.selectors import product_units
from printers.choices import JobOutcome, PrinterState
from printers.drivers.base import StorageFile
from printers.models import PrinterJob
from production import selectors, services
from production.choices import AttemptOutcome, PrintJobStatus, SpoolSource
from production.models import PrintAttempt, PrinterStation, PrintJob, SlotAllocation
from production.tests.factories import (
    BambuPrinterFactory,
    FilamentFactory,
    PrintJobFactory,
    bambu_file,
    live,
    spool,
    version,
)

pytestmark = pytest.mark.django_db


def _tray(slot, material="PLA", colour="#00AE42", percent=80):
    return {"ams": 0, "tray": slot, "slot": slot, "type": material, "name": "", "colour": colour,
            "remaining_percent": percent, "loaded": False}


def _printer(name, trays, state=PrinterState.IDLE):
    printer = BambuPrinterFactory(name=name, model="P1S")
    return live(printer, state=state, online=True, filament_slots=trays, nozzle_type="hardened_steel",
                nozzle_diameter_mm=0.4)


def _queued(variant=None, file_fields=None, **kwargs):
    version_ = version(variant, **bambu_file(**(file_fields or {})))
    version_.sliced_file.original_name = "cube.gcode.3mf"
    version_.sliced_file.save()
    spool(FilamentFactory(material="PLA", colour_hex="#00AE42"))
    return services.print_job_create(version=version_, **kwargs)


def _with_file(job):
    job.version.sliced_file.file.save("cube.gcode.3mf", io.BytesIO(b"PK cube"), save=True)
    return job


def _history(printer, *outcomes, seconds=3600, estimate=3600, variant=None):
    """Past prints on `printer`: a job of a file estimated at `estimate` s, an attempt per outcome that took
    `seconds`."""
    past = PrintJobFactory(version=version(variant, **bambu_file(estimated_time_s=estimate)),
                           status=PrintJobStatus.COMPLETED)
    start = timezone.now() - timedelta(days=2)
    for number, outcome in enumerate(outcomes, start=1):
        PrintAttempt.objects.create(job=past, number=number, printer=printer, outcome=outcome, started_at=start,
                                    finished_at=start + timedelta(seconds=seconds))


def test_dispatch_prefers_an_exact_colour_and_sends_the_mapping(sent, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path)
    close = _printer("A close", [_tray(0, colour="#02B044")])
    exact = _printer("B exact", [_tray(0, colour="#FF0000"), _tray(3, colour="#00AE42")])
    _printer("C busy", [_tray(0)], state=PrinterState.PRINTING)
    job = _queued()
    job.version.sliced_file.file.save("cube.gcode.3mf", __import__("io").BytesIO(b"PK cube"), save=True)
    sent_job = services.print_job_dispatch()
    assert sent_job.pk == job.pk and sent_job.status == PrintJobStatus.SENT and sent_job.printer == exact
    assert sent == [("upload", "B exact", "cube.gcode.3mf"), ("start", "B exact", "/cube.gcode.3mf", [3])]
    attempt = PrintAttempt.objects.get(job=job)
    assert attempt.printer == exact and attempt.file_name == "cube.gcode.3mf"
    assert SlotAllocation.objects.get(attempt=attempt).tray == 3
    assert PrinterStation.objects.get(printer=exact).plate_clear is False
    assert services.print_job_dispatch() is None  # nothing else queued; "A close" stays free
    assert PrinterStation.objects.filter(printer=close, plate_clear=False).exists() is False


def test_a_printer_without_the_filament_or_with_its_plate_uncleared_is_not_chosen(sent, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path)
    _printer("Wrong colour", [_tray(0, colour="#FF0000")])
    _printer("Too little", [_tray(0, percent=0)])
    full = _printer("Plate full", [_tray(0)])
    PrinterStation.objects.create(printer=full, plate_clear=False)
    job = _queued()
    assert services.print_job_dispatch() is None
    with pytest.raises(Conflict):
        services.print_job_dispatch(job=job)
    job.refresh_from_db()
    assert job.status == PrintJobStatus.QUEUED and not sent
    services.printer_plate_cleared(printer=full)
    job.version.sliced_file.file.save("cube.gcode.3mf", __import__("io").BytesIO(b"PK cube"), save=True)
    assert services.print_job_dispatch(job=job, printer=full).printer == full


def test_a_loaded_spool_feeds_its_tray_and_is_booked_as_loaded(sent, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path)
    printer = _printer("Loaded", [_tray(1, percent=None)])
    job = _queued()
    job.version.sliced_file.file.save("cube.gcode.3mf", __import__("io").BytesIO(b"PK cube"), save=True)
    fed = spool(FilamentFactory(material="PLA", colour_hex="#00AE42"), grams="300")
    services.spool_load(printer=printer, tray=1, spool=fed)
    services.print_job_dispatch(job=job)
    allocation = SlotAllocation.objects.get()
    assert (allocation.spool, allocation.spool_source, allocation.tray) == (fed, SpoolSource.LOADED, 1)
    assert allocation.grams_planned == Decimal("6.750")


def test_one_job_is_claimed_once_and_one_printer_takes_one_job(sent):
    printer = _printer("Solo", [_tray(0)])
    job = _queued()
    placement = services._placement(printer, job)
    first = services._claim(job, placement)
    assert first is not None and services._claim(job, placement) is None  # the job is taken
    job.refresh_from_db()
    assert job.status == PrintJobStatus.ASSIGNED and PrintAttempt.objects.count() == 1
    other = _queued()
    assert services._claim(other, services._placement(printer, other)) is None  # the printer is taken
    other.refresh_from_db()
    assert other.status == PrintJobStatus.QUEUED


def test_a_printer_that_refuses_the_file_puts_the_job_back(monkeypatch, sent, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path)
    printer = _printer("Refuses", [_tray(0)])
    job = _queued()
    job.version.sliced_file.file.save("cube.gcode.3mf", __import__("io").BytesIO(b"PK cube"), save=True)

    def refuse(**kwargs):
        raise Conflict("busy")

    monkeypatch.setattr(services.printer_services, "printer_start_file", refuse)
    with pytest.raises(Conflict):
        services.print_job_dispatch(job=job)
    job.refresh_from_db()
    attempt = PrintAttempt.objects.get()
    assert job.status == PrintJobStatus.QUEUED and attempt.outcome == AttemptOutcome.FAILED
    assert "busy" in attempt.reason and PrinterStation.objects.get(printer=printer).plate_clear is True


def test_automatic_dispatch_only_fills_printers_that_have_it_on(sent, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path)
    printer = _printer("Auto", [_tray(0)])
    job = _queued()
    job.version.sliced_file.file.save("cube.gcode.3mf", __import__("io").BytesIO(b"PK cube"), save=True)
    assert services.print_jobs_dispatch_auto() == 0
    services.printer_station_set_auto(printer=printer, auto_dispatch=True)
    assert services.print_jobs_dispatch_auto() == 1


def test_the_demo_setting_lets_an_idle_printer_with_automatic_dispatch_count_as_cleared(sent, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path)
    printer = _printer("Demo auto", [_tray(0)])
    finished = _printer("Demo finished", [_tray(0)], state=PrinterState.FINISHED)
    manual = _printer("Demo manual", [_tray(0)])
    for each in (printer, finished, manual):
        services.printer_station_set_auto(printer=each, auto_dispatch=each != manual)
    PrinterStation.objects.update(plate_clear=False)
    job = _queued()
    job.version.sliced_file.file.save("cube.gcode.3mf", __import__("io").BytesIO(b"PK cube"), save=True)

    settings.PRODUCTION_IDLE_MEANS_PLATE_CLEARED = False  # a lab: only an operator clears a plate
    assert services.print_jobs_dispatch_auto() == 0
    assert not PrinterStation.objects.filter(plate_clear=True).exists()

    settings.PRODUCTION_IDLE_MEANS_PLATE_CLEARED = True
    assert services.print_jobs_dispatch_auto() == 1
    job.refresh_from_db()
    assert job.status == PrintJobStatus.SENT and job.printer == printer
    assert PrinterStation.objects.get(printer=printer).plate_clear is False  # taken by the job just sent
    assert PrinterStation.objects.get(printer=finished).plate_clear is False  # its print is still on the plate
    assert PrinterStation.objects.get(printer=manual).plate_clear is False  # no automatic dispatch
    services._plates_cleared_by_idle_printers()
    assert PrinterStation.objects.get(printer=printer).plate_clear is False  # busy with the job sent


# --- ranking: exact colour, then the earliest predicted finish, then success with the variant ------


def test_the_printer_predicted_to_finish_first_wins_over_the_emptier_spool(sent, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path)
    slow = _printer("A slow", [_tray(0, percent=20)])  # the fewest grams left: what used to decide
    fast = _printer("B fast", [_tray(0, percent=90)])
    _history(slow, "completed", "completed", seconds=5400)  # 1.5 × the slicer's estimate
    _history(fast, "completed", seconds=3240)  # 0.9 ×
    job = _with_file(_queued())  # estimated at 3600 s
    placements = services._placements(job, services._free_printers())
    assert [p.printer for p in placements] == [fast, slow]
    assert [p.print_seconds for p in placements] == [pytest.approx(3240), pytest.approx(5400)]
    assert placements[0].finish_at < placements[1].finish_at
    assert timezone.now() + timedelta(seconds=3200) < placements[0].finish_at < timezone.now() + timedelta(
        seconds=3300)
    assert services.print_job_dispatch().printer == fast


def test_an_exact_colour_still_comes_before_an_earlier_finish(sent):
    fast_close = _printer("A fast, close colour", [_tray(0, colour="#02B044")])
    slow_exact = _printer("B slow, exact colour", [_tray(0)])
    _history(fast_close, "completed", seconds=1800)
    _history(slow_exact, "completed", seconds=7200)
    placements = services._placements(_queued(), services._free_printers())
    assert [p.printer for p in placements] == [slow_exact, fast_close]


def test_with_finishes_alike_the_printer_that_prints_the_variant_well_wins(sent):
    variant = VariantFactory()
    steady = _printer("A steady", [_tray(0, percent=90)])
    lucky = _printer("B lucky", [_tray(0, percent=90)])
    shaky = _printer("C shaky", [_tray(0, percent=20)])  # the fewest grams left
    _history(steady, *["completed"] * 19, "failed", variant=variant)  # as fast as estimated
    _history(lucky, "completed", seconds=3672, variant=variant)  # 72 s later: within the same five minutes
    _history(shaky, "completed", "failed", "failed", variant=variant)
    _history(shaky, *["completed"] * 5)  # another variant: says nothing about this one
    placements = services._placements(_queued(variant=variant), services._free_printers())
    assert [p.printer for p in placements] == [steady, lucky, shaky]
    # The fleet printed the variant 21 of 24 times well: (21 + 1) / (24 + 2) is the prior, worth 4 attempts.
    fleet = 22 / 26
    assert [p.success for p in placements] == [pytest.approx((19 + 4 * fleet) / 24), pytest.approx(
        (1 + 4 * fleet) / 5), pytest.approx((1 + 4 * fleet) / 7)]


def test_without_history_or_estimate_the_emptier_spool_decides(sent):
    full = _printer("A full", [_tray(0, percent=90)])
    emptier = _printer("B emptier", [_tray(0, percent=30)])
    placements = services._placements(_queued(file_fields={"estimated_time_s": None}), services._free_printers())
    assert [p.printer for p in placements] == [emptier, full]
    assert all(p.print_seconds is None and p.finish_at is None for p in placements)
    assert placements[0].success == placements[1].success == 0.5  # nothing printed yet: one half
    placements = services._placements(_queued(), services._free_printers())
    assert [p.printer for p in placements] == [emptier, full]
    assert [p.print_seconds for p in placements] == [3600, 3600]  # no history: the slicer's estimate


def test_a_printers_speed_is_the_median_of_its_completed_prints(sent):
    printer = _printer("Paused once", [_tray(0)])
    _history(printer, "completed", "completed", seconds=3960)  # 1.1 ×
    _history(printer, "completed", seconds=36000)  # left paused overnight: 10 ×
    _history(printer, "failed", "cancelled", seconds=60)  # ended early: not a measure of speed
    _history(printer, "completed", seconds=600, estimate=None)  # the file states no estimate
    measured = _printer("Measured by its job", [_tray(0)])
    _history(measured, "completed", seconds=3600)
    attempt = PrintAttempt.objects.get(printer=measured)
    attempt.printer_job = PrinterJob.objects.create(printer=measured, file_name="x.gcode",
                                                    started_at=attempt.started_at, ended_at=attempt.finished_at,
                                                    outcome=JobOutcome.COMPLETED, duration_seconds=2700)
    attempt.save()
    untried = _printer("New", [_tray(0)])
    factors = selectors.printer_duration_factors(printer_ids=[printer.pk, measured.pk, untried.pk])
    assert factors == {printer.pk: pytest.approx(1.1), measured.pk: pytest.approx(0.75)}


def test_a_success_score_needs_printed_attempts_of_the_variant(sent):
    variant = VariantFactory()
    printer = _printer("Solo", [_tray(0)])
    _history(printer, "completed", "running", variant=variant)
    refused = PrintJobFactory(version=version(variant), status=PrintJobStatus.QUEUED)
    PrintAttempt.objects.create(job=refused, number=1, printer=printer, outcome=AttemptOutcome.FAILED,
                                reason="Not sent: busy")  # the printer never started it
    fleet = (1 + 1) / (1 + 2)
    assert selectors.printer_variant_success(printer_ids=[printer.pk], variant_id=variant.pk) == {
        printer.pk: pytest.approx((1 + 4 * fleet) / 5)}


# --- copies: one plate after the other -----------------------------------------------------------


def _print(printer, key, outcome=JobOutcome.COMPLETED):
    """The printer prints what it was sent and reports the end, as the printer listener records it."""
    started = timezone.now() - timedelta(hours=1)
    printer_job = PrinterJob.objects.create(printer=printer, external_job_id=key, file_name="cube.gcode.3mf",
                                            started_at=started)
    services.printer_job_started(printer_job=printer_job)
    printer_job.outcome, printer_job.ended_at, printer_job.duration_seconds = outcome, timezone.now(), 3600
    printer_job.save()
    services.printer_job_finished(printer_job=printer_job, outcome=outcome)
    return printer_job


def test_a_job_of_three_copies_goes_back_to_the_queue_until_its_third_good_plate(sent, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path)
    printer = _printer("Farm 1", [_tray(0)])
    job = _with_file(_queued(copies=3))
    later = _queued()
    position = job.position
    assert services.print_job_dispatch(job=job).printer == printer

    first = _print(printer, "1")
    job.refresh_from_db()
    assert (job.status, job.copies_done, job.printer, job.position) == (PrintJobStatus.QUEUED, 1, None, position)
    assert job.started_at is not None and job.finished_at is None and job.feasible is True
    assert list(selectors.print_job_queue()) == [job, later]  # it kept its place at the front
    product = Product.objects.get(variant=job.version.variant)
    assert product_units(product=product) == 1
    assert services.print_job_dispatch() is None  # the plate is not cleared yet

    services.printer_plate_cleared(printer=printer)
    assert services.print_job_dispatch() == job  # the next copy, before the job queued later
    _print(printer, "2", outcome=JobOutcome.FAILED)
    job.refresh_from_db()
    assert (job.status, job.copies_done) == (PrintJobStatus.FAILED, 1)
    assert product_units(product=product) == 1

    job = services.print_job_requeue(job=job)  # staff put it back for the copies left, at the end
    assert job.status == PrintJobStatus.QUEUED and job.copies_done == 1 and job.position > later.position
    for key in ("3", "4"):
        services.printer_plate_cleared(printer=printer)
        services.print_job_dispatch(job=job)
        _print(printer, key)
    job.refresh_from_db()
    assert (job.status, job.copies_done) == (PrintJobStatus.COMPLETED, 3) and job.finished_at is not None
    assert list(job.attempts.values_list("number", "outcome")) == [
        (1, "completed"), (2, "failed"), (3, "completed"), (4, "completed")]
    assert product_units(product=product) == 3

    services.printer_job_finished(printer_job=first, outcome=JobOutcome.COMPLETED)  # a replayed report
    job.refresh_from_db()
    assert job.copies_done == 3 and product_units(product=product) == 3


def test_a_single_copy_completes_at_once(sent, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path)
    printer = _printer("Farm 2", [_tray(0)])
    job = _with_file(_queued())
    services.print_job_dispatch(job=job)
    _print(printer, "1")
    job.refresh_from_db()
    assert (job.status, job.copies_done) == (PrintJobStatus.COMPLETED, 1)


def test_a_printing_job_goes_back_to_the_queue_only_for_a_further_copy(sent, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path)
    printer = _printer("Farm 3", [_tray(0)])
    job = _with_file(_queued(copies=2))
    services.print_job_dispatch(job=job)
    printer_job = PrinterJob.objects.create(printer=printer, file_name="cube.gcode.3mf", started_at=timezone.now())
    services.printer_job_started(printer_job=printer_job)
    with pytest.raises(IllegalTransition, match="on a printer"):
        services.print_job_requeue(job=job)  # its plate is still printing
    job.refresh_from_db()
    assert job.status == PrintJobStatus.PRINTING and job.printer == printer

    PrintAttempt.objects.filter(job=job).update(outcome=AttemptOutcome.COMPLETED)
    PrintJob.objects.filter(pk=job.pk).update(copies_done=2)
    with pytest.raises(IllegalTransition, match="has all its 2 copies"):
        services.print_job_transition(job=job, status=PrintJobStatus.QUEUED)
    job.refresh_from_db()
    assert job.status == PrintJobStatus.PRINTING


def test_only_the_copies_left_need_filament():
    _printer("Any", [_tray(0)])
    spool(FilamentFactory(material="PLA", colour_hex="#00AE42"), grams="10")
    job = services.print_job_create(version=version(**bambu_file()), copies=3)  # 3 × 6.75 g
    assert job.feasible is False
    PrintJob.objects.filter(pk=job.pk).update(copies_done=2)
    services.print_jobs_recheck()
    job.refresh_from_db()
    assert job.feasible is True  # 6.75 g for the one copy left


# --- two dispatchers at the same moment -----------------------------------------------------------


@pytest.mark.skipif(connection.vendor != "postgresql",
                    reason="needs PostgreSQL: SQLite serialises writers, so the two claims never race there")
@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_racing_for_one_job_and_one_printer_send_it_once(monkeypatch, tmp_path, settings):
    from django.db import connections

    settings.MEDIA_ROOT = str(tmp_path)
    printer = _printer("Raced", [_tray(0)])
    job = _with_file(_queued())
    calls, lock = [], threading.Lock()

    def upload(*, printer, name, source, size=None):
        with lock:
            calls.append("upload")
        return StorageFile(path=f"/{name}", name=name, folder="/", size_bytes=size, modified=None)

    def start(*, printer, path, plate=1, filament_mapping=None, organization=None, idempotency_key=""):
        with lock:
            calls.append("start")

    monkeypatch.setattr(services.printer_services, "printer_file_upload", upload)
    monkeypatch.setattr(services.printer_services, "printer_start_file", start)
    # Both dispatchers found the printer free and the job queued before either claims: then they claim at once.
    at_claim = threading.Barrier(2, timeout=20)
    claim = services._claim

    def claim_together(job_, placement):
        at_claim.wait()
        return claim(job_, placement)

    monkeypatch.setattr(services, "_claim", claim_together)
    at_start = threading.Barrier(2, timeout=20)
    results = []

    def dispatcher():
        try:
            at_start.wait()
            results.append(services.print_job_dispatch(job=job, printer=printer))
        except Exception as exc:  # noqa: BLE001 - the loser's answer is checked below
            results.append(exc)
        finally:
            connections.close_all()  # this thread's own connection

    threads = [threading.Thread(target=dispatcher) for _n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)

    sent_jobs = [r for r in results if isinstance(r, PrintJob)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(sent_jobs) == 1 and len(refused) == 1, results
    assert "taken by another dispatcher" in str(refused[0].message)
    assert calls == ["upload", "start"]
    attempt = PrintAttempt.objects.get()
    assert attempt.job_id == job.pk and attempt.printer == printer and attempt.number == 1
    job.refresh_from_db()
    assert job.status == PrintJobStatus.SENT and job.printer == printer
    assert PrinterStation.objects.get(printer=printer).plate_clear is False
