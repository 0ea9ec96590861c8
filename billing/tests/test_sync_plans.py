"""billing_sync_plans: the plans' products, monthly prices and metered overage prices in Stripe, idempotently."""

from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from billing.models import Plan, PlanLimit

pytestmark = pytest.mark.django_db


def stripe_prices(fake):
    return {p["lookup_key"]: p for key, p in fake.objects.items() if key.startswith("prices/") and p["lookup_key"]}


def test_sync_creates_each_paid_plan_once_and_running_it_again_changes_nothing(fake, capsys):
    call_command("billing_sync_plans")
    products = {k: p for k, p in fake.objects.items() if k.startswith("products/")}
    assert set(products) == {f"products/fablab_plan_{k}" for k in ("starter", "professional", "business")}
    prices = stripe_prices(fake)
    assert set(prices) == {f"fablab_{k}_{kind}" for k in ("starter", "professional", "business")
                           for kind in ("monthly", "scan_overage")}
    assert prices["fablab_professional_monthly"]["unit_amount"] == 9900
    assert prices["fablab_professional_monthly"]["recurring"]["usage_type"] == "licensed"
    overage = prices["fablab_starter_scan_overage"]
    assert (overage["unit_amount"], overage["recurring"]["usage_type"]) == (60, "metered")
    meters = [m for k, m in fake.objects.items() if k.startswith("billing/meters/")]
    assert [m["event_name"] for m in meters] == ["fablab_scans"]
    assert {p["recurring"]["meter"] for k, p in prices.items() if "overage" in k} == {meters[0]["id"]}
    assert overage["currency"] == "gbp"
    assert "starter: product created, monthly price created, overage price created" in capsys.readouterr().out

    created = len([c for c in fake.calls if c[0] == "post"])
    call_command("billing_sync_plans")
    assert len([c for c in fake.calls if c[0] == "post"]) == created  # nothing written the second time
    assert len([k for k in fake.objects if k.startswith("prices/")]) == 6
    assert len([k for k in fake.objects if k.startswith("billing/meters/")]) == 1
    assert "starter: product unchanged, monthly price unchanged, overage price unchanged" in capsys.readouterr().out


def test_a_changed_amount_makes_a_new_price_that_takes_the_lookup_key_over(fake, capsys):
    call_command("billing_sync_plans")
    old = stripe_prices(fake)["fablab_starter_monthly"]
    Plan.objects.filter(key="starter").update(price_per_month=Decimal("35.50"), name="Starter+")
    PlanLimit.objects.filter(plan__key="starter").update(overage_unit_price=Decimal("0.75"))
    call_command("billing_sync_plans")
    new = stripe_prices(fake)
    assert new["fablab_starter_monthly"]["id"] != old["id"]
    assert new["fablab_starter_monthly"]["unit_amount"] == 3550
    assert new["fablab_starter_scan_overage"]["unit_amount"] == 75
    assert (old["lookup_key"], old["active"]) == (None, False)  # key transferred, old price archived
    assert fake.requests_to("post", "prices")[-1]["transfer_lookup_key"] == "true"
    assert fake.objects["products/fablab_plan_starter"]["name"] == "Starter+"
    assert "starter: product updated, monthly price replaced, overage price replaced" in capsys.readouterr().out
    assert len([k for k in fake.objects if k.startswith("prices/")]) == 8  # the other plans untouched


def test_a_plan_with_overage_but_no_overage_lookup_key_gets_no_metered_price(fake, capsys):
    Plan.objects.filter(key="business").update(stripe_overage_lookup_key="")
    call_command("billing_sync_plans")
    assert "fablab_business_scan_overage" not in stripe_prices(fake)
    assert "business: product created, monthly price created, no overage price" in capsys.readouterr().out


def test_stripe_unreachable_is_a_clear_command_error(fake):
    fake.fail_next("prices", TimeoutError("slow"))
    with pytest.raises(CommandError, match="Stripe could not find the prices"):
        call_command("billing_sync_plans")
    assert not [k for k in fake.objects if k.startswith(("products/", "prices/"))]
