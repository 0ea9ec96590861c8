import re

import pytest
from django.contrib import admin
from django.urls import reverse

from fablab import services
from fablab.choices import OrganizationKind
from fablab.models import ApiKey
from fablab.tests.factories import MembershipFactory, OrganizationFactory, PartnerFactory

pytestmark = pytest.mark.django_db


def test_dashboard_shows_kpis_from_selectors(admin_client):
    OrganizationFactory(kind=OrganizationKind.CUSTOMER)
    PartnerFactory()
    PartnerFactory()
    response = admin_client.get(reverse("admin:index"))
    assert response.status_code == 200
    tenancy = {kpi["label"]: kpi["value"] for kpi in response.context["tenancy_kpis"]}
    assert tenancy["Customer organizations"] == 1
    assert tenancy["Partner organizations"] == 2
    sections = {s["label"]: s["kpis"] for s in response.context["domain_sections"]}
    assert list(sections) == ["catalog", "inventory", "production", "printers", "reconstruction", "billing"]
    # Apps that hold no data yet show zero.
    assert all(float(kpi["value"]) == 0 for kpis in sections.values() for kpi in kpis)
    html = response.content.decode()
    assert 'id="fablab-dashboard"' in html
    assert "Background tasks" in html


def test_sidebar_groups_tenancy_and_system(admin_client):
    response = admin_client.get(reverse("admin:index"))
    titles = [group.get("title") for group in response.context["sidebar_navigation"]]
    assert "Customers & partners" in titles
    assert titles[-1] == "System"
    system = response.context["sidebar_navigation"][-1]
    links = {item["link"] for item in system["items"]}
    assert reverse("admin:django_q_schedule_changelist") in links
    assert reverse("admin:django_q_failure_changelist") in links
    assert reverse("admin:account_emailaddress_changelist") in links


@pytest.mark.parametrize("model", list(admin.site._registry), ids=lambda m: m._meta.label)
def test_every_changelist_and_add_page_renders(admin_client, model):
    opts = model._meta
    assert admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")).status_code == 200
    if admin.site._registry[model].has_add_permission(_request_for(admin_client)):
        assert admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add")).status_code == 200


def _request_for(client):
    from django.test import RequestFactory

    from fablab.models import User

    request = RequestFactory().get("/admin/")
    request.user = User.objects.get(pk=client.session["_auth_user_id"])
    return request


def test_admin_registrations_use_unfold():
    from unfold.admin import ModelAdmin

    for model, model_admin in admin.site._registry.items():
        assert isinstance(model_admin, ModelAdmin), f"{model._meta.label} is not styled by unfold"


def test_creating_an_api_key_shows_the_secret_once(admin_client):
    partner = PartnerFactory()
    response = admin_client.post(
        reverse("admin:fablab_apikey_add"),
        {"organization": partner.pk, "name": "Webshop", "scope": "write", "expires_at_0": "", "expires_at_1": ""},
        follow=True,
    )
    assert response.status_code == 200
    text = " ".join(str(m) for m in response.context["messages"])
    raw = re.search(r"fl_[A-Za-z0-9]{8}_[A-Za-z0-9]{40}", text).group(0)
    api_key = ApiKey.objects.get(organization=partner)
    assert services.api_key_authenticate(raw_key=raw) == api_key
    page = admin_client.get(reverse("admin:fablab_apikey_change", args=[api_key.pk])).content.decode()
    assert raw not in page


def test_revoke_action(admin_client):
    partner = PartnerFactory()
    api_key, _ = services.api_key_create(organization=partner, name="k")
    admin_client.post(
        reverse("admin:fablab_apikey_changelist"),
        {"action": "revoke_keys", "_selected_action": [api_key.pk]},
    )
    api_key.refresh_from_db()
    assert api_key.status == "revoked"


def test_operator_sees_dashboard_but_cannot_change_organizations(operator_client):
    assert operator_client.get(reverse("admin:index")).status_code == 200
    organization = MembershipFactory().organization
    assert operator_client.get(reverse("admin:fablab_organization_changelist")).status_code == 200
    response = operator_client.post(reverse("admin:fablab_organization_change", args=[organization.pk]),
                                    {"name": "Hacked"})
    assert response.status_code == 403
    organization.refresh_from_db()
    assert organization.name != "Hacked"


def test_customers_cannot_enter_the_admin(client):
    client.force_login(MembershipFactory().user)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]
