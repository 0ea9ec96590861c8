"""The cost in the API: a job's `cost` object once an attempt ended, and GET /production/variants/{id}/cost with
its isolation (a partner only for its own designs, customers refused)."""

from decimal import Decimal

import pytest

from catalog.tests.factories import ModelFactory, VariantFactory
from fablab.choices import ApiKeyScope, OrganizationKind
from fablab.tests.factories import OrganizationFactory, make_api_key
from fablab.tests.helpers import ApiClient, assert_problem
from inventory import services as inventory_services
from inventory.models import Product
from production.models import PrintJob
from production.tests.factories import PrinterFactory
from production.tests.test_costs import START, _completed_job, _petg

pytestmark = pytest.mark.django_db

JOBS = "/api/v1/production/jobs"


def cost_url(variant_id) -> str:
    return f"/api/v1/production/variants/{variant_id}/cost"


def client_of(organization, scope=ApiKeyScope.READ) -> ApiClient:
    return ApiClient(make_api_key(organization, scope=scope)[1])


def own_variant(partner):
    return VariantFactory(model=ModelFactory(designer=partner))


def test_a_jobs_cost_object_is_complete_once_an_attempt_ended(cost_settings, partner, api):
    job = _completed_job(own_variant(partner), PrinterFactory(), _petg(), 2.5, START)
    PrintJob.objects.filter(pk=job.pk).update(organization=partner)
    expected = {"currency": "EUR", "material": "0.22", "energy": "0.11", "machine": "0.63", "labour": "2.08",
                "total": "3.04"}
    detail = api.get(f"{JOBS}/{job.pk}")
    assert detail.status_code == 200, detail.content
    assert detail.json()["cost"] == expected  # amounts as decimal strings, exact to the cent
    listed = api.get(JOBS).json()["items"]
    assert [item["cost"] for item in listed] == [expected]


def test_a_variants_cost_and_margin_for_its_designer(cost_settings, partner, api):
    variant = own_variant(partner)
    empty = api.get(cost_url(variant.pk))
    assert empty.status_code == 200, empty.content
    body = empty.json()
    assert body["variant_id"] == variant.pk and body["sku"] == variant.sku and body["currency"] == "EUR"
    assert body["unit_cost"] is None and body["recent_prints"] == 0 and body["margin"] is None

    _completed_job(variant, PrinterFactory(), _petg(), 2.5, START)
    inventory_services.product_update(product=Product.objects.get(variant=variant), sale_price=Decimal("11.90"))
    body = api.get(cost_url(variant.pk)).json()
    numbers = {key: Decimal(str(body[key])) for key in ("unit_cost", "sale_price_gross", "sale_price_net",
                                                         "vat_percent", "margin", "margin_percent")}
    assert numbers == {"unit_cost": Decimal("3.04"), "sale_price_gross": Decimal("11.90"),
                       "sale_price_net": Decimal("10.00"), "vat_percent": Decimal("19"), "margin": Decimal("6.96"),
                       "margin_percent": Decimal("69.60")}
    assert body["recent_prints"] == 1


def test_a_partner_learns_nothing_of_another_organizations_variants(partner, other_partner, api):
    others = own_variant(other_partner)
    shared = VariantFactory(model=ModelFactory(designer=other_partner, shared_with_partners=True))
    labs = VariantFactory(model=ModelFactory(designer=None, shared_with_partners=True))
    missing = api.get(cost_url(10**9))
    assert_problem(missing, 404)
    for variant in (others, shared, labs):
        response = api.get(cost_url(variant.pk))
        assert_problem(response, 404)
        assert response.json()["detail"] == missing.json()["detail"].replace(str(10**9), str(variant.pk))
    assert client_of(other_partner).get(cost_url(others.pk)).status_code == 200


def test_the_labs_keys_see_every_variant_and_customers_keys_none(partner):
    variant = own_variant(partner)
    lab = OrganizationFactory(kind=OrganizationKind.LAB)
    assert client_of(lab).get(cost_url(variant.pk)).status_code == 200
    customer = OrganizationFactory(kind=OrganizationKind.CUSTOMER)
    assert_problem(client_of(customer).get(cost_url(variant.pk)), 403)
    assert_problem(ApiClient("fl_notakey").get(cost_url(variant.pk)), 401)


@pytest.mark.parametrize("bad", ["abc", "-1", "0", str(2**63), "9" * 40, "1.5"])
def test_a_bad_variant_id_is_refused_never_a_500(api, bad):
    response = api.get(cost_url(bad))
    assert response.status_code in (404, 422), (bad, response.status_code, response.content)
