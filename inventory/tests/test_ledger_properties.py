"""Whatever sequence of operations happens, and however often events are replayed,
a spool's remaining grams equal its ledger, and no event counts twice."""

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fablab.exceptions import ApplicationError
from inventory import selectors, services
from inventory.models import Spool
from inventory.tests.factories import FilamentFactory

operations = st.lists(
    st.tuples(
        st.sampled_from(["use", "failed", "waste", "weigh", "adjust", "move", "replay"]),
        st.decimals(min_value=Decimal("-50"), max_value=Decimal("1500"), places=2, allow_nan=False),
    ),
    min_size=1, max_size=25,
)


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_ledger_invariant_under_random_operations(ops):
    filament = FilamentFactory(spool_weight_g=Decimal("200"))
    spool = services.spool_receive(filament=filament, initial_grams=1000, idempotency_key=f"r-{filament.pk}")
    shelf = services.location_create(name=f"Shelf {filament.pk}", kind="shelf")
    applied = {}
    for step, (operation, amount) in enumerate(ops):
        key = f"{filament.pk}-{step}"
        try:
            if operation == "use":
                services.spool_use(spool=spool, grams_used=amount, idempotency_key=key)
            elif operation == "failed":
                services.spool_use(spool=spool, grams_used=amount, idempotency_key=key, kind="failed_print")
            elif operation == "waste":
                services.spool_use(spool=spool, grams_used=amount, idempotency_key=key, kind="waste")
            elif operation == "weigh":
                services.spool_weigh(spool=spool, gross_grams=amount, idempotency_key=key)
            elif operation == "adjust":
                services.spool_adjust(spool=spool, remaining_grams=amount, idempotency_key=key, reason="count")
            elif operation == "move":
                services.spool_move(spool=spool, location=shelf, idempotency_key=key)
            elif operation == "replay" and applied:
                # The same event again changes nothing.
                old_key, old_args = next(iter(applied.items()))
                before = Spool.objects.get(pk=spool.pk).remaining_grams
                services.spool_use(spool=spool, grams_used=old_args, idempotency_key=old_key)
                assert Spool.objects.get(pk=spool.pk).remaining_grams == before
                continue
        except ApplicationError:
            continue
        if operation == "use":
            applied[key] = amount
    spool.refresh_from_db()
    assert spool.remaining_grams == selectors.spool_ledger_total(spool=spool)
    assert spool.remaining_grams >= 0
    assert spool.movements.values("idempotency_key").distinct().count() == spool.movements.count()
