"""Feasibility is checked again when stock or printers change: inventory.signals.stock_changed and
printers.signals.printer_changed make production queue one background check (production.tasks.recheck_queue),
spaced out by PRODUCTION_RECHECK_SECONDS and never run on the spot in the printers' report path."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import Schedule

from inventory import services as inventory_services
from printers import services as printer_services
from printers.choices import PrinterState
from printers.state import NormalisedState
from production import services, tasks
from production.feasibility import SLOT_SHORT
from production.models import PrintJob, QueueRecheck
from production.tests.factories import FilamentFactory, PrinterFactory, job, spool

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(settings):
    """A queued job that needs 12.5 g of PETG #FF8000 on an MK4S-type printer, with 20 g in stock."""
    settings.PRODUCTION_RECHECK_SECONDS = 0
    PrinterFactory(model="MK4S")
    petg = FilamentFactory(material="PETG", colour_hex="#FF8000")
    fed = spool(petg, grams="20")
    item = job()
    assert item.feasible is True
    return item, petg, fed


def _feasible(item) -> bool | None:
    return PrintJob.objects.get(pk=item.pk).feasible


def test_grams_dropping_below_what_a_queued_job_needs_make_it_infeasible_once_the_task_ran(queued, run_tasks):
    item, _petg, fed = queued
    with run_tasks():
        inventory_services.spool_use(spool=fed, grams_used=15, idempotency_key="print-elsewhere")
        assert _feasible(item) is True  # nothing is checked before the change commits
    item.refresh_from_db()
    assert item.feasible is False
    assert [reason["text"] for reason in item.feasibility_reasons] == [SLOT_SHORT]
    assert QueueRecheck.objects.get().queued_at is None  # the check ran: the next change queues another


def test_a_new_spool_makes_it_feasible_again(queued, run_tasks):
    item, petg, fed = queued
    with run_tasks():
        inventory_services.spool_use(spool=fed, grams_used=15, idempotency_key="print-elsewhere")
    assert _feasible(item) is False
    with run_tasks():
        spool(petg, grams="750")
    assert _feasible(item) is True


@pytest.mark.parametrize("change", ["archive", "filament"])
def test_archiving_the_spool_or_recolouring_the_filament_is_a_change_too(queued, run_tasks, change):
    item, petg, fed = queued
    with run_tasks():
        if change == "archive":
            inventory_services.spool_archive(spool=fed)
        else:
            inventory_services.filament_update(filament=petg, colour_hex="#0000FF")
    assert _feasible(item) is False


def test_a_printer_changed_by_staff_makes_a_job_feasible(settings, run_tasks):
    settings.PRODUCTION_RECHECK_SECONDS = 0
    spool(FilamentFactory(material="PETG", colour_hex="#FF8000"), grams="500")
    printer = PrinterFactory(model="MK4S", nozzle_diameter_mm="0.6")
    item = job()
    assert item.feasible is False  # the file needs a 0.4 mm nozzle
    with run_tasks():
        printer_services.printer_update(printer=printer, nozzle_diameter_mm="0.4")
    assert _feasible(item) is True


def test_a_printer_that_reports_its_nozzle_is_checked_in_the_background_not_in_its_report(
        settings, monkeypatch, django_capture_on_commit_callbacks):
    settings.PRODUCTION_RECHECK_SECONDS = 0
    spool(FilamentFactory(material="PETG", colour_hex="#FF8000"), grams="500")
    printer = PrinterFactory(model="MK4S", nozzle_diameter_mm="0.6")
    item = job()
    queued = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *args, **kwargs: queued.append(func))
    checked = []
    monkeypatch.setattr(services, "print_jobs_recheck", lambda: checked.append(1))
    with django_capture_on_commit_callbacks(execute=True):
        printer_services.printer_apply_state(printer=printer, state=NormalisedState(
            state=PrinterState.IDLE, nozzle_diameter_mm=0.4))  # it comes online with a 0.4 mm nozzle
    assert queued == [services.RECHECK_TASK] and checked == []  # queued for the task cluster, not run here
    monkeypatch.undo()
    tasks.recheck_queue()
    assert _feasible(item) is True


def test_two_changes_before_the_check_starts_queue_one_check(queued, monkeypatch, django_capture_on_commit_callbacks):
    _item, petg, fed = queued
    calls = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *args, **kwargs: calls.append(func))
    with django_capture_on_commit_callbacks(execute=True):
        inventory_services.spool_use(spool=fed, grams_used=1, idempotency_key="a")
    with django_capture_on_commit_callbacks(execute=True):
        spool(petg, grams="100")
        inventory_services.spool_use(spool=fed, grams_used=1, idempotency_key="b")
    assert calls == [services.RECHECK_TASK]
    assert services.print_jobs_recheck_request() is False  # still waiting: it will see every change
    tasks.recheck_queue()
    with django_capture_on_commit_callbacks(execute=True):
        inventory_services.spool_use(spool=fed, grams_used=1, idempotency_key="c")
    assert calls == [services.RECHECK_TASK] * 2  # a change after the check started queues the next one


def test_a_change_soon_after_a_check_is_scheduled_once_for_when_the_spacing_is_over(
        queued, settings, monkeypatch, django_capture_on_commit_callbacks):
    settings.PRODUCTION_RECHECK_SECONDS = 30
    _item, _petg, fed = queued
    calls = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *args, **kwargs: calls.append(func))
    tasks.recheck_queue()
    started = QueueRecheck.objects.get().started_at
    for number in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            inventory_services.spool_use(spool=fed, grams_used=1, idempotency_key=f"soon-{number}")
    assert calls == []
    schedule = Schedule.objects.get(name=services.RECHECK_SCHEDULE)
    assert schedule.func == services.RECHECK_TASK and schedule.schedule_type == Schedule.ONCE
    assert schedule.next_run == started + timedelta(seconds=30)


def test_a_check_whose_task_was_lost_is_queued_again(queued, settings, monkeypatch,
                                                     django_capture_on_commit_callbacks):
    calls = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *args, **kwargs: calls.append(func))
    long_ago = timezone.now() - timedelta(seconds=2 * settings.TASK_TIMEOUT_SECONDS + 60)
    QueueRecheck.objects.update_or_create(pk=1, defaults={"queued_at": timezone.now(), "started_at": long_ago})
    with django_capture_on_commit_callbacks(execute=True):
        assert services.print_jobs_recheck_request() is False  # one waits, queued just now
    QueueRecheck.objects.filter(pk=1).update(queued_at=long_ago)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.print_jobs_recheck_request() is True  # that one never started: given up
    assert calls == [services.RECHECK_TASK]


def test_the_check_is_safe_to_run_twice(queued):
    item, _petg, fed = queued
    inventory_services.spool_use(spool=fed, grams_used=15, idempotency_key="x")
    assert tasks.recheck_queue() == 1
    assert tasks.recheck_queue() == 0
    assert _feasible(item) is False


def test_a_failing_request_does_not_stop_the_stock_change(queued, monkeypatch, django_capture_on_commit_callbacks):
    _item, _petg, fed = queued

    def broken():
        raise RuntimeError("broker down")

    monkeypatch.setattr(services, "print_jobs_recheck_request", broken)
    with django_capture_on_commit_callbacks(execute=True):
        inventory_services.spool_use(spool=fed, grams_used=1, idempotency_key="still-booked")
    fed.refresh_from_db()
    assert fed.remaining_grams == 19
