"""Fake Bambu Lab printers that speak the LAN MQTT protocol to a broker (printers.md §4.1).

Each `FakeBambuPrinter` is an MQTT client of a broker (see `broker.MosquittoBroker`, or the local
Mosquitto in the demo), user = its serial: it reads `device/<serial>/request` and writes
`device/<serial>/report`, starting from a real report of the corpus:

- profile "X1": every push is the full object (`msg` 0); profile "P1"/"A1": the full object only in
  answer to `pushall`, otherwise one delta (`msg` 1) per tick with only the changed keys —
  temperatures jitter, `wifi_signal` flips, and every few ticks the AMS block comes alone, without
  `vt_tray`;
- `sequence_id` is the printer's own string counter; every request is acknowledged by echoing its
  sequence_id with `result: "success"` (unless `ack_commands` is False);
- `get_version` → the corpus module list; `pushall` → full object; `pushing.start` → pushes again;
- `project_file` → checks the file exists (in `storage`, e.g. a `BambuFTPSSimulator` the app uploaded
  the file to, else in the names `files`) and every `ams_mapping` entry names a loaded tray (else
  stays in PREPARE / `stg_cur` 77 "preparing AMS" forever, like the real printer) → PREPARE with
  `gcode_file_prepare_percent` 0 → 100 (P1 quirk: stops at 99) → RUNNING with rising `mc_percent`,
  `layer_num` and falling `mc_remaining_time` (minutes) → FINISH (sticky). A busy printer raises
  HMS 0500_4004 and changes nothing;
- `pause`/`resume` → PAUSE (`stg_cur` 16) / RUNNING; `stop` → a delta with `print_error` 50348044,
  then FAILED, `print_error` back to 0 a few ticks later (with the cancel-echo HMS while it lasts);
  `ledctrl` → `lights_report`; `print_speed` → `spd_lvl`; `gcode_line` → ack only; unknown → ignored.

Faults: `silent` (session up, no publishes; `pushing.start` wakes it unless `ignore_start`),
`send_raw()` for truncated JSON / invalid UTF-8, `raise_hms()` / `clear_hms()`, `ack_commands=False`,
`developer_mode=False` (sets the `fun` bit 0x20000000, drops control commands and raises HMS
0500_0500_0001_0007 while still answering pushall/get_version), `disconnect()` / `reconnect()`.

Time is in ticks of `tick_seconds` (1 s like a printer; 0.05 s in tests). No fake printer has a
thread of its own: their MQTT I/O and their ticks run on an `MqttNetwork` loop (the driver's, one
per fleet or one shared by the process), so one process can run hundreds of them. Each printer
starts ticking at a random phase, like a real fleet, and remembers in `changes` when it first
published each new `gcode_state` (wall-clock time; the fleet benchmark measures lag from there).
"""

import copy
import json
import logging
import random
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from printers.drivers.mqtt import BufferedClient, MqttNetwork, shared_network

logger = logging.getLogger(__name__)

CANCEL_PRINT_ERROR = 50348044
CANCEL_ECHO_HMS = {"attr": 0x0300_0000 | 0x0000, "code": 0x0004_400C}
BUSY_HMS = {"attr": 0x0500_0000, "code": 0x0003_4004}
SIGNATURE_HMS = {"attr": 0x0500_0500, "code": 0x0001_0007}
SIGNATURE_REQUIRED_BIT = 0x20000000
CONTROL_COMMANDS = {"pause", "resume", "stop", "project_file", "gcode_line", "print_speed", "ledctrl",
                    "ams_control", "ams_change_filament", "skip_objects"}
PROFILES = {
    "X1": {"fixture": "hab_x1c_4ams_ams2pro_amsht_finish_pushall_getversion.json", "full_pushes": True,
           "idle_stage": -1, "model": "X1C"},
    "P1": {"fixture": "hab_p1p_ams_failed_pushall_getversion.json", "full_pushes": False, "idle_stage": 255,
           "model": "P1P"},
    "A1": {"fixture": "hab_a1_amslite_idle_pushall_getversion.json", "full_pushes": False, "idle_stage": 255,
           "model": "A1"},
}
SERIAL_PREFIX = {"X1": "00M", "P1": "01S", "A1": "039"}


def corpus_dir() -> Path:
    from django.conf import settings

    return Path(settings.FABLAB_CORPUS) / "printers" / "bambu"


def load_fixture(name: str) -> tuple[dict, dict]:
    """(print body, get_version info body) of a corpus dump (ha-bambulab envelope)."""
    data = json.loads((corpus_dir() / name).read_text())
    if "pushall" in data:
        return data["pushall"]["print"], data.get("get_version", {}).get("info", {})
    return data["push_all"], data.get("get_version", {})


def fake_serial(profile: str, index: int) -> str:
    return f"{SERIAL_PREFIX.get(profile, '01P')}SIM{index:09d}"


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
                 files: tuple[str, ...] = ("benchy.gcode.3mf", "cube.gcode.3mf"), ca_file: str | None = None,
                 auto_jobs: bool = False, layers: int = 120, network: MqttNetwork | None = None,
                 storage=None) -> None:
        if profile not in PROFILES:
            raise ValueError(f"Unknown profile {profile!r}; choose one of {', '.join(PROFILES)}.")
        self.serial, self.host, self.port = serial, host, port
        self.profile = profile
        self.full_pushes = PROFILES[profile]["full_pushes"]
        self.idle_stage = PROFILES[profile]["idle_stage"]
        self.tick_seconds = tick_seconds
        self.prepare_ticks, self.print_ticks, self.cancel_clear_ticks = prepare_ticks, print_ticks, cancel_clear_ticks
        self.files = set(files)
        self.storage = storage  # anything with has_file(path), e.g. a BambuFTPSSimulator
        self.auto_jobs = auto_jobs
        self.layers = layers
        # Fault switches and test hooks
        self.silent = False
        self.ignore_start = False
        self.ack_commands = True
        self.developer_mode = True
        self.received: list[dict] = []
        self.published = 0
        self.changes: list[tuple[str, float]] = []  # (gcode_state, time.time()) of its first publish
        self.network = network

        body, version = load_fixture(PROFILES[profile]["fixture"])
        self.version = copy.deepcopy(version)
        self.version["sequence_id"] = "0"
        self.state = copy.deepcopy(body)
        self.state.pop("sequence_id", None)
        self._reset_idle()
        self._last_sent: dict = {}
        self._sequence = random.randint(1000, 5000)
        self._job_tick = 0
        self._cancel_ticks_left = 0
        self._idle_ticks = 0
        self._ticks = 0
        self._lock = threading.RLock()
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
        return f"<FakeBambuPrinter {self.serial} {self.profile} {self.state.get('gcode_state')}>"

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
            "nozzle_target_temper": 0, "bed_target_temper": 0, "fun": "3EC18FFF9CFF",
        })

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

    def start_job(self, file_name: str = "benchy.gcode.3mf", *, ams_mapping: list[int] | None = None) -> bool:
        """Start a job as if `project_file` came (also used by the demo's automatic jobs)."""
        with self._lock:
            return self._project_file({"url": f"file:///sdcard/{file_name}", "file": file_name,
                                       "subtask_name": file_name.split(".")[0], "ams_mapping": ams_mapping or []})

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
            s.update({"gcode_state": "FAILED", "stg_cur": self.idle_stage, "nozzle_target_temper": 0,
                      "bed_target_temper": 0, "mc_remaining_time": 0})
            self._cancel_ticks_left = self.cancel_clear_ticks
            return
        if gcode_state == "PREPARE":
            if s.get("_stuck_ams"):
                s["stg_cur"] = 77
                return
            self._job_tick += 1
            percent = min(100, self._job_tick * 100 // max(1, self.prepare_ticks))
            if self.profile != "X1":
                percent = min(percent, 99)  # P1/A1 stop at 99 and go RUNNING
            s["gcode_file_prepare_percent"] = str(percent)
            if self._job_tick >= self.prepare_ticks:
                self._job_tick = 0
                s.update({"gcode_state": "RUNNING", "stg_cur": 0, "nozzle_target_temper": 220,
                          "bed_target_temper": 60, "print_type": "local"})
        elif gcode_state == "RUNNING":
            self._job_tick += 1
            fraction = min(1.0, self._job_tick / max(1, self.print_ticks))
            s["mc_percent"] = int(fraction * 100)
            s["layer_num"] = max(1, int(fraction * self.layers))
            s["total_layer_num"] = self.layers
            s["mc_remaining_time"] = max(0, int((self.print_ticks - self._job_tick) * self.tick_seconds / 60) + 1) \
                if fraction < 1 else 0
            if fraction >= 1.0:
                s.update({"gcode_state": "FINISH", "mc_percent": 100, "stg_cur": self.idle_stage,
                          "nozzle_target_temper": 0, "bed_target_temper": 0})
                self._idle_ticks = 0
        elif self.auto_jobs and gcode_state in ("IDLE", "FINISH", "FAILED"):
            self._idle_ticks += 1
            if self._idle_ticks >= max(5, self.print_ticks // 3):
                self._idle_ticks = 0
                self._project_file({"url": "file:///sdcard/benchy.gcode.3mf", "subtask_name": "benchy",
                                    "ams_mapping": []})

    def _jitter(self) -> None:
        s = self.state
        for key, target_key in (("nozzle_temper", "nozzle_target_temper"), ("bed_temper", "bed_target_temper")):
            target = float(s.get(target_key) or 25)
            current = float(s.get(key) or 25)
            current += (target - current) * 0.3 + random.uniform(-0.2, 0.2)
            s[key] = round(current, 4)
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
                self.state["print_error"] = CANCEL_PRINT_ERROR
                self.state["hms"] = [*self.state.get("hms", []), CANCEL_ECHO_HMS]
                self.state["_stop_pending"] = True
                self._job_tick = 0
                self._publish({"print": {"print_error": CANCEL_PRINT_ERROR, "command": "push_status", "msg": 1,
                                         "sequence_id": self._next_sequence()}})
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

    def _project_file(self, body: dict) -> bool:
        s = self.state
        if s.get("gcode_state") not in ("IDLE", "FINISH", "FAILED"):
            if BUSY_HMS not in s.get("hms", []):
                s["hms"] = [*s.get("hms", []), BUSY_HMS]
            return False
        path = _storage_path(str(body.get("url") or ""), str(body.get("file") or ""))
        name = path.rsplit("/", 1)[-1]
        exists = self.storage.has_file(path) if self.storage is not None else name in self.files
        mapping = [int(v) for v in body.get("ams_mapping") or [] if int(v) >= 0 and int(v) != 255]
        stuck = not exists or not set(mapping) <= _tray_ids(s)
        s.update({
            "gcode_state": "PREPARE", "stg_cur": 77 if stuck else 2, "mc_percent": 0, "layer_num": 0,
            "total_layer_num": self.layers, "print_error": 0, "hms": [],
            "subtask_name": body.get("subtask_name") or name.split(".")[0], "gcode_file": name,
            "gcode_file_prepare_percent": "0", "mc_remaining_time": int(self.print_ticks * self.tick_seconds / 60) + 1,
            "task_id": str(random.randint(100_000_000, 999_999_999)), "print_type": "local",
            "_stuck_ams": stuck,
        })
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
