"""The print queue in the admin: the list with feasibility, filters, the add form, actions and hand ordering."""

import pytest
from django.urls import reverse

from production.models import PrintJob
from production.tests.factories import FilamentFactory, PrinterFactory, bambu_file, job, spool, version

pytestmark = pytest.mark.django_db

LIST = "admin:production_printjob_changelist"


def test_the_queue_lists_jobs_with_status_priority_and_feasibility_reasons(operator_client):
    spool(FilamentFactory(material="PETG", colour_hex="#FF8000"))
    PrinterFactory(model="MK4S")
    ok = job(reference="Order 7")
    blocked = job(version(filament_used_g=[5000.0]), priority="urgent")
    response = operator_client.get(reverse(LIST))
    assert response.status_code == 200
    text = response.content.decode()
    assert "can print" in text and "cannot print" in text
    assert "Slot 1 needs PETG #FF8000: 4012.5 g short after the job ahead." not in text  # urgent goes first
    assert "Slot 1 needs PETG #FF8000: 4000 g short (5000 g needed)." in text
    assert text.index(f"/admin/production/printjob/{blocked.pk}/change/") < text.index(
        f"/admin/production/printjob/{ok.pk}/change/")
    assert "drag_indicator" in text  # unfold's sortable list


@pytest.mark.parametrize("query", ["status=queued", "priority=urgent", "material=PETG", "colour=%23FF8000", "q=Order"])
def test_the_filters_answer(operator_client, query):
    job(reference="Order 7")
    assert operator_client.get(reverse(LIST) + "?" + query).status_code == 200


def test_the_add_form_queues_through_the_service(operator_client):
    target = version()
    response = operator_client.post(reverse("admin:production_printjob_add"), {
        "version": target.pk, "plate": 1, "copies": 4, "priority": "high", "purpose": "business",
        "reference": "Shelf restock", "notes": "",
    })
    assert response.status_code == 302, response.content.decode()[:3000]
    created = PrintJob.objects.get()
    assert (created.copies, created.priority, created.status) == (4, "high", "queued")
    assert created.queued_by is not None and created.feasibility_checked_at is not None


@pytest.mark.parametrize(("field", "value", "error"), [("copies", 0, "copies"), ("copies", 1001, "copies"),
                                                       ("plate", 2, "Plate 2 does not exist")])
def test_the_add_form_refuses_bad_input(operator_client, field, value, error):
    data = {"version": version().pk, "plate": 1, "copies": 1, "priority": "normal", "purpose": "business"}
    data[field] = value
    response = operator_client.post(reverse("admin:production_printjob_add"), data)
    assert response.status_code == 200
    assert not PrintJob.objects.exists()
    if error.startswith("Plate"):
        assert error in response.content.decode()


def _act(client, name, jobs):
    return client.post(reverse(LIST), {"action": name, "_selected_action": [j.pk for j in jobs]}, follow=True)


def test_cancel_requeue_and_priority_actions_call_the_services(operator_client):
    first, second = job(), job()
    response = _act(operator_client, "cancel_selected", [first])
    assert "1 job cancelled." in response.content.decode()
    first.refresh_from_db()
    assert first.status == "cancelled"
    response = _act(operator_client, "cancel_selected", [first])
    assert "cannot change from Cancelled to Cancelled" in response.content.decode()
    _act(operator_client, "requeue_selected", [first])
    first.refresh_from_db()
    assert first.status == "queued"
    _act(operator_client, "priority_urgent", [first, second])
    assert set(PrintJob.objects.values_list("priority", flat=True)) == {"urgent"}


def test_dragging_rows_sets_the_order_within_a_priority(operator_client):
    first, second, ended = job(), job(), job()
    from production import services

    services.print_job_cancel(job=ended)
    rows = [(second, 0), (first, 1), (ended, 2)]
    data = {"form-TOTAL_FORMS": len(rows), "form-INITIAL_FORMS": len(rows), "_save": "Save"}
    for index, (item, position) in enumerate(rows):
        data[f"form-{index}-id"] = item.pk
        data[f"form-{index}-position"] = position
    response = operator_client.post(reverse(LIST), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    from production.selectors import print_job_queue

    assert [j.pk for j in print_job_queue()] == [second.pk, first.pk]


def test_the_job_page_and_the_recheck_button(operator_client):
    item = job(version(**bambu_file()))
    page = operator_client.get(reverse("admin:production_printjob_change", args=[item.pk]))
    assert page.status_code == 200 and "cannot print" in page.content.decode()
    response = operator_client.get(reverse("admin:production_printjob_recheck"), follow=True)
    assert "Queue checked" in response.content.decode()


def test_jobs_are_never_deleted_in_the_admin(admin_client):
    item = job()
    assert admin_client.get(reverse("admin:production_printjob_delete", args=[item.pk])).status_code == 403


def _drag(client, rows):
    data = {"form-TOTAL_FORMS": len(rows), "form-INITIAL_FORMS": len(rows), "_save": "Save"}
    for index, (item, position) in enumerate(rows):
        data[f"form-{index}-id"] = item.pk
        data[f"form-{index}-position"] = position
    return client.post(reverse(LIST), data, follow=True)


def test_dragging_saves_through_print_job_move_only_for_waiting_jobs(operator_client, monkeypatch):
    from production import services

    first, second, ended = job(), job(), job()
    services.print_job_cancel(job=ended)
    moves = []
    original = services.print_job_move
    monkeypatch.setattr(services, "print_job_move", lambda **kw: moves.append((kw["job"].pk, kw["position"]))
                        or original(**kw))
    before = PrintJob.objects.get(pk=ended.pk).position
    _drag(operator_client, [(second, 0), (first, 1), (ended, 2)])
    assert sorted(moves) == sorted([(second.pk, 0), (first.pk, 1)])
    assert PrintJob.objects.get(pk=ended.pk).position == before  # an ended job keeps its place


def test_a_dragged_position_the_service_refuses_is_a_message_and_changes_nothing(operator_client):
    first, second = job(), job()
    response = _drag(operator_client, [(first, 1_500_000_000), (second, 0)])
    assert "The position must be a whole number between" in response.content.decode()
    assert PrintJob.objects.get(pk=first.pk).position == first.position


def test_a_position_that_is_not_a_number_is_a_form_error(operator_client):
    first = job()
    response = _drag(operator_client, [(first, "first")])
    assert response.status_code == 200 and "Enter a whole number." in response.content.decode()
    assert PrintJob.objects.get(pk=first.pk).position == first.position


def test_the_printer_filter_finds_jobs_on_a_printer_and_those_it_tried(operator_client):
    from production.choices import AttemptOutcome
    from production.models import PrintAttempt

    one, two = PrinterFactory(name="One"), PrinterFactory(name="Two")
    on_one, tried_on_one, elsewhere = job(), job(), job()
    PrintJob.objects.filter(pk=on_one.pk).update(status="printing", printer=one)
    PrintAttempt.objects.create(job=tried_on_one, number=1, printer=one, outcome=AttemptOutcome.FAILED)
    PrintAttempt.objects.create(job=elsewhere, number=1, printer=two, outcome=AttemptOutcome.FAILED)
    page = operator_client.get(reverse(LIST), {"printer": one.pk})
    assert page.status_code == 200
    text = page.content.decode()
    for item, shown in ((on_one, True), (tried_on_one, True), (elsewhere, False)):
        assert (f"/admin/production/printjob/{item.pk}/change/" in text) is shown
    assert f'href="?printer={two.pk}" title="Two"' in text  # the filter lists the printers
    assert "/change/" not in operator_client.get(reverse(LIST), {"printer": 999999}).content.decode()
    forged = operator_client.get(reverse(LIST), {"printer": "x' OR 1=1"})
    assert forged.status_code == 302 and "e=1" in forged["Location"]  # Django's "bad filter" page, not a 500
