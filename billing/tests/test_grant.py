import pytest
from django.core.management import CommandError, call_command

from billing import selectors, services
from billing.models import OrganizationPlan
from fablab.exceptions import Conflict

pytestmark = pytest.mark.django_db


def test_grant_command_gives_a_comp_plan(org, capsys):
    call_command("billing_grant", org.slug, "professional")
    row = OrganizationPlan.objects.get(organization=org)
    assert (row.plan.key, row.source) == ("professional", "comp")
    assert "Professional" in capsys.readouterr().out
    call_command("billing_grant", org.slug, "starter")  # again: replaced, not duplicated
    assert OrganizationPlan.objects.get(organization=org).plan.key == "starter"


@pytest.mark.parametrize("args, message", [
    (("no-such-org", "starter"), "No organization with the slug no-such-org"),
    (("ORG", "platinum"), "No plan with the key platinum"),
])
def test_grant_command_refuses_unknown_names(org, args, message):
    args = tuple(org.slug if a == "ORG" else a for a in args)
    with pytest.raises(CommandError, match=message):
        call_command("billing_grant", *args)
    assert not OrganizationPlan.objects.exists()


def test_a_paying_organization_is_not_comped(org):
    OrganizationPlan.objects.create(organization=org, plan=selectors.plan_get(key="starter"), source="stripe",
                                    stripe_subscription_id="sub_123")
    with pytest.raises(Conflict, match="through Stripe"):
        services.plan_grant(organization=org, plan=selectors.plan_get(key="business"))
    assert OrganizationPlan.objects.get(organization=org).plan.key == "starter"


def test_a_grant_and_its_end_are_audited(org):
    from fablab.choices import AuditAction
    from fablab.models import AuditEntry
    from fablab.tests.factories import UserFactory

    staff = UserFactory(is_staff=True)
    services.plan_grant(organization=org, plan=selectors.plan_get(key="professional"), by=staff, note="partner")
    entry = AuditEntry.objects.get(action=AuditAction.PLAN_CHANGED)
    assert (entry.actor, entry.organization, entry.target_type) == (staff, org, "plan")
    assert entry.extra == {"plan": "professional", "source": "comp", "note": "partner"}
    services.plan_revoke_comp(organization=org)
    ended = AuditEntry.objects.filter(action=AuditAction.PLAN_CHANGED).order_by("pk").last()
    assert (ended.organization, ended.extra["plan"]) == (org, "free")
    services.plan_revoke_comp(organization=org)  # no comp left: nothing changes, nothing is recorded
    assert AuditEntry.objects.filter(action=AuditAction.PLAN_CHANGED).count() == 2
