import pytest
from django.urls import reverse

from fablab.tests.factories import UserFactory
from inventory import services
from inventory.tests.factories import FilamentFactory, key, spool

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_scanning_a_label_code_opens_that_spool(staff_client):
    wanted, _other = spool(), spool()
    response = staff_client.get(reverse("admin:inventory_spool_changelist"), {"q": wanted.code.lower()})
    assert list(response.context["cl"].result_list) == [wanted]


def test_spool_page_shows_its_history_and_the_ledger_is_read_only(staff_client):
    s = spool(grams="500")
    services.spool_use(spool=s, grams_used=42, idempotency_key=key())
    page = staff_client.get(reverse("admin:inventory_spool_change", args=[s.pk])).content.decode()
    assert "-42.00" in page and "Used by a print" in page
    movement = s.movements.first()
    assert staff_client.post(reverse("admin:inventory_movement_delete", args=[movement.pk]),
                             {"post": "yes"}).status_code == 403
    assert s.movements.count() == 2


def test_filament_list_shows_stock(staff_client):
    f = FilamentFactory(colour_hex="#00AE42")
    spool(f, grams="750")
    html = staff_client.get(reverse("admin:inventory_filament_changelist")).content.decode()
    assert "#00AE42" in html and "750 g" in html


def test_archive_action(staff_client):
    s = spool()
    staff_client.post(reverse("admin:inventory_spool_changelist"), {"action": "archive", "_selected_action": [s.pk]})
    s.refresh_from_db()
    assert s.archived_at is not None
