"""The dashboard's production figures, computed on known data."""

from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.urls import reverse
from django.utils import timezone

from inventory import services as inventory_services
from inventory.choices import MovementKind, SourceType
from inventory.models import Movement
from production import selectors
from production.choices import AttemptOutcome, PrintJobStatus
from production.models import PrintAttempt, PrintJob, SlotAllocation
from production.tests.factories import FilamentFactory, PrinterFactory, job, spool, version

pytestmark = pytest.mark.django_db


def _kpis(**kwargs) -> dict:
    return {str(item["label"]): item["value"] for item in selectors.production_kpis(**kwargs)}


def _ended(item, *, status, at):
    PrintJob.objects.filter(pk=item.pk).update(status=status, finished_at=at)


def _attempt(item, number, outcome, at):
    PrintAttempt.objects.create(job=item, number=number, outcome=outcome, finished_at=at)


def test_an_empty_lab_shows_zeros():
    assert _kpis() == {"Queued jobs": 0, "Queued printing hours": 0.0, "Queued, cannot print now": 0,
                       "Printing": 0, "Completed today": 0, "Failure rate this week (%)": 0,
                       "Filament booked today (g)": 0, "Queued jobs planned to finish late": 0,
                       "Success rate, last 7 days (%)": 0.0, "Cost per gram, last 30 days (EUR)": 0.0}


def test_the_figures_on_known_data():
    now = timezone.now()
    today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    week = today - timedelta(days=today.weekday())
    spool(FilamentFactory(material="PETG", colour_hex="#FF8000"), grams="1000")  # what the factory's files need
    PrinterFactory(model="MK4S")
    job(copies=2)  # 1 h a plate (the factory's estimate) × 2
    job(version(estimated_time_s=1800))  # 0.5 h
    job(version(estimated_time_s=None))  # a file without an estimate counts nothing
    job(version(filament_used_g=[5000.0]))  # 1 h, and not enough filament: cannot print now
    printing = job()
    _ended(printing, status=PrintJobStatus.PRINTING, at=None)
    for _n in range(2):
        _ended(job(), status=PrintJobStatus.COMPLETED, at=now)
    _ended(job(), status=PrintJobStatus.COMPLETED, at=today - timedelta(minutes=5))  # yesterday
    _ended(job(), status=PrintJobStatus.FAILED, at=now)

    tried = job()
    _ended(tried, status=PrintJobStatus.COMPLETED, at=week - timedelta(days=1))
    for number, outcome in enumerate([AttemptOutcome.COMPLETED] * 3 + [AttemptOutcome.FAILED,
                                                                       AttemptOutcome.CANCELLED], start=1):
        _attempt(tried, number, outcome, now)
    _attempt(tried, 6, AttemptOutcome.FAILED, week - timedelta(minutes=1))  # last week
    _attempt(tried, 7, AttemptOutcome.RUNNING, None)

    fed = spool(FilamentFactory(material="PLA"), grams="1000")
    source = {"source_type": SourceType.PRINT_JOB, "source_id": str(tried.pk)}
    inventory_services.spool_use(spool=fed, grams_used="12.5", idempotency_key="k:1", **source)
    inventory_services.spool_use(spool=fed, grams_used="7.5", kind=MovementKind.FAILED_PRINT,
                                 idempotency_key="k:2", **source)
    inventory_services.spool_credit(spool=fed, grams_returned="5", idempotency_key="k:3", reason="moved", **source)
    inventory_services.spool_use(spool=fed, grams_used="100", kind=MovementKind.WASTE, idempotency_key="k:4",
                                 source_type=SourceType.USER)  # not a print
    old = inventory_services.spool_use(spool=fed, grams_used="40", idempotency_key="k:5", **source)
    Movement.objects.filter(pk=old.pk).update(created_at=today - timedelta(hours=1))  # yesterday

    figures = _kpis(now=now)
    assert figures["Queued jobs"] == 4
    assert figures["Queued printing hours"] == 3.5
    assert figures["Queued, cannot print now"] == 1
    assert figures["Printing"] == 1
    assert figures["Completed today"] == 2
    assert figures["Failure rate this week (%)"] == 25  # 1 failed of 4 ended; the cancelled one is neither
    assert figures["Filament booked today (g)"] == 15


def test_the_dashboard_shows_them(admin_client):
    job(copies=3)
    body = admin_client.get(reverse("admin:index")).content.decode()
    assert 'data-domain="production"' in body
    for label in ("Queued printing hours", "Completed today", "Failure rate this week (%)",
                  "Filament booked today (g)"):
        assert label in body
    kpis = {kpi["label"]: kpi["value"] for kpi in selectors.production_kpis()}
    assert kpis["Queued printing hours"] == 3.0 and '<span data-kpi>3.0</span>' in body


def test_the_farm_figures_on_known_data(settings):
    settings.PRODUCTION_CURRENCY = "EUR"
    now = timezone.now()
    hours = timedelta(hours=1)
    busy, idle = PrinterFactory(name="A-busy"), PrinterFactory(name="B-idle")
    PrinterFactory(name="C-off", is_active=False)
    item = job()

    def tried(number, printer, started, finished, outcome=AttemptOutcome.COMPLETED, cost=None, grams=(),
              currency="EUR"):
        attempt = PrintAttempt.objects.create(job=item, number=number, printer=printer, started_at=started,
                                              finished_at=finished, outcome=outcome, cost_total=cost,
                                              cost_currency=currency if cost is not None else "")
        for slot, amount in enumerate(grams, start=1):
            SlotAllocation.objects.create(attempt=attempt, slot=slot, grams_planned=amount, grams_booked=amount)

    tried(1, busy, now - timedelta(days=2), now - timedelta(days=2) + 6 * hours, cost=D("2.00"), grams=[D("40")])
    tried(2, busy, now - timedelta(days=8), now - timedelta(days=6), cost=D("1.00"), grams=[D("10"), D("10")])
    tried(3, busy, now - hours, None, outcome=AttemptOutcome.RUNNING)
    tried(4, idle, now - timedelta(days=1) - hours, now - timedelta(days=1), outcome=AttemptOutcome.FAILED)
    tried(5, idle, None, now - timedelta(days=1), outcome=AttemptOutcome.CANCELLED)  # never started
    tried(6, idle, now - timedelta(days=10), now - timedelta(days=9), outcome=AttemptOutcome.FAILED)  # too old
    tried(7, idle, None, now - timedelta(days=3), cost=D("5.00"), grams=[D("100")], currency="USD")
    tried(8, idle, None, now - timedelta(days=40), cost=D("9.00"), grams=[D("10")])  # before the 30 days

    late, on_time = job(), job()
    PrintJob.objects.filter(pk=late.pk).update(due_at=now + 2 * hours, planned_finish=now + 5 * hours)
    PrintJob.objects.filter(pk=on_time.pk).update(due_at=now + 2 * hours, planned_finish=now + hours)
    PrintJob.objects.filter(pk=item.pk).update(planned_finish=now + 9 * hours)  # no due time: never late

    figures = _kpis(now=now)
    # A: 6 h + the last day of an attempt that began 8 days ago (24 h) + 1 h running = 111 600 s of 604 800 s
    assert figures["Utilisation of A-busy, last 7 days (%)"] == 18.5
    assert figures["Utilisation of B-idle, last 7 days (%)"] == 0.6  # 1 h
    assert "Utilisation of C-off, last 7 days (%)" not in figures
    assert figures["Success rate, last 7 days (%)"] == 75.0  # 1, 2 and 7 completed, 4 failed; 5 and 6 do not count
    assert figures["Cost per gram, last 30 days (EUR)"] == 0.05  # 3.00 over 60 g; USD and older ones left out
    assert figures["Queued jobs planned to finish late"] == 1
    assert all(isinstance(value, int | float) for value in figures.values())


def test_the_next_market_events_readiness_is_on_the_dashboard():
    from production import events
    from production.tests.test_market_events import market, printed

    assert not any("market" in label.lower() for label in _kpis())
    stars = printed("STAR", stock=4)
    event = market("Winter fair", starts_in=7)
    events.market_event_product_set(event=event, product=stars, target_units=10)
    item = events.market_event_checklist_add(event=event, text="Book the stall")
    events.market_event_checklist_add(event=event, text="Pack the card reader")
    events.market_event_checklist_toggle(item=item)

    figures = _kpis()
    assert figures["Next market: Winter fair, days left"] == 7
    assert figures["Winter fair: target units in stock (%)"] == 40.0
    assert figures["Winter fair: units still missing"] == 6
    assert figures["Winter fair: checklist done (%)"] == 50.0
    assert all(isinstance(value, int | float) for value in figures.values())
