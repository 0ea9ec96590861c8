"""Every printer's state for Home Assistant, published over MQTT with discovery (optional).

Set HOME_ASSISTANT_MQTT_URL (`mqtt://user:password@host:1883`, `mqtts://` for TLS) and run
`manage.py publish_home_assistant`. Home Assistant then finds one device per active printer with
sensors for its state, progress, remaining time, nozzle and bed temperatures and current file.

Topics (HOME_ASSISTANT_DISCOVERY_PREFIX, default "homeassistant"):

- `<prefix>/sensor/fablab_printer_<id>/<sensor>/config`: retained discovery configs;
- `fablab/printers/<id>/state`: the state as JSON, retained, published when it changes;
- `fablab/printers/<id>/availability`: `online`/`offline` from the app's own view of the printer;
- `fablab/status`: the publisher itself, `online`, with `offline` as its last will.

When Home Assistant announces itself (`online` on `<prefix>/status`), every config and state is
published again. A printer that is deleted or deactivated gets its retained messages cleared, also
when that happened while the publisher was not running (it reads the retained configs back).
The database is read on the caller's thread only; the MQTT network thread only sets flags.
"""

import json
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from fablab.exceptions import ApplicationError, InvalidInput
from printers import selectors
from printers.choices import PrinterState
from printers.drivers import registry
from printers.models import Printer

logger = logging.getLogger(__name__)

BASE_TOPIC = "fablab"
BRIDGE_TOPIC = f"{BASE_TOPIC}/status"
NODE_PREFIX = "fablab_printer_"
ONLINE, OFFLINE = "online", "offline"
CHANGE_OVERLAP = timedelta(seconds=5)  # rows committed late still get noticed; unchanged payloads are not resent


class HomeAssistantError(ApplicationError):
    status = 503
    title = "Home Assistant broker unavailable"
    code = "home-assistant-mqtt"


@dataclass(frozen=True)
class BrokerConfig:
    host: str
    port: int
    username: str
    password: str
    tls: bool

    def __repr__(self) -> str:  # never the password
        return f"<BrokerConfig {self.username or '-'}@{self.host}:{self.port} tls={self.tls}>"


def broker_config(url: str | None = None) -> BrokerConfig | None:
    """The broker from HOME_ASSISTANT_MQTT_URL; None when publishing is not configured."""
    url = (getattr(settings, "HOME_ASSISTANT_MQTT_URL", "") if url is None else url or "").strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise InvalidInput(_("HOME_ASSISTANT_MQTT_URL must start with mqtt:// or mqtts://."))
    try:
        port = parts.port
    except ValueError:
        raise InvalidInput(_("HOME_ASSISTANT_MQTT_URL has an invalid port.")) from None
    if not parts.hostname:
        raise InvalidInput(_("HOME_ASSISTANT_MQTT_URL names no host."))
    tls = parts.scheme == "mqtts"
    return BrokerConfig(host=parts.hostname, port=port or (8883 if tls else 1883),
                        username=unquote(parts.username or ""), password=unquote(parts.password or ""), tls=tls)


def discovery_prefix() -> str:
    prefix = (getattr(settings, "HOME_ASSISTANT_DISCOVERY_PREFIX", "") or "homeassistant").strip().strip("/")
    if not prefix or re.search(r"[#+\s]", prefix):
        raise InvalidInput(_("HOME_ASSISTANT_DISCOVERY_PREFIX must be a topic without wildcards or spaces."))
    return prefix


# --- payloads ----------------------------------------------------------------------------------

# sensor key -> (name, value in the state JSON, extra discovery fields)
SENSORS = {
    "state": (gettext_lazy("State"), "state", {
        "device_class": "enum", "options": list(PrinterState.values), "icon": "mdi:printer-3d"}),
    "progress": (gettext_lazy("Progress"), "progress_percent", {
        "unit_of_measurement": "%", "state_class": "measurement", "suggested_display_precision": 0,
        "icon": "mdi:progress-clock"}),
    "remaining": (gettext_lazy("Remaining time"), "remaining_seconds", {
        "device_class": "duration", "unit_of_measurement": "s", "state_class": "measurement"}),
    "nozzle_temperature": (gettext_lazy("Nozzle temperature"), "nozzle_temp_c", {
        "device_class": "temperature", "unit_of_measurement": "°C", "state_class": "measurement",
        "suggested_display_precision": 0}),
    "bed_temperature": (gettext_lazy("Bed temperature"), "bed_temp_c", {
        "device_class": "temperature", "unit_of_measurement": "°C", "state_class": "measurement",
        "suggested_display_precision": 0}),
    "current_file": (gettext_lazy("Current file"), "current_file", {"icon": "mdi:file-outline"}),
}


def node_id(printer_id: int) -> str:
    return f"{NODE_PREFIX}{printer_id}"


def state_topic(printer_id: int) -> str:
    return f"{BASE_TOPIC}/printers/{printer_id}/state"


def availability_topic(printer_id: int) -> str:
    return f"{BASE_TOPIC}/printers/{printer_id}/availability"


def config_topic(prefix: str, printer_id: int, sensor: str) -> str:
    return f"{prefix}/sensor/{node_id(printer_id)}/{sensor}/config"


def device_block(printer: Printer) -> dict:
    """The Home Assistant device of a printer: never its address or credentials."""
    driver = registry.find(printer.driver)
    device = {"identifiers": [node_id(printer.pk)], "name": printer.name}
    if driver is not None:
        device["manufacturer"] = driver.manufacturer
    if printer.model:
        device["model"] = printer.model
    if printer.serial:
        device["serial_number"] = printer.serial
    firmware = getattr(getattr(printer, "live", None), "firmware_version", "")
    if firmware:
        device["sw_version"] = firmware
    if printer.location:
        device["suggested_area"] = printer.location
    return device


def config_payloads(printer: Printer, prefix: str) -> dict[str, dict]:
    """Discovery config per topic for one printer."""
    device = device_block(printer)
    configs = {}
    for key, (name, field, extra) in SENSORS.items():
        configs[config_topic(prefix, printer.pk, key)] = {
            "name": str(name),
            "unique_id": f"{node_id(printer.pk)}_{key}",
            "state_topic": state_topic(printer.pk),
            "value_template": "{{ value_json." + field + " }}",
            "availability": [{"topic": BRIDGE_TOPIC}, {"topic": availability_topic(printer.pk)}],
            "availability_mode": "all",
            "payload_available": ONLINE,
            "payload_not_available": OFFLINE,
            "device": device,
            "origin": {"name": "fablab"},
            **extra,
        }
    return configs


def state_payload(printer: Printer) -> dict:
    live = getattr(printer, "live", None)
    state = live.state if live else PrinterState.OFFLINE
    active = live is not None and state not in (PrinterState.IDLE, PrinterState.OFFLINE)
    return {
        "state": state,
        "progress_percent": round(live.progress_percent, 1) if active and live.progress_percent is not None
        else None,
        "remaining_seconds": live.remaining_seconds if active else None,
        "nozzle_temp_c": live.nozzle_temp_c if live else None,
        "bed_temp_c": live.bed_temp_c if live else None,
        "current_file": (live.current_file if live else "") or "",
    }


def availability(printer: Printer) -> str:
    live = getattr(printer, "live", None)
    return ONLINE if live is not None and live.online and live.state != PrinterState.OFFLINE else OFFLINE


def _dump(payload: dict) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


# --- the publisher -----------------------------------------------------------------------------


class HomeAssistantPublisher:
    """Keeps Home Assistant's view of the fleet up to date; call `step()` about once a second."""

    def __init__(self, *, config: BrokerConfig | None = None, prefix: str | None = None,
                 connect_timeout: float = 10.0) -> None:
        config = config or broker_config()
        if config is None:
            raise InvalidInput(_("Set HOME_ASSISTANT_MQTT_URL to publish to Home Assistant."))
        self.config = config
        self.prefix = prefix or discovery_prefix()
        self.connect_timeout = connect_timeout
        self.sent: dict[str, str] = {}  # topic -> last retained payload this publisher sent
        self.published_ids: set[int] = set()
        self.cursor: datetime | None = None
        self.stats = {"configs": 0, "states": 0, "cleared": 0, "republished": 0}
        self._republish = threading.Event()
        self._connected = threading.Event()
        self._connect_error = ""
        self._lock = threading.Lock()
        self._retained_nodes: set[int] = set()  # printer ids with a retained config seen on the broker
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"fablab-ha-{uuid.uuid4().hex[:10]}")
        if config.username:
            self.client.username_pw_set(config.username, config.password or None)
        if config.tls:
            self.client.tls_set()
        self.client.will_set(BRIDGE_TOPIC, OFFLINE, qos=1, retain=True)
        self.client.reconnect_delay_set(1, 30)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message

    # network thread: flags only

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self._connect_error = str(reason_code)
            return
        client.subscribe([(f"{self.prefix}/status", 1), (f"{self.prefix}/sensor/+/+/config", 1)])
        client.publish(BRIDGE_TOPIC, ONLINE, qos=1, retain=True)
        self._connect_error = ""
        self._republish.set()  # a broker without persistence may have lost the retained configs
        self._connected.set()

    def _on_message(self, client, userdata, message):
        if message.topic == f"{self.prefix}/status":
            if message.payload.strip().lower() == ONLINE.encode():
                logger.info("Home Assistant came online; publishing every printer again.")
                self._republish.set()
            return
        parts = message.topic.split("/")
        if message.payload and len(parts) >= 3 and parts[-3].startswith(NODE_PREFIX):
            suffix = parts[-3].removeprefix(NODE_PREFIX)
            if suffix.isdigit():
                with self._lock:
                    self._retained_nodes.add(int(suffix))

    # caller's thread

    def connect(self) -> "HomeAssistantPublisher":
        try:
            self.client.connect(self.config.host, self.config.port, keepalive=30)
        except OSError as exc:
            raise HomeAssistantError(_("Cannot reach the MQTT broker at %(host)s:%(port)s (%(error)s).") % {
                "host": self.config.host, "port": self.config.port, "error": type(exc).__name__}) from None
        self.client.loop_start()
        deadline = time.monotonic() + self.connect_timeout
        while not self._connected.wait(0.05):
            if self._connect_error or time.monotonic() > deadline:
                reason = self._connect_error or _("no answer")
                self.client.loop_stop()
                self.client.disconnect()
                raise HomeAssistantError(_("The MQTT broker refused the connection: %(reason)s.")
                                         % {"reason": reason})
        return self

    def _publish(self, topic: str, payload: str, *, force: bool = False) -> bool:
        if not force and self.sent.get(topic) == payload:
            return False
        self.client.publish(topic, payload, qos=1, retain=True)
        if payload:
            self.sent[topic] = payload
        else:
            self.sent.pop(topic, None)
        return True

    def publish_printer(self, printer: Printer, *, force: bool = False) -> None:
        for topic, config in config_payloads(printer, self.prefix).items():
            self.stats["configs"] += self._publish(topic, _dump(config), force=force)
        self._publish(availability_topic(printer.pk), availability(printer), force=force)
        self.stats["states"] += self._publish(state_topic(printer.pk), _dump(state_payload(printer)), force=force)
        self.published_ids.add(printer.pk)

    def clear_printer(self, printer_id: int) -> None:
        """Remove a printer from Home Assistant: empty retained payloads on its topics."""
        for key in SENSORS:
            self._publish(config_topic(self.prefix, printer_id, key), "", force=True)
        self._publish(state_topic(printer_id), "", force=True)
        self._publish(availability_topic(printer_id), "", force=True)
        self.published_ids.discard(printer_id)
        self.stats["cleared"] += 1
        logger.info("Removed printer %s from Home Assistant.", printer_id)

    def publish_all(self) -> int:
        """Every config and state again (Home Assistant restarted, or the first run)."""
        self.cursor = timezone.now()
        printers = list(selectors.printers_for_publishing().filter(is_active=True))
        for printer in printers:
            self.publish_printer(printer, force=True)
        self._clear_gone({p.pk for p in printers})
        self.stats["republished"] += 1
        return len(printers)

    def _clear_gone(self, active_ids: set[int]) -> None:
        with self._lock:
            seen, self._retained_nodes = self._retained_nodes, set()
        for printer_id in (self.published_ids | seen) - active_ids:
            self.clear_printer(printer_id)

    def step(self) -> None:
        """Publish what changed since the last step (one cheap query when nothing did)."""
        if self._republish.is_set():
            self._republish.clear()
            self.publish_all()
            return
        since = (self.cursor or timezone.now()) - CHANGE_OVERLAP
        self.cursor = timezone.now()
        for printer in selectors.printers_for_publishing(changed_since=since).filter(is_active=True):
            self.publish_printer(printer)
        active_ids = set(Printer.objects.filter(is_active=True).values_list("pk", flat=True))
        self._clear_gone(active_ids)

    def close(self) -> None:
        """Say goodbye: the publisher's availability goes offline (retained), so the sensors do too."""
        if self.client.is_connected():
            try:
                self.client.publish(BRIDGE_TOPIC, OFFLINE, qos=1, retain=True).wait_for_publish(2)
            except (RuntimeError, ValueError):  # the connection went away meanwhile: the broker sends the will
                pass
        self.client.disconnect()
        self.client.loop_stop()

    def run(self, stop: threading.Event, *, interval: float = 1.0) -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                self.step()
            except Exception:  # noqa: BLE001 - a database hiccup must not end the publishing
                logger.exception("Publishing to Home Assistant failed; trying again.")
            stop.wait(max(0.0, interval - (time.monotonic() - started)))
