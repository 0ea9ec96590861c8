import re

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

from fablab import services
from fablab.choices import MembershipRole, OrganizationKind
from fablab.models import ApiKey, Invitation, Membership, Organization
from fablab.tests.factories import (
    PASSWORD,
    MembershipFactory,
    OrganizationFactory,
    UserFactory,
    make_api_key,
    make_invitation,
)

pytestmark = pytest.mark.django_db
User = get_user_model()
NEW_PASSWORD = "Printing-Farm-2026!"


def sign_up(client, email: str, organization_name: str = ""):
    return client.post(
        reverse("account_signup"),
        {"email": email, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "organization_name": organization_name},
    )


def link_in_last_mail(pattern: str) -> str:
    match = re.search(pattern, mail.outbox[-1].body)
    assert match, mail.outbox[-1].body
    return match.group(0)


class TestSignUp:
    def test_landing_for_visitors(self, client):
        response = client.get("/")
        assert response.status_code == 200
        assert reverse("account_signup") in response.content.decode()

    def test_sign_up_creates_organization_and_requires_verification(self, client):
        response = sign_up(client, "new@example.com", "Bench Prints")
        assert response.status_code == 302
        user = User.objects.get(email="new@example.com")
        membership = Membership.objects.get(user=user)
        assert membership.organization.name == "Bench Prints"
        assert membership.organization.kind == OrganizationKind.CUSTOMER
        assert membership.role == MembershipRole.OWNER
        assert not EmailAddress.objects.get(user=user).verified

        # Not verified yet: logging in only re-sends the verification e-mail.
        client.logout()
        client.post(reverse("account_login"), {"login": "new@example.com", "password": NEW_PASSWORD})
        assert "Bench Prints" not in client.get("/").content.decode()

        confirm_url = link_in_last_mail(r"http://testserver/accounts/confirm-email/[^/\s]+/")
        client.post(confirm_url)
        assert EmailAddress.objects.get(user=user).verified
        client.post(reverse("account_login"), {"login": "new@example.com", "password": NEW_PASSWORD})
        home = client.get("/")
        assert "Bench Prints" in home.content.decode()
        assert "new@example.com" in home.content.decode()

    def test_duplicate_email_creates_nothing_and_reveals_nothing(self, client):
        UserFactory(email="taken@example.com")
        response = sign_up(client, "taken@example.com", "Dup")
        # allauth prevents account enumeration: the page looks like a normal sign-up,
        # and the owner of the address is told by e-mail instead.
        assert response.status_code == 302
        assert User.objects.filter(email__iexact="taken@example.com").count() == 1
        assert not Organization.objects.filter(name="Dup").exists()
        assert mail.outbox[-1].to == ["taken@example.com"]

    def test_weak_password_is_refused_and_nothing_is_created(self, client):
        response = client.post(
            reverse("account_signup"),
            {"email": "weak@example.com", "password1": "123", "password2": "123", "organization_name": "Weak"},
        )
        assert response.status_code == 200
        assert not User.objects.filter(email="weak@example.com").exists()
        assert not Organization.objects.filter(name="Weak").exists()

    def test_password_reset_sends_a_working_link(self, client):
        user = UserFactory(email="forgot@example.com")
        client.post(reverse("account_reset_password"), {"email": "forgot@example.com"})
        reset_url = link_in_last_mail(r"http://testserver/accounts/password/reset/key/[^\s]+/")
        response = client.get(reset_url, follow=True)
        form_url = response.redirect_chain[-1][0] if response.redirect_chain else reset_url
        client.post(form_url, {"password1": "Another-Long-Pass-9", "password2": "Another-Long-Pass-9"})
        user.refresh_from_db()
        assert user.check_password("Another-Long-Pass-9")

    def test_logout(self, owner_client):
        assert owner_client.post(reverse("account_logout")).status_code == 302
        assert reverse("account_signup") in owner_client.get("/").content.decode()


class TestInvitations:
    @pytest.fixture(autouse=True)
    def _on_commit(self, django_capture_on_commit_callbacks):
        self.capture = django_capture_on_commit_callbacks

    def invite(self, client, email: str, role: str = "member"):
        with self.capture(execute=True):
            return client.post(reverse("portal:invitation_create"), {"email": email, "role": role})

    def test_invited_person_signs_up_into_the_organization(self, owner_client, customer_owner, client):
        self.invite(owner_client, "colleague@example.com")
        accept_url = link_in_last_mail(r"http://testserver/invitations/accept/[^/\s]+/")

        visitor = type(client)()
        page = visitor.get(accept_url)
        assert customer_owner.organization.name in page.content.decode()
        sign_up(visitor, "colleague@example.com")
        user = User.objects.get(email="colleague@example.com")
        assert list(Membership.objects.filter(user=user).values_list("organization", "role")) == [
            (customer_owner.organization.pk, "member")
        ]
        assert Organization.objects.count() == 1
        assert Invitation.objects.get().accepted_by == user

    def test_existing_user_accepts_after_login(self, owner_client, customer_owner):
        existing = UserFactory(email="existing@example.com")
        self.invite(owner_client, "existing@example.com", role="admin")
        accept_url = link_in_last_mail(r"http://testserver/invitations/accept/[^/\s]+/")
        owner_client.logout()
        owner_client.force_login(existing)
        assert owner_client.get(accept_url).status_code == 200
        owner_client.post(accept_url)
        assert Membership.objects.get(user=existing, organization=customer_owner.organization).role == "admin"

    def test_wrong_account_cannot_accept(self, owner_client, customer_owner):
        self.invite(owner_client, "intended@example.com")
        accept_url = link_in_last_mail(r"http://testserver/invitations/accept/[^/\s]+/")
        owner_client.force_login(UserFactory(email="intruder@example.com"))
        response = owner_client.post(accept_url)
        assert response.status_code == 403
        assert not Membership.objects.filter(user__email="intruder@example.com",
                                             organization=customer_owner.organization).exists()

    def test_bad_token(self, client):
        assert client.get(reverse("portal:invitation_accept", args=["forged-token"])).status_code == 404

    def test_members_cannot_invite(self, client, customer_owner):
        member = MembershipFactory(organization=customer_owner.organization)
        client.force_login(member.user)
        response = self.invite(client, "x@example.com")
        assert response.status_code == 302
        assert not Invitation.objects.exists()
        assert len(mail.outbox) == 0

    def test_invalid_email_is_reported(self, owner_client):
        response = self.invite(owner_client, "not-an-email")
        assert response.status_code == 302
        assert not Invitation.objects.exists()
        assert "valid" in owner_client.get("/").content.decode()
        response = self.invite(owner_client, "not-an-email", role="owner")
        shown = [str(message) for message in owner_client.get("/").context["messages"]]
        assert shown == ["Enter a valid email address.", "Select a valid choice. owner is not one of the available "
                                                          "choices."]  # no field label in front


class TestPortalIsolation:
    """A customer's session never reads or changes another organization's rows: 404."""

    @pytest.fixture
    def foreign(self, db):
        owner = MembershipFactory(role=MembershipRole.OWNER, organization=OrganizationFactory(name="Foreign Co"))
        member = MembershipFactory(organization=owner.organization)
        invitation, _ = make_invitation(owner, "f@example.com")
        api_key, _ = make_api_key(owner.organization)
        return {"owner": owner, "member": member, "invitation": invitation, "api_key": api_key}

    def test_home_shows_only_own_organization(self, owner_client, foreign):
        html = owner_client.get("/").content.decode()
        assert "Foreign Co" not in html
        assert foreign["member"].user.email not in html

    def test_cannot_remove_foreign_member(self, owner_client, foreign):
        url = reverse("portal:member_remove", args=[foreign["member"].pk])
        assert owner_client.post(url).status_code == 404
        assert Membership.objects.filter(pk=foreign["member"].pk).exists()

    def test_cannot_revoke_foreign_invitation(self, owner_client, foreign):
        url = reverse("portal:invitation_revoke", args=[foreign["invitation"].pk])
        assert owner_client.post(url).status_code == 404
        assert Invitation.objects.filter(pk=foreign["invitation"].pk).exists()

    def test_cannot_revoke_foreign_api_key(self, owner_client, foreign):
        url = reverse("portal:api_key_revoke", args=[foreign["api_key"].pk])
        assert owner_client.post(url).status_code == 404
        assert ApiKey.objects.get(pk=foreign["api_key"].pk).revoked_at is None

    def test_cannot_switch_into_foreign_organization(self, owner_client, foreign):
        url = reverse("portal:organization_switch")
        assert owner_client.post(url, {"organization": foreign["owner"].organization.pk}).status_code == 404
        assert owner_client.post(url, {"organization": "abc"}).status_code == 404
        assert "Foreign Co" not in owner_client.get("/").content.decode()

    def test_anonymous_is_sent_to_login(self, client, foreign):
        response = client.post(reverse("portal:member_remove", args=[foreign["member"].pk]))
        assert response.status_code == 302
        assert reverse("account_login") in response["Location"]


class TestOrganizationPage:
    def test_switch_between_own_organizations(self, owner_client, customer_owner):
        second = MembershipFactory(user=customer_owner.user, organization=OrganizationFactory(name="Second Shop"))
        owner_client.post(reverse("portal:organization_switch"), {"organization": second.organization.pk})
        assert "Second Shop" in owner_client.get("/").content.decode()

    def test_api_key_is_shown_once(self, owner_client, customer_owner):
        owner_client.post(reverse("portal:api_key_create"), {"name": "Shop sync", "scope": "write"})
        api_key = ApiKey.objects.get(organization=customer_owner.organization)
        first = owner_client.get("/").content.decode()
        match = re.search(r"fl_[A-Za-z0-9]{8}_[A-Za-z0-9]{40}", first)
        assert match and match.group(0).startswith(f"fl_{api_key.prefix}_")
        assert services.api_key_authenticate(raw_key=match.group(0)) == api_key
        assert match.group(0) not in owner_client.get("/").content.decode()

    def test_refused_api_key_form_names_the_field(self, owner_client):
        response = owner_client.post(reverse("portal:api_key_create"), {"name": "", "scope": "everything"},
                                     follow=True)
        shown = [str(message) for message in response.context["messages"]]
        assert len(shown) == 2
        assert shown[0] == "Name: This field is required."
        assert shown[1].startswith("Scope: Select a valid choice.")
        assert not ApiKey.objects.exists()

    def test_member_cannot_manage_keys(self, client, customer_owner):
        member = MembershipFactory(organization=customer_owner.organization)
        client.force_login(member.user)
        assert client.post(reverse("portal:api_key_create"), {"name": "x", "scope": "read"}).status_code == 404
        assert not ApiKey.objects.exists()
        assert "API keys" not in client.get("/").content.decode()

    def test_user_without_organization(self, client):
        client.force_login(UserFactory())
        response = client.get("/")
        assert response.status_code == 200
        assert "invite" in response.content.decode().lower()

    def test_login_with_factory_password(self, client, customer_owner):
        client.post(reverse("account_login"), {"login": customer_owner.user.email, "password": PASSWORD})
        assert customer_owner.organization.name in client.get("/").content.decode()


class TestClosedSignUp:
    def test_closed_to_the_public_but_open_to_invited_people(self, client, settings, customer_owner,
                                                               django_capture_on_commit_callbacks):
        settings.SIGNUP_OPEN = False
        sign_up(client, "stranger@example.com", "Stranger Co")
        assert not User.objects.filter(email="stranger@example.com").exists()

        with django_capture_on_commit_callbacks(execute=True):
            make_invitation(customer_owner, "invited@example.com")
        accept_url = link_in_last_mail(r"http://testserver/invitations/accept/[^/\s]+/")
        client.get(accept_url)
        sign_up(client, "invited@example.com")
        user = User.objects.get(email="invited@example.com")
        assert Membership.objects.get(user=user).organization == customer_owner.organization
