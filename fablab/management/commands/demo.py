"""Load the demo data and print every credential. Safe to run again."""

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from fablab import services
from fablab.choices import ApiKeyScope, MembershipRole, OrganizationKind
from fablab.models import ApiKey, Membership, Organization

User = get_user_model()

ADMIN = ("admin", "admin@fablab.local", "fablab-admin")
OPERATOR = ("operator", "operator@fablab.local", "fablab-operator")
CUSTOMER = ("customer", "customer@example.com", "fablab-customer")
PARTNER = ("partner", "partner@example.com", "fablab-partner")
DEMO_KEY_NAME = "Demo key"


def _user(username: str, email: str, password: str, **flags):
    user, _ = User.objects.get_or_create(username=username, defaults={"email": email, **flags})
    user.email = email
    for key, value in flags.items():
        setattr(user, key, value)
    user.set_password(password)
    user.save()
    EmailAddress.objects.update_or_create(
        user=user, email=email, defaults={"verified": True, "primary": True}
    )
    return user


def _organization(name: str, kind: str, owner) -> Organization:
    organization = Organization.objects.filter(name=name, kind=kind).first()
    if organization is None:
        organization = services.organization_create(name=name, kind=kind)
    if not Membership.objects.filter(organization=organization, user=owner).exists():
        services.membership_add(organization=organization, user=owner, role=MembershipRole.OWNER)
    return organization


class Command(BaseCommand):
    help = "Create the demo users, organizations and a partner API key, and print the credentials."

    @transaction.atomic
    def handle(self, *args, **options):
        _user(*ADMIN, is_staff=True, is_superuser=True)
        operator = _user(*OPERATOR, is_staff=True)
        operator.groups.add(Group.objects.get(name="Operator"))
        customer = _user(*CUSTOMER)
        partner = _user(*PARTNER)
        customer_org = _organization("Acme Prints", OrganizationKind.CUSTOMER, customer)
        partner_org = _organization("Pixel Partners", OrganizationKind.PARTNER, partner)

        # The secret of an API key cannot be shown twice, so each run issues a fresh
        # demo key and revokes the one before.
        for old in ApiKey.objects.filter(organization=partner_org, name=DEMO_KEY_NAME, revoked_at__isnull=True):
            services.api_key_revoke(api_key=old)
        _key, raw_key = services.api_key_create(
            organization=partner_org, name=DEMO_KEY_NAME, scope=ApiKeyScope.WRITE
        )

        rows = [
            ("Admin (staff, superuser)", "http://127.0.0.1:8000/admin/", ADMIN[1], ADMIN[2]),
            ("Operator (staff)", "http://127.0.0.1:8000/admin/", OPERATOR[1], OPERATOR[2]),
            (f"Customer, owner of {customer_org}", "http://127.0.0.1:8000/", CUSTOMER[1], CUSTOMER[2]),
            (f"Partner, owner of {partner_org}", "http://127.0.0.1:8000/", PARTNER[1], PARTNER[2]),
        ]
        self.stdout.write(self.style.SUCCESS("\nDemo data ready. Log in with:"))
        for role, url, email, password in rows:
            self.stdout.write(f"  {role:<34} {url:<32} {email:<24} {password}")
        self.stdout.write(f"\n  Partner API key ({partner_org}, read+write): {raw_key}")
        self.stdout.write(
            f'  Try: curl -H "X-API-Key: {raw_key}" http://127.0.0.1:8000/api/v1/organization'
        )
        self.stdout.write("  API docs: http://127.0.0.1:8000/api/v1/docs\n")
