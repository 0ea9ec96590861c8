import re
from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command

from fablab import services
from fablab.models import ApiKey, Membership, Organization

pytestmark = pytest.mark.django_db


def run_demo() -> str:
    out = StringIO()
    call_command("demo", stdout=out)
    return out.getvalue()


def test_demo_prints_working_credentials_and_is_repeatable():
    first = run_demo()
    second = run_demo()
    User = get_user_model()
    assert User.objects.count() == 4
    assert Organization.objects.count() == 2
    assert Membership.objects.count() == 2

    for email, password in re.findall(r"(\S+@\S+)\s+(fablab-\w+)", second):
        user = User.objects.get(email=email)
        assert user.check_password(password)
    admin = User.objects.get(email="admin@fablab.local")
    assert admin.is_superuser and admin.is_staff
    assert authenticate(username="admin", password="fablab-admin") == admin

    old_key = re.search(r"fl_\w{8}_\w{40}", first).group(0)
    new_key = re.search(r"fl_\w{8}_\w{40}", second).group(0)
    with pytest.raises(services.AuthenticationFailed, match="revoked"):
        services.api_key_authenticate(raw_key=old_key)
    assert services.api_key_authenticate(raw_key=new_key).organization.kind == "partner"
    assert ApiKey.objects.filter(revoked_at__isnull=True).count() == 1

    # The demo customer has a complimentary plan (as `billing_grant` gives), once however often the demo runs.
    from billing.models import OrganizationPlan

    plan = OrganizationPlan.objects.get(organization__kind="customer")
    assert (plan.plan.key, plan.source) == ("starter", "comp") and OrganizationPlan.objects.count() == 1
    assert "has the Starter plan" in second


def test_demo_catalog_carries_read_sliced_files():
    from catalog.models import ModelVariant
    from catalog.samples import sample_models

    run_demo()
    run_demo()
    variants = ModelVariant.objects.select_related("current_version__sliced_file")
    assert variants.count() == sum(len(model.variants) for model in sample_models()) == 18
    assert all(v.current_version.sliced_file.status == "done" for v in variants)
    assert ModelVariant.objects.get(sku="CUBE-ORANGE").printer_model == "COREONE"


def test_demo_has_a_sales_history_that_restock_and_events_use():
    from inventory.models import ProductStock, Sale
    from production.models import MarketEvent
    from production.restock import restock_list

    run_demo()
    history = Sale.objects.filter(product__sku="P-KEY-S-ORANGE")
    assert history.count() > 100  # two years of weekly sales
    # The units sold were produced first: the shelf holds what the demo put there for the product.
    assert ProductStock.objects.get(product__sku="P-KEY-S-ORANGE").quantity == 24 - 9  # less last year's market
    rows = {row.product.sku: row for row in restock_list()}
    assert rows["P-KEY-S-ORANGE"].recommendation.method == "holt_winters"  # two seasons of history
    assert rows["P-COASTER-OCEAN"].recommendation.method == "tsb"  # sells now and then
    assert all(row.recommendation.forecast.mean > 0 for row in rows.values())
    assert MarketEvent.objects.filter(status="done").count() == 1
    run_demo()
    assert Sale.objects.filter(product__sku="P-KEY-S-ORANGE").count() == history.count()
