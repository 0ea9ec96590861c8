"""The farm plan of the queue: services.print_queue_replan builds the planner's instance from the database
(active printers and when each is free, the waiting feasible jobs and the printers that take each), plans
it and stores each job's planned printer, start and finish; production.tasks.replan_queue runs it in the
background after the queue, stock or printers change."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from production import services, tasks
from production.choices import AttemptOutcome, PrintJobStatus
from production.models import PrintAttempt, PrinterStation, PrintJob, QueueReplan
from production.planning import check_plan, parse_instance
from production.tests.factories import FilamentFactory, PrinterFactory, PrintJobFactory, job, spool, version

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def quick_plans(settings):
    settings.PRODUCTION_PLAN_SECONDS = 1
    settings.PRODUCTION_RECHECK_SECONDS = 0
    settings.PRODUCTION_SHIFTS = []
    settings.PRODUCTION_HOLIDAYS = []


@pytest.fixture
def farm():
    """Two MK4S printers, `tall` takes any of the jobs, `short` only those up to 50 mm; a short, a tall and a
    second short job waiting, with filament for all of them."""
    spool(FilamentFactory(material="PETG", colour_hex="#FF8000"), grams="1000")
    tall = PrinterFactory(model="MK4S", name="tall", bed_z_mm=250)
    short = PrinterFactory(model="MK4S", name="short", bed_z_mm=50)
    jobs = [job(version(object_height=20.0, estimated_time_s=3600)),
            job(version(object_height=120.0, estimated_time_s=7200), copies=2),
            job(version(object_height=30.0, estimated_time_s=1800))]
    assert all(item.feasible for item in jobs)
    return tall, short, jobs


def _replan(monkeypatch, **kwargs):
    """Plan the queue; returns the planner's result and the instance it planned."""
    seen = {}
    build = services.print_queue_instance

    def capture(**inner):
        data, jobs = build(**inner)
        seen["data"] = data
        return data, jobs

    monkeypatch.setattr(services, "print_queue_instance", capture)
    result = services.print_queue_replan(time_limit=1, **kwargs)
    return result, seen["data"]


def test_every_waiting_job_gets_a_plan_the_checker_accepts_on_a_printer_that_takes_it(farm, monkeypatch):
    tall, short, jobs = farm
    result, data = _replan(monkeypatch)
    instance = parse_instance(data)
    assert check_plan(instance, result.to_dict()) == []
    durations = {item["id"]: item["durations_s"] for item in data["jobs"]}
    # The tall job fits only the tall printer, for its plate's estimate × its two copies.
    assert durations[str(jobs[1].pk)] == {str(tall.pk): 14400}
    assert durations[str(jobs[0].pk)] == {str(tall.pk): 3600, str(short.pk): 3600}
    assert {item["weight"] for item in data["jobs"]} == {2}  # normal priority
    assert data["changeover_s"] == 600
    stored = {row.pk: row for row in PrintJob.objects.all()}
    for row in result.assignments:
        item = stored[int(row.job)]
        assert (item.planned_printer_id, item.planned_start, item.planned_finish) == (int(row.printer), row.start,
                                                                                      row.end)
    assert stored[jobs[1].pk].planned_printer == tall
    assert all(item.planned_start is not None and item.planned_finish > item.planned_start
               for item in stored.values())
    assert QueueReplan.objects.get().solver == result.solver


def test_a_printing_printer_is_free_when_its_print_ends_and_a_waiting_plate_after_the_allowance(
        farm, monkeypatch, settings):
    tall, short, _jobs = farm
    settings.PRODUCTION_PLATE_WAIT_SECONDS = 900
    PrinterStation.objects.update_or_create(printer=short, defaults={"plate_clear": False})
    printing = PrintJobFactory(version=version(estimated_time_s=3600, filament_type=["PLA"],
                                               filament_colour=["#000000"]),
                               status=PrintJobStatus.PRINTING, printer=tall)
    PrintAttempt.objects.create(job=printing, number=1, printer=tall, outcome=AttemptOutcome.RUNNING,
                                started_at=timezone.now() - timedelta(minutes=10))
    before = timezone.now()
    _result, data = _replan(monkeypatch)
    available = {item["id"]: parse_datetime(item["available_at"]) for item in data["printers"]}
    # Started 10 min ago on a 60 min plate; the printer reports no remaining time.
    assert timedelta(minutes=49) <= available[str(tall.pk)] - before <= timedelta(minutes=51)
    assert timedelta(seconds=900) <= available[str(short.pk)] - before < timedelta(seconds=960)
    families = {item["id"]: item.get("family") for item in data["printers"]}
    assert families == {str(tall.pk): "PLA #000000", str(short.pk): None}
    # What the printer reports as remaining wins over the estimate.
    tall.live.remaining_seconds = 5000
    tall.live.save()
    before = timezone.now()
    _result, data = _replan(monkeypatch)
    available = {item["id"]: parse_datetime(item["available_at"]) for item in data["printers"]}
    assert timedelta(seconds=5000) <= available[str(tall.pk)] - before < timedelta(seconds=5060)
    assert check_plan(parse_instance(data), _result.to_dict()) == []


def test_jobs_that_leave_the_queue_lose_their_plan(farm, monkeypatch):
    _tall, _short, jobs = farm
    _replan(monkeypatch)
    assert PrintJob.objects.filter(planned_finish__isnull=False).count() == 3
    services.print_job_cancel(job=jobs[0])
    cancelled = PrintJob.objects.get(pk=jobs[0].pk)
    assert (cancelled.planned_printer, cancelled.planned_start, cancelled.planned_finish) == (None, None, None)
    # A job that left the queue by another way loses its plan at the next planning.
    PrintJob.objects.filter(pk=jobs[2].pk).update(status=PrintJobStatus.FAILED)
    result, _data = _replan(monkeypatch)
    assert {row.job for row in result.assignments} == {str(jobs[1].pk)}
    left = PrintJob.objects.get(pk=jobs[2].pk)
    assert (left.planned_printer, left.planned_start, left.planned_finish) == (None, None, None)
    assert PrintJob.objects.get(pk=jobs[1].pk).planned_finish is not None


def test_a_due_date_that_cannot_be_met_shows_the_job_late(farm, monkeypatch, admin_client):
    _tall, _short, jobs = farm
    PrintJob.objects.filter(pk=jobs[1].pk).update(due_at=timezone.now() + timedelta(hours=1))  # needs 4 h
    result, _data = _replan(monkeypatch)
    late = PrintJob.objects.get(pk=jobs[1].pk)
    assert late.planned_finish > late.due_at
    assert result.late_jobs == 1
    page = admin_client.get("/admin/production/printjob/")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('class="planned-late"') == 1
    assert "tall" in html  # the planned printer column


def test_a_job_no_printer_takes_or_without_an_estimate_gets_no_plan(farm, monkeypatch):
    _tall, _short, _jobs = farm
    too_tall = job(version(object_height=400.0))
    assert too_tall.feasible is False
    no_estimate = job(version(estimated_time_s=None))
    result, data = _replan(monkeypatch)
    planned = {row.job for row in result.assignments}
    assert str(too_tall.pk) not in planned and str(no_estimate.pk) not in planned
    assert len(data["jobs"]) == 3
    assert PrintJob.objects.get(pk=no_estimate.pk).planned_finish is None


def test_priority_and_settings_reach_the_instance(farm, monkeypatch, settings):
    _tall, _short, jobs = farm
    settings.PRODUCTION_CHANGEOVER_SECONDS = 120
    settings.PRODUCTION_SHIFTS = [{"weekday": day, "start": "00:00", "end": "24:00"} for day in range(7)]
    services.print_job_set_priority(job=jobs[0], priority="urgent")
    services.print_job_set_priority(job=jobs[2], priority="low")
    result, data = _replan(monkeypatch)
    weights = {item["id"]: item["weight"] for item in data["jobs"]}
    assert weights == {str(jobs[0].pk): 8, str(jobs[1].pk): 2, str(jobs[2].pk): 1}
    assert data["changeover_s"] == 120 and len(data["shifts"]) == 7
    assert check_plan(parse_instance(data), result.to_dict()) == []


@pytest.mark.parametrize("limit", [0, -1, 601, "10", True, float("nan")])
def test_a_bad_time_limit_is_refused_and_nothing_is_written(farm, limit):
    from fablab.exceptions import InvalidInput

    with pytest.raises(InvalidInput):
        services.print_queue_replan(time_limit=limit)
    assert not PrintJob.objects.filter(planned_finish__isnull=False).exists()


def test_the_task_run_twice_is_harmless(farm):
    _tall, _short, jobs = farm
    assert tasks.replan_queue() == 3
    first = {row.pk: (row.planned_printer_id, row.planned_start, row.planned_finish) for row in PrintJob.objects.all()}
    assert tasks.replan_queue() == 3
    again = {row.pk: (row.planned_printer_id, row.planned_start, row.planned_finish) for row in PrintJob.objects.all()}
    assert set(first) == set(again) == {item.pk for item in jobs}
    assert all(value[0] is not None for value in again.values())
    assert QueueReplan.objects.get().queued_at is None


def test_a_queue_change_plans_in_the_background_once_it_commits(settings, run_tasks):
    settings.PRODUCTION_PLAN_SECONDS = 1
    spool(FilamentFactory(material="PETG", colour_hex="#FF8000"), grams="1000")
    PrinterFactory(model="MK4S")
    with run_tasks():
        item = job()
        assert PrintJob.objects.get(pk=item.pk).planned_finish is None  # never planned on the spot
    assert PrintJob.objects.get(pk=item.pk).planned_finish is not None


def test_requests_before_the_plan_starts_queue_one_plan(farm, django_capture_on_commit_callbacks):
    QueueReplan.objects.update_or_create(pk=1, defaults={"queued_at": None})
    with django_capture_on_commit_callbacks() as callbacks:
        assert services.print_queue_replan_request() is True
        assert services.print_queue_replan_request() is False
    assert len(callbacks) == 1


def test_the_api_carries_the_plan(farm, monkeypatch, lab_api):
    tall, _short, jobs = farm
    _replan(monkeypatch)
    body = lab_api.get(f"/api/v1/production/jobs/{jobs[1].pk}").json()
    stored = PrintJob.objects.get(pk=jobs[1].pk)
    assert body["planned_printer_id"] == tall.pk
    assert parse_datetime(body["planned_start"]) == stored.planned_start
    assert parse_datetime(body["planned_finish"]) == stored.planned_finish


def test_operator_hours_are_read_from_the_setting():
    from fablab.settings import _shifts

    assert _shifts("") == []
    assert _shifts("0-1 08:00-18:00; 5 22:00-02:00") == [
        {"weekday": 0, "start": "08:00", "end": "18:00"}, {"weekday": 1, "start": "08:00", "end": "18:00"},
        {"weekday": 5, "start": "22:00", "end": "02:00"}]


@pytest.mark.parametrize("text", ["monday 08:00-18:00", "0-4 8-18", "4-0 08:00-18:00", "7 08:00-18:00",
                                  "0 08:00", "0 25:00-26:00", "0 08:75-18:00"])
def test_bad_operator_hours_stop_the_start_with_a_clear_message(text):
    from django.core.exceptions import ImproperlyConfigured

    from fablab.settings import _shifts

    with pytest.raises(ImproperlyConfigured, match="PRODUCTION_SHIFTS"):
        _shifts(text)
