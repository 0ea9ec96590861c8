"""Brute-force protection of both log-in doors: per account and address together, with an unlock path."""

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from fablab.tests.factories import PASSWORD, UserFactory

ADMIN_LOGIN = "/admin/login/?next=/admin/"
OFFICE = "203.0.113.7"
ELSEWHERE = "198.51.100.20"


@pytest.fixture(autouse=True)
def _fresh_limits(settings):
    """allauth keeps its counters in the cache, which outlives a test; limits as in the README's example."""
    settings.LOGIN_FAILURE_LIMIT = settings.AXES_FAILURE_LIMIT = 5
    settings.ACCOUNT_RATE_LIMITS = {"login_failed": "5/900s/key"}
    cache.clear()
    yield
    cache.clear()


def staff(username: str):
    return UserFactory(username=username, is_staff=True, is_superuser=True)


def admin_login(username: str, password: str, *, address: str = OFFICE, client: Client | None = None):
    client = client or Client(REMOTE_ADDR=address)
    return client, client.post(ADMIN_LOGIN, {"username": username, "password": password})


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.django_db
class TestAdminLockout:
    def test_right_password_is_refused_after_thirty_wrong_ones(self):
        staff("owner")
        for _ in range(30):
            _client, response = admin_login("owner", "wrong-password")
            assert response.status_code in (200, 429)
        client, response = admin_login("owner", PASSWORD)
        assert response.status_code == 429
        assert not logged_in(client)
        assert "Too many failed log-in attempts" in response.content.decode()
        assert AccessAttempt.objects.get(username="owner", ip_address=OFFICE).failures_since_start >= 5

    def test_lockout_starts_at_the_limit(self):
        staff("owner")
        for attempt in range(4):
            _client, response = admin_login("owner", "wrong-password")
            assert response.status_code == 200, attempt  # the form again, with its error
        _client, response = admin_login("owner", "wrong-password")
        assert response.status_code == 429

    def test_other_account_and_other_address_still_log_in(self):
        staff("owner")
        staff("operator")
        for _ in range(30):
            admin_login("owner", "wrong-password")
        client, response = admin_login("operator", PASSWORD)
        assert response.status_code == 302 and logged_in(client)
        client, response = admin_login("owner", PASSWORD, address=ELSEWHERE)
        assert response.status_code == 302 and logged_in(client)

    def test_staff_unlock_in_the_admin(self, admin_client):
        staff("owner")
        for _ in range(6):
            admin_login("owner", "wrong-password")
        attempt = AccessAttempt.objects.get(username="owner")
        changelist = admin_client.get(reverse("admin:axes_accessattempt_changelist"))
        assert changelist.status_code == 200 and "owner" in changelist.content.decode()
        response = admin_client.post(reverse("admin:axes_accessattempt_delete", args=[attempt.pk]), {"post": "yes"})
        assert response.status_code == 302
        client, response = admin_login("owner", PASSWORD)
        assert response.status_code == 302 and logged_in(client)

    def test_manager_group_may_unlock(self):
        manager = UserFactory(is_staff=True)
        manager.groups.add(Group.objects.get(name="Manager"))
        assert manager.has_perm("axes.delete_accessattempt") and manager.has_perm("axes.view_accessattempt")
        operator = UserFactory(is_staff=True)
        operator.groups.add(Group.objects.get(name="Operator"))
        assert not operator.has_perm("axes.delete_accessattempt")

    def test_unlock_from_the_command_line(self):
        staff("owner")
        for _ in range(6):
            admin_login("owner", "wrong-password")
        call_command("axes_reset_username", "owner")
        client, response = admin_login("owner", PASSWORD)
        assert response.status_code == 302 and logged_in(client)

    def test_success_resets_the_count(self):
        staff("owner")
        for _ in range(4):
            admin_login("owner", "wrong-password")
        client, response = admin_login("owner", PASSWORD)
        assert response.status_code == 302
        for _ in range(4):
            _client, response = admin_login("owner", "wrong-password")
            assert response.status_code == 200

    def test_address_behind_a_trusted_proxy_is_the_clients(self, settings):
        settings.TRUSTED_PROXY_COUNT = settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
        staff("owner")
        proxy = Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=OFFICE)
        for _ in range(6):
            admin_login("owner", "wrong-password", client=proxy)
        assert AccessAttempt.objects.get(username="owner").ip_address == OFFICE
        colleague = Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=ELSEWHERE)
        _client, response = admin_login("owner", PASSWORD, client=colleague)
        assert response.status_code == 302

    def test_portal_logins_are_not_counted_by_axes(self):
        user = UserFactory()
        for _ in range(3):
            Client(REMOTE_ADDR=OFFICE).post(reverse("account_login"), {"login": user.email, "password": "nope"})
        assert not AccessAttempt.objects.exists()

    def test_login_without_a_request_is_not_blocked(self):
        from django.contrib.auth import authenticate

        user = staff("owner")
        assert authenticate(username="owner", password=PASSWORD) == user


def portal_login(email: str, password: str, *, address: str = OFFICE):
    client = Client(REMOTE_ADDR=address)
    return client, client.post(reverse("account_login"), {"login": email, "password": password})


@pytest.mark.django_db
class TestPortalLockout:
    def test_account_is_locked_at_one_address_with_a_clear_message(self):
        user = UserFactory()
        for _ in range(5):
            portal_login(user.email, "wrong-password")
        client, response = portal_login(user.email, PASSWORD)
        assert not logged_in(client)
        assert "Too many failed log-in attempts for this account from your address" in response.content.decode()

    def test_shared_address_does_not_lock_out_other_people(self):
        """Ten and more failures against unknown addresses from one proxy lock out nobody else."""
        partner = UserFactory()
        for n in range(15):
            portal_login(f"nobody{n}@example.com", "wrong-password")
        client, _response = portal_login(partner.email, PASSWORD)
        assert logged_in(client)

    def test_locked_account_still_logs_in_from_another_address(self):
        user = UserFactory()
        other = UserFactory()
        for _ in range(6):
            portal_login(user.email, "wrong-password")
        client, _response = portal_login(user.email, PASSWORD, address=ELSEWHERE)
        assert logged_in(client)
        client, _response = portal_login(other.email, PASSWORD)
        assert logged_in(client)
