"""Success rate per catalog version: completed over ended prints with a Wilson 95 % interval, in the API and on
the version's admin page."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from catalog.panels import version_panels
from catalog.tests.factories import ModelFactory, VariantFactory
from fablab.choices import ApiKeyScope, OrganizationKind
from fablab.tests.factories import OrganizationFactory, make_api_key
from fablab.tests.helpers import ApiClient, assert_problem
from production import selectors
from production.models import PrintAttempt
from production.panels import print_success_for_sliced_file
from production.tests.factories import PrinterFactory, PrintJobFactory, version

pytestmark = pytest.mark.django_db


def url(version_id) -> str:
    return f"/api/v1/production/versions/{version_id}/success-rate"


def prints(version_, *outcomes, started=True, printer=None) -> list[PrintAttempt]:
    """One job of `version_` with an attempt per outcome; `started`: the printer reported each print."""
    job = PrintJobFactory(version=version_)
    at = timezone.now() - timedelta(days=1)
    return [PrintAttempt.objects.create(job=job, number=number, printer=printer or PrinterFactory(), outcome=outcome,
                                        started_at=at if started else None,
                                        finished_at=at + timedelta(hours=1) if outcome != "running" else None)
            for number, outcome in enumerate(outcomes, start=1)]


def own_version(partner):
    return version(variant=VariantFactory(model=ModelFactory(designer=partner)))


@pytest.mark.parametrize(("completed", "attempts", "low", "high"), [
    (8, 10, 0.4902, 0.9433),
    (10, 10, 0.7225, 1.0),
    (0, 10, 0.0, 0.2775),
    (1, 1, 0.2065, 1.0),
    (50, 100, 0.4038, 0.5962),
    (95, 100, 0.8882, 0.9785),
])
def test_the_wilson_interval_matches_known_values(completed, attempts, low, high):
    got = selectors.wilson_interval(completed, attempts)
    assert got == (pytest.approx(low, abs=5e-5), pytest.approx(high, abs=5e-5))


def test_the_wilson_interval_needs_attempts_and_a_possible_count():
    assert selectors.wilson_interval(0, 0) is None
    with pytest.raises(ValueError):
        selectors.wilson_interval(3, 2)
    with pytest.raises(ValueError):
        selectors.wilson_interval(-1, 2)


def test_a_version_counts_its_ended_prints_that_reached_a_printer():
    target, other = version(), version()
    prints(target, *["completed"] * 8, "failed", "cancelled", "running")
    prints(target, "failed", "failed", started=False)  # refused by the printer ("Not sent"): never printed
    prints(other, "completed", "failed")
    rate = selectors.version_success_rate(version=target)
    assert (rate.version_id, rate.attempts, rate.completed) == (target.pk, 10, 8)
    assert rate.rate == 0.8
    assert (round(rate.low, 3), round(rate.high, 3)) == (0.490, 0.943)
    assert selectors.version_success_rate(version=other).attempts == 2


def test_a_version_never_printed_has_no_rate():
    rate = selectors.version_success_rate(version=version())
    assert (rate.attempts, rate.completed, rate.rate, rate.low, rate.high) == (0, 0, None, None, None)


# --- the API -------------------------------------------------------------------------------------


def test_a_partner_reads_the_rate_of_its_own_version(api, partner):
    target = own_version(partner)
    prints(target, *["completed"] * 8, "failed", "failed")
    response = api.get(url(target.pk))
    assert response.status_code == 200, response.content
    assert response.json() == {"version_id": target.pk, "attempts": 10, "completed": 8, "rate": 0.8,
                               "low": 0.4902, "high": 0.9433}


def test_a_version_without_prints_answers_nulls(api, partner):
    target = own_version(partner)
    assert api.get(url(target.pk)).json() == {"version_id": target.pk, "attempts": 0, "completed": 0, "rate": None,
                                              "low": None, "high": None}


def test_a_partner_gets_404_for_any_version_but_its_own(api, partner, other_partner):
    theirs = own_version(other_partner)
    prints(theirs, "completed")
    shared = version(variant=VariantFactory(model=ModelFactory(shared_with_partners=True)))
    labs = version()
    for target in (theirs, shared, labs):
        assert_problem(api.get(url(target.pk)), 404, detail_contains=f"No catalog version with id {target.pk}")


def test_the_labs_keys_read_any_version(lab_api, partner):
    target = own_version(partner)
    prints(target, "completed", "failed")
    body = lab_api.get(url(target.pk)).json()
    assert (body["attempts"], body["completed"], body["rate"]) == (2, 1, 0.5)
    assert lab_api.get(url(version().pk)).json()["attempts"] == 0


def test_a_read_key_is_enough_and_customers_and_strangers_are_refused(partner, client):
    target = own_version(partner)
    _key, raw = make_api_key(partner, scope=ApiKeyScope.READ)
    assert ApiClient(raw).get(url(target.pk)).status_code == 200
    _key, raw = make_api_key(OrganizationFactory(kind=OrganizationKind.CUSTOMER), scope=ApiKeyScope.WRITE)
    assert_problem(ApiClient(raw).get(url(target.pk)), 403, detail_contains="partners and the lab")
    assert_problem(client.get(url(target.pk)), 401)


@pytest.mark.parametrize(("version_id", "why"), [
    ("abc", "valid integer"), ("1.5", "valid integer"), ("-1", "greater than or equal to 1"),
    ("0", "greater than or equal to 1"), (str(2**63), "less than or equal to"),
    ("10000000000000000000000", "less than or equal to"),
])
def test_an_id_that_is_not_a_positive_64_bit_integer_is_422(lab_api, version_id, why):
    problem = assert_problem(lab_api.get(url(version_id)), 422, detail_contains=why)
    assert any("version_id" in error["loc"] for error in problem["errors"])


def test_an_unknown_id_is_404(lab_api):
    assert_problem(lab_api.get(url(987654)), 404, detail_contains="No catalog version with id 987654")


# --- the version's admin page --------------------------------------------------------------------


def test_production_registers_its_panel_with_the_catalog():
    assert print_success_for_sliced_file in [render for _title, render in version_panels()]


def test_the_panel_shows_each_version_of_the_file_with_its_interval():
    target = version()
    prints(target, *["completed"] * 8, "failed", "failed")
    html = print_success_for_sliced_file(target.sliced_file)
    assert "80 %" in html and "8 of 10 prints completed" in html and "95 % interval 49 % – 94 %" in html
    assert f"{target.variant.sku} version {target.number}" in html
    assert "not printed yet" in print_success_for_sliced_file(version().sliced_file)


def test_the_catalog_version_page_shows_the_print_success(admin_client):
    target = version()
    prints(target, "completed", "failed", "completed", "completed")
    page = admin_client.get(reverse("admin:catalog_variantversion_change", args=[target.pk])).content.decode()
    assert "Print success" in page and "data-print-success" in page
    assert "3 of 4 prints completed" in page
