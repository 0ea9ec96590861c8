"""The audit log: each security-relevant action writes one entry saying who, which organization and from where;
entries are never changed or deleted; an organization's owners read their own organization's entries only."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from fablab import services
from fablab.choices import ApiKeyScope, AuditAction, MembershipRole
from fablab.exceptions import InvalidInput
from fablab.models import ApiKey, AuditEntry, AuditLogImmutable, Membership
from fablab.tests.factories import (
    PASSWORD,
    MembershipFactory,
    OrganizationFactory,
    UserFactory,
    make_api_key,
    make_invitation,
)
from fablab.tests.helpers import ApiClient

pytestmark = pytest.mark.django_db
User = get_user_model()

OFFICE = "198.51.100.7"
BROWSER = "Mozilla/5.0 (audit test)"


def browser(user=None) -> Client:
    client = Client(REMOTE_ADDR=OFFICE, HTTP_USER_AGENT=BROWSER)
    if user is not None:
        client.force_login(user)
    return client


def only(action: str) -> AuditEntry:
    entries = list(AuditEntry.objects.filter(action=action))
    assert len(entries) == 1, entries
    return entries[0]


def assert_from_office(entry: AuditEntry) -> None:
    assert (entry.ip_address, entry.user_agent) == (OFFICE, BROWSER)


@pytest.fixture
def owner():
    return MembershipFactory(role=MembershipRole.OWNER)


class TestLogIns:
    def test_admin_log_in_and_failure(self):
        staff = UserFactory(username="boss", is_staff=True, is_superuser=True)
        browser().post("/admin/login/?next=/admin/", {"username": "boss", "password": "wrong"})
        failed = only(AuditAction.LOGIN_FAILED)
        assert failed.actor is None and failed.target_text == "boss" and failed.organization is None
        assert_from_office(failed)
        assert "wrong" not in str(failed.extra) + failed.target_text  # the password is never kept
        client = browser()
        client.post("/admin/login/?next=/admin/", {"username": "boss", "password": PASSWORD})
        assert "_auth_user_id" in client.session
        entry = only(AuditAction.LOGIN)
        assert (entry.actor, entry.actor_label, entry.target_id) == (staff, staff.email, str(staff.pk))
        assert_from_office(entry)

    def test_portal_log_in_and_failure(self):
        user = UserFactory(email="maker@example.com")
        browser().post(reverse("account_login"), {"login": "maker@example.com", "password": "nope"})
        failed = only(AuditAction.LOGIN_FAILED)
        assert failed.actor is None and failed.target_text == "maker@example.com"
        assert_from_office(failed)
        browser().post(reverse("account_login"), {"login": "maker@example.com", "password": PASSWORD})
        entry = only(AuditAction.LOGIN)
        assert entry.actor == user
        assert_from_office(entry)


class TestApiKeys:
    def test_created_and_revoked_in_the_portal(self, owner):
        client = browser(owner.user)
        client.post(reverse("portal:api_key_create"), {"name": "Shop sync", "scope": ApiKeyScope.READ})
        key = ApiKey.objects.get()
        created = only(AuditAction.API_KEY_CREATED)
        assert (created.actor, created.organization, created.target_type, created.target_id) == (
            owner.user, owner.organization, "apikey", str(key.pk))
        assert created.extra == {"scope": "read"}
        assert_from_office(created)
        client.post(reverse("portal:api_key_revoke", args=[key.pk]))
        revoked = only(AuditAction.API_KEY_REVOKED)
        assert (revoked.actor, revoked.organization, revoked.target_id) == (owner.user, owner.organization,
                                                                           str(key.pk))
        assert_from_office(revoked)
        client.post(reverse("portal:api_key_revoke", args=[key.pk]))  # revoked already: nothing new
        assert AuditEntry.objects.filter(action=AuditAction.API_KEY_REVOKED).count() == 1

    def test_created_and_revoked_by_staff_in_the_admin(self):
        staff = UserFactory(is_staff=True, is_superuser=True)
        organization = OrganizationFactory()
        client = browser(staff)
        client.post(reverse("admin:fablab_apikey_add"), {"organization": organization.pk, "name": "Scale",
                                                          "scope": ApiKeyScope.WRITE})
        key = ApiKey.objects.get()
        created = only(AuditAction.API_KEY_CREATED)
        assert (created.actor, created.organization) == (staff, organization)
        assert_from_office(created)
        client.post(reverse("admin:fablab_apikey_changelist"),
                    {"action": "revoke_keys", "_selected_action": [key.pk]})
        revoked = only(AuditAction.API_KEY_REVOKED)
        assert (revoked.actor, revoked.organization) == (staff, organization)

    def test_revoked_through_the_api_names_the_key_that_did_it(self, partner):
        acting, raw = make_api_key(partner, scope=ApiKeyScope.WRITE)
        target, _raw = make_api_key(partner)
        api = ApiClient(raw, REMOTE_ADDR=OFFICE, HTTP_USER_AGENT=BROWSER)
        assert api.post(f"/api/v1/api-keys/{target.pk}/revoke").status_code == 200
        entry = only(AuditAction.API_KEY_REVOKED)
        assert (entry.api_key, entry.actor, entry.organization, entry.target_id) == (
            acting, None, partner, str(target.pk))
        assert entry.actor_label == f"{acting.name} (fl_{acting.prefix}_…)"
        assert_from_office(entry)

    def test_a_refused_key_records_nothing(self, owner):
        member = MembershipFactory(organization=owner.organization, role=MembershipRole.MEMBER)
        response = browser(member.user).post(reverse("portal:api_key_create"), {"name": "Mine", "scope": "read"})
        assert response.status_code == 404
        assert not AuditEntry.objects.filter(action=AuditAction.API_KEY_CREATED).exists()


class TestMemberships:
    def test_joining_through_an_invitation(self, owner):
        _invitation, token = make_invitation(owner, "new@example.com")
        newcomer = UserFactory(email="new@example.com")
        before = AuditEntry.objects.filter(action=AuditAction.MEMBER_ADDED).count()
        browser(newcomer).post(reverse("portal:invitation_accept", args=[token]))
        entries = AuditEntry.objects.filter(action=AuditAction.MEMBER_ADDED).order_by("pk")
        assert entries.count() == before + 1
        entry = entries.last()
        assert (entry.actor, entry.organization, entry.target_id, entry.extra) == (
            newcomer, owner.organization, str(newcomer.pk), {"role": "member"})
        assert_from_office(entry)

    def test_removal_in_the_portal(self, owner):
        member = MembershipFactory(organization=owner.organization, role=MembershipRole.MEMBER)
        browser(owner.user).post(reverse("portal:member_remove", args=[member.pk]))
        entry = only(AuditAction.MEMBER_REMOVED)
        assert (entry.actor, entry.organization, entry.target_id) == (owner.user, owner.organization,
                                                                     str(member.user.pk))
        assert_from_office(entry)

    def test_role_change_by_staff_in_the_admin(self, owner):
        staff = UserFactory(is_staff=True, is_superuser=True)
        member = MembershipFactory(organization=owner.organization, role=MembershipRole.MEMBER)
        response = browser(staff).post(reverse("admin:fablab_membership_change", args=[member.pk]), {
            "user": member.user.pk, "organization": owner.organization.pk, "role": MembershipRole.ADMIN})
        assert response.status_code == 302
        entry = only(AuditAction.MEMBER_ROLE_CHANGED)
        assert (entry.actor, entry.organization, entry.extra) == (staff, owner.organization,
                                                                  {"from": "member", "to": "admin"})
        assert_from_office(entry)
        Membership.objects.get(pk=member.pk).save()  # saved without a change of role: nothing new
        assert AuditEntry.objects.filter(action=AuditAction.MEMBER_ROLE_CHANGED).count() == 1

    def test_an_organization_deleted_keeps_its_entries_without_new_ones(self, owner):
        organization = owner.organization
        count = AuditEntry.objects.count()
        organization.delete()
        assert AuditEntry.objects.count() == count
        assert not AuditEntry.objects.filter(action=AuditAction.MEMBER_REMOVED).exists()
        assert AuditEntry.objects.get(action=AuditAction.MEMBER_ADDED).organization is None


class TestAppendOnly:
    def test_an_entry_cannot_be_changed_or_deleted(self, owner):
        entry = services.audit_record(action=AuditAction.LOGIN, actor=owner.user, target=owner.user)
        entry.target_text = "forged"
        with pytest.raises(AuditLogImmutable):
            entry.save()
        with pytest.raises(AuditLogImmutable):
            entry.delete()
        with pytest.raises(AuditLogImmutable):
            AuditEntry.objects.filter(pk=entry.pk).update(target_text="forged")
        with pytest.raises(AuditLogImmutable):
            AuditEntry.objects.filter(pk=entry.pk).delete()
        assert AuditEntry.objects.get(pk=entry.pk).target_text == str(owner.user)

    def test_an_unknown_action_is_refused(self):
        with pytest.raises(InvalidInput):
            services.audit_record(action="coffee")
        assert not AuditEntry.objects.exists()

    def test_outside_a_request_an_entry_has_no_address(self, owner):
        entry = services.audit_record(action=AuditAction.PLAN_CHANGED, organization=owner.organization)
        assert (entry.actor, entry.ip_address, entry.user_agent) == (None, None, "")

    def test_the_admin_shows_entries_read_only(self, owner):
        entry = services.audit_record(action=AuditAction.LOGIN, actor=owner.user, target=owner.user)
        client = browser(UserFactory(is_staff=True, is_superuser=True))
        changelist = client.get(reverse("admin:fablab_auditentry_changelist"), {"action__exact": "login"})
        assert changelist.status_code == 200 and owner.user.email in changelist.content.decode()
        detail = client.get(reverse("admin:fablab_auditentry_change", args=[entry.pk]))
        assert detail.status_code == 200 and 'name="target_text"' not in detail.content.decode()
        assert client.post(reverse("admin:fablab_auditentry_change", args=[entry.pk]),
                           {"target_text": "forged"}).status_code == 403
        assert client.post(reverse("admin:fablab_auditentry_delete", args=[entry.pk]),
                           {"post": "yes"}).status_code == 403
        assert client.get(reverse("admin:fablab_auditentry_add")).status_code == 403
        assert AuditEntry.objects.get(pk=entry.pk).target_text == str(owner.user)

    def test_a_manager_may_view_but_not_delete(self, staff_member, owner):
        entry = services.audit_record(action=AuditAction.LOGIN, actor=owner.user, target=owner.user)
        client = browser(staff_member("Manager"))
        assert client.get(reverse("admin:fablab_auditentry_changelist")).status_code == 200
        assert client.post(reverse("admin:fablab_auditentry_delete", args=[entry.pk]),
                           {"post": "yes"}).status_code == 403
        assert AuditEntry.objects.filter(pk=entry.pk).exists()


class TestPortalPage:
    def test_owner_sees_only_their_organizations_entries(self, owner):
        other = MembershipFactory(role=MembershipRole.OWNER)
        services.audit_record(action=AuditAction.API_KEY_CREATED, organization=owner.organization,
                              target_text="Own key")
        services.audit_record(action=AuditAction.API_KEY_CREATED, organization=other.organization,
                              target_text="Foreign key")
        services.audit_record(action=AuditAction.LOGIN, target_text="No organization")
        home = browser(owner.user).get(reverse("portal:home")).content.decode()
        assert reverse("portal:audit_log") in home
        page = browser(owner.user).get(reverse("portal:audit_log"))
        assert page.status_code == 200
        body = page.content.decode()
        assert "Own key" in body
        assert "Foreign key" not in body and "No organization" not in body

    @pytest.mark.parametrize("role", [MembershipRole.ADMIN, MembershipRole.MEMBER])
    def test_admins_and_members_are_refused(self, owner, role):
        services.audit_record(action=AuditAction.API_KEY_CREATED, organization=owner.organization,
                              target_text="Own key")
        member = MembershipFactory(organization=owner.organization, role=role)
        assert browser(member.user).get(reverse("portal:audit_log")).status_code == 403
        assert reverse("portal:audit_log") not in browser(member.user).get(reverse("portal:home")).content.decode()

    def test_visitors_must_log_in(self):
        response = browser().get(reverse("portal:audit_log"))
        assert response.status_code == 302 and reverse("account_login") in response["Location"]

    def test_a_bad_page_number_shows_the_last_page(self, owner):
        response = browser(owner.user).get(reverse("portal:audit_log"), {"page": "x\u00e9"})
        assert response.status_code == 200
