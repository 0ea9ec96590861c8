import copy
import json

import pytest

from fablab.tests.helpers import corpus_cases, corpus_path
from printers.choices import PrinterState
from printers.drivers.bambu import BambuReport, apply_message, decode_message, hms_code, normalise, print_error_code
from printers.exceptions import ReportError
from printers.tests.conftest import bambu_corpus


def bambu_files() -> list[str]:
    return [path.name for path in corpus_path("printers", "bambu").glob("*.json")]


CORPUS = corpus_cases(bambu_files)


def test_corpus_is_there():
    assert len(bambu_files()) >= 15, f"Bambu corpus not found under {corpus_path('printers', 'bambu')}"


@pytest.mark.parametrize("name", CORPUS)
def test_every_corpus_payload_parses(name):
    report = BambuReport()
    result = report.feed(json.dumps(bambu_corpus(name)).encode())
    assert result.kind in {"status", "ack", "version", "other"}
    state = report.normalised()
    if result.kind == "status" and "gcode_state" in bambu_corpus(name)["print"]:
        assert state is not None and state.state in PrinterState.values
        json.dumps(state.as_fields())  # storable as it is


@pytest.mark.parametrize(("name", "expected"), [
    ("hab_a1_amslite_idle_pushall_getversion.json",
     {"state": "idle", "chamber_temp_c": None, "current_file": "", "errors": []}),
    ("tfyre_p1series_running_full_push_status.json",
     {"state": "printing", "progress_percent": 11.0, "remaining_seconds": 958 * 60, "layer": 20,
      "total_layers": 749, "current_file": "glowie.gcode"}),
    ("hab_p1p_ams_failed_pushall_getversion.json",
     {"state": "failed", "raw_state": "FAILED", "current_file": "Fidget Collection"}),
    ("hab_p1p_noams_finish_extspool_pushall_getversion.json", {"state": "finished", "progress_percent": 100.0}),
    ("hab_x1c_4ams_ams2pro_amsht_finish_pushall_getversion.json",
     {"state": "finished", "current_file": "Garden Hose Healer: Male fitting", "job_key": "702383065"}),
    ("hab_misc_amsht_running_hms_pushall_getversion.json", {"state": "printing", "progress_percent": 22.0}),
    ("hab_h2d_dualnozzle_running_pushall_getversion.json", {"state": "printing"}),
])
def test_normalised_fields(name, expected):
    state = normalise(apply_message({}, bambu_corpus(name))[0])
    for field, value in expected.items():
        assert getattr(state, field) == value, field


def test_hms_code_and_common_severity_does_not_need_attention():
    state = normalise(apply_message({}, bambu_corpus("hab_misc_amsht_running_hms_pushall_getversion.json"))[0])
    assert hms_code(201327360, 196615) == "HMS_0C00_0300_0003_0007"
    assert state.errors[0]["code"] == "HMS_0C00_0300_0003_0007"
    assert state.errors[0]["severity"] == "common"
    assert "HMS_0C00_0300_0003_0007" in state.errors[0]["text"]
    assert state.state == PrinterState.PRINTING


def test_print_error_codes_and_texts():
    assert print_error_code(50348044) == "0300_400C"
    assert print_error_code(117473286) == "0700_8006"
    base = bambu_corpus("tfyre_p1series_running_full_push_status.json")
    merged, _ = apply_message({}, base)
    merged, _ = apply_message(merged, {"print": {"print_error": 117473286, "msg": 1}})
    state = normalise(merged)
    assert state.state == PrinterState.PRINTING  # print_error alone never flips the state
    assert state.errors == [{"source": "print_error", "code": "0700_8006", "severity": "",
                             "text": "The AMS cannot feed filament."}]
    merged, _ = apply_message(merged, {"print": {"print_error": 0x12345678, "msg": 1}})
    assert "1234_5678" in normalise(merged).errors[0]["text"]
    merged, _ = apply_message(merged, {"print": {"print_error": 0, "msg": 1}})
    assert normalise(merged).errors == []


def test_serious_hms_needs_attention_and_cleared_by_empty_list():
    merged, _ = apply_message({}, bambu_corpus("tfyre_p1series_running_full_push_status.json"))
    merged, _ = apply_message(merged, {"print": {"hms": [{"attr": 0x07008000, "code": 0x00020006}], "msg": 1}})
    state = normalise(merged)
    assert state.state == PrinterState.NEEDS_ATTENTION
    assert state.errors[0]["severity"] == "serious"
    merged, _ = apply_message(merged, {"print": {"msg": 1, "bed_temper": 60}})
    assert normalise(merged).state == PrinterState.NEEDS_ATTENTION  # absent hms = unchanged
    merged, _ = apply_message(merged, {"print": {"hms": [], "msg": 1}})
    assert normalise(merged).state == PrinterState.PRINTING


@pytest.mark.parametrize(("stage", "expected"), [(16, "paused"), (6, "needs_attention"), (17, "needs_attention"),
                                                 (34, "needs_attention"), (35, "needs_attention")])
def test_pause_reason_stages(stage, expected):
    merged, _ = apply_message({}, bambu_corpus("tfyre_p1series_running_full_push_status.json"))
    merged, _ = apply_message(merged, {"print": {"gcode_state": "PAUSE", "stg_cur": stage, "msg": 1}})
    assert normalise(merged).state == expected


def test_cancel_is_failed_after_print_error_0300400C_even_once_cleared():
    merged, _ = apply_message({}, bambu_corpus("tfyre_p1series_running_full_push_status.json"))
    merged, _ = apply_message(merged, {"print": {"print_error": 50348044, "msg": 1}})
    assert normalise(merged).state == PrinterState.PRINTING
    merged, _ = apply_message(merged, {"print": {"gcode_state": "FAILED", "msg": 1,
                                                 "hms": [{"attr": 0x03000000, "code": 0x0002400C}]}})
    state = normalise(merged)
    assert state.state == PrinterState.CANCELLED
    assert [e["source"] for e in state.errors] == ["print_error"]  # the cancel echo HMS is no fault
    merged, _ = apply_message(merged, {"print": {"print_error": 0, "msg": 1}})
    assert normalise(merged).state == PrinterState.CANCELLED
    # The next job forgets the cancel; a plain FAILED is a failure.
    merged, _ = apply_message(merged, {"print": {"gcode_state": "PREPARE", "msg": 1}})
    merged, _ = apply_message(merged, {"print": {"gcode_state": "FAILED", "msg": 1}})
    assert normalise(merged).state == PrinterState.FAILED


def test_delta_changes_only_what_it_carries():
    full = bambu_corpus("tfyre_p1series_running_full_push_status.json")
    merged, _ = apply_message({}, full)
    before = normalise(merged)
    merged, result = apply_message(merged, bambu_corpus("tfyre_delta_push_status.json"))
    after = normalise(merged)
    assert result.kind == "status"
    assert after.nozzle_temp_c == 229.9375 and after.bed_temp_c == 64.96875
    assert after.remaining_seconds == 100 * 60
    assert after.filament_slots == before.filament_slots
    assert after.state == before.state and after.layer == before.layer


def test_nested_objects_merge_recursively():
    merged, _ = apply_message({}, {"print": {"gcode_state": "IDLE", "online": {"ahb": True, "ext": False},
                                             "upload": {"status": "idle", "progress": 0}, "msg": 0}})
    merged, _ = apply_message(merged, {"print": {"online": {"ext": True}, "msg": 1}})
    assert merged["online"] == {"ahb": True, "ext": True}
    assert merged["upload"] == {"status": "idle", "progress": 0}


def test_lists_are_whole_values():
    merged, _ = apply_message({}, {"print": {"gcode_state": "RUNNING", "stg": [2, 14, 1], "lights_report": [
        {"node": "chamber_light", "mode": "on"}], "msg": 0}})
    merged, _ = apply_message(merged, {"print": {"stg": [1], "lights_report": [], "msg": 1}})
    assert merged["stg"] == [1] and merged["lights_report"] == []


def _ams(trays, *, bits="f", now="0", unit="0"):
    return {"ams": [{"id": unit, "tray": trays}], "tray_exist_bits": bits, "tray_now": now}


def test_ams_merges_by_unit_and_tray_id_and_keeps_vt_tray():
    pla = {"id": "0", "tray_type": "PLA", "tray_color": "FF0000FF", "remain": 80, "tray_sub_brands": "PLA Basic"}
    petg = {"id": "1", "tray_type": "PETG", "tray_color": "00FF00FF", "remain": -1}
    vt = {"id": "254", "tray_type": "TPU", "tray_color": "0000FFFF", "remain": 50}
    merged, _ = apply_message({}, {"print": {"gcode_state": "IDLE", "msg": 0, "vt_tray": vt,
                                             "ams": _ams([pla, petg], bits="3")}})
    slots = normalise(merged).filament_slots
    assert [(s["slot"], s["type"], s["colour"], s["remaining_percent"], s["loaded"]) for s in slots] == [
        (0, "PLA", "#FF0000", 80, True), (1, "PETG", "#00FF00", None, False), (254, "TPU", "#0000FF", 50, False)]
    # A delta with only one tray's remain and no vt_tray: other trays and the external spool stay.
    merged, _ = apply_message(merged, {"print": {"msg": 1, "ams": {"ams": [{"id": "0", "tray": [
        {"id": "0", "remain": 70}]}]}}})
    slots = normalise(merged).filament_slots
    assert [(s["slot"], s["type"], s["remaining_percent"], s["name"]) for s in slots] == [
        (0, "PLA", 70, "PLA Basic"), (1, "PETG", None, ""), (254, "TPU", 50, "")]
    # A full push where slot 1 carries only its id: the slot is empty now.
    merged, _ = apply_message(merged, {"print": {"msg": 0, "ams": _ams([pla, {"id": "1"}], bits="1")}})
    assert [s["slot"] for s in normalise(merged).filament_slots] == [0, 254]
    # tray_type "" in a delta clears the slot.
    merged, _ = apply_message(merged, {"print": {"msg": 1, "ams": {"ams": [{"id": "0", "tray": [
        {"id": "0", "tray_type": ""}]}]}}})
    assert [s["slot"] for s in normalise(merged).filament_slots] == [254]


def test_tray_exist_bits_are_the_source_of_truth():
    trays = [{"id": str(i), "tray_type": "PLA", "tray_color": "FFFFFFFF"} for i in range(4)]
    merged, _ = apply_message({}, {"print": {"gcode_state": "IDLE", "msg": 0, "ams": _ams(trays, bits="5")}})
    assert [s["slot"] for s in normalise(merged).filament_slots] == [0, 2]


def test_ams_ht_and_multi_unit_slots_from_the_corpus():
    state = normalise(apply_message({}, bambu_corpus(
        "hab_x1c_4ams_ams2pro_amsht_finish_pushall_getversion.json"))[0])
    slots = {s["slot"]: s for s in state.filament_slots}
    assert 8 not in slots  # unit 2 tray 0 is empty (tray_exist_bits 10eff)
    assert slots[128]["type"] == "PA-CF" and slots[128]["ams"] == 128
    assert slots[0]["colour"] == "#000000" and slots[0]["remaining_percent"] == 93
    assert len([s for s in slots.values() if s["ams"] is not None]) == 12


def test_external_spool_loaded():
    state = normalise(apply_message({}, bambu_corpus("hab_p1p_noams_finish_extspool_pushall_getversion.json"))[0])
    assert [s for s in state.filament_slots if s["slot"] == 254][0]["loaded"] is True


@pytest.mark.parametrize(("payload", "message"), [
    (b'{"print": {"gcode_state": "RUN', "not valid JSON"),
    (b'{"print": {"subtask_name": "\xff\xfe"}}', "not valid UTF-8"),
    (b"[1, 2]", "must be a JSON object"),
    (b'{"print": [1]}', "must be an object"),
    (b'{"print": {"nozzle_temper": "hot", "msg": 1}}', "nozzle_temper: expected a number"),
    (b'{"print": {"mc_percent": true, "msg": 1}}', "mc_percent: expected a number"),
    (b'{"print": {"ams": "none", "msg": 1}}', "ams: expected an object"),
    (b'{"print": {"hms": {"attr": 1}, "msg": 1}}', "hms: expected a list"),
    (b'{"print": {"ams": {"ams": [{"tray": []}]}, "msg": 1}}', "every entry must be an object with an id"),
    (b'{"print": {"ams": {"tray_exist_bits": "zz"}, "msg": 1}}', "expected a hex bitmask"),
    # the nozzle and the AMS humidity
    (b'{"print": {"nozzle_diameter": "wide", "msg": 1}}', "nozzle_diameter: expected a number"),
    (b'{"print": {"ams": {"ams": [{"id": "0", "humidity": "damp"}]}, "msg": 1}}', "ams humidity: expected a number"),
    (b'{"print": {"device": {"nozzle": {"info": [{"id": 0, "diameter": [1]}]}}, "msg": 1}}', "diameter"),
])
def test_bad_reports_raise_and_leave_the_state_unchanged(payload, message):
    report = BambuReport()
    report.feed(json.dumps(bambu_corpus("tfyre_p1series_running_full_push_status.json")))
    before = copy.deepcopy(report.print)
    with pytest.raises(ReportError, match=message):
        report.feed(payload)
    assert report.print == before


def test_unknown_fields_and_unknown_gcode_state_are_tolerated(caplog):
    merged, _ = apply_message({}, {"print": {"gcode_state": "CALIBRATING", "brand_new": {"x": [1]}, "msg": 0}})
    assert normalise(merged).state == PrinterState.BUSY
    assert "CALIBRATING" in caplog.text


def test_delta_before_any_full_report_has_no_state_yet():
    report = BambuReport()
    report.feed(decode_message(json.dumps(bambu_corpus("tfyre_delta_push_status.json"))))
    assert report.normalised() is None


def test_command_acks_are_not_merged():
    merged, result = apply_message({"gcode_state": "IDLE"}, bambu_corpus("obapi_report_print_ams_get_rfid_ack.json"))
    assert result.kind == "ack" and merged == {"gcode_state": "IDLE"}


# --- nozzle, AMS humidity and the external spool ------------------------------------------------


@pytest.mark.parametrize(("name", "nozzle_type", "diameter"), [
    ("hab_a1_amslite_idle_pushall_getversion.json", "stainless_steel", 0.4),
    ("hab_p1p_ams_failed_pushall_getversion.json", "hardened_steel", 0.4),
    ("hab_misc_amsht_running_hms_pushall_getversion.json", "hardened_steel", 0.4),
    # device.nozzle.info (type code HX01) agrees with the top-level nozzle_type
    ("hab_x1c_4ams_ams2pro_amsht_finish_pushall_getversion.json", "hardened_steel", 0.4),
    # newer firmware: device.nozzle.info says HS01 (hardened) where the legacy key still says stainless
    ("hab_h2d_dualnozzle_running_pushall_getversion.json", "hardened_steel", 0.4),
    ("obapi_report_print_push_status_full_x1.json", "", 0.4),  # no nozzle_type in this report
    ("tfyre_p1series_running_full_push_status.json", "", None),
])
def test_nozzle_type_and_diameter_from_the_corpus(name, nozzle_type, diameter):
    state = normalise(apply_message({}, bambu_corpus(name))[0])
    assert (state.nozzle_type, state.nozzle_diameter_mm) == (nozzle_type, diameter)
    assert state.as_fields()["nozzle_type"] == nozzle_type  # stored on the live state


def test_ams_humidity_and_temperature_from_the_corpus():
    state = normalise(apply_message({}, bambu_corpus("hab_x1c_4ams_ams2pro_amsht_finish_pushall_getversion.json"))[0])
    assert state.ams_units == [
        # the printer's index 5 (driest) is level 1 as Bambu Studio shows it; humidity_raw is the %
        {"id": 0, "humidity_level": 1, "humidity_percent": 8, "temp_c": 26.2, "wet": False},
        {"id": 1, "humidity_level": 1, "humidity_percent": 4, "temp_c": 25.4, "wet": False},
        {"id": 2, "humidity_level": 2, "humidity_percent": 9, "temp_c": 65.0, "wet": False},
        {"id": 128, "humidity_level": 1, "humidity_percent": 8, "temp_c": 45.2, "wet": False},
    ]
    # AMS Lite: no temperature sensor ("0.0") and no humidity_raw
    a1 = normalise(apply_message({}, bambu_corpus("hab_a1_amslite_idle_pushall_getversion.json"))[0])
    assert a1.ams_units == [{"id": 0, "humidity_level": 1, "humidity_percent": None, "temp_c": None, "wet": False}]
    p1p = normalise(apply_message({}, bambu_corpus("hab_p1p_ams_failed_pushall_getversion.json"))[0])
    assert p1p.ams_units[0]["humidity_level"] == 3 and not p1p.ams_units[0]["wet"]


@pytest.mark.parametrize(("index", "level", "wet"), [("1", 5, True), ("2", 4, True), ("3", 3, False),
                                                     ("5", 1, False), ("0", None, False), ("9", None, False)])
def test_a_wet_ams_is_humidity_level_4_or_5(index, level, wet):
    merged, _ = apply_message({}, bambu_corpus("tfyre_p1series_running_full_push_status.json"))
    merged, _ = apply_message(merged, {"print": {"msg": 1, "ams": {"ams": [{"id": "0", "humidity": index,
                                                                             "humidity_raw": "63"}]}}})
    unit = normalise(merged).ams_units[0]
    assert (unit["humidity_level"], unit["wet"], unit["humidity_percent"]) == (level, wet, 63)


def test_the_external_spool_has_no_measured_remain():
    """The printer reports remain 0 for vt_tray because nothing measures it: unknown, not empty."""
    state = normalise(apply_message({}, bambu_corpus("hab_p1p_noams_finish_extspool_pushall_getversion.json"))[0])
    external = [s for s in state.filament_slots if s["slot"] == 254][0]
    assert external["type"] == "PETG" and external["remaining_percent"] is None
    misc = normalise(apply_message({}, bambu_corpus("hab_misc_amsht_running_hms_pushall_getversion.json"))[0])
    assert [s["remaining_percent"] for s in misc.filament_slots if s["slot"] == 254] == [None]


def test_a_changed_nozzle_reaches_the_state_through_the_report_tracker():
    from printers.drivers.bambu.client import ReportTracker

    tracker = ReportTracker()
    tracker.feed(bambu_corpus("hab_a1_amslite_idle_pushall_getversion.json"))
    assert tracker.state.nozzle_type == "stainless_steel"
    tracker.feed({"print": {"nozzle_type": "hardened_steel", "nozzle_diameter": "0.6", "command": "push_status",
                            "msg": 1}})
    assert (tracker.state.nozzle_type, tracker.state.nozzle_diameter_mm) == ("hardened_steel", 0.6)


@pytest.mark.parametrize(("nozzle_type", "takes"), [
    ("hardened_steel", True), ("high_flow_hardened_steel", True), ("tungsten_carbide", True),
    ("stainless_steel", False), ("brass", False), ("", None),
])
def test_which_nozzle_takes_abrasive_filament(nozzle_type, takes):
    from printers.state import nozzle_takes_abrasive

    assert nozzle_takes_abrasive(nozzle_type) is takes


@pytest.mark.parametrize(("filament", "abrasive"), [
    ("PA-CF", True), ("PETG-CF", True), ("PAHT-CF", True), ("PA6-GF", True), ("PLA CF", True), ("pla-cf", True),
    ("PLA", False), ("PETG", False), ("TPU", False), ("PLA-S", False), ("", False),
])
def test_abrasive_filaments(filament, abrasive):
    from printers.state import is_abrasive_filament

    assert is_abrasive_filament(filament) is abrasive
