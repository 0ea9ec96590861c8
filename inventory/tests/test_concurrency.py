"""Concurrent deductions on one spool never lose an update (row locks, PostgreSQL)."""

from decimal import Decimal

import pytest
from django.db import connection

from fablab.tests.helpers import run_in_threads
from inventory import selectors, services
from inventory.models import Spool
from inventory.tests.factories import FilamentFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks are tested on PostgreSQL"),
]


def test_twenty_concurrent_deductions_all_count():
    spool = services.spool_receive(filament=FilamentFactory(), initial_grams=1000, idempotency_key="conc-r")
    _results, errors = run_in_threads(20, lambda n: services.spool_use(spool=spool, grams_used="12.5",
                                                             idempotency_key=f"conc-{n}"))
    assert errors == []
    spool.refresh_from_db()
    assert spool.remaining_grams == Decimal("750.00")
    assert spool.remaining_grams == selectors.spool_ledger_total(spool=spool)
    assert spool.movements.count() == 21


def test_the_same_event_sent_twenty_times_at_once_counts_once():
    spool = services.spool_receive(filament=FilamentFactory(), initial_grams=1000, idempotency_key="dup-r")
    _results, errors = run_in_threads(20, lambda n: services.spool_use(spool=spool, grams_used="40",
                                                                       idempotency_key="dup-1"))
    assert errors == []
    spool = Spool.objects.get(pk=spool.pk)
    assert spool.remaining_grams == Decimal("960.00")
    assert spool.movements.count() == 2
