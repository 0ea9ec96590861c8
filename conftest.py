import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.utils import translation

from fablab.choices import ApiKeyScope, MembershipRole, OrganizationKind
from fablab.tests.factories import MembershipFactory, OrganizationFactory, PartnerFactory, UserFactory, make_api_key
from fablab.tests.helpers import ApiClient

# On SQLite, dj-stripe's own migrations rebuild its many tables again and again (minutes); the test
# database gets them straight from its models instead (SQLite checks foreign keys only at commit, so they
# may point at tables created later). PostgreSQL runs them as `manage.py migrate` does.
if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    settings.MIGRATION_MODULES = {**getattr(settings, "MIGRATION_MODULES", {}), "djstripe": None}

# Fixtures other apps' tests use too (e.g. catalog's substitute slicer reader).
pytest_plugins = ["catalog.tests.fixtures"]


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path):
    """Fast password hashing, files written by a test land in its own folder, the cache starts empty
    (rate limits count per organization and per address, whose ids and 127.0.0.1 recur across tests), and
    the farm plan that a queue change has run in the background (run_tasks) takes 1 s, not 10."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.PRODUCTION_PLAN_SECONDS = 1
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media"), "base_url": "/media/"},
        },
    }
    cache.clear()
    yield
    # A request through the test client leaves its language active in this thread (LocaleMiddleware
    # activates it and nothing deactivates it); the next test starts in the default language again.
    translation.deactivate()


@pytest.fixture
def run_tasks(monkeypatch, django_capture_on_commit_callbacks):
    """Queued django-q2 tasks run at once, in this process, when the transaction commits.

    Use as `with run_tasks(): <request or service call>`; the tasks run when the block ends.
    """
    monkeypatch.setattr("django_q.conf.Conf.SYNC", True)
    return lambda: django_capture_on_commit_callbacks(execute=True)


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
def lab(db):
    """The lab's own organization: its keys may change stock and move printer files into the catalog."""
    return OrganizationFactory(kind=OrganizationKind.LAB)


@pytest.fixture
def lab_key(lab):
    """The secret of a read+write API key of the lab."""
    return make_api_key(lab, scope=ApiKeyScope.WRITE)[1]


@pytest.fixture
def lab_read_key(lab):
    """The secret of a read-only API key of the lab."""
    return make_api_key(lab, scope=ApiKeyScope.READ)[1]


@pytest.fixture
def lab_api(lab_key):
    """An API client holding a read+write key of the lab."""
    return ApiClient(lab_key)


@pytest.fixture
def customer_owner(db):
    """A customer organization's owner (a Membership)."""
    return MembershipFactory(organization=OrganizationFactory(), role=MembershipRole.OWNER)


@pytest.fixture
def owner_client(client, customer_owner):
    client.force_login(customer_owner.user)
    return client


# Staff: pytest-django's `admin_user` is a superuser and `admin_client` a client logged in as it;
# the two fixtures below give staff of one role instead.


@pytest.fixture
def staff_member(db):
    """Make a staff user (not a superuser) of one of the staff groups in fablab.roles.

    `staff_member("Operator")`, `staff_member("Manager", email="boss@fablab.example")`.
    """

    def make(group: str, **fields):
        user = UserFactory(is_staff=True, **fields)
        user.groups.add(Group.objects.get(name=group))
        return user

    return make


@pytest.fixture
def operator_client(client, staff_member):
    """A test client logged in as an Operator (a staff member who runs the printers and the stock)."""
    client.force_login(staff_member("Operator"))
    return client
