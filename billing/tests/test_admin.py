from decimal import Decimal

import pytest
from django.urls import reverse

from billing import selectors
from billing.models import OrganizationPlan
from billing.tests.factories import on_plan
from fablab.dashboard import domain_kpis

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", ["plan", "organizationplan", "usagecounter", "usageledger"])
def test_lists_and_forms_open(admin_client, org, model):
    on_plan(org, "starter")
    assert admin_client.get(reverse(f"admin:billing_{model}_changelist")).status_code == 200
    if model in ("plan", "organizationplan"):
        assert admin_client.get(reverse(f"admin:billing_{model}_add")).status_code == 200


def test_staff_comp_a_plan_and_end_it(admin_client, org, admin_user):
    plan = selectors.plan_get(key="business")
    response = admin_client.post(reverse("admin:billing_organizationplan_add"),
                                 {"organization": org.pk, "plan": plan.pk, "note": "partner deal"})
    assert response.status_code == 302, response.content
    row = OrganizationPlan.objects.get(organization=org)
    assert (row.plan.key, row.source, row.granted_by, row.note) == ("business", "comp", admin_user, "partner deal")
    admin_client.post(reverse("admin:billing_organizationplan_changelist"),
                      {"action": "end_comp", "_selected_action": [row.pk]})
    assert not OrganizationPlan.objects.filter(organization=org).exists()
    assert selectors.entitlement_get(organization=org).plan.key == "free"


def test_a_paid_plan_is_not_ended_by_the_comp_action(admin_client, org):
    row = OrganizationPlan.objects.create(organization=org, plan=selectors.plan_get(key="starter"), source="stripe",
                                          stripe_subscription_id="sub_1")
    admin_client.post(reverse("admin:billing_organizationplan_changelist"),
                      {"action": "end_comp", "_selected_action": [row.pk]})
    assert OrganizationPlan.objects.filter(pk=row.pk).exists()


def test_dashboard_kpis(admin_client, org):
    from fablab.tests.factories import OrganizationFactory

    OrganizationPlan.objects.create(organization=org, plan=selectors.plan_get(key="starter"), source="stripe",
                                    stripe_subscription_id="sub_1")
    OrganizationPlan.objects.create(organization=OrganizationFactory(), plan=selectors.plan_get(key="business"),
                                    source="stripe", stripe_subscription_id="sub_2")
    on_plan(OrganizationFactory(), "professional")
    kpis = {row["label"]: row["value"] for row in domain_kpis("billing")}
    assert kpis["MRR (GBP)"] == Decimal("428.00")
    assert (kpis["Active subscriptions"], kpis["Starter"], kpis["Business"]) == (2, 1, 1)
    assert kpis["Complimentary plans"] == 1 and kpis["Failed payments (in grace)"] == 0
    assert admin_client.get(reverse("admin:index")).status_code == 200
