"""The simulators' own payload model against real printers: the corpus proves the model is faithful.

For every key the app's normalisers read, the simulated printer's report has the key where a real
printer of the same model has it, with the same JSON type; and both, normalised, give the same kind
of state (the same fields set, of the same types, lists of the same shape).
"""

import dataclasses
import json

import pytest

from printers.drivers.bambu.client import NORMALISE_INPUTS
from printers.drivers.bambu.merge import MEMO_KEY
from printers.drivers.bambu.normalise import normalise as bambu_normalise
from printers.drivers.prusalink.client import PrusaLinkClient
from printers.drivers.prusalink.client import normalise as prusa_normalise
from printers.simulators.bambu import FakeBambuPrinter, fake_serial
from printers.simulators.payloads import BAMBU_MODELS, bambu_model
from printers.simulators.prusalink import PrusaLinkSimulator
from printers.simulators.storage import builtin_print_file
from printers.tests.conftest import MODEL_REPORTS, bambu_corpus_report
from printers.tests.test_prusalink import _corpus as prusa_corpus

# Every path of the `print` object that the Bambu normaliser and client read ("[]": each list element).
BAMBU_READ_PATHS = (
    "gcode_state", "stg_cur", "hms", "hms[].attr", "hms[].code", "print_error", "mc_remaining_time",
    "chamber_temper", "device.ctc.info.temp", "device.nozzle.info[].id", "device.nozzle.info[].type",
    "device.nozzle.info[].diameter", "task_id", "mc_percent", "layer_num", "total_layer_num", "nozzle_temper",
    "nozzle_target_temper", "bed_temper", "bed_target_temper", "subtask_name", "gcode_file", "nozzle_type",
    "nozzle_diameter", "fun", "ams.tray_now", "ams.tray_exist_bits", "ams.ams[].id", "ams.ams[].humidity",
    "ams.ams[].humidity_raw", "ams.ams[].temp", "ams.ams[].tray[].id", "ams.ams[].tray[].tray_type",
    "ams.ams[].tray[].tray_sub_brands", "ams.ams[].tray[].tray_color", "ams.ams[].tray[].remain",
    "vt_tray.tray_type", "vt_tray.tray_sub_brands", "vt_tray.tray_color", "vt_tray.remain",
)
# The real reports of each model (MODEL_REPORTS) and, for the P1 series, a running one too.
REAL_REPORTS = {
    "X1C": [MODEL_REPORTS["X1C"]],
    "P1S": [MODEL_REPORTS["P1S"], "tfyre_p1series_running_full_push_status.json"],
    "A1": [MODEL_REPORTS["A1"]],
}
HMS_REPORT = "hab_misc_amsht_running_hms_pushall_getversion.json"  # the corpus's report with HMS entries
# Keys of firmware newer than some captures: the simulators send them, a capture from before may lack them.
NEWER_FIRMWARE = {"fun"}  # the bits of authorization control (2025 firmware, printers.md §1.8)


def json_type(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {dict: "object", list: "array", str: "string", type(None): "null"}[type(value)]


def types_at(payload, path: str) -> set[str]:
    """The JSON types of every value at `path` in `payload` (empty: the path is not there)."""
    values = [payload]
    for part in path.split("."):
        many = part.endswith("[]")
        key = part.removesuffix("[]")
        values = [value[key] for value in values if isinstance(value, dict) and key in value]
        if many:
            values = [item for value in values if isinstance(value, list) for item in value]
    return {json_type(value) for value in values}


def real_print(name: str) -> dict:
    if name.startswith("tfyre_"):
        from printers.tests.conftest import bambu_corpus

        return bambu_corpus(name)["print"]
    return bambu_corpus_report(name)[0]


def simulated_reports(model: str) -> dict[str, dict]:
    """Full reports of a simulated printer of `model`, as sent (through JSON), by situation."""
    sim = FakeBambuPrinter(serial=fake_serial(model, 1), host="127.0.0.1", port=1, access_code="x", profile=model,
                           tick_seconds=1.0, speed=30.0, files={}, prepare_ticks=2, cancel_clear_ticks=2)
    sent = []
    sim._publish = lambda message: sent.append(json.loads(json.dumps(message))) or True
    name, data = builtin_print_file("3mf", layers=10, seconds=300)
    sim.add_file(name, data)

    def report() -> dict:
        sim._publish_status(full=True)
        return sent[-1]["print"]

    reports = {"idle": report()}
    sim.start_job(name)
    reports["preparing"] = report()
    while sim.state["gcode_state"] != "FINISH":
        sim.tick()
        if sim.state["gcode_state"] == "RUNNING" and sim.state["layer_num"] >= 3:
            reports.setdefault("running", report())
    reports["finished"] = report()
    sim.start_job(name)
    for _ in range(4):
        sim.tick()
    sim._handle("print", {"command": "stop", "sequence_id": "7"})
    for _ in range(4):
        sim.tick()
    reports["failed after a cancel"] = report()
    sim.fail_at_layer(2)
    sim.start_job(name)
    while sim.state["gcode_state"] != "FAILED":
        sim.tick()
    reports["failed"] = report()
    return reports


def test_the_read_paths_cover_everything_the_normaliser_reads():
    assert {path.split(".")[0].removesuffix("[]") for path in BAMBU_READ_PATHS} >= NORMALISE_INPUTS - {MEMO_KEY}


@pytest.mark.parametrize("model", sorted(BAMBU_MODELS))
def test_bambu_reports_have_the_real_printers_keys_and_types(model):
    real = [real_print(name) for name in REAL_REPORTS[model]]
    ours = list(simulated_reports(model).values())
    hms_real = real_print(HMS_REPORT)
    for path in BAMBU_READ_PATHS:
        real_types = set().union(*(types_at(report, path) for report in real))
        if path.startswith("hms[]"):
            real_types |= types_at(hms_real, path)
        our_types = set().union(*(types_at(report, path) for report in ours))
        if path in NEWER_FIRMWARE and not real_types:
            continue
        assert our_types == real_types, f"{model} {path}: ours {our_types or 'absent'}, real {real_types or 'absent'}"


# (model, real report, the situation of ours that matches it)
SAME_SITUATION = [
    ("X1C", MODEL_REPORTS["X1C"], "finished"),
    ("P1S", MODEL_REPORTS["P1S"], "failed after a cancel"),  # FAILED, print_error back to 0
    ("P1S", "tfyre_p1series_running_full_push_status.json", "running"),
    ("A1", MODEL_REPORTS["A1"], "idle"),
]
# What a capture of older firmware does not say yet (this one predates nozzle_type and nozzle_diameter).
OLDER_CAPTURE_GAPS = {"tfyre_p1series_running_full_push_status.json": {"nozzle_type", "nozzle_diameter_mm"}}


def kind(state) -> dict:
    """What a normalised state looks like, without its values: None or a type; lists by their keys."""
    shape = {}
    for field in dataclasses.fields(state):
        value = getattr(state, field.name)
        if isinstance(value, list):
            shape[field.name] = ("list", bool(value), sorted({key for item in value for key in item}))
            if field.name == "ams_units":  # which sensors the AMS has: the same on the same model
                shape[field.name] += (sorted({key for item in value for key, v in item.items() if v is None}),)
        elif value in (None, ""):
            shape[field.name] = repr(value)
        else:
            shape[field.name] = type(value).__name__
    return shape


@pytest.mark.parametrize(("model", "report", "situation"), SAME_SITUATION)
def test_bambu_reports_normalise_to_the_same_kind_of_state_as_the_real_ones(model, report, situation):
    real = bambu_normalise(real_print(report))
    ours = bambu_normalise(simulated_reports(model)[situation])
    assert ours.raw_state == real.raw_state and ours.state == real.state
    real_kind, our_kind = kind(real), kind(ours)
    # A LAN print of the P1 series has no task id; jobs sent like ours (and the X1C's capture) have one.
    real_kind.pop("job_key"), our_kind.pop("job_key")
    for field in OLDER_CAPTURE_GAPS.get(report, ()):
        assert real_kind.pop(field) in ("None", "''") and our_kind.pop(field) not in ("None", "''")
    assert our_kind == real_kind


def test_bambu_version_has_the_real_module_fields():
    for model in BAMBU_MODELS:
        real_modules = bambu_corpus_report(MODEL_REPORTS[model])[1]["module"]
        sim = FakeBambuPrinter(serial=fake_serial(model, 3), host="127.0.0.1", port=1, access_code="x",
                               profile=model)
        ours = sim.version["module"]
        for key in ("name", "sw_ver", "hw_ver", "sn", "flag"):
            assert {json_type(m[key]) for m in ours} == {json_type(m[key]) for m in real_modules if key in m}
        ota = next(m for m in ours if m["name"] == "ota")
        assert ota["product_name"].startswith("Bambu Lab") and ota["sn"] == sim.serial
        assert json.loads(json.dumps({"info": sim.version}))["info"]["command"] == "get_version"


def test_the_short_model_names_still_work():
    assert bambu_model("X1").key == "X1C" and bambu_model("p1").key == "P1S" and bambu_model("a1").key == "A1"
    with pytest.raises(ValueError, match="Unknown Bambu model"):
        bambu_model("H2D")


# --- PrusaLink -------------------------------------------------------------------------------------


def shape(value):
    """Keys and JSON types, all the way down."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value[:1]]
    return json_type(value)


@pytest.fixture
def printing_core_one():
    name, data = builtin_print_file("gcode", layers=20, seconds=1200)
    with PrusaLinkSimulator(password="pw", model="COREONE", serial="10763-3742441631700001") as sim:
        sim.add_print_file(name, data)
        sim.start_print(sim.print_files()[0])
        sim.advance(100)
        yield sim, PrusaLinkClient(host=sim.host, port=sim.port, password="pw")


def test_prusalink_bodies_have_the_real_keys_and_types(printing_core_one):
    sim, client = printing_core_one
    assert shape(client.status()) == shape(prusa_corpus("pubeldev_buddy_api_v1_status_printing.json"))
    assert shape(client.job()) == shape(prusa_corpus("pubeldev_buddy_xl_api_v1_job_printing.json"))
    assert shape(client.info()) == shape(prusa_corpus("pubeldev_buddy_mk4_api_v1_info.json"))
    assert shape(client.version()) == shape(prusa_corpus("pubeldev_buddy_xl_api_version.json"))
    assert client.info()["hostname"] == "PrusaCoreOne" and client.info()["serial"] == sim.serial
    with PrusaLinkSimulator(password="pw", model="MK4") as mk4:
        assert PrusaLinkClient(host=mk4.host, port=mk4.port, password="pw").version()["hostname"] == "PrusaMK4"


def test_prusalink_bodies_normalise_to_the_same_kind_of_state_as_the_real_ones(printing_core_one):
    _sim, client = printing_core_one
    real = prusa_normalise(prusa_corpus("pubeldev_buddy_api_v1_status_printing.json"),
                           prusa_corpus("pubeldev_buddy_xl_api_v1_job_printing.json"))
    ours = prusa_normalise(client.status(), client.job())
    assert (ours.state, ours.raw_state) == (real.state, real.raw_state)
    assert kind(ours) == kind(real)
