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
