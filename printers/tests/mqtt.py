"""Fixtures for tests over a real Mosquitto broker with fake Bambu printers (no skips: no broker → fail)."""

import time

import pytest

from printers import services
from printers.choices import COMMAND_DONE, Driver, PrinterState
from printers.listener import Listener
from printers.models import PrinterLiveState
from printers.simulators.bambu import FakeBambuPrinter
from printers.simulators.broker import MosquittoBroker

ACCESS_CODE = "a1b2c3d4"
SERIAL = "01S00C900000001"


@pytest.fixture
def fast_mqtt(settings):
    settings.BAMBU_PLAIN_MQTT_PORTS = ()
    settings.BAMBU_CA_FILE = ""
    settings.BAMBU_WATCHDOG_SECONDS = 0.6
    settings.BAMBU_BACKOFF_MIN_SECONDS = 0.05
    settings.BAMBU_BACKOFF_MAX_SECONDS = 0.3
    settings.BAMBU_COMMAND_TIMEOUT_SECONDS = 0.8
    settings.PRINTER_STATE_WRITE_SECONDS = 0.3
    settings.PRINTER_RECONCILE_SECONDS = 0.2
    return settings


@pytest.fixture
def broker(tmp_path):
    with MosquittoBroker(tmp_path / "broker", users={"bblp": ACCESS_CODE, SERIAL: ACCESS_CODE},
                         tls_names=[SERIAL]) as running:
        yield running


def make_sim(broker, *, profile: str = "A1", **options) -> FakeBambuPrinter:
    options.setdefault("tick_seconds", 0.05)
    options.setdefault("prepare_ticks", 3)
    options.setdefault("print_ticks", 12)
    options.setdefault("cancel_clear_ticks", 4)
    return FakeBambuPrinter(serial=SERIAL, host=broker.host, port=broker.port, access_code=ACCESS_CODE,
                            profile=profile, ca_file=str(broker.ca_file), **options)


@pytest.fixture
def sim(broker):
    printer = make_sim(broker).start()
    yield printer
    printer.stop()


@pytest.fixture
def bambu_printer(db, broker):
    return services.printer_create(name="A1 one", driver=Driver.BAMBU, host=broker.host, port=broker.port,
                                   model="A1", serial=SERIAL, secret=ACCESS_CODE)


@pytest.fixture
def listener(fast_mqtt):
    """A listener stepped by the test's own thread (all database work stays on it)."""
    running = Listener()
    yield running
    running.close()


def live(printer) -> PrinterLiveState:
    return PrinterLiveState.objects.get(printer=printer)


def step_until(listener, predicate, *, timeout: float = 8.0, what: str = "condition"):
    """Step `listener` (anything with step(), or None) until `predicate()` is true; returns its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if listener is not None:
            listener.step()
        result = predicate()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def state_is(printer, *states):
    return lambda: live(printer).state in states


def start_long_print(listener, printer, sim) -> None:
    """Once `printer` is idle, the fake printer starts a job long enough to outlast the test; returns when printing."""
    sim.print_ticks = 400
    step_until(listener, state_is(printer, PrinterState.IDLE))
    sim.start_job()
    step_until(listener, state_is(printer, PrinterState.PRINTING))


def answered(command):
    """A predicate for step_until: the command has its outcome (it returns the command, refreshed)."""
    def check():
        command.refresh_from_db()
        return command if command.status in COMMAND_DONE else None

    return check
