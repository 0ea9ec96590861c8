from decimal import Decimal

import pytest

from fablab.exceptions import Conflict, InvalidInput
from inventory import selectors, services
from inventory.choices import MovementKind, SourceType
from inventory.models import Filament, Location, Movement, Spool, StockAlert
from inventory.tests.factories import FilamentFactory, key, spool

pytestmark = pytest.mark.django_db


def assert_ledger(s: Spool) -> None:
    s.refresh_from_db()
    assert s.remaining_grams == selectors.spool_ledger_total(spool=s)
    assert s.remaining_grams == s.initial_grams + sum(
        m.delta_grams for m in s.movements.exclude(kind=MovementKind.RECEIVED))


class TestReceiving:
    def test_a_received_spool_has_a_label_code_and_one_movement(self):
        s = spool(grams="1000")
        assert s.code.startswith("S-") and len(s.code) == 7
        assert s.remaining_grams == Decimal("1000.00")
        assert list(s.movements.values_list("kind", "delta_grams")) == [("received", Decimal("1000.00"))]
        assert_ledger(s)

    def test_receiving_the_same_delivery_twice_makes_one_spool(self):
        filament = FilamentFactory()
        first = services.spool_receive(filament=filament, initial_grams=1000, idempotency_key="delivery-7/1")
        again = services.spool_receive(filament=filament, initial_grams=1000, idempotency_key="delivery-7/1")
        assert first == again and Spool.objects.count() == 1


class TestUsing:
    def test_use_deducts_once_per_event(self):
        s = spool(grams="1000")
        first = services.spool_use(spool=s, grams_used="12.345", idempotency_key="job-1",
                                   source_type=SourceType.PRINT_JOB, source_id="1")
        again = services.spool_use(spool=s, grams_used="12.345", idempotency_key="job-1")
        assert first == again
        s.refresh_from_db()
        assert s.remaining_grams == Decimal("987.655")  # booked to the milligram it was given
        assert s.opened_at is not None
        assert_ledger(s)

    def test_a_key_reused_for_another_change_is_refused(self):
        a, b = spool(), spool()
        services.spool_use(spool=a, grams_used=5, idempotency_key="same")
        with pytest.raises(Conflict, match="already used for a different"):
            services.spool_use(spool=b, grams_used=5, idempotency_key="same")
        with pytest.raises(Conflict):
            services.spool_weigh(spool=a, gross_grams=900, idempotency_key="same")
        assert_ledger(b)

    @pytest.mark.parametrize("amount,message", [
        (0, "more than 0"), (-5, "more than 0"), ("abc", "must be a number"), (None, "must be a number"),
        ("NaN", "finite"), ("Infinity", "finite"), (1e9, "more than any spool"), ("1e400", "more than any spool"),
    ])
    def test_bad_quantities_are_refused_and_change_nothing(self, amount, message):
        s = spool()
        with pytest.raises(InvalidInput, match=message):
            services.spool_use(spool=s, grams_used=amount, idempotency_key=key())
        assert s.movements.count() == 1
        assert_ledger(s)

    def test_cannot_take_more_than_is_left(self):
        s = spool(grams="50")
        with pytest.raises(InvalidInput, match="has 50.00 g left"):
            services.spool_use(spool=s, grams_used=60, idempotency_key=key())
        assert_ledger(s)

    def test_missing_key_and_wrong_kind(self):
        s = spool()
        with pytest.raises(InvalidInput, match="idempotency key"):
            services.spool_use(spool=s, grams_used=1, idempotency_key="  ")
        with pytest.raises(InvalidInput, match="does not take filament"):
            services.spool_use(spool=s, grams_used=1, idempotency_key=key(), kind=MovementKind.RECEIVED)

    def test_failed_print_and_waste(self):
        s = spool(grams="100")
        services.spool_use(spool=s, grams_used=7.5, idempotency_key=key(), kind=MovementKind.FAILED_PRINT)
        services.spool_use(spool=s, grams_used=2.5, idempotency_key=key(), kind=MovementKind.WASTE)
        s.refresh_from_db()
        assert s.remaining_grams == Decimal("90.00")
        assert_ledger(s)

    def test_archived_spools_take_no_more_changes(self):
        s = services.spool_archive(spool=spool())
        with pytest.raises(Conflict, match="archived"):
            services.spool_use(spool=s, grams_used=1, idempotency_key=key())


class TestWeighing:
    def test_weighing_books_the_difference(self):
        s = spool(FilamentFactory(spool_weight_g=Decimal("245")), grams="1000")
        services.spool_use(spool=s, grams_used=100, idempotency_key=key())
        movement = services.spool_weigh(spool=s, gross_grams="1120", idempotency_key=key())
        assert movement.delta_grams == Decimal("-25.00")  # 1120 - 245 = 875 on the spool, the ledger said 900
        s.refresh_from_db()
        assert s.remaining_grams == Decimal("875.00")
        assert_ledger(s)

    def test_weighing_more_than_the_ledger_books_a_gain(self):
        s = spool(FilamentFactory(spool_weight_g=Decimal("200")), grams="500")
        assert services.spool_weigh(spool=s, gross_grams=720, idempotency_key=key()).delta_grams == Decimal("20.00")

    def test_scale_below_the_empty_spool_is_refused(self):
        s = spool(FilamentFactory(spool_weight_g=Decimal("245")))
        with pytest.raises(InvalidInput, match="less than the empty spool"):
            services.spool_weigh(spool=s, gross_grams=150, idempotency_key=key())
        assert_ledger(s)


class TestMovingAndAdjusting:
    def test_move_changes_location_not_grams(self):
        shelf = services.location_create(name="Shelf A", kind="shelf")
        box = services.location_create(name="Dry box 1", kind="dry_box", parent=shelf)
        s = spool(location=shelf)
        movement = services.spool_move(spool=s, location=box, idempotency_key=key())
        s.refresh_from_db()
        assert s.location == box and str(box) == "Shelf A › Dry box 1"
        assert (movement.from_location, movement.to_location, movement.delta_grams) == (shelf, box, 0)
        assert_ledger(s)

    def test_adjust_needs_a_reason(self):
        s = spool(grams="1000")
        with pytest.raises(InvalidInput, match="Say why"):
            services.spool_adjust(spool=s, remaining_grams=900, idempotency_key=key(), reason=" ")
        services.spool_adjust(spool=s, remaining_grams=0, idempotency_key=key(), reason="Counted empty")
        s.refresh_from_db()
        assert s.remaining_grams == 0
        assert_ledger(s)


class TestFilaments:
    def test_colours_are_validated_and_upper_cased(self):
        filament = services.filament_create(brand="Bambu", material="PLA", name="Dawn Radiant",
                                            colour_hex="#ff0000", extra_colours=["#00ff00"])
        assert filament.colours == ["#FF0000", "#00FF00"]
        with pytest.raises(InvalidInput):
            services.filament_create(brand="X", material="PLA", name="Bad", colour_hex="red")
        with pytest.raises(InvalidInput, match="Further colour"):
            services.filament_create(brand="X", material="PLA", name="Bad", colour_hex="#000000",
                                     extra_colours=["blue"])

    def test_updates_keep_the_rules_and_raise_alerts(self):
        filament = FilamentFactory()
        spool(filament, grams="300")
        services.filament_update(filament=filament, reorder_threshold_g=Decimal("500"), colour_hex="#00ae42")
        assert filament.colour_hex == "#00AE42"
        assert StockAlert.objects.filter(filament=filament, cleared_at__isnull=True).exists()
        with pytest.raises(InvalidInput, match="Unknown fields: stock_g"):
            services.filament_update(filament=filament, stock_g=1)
        with pytest.raises(InvalidInput, match="Further colour"):
            services.filament_update(filament=filament, extra_colours=["#00FF00", 7])
        assert Filament.objects.get(pk=filament.pk).extra_colours == []

    def test_a_location_never_lies_inside_itself(self):
        shelf = services.location_create(name="Shelf", kind="shelf")
        box = services.location_create(name="Box", kind="dry_box", parent=shelf)
        for parent in (shelf, box):
            with pytest.raises(InvalidInput, match="inside itself"):
                services.location_update(location=shelf, name="Shelf", kind="shelf", parent=parent)
        assert Location.objects.get(pk=shelf.pk).parent is None

    def test_low_stock_and_kpis(self):
        low = FilamentFactory(reorder_threshold_g=Decimal("500"))
        ok = FilamentFactory(reorder_threshold_g=Decimal("500"))
        spool(low, grams="300")
        spool(ok, grams="900")
        assert list(selectors.filament_list_low()) == [low]
        kpis = {k["label"]: k["value"] for k in selectors.inventory_kpis()}
        assert kpis["Filaments below reorder level"] == 1
        assert kpis["Stock value"] == "30.00"  # 1.2 kg at 25.00/kg
        assert Movement.objects.count() == 2


class TestPrecision:
    """The ledger keeps micrograms: what a Klipper host reports a few milligrams at a time is never lost."""

    def test_amounts_are_kept_to_the_microgram(self):
        s = spool(grams="1000")
        movement = services.spool_use(spool=s, grams_used="0.004474", idempotency_key=key())
        assert movement.delta_grams == Decimal("-0.004474")
        # a seventh decimal is rounded half up to the microgram
        assert services.grams("0.0000015") == Decimal("0.000002")
        s.refresh_from_db()
        assert s.remaining_grams == Decimal("999.995526")
        assert_ledger(s)

    def test_a_thousand_milligram_bookings_add_up_exactly(self):
        s = spool(grams="1000")
        for n in range(1000):
            services.spool_use(spool=s, grams_used="0.001234", idempotency_key=f"tiny-{n}")
        s.refresh_from_db()
        assert s.remaining_grams == Decimal("1000") - Decimal("1.234")
        assert_ledger(s)

    @pytest.mark.parametrize("value,message", [
        ("0.0000004", "must be more than 0 g"),  # less than a microgram rounds to nothing
        ("50000.000001", "more than any spool holds"),
        ("NaN", "finite number"),
        ("-0.000001", "must be more than 0 g"),
    ])
    def test_the_bounds_still_hold(self, value, message):
        s = spool(grams="1000")
        with pytest.raises(InvalidInput, match=message):
            services.spool_use(spool=s, grams_used=value, idempotency_key=key())
        assert s.movements.count() == 1

    def test_a_spool_may_hold_exactly_the_most_any_spool_holds(self):
        s = spool(grams="50000")
        services.spool_adjust(spool=s, remaining_grams="49999.999999", idempotency_key=key(), reason="count")
        s.refresh_from_db()
        assert s.remaining_grams == Decimal("49999.999999")
        assert_ledger(s)

    def test_messages_show_grams_rounded_for_people(self):
        s = spool(grams="10")
        services.spool_use(spool=s, grams_used="0.004474", idempotency_key=key())
        with pytest.raises(InvalidInput, match=r"has 10\.00 g left; it cannot give 20\.00 g"):
            services.spool_use(spool=s, grams_used="20", idempotency_key=key())

    def test_the_reorder_alert_compares_exact_grams(self):
        filament = FilamentFactory(reorder_threshold_g=Decimal("100"))
        s = spool(filament, grams="100.004")
        assert not StockAlert.objects.filter(filament=filament).exists()
        services.spool_use(spool=s, grams_used="0.005", idempotency_key=key())  # 99.999 g: below 100
        alert = StockAlert.objects.get(filament=filament)
        assert alert.level == Decimal("100.00")  # recorded as people read it
