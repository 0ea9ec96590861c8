"""The whole print loop over the printers' real protocols: a job queued for a catalog version is dispatched to a
simulated printer (Bambu: FTPS upload on the printer's own port and `project_file` over MQTT; PrusaLink: HTTP
upload and start), the simulator prints the file, the printer listener / the PrusaLink poll follow it, and
production books what the print used: once, on the spool that fed each slot, and a unit of product stock when
it completed. A print that fails or is cancelled at layer k books the catalog's grams of layers 1..k.

The catalog's files are the project's own samples (`catalog.samples`), uploaded through the catalog's services:
no test corpus is needed. Tests run with real commits (signals are sent once a transaction commits).
"""

import time
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile

from catalog import selectors as catalog_selectors
from catalog import services as catalog_services
from catalog.samples import build_file, sample_models
from inventory import services as inventory_services
from inventory.choices import MovementKind
from inventory.models import Movement, Product, ProductMovement
from inventory.selectors import product_units, spool_ledger_total
from printers import services as printer_services
from printers.choices import Driver, JobOutcome, PrinterState
from printers.models import PrinterJob
from printers.signals import job_finished
from printers.simulators.ftps import BambuFTPSSimulator
from printers.simulators.prusalink import PrusaLinkSimulator
from printers.state import NormalisedState
from printers.tests import mqtt
from printers.tests.mqtt import ACCESS_CODE, SERIAL, make_sim, state_is, step_until
from production import costs, services
from production.choices import AttemptOutcome, PrintJobStatus, SpoolSource
from production.models import PrintAttempt, SlotAllocation

pytestmark = pytest.mark.django_db(transaction=True)
broker, fast_mqtt, listener = mqtt.broker, mqtt.fast_mqtt, mqtt.listener  # a real Mosquitto, the printer listener

PRUSA_PASSWORD = "loop-prusa-secret"
SPEED = 400.0  # the simulators print this many times faster than the file's sliced time


def _sample(file_name: str):
    return next(version for model in sample_models() for variant in model.variants
                for version in variant.versions if version.file_name == file_name)


def _catalog_version(file_name: str, sku: str):
    """The sample file uploaded to a new variant through the catalog's services; (version, sample file)."""
    made = build_file(_sample(file_name))
    model = catalog_services.model_create(name=f"Loop {sku}")
    variant = catalog_services.variant_create(model=model, name=sku, sku=sku)
    version = catalog_services.variant_upload_sliced_file(variant=variant,
                                                          upload=ContentFile(made.data, name=made.name))
    version.refresh_from_db()
    assert version.sliced_file.sliced  # read at once: the grams it states are known
    return version, made


def _spool(material: str, colour: str, grams: str = "1000"):
    filament = inventory_services.filament_create(brand="Loop", material=material, name=f"{material} {colour}",
                                                  colour_hex=colour)
    return inventory_services.spool_receive(filament=filament, initial_grams=Decimal(grams),
                                            idempotency_key=f"loop-receive-{filament.pk}")


def _booked(spool) -> list[Movement]:
    return list(Movement.objects.filter(spool=spool, kind__in=(MovementKind.USED, MovementKind.FAILED_PRINT)))


def _stated_grams(made) -> list[Decimal]:
    return [Decimal(str(grams)).quantize(Decimal("0.01")) for grams in made.stats.grams]


def _through_layer(version, layer: int) -> list[Decimal]:
    grams = catalog_selectors.sliced_file_extruded_through_layer(sliced_file=version.sliced_file, layer=layer)
    return [Decimal(str(value)).quantize(Decimal("0.01")) for value in grams]


def _replay_end(printer_job: PrinterJob) -> None:
    """The end reported again: the signal replayed (a second worker) and the final state applied once more."""
    job_finished.send(sender=PrinterJob, job=printer_job, printer=printer_job.printer, outcome=printer_job.outcome)
    final = {JobOutcome.COMPLETED: PrinterState.FINISHED, JobOutcome.FAILED: PrinterState.FAILED,
             JobOutcome.CANCELLED: PrinterState.CANCELLED}[printer_job.outcome]
    printer_services.printer_apply_state(printer=printer_job.printer, state=NormalisedState(
        state=final, job_key=printer_job.external_job_id, current_file=printer_job.file_name,
        progress_percent=printer_job.progress_reached))
    job_finished.send(sender=PrinterJob, job=printer_job, printer=printer_job.printer, outcome=printer_job.outcome)


@pytest.fixture(autouse=True)
def _quick(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.PRINTER_HTTP_TIMEOUT_SECONDS = 3
    settings.PRINTER_FILES_TIMEOUT_SECONDS = 10
    settings.PRINTER_FILES_LOCK_WAIT_SECONDS = 0
    cache.clear()


# --- Bambu: FTPS upload + MQTT ------------------------------------------------------------------------------

BAMBU_SAMPLE = "calibration-cube_0.3mm_15pct_PLA_A1.gcode.3mf"  # green PLA: the A1 simulator's tray 0


@pytest.fixture
def bambu_loop(broker, listener, settings):
    """A simulated A1 (MQTT) with its SD card behind its own FTPS port, a spool loaded in its tray 0, and a
    queued job for a catalog version of a sample file; yields (printer, simulator, job, version, file, spool)."""
    settings.BAMBU_FTPS_PORT = 1  # nothing listens there: the printer's own files port is used
    with BambuFTPSSimulator(serial=SERIAL, access_code=ACCESS_CODE) as storage:
        sim = make_sim(broker, storage=storage, files=(), speed=SPEED).start()
        try:
            printer = printer_services.printer_create(name="Loop A1", driver=Driver.BAMBU, host=broker.host,
                                                      port=broker.port, model="A1", serial=SERIAL,
                                                      secret=ACCESS_CODE, files_port=storage.port)
            step_until(listener, state_is(printer, PrinterState.IDLE), what="the A1 online and idle")
            version, made = _catalog_version(BAMBU_SAMPLE, "LOOP-CUBE-GREEN")
            fed = _spool("PLA", "#00AE42")
            _spool("PLA", "#00AE42", grams="400")  # in stock but not loaded: never booked
            services.spool_load(printer=printer, tray=0, spool=fed)
            job = services.print_job_create(version=version)
            yield printer, sim, storage, job, version, made, fed
        finally:
            sim.stop()


def _dispatch_and_follow(listener, printer, job, *, timeout=20.0) -> PrintAttempt:
    sent = services.print_job_dispatch(job=job)
    assert sent.pk == job.pk and sent.status == PrintJobStatus.SENT and sent.printer_id == printer.pk

    def booked():
        attempt = PrintAttempt.objects.filter(job=job).select_related("job", "printer_job").first()
        return attempt if attempt is not None and attempt.booked_at is not None else None

    return step_until(listener, booked, timeout=timeout, what="the print to end and be booked")


def test_a_queued_job_prints_on_a_simulated_bambu_and_books_its_grams_once(bambu_loop, listener):
    printer, sim, storage, job, version, made, fed = bambu_loop
    attempt = _dispatch_and_follow(listener, printer, job)

    assert storage.uploads == [f"/{made.name}"] and storage.read_file(f"/{made.name}") == made.data
    assert sim.jobs == [(made.name, "finished")]
    job.refresh_from_db()
    assert job.status == PrintJobStatus.COMPLETED and attempt.outcome == AttemptOutcome.COMPLETED
    assert attempt.printer_job.outcome == JobOutcome.COMPLETED
    slots = list(SlotAllocation.objects.filter(attempt=attempt).order_by("slot"))
    assert [(s.slot, s.tray, s.spool_id, s.spool_source) for s in slots] == [(1, 0, fed.pk, SpoolSource.LOADED)]
    stated = _stated_grams(made)
    assert [s.grams_booked.quantize(Decimal("0.01")) for s in slots] == stated
    product = Product.objects.get(variant=version.variant)
    assert product_units(product=product) == 1

    _replay_end(attempt.printer_job)
    fed.refresh_from_db()
    movements = _booked(fed)
    assert len(movements) == 1 and movements[0].kind == MovementKind.USED
    assert movements[0].delta_grams == -stated[0]
    assert fed.remaining_grams == Decimal("1000") - stated[0] == spool_ledger_total(spool=fed)
    assert Movement.objects.filter(kind__in=(MovementKind.USED, MovementKind.FAILED_PRINT)).count() == 1
    assert product_units(product=product) == 1 and ProductMovement.objects.filter(product=product).count() == 1


@pytest.mark.parametrize(("stop", "outcome", "status", "layer"), [
    ("fail_at_layer", JobOutcome.FAILED, PrintJobStatus.FAILED, 4),
    ("cancel_at_layer", JobOutcome.CANCELLED, PrintJobStatus.CANCELLED, 7),
])
def test_a_bambu_print_stopped_at_layer_k_books_layers_one_to_k(bambu_loop, listener, stop, outcome, status,
                                                               layer):
    printer, sim, _storage, job, version, made, fed = bambu_loop
    assert layer < catalog_selectors.sliced_file_layer_count(sliced_file=version.sliced_file)
    getattr(sim, stop)(layer)  # applies to the next job the printer starts
    attempt = _dispatch_and_follow(listener, printer, job)

    job.refresh_from_db()
    assert job.status == status and attempt.outcome == outcome
    assert attempt.printer_job.outcome == outcome and attempt.printer_job.last_layer == layer
    expected = _through_layer(version, layer)
    assert expected[0] < _stated_grams(made)[0]
    _replay_end(attempt.printer_job)
    fed.refresh_from_db()
    movements = _booked(fed)
    assert len(movements) == 1 and movements[0].kind == MovementKind.FAILED_PRINT
    assert movements[0].delta_grams.quantize(Decimal("0.01")) == -expected[0]  # to 0.01 g of the file's own extrusion
    assert SlotAllocation.objects.get(attempt=attempt).grams_booked.quantize(Decimal("0.01")) == expected[0]
    assert fed.remaining_grams == spool_ledger_total(spool=fed)
    assert not Product.objects.filter(variant=version.variant).exists() or product_units(
        product=Product.objects.get(variant=version.variant)) == 0
    assert not ProductMovement.objects.exists()


# --- PrusaLink: HTTP upload, start and poll -------------------------------------------------------------------

PRUSA_SAMPLE = "calibration-cube_0.3mm_15pct_PLA_COREONE.bgcode"


@pytest.fixture
def prusa_sim():
    with PrusaLinkSimulator(password=PRUSA_PASSWORD, speed=SPEED) as simulator:
        yield simulator


@pytest.fixture
def run_tasks_now(monkeypatch):
    """django-q2 tasks run in this process when they are queued (the PrusaLink start is one)."""
    monkeypatch.setattr("django_q.conf.Conf.SYNC", True)


def test_a_queued_job_prints_on_a_simulated_prusalink_and_books_its_grams_once(prusa_sim, run_tasks_now):
    printer = printer_services.printer_create(name="Loop Core One", driver=Driver.PRUSALINK, host=prusa_sim.host,
                                              port=prusa_sim.port, model="Core One", secret=PRUSA_PASSWORD)
    printer_services.printer_poll(printer=printer)
    version, made = _catalog_version(PRUSA_SAMPLE, "LOOP-CUBE-ORANGE")
    fed = _spool("PLA", "#FF8000")
    inventory_services.filament_update(filament=fed.filament, cost_per_kg=Decimal("24.99"))
    services.spool_load(printer=printer, tray=0, spool=fed)
    job = services.print_job_create(version=version)

    sent = services.print_job_dispatch(job=job)
    assert sent.status == PrintJobStatus.SENT and sent.printer_id == printer.pk
    assert prusa_sim.uploads == [made.name] and prusa_sim.find_file(made.name).content == made.data
    deadline = time.monotonic() + 20
    attempt = None
    while time.monotonic() < deadline:
        prusa_sim.advance(0.5)
        printer_services.printer_poll(printer=printer)
        attempt = PrintAttempt.objects.filter(job=job, booked_at__isnull=False).select_related("printer_job").first()
        if attempt is not None:
            break
    assert attempt is not None, prusa_sim.jobs
    assert prusa_sim.jobs == [(made.name, "FINISHED")]
    job.refresh_from_db()
    assert job.status == PrintJobStatus.COMPLETED and attempt.outcome == AttemptOutcome.COMPLETED
    stated = _stated_grams(made)
    slot = SlotAllocation.objects.get(attempt=attempt)
    assert (slot.spool_id, slot.spool_source) == (fed.pk, SpoolSource.LOADED)
    assert slot.grams_booked.quantize(Decimal("0.01")) == stated[0]

    _replay_end(attempt.printer_job)
    printer_services.printer_poll(printer=printer)  # the printer still shows the finished job
    fed.refresh_from_db()
    movements = _booked(fed)
    assert len(movements) == 1 and movements[0].delta_grams == -stated[0]
    assert fed.remaining_grams == spool_ledger_total(spool=fed)
    product = Product.objects.get(variant=version.variant)
    assert product_units(product=product) == 1 and ProductMovement.objects.filter(product=product).count() == 1
    # The print's cost: the grams booked at the spool's price, the time the printer took; the product's unit cost.
    job.refresh_from_db()
    attempt.refresh_from_db()
    assert job.cost_currency == settings.PRODUCTION_CURRENCY and job.cost_total == attempt.cost_total
    assert job.cost_material == costs.cents(slot.grams_booked * Decimal("24.99") / 1000) > 0
    assert attempt.cost_inputs["time"]["from"] == "printer" and attempt.cost_inputs["material"][0]["spool"] == fed.code
    product.refresh_from_db()
    assert product.unit_cost == job.cost_total == Decimal(job.cost_inputs["unit_cost"])
