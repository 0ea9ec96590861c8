"""The dashboard's production figures, computed on known data."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from inventory import services as inventory_services
from inventory.choices import MovementKind, SourceType
from inventory.models import Movement
from production import selectors
from production.choices import AttemptOutcome, PrintJobStatus
from production.models import PrintAttempt, PrintJob
from production.tests.factories import FilamentFactory, PrinterFactory, job, spool, version

pytestmark = pytest.mark.django_db


def _kpis(**kwargs) -> dict:
    return {str(item["label"]): item["value"] for item in selectors.production_kpis(**kwargs)}


def _ended(item, *, status, at):
    PrintJob.objects.filter(pk=item.pk).update(status=status, finished_at=at)


def _attempt(item, number, outcome, at):
    PrintAttempt.objects.create(job=item, number=number, outcome=outcome, finished_at=at)


def test_an_empty_lab_shows_zeros():
    assert _kpis() == {"Queued jobs": 0, "Queued printing hours": "0.0", "Queued, cannot print now": 0,
                       "Printing": 0, "Completed today": 0, "Failure rate this week (%)": 0,
                       "Filament booked today (g)": "0"}


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
    assert figures["Queued printing hours"] == "3.5"
    assert figures["Queued, cannot print now"] == 1
    assert figures["Printing"] == 1
    assert figures["Completed today"] == 2
    assert figures["Failure rate this week (%)"] == 25  # 1 failed of 4 ended; the cancelled one is neither
    assert figures["Filament booked today (g)"] == "15"


def test_the_dashboard_shows_them(admin_client):
    job(copies=3)
    body = admin_client.get(reverse("admin:index")).content.decode()
    assert 'data-domain="production"' in body
    for label in ("Queued printing hours", "Completed today", "Failure rate this week (%)",
                  "Filament booked today (g)"):
        assert label in body
    kpis = {kpi["label"]: kpi["value"] for kpi in selectors.production_kpis()}
    assert kpis["Queued printing hours"] == "3.0" and '<span data-kpi>3.0</span>' in body
