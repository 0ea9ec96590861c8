"""MQTT connections to Bambu printers (printers.md §1.1–1.3, §1.7, §1.11), paho-mqtt v2.

`BambuConnection` owns one paho client: one MQTT session per printer. It connects over TLS with
the serial as the expected certificate name, subscribes `device/<serial>/report`, asks
`get_version` and `pushall` once per (re)connect, merges every report (`ReportTracker`) and hands
the normalised state to `on_event`. It never touches the database: run_printers
(printers.listener) does.

No connection has a thread of its own: an `MqttNetwork` (printers.drivers.mqtt) serves all of them
on one selectors loop (paho's external-loop API: `socket()`, `loop_read()`, `loop_write()`,
`loop_misc()`), with a few connector threads for the blocking TCP/TLS connects, rate-limited so
that hundreds of printers come up in a steady stream instead of all at once.

Events (printers.drivers.base) passed to `on_event(event)` (on the network's loop thread, must not block):
- StateEvent(printer_id, state, at, fingerprint, signature_required, first): a readable report
  (`first`: the first one since this connection was made);
- OfflineEvent(printer_id, reason, at, auth=False): no report for `watchdog_seconds`, or the
  printer refused the access code (auth=True: no more retries until the settings change);
- AckEvent(printer_id, sequence_id, result, reason): the printer answered one of our commands.

Reconnects back off exponentially with full jitter (min → max seconds); the watchdog counts from
the last message (or from start), so a dropped TCP session and a printer that silently stopped
pushing look the same to the operator: offline after the watchdog, back on the next report.
"""

import dataclasses
import itertools
import json
import logging
import random
import ssl
import threading
import time
import uuid

import paho.mqtt.client as mqtt
from cryptography import x509
from cryptography.x509.oid import NameOID
from django.utils import timezone

from printers.drivers.base import AckEvent, OfflineEvent, StateEvent
from printers.drivers.mqtt import BufferedClient, MqttNetwork, shared_network
from printers.exceptions import ReportError
from printers.state import NormalisedState, integer, number

from .merge import MEMO_KEY, ApplyResult, decode_message, merge_print
from .normalise import normalise

logger = logging.getLogger(__name__)

USERNAME = "bblp"
SIGNATURE_REQUIRED_BIT = 0x20000000  # print.fun: the firmware wants signed commands (§1.8)
DEV_MODE_HMS = "HMS_0500_0500_0001_0007"
# MQTT 3.1.1 CONNACK 4/5 and their MQTT 5 equivalents (paho v2 maps them to 134/135).
AUTH_REFUSED = {4, 5, 134, 135}
CONNACK_TIMEOUT = 10.0


# --- TLS: the printer's certificate is named after its serial, not its address ---------------


def certificate_names(der: bytes) -> list[str]:
    """The DNS names a certificate is valid for: its SAN DNS entries, else its subject CN."""
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = san.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    if not names:
        names = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return names


class SerialNameTLSContext(ssl.SSLContext):
    """A client TLS context that expects `expected_name` (the serial) whatever address paho dials.

    With a CA file, OpenSSL verifies the chain and the name. Without one (Bambu's CA is private),
    the chain is not verified, but the certificate's name is still compared with the serial after
    the handshake and before paho sends the access code.
    """

    expected_name: str = ""
    verify_chain: bool = False

    def wrap_socket(self, sock, server_side=False, do_handshake_on_connect=True, suppress_ragged_eofs=True,
                    server_hostname=None, session=None):
        ssl_sock = super().wrap_socket(
            sock, server_side=server_side, do_handshake_on_connect=False,
            suppress_ragged_eofs=suppress_ragged_eofs, server_hostname=self.expected_name, session=session,
        )
        if not self.verify_chain:
            ssl_sock.do_handshake()
            names = certificate_names(ssl_sock.getpeercert(binary_form=True) or b"")
            if self.expected_name.lower() not in {name.lower() for name in names}:
                ssl_sock.close()
                raise ssl.SSLCertVerificationError(
                    f"The printer's certificate is for {', '.join(names) or 'no name'}, not serial "
                    f"{self.expected_name}: is the serial right, or is another device at this address?"
                )
        elif do_handshake_on_connect:
            ssl_sock.do_handshake()
        return ssl_sock


def tls_context(*, serial: str, ca_file: str = "") -> SerialNameTLSContext:
    context = SerialNameTLSContext(ssl.PROTOCOL_TLS_CLIENT)
    context.expected_name = serial
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
        # Bambu's CA lacks the key-usage extension that strict X.509 checking (Python 3.13) wants.
        context.verify_flags &= ~getattr(ssl, "VERIFY_X509_STRICT", 0)
        context.check_hostname = True
        context.verify_mode = ssl.CERT_REQUIRED
        context.verify_chain = True
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.verify_chain = False
    return context


# --- Commands (printers.md §1.7) ---------------------------------------------------------------


LIGHT_MODES = {"on", "off"}
SIMPLE_PRINT_COMMANDS = {"pause", "resume", "stop"}
# LAN printers that take `file:///sdcard/...` URLs (pybambu LEGACY_SDCARD_PRINTERS); newer ones take ftp:///.
SDCARD_URL_MODELS = ("X1", "P1", "A1")
EXTERNAL_SPOOL = 254  # the tray id of the spool outside the AMS (vt_tray)


def command_message(action: str, sequence_id: str, params: dict | None = None) -> dict:
    """The request JSON for one command, with our sequence id. ValueError for an unknown action."""
    params = params or {}
    if action in SIMPLE_PRINT_COMMANDS:
        return {"print": {"sequence_id": sequence_id, "command": action, "param": ""}}
    if action == "light":
        mode = params.get("mode", "on")
        if mode not in LIGHT_MODES:
            raise ValueError(f"Unknown light mode {mode!r}.")
        return {"system": {"sequence_id": sequence_id, "command": "ledctrl",
                           "led_node": params.get("node", "chamber_light"), "led_mode": mode,
                           "led_on_time": 500, "led_off_time": 500, "loop_times": 0, "interval_time": 0}}
    if action == "project_file":
        file_name = params["file"]
        plate = int(params.get("plate", 1))
        mapping = [int(v) for v in params.get("ams_mapping") or []]
        # The AMS feeds the print when any filament comes from an AMS tray (254 = the external spool, -1 unused).
        use_ams = any(0 <= tray < EXTERNAL_SPOOL for tray in mapping)
        model = (params.get("model") or "").upper()
        legacy = not model or model.startswith(SDCARD_URL_MODELS)
        url = f"file:///sdcard/{file_name}" if legacy else f"ftp:///{file_name}"
        subtask = params.get("subtask_name") or file_name.rsplit("/", 1)[-1].removesuffix(".3mf") \
            .removesuffix(".gcode")
        return {"print": {
            "sequence_id": sequence_id, "command": "project_file", "param": f"Metadata/plate_{plate}.gcode",
            "url": url, "file": file_name, "subtask_name": subtask, "project_id": "0", "profile_id": "0",
            "task_id": "0", "subtask_id": "0", "md5": "", "timelapse": bool(params.get("timelapse", False)),
            "bed_type": "auto", "bed_levelling": True, "bed_leveling": True, "flow_cali": True,
            "vibration_cali": True, "layer_inspect": True, "use_ams": use_ams, "ams_mapping": mapping,
        }}
    raise ValueError(f"Unknown Bambu command {action!r}.")


# --- Events ------------------------------------------------------------------------------------


def control_fingerprint(print_state: dict) -> str:
    return json.dumps([print_state.get("gcode_state"), print_state.get("stg_cur"),
                       print_state.get("lights_report"), print_state.get("subtask_name")],
                      sort_keys=True, default=str)


def signature_required(print_state: dict, errors: list[dict]) -> bool:
    fun = print_state.get("fun")
    try:
        bits = int(str(fun), 16) if fun not in (None, "") else 0
    except ValueError:
        bits = 0
    return bool(bits & SIGNATURE_REQUIRED_BIT) or any(e.get("code") == DEV_MODE_HMS for e in errors)


# --- The connection ----------------------------------------------------------------------------

# Top-level keys of a `print` report that normalise() reads; any other key (wifi_signal, fans,
# sequence_id...) cannot change the normalised state.
NORMALISE_INPUTS = frozenset({
    "gcode_state", "stg_cur", "hms", "print_error", MEMO_KEY, "mc_remaining_time", "chamber_temper", "device",
    "task_id", "mc_percent", "layer_num", "total_layer_num", "nozzle_temper", "nozzle_target_temper",
    "bed_temper", "bed_target_temper", "subtask_name", "gcode_file", "ams", "vt_tray",
    "nozzle_type", "nozzle_diameter",
})
# Keys always merged, even when unchanged: they drive the merge's own bookkeeping.
ALWAYS_MERGED = frozenset({"command", "sequence_id", "msg", "gcode_state", "print_error"})


def _minutes_to_seconds(value):
    minutes = number(value, "mc_remaining_time")
    return None if minutes is None else max(0, int(minutes * 60))


# Telemetry keys → (NormalisedState field, conversion), exactly as normalise() converts them.
TELEMETRY_FIELDS = {
    "mc_percent": ("progress_percent", lambda v: number(v, "mc_percent")),
    "mc_remaining_time": ("remaining_seconds", _minutes_to_seconds),
    "layer_num": ("layer", lambda v: integer(v, "layer_num")),
    "total_layer_num": ("total_layers", lambda v: integer(v, "total_layer_num")),
    "nozzle_temper": ("nozzle_temp_c", lambda v: number(v, "nozzle_temper")),
    "nozzle_target_temper": ("nozzle_target_c", lambda v: number(v, "nozzle_target_temper")),
    "bed_temper": ("bed_temp_c", lambda v: number(v, "bed_temper")),
    "bed_target_temper": ("bed_target_c", lambda v: number(v, "bed_target_temper")),
}


class ReportTracker:
    """The merged `print` state of one printer, fed in arrival order, cheap for telemetry-only reports.

    Same result as `BambuReport.feed` + `normalise` (printers.md §1.4), with two shortcuts:
    keys whose value equals the value last merged for them are not merged again (merging is
    idempotent per key; X1 printers push their full state every second), and when the only
    changed keys that normalise() reads are plain telemetry, the previous NormalisedState is
    copied with the new values instead of normalising the whole state again (AMS, HMS...).
    """

    def __init__(self) -> None:
        self.print: dict = {}
        self.version: dict = {}
        self.state: NormalisedState | None = None
        self._last_raw: dict = {}  # key -> the value last merged for it
        self._ams_full = False  # the last merged `ams` came with a full report (msg 0)
        self.shortcuts = 0

    def feed(self, message: dict) -> ApplyResult:
        """Apply one decoded message (ReportError leaves everything untouched)."""
        body = message.get("print")
        if body is None:
            if "info" in message and message["info"].get("command") == "get_version":
                self.version = message["info"]
                return ApplyResult("version", message["info"])
            return ApplyResult("other", message)
        if body.get("command", "push_status") != "push_status":
            return ApplyResult("ack", body)
        last = self._last_raw
        full = body.get("msg") == 0
        changed = {}
        for key, value in body.items():
            if key not in last or last[key] != value or (key == "ams" and full and not self._ams_full):
                changed[key] = value
        merged_body = dict(changed)
        for key in ALWAYS_MERGED:
            if key in body:
                merged_body[key] = body[key]
        candidate = merge_print(self.print, merged_body)
        relevant = NORMALISE_INPUTS.intersection(changed)
        if self.state is not None and relevant <= TELEMETRY_FIELDS.keys() \
                and candidate.get(MEMO_KEY) == self.print.get(MEMO_KEY):
            state = dataclasses.replace(self.state, **{
                TELEMETRY_FIELDS[key][0]: TELEMETRY_FIELDS[key][1](candidate.get(key)) for key in relevant}) \
                if relevant else self.state
            self.shortcuts += 1
        else:
            state = normalise(candidate)  # ReportError when the merged state would not be readable
        self.print, self.state = candidate, state
        last.update(changed)
        if "ams" in changed:
            self._ams_full = full
        return ApplyResult("status", body)


class BambuConnection:
    """One printer's MQTT session, served by an `MqttNetwork` (shared by every connection of the process)."""

    def __init__(self, *, printer_id: int, host: str, port: int, serial: str, access_code: str, on_event,
                 tls: bool = True, ca_file: str = "", keepalive: int = 30, watchdog_seconds: float = 60.0,
                 backoff_min: float = 1.0, backoff_max: float = 30.0, network: MqttNetwork | None = None) -> None:
        self.printer_id = printer_id
        self.host, self.port, self.serial = host, port, serial
        self.on_event = on_event
        self.keepalive = keepalive
        self.watchdog_seconds = watchdog_seconds
        self.backoff_min, self.backoff_max = backoff_min, backoff_max
        self.network = network
        self.report = ReportTracker()
        self.report_topic = f"device/{serial}/report"
        self.request_topic = f"device/{serial}/request"
        self.connected = threading.Event()
        self.auth_refused = False
        self.offline = True
        self.messages = 0
        self.bad_messages = 0
        self._sequence = itertools.count(random.randint(10_000, 90_000))
        self._lock = threading.Lock()
        self._pending: dict[str, str] = {}  # sequence_id -> command name, for acks
        self._stop = threading.Event()
        self._last_message = time.monotonic()
        self._failures = 0
        self._next_attempt = 0.0
        self._prodded = False  # sent pushing.start since the last message
        self._session = False  # a socket is open (waiting for CONNACK or connected)
        self._connecting = False  # waiting for a connect token or connecting on a connector thread
        self._connect_started = 0.0
        self._connected_at = 0.0
        self._has_state = False  # a readable state arrived since the last connect
        self._repushed = False
        self.client = BufferedClient(mqtt.CallbackAPIVersion.VERSION2, client_id=f"fablab-{uuid.uuid4().hex[:12]}",
                                     protocol=mqtt.MQTTv311, clean_session=True)
        self.client.username_pw_set(USERNAME, access_code)
        if tls:
            self.client.tls_set_context(tls_context(serial=serial, ca_file=ca_file))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    def __repr__(self) -> str:
        return f"<BambuConnection printer={self.printer_id} {self.host}:{self.port} {self.serial}>"

    # -- lifecycle --

    def start(self) -> "BambuConnection":
        if self.network is None:
            self.network = shared_network("bambu")
        self._last_message = time.monotonic()
        self.network.add(self)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self.network is not None:
            self.network.remove(self, timeout=timeout)
        self.connected.clear()

    # -- called by the network, on its loop thread --

    def network_tick(self, now: float) -> None:
        if self._stop.is_set():
            return
        if self._session:
            rc = self.client.loop_misc()  # keepalive pings
            if rc != mqtt.MQTT_ERR_SUCCESS:
                self._drop(f"connection lost ({mqtt.error_string(rc)})")
            elif not self.connected.is_set() and now - self._connect_started > CONNACK_TIMEOUT:
                self._drop("the printer did not answer the MQTT connect")
        elif not self._connecting and not self.auth_refused and now >= self._next_attempt:
            self._connecting = True
            self.network.request_connect(self)
        self._watchdog()

    def network_connect(self) -> None:
        self._connect_started = time.monotonic()
        self.client.connect(self.host, self.port, keepalive=self.keepalive)

    def network_connected(self) -> None:
        self._connecting = False
        self._session = True  # the CONNACK arrives in a later read

    def network_connect_failed(self, exc: Exception) -> None:
        self._connecting = False
        self._drop(f"cannot connect to {self.host}:{self.port}: {exc}")

    def network_lost(self, rc) -> None:
        self._drop(f"connection lost ({mqtt.error_string(rc)})")

    def _drop(self, reason: str) -> None:
        """Close the session and schedule the next attempt: exponential backoff with full jitter."""
        self._session = False
        self.connected.clear()
        self.network.close_client(self.client)
        if self.auth_refused or self._stop.is_set():
            return
        self._failures += 1
        ceiling = min(self.backoff_max, self.backoff_min * 2 ** min(self._failures - 1, 16))
        delay = random.uniform(self.backoff_min, max(self.backoff_min, ceiling))
        self._next_attempt = time.monotonic() + delay
        logger.info("Bambu printer %s: %s; retrying in %.1f s.", self.printer_id, reason, delay)

    def _pushall(self) -> None:
        self._publish({"pushing": {"sequence_id": self._next_sequence(), "command": "pushall",
                                   "version": 1, "push_target": 1}})

    def _watchdog(self) -> None:
        now = time.monotonic()
        if self.connected.is_set() and not self._has_state and not self._repushed \
                and now - self._connected_at >= min(5.0, self.watchdog_seconds / 2):
            # Reports arrive but none said which state the printer is in: the answer to our pushall
            # was lost. Ask once more (never poll pushall, printers.md §1.3).
            self._repushed = True
            self._pushall()
        silent = now - self._last_message
        if silent < self.watchdog_seconds:
            return
        if not self.offline:
            self.offline = True
            reason = f"no report for {silent:.0f} s" + ("" if self.connected.is_set() else " (not connected)")
            self._emit(OfflineEvent(self.printer_id, reason, timezone.now()))
        if self.connected.is_set() and not self._prodded:
            # pybambu: a printer that stopped pushing resumes on pushing.start; else the session is stale.
            self._prodded = True
            self._publish({"pushing": {"sequence_id": self._next_sequence(), "command": "start"}})
        elif self.connected.is_set() and silent >= 2 * self.watchdog_seconds:
            self._last_message = time.monotonic() - self.watchdog_seconds  # one forced reconnect per period
            self._prodded = False
            self._drop("stale session: no report after pushing.start")

    # -- paho callbacks (on the network's loop thread) --

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        code = reason_code.value if hasattr(reason_code, "value") else int(reason_code)
        if reason_code.is_failure:
            if code in AUTH_REFUSED:
                self.auth_refused = True
                logger.warning("Bambu printer %s refused the access code; not retrying until it changes.",
                               self.printer_id)
                self.offline = True
                self._emit(OfflineEvent(self.printer_id, "the printer refused the access code", timezone.now(),
                                        auth=True))
            return
        self._failures = 0
        self._connected_at = time.monotonic()
        self._has_state = self._repushed = False
        self.connected.set()
        with self._lock:
            self._pending.clear()  # never replay or wait on commands from before the reconnect
        client.subscribe(self.report_topic, qos=0)
        self._publish({"info": {"sequence_id": self._next_sequence(), "command": "get_version"}})
        self._pushall()
        logger.info("Connected to Bambu printer %s.", self.printer_id)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()

    def _on_message(self, client, userdata, message) -> None:
        self._last_message = time.monotonic()
        self._prodded = False
        self.messages += 1
        try:
            decoded = decode_message(message.payload)
            self._check_acks(decoded)
            result = self.report.feed(decoded)
        except ReportError as exc:
            self.bad_messages += 1
            logger.warning("Bambu printer %s sent an unreadable report (%s); ignored.", self.printer_id,
                           exc.message)
            return
        state = self.report.state
        if result.kind != "status" or state is None:
            return
        first, self._has_state = not self._has_state, True
        self.offline = False
        self._emit(StateEvent(self.printer_id, state, timezone.now(), control_fingerprint(self.report.print),
                              signature_required(self.report.print, state.errors), first))

    def _check_acks(self, message: dict) -> None:
        for body in message.values():
            command, sequence_id = body.get("command"), body.get("sequence_id")
            if command in (None, "push_status") or sequence_id is None:
                continue
            with self._lock:
                expected = self._pending.get(str(sequence_id))
                if expected != command:
                    continue
                del self._pending[str(sequence_id)]
            result = str(body.get("result", "success")).lower()
            self._emit(AckEvent(self.printer_id, str(sequence_id), result, str(body.get("reason", "") or ""),
                                body))

    # -- commands --

    def _next_sequence(self) -> str:
        return str(next(self._sequence))

    def _publish(self, message: dict, qos: int = 0) -> None:
        self.client.publish(self.request_topic, json.dumps(message), qos=qos)

    def send_command(self, action: str, params: dict | None = None) -> str:
        """Publish one command; returns its sequence_id (the ack arrives as an AckEvent). Thread-safe."""
        if not self.connected.is_set():
            raise ConnectionError("not connected to the printer")
        sequence_id = self._next_sequence()
        message = command_message(action, sequence_id, params)
        body = next(iter(message.values()))
        with self._lock:
            self._pending[sequence_id] = body["command"]
        self._publish(message, qos=1 if action in SIMPLE_PRINT_COMMANDS else 0)
        logger.info("Sent %s (sequence %s) to Bambu printer %s.", action, sequence_id, self.printer_id)
        return sequence_id

    def forget(self, sequence_id: str) -> None:
        with self._lock:
            self._pending.pop(sequence_id, None)

    def _emit(self, event) -> None:
        try:
            self.on_event(event)
        except Exception:  # noqa: BLE001 - a broken consumer must not kill the connection
            logger.exception("Handling an event of Bambu printer %s failed.", self.printer_id)
