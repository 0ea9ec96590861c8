"""Home Assistant MQTT discovery over a real Mosquitto broker (with password file and ACL)."""

import json
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from fablab.exceptions import InvalidInput
from printers import homeassistant, services
from printers.choices import PrinterState
from printers.homeassistant import HomeAssistantError, HomeAssistantPublisher, broker_config
from printers.simulators.broker import MosquittoBroker
from printers.state import NormalisedState
from printers.tests.factories import BambuPrinterFactory, PrinterFactory
from printers.tests.mqtt import step_until

pytestmark = pytest.mark.django_db

PUBLISHER_PASSWORD = "pub-S3cret:/@x"
HA_PASSWORD = "ha-password-9"
ACCESS_CODE = "acc-55443322"


@pytest.fixture
def broker(tmp_path):
    running = MosquittoBroker(tmp_path / "ha-broker", users={"fablab": PUBLISHER_PASSWORD, "hass": HA_PASSWORD})
    (running.directory / "acl").write_text("user fablab\ntopic readwrite #\n\nuser hass\ntopic readwrite #\n")
    with running:
        yield running


def url_for(broker, password=PUBLISHER_PASSWORD) -> str:
    from urllib.parse import quote

    return f"mqtt://fablab:{quote(password, safe='')}@{broker.host}:{broker.port}"


class HomeAssistant:
    """A stand-in for Home Assistant: subscribes to everything and records it (retained or not)."""

    def __init__(self, broker):
        self.messages: list[mqtt.MQTTMessage] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="hass-test")
        self.client.username_pw_set("hass", HA_PASSWORD)
        self.client.on_message = lambda c, u, m: self._record(m)
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe("#", qos=1)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert subscribed.wait(5), "the test client could not subscribe"

    def _record(self, message):
        with self.lock:
            self.messages.append(message)

    def latest(self, topic):
        with self.lock:
            found = [m for m in self.messages if m.topic == topic]
        return found[-1] if found else None

    def on(self, topic):
        with self.lock:
            return [m for m in self.messages if m.topic == topic]

    def clear(self):
        with self.lock:
            self.messages.clear()

    def announce(self, prefix="homeassistant"):
        self.client.publish(f"{prefix}/status", "online", qos=1).wait_for_publish(5)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def hass(broker):
    client = HomeAssistant(broker)
    yield client
    client.close()


@pytest.fixture
def publisher(broker, settings):
    settings.HOME_ASSISTANT_MQTT_URL = url_for(broker)
    settings.HOME_ASSISTANT_DISCOVERY_PREFIX = "homeassistant"
    running = HomeAssistantPublisher().connect()
    yield running
    running.close()


def wait_for(predicate, *, publisher=None, timeout=5.0, what="message"):
    return step_until(publisher, predicate, timeout=timeout, what=what)


@pytest.fixture
def printer():
    printer = BambuPrinterFactory(name="X1 Carbon", model="X1C", serial="00M09A350100123", host="10.1.1.50",
                                  location="Workshop")
    services.printer_set_credentials(printer=printer, secret=ACCESS_CODE)
    services.printer_apply_state(printer=printer, state=NormalisedState(
        state=PrinterState.PRINTING, raw_state="RUNNING", job_key="5", progress_percent=12.5,
        remaining_seconds=3600, nozzle_temp_c=220.0, bed_temp_c=60.0, current_file="benchy.3mf"))
    return printer


def config(hass, printer, sensor):
    message = hass.latest(f"homeassistant/sensor/fablab_printer_{printer.pk}/{sensor}/config")
    return json.loads(message.payload) if message and message.payload else None


def test_configs_and_state_are_published_retained(broker, hass, publisher, printer):
    publisher.step()  # the first step publishes everything
    state_topic = f"fablab/printers/{printer.pk}/state"
    wait_for(lambda: hass.latest(state_topic), what="the state")
    wait_for(lambda: all(config(hass, printer, key) for key in homeassistant.SENSORS), what="every config")

    state = config(hass, printer, "state")
    assert state["unique_id"] == f"fablab_printer_{printer.pk}_state"
    assert state["state_topic"] == state_topic and state["value_template"] == "{{ value_json.state }}"
    assert state["device_class"] == "enum" and "paused" in state["options"] and "printing" in state["options"]
    assert state["device"] == {"identifiers": [f"fablab_printer_{printer.pk}"], "name": "X1 Carbon",
                               "manufacturer": "Bambu Lab", "model": "X1C", "serial_number": "00M09A350100123",
                               "suggested_area": "Workshop"}
    assert state["availability"] == [{"topic": "fablab/status"},
                                     {"topic": f"fablab/printers/{printer.pk}/availability"}]
    assert state["availability_mode"] == "all"
    progress = config(hass, printer, "progress")
    assert progress["unit_of_measurement"] == "%" and progress["value_template"] == "{{ value_json.progress_percent }}"
    remaining = config(hass, printer, "remaining")
    assert remaining["device_class"] == "duration" and remaining["unit_of_measurement"] == "s"
    for key in ("nozzle_temperature", "bed_temperature"):
        assert config(hass, printer, key)["device_class"] == "temperature"
        assert config(hass, printer, key)["unit_of_measurement"] == "°C"
    assert config(hass, printer, "current_file")["value_template"] == "{{ value_json.current_file }}"

    assert json.loads(hass.latest(state_topic).payload) == {
        "state": "printing", "progress_percent": 12.5, "remaining_seconds": 3600, "nozzle_temp_c": 220.0,
        "bed_temp_c": 60.0, "current_file": "benchy.3mf"}
    assert hass.latest(f"fablab/printers/{printer.pk}/availability").payload == b"online"
    assert hass.latest("fablab/status").payload == b"online"

    # Retained: a Home Assistant that connects later gets all of it from the broker.
    late = HomeAssistant(broker)
    try:
        wait_for(lambda: late.latest(state_topic) and config(late, printer, "current_file"), what="retained")
        assert late.latest(state_topic).retain and late.latest("fablab/status").retain
        assert all(late.latest(f"homeassistant/sensor/fablab_printer_{printer.pk}/{key}/config").retain
                   for key in homeassistant.SENSORS)
    finally:
        late.close()


def test_state_changes_arrive_and_unchanged_states_are_not_resent(hass, publisher, printer):
    state_topic = f"fablab/printers/{printer.pk}/state"
    publisher.step()
    wait_for(lambda: hass.latest(state_topic), what="the first state")
    sent_before = len(hass.on(state_topic))
    for _ in range(3):
        publisher.step()
    time.sleep(0.2)
    assert len(hass.on(state_topic)) == sent_before  # nothing changed, nothing sent

    services.printer_apply_state(printer=printer, state=NormalisedState(
        state=PrinterState.PAUSED, raw_state="PAUSE", job_key="5", progress_percent=13.0, remaining_seconds=3500,
        nozzle_temp_c=180.0, bed_temp_c=60.0, current_file="benchy.3mf"))
    paused = wait_for(lambda: (m := hass.latest(state_topic)) and json.loads(m.payload)["state"] == "paused"
                      and json.loads(m.payload), publisher=publisher, what="the paused state")
    assert paused["progress_percent"] == 13.0 and paused["nozzle_temp_c"] == 180.0

    printer.name = "X1 Carbon (left)"
    printer.save()
    wait_for(lambda: (c := config(hass, printer, "state")) and c["device"]["name"] == "X1 Carbon (left)",
             publisher=publisher, what="the renamed device")

    services.printer_apply_state(printer=printer, state=NormalisedState(state=PrinterState.OFFLINE))
    wait_for(lambda: (m := hass.latest(f"fablab/printers/{printer.pk}/availability")) and m.payload == b"offline",
             publisher=publisher, what="the printer going offline")


def test_everything_again_when_home_assistant_comes_online(hass, publisher, printer):
    other = PrinterFactory(name="Core One", model="Core One")
    publisher.step()
    wait_for(lambda: config(hass, other, "state") and config(hass, printer, "state"), what="configs")
    for _ in range(2):
        publisher.step()
    hass.clear()
    hass.announce()
    wait_for(lambda: all(config(hass, p, key) for p in (printer, other) for key in homeassistant.SENSORS)
             and hass.latest(f"fablab/printers/{other.pk}/state"), publisher=publisher, what="the republish")
    assert config(hass, other, "state")["device"]["manufacturer"] == "Prusa Research"
    assert publisher.stats["republished"] >= 2

    # Other payloads on the status topic do not trigger it.
    hass.clear()
    hass.client.publish("homeassistant/status", "offline", qos=1).wait_for_publish(5)
    time.sleep(0.3)
    publisher.step()
    time.sleep(0.2)
    assert config(hass, printer, "state") is None


def test_deleted_and_deactivated_printers_are_cleared(hass, publisher, printer):
    other = PrinterFactory(name="MK4")
    publisher.step()
    wait_for(lambda: config(hass, printer, "state") and config(hass, other, "state"), what="configs")
    printer_id = printer.pk
    printer.delete()
    topics = [f"homeassistant/sensor/fablab_printer_{printer_id}/{key}/config" for key in homeassistant.SENSORS]
    topics += [f"fablab/printers/{printer_id}/state", f"fablab/printers/{printer_id}/availability"]
    wait_for(lambda: all((m := hass.latest(topic)) and m.payload == b"" for topic in topics),
             publisher=publisher, what="every retained message of the deleted printer cleared")
    assert config(hass, other, "state") is not None

    other.is_active = False
    other.save()
    wait_for(lambda: (m := hass.latest(f"homeassistant/sensor/fablab_printer_{other.pk}/progress/config"))
             and m.payload == b"", publisher=publisher, what="deactivated printer cleared")
    other.is_active = True
    other.save()
    wait_for(lambda: config(hass, other, "progress"), publisher=publisher, what="reactivated printer")


def test_printers_deleted_while_not_running_are_cleared_at_start(broker, hass, settings, printer):
    settings.HOME_ASSISTANT_MQTT_URL = url_for(broker)
    first = HomeAssistantPublisher().connect()
    first.step()
    wait_for(lambda: config(hass, printer, "state"), what="configs")
    first.close()
    printer_id = printer.pk
    printer.delete()
    second = HomeAssistantPublisher().connect()
    try:
        wait_for(lambda: (m := hass.latest(f"homeassistant/sensor/fablab_printer_{printer_id}/state/config"))
                 and m.payload == b"", publisher=second, what="stale retained config cleared")
    finally:
        second.close()


def test_last_will_marks_the_publisher_offline(broker, hass, publisher, printer):
    publisher.step()
    wait_for(lambda: (m := hass.latest("fablab/status")) and m.payload == b"online", what="online")
    publisher.client.loop_stop()
    publisher.client.socket().close()  # the process dies without saying goodbye
    wait_for(lambda: (m := hass.latest("fablab/status")) and m.payload == b"offline", timeout=10,
             what="the broker publishing the last will")


def test_no_credentials_in_any_payload(hass, publisher, printer):
    publisher.step()
    wait_for(lambda: config(hass, printer, "current_file") and hass.latest(f"fablab/printers/{printer.pk}/state"),
             what="everything")
    hass.announce()
    wait_for(lambda: publisher.stats["republished"] >= 2, publisher=publisher, what="republish")
    time.sleep(0.2)
    everything = b" ".join(m.topic.encode() + b" " + m.payload for m in hass.messages)
    for secret in (PUBLISHER_PASSWORD, "pub-S3cret", ACCESS_CODE, "10.1.1.50", "fablab:"):
        assert secret.encode() not in everything


def test_settings_are_checked(settings, broker):
    assert broker_config("") is None
    parsed = broker_config("mqtts://user%40lab:p%3Ass@broker.example:8884")
    assert (parsed.host, parsed.port, parsed.username, parsed.password, parsed.tls) == (
        "broker.example", 8884, "user@lab", "p:ss", True)
    assert broker_config("mqtt://broker.example").port == 1883
    assert "p:ss" not in repr(parsed)
    for bad in ("http://broker:1883", "mqtt://:1883", "mqtt://broker:99999"):
        with pytest.raises(InvalidInput):
            broker_config(bad)
    settings.HOME_ASSISTANT_DISCOVERY_PREFIX = "home/#"
    with pytest.raises(InvalidInput, match="wildcards"):
        homeassistant.discovery_prefix()
    settings.HOME_ASSISTANT_DISCOVERY_PREFIX = "homeassistant"
    with pytest.raises(HomeAssistantError, match="refused") as refused:
        HomeAssistantPublisher(config=broker_config(url_for(broker, password="wrong-password-1")),
                               connect_timeout=3).connect()
    assert "wrong-password-1" not in str(refused.value)


def test_management_command(settings, broker, hass, printer):
    settings.HOME_ASSISTANT_MQTT_URL = ""
    out = []
    call_command("publish_home_assistant", "--once", stdout=_Writer(out))
    assert "not set" in "".join(out)
    settings.HOME_ASSISTANT_MQTT_URL = url_for(broker)
    call_command("publish_home_assistant", "--once", stdout=_Writer(out))
    assert "published 1 printers" in "".join(out)
    wait_for(lambda: config(hass, printer, "state"), what="configs from the command")
    settings.HOME_ASSISTANT_MQTT_URL = url_for(broker, password="nope-nope")
    with pytest.raises(CommandError, match="refused"):
        call_command("publish_home_assistant", "--once", stdout=_Writer(out))


class _Writer:
    def __init__(self, sink):
        self.sink = sink

    def write(self, text):
        self.sink.append(text)

    def flush(self):
        pass
