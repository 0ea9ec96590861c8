"""Fake Bambu Lab printers that speak the LAN MQTT protocol to a broker (printers.md §4.1).

Each `FakeBambuPrinter` is an MQTT client of a broker (see `broker.MosquittoBroker`, or the local
Mosquitto in the demo), user = its serial: it reads `device/<serial>/request` and writes
`device/<serial>/report`. What it reports is the project's own payload model of its printer model
(`payloads.bambu_status`: X1C, P1S or A1; the short names X1 and P1 still work); no captured
payloads are needed.

- X1C: every push is the full object (`msg` 0); P1S/A1: the full object only in answer to
  `pushall`, otherwise one delta (`msg` 1) per tick with only the changed keys — temperatures
  follow their targets with a little noise, `wifi_signal` flips, and every few ticks the AMS block
  comes alone, without `vt_tray`;
- `sequence_id` is the printer's own string counter; every request is acknowledged by echoing its
  sequence_id with `result: "success"` (unless `ack_commands` is False);
- `get_version` → the model's module list; `pushall` → full object; `pushing.start` → pushes again;
- `project_file` → checks the file exists on its SD card (`storage`, e.g. a `BambuFTPSSimulator` the
  app uploaded the file to; files given with `files` or `add_file`) and every `ams_mapping` entry names
  a loaded tray (else stays in PREPARE / `stg_cur` 77 "preparing AMS" forever, like the real printer)
  → PREPARE with `gcode_file_prepare_percent` 0 → 100 (P1 quirk: stops at 99) → RUNNING → FINISH
  (sticky until the next job or `clear_plate()`). A busy printer raises HMS 0500_4004 and changes
  nothing;
- a file it has the bytes of is printed the way its firmware runs it (`printfile`): for its sliced time
  divided by `speed`, with `mc_percent` and `mc_remaining_time` from the file's `M73` lines and
  `layer_num` from its layer changes (a `.gcode.3mf` prints the plate `param` names). A file it knows
  only by name (tests) prints `print_ticks` ticks and `layers` layers;
- `pause`/`resume` → PAUSE (`stg_cur` 16) / RUNNING; `stop` → a delta with `print_error` 50348044,
  then FAILED, `print_error` back to 0 a few ticks later (with the cancel-echo HMS while it lasts);
  `ledctrl` → `lights_report`; `print_speed` → `spd_lvl`; `gcode_line` → ack only; unknown → ignored.

Jobs that go wrong on purpose: `fail_at_layer(k)` — the printer reports layer k, then FAILED with a
`print_error` and its HMS code (by default 0700_8006, the AMS cannot feed filament); `cancel_at_layer(k)`
— layer k, then the cancel above. Both apply to the job running, or else to the next one. With
`auto_jobs` the printer starts the files on its SD card by itself, one after the other, as an operator
at the printer would: a few seconds after it starts, and `job_gap_seconds` after each job's end (the
plate is cleared, then the next file starts). Without `auto_jobs`, `clear_plate_seconds` only clears the
plate that long after a job's end, and the printer waits idle for the next file it is sent (the demo's
print queue feeds it).

Faults: `silent` (session up, no publishes; `pushing.start` wakes it unless `ignore_start`),
`send_raw()` for truncated JSON / invalid UTF-8, `raise_hms()` / `clear_hms()`, `ack_commands=False`,
`developer_mode=False` (sets the `fun` bit 0x20000000, drops control commands and raises HMS
0500_0500_0001_0007 while still answering pushall/get_version), `disconnect()` / `reconnect()`.

Time is in ticks of `tick_seconds` (1 s like a printer; 0.05 s in tests); a tick prints
`tick_seconds * speed` seconds of the file. No fake printer has a thread of its own: their MQTT I/O
and their ticks run on an `MqttNetwork` loop (the driver's, one per fleet or one shared by the
process), so one process can run hundreds of them. Each printer starts ticking at a random phase, like
a real fleet, and remembers in `changes` when it first published each new `gcode_state` (wall-clock
time; the fleet benchmark measures lag from there).
"""

import json
import logging
import random
import threading
import time

import paho.mqtt.client as mqtt

from printers.drivers.mqtt import BufferedClient, MqttNetwork, shared_network
from printers.simulators import payloads
from printers.simulators.printfile import PrintFileError, PrintRun, minutes, plate_from_param, read_print_file
from printers.simulators.storage import BAMBU_FORMATS, builtin_print_file

logger = logging.getLogger(__name__)

CANCEL_PRINT_ERROR = 50348044
CANCEL_ECHO_HMS = {"attr": 0x0300_0000 | 0x0000, "code": 0x0004_400C}
BUSY_HMS = {"attr": 0x0500_0000, "code": 0x0003_4004}
SIGNATURE_HMS = {"attr": 0x0500_0500, "code": 0x0001_0007}
SIGNATURE_REQUIRED_BIT = 0x20000000
AMS_FEED_ERROR = 0x0700_8006  # "The AMS cannot feed filament": what fail_at_layer reports by default
FILE_READ_ERROR = 0x0500_C010  # the SD card could not be read: a file that is no print file
CONTROL_COMMANDS = {"pause", "resume", "stop", "project_file", "gcode_line", "print_speed", "ledctrl",
                    "ams_control", "ams_change_filament", "skip_objects"}
PROFILES = tuple(payloads.BAMBU_MODELS)  # X1C, P1S, A1 (bambu_model() also takes X1 and P1)
DEFAULT_NOZZLE_C, DEFAULT_BED_C = 220, 60
ROOM_C = 24.0


def fake_serial(profile: str, index: int) -> str:
    try:
        prefix = payloads.bambu_model(profile).serial_prefix
    except ValueError:
        prefix = "01P"
    return f"{prefix}SIM{index:09d}"


def job_name(file_name: str) -> str:
    """The job's name a printer shows (`subtask_name`): the file's name without .gcode.3mf / .3mf / .gcode."""
    for suffix in (".gcode.3mf", ".3mf", ".gcode"):
        if file_name.lower().endswith(suffix):
            return file_name[: -len(suffix)]
    return file_name


def hms_of(print_error: int) -> dict:
    """The HMS entry a firmware raises with a print_error: same module and error, severity serious."""
    return {"attr": print_error & 0xFFFF0000, "code": 0x0002_0000 | (print_error & 0xFFFF)}


def _tray_ids(state: dict) -> set[int]:
    ids = set()
    ams = state.get("ams") or {}
    for unit in ams.get("ams") or []:
        unit_id = int(unit.get("id", 0))
        for tray in unit.get("tray") or []:
            if tray.get("tray_type"):
                tray_id = int(tray.get("id", 0))
                ids.add(unit_id + tray_id if unit_id >= 128 else unit_id * 4 + tray_id)
    if (state.get("vt_tray") or {}).get("tray_type"):
        ids.add(254)
    return ids


def _storage_path(url: str, file: str) -> str:
    """The path on the storage a `project_file` names: file:///sdcard/x.3mf and ftp:///x.3mf are /x.3mf."""
    for prefix in ("file:///sdcard/", "ftp:///", "file:///"):
        if url.startswith(prefix):
            return "/" + url[len(prefix):].lstrip("/")
    return "/" + (url.rsplit("/", 1)[-1] if url else file).lstrip("/")


class FakeBambuPrinter:
    def __init__(self, *, serial: str, host: str, port: int, access_code: str, profile: str = "X1",
                 tick_seconds: float = 1.0, prepare_ticks: int = 3, print_ticks: int = 20, cancel_clear_ticks: int = 3,
                 files=("benchy.gcode.3mf", "cube.gcode.3mf"), ca_file: str | None = None,
                 auto_jobs: bool = False, layers: int = 120, network: MqttNetwork | None = None,
                 storage=None, speed: float = 1.0, job_gap_seconds: float = 40.0,
                 clear_plate_seconds: float = 0.0) -> None:
        """`files`: names of files on the SD card (printed by `print_ticks`), or {name: bytes} of files it
        reads and prints by their content. `speed`: how many times faster than the slicer's time it prints.
        `clear_plate_seconds` (without `auto_jobs`): the plate is cleared by itself this long after a job
        ended, and the printer waits idle for the next job it is sent (0: until `clear_plate()`)."""
        try:
            self.model = payloads.bambu_model(profile)
        except ValueError:
            raise ValueError(f"Unknown profile {profile!r}; choose one of {', '.join(PROFILES)}.") from None
        if speed <= 0:
            raise ValueError("speed must be positive.")
        self.serial, self.host, self.port = serial, host, port
        self.profile = profile
        self.full_pushes = self.model.full_pushes
        self.idle_stage = self.model.idle_stage
        self.tick_seconds = tick_seconds
        self.prepare_ticks, self.print_ticks, self.cancel_clear_ticks = prepare_ticks, print_ticks, cancel_clear_ticks
        self._lock = threading.RLock()  # before add_file below
        self.files: set[str] = set()  # names only: printed by print_ticks
        self.sd_files: dict[str, bytes] = {}  # name -> bytes: printed as the file says
        if isinstance(files, dict):
            for name, data in files.items():
                self.add_file(name, data)
        else:
            self.files = set(files)
        self.storage = storage  # anything with has_file(path) (and read_file(path)), e.g. a BambuFTPSSimulator
        self.auto_jobs = auto_jobs
        self.layers = layers
        self.speed = float(speed)
        self.job_gap_seconds = job_gap_seconds
        self.clear_plate_seconds = float(clear_plate_seconds or 0.0)
        # Fault switches and test hooks
        self.silent = False
        self.ignore_start = False
        self.ack_commands = True
        self.developer_mode = True
        self.received: list[dict] = []
        self.published = 0
        self.changes: list[tuple[str, float]] = []  # (gcode_state, time.time()) of its first publish
        self.jobs: list[tuple[str, str]] = []  # (file name, outcome) of every job that ended
        self.network = network

        self.version = payloads.bambu_version(self.model, serial)
        self.state = payloads.bambu_status(self.model)
        self._reset_idle()
        self._last_sent: dict = {}
        self._sequence = random.randint(1000, 5000)
        self._job_tick = 0
        self._run: PrintRun | None = None  # the job being printed from its file's content
        self._planned: tuple[str, int, int] | None = None  # (outcome, layer, print_error) for the next job
        self._run_error = AMS_FEED_ERROR  # the print_error of the running job's planned failure
        self._legacy_stop: tuple[str, int, int] | None = None  # the same, for a job printed by print_ticks
        self._cancel_ticks_left = 0
        self._idle_ticks = 0
        self._first_job_seconds = random.uniform(2.0, 8.0)
        self._auto_index = random.randrange(1 << 16)
        self._ticks = 0
        self._stop = threading.Event()
        self._offline = False  # disconnect() was called: stay away until reconnect()
        self._session = False
        self._connecting = False
        self._failures = 0
        self._next_attempt = 0.0
        self._next_tick = 0.0
        self._published_state = None
        self.client = BufferedClient(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sim-{serial}",
                                     protocol=mqtt.MQTTv311, clean_session=True)
        self.client.username_pw_set(serial, access_code)
        if ca_file:
            self.client.tls_set(ca_certs=str(ca_file))
            self.client.tls_insecure_set(True)  # the broker's certificate is named after a serial, not 127.0.0.1
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message

    def __repr__(self) -> str:
        return f"<FakeBambuPrinter {self.serial} {self.model.key} {self.state.get('gcode_state')}>"

    # -- lifecycle --

    def start(self) -> "FakeBambuPrinter":
        if self.network is None:
            self.network = shared_network("bambu-simulators", connects_per_second=200.0)
        network = self.network
        network.add(self)
        first = time.monotonic() + random.uniform(0, self.tick_seconds)
        network.call_soon(lambda: self._schedule_tick(first))
        return self

    def stop(self) -> None:
        self._stop.set()
        if self.network is not None:
            self.network.remove(self)

    def disconnect(self) -> None:
        """Drop the MQTT session (a printer that lost its network) until reconnect()."""
        self._offline = True
        self.network.run_in_loop(self._close_session)

    def reconnect(self) -> None:
        self._failures, self._next_attempt, self._offline = 0, 0.0, False

    # -- the network loop's calls --

    def _schedule_tick(self, when: float) -> None:
        self._next_tick = when
        self.network.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        if self._stop.is_set():
            return
        try:
            self.tick()
        except Exception:  # noqa: BLE001 - a simulator must keep running
            logger.exception("Simulator %s tick failed.", self.serial)
        now = time.monotonic()
        following = self._next_tick + self.tick_seconds
        self._schedule_tick(following if following > now - self.tick_seconds else now + self.tick_seconds)

    def network_tick(self, now: float) -> None:
        if self._stop.is_set() or self._offline:
            return
        if self._session:
            rc = self.client.loop_misc()
            if rc != mqtt.MQTT_ERR_SUCCESS:
                self.network_lost(rc)
        elif not self._connecting and now >= self._next_attempt:
            self._connecting = True
            self.network.request_connect(self)

    def network_connect(self) -> None:
        self.client.connect(self.host, self.port, keepalive=30)

    def network_connected(self) -> None:
        self._connecting, self._session = False, True

    def network_connect_failed(self, exc: Exception) -> None:
        self._connecting = False
        self._retry_later()

    def network_lost(self, rc) -> None:
        self._close_session()
        self._retry_later()

    def _close_session(self) -> None:
        self._session = False
        self.network.close_client(self.client)

    def _retry_later(self) -> None:
        self._failures += 1
        first = min(1.0, max(self.tick_seconds, 0.05))
        self._next_attempt = time.monotonic() + min(2.0, first * 2 ** min(self._failures - 1, 8))

    # -- state --

    def _reset_idle(self) -> None:
        self.state.update({
            "gcode_state": "IDLE", "mc_percent": 0, "mc_remaining_time": 0, "layer_num": 0, "total_layer_num": 0,
            "subtask_name": "", "gcode_file": "", "print_error": 0, "hms": [], "stg_cur": self.idle_stage,
            "task_id": "0", "subtask_id": "0", "gcode_file_prepare_percent": "0", "print_type": "idle",
            "fun": "3EC18FFF9CFF",
        })
        self._set_targets(0, 0)

    def _set_targets(self, nozzle: float, bed: float) -> None:
        chamber = ROOM_C + (10.0 if bed else 0.0) if self.model.chamber_sensor else None
        payloads.bambu_set_temperatures(
            self.state, self.model, nozzle=float(self.state.get("nozzle_temper") or ROOM_C),
            bed=float(self.state.get("bed_temper") or ROOM_C), nozzle_target=nozzle, bed_target=bed, chamber=chamber)

    def _next_sequence(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    def _fun(self, developer_mode: bool) -> None:
        bits = int(self.state.get("fun") or "0", 16)
        bits = bits & ~SIGNATURE_REQUIRED_BIT if developer_mode else bits | SIGNATURE_REQUIRED_BIT
        self.state["fun"] = f"{bits:X}"

    def set_developer_mode(self, enabled: bool) -> None:
        with self._lock:
            self.developer_mode = enabled
            self._fun(enabled)

    def raise_hms(self, attr: int, code: int) -> None:
        with self._lock:
            self.state["hms"] = [*self.state.get("hms", []), {"attr": attr, "code": code}]

    def clear_hms(self) -> None:
        with self._lock:
            self.state["hms"] = []

    # -- files and jobs (the Python API of tests, the demo and the control file) --

    def add_file(self, name: str, data: bytes) -> None:
        """Put a file on the printer's SD card (its root), e.g. a sample file for automatic jobs."""
        with self._lock:
            self.sd_files[name.lstrip("/")] = bytes(data)

    def start_job(self, file_name: str = "benchy.gcode.3mf", *, ams_mapping: list[int] | None = None,
                  plate: int = 1) -> bool:
        """Start a job as if `project_file` came (also used by the demo's automatic jobs)."""
        with self._lock:
            return self._project_file({"url": f"file:///sdcard/{file_name}", "file": file_name,
                                       "param": f"Metadata/plate_{plate}.gcode",
                                       "subtask_name": job_name(file_name), "ams_mapping": ams_mapping or []})

    def fail_at_layer(self, layer: int, *, print_error: int = AMS_FEED_ERROR) -> None:
        """The job running (or else the next one) reports layer `layer`, then FAILED with `print_error`."""
        self._stop_at(layer, "failed", print_error)

    def cancel_at_layer(self, layer: int) -> None:
        """The job running (or else the next one) reports layer `layer`, then is cancelled (as by `stop`)."""
        self._stop_at(layer, "cancelled", CANCEL_PRINT_ERROR)

    def _stop_at(self, layer: int, outcome: str, print_error: int) -> None:
        if int(layer) < 1:
            raise ValueError("the layer to stop at counts from 1")
        with self._lock:
            active = self.state.get("gcode_state") in ("PREPARE", "RUNNING", "PAUSE")
            if active and self._run is not None:
                self._run.stop_at(layer, outcome)
                self._run_error = print_error
            elif active:
                self._legacy_stop = (outcome, int(layer), print_error)
            else:
                self._planned = (outcome, int(layer), print_error)

    def clear_plate(self) -> bool:
        """The operator takes the print off the plate: a finished or failed printer is idle again."""
        with self._lock:
            if self.state.get("gcode_state") not in ("FINISH", "FAILED") or self._cancel_ticks_left:
                return False
            self._reset_idle()
            self._run = None
            self._idle_ticks = 0
            return True

    def print_files(self) -> list[str]:
        """The files on the SD card this printer can read and print, in order."""
        names = set(self.sd_files)
        if self.storage is not None and hasattr(self.storage, "root"):
            try:
                names |= {path.name for path in self.storage.root.iterdir() if path.is_file()}
            except (OSError, RuntimeError):
                pass
        return sorted(name for name in names if name.lower().endswith(BAMBU_FORMATS))

    def tick(self) -> None:
        with self._lock:
            self._ticks += 1
            self._advance()
            self._jitter()
            if self.silent:
                return
            if self.full_pushes:
                self._publish_status(full=True)
            elif self._ticks % 7 == 0 and "ams" in self.state:
                self._publish_ams_only()
            else:
                self._publish_status(full=False)

    def _advance(self) -> None:
        s = self.state
        gcode_state = s.get("gcode_state")
        if self._cancel_ticks_left:
            self._cancel_ticks_left -= 1
            if gcode_state == "FAILED" and self._cancel_ticks_left == 0:
                s["print_error"] = 0
                s["hms"] = [h for h in s.get("hms", []) if h != CANCEL_ECHO_HMS]
        if s.get("_stop_pending"):
            s.pop("_stop_pending")
            s.update({"gcode_state": "FAILED", "stg_cur": self.idle_stage, "mc_remaining_time": 0})
            self._set_targets(0, 0)
            self._cancel_ticks_left = self.cancel_clear_ticks
            self._ended("cancelled")
            return
        if gcode_state == "PREPARE":
            if s.get("_stuck_ams"):
                s["stg_cur"] = 77
                return
            self._job_tick += 1
            percent = min(100, self._job_tick * 100 // max(1, self.prepare_ticks))
            if not self.full_pushes:
                percent = min(percent, 99)  # P1/A1 stop at 99 and go RUNNING
            s["gcode_file_prepare_percent"] = str(percent)
            if self._job_tick >= self.prepare_ticks:
                self._job_tick = 0
                if s.get("_unreadable"):
                    self._fail(FILE_READ_ERROR)
                    return
                s.update({"gcode_state": "RUNNING", "stg_cur": 0, "print_type": "local"})
                if self._run is not None:
                    self._report_run()
                plan = self._run.plan if self._run is not None else None
                self._set_targets((plan and plan.nozzle_c) or DEFAULT_NOZZLE_C, (plan and plan.bed_c) or DEFAULT_BED_C)
        elif gcode_state == "RUNNING":
            if self._run is not None:
                self._advance_run()
            else:
                self._advance_by_ticks()
        elif (not self.auto_jobs and self.clear_plate_seconds and gcode_state in ("FINISH", "FAILED")
              and not self._cancel_ticks_left):
            self._idle_ticks += 1
            if self._idle_ticks * self.tick_seconds >= self.clear_plate_seconds:
                self.clear_plate()
        elif self.auto_jobs and gcode_state in ("IDLE", "FINISH", "FAILED") and not self._cancel_ticks_left:
            self._idle_ticks += 1
            waited = self._idle_ticks * self.tick_seconds
            if gcode_state != "IDLE" and waited >= self.job_gap_seconds:
                self.clear_plate()
                self._idle_ticks = max(0, int((self._first_job_seconds - 3.0) / max(self.tick_seconds, 1e-6)))
            elif gcode_state == "IDLE" and waited >= self._first_job_seconds:
                self._idle_ticks = 0
                self._start_next_file()

    def _report_run(self) -> None:
        """Report where the job is in its file, as the firmware reads it from the file's lines."""
        run = self._run
        progress = run.progress()
        self.state.update({"mc_percent": int(progress.percent), "layer_num": progress.layer,
                           "total_layer_num": progress.total_layers,
                           "mc_remaining_time": minutes(progress.remaining_seconds / self.speed),
                           "mc_print_line_number": str(int(run.position * 50))})

    def _advance_run(self) -> None:
        s, run = self.state, self._run
        outcome = run.advance(self.tick_seconds * self.speed)
        self._report_run()
        if outcome == "finished":
            s.update({"gcode_state": "FINISH", "mc_percent": 100, "mc_remaining_time": 0, "stg_cur": self.idle_stage})
            self._set_targets(0, 0)
            self._ended("finished")
        elif outcome == "failed":
            self._fail(self._run_error)
        elif outcome == "cancelled":
            self._cancel()

    def _advance_by_ticks(self) -> None:
        s = self.state
        self._job_tick += 1
        fraction = min(1.0, self._job_tick / max(1, self.print_ticks))
        s["mc_percent"] = int(fraction * 100)
        s["layer_num"] = max(1, int(fraction * self.layers))
        s["total_layer_num"] = self.layers
        s["mc_remaining_time"] = max(0, int((self.print_ticks - self._job_tick) * self.tick_seconds / 60) + 1) \
            if fraction < 1 else 0
        if self._legacy_stop is not None and s["layer_num"] >= self._legacy_stop[1]:
            outcome, layer, print_error = self._legacy_stop
            if s.get("_stopping_at_layer"):
                s.pop("_stopping_at_layer")
                self._legacy_stop = None
                self._fail(print_error) if outcome == "failed" else self._cancel()
            else:  # reach the layer first, and report it
                s.update({"layer_num": layer, "_stopping_at_layer": True})
                self._job_tick -= 1
            return
        if fraction >= 1.0:
            s.update({"gcode_state": "FINISH", "mc_percent": 100, "stg_cur": self.idle_stage})
            self._set_targets(0, 0)
            self._idle_ticks = 0
            self._ended("finished")

    def _fail(self, print_error: int) -> None:
        """The print failed: FAILED with the error and its HMS, as a printer reports it."""
        self.state.update({"gcode_state": "FAILED", "print_error": print_error, "stg_cur": self.idle_stage,
                           "mc_remaining_time": 0, "hms": [*self.state.get("hms", []), hms_of(print_error)]})
        self._set_targets(0, 0)
        self._ended("failed")

    def _cancel(self) -> None:
        """A cancel, as the `stop` command makes it: a print_error delta at once, FAILED on the next tick."""
        self.state["print_error"] = CANCEL_PRINT_ERROR
        self.state["hms"] = [*self.state.get("hms", []), CANCEL_ECHO_HMS]
        self.state["_stop_pending"] = True
        self._job_tick = 0
        self._publish({"print": {"print_error": CANCEL_PRINT_ERROR, "command": "push_status", "msg": 1,
                                 "sequence_id": self._next_sequence()}})

    def _ended(self, outcome: str) -> None:
        self.jobs.append((self.state.get("gcode_file", ""), outcome))
        self._idle_ticks = 0

    def _start_next_file(self) -> None:
        names = self.print_files()
        if not names:
            if self.files:  # names only, printed by print_ticks
                names = sorted(self.files)
            else:
                name, data = builtin_print_file("3mf")
                self.sd_files[name] = data
                names = [name]
        self._auto_index += 1
        self._project_file({"url": f"file:///sdcard/{names[self._auto_index % len(names)]}",
                            "param": "Metadata/plate_1.gcode", "ams_mapping": []})

    def _jitter(self) -> None:
        s = self.state
        values = {}
        for key, target_key in (("nozzle_temper", "nozzle_target_temper"), ("bed_temper", "bed_target_temper")):
            target = float(s.get(target_key) or ROOM_C)
            current = float(s.get(key) or ROOM_C)
            values[key] = current + (target - current) * 0.3 + random.uniform(-0.2, 0.2)
        payloads.bambu_set_temperatures(s, self.model, nozzle=values["nozzle_temper"], bed=values["bed_temper"])
        if random.random() < 0.2:
            s["wifi_signal"] = f"-{random.randint(40, 60)}dBm"

    # -- publishing --

    def _publish(self, message: dict | bytes) -> bool:
        payload = message if isinstance(message, bytes) else json.dumps(message)
        if self.client.publish(f"device/{self.serial}/report", payload, qos=0).rc != mqtt.MQTT_ERR_SUCCESS:
            return False  # not connected: lost, like a real printer's push without a listener
        self.published += 1
        return True

    def _public_state(self) -> dict:
        # A shallow copy is enough: the simulator replaces values, it never changes them in place.
        return {k: v for k, v in self.state.items() if not k.startswith("_")}

    def _publish_status(self, *, full: bool) -> None:
        current = self._public_state()
        if full:
            body = dict(current, msg=0)
        else:
            body = {k: v for k, v in current.items() if self._last_sent.get(k) != v}
            body["msg"] = 1
        body.update({"command": "push_status", "sequence_id": self._next_sequence()})
        if self._publish({"print": body}):
            self._last_sent = current
            gcode_state = current.get("gcode_state")
            if gcode_state != self._published_state:
                self._published_state = gcode_state
                self.changes.append((gcode_state, time.time()))

    def _publish_ams_only(self) -> None:
        self._publish({"print": {"ams": self.state["ams"], "command": "push_status", "msg": 1,
                                 "sequence_id": self._next_sequence()}})

    def send_raw(self, payload: bytes) -> None:
        """Publish any bytes on the report topic (truncated JSON, invalid UTF-8...)."""
        self._publish(payload)

    # -- requests --

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if not reason_code.is_failure:
            self._failures = 0
            self._last_sent = {}  # the listener may have missed what came before: a full report next
            client.subscribe(f"device/{self.serial}/request", qos=1)
            with self._lock:
                if not self.silent:
                    self._publish_status(full=True)  # the printer (re)booted / rejoined the network

    def _on_message(self, client, userdata, message) -> None:
        try:
            request = json.loads(message.payload)
        except (ValueError, UnicodeDecodeError):
            return
        if not isinstance(request, dict):
            return
        self.received.append(request)
        with self._lock:
            for category, body in request.items():
                if isinstance(body, dict):
                    self._handle(category, body)

    def _ack(self, category: str, body: dict, *, result: str = "success", reason: str = "") -> None:
        if not self.ack_commands:
            return
        answer = {k: v for k, v in body.items()}
        answer.update({"result": result, "reason": reason})
        self._publish({category: answer})

    def _handle(self, category: str, body: dict) -> None:
        command = body.get("command")
        if command in CONTROL_COMMANDS and not self.developer_mode:
            if SIGNATURE_HMS not in self.state.get("hms", []):
                self.state["hms"] = [*self.state.get("hms", []), SIGNATURE_HMS]
            return  # dropped silently, as authorization-control firmware does
        if command == "get_version":
            self._publish({"info": dict(self.version, sequence_id=body.get("sequence_id", "0"))})
        elif command == "pushall":
            if not self.silent:
                self._publish_status(full=True)
        elif command == "start":
            if self.silent and not self.ignore_start:
                self.silent = False
                self._publish_status(full=True)
        elif command == "pause":
            if self.state.get("gcode_state") == "RUNNING":
                self.state.update({"gcode_state": "PAUSE", "stg_cur": 16})
            self._ack(category, body)
        elif command == "resume":
            if self.state.get("gcode_state") == "PAUSE":
                self.state.update({"gcode_state": "RUNNING", "stg_cur": 0})
            self._ack(category, body)
        elif command == "stop":
            if self.state.get("gcode_state") in ("PREPARE", "RUNNING", "PAUSE"):
                self._cancel()
            self._ack(category, body)
        elif command == "project_file":
            accepted = self._project_file(body)
            self._ack(category, body, result="success" if accepted else "fail",
                      reason="" if accepted else "device busy")
        elif command == "ledctrl":
            node, mode = body.get("led_node", "chamber_light"), body.get("led_mode", "on")
            lights = [dict(light) for light in self.state.get("lights_report") or []]
            for light in lights:
                if light.get("node") == node:
                    light["mode"] = mode
                    break
            else:
                lights.append({"node": node, "mode": mode})
            self.state["lights_report"] = lights
            self._ack(category, body)
        elif command == "print_speed":
            level = int(body.get("param", 2) or 2)
            self.state.update({"spd_lvl": level, "spd_mag": {1: 50, 2: 100, 3: 124, 4: 166}.get(level, 100)})
            self._ack(category, body)
        elif command == "gcode_line":
            self._ack(category, body)
        # anything else: ignored, like the firmware does

    def _file_bytes(self, path: str, name: str) -> bytes | None:
        if self.storage is not None and self.storage.has_file(path) and hasattr(self.storage, "read_file"):
            return self.storage.read_file(path)
        return self.sd_files.get(name)

    def _project_file(self, body: dict) -> bool:
        s = self.state
        if s.get("gcode_state") not in ("IDLE", "FINISH", "FAILED") or self._cancel_ticks_left:
            if BUSY_HMS not in s.get("hms", []):
                s["hms"] = [*s.get("hms", []), BUSY_HMS]
            return False
        path = _storage_path(str(body.get("url") or ""), str(body.get("file") or ""))
        name = path.rsplit("/", 1)[-1]
        data = self._file_bytes(path, name)
        exists = data is not None or (self.storage.has_file(path) if self.storage is not None else name in self.files)
        mapping = [int(v) for v in body.get("ams_mapping") or [] if int(v) >= 0 and int(v) != 255]
        stuck = not exists or not set(mapping) <= _tray_ids(s)
        planned, self._planned = self._planned, None
        self._run, self._legacy_stop, self._run_error, unreadable = None, None, AMS_FEED_ERROR, ""
        if data is not None:
            try:
                self._run = PrintRun(read_print_file(name, data, plate=plate_from_param(body.get("param"))))
            except PrintFileError as exc:
                unreadable = str(exc)  # the printer finds out while it prepares, and fails the job
                logger.info("Simulator %s cannot print %s: %s", self.serial, name, exc)
        if planned and self._run is not None:
            self._run.stop_at(planned[1], planned[0])
            self._run_error = planned[2]
        elif planned:
            self._legacy_stop = planned
        if self._run is not None:
            remaining, layers = minutes(self._run.plan.total_seconds / self.speed), self._run.plan.layer_count
        else:
            remaining, layers = int(self.print_ticks * self.tick_seconds / 60) + 1, self.layers
        s.update({
            "gcode_state": "PREPARE", "stg_cur": 77 if stuck else 2, "mc_percent": 0, "layer_num": 0,
            "total_layer_num": layers, "print_error": 0, "hms": [],
            "subtask_name": body.get("subtask_name") or job_name(name), "gcode_file": name,
            "gcode_file_prepare_percent": "0", "mc_remaining_time": remaining,
            "task_id": str(random.randint(100_000_000, 999_999_999)), "print_type": "local",
            "_stuck_ams": stuck, "_unreadable": unreadable,
        })
        trays = sorted(_tray_ids(s))
        loaded = next((slot for slot in mapping if slot in trays), trays[0] if trays else None)
        if isinstance(s.get("ams"), dict) and loaded is not None:  # the filament the job prints with
            s["ams"] = {**s["ams"], "tray_now": str(loaded), "tray_tar": str(loaded)}
        self._job_tick = 0
        return True


class BambuFleetSimulator:
    """Several fake printers on one broker, served by one network loop of their own.

    Used by the simulate_printers command and the fleet benchmark; `connects_per_second` paces how
    fast the fleet joins the broker.
    """

    def __init__(self, *, count: int, host: str, port: int, access_code: str, profiles=("X1", "A1"),
                 ca_file: str | None = None, first_index: int = 1, connects_per_second: float = 200.0,
                 **printer_options) -> None:
        self.network = MqttNetwork(name="bambu-fleet", tick_seconds=0.25, connects_per_second=connects_per_second)
        self.printers = [
            FakeBambuPrinter(serial=fake_serial(profiles[i % len(profiles)], first_index + i), host=host, port=port,
                             access_code=access_code, profile=profiles[i % len(profiles)], ca_file=ca_file,
                             network=self.network, **printer_options)
            for i in range(count)
        ]

    def start(self) -> "BambuFleetSimulator":
        self.network.start()
        for printer in self.printers:
            printer.start()
        return self

    def stop(self) -> None:
        for printer in self.printers:
            printer._stop.set()
        self.network.stop()
