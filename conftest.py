import pytest
from django.test import Client
from django.utils import translation

from fablab.choices import ApiKeyScope, MembershipRole
from fablab.tests.factories import MembershipFactory, OrganizationFactory, PartnerFactory, make_api_key

# Fixtures other apps' tests use too (e.g. catalog's substitute slicer reader).
pytest_plugins = ["catalog.tests.fixtures"]


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path):
    """Fast password hashing, and files written by a test land in its own folder."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media"), "base_url": "/media/"},
        },
    }
    yield
    # A request through the test client leaves its language active in this thread (LocaleMiddleware
    # activates it and nothing deactivates it); the next test starts in the default language again.
    translation.deactivate()


class ApiClient(Client):
    """A test client that sends an API key with every request."""

    def __init__(self, key: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.key = key

    def generic(self, method, path, *args, headers=None, **kwargs):
        headers = dict(headers or {})
        if self.key is not None:
            headers.setdefault("X-API-Key", self.key)
        return super().generic(method, path, *args, headers=headers, **kwargs)


@pytest.fixture
def partner(db):
    return PartnerFactory()


@pytest.fixture
def other_partner(db):
    return PartnerFactory()


@pytest.fixture
def api(partner):
    """An API client holding a read+write key of `partner`."""
    _key, raw = make_api_key(partner, scope=ApiKeyScope.WRITE)
    return ApiClient(raw)


@pytest.fixture
def customer_owner(db):
    """A customer organization's owner (a Membership)."""
    return MembershipFactory(organization=OrganizationFactory(), role=MembershipRole.OWNER)


@pytest.fixture
def owner_client(client, customer_owner):
    client.force_login(customer_owner.user)
    return client
