"""The printer listener behind `manage.py run_printers`: one session per active printer whose driver keeps
one (`ConnectionMode.PUSH`: Bambu's MQTT); it is those drivers' runner.

Threads: the connections (opened by each printer's driver, `open_connection`) share one network loop
(`MqttNetwork`: one thread for the I/O of every connection, a few connector threads for TLS
handshakes, at most BAMBU_CONNECTS_PER_SECOND new connections a second) and only put events
(`drivers.base.StateEvent`, `OfflineEvent`, `AckEvent`) on a queue. Everything that touches the
database happens in `Listener.step()`, on one thread:

- reconcile (every PRINTER_RECONCILE_SECONDS): start a connection for each active printer of a PUSH
  driver with credentials (and a serial where its driver needs one), restart it when its host,
  port, serial or credentials change, stop it when the printer is deactivated or deleted — no
  restart of the process needed;
- states: a changed state (state, job, errors) is written at once through
  `services.printer_apply_states`, in arrival order, so no transition is lost or merged away;
  WRITE_BATCH printers share one transaction of a few queries, and changes are committed before
  anything else is written. Reports that change only telemetry are coalesced to the newest and
  written at most every PRINTER_STATE_WRITE_SECONDS per printer, oldest first, in the same batches,
  within TELEMETRY_STEP_SECONDS of each step. The first report of every connection is written as a
  sync (printers.lifecycle): however the previous run_printers ended — a clean stop, kill -9, out of
  memory, a reboot — the state found on reconnecting is never taken for a change that was seen;
- commands: pending PrinterCommand rows of its printers are sent on the printer's connection; the
  acknowledgement (matched by sequence_id) finishes them; without one after
  BAMBU_COMMAND_TIMEOUT_SECONDS a command still succeeds when the printer visibly reacted, and fails
  with the driver's explanation when it did not (Bambu: enable LAN Only mode and Developer Mode,
  printers.md §1.8).
"""

import logging
import queue
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import close_old_connections, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from fablab.exceptions import ApplicationError
from printers import conf, services
from printers.choices import CommandStatus
from printers.drivers import registry
from printers.drivers.base import AckEvent, ConnectionMode, OfflineEvent, PrinterDriver, PushConnection, StateEvent
from printers.drivers.mqtt import MqttNetwork
from printers.models import Printer, PrinterCommand
from printers.state import NormalisedState, offline_state

logger = logging.getLogger(__name__)

# Time one step may spend writing telemetry-only updates (a step runs about ten times a second).
TELEMETRY_STEP_SECONDS = 0.05
# Printers whose states are written together, in one transaction of a handful of queries.
WRITE_BATCH = 100


@dataclass
class _PrinterSlot:
    printer: Printer
    fingerprint: tuple
    connection: PushConnection
    driver: PrinterDriver
    pending: list = field(default_factory=list)  # [(NormalisedState, at, sync)] not yet written
    last_key: tuple | None = None  # key of the last state handed to the writer
    last_write: float = 0.0
    control: str = ""  # fingerprint of what commands change (gcode_state, stage, lights)
    signature_required: bool = False
    started: float = field(default_factory=time.monotonic)  # when this connection was started
    heard: bool = False  # a report or an offline verdict came from this connection


@dataclass
class _InFlight:
    command: PrinterCommand
    printer_id: int
    sequence_id: str
    deadline: float
    control_at_send: str


def _state_key(state: NormalisedState) -> tuple:
    return (state.state, state.job_key, tuple(sorted(e.get("code", "") for e in state.errors)))


class Listener:
    def __init__(self, *, connection_factory=None, network: MqttNetwork | None = None,
                 shard: tuple[int, int] = (0, 1)) -> None:
        # connection_factory(printer_id=, access=, on_event=, network=): an unstarted connection (tests);
        # None: each printer's driver opens it.
        self.connection_factory = connection_factory
        # (index, count): this listener serves the printers whose id % count == index, so a large
        # fleet can be spread over several processes (and cores); every printer still has one connection.
        self.shard_index, self.shard_count = shard
        if not (self.shard_count >= 1 and 0 <= self.shard_index < self.shard_count):
            raise ValueError(f"Invalid shard {shard}: the index must be at least 0 and below the count.")
        self.network = network
        self.slots: dict[int, _PrinterSlot] = {}
        self._dirty: set[int] = set()  # printers with pending states
        self._unheard: set[int] = set()  # printers whose connection has sent nothing yet
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self.in_flight: dict[tuple[int, str], _InFlight] = {}
        self._last_reconcile = float("-inf")
        # busy_seconds: time spent in step(), the listener's own load (compare with wall-clock time).
        self.stats = {"reports": 0, "writes": 0, "transitions": 0, "commands": 0, "errors": 0, "busy_seconds": 0.0}

    # -- connections --

    @staticmethod
    def _fingerprint(printer: Printer) -> tuple:
        return (printer.host, printer.effective_port, printer.serial, bytes(printer.credentials_ciphertext))

    def _network(self) -> MqttNetwork:
        if self.network is None or not self.network.running:
            self.network = MqttNetwork(
                name="bambu", connects_per_second=float(conf.value("BAMBU_CONNECTS_PER_SECOND")),
                connect_threads=int(conf.value("BAMBU_CONNECT_THREADS")),
            ).start()
        return self.network

    def _connect(self, printer: Printer, driver: PrinterDriver) -> PushConnection | None:
        try:
            access = services.printer_access(printer=printer)
        except ApplicationError as exc:
            logger.warning("Printer %s: %s", printer.pk, exc.message)
            return None
        if self.connection_factory is not None:
            connection = self.connection_factory(printer_id=printer.pk, access=access, on_event=self.events.put,
                                                 network=self._network())
        else:
            connection = driver.open_connection(access, on_event=self.events.put, network=self._network())
        return connection.start()

    @staticmethod
    def _drivers() -> dict[str, PrinterDriver]:
        return {name: registry.get(name) for name in registry.names(mode=ConnectionMode.PUSH)}

    def reconcile(self) -> None:
        self._last_reconcile = time.monotonic()
        drivers = self._drivers()
        wanted = {
            p.pk: p for p in Printer.objects.filter(driver__in=drivers, is_active=True)
            .exclude(credentials_ciphertext=b"")
            if self.serves(p.pk) and (p.serial or not drivers[p.driver].requires_serial)
        }
        for printer_id in list(self.slots):
            slot = self.slots[printer_id]
            printer = wanted.get(printer_id)
            if printer is None or self._fingerprint(printer) != slot.fingerprint:
                logger.info("Printer %s was %s; closing its connection.", printer_id,
                            "changed" if printer else "removed or deactivated")
                self._drop_slot(printer_id)
        for printer_id, printer in wanted.items():
            if printer_id not in self.slots:
                driver = drivers[printer.driver]
                connection = self._connect(printer, driver)
                if connection is not None:
                    self.slots[printer_id] = _PrinterSlot(printer, self._fingerprint(printer), connection, driver)
                    self._unheard.add(printer_id)

    def _drop_slot(self, printer_id: int) -> None:
        slot = self.slots.pop(printer_id)
        self._dirty.discard(printer_id)
        slot.connection.stop(timeout=2)
        self._flush_slot(slot)
        for key in [k for k in self.in_flight if k[0] == printer_id]:
            flight = self.in_flight.pop(key)
            services.command_finish(command=flight.command, ok=False,
                                    error=_("the printer's connection was closed before it answered"))

    # -- the step --

    def step(self, *, now: float | None = None) -> None:
        started = time.monotonic()
        now = started if now is None else now
        try:
            if now - self._last_reconcile >= float(conf.value("PRINTER_RECONCILE_SECONDS")):
                self.reconcile()
            self._drain_events()
            self._unheard_offline()
            self._take_commands()
            self._expire_commands(now)
            self.flush(now=now)
        finally:
            self.stats["busy_seconds"] = round(self.stats["busy_seconds"] + time.monotonic() - started, 3)

    def _drain_events(self) -> None:
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return
            slot = self.slots.get(event.printer_id)
            if slot is None:
                continue
            slot.heard = slot.heard or isinstance(event, StateEvent | OfflineEvent)
            if isinstance(event, StateEvent):
                self.stats["reports"] += 1
                slot.control, slot.signature_required = event.fingerprint, event.signature_required
                self._queue_state(slot, event.state, event.at, sync=event.first)
                self._dirty.add(event.printer_id)
            elif isinstance(event, OfflineEvent):
                self._queue_state(slot, offline_state(reason=event.reason), event.at)
                self._dirty.add(event.printer_id)
            elif isinstance(event, AckEvent):
                self._acknowledged(event)

    def _unheard_offline(self) -> None:
        """A printer that has not reported within the watchdog since its connection started is offline.

        The connection itself reports offline only after it was online; a printer this process never
        reached would otherwise keep whatever state a killed predecessor left in its live row.
        """
        if not self._unheard:
            return
        limit = time.monotonic() - float(conf.value("BAMBU_WATCHDOG_SECONDS"))
        for printer_id in list(self._unheard):
            slot = self.slots.get(printer_id)
            if slot is None or slot.heard:
                self._unheard.discard(printer_id)
            elif slot.started <= limit:
                self._unheard.discard(printer_id)
                slot.heard = True
                self._queue_state(slot, offline_state(reason=_("no report since the printer listener started")),
                                  timezone.now())
                self._dirty.add(printer_id)

    @staticmethod
    def _queue_state(slot: _PrinterSlot, state: NormalisedState, at, *, sync: bool = False) -> None:
        """Queue a state for writing; `sync`: the first report of a connection (never merged into
        an earlier state, and a later equal state merged into it stays a sync)."""
        if slot.pending and not sync and _state_key(slot.pending[-1][0]) == _state_key(state):
            slot.pending[-1] = (state, at, slot.pending[-1][2])  # the same state again: keep the newest telemetry
        else:
            slot.pending.append((state, at, sync))  # a change is never merged away

    @staticmethod
    def _is_change(slot: _PrinterSlot) -> bool:
        return len(slot.pending) > 1 or _state_key(slot.pending[0][0]) != slot.last_key

    def flush(self, *, now: float | None = None, everything: bool = False) -> int:
        """Write what is due: every change at once, then telemetry within this step's budget.

        Changes (state, job or errors) of all printers are written first, WRITE_BATCH printers per
        transaction, so that a backlog becomes visible in parts and nothing else delays their commit.
        Then telemetry-only updates at least PRINTER_STATE_WRITE_SECONDS old are written, oldest
        first, in batches until TELEMETRY_STEP_SECONDS have passed; the rest waits for the next step
        (under load telemetry gets older; changes never wait); time spent on changes counts against
        that budget. `everything` writes all pending states.
        """
        now = time.monotonic() if now is None else now
        candidates = list(self.slots.values()) if everything else [self.slots[i] for i in self._dirty
                                                                   if i in self.slots]
        pending = [slot for slot in candidates if slot.pending]
        changes = [slot for slot in pending if everything or self._is_change(slot)]
        written = 0
        started = time.monotonic()
        for first in range(0, len(changes), WRITE_BATCH):
            written += self._write_batch(changes[first:first + WRITE_BATCH], now=now)
        if everything:
            return written
        period = float(conf.value("PRINTER_STATE_WRITE_SECONDS"))
        stale = sorted((slot for slot in pending if slot.pending and now - slot.last_write >= period),
                       key=lambda slot: slot.last_write)
        deadline = started + TELEMETRY_STEP_SECONDS
        for first in range(0, len(stale), WRITE_BATCH):  # at least one batch per step: never starved
            written += self._write_batch(stale[first:first + WRITE_BATCH], now=now)
            if time.monotonic() >= deadline:
                break
        return written

    def _write_batch(self, slots: list[_PrinterSlot], *, now: float) -> int:
        """Write the pending states of these printers in one transaction, in few queries.

        Round by round: every printer's oldest pending state in one `services.printer_apply_states`
        call, then the next ones, so each printer's states are recorded in arrival order. When the
        batch fails it is rolled back and its printers are written one by one (`_flush_slot`), so one
        printer's bad state cannot hold back the others.
        """
        try:
            with transaction.atomic():
                for index in range(max(len(slot.pending) for slot in slots)):
                    services.printer_apply_states(reports=[(slot.printer, *slot.pending[index]) for slot in slots
                                                           if index < len(slot.pending)])
        except Exception:  # noqa: BLE001 - write these printers one by one instead
            self.stats["errors"] += 1
            logger.exception("Recording the states of %s printers at once failed; writing them one by one.",
                             len(slots))
            return sum(self._flush_slot(slot, now=now) for slot in slots)
        return sum(self._written(slot, [state for state, _at, _sync in slot.pending], now=now) for slot in slots)

    def _flush_slot(self, slot: _PrinterSlot, *, now: float | None = None) -> int:
        states = []
        for state, at, sync in slot.pending:
            try:  # printer_apply_state is atomic: a failure rolls back only its own savepoint
                services.printer_apply_state(printer=slot.printer, state=state, at=at, sync=sync)
            except Exception:  # noqa: BLE001 - one printer's bad state must not stop the fleet
                self.stats["errors"] += 1
                logger.exception("Recording the state of printer %s failed.", slot.printer.pk)
                continue
            states.append(state)
        return self._written(slot, states, now=now)

    def _written(self, slot: _PrinterSlot, states: list[NormalisedState], *, now: float | None) -> int:
        """Bookkeeping after a slot's pending states were written (`states`: those that succeeded)."""
        for state in states:
            key = _state_key(state)
            if key[0] != (slot.last_key or (None,))[0]:
                self.stats["transitions"] += 1
            slot.last_key = key
        slot.pending.clear()
        self._dirty.discard(slot.printer.pk)
        slot.last_write = time.monotonic() if now is None else now
        self.stats["writes"] += len(states)
        return len(states)

    def serves(self, printer_id: int) -> bool:
        return printer_id % self.shard_count == self.shard_index

    # -- commands --

    def _take_commands(self) -> None:
        max_age = timezone.now() - timedelta(seconds=float(conf.value("BAMBU_COMMAND_TIMEOUT_SECONDS"))
                                             + services.PICKUP_MARGIN_SECONDS)
        commands = list(PrinterCommand.objects.filter(status=CommandStatus.PENDING, created_at__gte=max_age,
                                                      printer__driver__in=self._drivers()).order_by("id"))
        for command in commands:
            if not self.serves(command.printer_id):
                continue  # another listener's printer
            slot = self.slots.get(command.printer_id)
            if slot is None:
                services.command_finish(command=command, ok=False, error=_(
                    "run_printers has no connection to this printer (inactive, no serial or no access code)."))
                continue
            try:
                sequence_id = slot.connection.send_command(command.action, command.params)
            except ConnectionError:
                services.command_finish(command=command, ok=False,
                                        error=_("not connected to the printer right now; try again later"))
                continue
            except (ValueError, KeyError) as exc:
                services.command_finish(command=command, ok=False, error=str(exc))
                continue
            self.stats["commands"] += 1
            services.command_mark_sent(command=command, sequence_id=sequence_id)
            self.in_flight[(command.printer_id, sequence_id)] = _InFlight(
                command, command.printer_id, sequence_id,
                time.monotonic() + float(conf.value("BAMBU_COMMAND_TIMEOUT_SECONDS")), slot.control)

    def _acknowledged(self, event: AckEvent) -> None:
        flight = self.in_flight.pop((event.printer_id, event.sequence_id), None)
        if flight is None:
            return
        if event.result == "success":
            services.command_finish(command=flight.command, ok=True)
        else:
            services.command_finish(command=flight.command, ok=False, error=_("the printer refused: %(reason)s")
                                    % {"reason": event.reason or event.result})

    def _expire_commands(self, now: float) -> None:
        for key, flight in list(self.in_flight.items()):
            if now < flight.deadline:
                continue
            del self.in_flight[key]
            slot = self.slots.get(flight.printer_id)
            if slot is not None:
                slot.connection.forget(flight.sequence_id)
            if slot is not None and slot.control != flight.control_at_send:
                services.command_finish(command=flight.command, ok=True)  # not acknowledged, but it worked
                continue
            error = slot.driver.ignored_command_error(signature_required=slot.signature_required) \
                if slot is not None else _("The printer neither acknowledged the command nor changed.")
            services.command_finish(command=flight.command, ok=False, error=error)

    # -- running --

    def close(self) -> None:
        """Close every connection; the printers show offline, since nobody listens to them any more."""
        for printer_id in list(self.slots):
            slot = self.slots[printer_id]
            self._queue_state(slot, offline_state(reason=_("the printer listener stopped")), timezone.now())
            self._drop_slot(printer_id)
        if self.network is not None:
            self.network.stop()
            self.network = None

    def run(self, stop, *, interval: float = 0.1) -> None:
        """Step until `stop` (a threading.Event) is set; then close every connection."""
        try:
            while not stop.is_set():
                try:
                    self.step()
                except Exception:  # noqa: BLE001 - e.g. the database restarting: retry on the next step
                    self.stats["errors"] += 1
                    logger.exception("The printer listener's step failed; retrying.")
                    close_old_connections()
                    stop.wait(1.0)
                stop.wait(interval)
        finally:
            self.close()
