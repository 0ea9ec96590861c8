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

        catalog_note = self._catalog(partner_org)

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
        self.stdout.write("  API docs: http://127.0.0.1:8000/api/v1/docs")
        self.stdout.write(f"  Catalog: {catalog_note}\n")

    def _catalog(self, partner_org) -> str:
        """Sample models whose variants carry real sliced files from the corpus, if it is there."""
        from django.conf import settings
        from django.core.files import File

        from catalog import services as catalog
        from catalog.models import Model, ModelVariant

        samples = [
            ("Calibration cube", None, False, ["calibration"], "Orange PLA", "CUBE-PLA-OR",
             "prusaslicer-2.8.1_mk4s_minicube.bgcode"),
            ("Calibration cube", None, False, ["calibration"], "Bambu green", "CUBE-BBL-GR",
             "bambustudio-02.04.00.70_a1mini_cube.gcode.3mf"),
            ("Benchy", partner_org, True, ["boat", "benchmark"], "Standard", "BENCHY-STD",
             "orcaslicer-2.4.0a_ad5mpro_benchy.gcode"),
            ("Shape box", None, True, ["box", "multicolour"], "MMU3", "SHAPEBOX-MMU3",
             "prusaslicer-2.9.4_mk4ismmu3_shapebox.bgcode"),
        ]
        corpus = settings.FABLAB_CORPUS / "slicer"
        if not corpus.is_dir():
            return f"no sample files ({corpus} not found; set FABLAB_CORPUS)"
        added = 0
        for name, designer, shared, tags, variant_name, sku, filename in samples:
            if ModelVariant.objects.filter(sku=sku).exists() or not (corpus / filename).exists():
                continue
            model = Model.objects.filter(name=name).first() or catalog.model_create(
                name=name, designer=designer, shared_with_partners=shared, tags=tags,
                description=f"Sample model, sliced file {filename}.",
            )
            variant = catalog.variant_create(model=model, name=variant_name, sku=sku)
            with open(corpus / filename, "rb") as handle:
                catalog.variant_upload_sliced_file(variant=variant, upload=File(handle, name=filename),
                                                   change_note="Demo data")
            added += 1
        return f"{ModelVariant.objects.count()} variants ({added} added now) at http://127.0.0.1:8000/admin/catalog/"
