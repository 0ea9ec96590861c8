"""The cost of a print: the arithmetic on known figures, where the rates come from, a failed attempt carried
into the good units, a variant's unit cost over its recent prints, its margin, and bad inputs."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from catalog.tests.factories import VariantFactory, metadata
from fablab.exceptions import Conflict, InvalidInput
from inventory import services as inventory_services
from inventory.choices import MovementKind, ProductKind
from inventory.models import Movement, Product
from inventory.selectors import product_units, spool_ledger_total
from printers.choices import JobOutcome, PrinterState
from printers.models import PrinterJob
from production import costs, selectors, services
from production.choices import AttemptOutcome, PrintJobStatus
from production.models import PrintAttempt, PrinterStation, PrintJob, SlotAllocation
from production.tests.factories import FilamentFactory, PrinterFactory, SlicedFileFactory, VersionFactory, spool
from production.tests.test_printer_loop import signals  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db

D = Decimal
START = datetime(2030, 5, 4, 8, 0, tzinfo=UTC)

# The hand-computed case: 8.75 g at 25.00/kg, 2.5 h at 150 W and 0.30/kWh, a 1000 printer written off over
# 5000 h plus 0.05/h maintenance, 5 minutes of handling at 25/h.
#   material 8.75 × 25 / 1000        = 0.21875 → 0.22
#   energy   150 / 1000 × 2.5 × 0.30 = 0.1125  → 0.11
#   machine  (1000 / 5000 + 0.05) × 2.5 = 0.625 → 0.63 (half-up; half-even would give 0.62)
#   labour   5 / 60 × 25             = 2.0833… → 2.08
#   total                                         3.04
RATES = costs.Rates(power_w=D("150"), energy_price_per_kwh=D("0.30"), purchase_price=D("1000"),
                    lifetime_hours=D("5000"), maintenance_per_hour=D("0.05"), handling_minutes=D("5"),
                    labour_per_hour=D("25"))
HAND = {"material": D("0.22"), "energy": D("0.11"), "machine": D("0.63"), "labour": D("2.08"), "total": D("3.04")}


def _inputs(grams="8.75", price="25.00", seconds=9000, rates=RATES, **kwargs) -> costs.AttemptInputs:
    line = costs.MaterialLine(slot=1, grams=D(grams), price_per_kg=D(price) if price is not None else None)
    return costs.AttemptInputs(currency="EUR", seconds=D(seconds), seconds_from="printer", materials=(line,),
                               rates=rates, **kwargs)


def _parts(cost) -> dict:
    return {"material": cost.cost_material if hasattr(cost, "cost_material") else cost.material,
            "energy": cost.cost_energy if hasattr(cost, "cost_energy") else cost.energy,
            "machine": cost.cost_machine if hasattr(cost, "cost_machine") else cost.machine,
            "labour": cost.cost_labour if hasattr(cost, "cost_labour") else cost.labour,
            "total": cost.cost_total if hasattr(cost, "cost_total") else cost.total}


# --- the arithmetic --------------------------------------------------------------------------------------


def test_the_hand_computed_case_comes_out_to_the_cent():
    cost = costs.attempt_cost(_inputs())
    assert _parts(cost) == HAND
    assert cost.inputs["time"] == {"seconds": "9000", "hours": "2.5000", "from": "printer"}
    assert cost.inputs["material"][0]["amount"] == "0.21875"
    assert cost.inputs["machine"] == {"purchase_price": "1000", "lifetime_hours": "5000",
                                      "maintenance_per_hour": "0.05"}


def test_each_part_is_rounded_half_up_once_at_the_end():
    assert costs.cents(D("0.005")) == D("0.01") and costs.cents(D("0.0049999")) == D("0.00")
    assert costs.cents(D("2.675")) == D("2.68")
    # 0.2 g at 25.00/kg is exactly half a cent: up, not to the even 0.00.
    cheap = costs.attempt_cost(_inputs(grams="0.2", seconds=0, rates=costs.Rates(**{
        **RATES.__dict__, "handling_minutes": D("0")})))
    assert (cheap.material, cheap.energy, cheap.machine, cheap.labour, cheap.total) == (
        D("0.01"), D("0.00"), D("0.00"), D("0.00"), D("0.01"))
    # Two slots of 0.004 each: 0.008 together rounds to 0.01, each alone would have been 0.00.
    lines = tuple(costs.MaterialLine(slot=n, grams=D("0.16"), price_per_kg=D("25")) for n in (1, 2))
    both = costs.attempt_cost(costs.AttemptInputs(currency="EUR", seconds=D(0), seconds_from="printer",
                                                  materials=lines, rates=RATES))
    assert both.material == D("0.01")


def test_an_unpriced_slot_counts_nothing_and_says_so():
    cost = costs.attempt_cost(_inputs(price=None))
    assert cost.material == D("0.00") and cost.inputs["material"][0]["price_per_kg"] is None


@pytest.mark.parametrize("change,message", [
    ({"power_w": D("-1")}, "must not be negative"),
    ({"lifetime_hours": D("0")}, "must be more than 0"),
    ({"energy_price_per_kwh": D("NaN")}, "finite"),
    ({"labour_per_hour": D("Infinity")}, "finite"),
    ({"purchase_price": D("1E+30")}, "more than a cost can be"),
])
def test_bad_rates_are_refused_with_a_clear_error(change, message):
    with pytest.raises(costs.CostError, match=message):
        costs.attempt_cost(_inputs(rates=costs.Rates(**{**RATES.__dict__, **change})))


def test_bad_grams_and_times_are_refused():
    with pytest.raises(costs.CostError, match="must not be negative"):
        costs.attempt_cost(_inputs(grams="-1"))
    with pytest.raises(costs.CostError, match="more than a cost can be"):
        costs.attempt_cost(_inputs(seconds=10**15))


def test_a_job_sums_its_attempts_and_a_unit_shares_it():
    failed = costs.attempt_cost(_inputs(grams="3.5", seconds=1440))
    done = costs.attempt_cost(_inputs())
    job = costs.job_cost([failed, done], currency="EUR")
    assert job.total == failed.total + done.total == D("5.33")
    assert costs.per_unit(job.total, 1) == D("5.33") and costs.per_unit(D("10.00"), 3) == D("3.33")
    assert costs.per_unit(D("0.05"), 10) == D("0.01")  # 0.005 a unit: half-up
    assert costs.per_unit(job.total, 0) is None
    with pytest.raises(costs.CostError, match="USD"):
        costs.job_cost([done, costs.Cost(currency="USD", material=D(1), energy=D(0), machine=D(0), labour=D(0))],
                       currency="EUR")


def test_the_mean_is_rounded_half_up():
    assert costs.mean([D("1.00"), D("1.01")]) == D("1.01")  # 1.005
    assert costs.mean([]) is None


@pytest.mark.parametrize("gross,vat,net", [
    ("11.90", "19", "10.00"), ("9.99", "19", "8.39"), ("10.70", "7", "10.00"), ("5.00", "0", "5.00"),
    ("0.01", "19", "0.01"),
])
def test_net_prices_from_gross_ones(gross, vat, net):
    assert costs.net_price(D(gross), D(vat)) == D(net)


def test_the_margin_is_taken_on_the_net_price():
    margin = costs.margin(currency="EUR", unit_cost=D("4.00"), sale_price_gross=D("11.90"), vat_percent=D("19"))
    assert (margin.sale_price_net, margin.margin, margin.margin_percent) == (D("10.00"), D("6.00"), D("60.00"))
    loss = costs.margin(currency="EUR", unit_cost=D("12.50"), sale_price_gross=D("11.90"), vat_percent=D("19"))
    assert (loss.margin, loss.margin_percent) == (D("-2.50"), D("-25.00"))
    third = costs.margin(currency="EUR", unit_cost=D("2.00"), sale_price_gross=D("3.57"), vat_percent=D("19"))
    assert (third.sale_price_net, third.margin, third.margin_percent) == (D("3.00"), D("1.00"), D("33.33"))
    free = costs.margin(currency="EUR", unit_cost=D("1.00"), sale_price_gross=D("0"), vat_percent=D("19"))
    assert free.margin == D("-1.00") and free.margin_percent is None
    unknown = costs.margin(currency="EUR", unit_cost=None, sale_price_gross=D("11.90"), vat_percent=D("19"))
    assert unknown.sale_price_net == D("10.00") and unknown.margin is None


# --- the printer's rates: settings, or the station's own ------------------------------------------------


def test_a_printer_without_figures_of_its_own_costs_what_the_settings_say(cost_settings):
    printer = PrinterFactory()
    rates = selectors.printer_cost_rates(printer_id=printer.pk)
    assert rates == RATES and rates.from_station == frozenset()
    cost_settings.PRODUCTION_PRINTER_POWER_W = D("90")
    assert selectors.printer_cost_rates(printer_id=printer.pk).power_w == D("90")
    assert selectors.printer_cost_rates(printer_id=None).power_w == D("90")


def test_a_station_overrides_the_settings_figure_by_figure(cost_settings):
    printer = PrinterFactory()
    station = services.printer_station_set_costs(printer=printer, power_w="300", lifetime_hours=20000,
                                                 handling_minutes=D("2.5"))
    assert (station.power_w, station.lifetime_hours, station.handling_minutes) == (D("300"), 20000, D("2.5"))
    rates = selectors.printer_cost_rates(printer_id=printer.pk)
    assert (rates.power_w, rates.lifetime_hours, rates.handling_minutes) == (D("300"), D("20000"), D("2.5"))
    assert (rates.purchase_price, rates.maintenance_per_hour) == (D("1000"), D("0.05"))  # from the settings
    assert rates.from_station == {"power_w", "lifetime_hours", "handling_minutes"}
    # Every figure is set at once; an empty one goes back to the setting.
    services.printer_station_set_costs(printer=printer, power_w="", handling_minutes="2.5")
    again = selectors.printer_cost_rates(printer_id=printer.pk)
    assert again.power_w == D("150") and again.from_station == {"handling_minutes"}


@pytest.mark.parametrize("field,value,message", [
    ("power_w", "-5", "power_w"),
    ("power_w", "25000", "power_w"),
    ("purchase_price", "1e30", "far too large"),
    ("purchase_price", "9" * 400, "far too large"),
    ("lifetime_hours", "0", "lifetime_hours"),
    ("lifetime_hours", "12.5", "whole number"),
    ("maintenance_per_hour", "NaN", "must be a number"),
    ("handling_minutes", "five", "must be a number"),
    ("handling_minutes", True, "must be a number"),
    ("handling_minutes", "2000", "handling_minutes"),
])
def test_bad_station_figures_are_refused_and_nothing_changes(field, value, message):
    printer = PrinterFactory()
    services.printer_station_set_costs(printer=printer, power_w="200")
    with pytest.raises(InvalidInput, match=message):
        services.printer_station_set_costs(printer=printer, **{"power_w": "250", field: value})
    assert PrinterStation.objects.get(printer=printer).power_w == D("200")


def test_the_station_page_takes_the_figures_and_refuses_bad_ones(admin_client):
    printer = PrinterFactory()
    services.printer_plate_cleared(printer=printer)
    url = reverse("admin:production_printerstation_change", args=[printer.pk])
    form = {"power_w": "120", "purchase_price": "899.00", "lifetime_hours": "6000", "maintenance_per_hour": "0.035",
            "handling_minutes": ""}
    assert admin_client.get(url).status_code == 200
    assert admin_client.post(url, form).status_code == 302
    station = PrinterStation.objects.get(printer=printer)
    assert (station.power_w, station.purchase_price, station.lifetime_hours, station.maintenance_per_hour,
            station.handling_minutes) == (D("120"), D("899.00"), 6000, D("0.035"), None)
    for bad in ({"power_w": "-1"}, {"purchase_price": "1" + "0" * 40}, {"lifetime_hours": "99999999999999999999"},
                {"maintenance_per_hour": "abc"}, {"handling_minutes": "1e999999"}):
        response = admin_client.post(url, {**form, **bad})
        assert response.status_code == 200, bad
        assert set(response.context_data["adminform"].form.errors) == set(bad), bad
    station.refresh_from_db()
    assert station.power_w == D("120") and station.purchase_price == D("899.00")


# --- an attempt ends: its cost, its job's, the product's unit cost --------------------------------------


def _version(variant=None, grams=8.75, estimated_s=3600, name=None):
    sliced = SlicedFileFactory(metadata=metadata(filament_used_g=[grams], filament_type=["PETG"],
                                                 filament_colour=["#FF8000"], estimated_time_s=estimated_s),
                               **({"original_name": name} if name else {}))
    return VersionFactory(sliced_file=sliced, **({"variant": variant} if variant is not None else {}))


def _petg(grams="1000", **fields):
    return spool(FilamentFactory(material="PETG", colour_hex="#FF8000", **fields), grams=grams)


def _attempt(job, printer):
    """Send the (queued) job to `printer` as dispatch does, without a real transfer."""
    services.print_job_transition(job=job, status=PrintJobStatus.ASSIGNED)
    job = services.print_job_transition(job=job, status=PrintJobStatus.SENT)
    PrintJob.objects.filter(pk=job.pk).update(printer=printer)
    number = PrintAttempt.objects.filter(job=job).count() + 1
    return PrintAttempt.objects.create(job=job, number=number, printer=printer,
                                       file_name=job.version.sliced_file.original_name)


def _run(attempt, *, outcome="completed", hours=None, progress=100.0, start=START):
    """The printer ran the attempt: from `start` for `hours` (None: the printer did not see it start)."""
    printer_job = PrinterJob.objects.create(
        printer_id=attempt.printer_id, file_name=attempt.file_name, started_at=start,
        ended_at=start + timedelta(hours=float(hours or 0)), outcome=JobOutcome(outcome), progress_reached=progress,
        observed_start=hours is not None)
    services.printer_job_started(printer_job=printer_job)
    services.printer_job_finished(printer_job=printer_job, outcome=outcome)
    attempt.refresh_from_db()
    return attempt


def _printed(printer, fed, version=None, *, hours=2.5, start=START, **job_fields):
    services.spool_load(printer=printer, tray=0, spool=fed)
    job = services.print_job_create(version=version or _version(), **job_fields)
    return _run(_attempt(job, printer), hours=hours, start=start)


def test_a_completed_print_stores_its_cost_with_its_inputs_on_the_attempt_and_the_job(cost_settings):
    printer, fed = PrinterFactory(), _petg()
    attempt = _printed(printer, fed)
    assert attempt.outcome == AttemptOutcome.COMPLETED
    assert _parts(attempt) == HAND and attempt.cost_currency == "EUR"
    inputs = attempt.cost_inputs
    assert inputs["time"]["from"] == "printer" and inputs["time"]["seconds"] == "9000"
    assert inputs["material"] == [{"slot": 1, "grams": "8.750", "spool": fed.code, "filament": str(fed.filament),
                                   "price_per_kg": "25.00", "currency": "EUR", "amount": "0.21875"}]
    assert inputs["energy"] == {"power_w": "150", "price_per_kwh": "0.30"} and inputs["warnings"] == []
    job = PrintJob.objects.get(pk=attempt.job_id)
    assert job.status == PrintJobStatus.COMPLETED and _parts(job) == HAND and job.cost_currency == "EUR"
    assert job.cost_inputs["good_units"] == 1 and job.cost_inputs["unit_cost"] == "3.04"
    assert [a["number"] for a in job.cost_inputs["attempts"]] == [1]
    product = Product.objects.get(variant=job.version.variant)
    assert product.unit_cost == D("3.04")


def test_a_failed_attempt_is_carried_into_the_unit_the_job_finally_made(cost_settings):
    printer, fed = PrinterFactory(), _petg()
    services.spool_load(printer=printer, tray=0, spool=fed)
    job = services.print_job_create(version=_version())
    # Attempt 1 fails at 40 % and the printer did not see it start: the file's 3600 s × 40 % = 0.4 h, and the
    # file has no layers, so 40 % of its 8.75 g: 3.5 g.
    #   material 3.5 × 25 / 1000 = 0.0875 → 0.09; energy 0.15 × 0.4 × 0.30 = 0.018 → 0.02;
    #   machine 0.25 × 0.4 = 0.10; labour 2.08 → 2.29.
    failed = _run(_attempt(job, printer), outcome="failed", hours=None, progress=40.0)
    assert failed.outcome == AttemptOutcome.FAILED
    assert _parts(failed) == {"material": D("0.09"), "energy": D("0.02"), "machine": D("0.10"), "labour": D("2.08"),
                              "total": D("2.29")}
    assert failed.cost_inputs["time"] == {"seconds": "1440", "hours": "0.4000", "from": "estimate_progress"}
    job.refresh_from_db()
    assert job.status == PrintJobStatus.FAILED and job.cost_total == D("2.29")
    assert job.cost_inputs["good_units"] == 0 and job.cost_inputs["unit_cost"] is None
    assert Product.objects.filter(variant=job.version.variant).exists() is False  # nothing printed yet

    services.printer_plate_cleared(printer=printer)
    job = services.print_job_requeue(job=job)
    done = _run(_attempt(job, printer), hours=2.5, start=START + timedelta(hours=3))
    assert done.number == 2 and _parts(done) == HAND
    job.refresh_from_db()
    assert job.status == PrintJobStatus.COMPLETED
    assert _parts(job) == {"material": D("0.31"), "energy": D("0.13"), "machine": D("0.73"), "labour": D("4.16"),
                           "total": D("5.33")}
    assert job.cost_inputs["good_units"] == 1 and job.cost_inputs["unit_cost"] == "5.33"
    assert [(a["number"], a["outcome"], a["total"]) for a in job.cost_inputs["attempts"]] == [
        (1, "failed", "2.29"), (2, "completed", "3.04")]
    assert Product.objects.get(variant=job.version.variant).unit_cost == D("5.33")
    assert selectors.variant_unit_cost(variant=job.version.variant).amount == D("5.33")


def test_a_station_of_its_own_changes_what_the_print_costs(cost_settings):
    printer, fed = PrinterFactory(), _petg()
    services.printer_station_set_costs(printer=printer, power_w="300", handling_minutes="0")
    attempt = _printed(printer, fed)
    # energy 0.3 × 2.5 × 0.30 = 0.225 → 0.23; no handling: no labour.
    assert (attempt.cost_energy, attempt.cost_labour, attempt.cost_total) == (D("0.23"), D("0.00"), D("1.08"))
    assert attempt.cost_inputs["from_station"] == ["handling_minutes", "power_w"]
    assert attempt.cost_inputs["energy"]["power_w"] == "300.0"


def test_without_real_times_the_files_estimate_for_the_plate_is_used(cost_settings):
    printer, fed = PrinterFactory(), _petg()
    plates = [{"index": 1, "fields": metadata(filament_used_g=[8.75], estimated_time_s=600)},
              {"index": 2, "fields": metadata(filament_used_g=[8.75], filament_type=["PETG"],
                                              filament_colour=["#FF8000"], estimated_time_s=9000)}]
    sliced = SlicedFileFactory(metadata=metadata(estimated_time_s=600), plates=plates)
    services.spool_load(printer=printer, tray=0, spool=fed)
    job = services.print_job_create(version=VersionFactory(sliced_file=sliced), plate=2)
    attempt = _run(_attempt(job, printer), hours=None)
    assert attempt.cost_inputs["time"] == {"seconds": "9000", "hours": "2.5000", "from": "estimate"}
    assert _parts(attempt) == HAND


def test_a_print_whose_time_nobody_knows_counts_no_hours_and_says_so(cost_settings):
    printer, fed = PrinterFactory(), _petg()
    services.spool_load(printer=printer, tray=0, spool=fed)
    job = services.print_job_create(version=_version(estimated_s=None))
    attempt = _run(_attempt(job, printer), hours=None)
    assert attempt.cost_inputs["time"]["from"] == "unknown"
    assert (attempt.cost_energy, attempt.cost_machine, attempt.cost_total) == (D("0.00"), D("0.00"), D("2.30"))
    assert selectors.print_cost_texts(costed=attempt) == [
        "Neither the printer nor the file says how long it printed: energy and machine time are not counted."]


def test_filament_priced_in_another_currency_is_not_counted_and_says_so(cost_settings):
    printer, fed = PrinterFactory(), _petg(currency="USD")
    attempt = _printed(printer, fed)
    assert attempt.cost_material == D("0.00") and attempt.cost_total == D("2.82")
    job = PrintJob.objects.get(pk=attempt.job_id)
    texts = selectors.print_cost_texts(costed=job)
    assert len(texts) == 1 and "priced in USD" in texts[0] and texts[0].startswith("Attempt 1: Slot 1")


def test_a_slot_without_a_spool_is_costed_again_when_staff_choose_it(cost_settings, signals):  # noqa: F811
    printer = PrinterFactory()
    _version(name="clip.gcode")
    signals(printer, PrinterState.IDLE)
    signals(printer, PrinterState.PRINTING, job_key="4", current_file="clip.gcode", progress_percent=1.0)
    signals(printer, PrinterState.FINISHED, job_key="4", current_file="clip.gcode", progress_percent=100.0)
    slot = SlotAllocation.objects.get()
    attempt = slot.attempt
    attempt.refresh_from_db()
    assert slot.spool is None and attempt.cost_material == D("0.00")
    assert any("no spool was chosen yet" in t for t in selectors.print_cost_texts(costed=attempt))
    services.slot_allocation_correct(allocation=slot, spool=_petg())
    attempt.refresh_from_db()
    assert attempt.cost_material == D("0.22") and attempt.cost_inputs["warnings"] == []
    job = PrintJob.objects.get(pk=attempt.job_id)
    assert job.cost_material == D("0.22") and job.cost_total == attempt.cost_total
    assert Product.objects.get(variant=job.version.variant).unit_cost == job.cost_total


def test_a_cost_too_large_to_store_is_recorded_as_an_error_and_the_booking_stands(cost_settings):
    printer, fed = PrinterFactory(), _petg()
    services.printer_station_set_costs(printer=printer, purchase_price="1000000", lifetime_hours=100)
    attempt = _printed(printer, fed, hours=20000)  # a printer job that "ran" 20000 h at 10000 an hour
    assert attempt.cost_total is None and "more than a cost can be" in attempt.cost_inputs["error"]
    fed.refresh_from_db()
    assert fed.remaining_grams == D("991.25") == spool_ledger_total(spool=fed)
    job = PrintJob.objects.get(pk=attempt.job_id)
    assert job.status == PrintJobStatus.COMPLETED and job.cost_total is None and job.cost_currency == ""
    [text] = selectors.print_cost_texts(costed=job)
    assert text.startswith("Attempt 1 has no cost: The machine cost of 200001000 is more than")
    assert product_units(product=Product.objects.get(variant=job.version.variant)) == 1


def test_an_unexpected_failure_of_the_cost_never_undoes_the_booking(cost_settings, monkeypatch):
    def broken(inputs):
        raise RuntimeError("boom")

    monkeypatch.setattr(costs, "attempt_cost", broken)
    printer, fed = PrinterFactory(), _petg()
    attempt = _printed(printer, fed)
    assert attempt.booked_at is not None and attempt.cost_total is None
    assert "server log" in attempt.cost_inputs["error"]
    assert Movement.objects.filter(spool=fed, kind=MovementKind.USED).count() == 1


def test_an_attempt_that_has_not_ended_has_no_cost_yet(cost_settings):
    printer = PrinterFactory()
    attempt = _attempt(services.print_job_create(version=_version()), printer)
    with pytest.raises(Conflict, match="has not ended"):
        services.print_attempt_cost_compute(attempt=attempt)


# --- a variant's unit cost and margin ------------------------------------------------------------------


def _completed_job(variant, printer, fed, hours, start):
    services.printer_plate_cleared(printer=printer)
    return PrintJob.objects.get(pk=_printed(printer, fed, _version(variant=variant), hours=hours, start=start).job_id)


def test_a_variants_unit_cost_is_the_mean_over_its_recent_completed_prints(cost_settings):
    printer, fed, variant = PrinterFactory(), _petg(), VariantFactory()
    # 2.5 h → 3.04; 1 h: 0.22 + 0.05 (0.045) + 0.25 + 2.08 = 2.60; 5 h: 0.22 + 0.23 (0.225) + 1.25 + 2.08 = 3.78
    totals = [_completed_job(variant, printer, fed, hours, START + timedelta(days=day)).cost_total
              for day, hours in enumerate([2.5, 1, 5])]
    assert totals == [D("3.04"), D("2.60"), D("3.78")]
    assert selectors.variant_unit_cost(variant=variant) == selectors.UnitCost(D("3.14"), "EUR", 3)
    assert selectors.variant_unit_cost(variant=variant, recent=2) == selectors.UnitCost(D("3.19"), "EUR", 2)
    assert selectors.variant_unit_cost(variant=variant, recent=1).amount == D("3.78")
    assert Product.objects.get(variant=variant).unit_cost == D("3.14")  # set when the last job completed
    cost_settings.PRODUCTION_UNIT_COST_RECENT_JOBS = 2
    assert selectors.variant_unit_cost(variant=variant).amount == D("3.19")
    cost_settings.PRODUCTION_UNIT_COST_RECENT_JOBS = 10
    # A queued job, a failed one and another variant's print are no part of it.
    services.print_job_create(version=_version(variant=variant))
    services.printer_plate_cleared(printer=printer)
    failing = services.print_job_create(version=_version(variant=variant))
    _run(_attempt(failing, printer), outcome="failed", hours=1, progress=50.0, start=START + timedelta(days=8))
    _completed_job(VariantFactory(), printer, fed, 10, START + timedelta(days=9))
    assert selectors.variant_unit_cost(variant=variant) == selectors.UnitCost(D("3.14"), "EUR", 3)
    for bad in (0, 1001, "3", True):
        with pytest.raises(InvalidInput):
            selectors.variant_unit_cost(variant=variant, recent=bad)
    assert selectors.variant_unit_cost(variant=VariantFactory()) == selectors.UnitCost(None, "EUR", 0)


def test_a_variants_margin_against_its_products_sale_price(cost_settings):
    printer, fed, variant = PrinterFactory(), _petg(), VariantFactory()
    _completed_job(variant, printer, fed, 2.5, START)
    product = Product.objects.get(variant=variant)
    margin = selectors.variant_margin(variant=variant)
    assert margin.unit_cost == D("3.04") and margin.sale_price_gross is None and margin.margin is None
    inventory_services.product_update(product=product, sale_price=D("11.90"))
    margin = selectors.variant_margin(variant=variant)
    assert (margin.sale_price_gross, margin.sale_price_net, margin.vat_percent) == (D("11.90"), D("10.00"), D("19"))
    assert (margin.margin, margin.margin_percent) == (D("6.96"), D("69.60"))
    cost_settings.PRODUCTION_VAT_PERCENT = D("7")
    assert selectors.variant_margin(variant=variant).sale_price_net == D("11.12")  # 11.1214…
    inventory_services.product_update(product=product, currency="USD")
    assert selectors.variant_margin(variant=variant).margin is None  # priced in another currency


def test_a_products_unit_cost_is_set_through_inventorys_service_and_refuses_bad_amounts():
    product = inventory_services.product_create(sku="P1", name="P", kind=ProductKind.PRINTED,
                                                variant=VariantFactory())
    assert inventory_services.product_set_unit_cost(product=product, unit_cost=D("1.005")).unit_cost == D("1.01")
    product.refresh_from_db()
    assert product.unit_cost == D("1.01")
    for bad in ("-1", "abc", "NaN", "1e40", None):
        with pytest.raises(InvalidInput):
            inventory_services.product_set_unit_cost(product=product, unit_cost=bad)
    product.refresh_from_db()
    assert product.unit_cost == D("1.01")


def test_the_job_page_shows_the_breakdown_the_units_and_the_margin(cost_settings, operator_client):
    printer, fed, variant = PrinterFactory(), _petg(), VariantFactory()
    job = _completed_job(variant, printer, fed, 2.5, START)
    inventory_services.product_update(product=Product.objects.get(variant=variant), sale_price=D("11.90"))
    page = operator_client.get(reverse("admin:production_printjob_change", args=[job.pk])).content.decode()
    for text in ("0.22", "0.11", "0.63", "2.08", "3.04", "2.5000 h (printer)", "per unit", "69.60", "10.00"):
        assert text in page, text


# --- the whole way: a printer's report → the ledger → the product's unit cost ----------------------------


def test_a_print_reported_by_the_printer_is_booked_in_the_ledger_and_costs_its_product(
        cost_settings, signals):  # noqa: F811
    printer, fed = PrinterFactory(), _petg()
    services.spool_load(printer=printer, tray=0, spool=fed)
    version = _version(name="bracket.gcode")
    job = services.print_job_create(version=version)
    attempt = _attempt(job, printer)
    signals(printer, PrinterState.IDLE)
    signals(printer, PrinterState.PRINTING, job_key="31", current_file="bracket.gcode", progress_percent=3.0)
    PrinterJob.objects.filter(printer=printer).update(started_at=timezone.now() - timedelta(hours=2))
    signals(printer, PrinterState.FINISHED, job_key="31", current_file="bracket.gcode", progress_percent=100.0)
    fed.refresh_from_db()
    movement = Movement.objects.get(spool=fed, kind=MovementKind.USED)
    assert movement.delta_grams == D("-8.75") and fed.remaining_grams == spool_ledger_total(spool=fed)
    attempt.refresh_from_db()
    seconds = D(attempt.cost_inputs["time"]["seconds"])
    assert attempt.cost_inputs["time"]["from"] == "printer" and 7200 <= seconds < 7300  # as the printer saw it
    assert attempt.cost_machine == costs.cents(D("0.25") * seconds / 3600)
    assert attempt.cost_energy == costs.cents(D("0.15") * seconds / 3600 * D("0.30"))
    assert attempt.cost_material == D("0.22") and attempt.cost_labour == D("2.08")
    job.refresh_from_db()
    product = Product.objects.get(variant=version.variant)
    assert product_units(product=product) == 1
    assert product.unit_cost == job.cost_total == attempt.cost_total
    assert job.cost_inputs["unit_cost"] == str(job.cost_total)
