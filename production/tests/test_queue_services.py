"""The print queue's writes: queueing once per key, the one transition service, cancel, re-queue, ordering."""

import pytest

from fablab.exceptions import Conflict, IllegalTransition, InvalidInput
from fablab.tests.factories import OrganizationFactory, PartnerFactory
from production import selectors, services
from production.choices import ALLOWED_TRANSITIONS, PRINT_JOB_STATUS_COLORS, PrintJobStatus
from production.models import PrintAttempt, PrintJob, SlotAllocation
from production.tests.factories import FilamentFactory, PrinterFactory, job, spool, version

pytestmark = pytest.mark.django_db


def test_every_status_has_a_colour_and_a_row_of_allowed_moves():
    assert set(PRINT_JOB_STATUS_COLORS) == set(PrintJobStatus)
    assert set(ALLOWED_TRANSITIONS) == set(PrintJobStatus)


def test_a_queued_job_is_stored_checked_and_goes_to_the_end_of_the_queue():
    first, second = job(), job(copies=3, reference="Order 42", purpose="private")
    assert (first.status, second.status) == ("queued", "queued")
    assert second.position > first.position
    assert (second.copies, second.reference, second.purpose) == (3, "Order 42", "private")
    assert second.feasibility_checked_at is not None
    assert second.feasible is False  # nothing in stock, no printer
    assert [j.pk for j in selectors.print_job_queue()] == [first.pk, second.pk]


def test_the_queue_runs_by_priority_then_position_then_age():
    normal, low, urgent, high = job(), job(priority="low"), job(priority="urgent"), job(priority="high")
    later_normal = job()
    services.print_job_move(job=later_normal, position=normal.position - 1)
    assert [j.pk for j in selectors.print_job_queue()] == [urgent.pk, high.pk, later_normal.pk, normal.pk, low.pk]


def test_the_same_idempotency_key_of_the_same_organization_returns_the_same_job():
    partner, other = PartnerFactory(), PartnerFactory()
    first = job(organization=partner, idempotency_key="order-1")
    again = services.print_job_create(version=first.version, copies=5, organization=partner,
                                      idempotency_key="order-1")
    theirs = services.print_job_create(version=first.version, organization=other, idempotency_key="order-1")
    assert again.pk == first.pk and again.copies == 1
    assert theirs.pk != first.pk
    assert PrintJob.objects.count() == 2


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"copies": 0}, "copies"),
    ({"copies": 1001}, "copies"),
    ({"copies": 10**9}, "copies"),
    ({"priority": "asap"}, "priority"),
    ({"purpose": "hobby"}, "purpose"),
    ({"reference": "A\x00B"}, "NUL"),
    ({"reference": "x" * 201}, "reference"),
    ({"idempotency_key": "k" * 201}, "Idempotency-Key"),
    ({"plate": 2}, "Plate 2 does not exist"),
    ({"plate": 0}, "Plate 0 does not exist"),
])
def test_bad_input_is_refused_and_queues_nothing(kwargs, message):
    target = version()
    with pytest.raises(InvalidInput, match=message):
        services.print_job_create(version=target, **kwargs)
    assert not PrintJob.objects.exists()


def test_a_project_file_that_was_never_sliced_cannot_be_queued():
    target = version()
    target.sliced_file.sliced = False
    target.sliced_file.save()
    with pytest.raises(InvalidInput, match="never sliced"):
        services.print_job_create(version=target)


def test_the_plate_of_a_multi_plate_file_is_checked_against_its_plates():
    plates = [{"index": 1, "fields": {"filament_used_g": [6.75]}}, {"index": 2, "fields": {"filament_used_g": [3.9]}}]
    target = version(plates=plates)
    assert job(target, plate=2).plate == 2
    with pytest.raises(InvalidInput, match="Plate 3 does not exist: the file has 2 plate"):
        services.print_job_create(version=target, plate=3)


def test_the_transition_service_follows_the_allowed_moves():
    item = job()
    for status in ("assigned", "sent", "printing"):
        item = services.print_job_transition(job=item, status=status)
    assert item.started_at is not None and item.finished_at is None
    item = services.print_job_transition(job=item, status="completed")
    assert item.finished_at is not None
    with pytest.raises(IllegalTransition, match="The status of a print job cannot change from Completed to Queued"):
        services.print_job_transition(job=item, status="queued")
    with pytest.raises(IllegalTransition):
        services.print_job_transition(job=job(), status="printing")  # queued → printing skips dispatch


def test_cancel_then_requeue_puts_the_job_back_at_the_end_and_keeps_its_attempts():
    item, behind = job(), job()
    attempt = PrintAttempt.objects.create(job=item, number=1, printer=PrinterFactory(), outcome="failed")
    SlotAllocation.objects.create(attempt=attempt, slot=1, grams_planned="12.500")
    cancelled = services.print_job_cancel(job=item)
    assert cancelled.status == "cancelled" and cancelled.finished_at is not None
    with pytest.raises(IllegalTransition, match="from Cancelled to Cancelled"):
        services.print_job_cancel(job=cancelled)
    again = services.print_job_requeue(job=cancelled)
    assert again.status == "queued" and again.finished_at is None
    assert again.position > behind.position
    assert selectors.print_job_get(job_id=item.pk).attempt_count == 1


def test_a_queued_job_cannot_be_requeued_and_a_completed_one_cannot_be_cancelled():
    item = job()
    with pytest.raises(IllegalTransition):
        services.print_job_requeue(job=item)
    for status in ("assigned", "sent", "printing", "completed"):
        item = services.print_job_transition(job=item, status=status)
    with pytest.raises(IllegalTransition, match="from Completed to Cancelled"):
        services.print_job_cancel(job=item)


def test_priority_and_position_change_only_while_the_job_waits():
    item = job()
    assert services.print_job_set_priority(job=item, priority="urgent").priority == "urgent"
    with pytest.raises(InvalidInput, match="Unknown priority"):
        services.print_job_set_priority(job=item, priority="whenever")
    services.print_job_cancel(job=item)
    with pytest.raises(Conflict, match="only change while the job waits"):
        services.print_job_set_priority(job=item, priority="low")
    with pytest.raises(Conflict, match="only change while the job waits"):
        services.print_job_move(job=item, position=3)


def test_a_job_ahead_that_is_cancelled_gives_its_filament_to_the_job_behind():
    spool(FilamentFactory(material="PETG", colour_hex="#FF8000"), grams="20")
    PrinterFactory(model="MK4S")
    first, second = job(), job()  # 12.5 g each, 20 g in stock
    second.refresh_from_db()
    assert first.feasible is True and second.feasible is False
    services.print_job_cancel(job=first)
    second.refresh_from_db()
    assert second.feasible is True and second.feasibility_reasons == []


def test_checking_one_job_on_demand_stores_its_result():
    item = job()
    assert services.print_job_check_feasibility(job=item).ok is False
    spool(FilamentFactory(material="PETG", colour_hex="#FF8000"))
    PrinterFactory(model="MK4S")
    result = services.print_job_check_feasibility(job=item)
    assert result.ok is True and result.texts == []
    item.refresh_from_db()
    assert item.feasible is True


def test_list_scoping_follows_the_organization():
    partner, lab = PartnerFactory(), OrganizationFactory(kind="lab")
    theirs, staff, labs = job(organization=partner), job(), job(organization=lab)
    assert [j.pk for j in selectors.print_job_list(organization=partner)] == [theirs.pk]
    assert {j.pk for j in selectors.print_job_list(organization=lab)} == {staff.pk, labs.pk}
    assert selectors.print_job_list().count() == 3
