"""Restocking printed products across the apps: sales → recommendation (with production's lead time and queued
units) → print jobs with the right copies; the admin page, the API route and refused requests."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from catalog.tests.factories import VariantFactory
from fablab.choices import ApiKeyScope
from fablab.exceptions import InvalidInput, NotFound
from fablab.tests.factories import OrganizationFactory, make_api_key
from fablab.tests.helpers import ApiClient
from inventory import services as inventory_services
from inventory.choices import ForecastMethod, LocationKind, ProductKind, ProductMovementKind
from production import restock
from production.choices import PrintJobStatus
from production.models import MAX_COPIES, PrintJob
from production.tests.factories import PrinterFactory, job, version

pytestmark = pytest.mark.django_db

RESTOCK = "/api/v1/production/restock"


@pytest.fixture(autouse=True)
def restock_settings(settings):
    settings.RESTOCK_SERVICE_LEVEL_PERCENT = Decimal("95")
    settings.RESTOCK_REVIEW_WEEKS = Decimal("2")
    settings.RESTOCK_HISTORY_WEEKS = 156


@pytest.fixture
def shelf():
    return inventory_services.location_create(name="Shelf", kind=LocationKind.SHELF)


def printed(sku: str, *, seconds: int = 3600, current: bool = True):
    """A printed product whose variant's current version prints one plate in `seconds`."""
    variant = VariantFactory(sku=sku)
    made = version(variant=variant, estimated_time_s=seconds)
    if current:
        variant.current_version = made
        variant.save(update_fields=["current_version"])
    return inventory_services.product_create(sku=sku, name=f"Product {sku}", kind=ProductKind.PRINTED,
                                             variant=variant)


def sell_weekly(product, shelf, units: list[int], *, stock: int = 0):
    """Sell units[i] in week i (oldest first, the last week ending today), `stock` units left afterwards."""
    today = timezone.localdate()
    inventory_services.product_stock_book(product=product, location=shelf, kind=ProductMovementKind.RECEIVED,
                                          quantity=sum(units) + stock, idempotency_key=f"in-{product.sku}")
    for index, count in enumerate(units):
        if count:
            inventory_services.sale_record(
                product=product, quantity=count, unit_price=Decimal("9.90"), channel="shop",
                sold_on=today - timedelta(days=7 * (len(units) - 1 - index)),
                idempotency_key=f"sale-{product.sku}-{index}")


def test_sales_become_a_recommendation_and_the_action_queues_its_plates(shelf, admin_user):
    hook = printed("HOOK")
    sell_weekly(hook, shelf, [10] * 20, stock=3)
    row, = restock.restock_list()
    recommendation = row.recommendation
    assert recommendation.method == ForecastMethod.SES
    assert recommendation.per_week == pytest.approx(10)
    # No printer, nothing queued: the lead time is one plate's hour.
    assert row.queue_wait_hours == 0 and row.print_hours == pytest.approx(1)
    assert recommendation.lead_time_weeks == pytest.approx(1 / 168)
    assert recommendation.reorder_point == pytest.approx(10 / 168, abs=1e-6)
    # Up to 10/168 + 2 weeks × 10 = 20.06, less 3 in stock: 18 units, one per plate.
    assert recommendation.quantity == 18 and row.units_per_plate == 1 and row.plates == 18 and row.can_queue

    jobs = restock.restock_print_jobs_create(product_ids=[hook.pk], user=admin_user)
    assert len(jobs) == 1
    made = jobs[0]
    assert (made.version_id, made.plate, made.copies, made.status) == (
        hook.variant.current_version_id, 1, 18, PrintJobStatus.QUEUED)
    assert made.queued_by == admin_user and made.organization is None and "HOOK" in made.reference

    # The queued plates count as on their way; what is left is the demand of the 18 hours the queue now
    # takes before a new plate starts: 10 × 19/168 + 20 = 21.13, less 3 + 18, is 1 unit.
    again, = restock.restock_list()
    assert again.recommendation.units_queued == 18 and again.queue_wait_hours == pytest.approx(18)
    assert again.plates == 1


def test_the_queue_ahead_lengthens_the_lead_time_and_jobs_of_the_variant_count_as_queued(shelf, admin_user):
    PrinterFactory(), PrinterFactory()
    hook = printed("HOOK", seconds=2 * 3600)
    sell_weekly(hook, shelf, [10] * 20)
    job(version(estimated_time_s=3 * 3600), copies=4)  # another product's 12 printing hours
    job(hook.variant.current_version, copies=5)  # 5 units of the hook on their way: 10 more hours
    row, = restock.restock_list()
    assert row.queue_wait_hours == pytest.approx((12 + 10) / 2)  # shared by the two printers
    assert row.print_hours == pytest.approx(2)
    assert row.recommendation.lead_time_weeks == pytest.approx(13 / 168)
    assert row.recommendation.units_queued == 5
    expected = 10 * 13 / 168 + 20 - 5
    assert row.recommendation.quantity == int(expected) + 1


def test_more_plates_than_one_job_takes_are_split(shelf, admin_user, settings):
    settings.RESTOCK_REVIEW_WEEKS = Decimal("52")
    hook = printed("HOOK")
    sell_weekly(hook, shelf, [25] * 20)
    jobs = restock.restock_print_jobs_create(product_ids=[hook.pk], user=admin_user)
    assert [made.copies for made in jobs] == [MAX_COPIES, 25 * 52 + 1 - MAX_COPIES]


@pytest.mark.parametrize("product_ids", [[], "12", None, ["x"], [0], [-3], [True], ["1.5"]])
def test_malformed_product_ids_are_refused(product_ids, admin_user):
    with pytest.raises(InvalidInput):
        restock.restock_print_jobs_create(product_ids=product_ids, user=admin_user)
    assert not PrintJob.objects.exists()


def test_an_unknown_product_refuses_the_whole_request(shelf, admin_user):
    hook = printed("HOOK")
    sell_weekly(hook, shelf, [10] * 20)
    with pytest.raises(NotFound, match="No product with id 999999"):
        restock.restock_print_jobs_create(product_ids=[hook.pk, 999999], user=admin_user)
    assert not PrintJob.objects.exists()


def test_products_that_cannot_be_restocked_refuse_the_whole_request(shelf, admin_user):
    hook = printed("HOOK")
    sell_weekly(hook, shelf, [10] * 20)
    clip = inventory_services.product_create(sku="CLIP", name="Clip", kind=ProductKind.BOUGHT)
    sell_weekly(clip, shelf, [4] * 10)
    unsold = printed("UNSOLD")
    bare = printed("BARE", current=False)
    sell_weekly(bare, shelf, [3] * 10)
    full = printed("FULL")
    sell_weekly(full, shelf, [1] * 10, stock=100)
    cases = {clip: "CLIP is bought in", unsold: "UNSOLD has not sold lately", bare: "BARE has no current catalog",
             full: "FULL needs no restock"}
    for product, message in cases.items():
        with pytest.raises(InvalidInput, match=message):
            restock.restock_print_jobs_create(product_ids=[hook.pk, product.pk], user=admin_user)
    assert not PrintJob.objects.exists()
    assert len(restock.restock_print_jobs_create(product_ids=[hook.pk, str(hook.pk)], user=admin_user)) == 1


def test_the_admin_page_lists_recommendations_and_queues_the_ticked_ones(shelf, admin_client):
    hook = printed("HOOK")
    sell_weekly(hook, shelf, [10] * 20, stock=3)
    page = admin_client.get(reverse("admin:production_printjob_restock"))
    assert page.status_code == 200
    body = page.content.decode()
    assert 'data-sku="HOOK" data-plates="18"' in body and "Exponential smoothing" in body
    assert f'name="product" value="{hook.pk}"' in body

    queue_url = reverse("admin:production_printjob_restock_queue")
    refused = admin_client.post(queue_url, {"product": ["999999"]}, follow=True)
    assert "No product with id 999999" in refused.content.decode()
    assert not PrintJob.objects.exists()

    done = admin_client.post(queue_url, {"product": [str(hook.pk)]}, follow=True)
    assert "1 print job queued with 18 plate(s) in all." in done.content.decode()
    assert PrintJob.objects.get().copies == 18
    assert admin_client.get(queue_url).status_code == 405


def test_queueing_needs_the_permission_to_add_print_jobs(shelf, client, staff_member):
    hook = printed("HOOK")
    sell_weekly(hook, shelf, [10] * 20)
    user = staff_member("Operator")
    client.force_login(user)
    may_add = user.has_perm("production.add_printjob")
    page = client.get(reverse("admin:production_printjob_restock"))
    assert page.status_code == 200
    answer = client.post(reverse("admin:production_printjob_restock_queue"), {"product": [str(hook.pk)]})
    assert answer.status_code == (302 if may_add else 403)
    assert PrintJob.objects.exists() == may_add


def test_the_api_lists_recommendations_for_the_labs_keys_only(shelf, lab_read_key, api):
    hook = printed("HOOK")
    sell_weekly(hook, shelf, [10] * 20, stock=3)
    answer = ApiClient(lab_read_key).get(RESTOCK)
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["count"] == 1
    item = body["items"][0]
    assert item["product_id"] == hook.pk and item["sku"] == "HOOK" and item["method"] == "ses"
    assert item["version_id"] == hook.variant.current_version_id
    assert item["forecast_per_week"] == pytest.approx(10)
    assert (item["units_in_stock"], item["units_queued"], item["quantity"], item["plates"]) == (3, 0, 18, 18)
    assert item["service_level_percent"] == 95 and item["review_weeks"] == 2
    assert api.get(RESTOCK).status_code == 403  # a partner's key
    customer = ApiClient(make_api_key(OrganizationFactory(), scope=ApiKeyScope.WRITE)[1])
    assert customer.get(RESTOCK).status_code == 403


def test_the_print_queue_and_the_sidebar_lead_to_the_restock_page(admin_client):
    opened = admin_client.get(reverse("admin:production_printjob_open_restock"))
    assert opened.status_code == 302 and opened.url == reverse("admin:production_printjob_restock")
    sidebar = admin_client.get(reverse("admin:index")).context["sidebar_navigation"]
    links = {item["link"] for group in sidebar for item in group["items"]}
    assert reverse("admin:production_printjob_restock") in links
    changelist = admin_client.get(reverse("admin:production_printjob_changelist")).content.decode()
    assert reverse("admin:production_printjob_restock") in changelist
    empty = admin_client.get(reverse("admin:production_printjob_restock")).content.decode()
    assert "No printed product has sold yet." in empty and 'id="restock-queue"' not in empty
