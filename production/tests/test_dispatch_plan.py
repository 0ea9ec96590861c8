"""Dispatch follows the farm plan: a free printer takes the jobs planned on it first (earliest planned start);
otherwise the queue's order, without the jobs the plan holds for another printer that frees up within
PRODUCTION_PLAN_HOLD_SECONDS; a queue without a plan is dispatched in queue order as before."""

from datetime import timedelta

import pytest
from django.utils import timezone

from printers.choices import PrinterState
from production import services
from production.choices import AttemptOutcome, PrintJobStatus, Priority
from production.models import PrintAttempt, PrintJob
from production.tests.test_dispatch import _printer, _queued, _tray, _with_file

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.PRODUCTION_PLAN_HOLD_SECONDS = 900


def _plan(job, printer, *, start_in_s: int, seconds: int = 3600) -> PrintJob:
    """Store a plan for `job` as print_queue_replan does."""
    start = timezone.now() + timedelta(seconds=start_in_s)
    PrintJob.objects.filter(pk=job.pk).update(planned_printer=printer, planned_start=start,
                                              planned_finish=start + timedelta(seconds=seconds))
    job.refresh_from_db()
    return job


def _status(job):
    job.refresh_from_db()
    return job.status, job.printer


def test_a_free_printer_takes_its_planned_job_before_a_higher_ranked_unplanned_one(sent):
    printer = _printer("Planned", [_tray(0)])
    urgent = _with_file(_queued(priority=Priority.URGENT))  # first in the queue, but not planned
    later = _with_file(_queued(priority=Priority.LOW))
    first = _with_file(_queued(priority=Priority.LOW))
    _plan(later, printer, start_in_s=7200)
    _plan(first, printer, start_in_s=3600)  # planned earlier on this printer than `later`
    sent_job = services.print_job_dispatch()
    assert sent_job.pk == first.pk and sent_job.printer == printer
    assert _status(urgent) == (PrintJobStatus.QUEUED, None)
    assert _status(later) == (PrintJobStatus.QUEUED, None)


def test_the_same_applies_when_the_printer_itself_asks_for_work(sent):
    printer = _printer("Asks", [_tray(0)])
    _with_file(_queued(priority=Priority.URGENT))
    planned = _plan(_with_file(_queued(priority=Priority.LOW)), printer, start_in_s=0)
    assert services.print_job_dispatch(printer=printer).pk == planned.pk


def test_a_planned_job_the_printer_cannot_take_now_leaves_it_to_the_queue(sent):
    printer = _printer("Green only", [_tray(0)])
    red = _with_file(_queued(file_fields={"filament_colour": ["#FF0000"]}))  # nothing red loaded
    green = _with_file(_queued())
    _plan(red, printer, start_in_s=0)
    assert services.print_job_dispatch().pk == green.pk
    assert _status(red) == (PrintJobStatus.QUEUED, None)


@pytest.mark.parametrize(("start_in_s", "held"), [
    (600, True),  # its printer is expected to free up within the grace
    (-600, True),  # planned a while ago, still within the grace
    (1800, False),  # its printer is busy for longer: a free printer takes it now
    (-1800, False),  # its planned start passed longer ago than the grace: no longer held
])
def test_a_job_planned_on_another_printer_is_held_only_within_the_grace(sent, start_in_s, held):
    free = _printer("Free", [_tray(0)])
    busy = _printer("Busy", [_tray(0)], state=PrinterState.PRINTING)
    job = _plan(_with_file(_queued()), busy, start_in_s=start_in_s)
    sent_job = services.print_job_dispatch()
    if held:
        assert sent_job is None
        assert services.print_job_dispatch(printer=free) is None
        assert _status(job) == (PrintJobStatus.QUEUED, None)
    else:
        assert sent_job.pk == job.pk and sent_job.printer == free


def test_a_held_job_is_taken_once_the_grace_is_over_and_the_next_job_goes_meanwhile(sent, settings):
    free = _printer("Free", [_tray(0)])
    busy = _printer("Busy", [_tray(0)], state=PrinterState.PRINTING)
    held = _plan(_with_file(_queued(priority=Priority.URGENT)), busy, start_in_s=300)
    other = _with_file(_queued(priority=Priority.LOW))
    assert services.print_job_dispatch().pk == other.pk  # the free printer works on what is not held
    PrintAttempt.objects.filter(job=other).update(outcome=AttemptOutcome.COMPLETED)  # done and cleared
    services.printer_plate_cleared(printer=free)
    assert services.print_job_dispatch() is None
    settings.PRODUCTION_PLAN_HOLD_SECONDS = 60  # the same as the grace running out before the planned start
    assert services.print_job_dispatch().pk == held.pk
    assert _status(held) == (PrintJobStatus.SENT, free)


def test_staff_sending_a_job_override_the_plan(sent):
    free = _printer("Free", [_tray(0)])
    busy = _printer("Busy", [_tray(0)], state=PrinterState.PRINTING)
    job = _plan(_with_file(_queued()), busy, start_in_s=60)
    assert services.print_job_dispatch(job=job).printer == free


def test_without_a_plan_the_queue_order_decides_as_before(sent):
    printer = _printer("Unplanned", [_tray(0)])
    low = _with_file(_queued(priority=Priority.LOW))
    urgent = _with_file(_queued(priority=Priority.URGENT))
    assert not PrintJob.objects.filter(planned_printer__isnull=False).exists()
    assert services.print_job_dispatch().pk == urgent.pk
    PrintAttempt.objects.filter(job=urgent).update(outcome=AttemptOutcome.COMPLETED)
    services.printer_plate_cleared(printer=printer)
    assert services.print_job_dispatch().pk == low.pk



def test_a_printers_next_job_on_its_station_is_the_one_dispatch_would_send():
    from production import selectors

    here = _printer("Here", [_tray(0)])
    elsewhere = _printer("Elsewhere", [_tray(0)], state=PrinterState.PRINTING)
    urgent = _with_file(_queued(priority=Priority.URGENT))
    mine = _plan(_with_file(_queued(priority=Priority.LOW)), here, start_in_s=1200)
    _plan(urgent, elsewhere, start_in_s=300)  # held for the other printer within the grace
    assert selectors.printer_next_jobs(printers=[here])[here.pk].pk == mine.pk
    PrintJob.objects.update(planned_printer=None, planned_start=None, planned_finish=None)
    assert selectors.printer_next_jobs(printers=[here])[here.pk].pk == urgent.pk
