"""Data rights in the portal: deleting one's account, handing over ownership, exporting an organization's data
and deleting the organization with its files."""

import io
import json
import zipfile
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from fablab import services
from fablab.choices import AuditAction, ExportStatus, MembershipRole
from fablab.exceptions import Conflict, InvalidInput, PermissionDenied
from fablab.models import ApiKey, AuditEntry, Membership, Organization, OrganizationExport
from fablab.tests.factories import (
    PASSWORD,
    MembershipFactory,
    OrganizationFactory,
    PartnerFactory,
    UserFactory,
    make_api_key,
)
from inventory import services as inventory_services
from inventory.models import Sale
from inventory.tests.factories import key
from reconstruction import services as scan_services
from reconstruction.models import ScanJob, ScanPhoto
from reconstruction.tests.factories import photo

pytestmark = pytest.mark.django_db
User = get_user_model()


def entries(action: str, **filters):
    return AuditEntry.objects.filter(action=action, **filters)


@pytest.fixture
def org():
    return OrganizationFactory(name="Bench Prints")


@pytest.fixture
def owner(org):
    return MembershipFactory(organization=org, role=MembershipRole.OWNER)


@pytest.fixture
def member(org):
    return MembershipFactory(organization=org, role=MembershipRole.MEMBER)


@pytest.fixture
def other_org():
    return OrganizationFactory(name="Rival Works")


@pytest.fixture
def other_owner(other_org):
    return MembershipFactory(organization=other_org, role=MembershipRole.OWNER)


def scan_with_photo(membership, *, title: str, seed: int = 0) -> tuple[ScanJob, ScanPhoto]:
    job = scan_services.scan_job_create(organization=membership.organization, user=membership.user, title=title)
    added, _created = scan_services.scan_photo_add(job=job, upload=photo(f"{title}.jpg", seed=seed))
    return job, added


@pytest.fixture
def rings():
    shelf = inventory_services.location_create(name="Shelf", kind="shelf")
    product = inventory_services.product_create(sku="RING", name="Keyring rings", kind="bought")
    inventory_services.product_stock_change(product=product, location=shelf, kind="received", quantity=20,
                                            idempotency_key=key())
    return product


# --- Deleting one's account -------------------------------------------------------------------------------


class TestAccountDeletion:
    def test_the_only_owner_cannot_delete_their_account(self, client, owner, member):
        client.force_login(owner.user)
        response = client.post(reverse("portal:account_delete"), {"password": PASSWORD})
        assert response.status_code == 400
        assert "You are the only owner of Bench Prints" in response.content.decode()
        assert User.objects.filter(pk=owner.user.pk).exists()
        assert Membership.objects.filter(pk=owner.pk, role=MembershipRole.OWNER).exists()
        assert not entries(AuditAction.ACCOUNT_DELETED).exists()

    def test_the_page_warns_a_sole_owner_before_they_try(self, client, owner):
        client.force_login(owner.user)
        response = client.get(reverse("portal:account_delete"))
        assert response.status_code == 200
        assert 'data-testid="sole-owner"' in response.content.decode()

    def test_a_wrong_password_deletes_nothing(self, client, owner, member):
        client.force_login(member.user)
        response = client.post(reverse("portal:account_delete"), {"password": "not-my-password"})
        assert response.status_code == 400
        assert "The password is not correct" in response.content.decode()
        assert User.objects.filter(pk=member.user.pk).exists()
        assert Membership.objects.filter(pk=member.pk).exists()
        assert not entries(AuditAction.ACCOUNT_DELETED).exists()

    def test_an_empty_password_is_a_form_error_not_a_deletion(self, client, member):
        client.force_login(member.user)
        response = client.post(reverse("portal:account_delete"), {"password": ""})
        assert response.status_code == 400
        assert User.objects.filter(pk=member.user.pk).exists()

    def test_a_second_owner_can_delete_their_account(self, client, org, owner):
        second = MembershipFactory(organization=org, role=MembershipRole.OWNER)
        email = second.user.email
        client.force_login(second.user)
        response = client.post(reverse("portal:account_delete"), {"password": PASSWORD})
        assert response.status_code == 302
        assert not User.objects.filter(pk=second.user.pk).exists()
        assert not Membership.objects.filter(pk=second.pk).exists()
        assert list(Membership.objects.filter(organization=org).values_list("pk", flat=True)) == [owner.pk]
        entry = entries(AuditAction.ACCOUNT_DELETED).get()
        assert entry.organization == org
        assert entry.actor is None  # the person is gone; the entry still says who it was
        assert entry.actor_label == email
        # Logged out: the portal shows the landing page.
        assert reverse("account_signup") in client.get("/").content.decode()

    def test_rows_the_business_keeps_stay_without_the_person(self, org, owner, member, rings):
        sale = inventory_services.sale_record(product=rings, quantity=2, unit_price="2.50",
                                              sold_on=timezone.localdate(), channel="market",
                                              idempotency_key=key("sale"), by=member.user)
        job = scan_services.scan_job_create(organization=org, user=member.user, title="Vase")
        api_key, _secret = services.api_key_create(organization=org, name="Shop", created_by=member.user)
        login = services.audit_record(action=AuditAction.LOGIN, actor=member.user, target=member.user)
        audit_before = AuditEntry.objects.count()

        services.user_delete(user=member.user, password=PASSWORD)

        sale.refresh_from_db()
        sale.movement.refresh_from_db()
        assert sale.movement.created_by is None
        assert Sale.objects.filter(pk=sale.pk, quantity=2).exists()
        job.refresh_from_db()
        assert job.created_by is None and job.organization == org
        api_key.refresh_from_db()
        assert api_key.created_by is None
        login = AuditEntry.objects.get(pk=login.pk)
        assert login.actor is None and login.actor_label == member.user.email
        assert AuditEntry.objects.count() == audit_before + 1  # nothing removed, the deletion added

    def test_staff_accounts_are_not_deleted_from_the_portal(self, org):
        staff = MembershipFactory(organization=org, role=MembershipRole.MEMBER, user__is_staff=True).user
        with pytest.raises(PermissionDenied):
            services.user_delete(user=staff, password=PASSWORD)
        assert User.objects.filter(pk=staff.pk).exists()

    def test_a_person_without_an_organization_can_delete_their_account(self, client):
        user = UserFactory()
        client.force_login(user)
        assert client.post(reverse("portal:account_delete"), {"password": PASSWORD}).status_code == 302
        assert not User.objects.filter(pk=user.pk).exists()
        assert entries(AuditAction.ACCOUNT_DELETED, organization=None).count() == 1


# --- Handing over ownership -------------------------------------------------------------------------------


class TestOwnershipTransfer:
    def test_the_only_owner_hands_over_and_may_then_leave(self, client, org, owner, member):
        client.force_login(owner.user)
        response = client.post(reverse("portal:ownership_transfer"), {"membership": member.pk})
        assert response.status_code == 302
        member.refresh_from_db()
        owner.refresh_from_db()
        assert member.role == MembershipRole.OWNER
        assert owner.role == MembershipRole.ADMIN
        entry = entries(AuditAction.OWNERSHIP_TRANSFERRED).get()
        assert entry.organization == org and entry.actor == owner.user and entry.target_id == str(member.user.pk)
        assert client.post(reverse("portal:account_delete"), {"password": PASSWORD}).status_code == 302
        assert not User.objects.filter(pk=owner.user.pk).exists()

    def test_an_owner_may_stay_owner(self, org, owner, member):
        services.ownership_transfer(organization=org, by=owner.user, to=member, keep_ownership=True)
        assert Membership.objects.filter(organization=org, role=MembershipRole.OWNER).count() == 2

    def test_only_owners_hand_over(self, client, org, owner, member):
        admin = MembershipFactory(organization=org, role=MembershipRole.ADMIN)
        client.force_login(admin.user)
        assert client.post(reverse("portal:ownership_transfer"), {"membership": member.pk}).status_code == 403
        member.refresh_from_db()
        assert member.role == MembershipRole.MEMBER
        assert not entries(AuditAction.OWNERSHIP_TRANSFERRED).exists()

    def test_a_member_of_another_organization_cannot_be_chosen(self, client, owner, other_owner):
        stranger = MembershipFactory(organization=other_owner.organization)
        client.force_login(owner.user)
        response = client.post(reverse("portal:ownership_transfer"), {"membership": stranger.pk})
        assert response.status_code == 400
        stranger.refresh_from_db()
        assert stranger.role == MembershipRole.MEMBER


# --- Exporting an organization's data ---------------------------------------------------------------------


def export_zip(client, export: OrganizationExport) -> zipfile.ZipFile:
    response = client.get(reverse("portal:organization_export_download", args=[export.pk]))
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"] == "application/zip"
    assert "attachment" in response["Content-Disposition"]
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


@pytest.fixture
def two_orgs_with_data(org, owner, member, other_org, other_owner):
    mine = scan_with_photo(owner, title="Mine", seed=1)
    theirs = scan_with_photo(other_owner, title="Theirs", seed=2)
    my_key, _ = make_api_key(org, name="My shop")
    their_key, _ = make_api_key(other_org, name="Their shop")
    return {"mine": mine, "theirs": theirs, "my_key": my_key, "their_key": their_key}


class TestExport:
    def test_the_export_holds_the_organizations_rows_and_files_and_nothing_of_another(
        self, client, run_tasks, org, owner, other_org, two_orgs_with_data,
    ):
        client.force_login(owner.user)
        with run_tasks():
            response = client.post(reverse("portal:organization_export_request"))
        assert response.status_code == 302
        export = OrganizationExport.objects.get(organization=org)
        assert export.status == ExportStatus.READY
        assert export.file.name.startswith(f"exports/org-{org.pk}/")
        archive = export_zip(client, export)
        names = archive.namelist()

        job, my_photo = two_orgs_with_data["mine"]
        their_job, their_photo = two_orgs_with_data["theirs"]
        scans = json.loads(archive.read("data/reconstruction.scanjob.json"))
        assert [row["id"] for row in scans] == [job.pk]
        photos = json.loads(archive.read("data/reconstruction.scanphoto.json"))
        assert [row["id"] for row in photos] == [my_photo.pk]
        assert archive.read(f"files/{my_photo.image.name}") == default_storage.open(my_photo.image.name).read()
        keys = json.loads(archive.read("data/fablab.apikey.json"))
        assert [row["prefix"] for row in keys] == [two_orgs_with_data["my_key"].prefix]
        assert all("hashed_key" not in row for row in keys)
        members = json.loads(archive.read("data/fablab.membership.json"))
        assert {row["organization"] for row in members} == {org.pk}
        assert len(members) == 2
        assert json.loads(archive.read("data/fablab.organization.json"))[0]["name"] == "Bench Prints"
        manifest = json.loads(archive.read("manifest.json"))
        assert manifest["organization"]["id"] == org.pk and manifest["missing_files"] == []

        # Nothing of the other organization anywhere: no row naming it, no file of it, not its name.
        assert not [n for n in names if f"org-{other_org.pk}/" in n]
        assert f"files/{their_photo.image.name}" not in names
        everything = b"".join(archive.read(n) for n in names if n.startswith(("data/", "manifest")))
        assert b"Rival Works" not in everything and b"Theirs" not in everything
        assert two_orgs_with_data["their_key"].prefix.encode() not in everything
        for name in names:
            if name.startswith("data/"):
                for row in json.loads(archive.read(name)):
                    assert row.get("organization") in (None, org.pk), (name, row)

        assert entries(AuditAction.EXPORT_REQUESTED, organization=org, actor=owner.user).count() == 1
        assert entries(AuditAction.EXPORT_DOWNLOADED, organization=org, actor=owner.user).count() == 1

    def test_only_owners_may_download_and_another_organization_gets_404(
        self, client, run_tasks, org, owner, member, other_owner,
    ):
        with run_tasks():
            export = services.organization_export_request(organization=org, by=owner.user)
        url = reverse("portal:organization_export_download", args=[export.pk])
        admin = MembershipFactory(organization=org, role=MembershipRole.ADMIN)
        for person in (member.user, admin.user):
            client.force_login(person)
            assert client.get(url).status_code == 403
        client.force_login(other_owner.user)
        assert client.get(url).status_code == 404
        client.logout()
        assert client.get(url).status_code == 302  # to the log-in page
        assert not entries(AuditAction.EXPORT_DOWNLOADED).exists()

    def test_the_link_expires_and_the_file_is_then_removed(self, client, run_tasks, org, owner, settings):
        with run_tasks():
            export = services.organization_export_request(organization=org, by=owner.user)
        export.refresh_from_db()
        name = export.file.name
        assert default_storage.exists(name)
        assert export.expires_at - export.finished_at == timedelta(hours=settings.ORGANIZATION_EXPORT_VALID_HOURS)
        OrganizationExport.objects.filter(pk=export.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        client.force_login(owner.user)
        response = client.get(reverse("portal:organization_export_download", args=[export.pk]))
        assert response.status_code == 410
        assert "request a new one" in response.content.decode()
        assert not entries(AuditAction.EXPORT_DOWNLOADED).exists()

        assert services.organization_exports_expire() == 1
        export.refresh_from_db()
        assert export.status == ExportStatus.EXPIRED and not export.file
        assert not default_storage.exists(name)
        assert services.organization_exports_expire() == 0

    def test_only_owners_request_exports_and_one_at_a_time(self, client, org, owner, member):
        client.force_login(member.user)
        assert client.post(reverse("portal:organization_export_request")).status_code == 403
        assert client.get(reverse("portal:organization_data")).status_code == 403
        services.organization_export_request(organization=org, by=owner.user)  # queued, not run
        with pytest.raises(Conflict):
            services.organization_export_request(organization=org, by=owner.user)
        assert OrganizationExport.objects.filter(organization=org).count() == 1

    def test_building_twice_writes_once(self, run_tasks, org, owner):
        with run_tasks():
            export = services.organization_export_request(organization=org, by=owner.user)
        export.refresh_from_db()
        again = services.organization_export_build(export_id=export.pk)
        assert again.file.name == export.file.name
        assert len(list(default_storage.listdir(f"exports/org-{org.pk}")[1])) == 1

    def test_the_data_page_lists_the_download(self, client, run_tasks, org, owner):
        with run_tasks():
            services.organization_export_request(organization=org, by=owner.user)
        client.force_login(owner.user)
        page = client.get(reverse("portal:organization_data")).content.decode()
        assert 'data-testid="export-download"' in page


# --- Deleting an organization -----------------------------------------------------------------------------


class TestOrganizationDeletion:
    def test_a_wrong_password_or_name_deletes_nothing(self, client, run_tasks, org, owner, two_orgs_with_data):
        client.force_login(owner.user)
        url = reverse("portal:organization_delete")
        with run_tasks():
            wrong_password = client.post(url, {"name": "Bench Prints", "password": "nope"})
            wrong_name = client.post(url, {"name": "Bench", "password": PASSWORD})
        assert wrong_password.status_code == 400
        assert "The password is not correct" in wrong_password.content.decode()
        assert wrong_name.status_code == 400
        assert "Type the organization" in wrong_name.content.decode()
        org.refresh_from_db()
        assert org.is_active and org.deletion_requested_at is None
        job, my_photo = two_orgs_with_data["mine"]
        assert ScanJob.objects.filter(pk=job.pk).exists()
        assert default_storage.exists(my_photo.image.name)
        assert not entries(AuditAction.ORGANIZATION_DELETED).exists()

    def test_only_owners_delete(self, client, org, owner, member):
        admin = MembershipFactory(organization=org, role=MembershipRole.ADMIN)
        client.force_login(admin.user)
        response = client.post(reverse("portal:organization_delete"), {"name": "Bench Prints", "password": PASSWORD})
        assert response.status_code == 403
        assert Organization.objects.filter(pk=org.pk, deletion_requested_at__isnull=True).exists()

    def test_deletion_removes_rows_and_files_and_leaves_other_organizations_alone(
        self, client, run_tasks, org, owner, member, other_org, other_owner, two_orgs_with_data, rings,
    ):
        with run_tasks():
            export = services.organization_export_request(organization=org, by=owner.user)
        export.refresh_from_db()
        sale = inventory_services.sale_record(product=rings, quantity=1, unit_price="3.00",
                                              sold_on=timezone.localdate(), channel="market",
                                              idempotency_key=key("sale"), by=owner.user)
        job, my_photo = two_orgs_with_data["mine"]
        their_job, their_photo = two_orgs_with_data["theirs"]
        my_files = [my_photo.image.name, export.file.name]
        assert all(default_storage.exists(name) for name in my_files)

        client.force_login(owner.user)
        with run_tasks():
            response = client.post(reverse("portal:organization_delete"),
                                   {"name": "Bench Prints", "password": PASSWORD})
        assert response.status_code == 302

        assert not Organization.objects.filter(pk=org.pk).exists()
        assert not ScanJob.objects.filter(pk=job.pk).exists()
        assert not ScanPhoto.objects.filter(pk=my_photo.pk).exists()
        assert not ApiKey.objects.filter(organization_id=org.pk).exists()
        assert not Membership.objects.filter(organization_id=org.pk).exists()
        assert not OrganizationExport.objects.filter(pk=export.pk).exists()
        assert not any(default_storage.exists(name) for name in my_files)
        # The people stay (they may belong elsewhere); the sale stays; the other organization is whole.
        assert User.objects.filter(pk__in=[owner.user.pk, member.user.pk]).count() == 2
        assert Sale.objects.filter(pk=sale.pk).exists()
        assert Organization.objects.filter(pk=other_org.pk, is_active=True).exists()
        assert ScanJob.objects.filter(pk=their_job.pk).exists()
        assert ScanPhoto.objects.filter(pk=their_photo.pk).exists()
        assert default_storage.exists(their_photo.image.name)
        assert ApiKey.objects.filter(pk=two_orgs_with_data["their_key"].pk).exists()
        # The audit log keeps the deletion, and the organization's earlier entries, without the link.
        entry = entries(AuditAction.ORGANIZATION_DELETED).get()
        assert entry.organization is None
        assert entry.actor == owner.user
        assert entry.extra["name"] == "Bench Prints" and entry.extra["organization_id"] == org.pk
        assert entries(AuditAction.EXPORT_REQUESTED, organization=None).count() == 1
        # Running the task again changes nothing.
        assert services.organization_purge(organization_id=org.pk) is None

    def test_an_organization_being_deleted_is_gone_from_the_portal_and_the_api(self, client, org, owner):
        _key, secret = make_api_key(org)
        services.organization_delete_request(organization=org, by=owner.user, password=PASSWORD,
                                             confirm_name="Bench Prints")  # the task has not run yet
        client.force_login(owner.user)
        assert "Bench Prints" not in client.get("/").content.decode()
        assert client.get("/api/v1/organization", HTTP_X_API_KEY=secret).status_code == 401
        with pytest.raises(Conflict):
            services.organization_export_request(organization=org, by=owner.user)
        # Its owner may now leave: the organization no longer needs them.
        services.user_delete(user=owner.user, password=PASSWORD)

    def test_a_partners_designs_and_their_images_go_with_it(self, run_tasks):
        from catalog import services as catalog_services
        from catalog.models import Model, ModelImage

        partner = PartnerFactory()
        owner = MembershipFactory(organization=partner, role=MembershipRole.OWNER)
        design = catalog_services.model_create(name="Bracket", designer=partner)
        image = catalog_services.model_image_create(model=design, image=photo("bracket.jpg"))
        lab_model = catalog_services.model_create(name="Lab cube")
        assert image.image.name.startswith(f"catalog/org-{partner.pk}/")
        with run_tasks():
            services.organization_delete_request(organization=partner, by=owner.user, password=PASSWORD,
                                                 confirm_name=partner.name)
        assert not Model.objects.filter(pk=design.pk).exists()
        assert not ModelImage.objects.filter(pk=image.pk).exists()
        assert not default_storage.exists(image.image.name)
        assert Model.objects.filter(pk=lab_model.pk).exists()

    def test_the_purge_refuses_an_organization_nobody_asked_to_delete(self, org):
        with pytest.raises(Conflict):
            services.organization_purge(organization_id=org.pk)
        assert Organization.objects.filter(pk=org.pk).exists()

    def test_a_wrong_password_through_the_service_is_invalid_input(self, org, owner):
        with pytest.raises(InvalidInput):
            services.organization_delete_request(organization=org, by=owner.user, password="",
                                                 confirm_name=org.name)


class TestOrganizationDeletionKeepsWhatTheLabNeeds:
    def test_a_design_a_lab_job_was_made_from_stays_unlinked_with_its_file(self, run_tasks, fake_reader):
        from catalog import services as catalog_services
        from catalog.models import Model, SlicedFile
        from catalog.tests.factories import VariantFactory, gcode_upload
        from production import services as production_services
        from production.models import PrintJob

        partner = PartnerFactory()
        owner = MembershipFactory(organization=partner, role=MembershipRole.OWNER)
        kept_design = catalog_services.model_create(name="Bracket", designer=partner)
        gone_design = catalog_services.model_create(name="Hook", designer=partner)
        kept_version = catalog_services.variant_upload_sliced_file(
            variant=VariantFactory(model=kept_design), upload=gcode_upload(body=b"G28\n"))
        gone_version = catalog_services.variant_upload_sliced_file(
            variant=VariantFactory(model=gone_design), upload=gcode_upload(body=b"G28\nG1 X1\n"))
        partners_job = production_services.print_job_create(version=gone_version, organization=partner)
        labs_job = production_services.print_job_create(version=kept_version)
        kept_file, gone_file = kept_version.sliced_file.file.name, gone_version.sliced_file.file.name

        with run_tasks():
            services.organization_delete_request(organization=partner, by=owner.user, password=PASSWORD,
                                                 confirm_name=partner.name)

        assert not Organization.objects.filter(pk=partner.pk).exists()
        # The partner's own job went first, so its design could go, with its file.
        assert not PrintJob.objects.filter(pk=partners_job.pk).exists()
        assert not Model.objects.filter(pk=gone_design.pk).exists()
        assert not SlicedFile.objects.filter(pk=gone_version.sliced_file_id).exists()
        assert not default_storage.exists(gone_file)
        # The lab's job still needs the other design: it stays, no longer the partner's, and keeps its file.
        assert PrintJob.objects.filter(pk=labs_job.pk).exists()
        assert Model.objects.get(pk=kept_design.pk).designer is None
        assert default_storage.exists(kept_file)
