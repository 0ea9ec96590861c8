from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from fablab import services
from fablab.choices import ApiKeyScope, MembershipRole, OrganizationKind
from fablab.exceptions import Conflict, InvalidInput, NotFound, PermissionDenied
from fablab.models import ApiKey, Invitation, Membership, Organization
from fablab.tests.factories import (
    MembershipFactory,
    OrganizationFactory,
    UserFactory,
    accept_url,
    make_api_key,
    make_invitation,
)

pytestmark = pytest.mark.django_db


class TestOrganizations:
    def test_create_with_owner(self):
        user = UserFactory()
        org = services.organization_create(name="  Print Shop  ", kind=OrganizationKind.CUSTOMER, owner=user)
        assert org.name == "Print Shop"
        assert org.slug == "print-shop"
        assert Membership.objects.get(organization=org, user=user).role == MembershipRole.OWNER

    def test_slugs_stay_unique(self):
        first = services.organization_create(name="Same Name", kind=OrganizationKind.PARTNER)
        second = services.organization_create(name="Same Name", kind=OrganizationKind.PARTNER)
        assert first.slug == "same-name"
        assert second.slug.startswith("same-name-") and second.slug != first.slug

    @pytest.mark.parametrize("name,kind", [("", OrganizationKind.CUSTOMER), ("Shop", "supplier")])
    def test_refuses_bad_input_and_writes_nothing(self, name, kind):
        with pytest.raises(InvalidInput):
            services.organization_create(name=name, kind=kind, owner=UserFactory())
        assert not Organization.objects.exists()
        assert not Membership.objects.exists()

    def test_member_twice_is_a_conflict(self):
        membership = MembershipFactory()
        with pytest.raises(Conflict):
            services.membership_add(organization=membership.organization, user=membership.user)

    def test_last_owner_cannot_be_removed(self):
        owner = MembershipFactory(role=MembershipRole.OWNER)
        with pytest.raises(Conflict, match="last owner"):
            services.membership_remove(membership=owner, by=owner.user)
        assert Membership.objects.filter(pk=owner.pk).exists()

    def test_admin_removes_member_but_member_cannot_remove(self):
        admin = MembershipFactory(role=MembershipRole.ADMIN)
        member = MembershipFactory(organization=admin.organization)
        other = MembershipFactory(organization=admin.organization)
        with pytest.raises(PermissionDenied):
            services.membership_remove(membership=other, by=member.user)
        services.membership_remove(membership=member, by=admin.user)
        assert not Membership.objects.filter(pk=member.pk).exists()

    def test_outsider_gets_not_found(self):
        membership = MembershipFactory()
        with pytest.raises(NotFound):
            services.membership_remove(membership=membership, by=UserFactory())


class TestInvitations:
    def test_create_sends_email_with_link_after_commit(self, django_capture_on_commit_callbacks):
        owner = MembershipFactory(role=MembershipRole.OWNER)
        with django_capture_on_commit_callbacks(execute=True):
            invitation, token = make_invitation(owner, "New@Example.com")
        assert invitation.email == "New@example.com"
        assert invitation.token_hash != token and len(invitation.token_hash) == 64
        assert len(mail.outbox) == 1
        assert mail.outbox[0].to == ["New@example.com"]
        assert accept_url(token) in mail.outbox[0].body
        assert owner.organization.name in mail.outbox[0].subject

    def test_only_managers_invite(self):
        member = MembershipFactory(role=MembershipRole.MEMBER)
        with pytest.raises(PermissionDenied):
            make_invitation(member, "x@example.com")
        assert not Invitation.objects.exists()

    def test_cannot_invite_owner_role_or_existing_member_or_twice(self):
        owner = MembershipFactory(role=MembershipRole.OWNER)
        with pytest.raises(InvalidInput):
            make_invitation(owner, "a@example.com", MembershipRole.OWNER)
        with pytest.raises(Conflict):
            make_invitation(owner, owner.user.email.upper())
        make_invitation(owner, "b@example.com")
        with pytest.raises(Conflict, match="already been invited"):
            make_invitation(owner, "B@example.com")
        assert Invitation.objects.count() == 1

    def test_accept_joins_with_the_invited_role_once(self):
        owner = MembershipFactory(role=MembershipRole.OWNER)
        _inv, token = make_invitation(owner, "joiner@example.com", MembershipRole.ADMIN)
        joiner = UserFactory(email="joiner@example.com")
        membership = services.invitation_accept(token=token, user=joiner)
        assert membership.organization == owner.organization
        assert membership.role == MembershipRole.ADMIN
        with pytest.raises(NotFound):
            services.invitation_accept(token=token, user=joiner)

    def test_accept_refuses_other_address_and_expired(self):
        owner = MembershipFactory(role=MembershipRole.OWNER)
        invitation, token = make_invitation(owner, "right@example.com")
        with pytest.raises(PermissionDenied, match="right@example.com"):
            services.invitation_accept(token=token, user=UserFactory(email="wrong@example.com"))
        Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        with pytest.raises(Conflict, match="expired"):
            services.invitation_accept(token=token, user=UserFactory(email="right@example.com"))
        assert Membership.objects.filter(organization=owner.organization).count() == 1

    def test_unknown_token(self):
        with pytest.raises(NotFound):
            services.invitation_get_open(token="nope")

    def test_purge_removes_only_long_expired(self):
        owner = MembershipFactory(role=MembershipRole.OWNER)
        old, _ = make_invitation(owner, "old@example.com")
        fresh, _ = make_invitation(owner, "fresh@example.com")
        Invitation.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(days=31))
        assert services.invitations_purge_expired() == 1
        assert list(Invitation.objects.values_list("pk", flat=True)) == [fresh.pk]


class TestOnboarding:
    def test_sign_up_without_invitation_creates_customer_org(self):
        user = UserFactory(email="maker@example.com")
        membership = services.user_onboard(user=user, organization_name="")
        assert membership.role == MembershipRole.OWNER
        assert membership.organization.kind == OrganizationKind.CUSTOMER
        assert "maker" in membership.organization.name

    def test_sign_up_with_invitation_joins_instead(self):
        owner = MembershipFactory(role=MembershipRole.OWNER)
        _inv, token = make_invitation(owner, "invited@example.com")
        user = UserFactory(email="invited@example.com")
        membership = services.user_onboard(user=user, organization_name="Ignored", invitation_token=token)
        assert membership.organization == owner.organization
        assert Organization.objects.count() == 1

    def test_foreign_invitation_falls_back_to_own_org(self):
        owner = MembershipFactory(role=MembershipRole.OWNER)
        _inv, token = make_invitation(owner, "someone@example.com")
        user = UserFactory(email="other@example.com")
        membership = services.user_onboard(user=user, organization_name="Mine", invitation_token=token)
        assert membership.organization.name == "Mine"
        assert not Membership.objects.filter(organization=owner.organization, user=user).exists()


class TestApiKeys:
    def test_secret_is_shown_once_and_stored_hashed(self):
        org = OrganizationFactory()
        api_key, raw = make_api_key(org)
        assert raw.startswith(f"fl_{api_key.prefix}_")
        stored = ApiKey.objects.get(pk=api_key.pk)
        assert raw not in (stored.hashed_key, stored.prefix)
        assert raw.split("_")[2] not in str(stored.__dict__)
        assert services.api_key_authenticate(raw_key=raw) == api_key

    @pytest.mark.parametrize("raw", [
        "", "   ", "Bearer abc", "fl_short_secret", "fl_ABCDEFGH_" + "x" * 39, "xx_ABCDEFGH_" + "x" * 40,
        "fl_ABCDEFGH_" + "x" * 39 + "!", "fl_ABCDEFGH_" + "é" * 40,
    ])
    def test_malformed(self, raw):
        with pytest.raises(services.AuthenticationFailed, match="Malformed"):
            services.api_key_authenticate(raw_key=raw)

    def test_unknown_and_wrong_secret(self):
        api_key, raw = make_api_key(OrganizationFactory())
        with pytest.raises(services.AuthenticationFailed, match="Unknown"):
            services.api_key_authenticate(raw_key="fl_ABCDEFGH_" + "a" * 40)
        tampered = raw[:-1] + ("a" if raw[-1] != "a" else "b")
        with pytest.raises(services.AuthenticationFailed, match="Unknown"):
            services.api_key_authenticate(raw_key=tampered)

    def test_revoked_expired_and_inactive_org(self):
        org = OrganizationFactory()
        revoked, raw_revoked = make_api_key(org)
        services.api_key_revoke(api_key=revoked)
        with pytest.raises(services.AuthenticationFailed, match="revoked"):
            services.api_key_authenticate(raw_key=raw_revoked)

        expiring, raw_expiring = make_api_key(org, expires_at=timezone.now() + timedelta(hours=1))
        ApiKey.objects.filter(pk=expiring.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
        with pytest.raises(services.AuthenticationFailed, match="expired"):
            services.api_key_authenticate(raw_key=raw_expiring)

        _key, raw = make_api_key(org)
        Organization.objects.filter(pk=org.pk).update(is_active=False)
        with pytest.raises(services.AuthenticationFailed, match="deactivated"):
            services.api_key_authenticate(raw_key=raw)

    def test_refuses_past_expiry_and_unknown_scope(self):
        org = OrganizationFactory()
        with pytest.raises(InvalidInput):
            make_api_key(org, expires_at=timezone.now() - timedelta(days=1))
        with pytest.raises(InvalidInput):
            make_api_key(org, scope="admin")
        assert not ApiKey.objects.exists()

    def test_last_used_is_recorded_at_most_once_a_minute(self):
        api_key, raw = make_api_key(OrganizationFactory())
        services.api_key_authenticate(raw_key=raw)
        first = ApiKey.objects.get(pk=api_key.pk).last_used_at
        assert first is not None
        services.api_key_authenticate(raw_key=raw)
        assert ApiKey.objects.get(pk=api_key.pk).last_used_at == first
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=first - timedelta(minutes=5))
        services.api_key_authenticate(raw_key=raw)
        assert ApiKey.objects.get(pk=api_key.pk).last_used_at > first - timedelta(minutes=5)

    def test_scopes(self):
        org = OrganizationFactory()
        read, _ = make_api_key(org, scope=ApiKeyScope.READ)
        write, _ = make_api_key(org, scope=ApiKeyScope.WRITE)
        assert read.allows("read") and not read.allows("write")
        assert write.allows("read") and write.allows("write")


class TestMemberApiKeys:
    def test_only_owners_and_admins_make_and_revoke_keys(self):
        admin = MembershipFactory(role=MembershipRole.ADMIN)
        member = MembershipFactory(organization=admin.organization)
        api_key, raw = services.member_api_key_create(organization=admin.organization, by=admin.user, name="Shop")
        assert api_key.created_by == admin.user and raw.startswith("fl_")
        with pytest.raises(PermissionDenied):
            services.member_api_key_create(organization=admin.organization, by=member.user, name="Mine")
        with pytest.raises(PermissionDenied):
            services.member_api_key_revoke(api_key=api_key, by=member.user)
        with pytest.raises(NotFound):
            services.member_api_key_revoke(api_key=api_key, by=UserFactory())
        assert services.member_api_key_revoke(api_key=api_key, by=admin.user).status == "revoked"
        assert ApiKey.objects.count() == 1
