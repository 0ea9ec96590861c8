"""The print queue's API contract: POST/GET /api/v1/production/jobs, cancel, scoping and bad input."""

import pytest

from catalog.tests.factories import ModelFactory, VariantFactory
from fablab.choices import ApiKeyScope, OrganizationKind
from fablab.tests.factories import OrganizationFactory, make_api_key
from fablab.tests.helpers import ApiClient, assert_problem
from production import services
from production.models import PrintJob
from production.tests.factories import FilamentFactory, PrinterFactory, job, spool, version

pytestmark = pytest.mark.django_db

URL = "/api/v1/production/jobs"


def client_of(organization, scope=ApiKeyScope.WRITE) -> ApiClient:
    _key, raw = make_api_key(organization, scope=scope)
    return ApiClient(raw)


def own_version(partner):
    return version(variant=VariantFactory(model=ModelFactory(designer=partner)))


def post(client, body: dict, key: str | None = "order-1"):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post(URL, body, content_type="application/json", headers=headers)


def test_queueing_answers_the_contract(api, partner):
    spool(FilamentFactory(material="PETG", colour_hex="#FF8000"))
    printer = PrinterFactory(model="MK4S")
    target = own_version(partner)
    response = post(api, {"version_id": target.pk, "copies": 2, "priority": "high", "purpose": "private",
                          "reference": "Order 42", "due": "2030-01-02T10:00:00Z"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) >= {"id", "status", "version_id", "copies", "priority", "printer_id", "attempts", "feasibility",
                         "filament_booked_g", "cost", "started_at", "finished_at"}
    assert body["status"] == "queued" and body["version_id"] == target.pk and body["copies"] == 2
    assert body["priority"] == "high" and body["printer_id"] is None and body["attempts"] == 0
    assert body["feasibility"] == {"ok": True, "reasons": []}
    assert body["filament_booked_g"] == []
    assert body["cost"] == {"currency": None, "material": None, "energy": None, "machine": None, "labour": None,
                            "total": None}
    assert body["started_at"] is None and body["finished_at"] is None
    assert printer.pk  # a printer takes it
    job_row = PrintJob.objects.get()
    assert job_row.organization == partner and job_row.reference == "Order 42" and job_row.purpose == "private"


def test_the_same_idempotency_key_returns_the_same_job(api, partner):
    target = own_version(partner)
    first = post(api, {"version_id": target.pk})
    again = post(api, {"version_id": target.pk, "copies": 9})
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"] and again.json()["copies"] == 1
    assert post(api, {"version_id": target.pk}, key="order-2").json()["id"] != first.json()["id"]
    assert PrintJob.objects.count() == 2


def test_reasons_come_with_a_job_that_cannot_be_printed(api, partner):
    body = post(api, {"version_id": own_version(partner).pk}).json()
    assert body["feasibility"]["ok"] is False
    assert body["feasibility"]["reasons"] == ["Slot 1 needs PETG #FF8000: there is none in stock.",
                                              "No printer takes it: there is no active printer."]


def test_list_filters_and_detail(api, partner):
    one, two = own_version(partner), own_version(partner)
    a = post(api, {"version_id": one.pk}, key="a").json()
    b = post(api, {"version_id": two.pk, "priority": "urgent"}, key="b").json()
    api.post(f"{URL}/{a['id']}/cancel")
    page = api.get(URL).json()
    assert [item["id"] for item in page["items"]] == [b["id"], a["id"]] and page["count"] == 2
    assert [i["id"] for i in api.get(f"{URL}?status=cancelled").json()["items"]] == [a["id"]]
    assert [i["id"] for i in api.get(f"{URL}?version_id={two.pk}").json()["items"]] == [b["id"]]
    assert api.get(f"{URL}/{b['id']}").json()["priority"] == "urgent"


def test_cancel_and_its_conflicts(api, partner):
    created = post(api, {"version_id": own_version(partner).pk}).json()
    response = api.post(f"{URL}/{created['id']}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert response.json()["finished_at"] is not None
    assert_problem(api.post(f"{URL}/{created['id']}/cancel"), 409, detail_contains="from Cancelled to Cancelled")


def test_a_job_on_a_printer_is_not_cancelled_through_the_queue(api, partner):
    item = job(own_version(partner), organization=partner)
    for status in ("assigned", "sent", "printing"):
        item = services.print_job_transition(job=item, status=status)
    assert_problem(api.post(f"{URL}/{item.pk}/cancel"), 409, detail_contains="stop the print at the printer")
    item.refresh_from_db()
    assert item.status == "printing"


def test_partners_see_only_their_own_jobs_and_versions(api, partner, other_partner):
    theirs = job(own_version(other_partner), organization=other_partner)
    staff = job()
    for job_id in (theirs.pk, staff.pk):
        assert_problem(api.get(f"{URL}/{job_id}"), 404)
        assert_problem(api.post(f"{URL}/{job_id}/cancel"), 404)
    assert api.get(URL).json()["count"] == 0
    assert_problem(post(api, {"version_id": own_version(other_partner).pk}), 404,
                   detail_contains="No catalog version")
    theirs.refresh_from_db()
    assert theirs.status == "queued"


def test_a_partner_may_queue_what_the_lab_shares(api):
    shared = version(variant=VariantFactory(model=ModelFactory(shared_with_partners=True)))
    assert post(api, {"version_id": shared.pk}).status_code == 201
    assert_problem(post(api, {"version_id": version().pk}, key="k2"), 404)


def test_the_labs_keys_queue_any_version_and_see_the_jobs_staff_queued(partner):
    lab = OrganizationFactory(kind=OrganizationKind.LAB)
    client = client_of(lab)
    staff = job()
    partners = job(own_version(partner), organization=partner)
    created = post(client, {"version_id": version().pk}).json()
    ids = {item["id"] for item in client.get(URL).json()["items"]}
    assert ids == {staff.pk, created["id"]} and partners.pk not in ids


def test_customers_keys_are_refused(db):
    client = client_of(OrganizationFactory(kind=OrganizationKind.CUSTOMER))
    assert_problem(client.get(URL), 403, detail_contains="partners and the lab")
    assert_problem(post(client, {"version_id": version().pk}), 403)


def test_a_read_key_may_read_but_not_queue_or_cancel(partner):
    client = client_of(partner, scope=ApiKeyScope.READ)
    item = job(own_version(partner), organization=partner)
    assert client.get(f"{URL}/{item.pk}").status_code == 200
    assert_problem(post(client, {"version_id": item.version_id}), 403)
    assert_problem(client.post(f"{URL}/{item.pk}/cancel"), 403)
    assert not PrintJob.objects.exclude(pk=item.pk).exists()


def test_without_a_key_nothing_is_answered(client):
    assert_problem(client.get(URL), 401)


@pytest.mark.parametrize(("body", "where"), [
    ({"copies": 0}, "copies"),
    ({"copies": 10**9}, "copies"),
    ({"copies": "many"}, "copies"),
    ({"priority": "asap"}, "priority"),
    ({"purpose": "hobby"}, "purpose"),
    ({"reference": "x" * 201}, "reference"),
    ({"due": "next tuesday"}, "due"),
    ({"version_id": 10**30}, "version_id"),
    ({"version_id": None}, "version_id"),
])
def test_bad_bodies_are_refused_with_422_and_queue_nothing(api, partner, body, where):
    payload = {"version_id": own_version(partner).pk, **body}
    problem = assert_problem(post(api, payload), 422)
    assert any(where in error["loc"] for error in problem["errors"]), problem
    assert not PrintJob.objects.exists()


def test_nul_bytes_in_the_reference_are_refused(api, partner):
    assert_problem(post(api, {"version_id": own_version(partner).pk, "reference": "A\x00B"}), 422,
                   detail_contains="NUL")
    assert not PrintJob.objects.exists()


def test_an_unknown_version_is_404(api):
    assert_problem(post(api, {"version_id": 987654}), 404, detail_contains="No catalog version with id 987654")


def test_a_missing_or_overlong_idempotency_key_is_refused(api, partner):
    target = own_version(partner)
    assert_problem(post(api, {"version_id": target.pk}, key=None), 422, detail_contains="Idempotency-Key")
    assert_problem(post(api, {"version_id": target.pk}, key="k" * 201), 422, detail_contains="Idempotency-Key")
    assert not PrintJob.objects.exists()


@pytest.mark.parametrize("query", ["offset=10000000000000000000000", "offset=9223372036854775807", "limit=101",
                                   "status=lost", "version_id=0", "version_id=abc"])
def test_bad_list_queries_get_a_clear_answer(api, query):
    response = api.get(f"{URL}?{query}")
    if response.status_code == 200:
        assert response.json()["items"] == []
    else:
        assert_problem(response, 422)


@pytest.mark.parametrize("job_id", ["0", "99999999", "10000000000000000000000"])
def test_unknown_job_ids_are_404_or_422(api, job_id):
    response = api.get(f"{URL}/{job_id}")
    assert response.status_code in (404, 422), response.content
    assert_problem(response, response.status_code)


def test_a_job_of_several_copies_shows_how_many_are_done(api, partner):
    created = post(api, {"version_id": own_version(partner).pk, "copies": 3}).json()
    assert created["copies"] == 3 and created["copies_done"] == 0
    PrintJob.objects.filter(pk=created["id"]).update(copies_done=2)
    body = api.get(f"{URL}/{created['id']}").json()
    assert (body["copies"], body["copies_done"], body["status"]) == (3, 2, "queued")
    assert api.get(URL).json()["items"][0]["copies_done"] == 2
