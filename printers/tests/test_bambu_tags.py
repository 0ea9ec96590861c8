"""The RFID identity of the spool in each AMS tray (`tray_uuid`, else `tag_uid`) in the normalised slots."""

import pytest

from printers.drivers.bambu import apply_message, normalise
from printers.simulators.payloads import bambu_model, bambu_status
from printers.tests.conftest import bambu_corpus

ZERO_UUID, ZERO_UID = "0" * 32, "0" * 16


def _slots(name: str) -> dict[int, dict]:
    return {slot["slot"]: slot for slot in normalise(apply_message({}, bambu_corpus(name))[0]).filament_slots}


def test_trays_with_bambu_spools_carry_the_spools_uuid():
    slots = _slots("hab_x1c_4ams_ams2pro_amsht_finish_pushall_getversion.json")
    assert slots[0]["tag"] == "5F3D8925633343C29FB9A97FA9125971"
    assert slots[1]["tag"] == "A77739E606CA41FAA0693A6A3BA63726"
    assert slots[4]["tag"] == "AD76420E81274E7DA363EEE5A6CAF619"  # the second AMS, tray 0
    assert slots[128]["tag"] == "3912400D8BFC4A4D9578E9E643162E10"  # the AMS HT
    tags = [slot["tag"] for slot in slots.values()]
    assert all(tags) and len(set(tags)) == len(tags)  # 12 tagged spools, each its own


@pytest.mark.parametrize("name", ["hab_h2d_dualnozzle_running_pushall_getversion.json",
                                  "hab_misc_amsht_running_hms_pushall_getversion.json"])
def test_the_external_spool_and_untagged_trays_have_no_tag(name):
    slots = _slots(name)
    assert all(slot["tag"] for number, slot in slots.items() if number != 254)
    assert all(slot["tag"] == "" for number, slot in slots.items() if number == 254)


@pytest.mark.parametrize("name", ["hab_a1_amslite_idle_pushall_getversion.json",
                                  "hab_p1p_ams_failed_pushall_getversion.json",
                                  "hab_p1p_noams_finish_extspool_pushall_getversion.json",
                                  "tfyre_p1series_running_full_push_status.json"])
def test_all_zero_ids_mean_no_tag(name):
    slots = _slots(name)
    assert slots and all(slot["tag"] == "" for slot in slots.values())


def _tray(**fields) -> dict:
    return {"id": "0", "tray_type": "PLA", "tray_color": "FF0000FF", **fields}


def _tag_of(tray: dict) -> str:
    merged, _ = apply_message({}, {"print": {"gcode_state": "IDLE", "msg": 0, "ams": {
        "ams": [{"id": "0", "tray": [tray]}], "tray_exist_bits": "1", "tray_now": "255"}}})
    return normalise(merged).filament_slots[0]["tag"]


@pytest.mark.parametrize(("fields", "tag"), [
    ({"tray_uuid": ZERO_UUID, "tag_uid": "c0ffee0100000100"}, "C0FFEE0100000100"),  # no uuid: the tag's uid
    ({"tray_uuid": "5f3d8925633343c29fb9a97fa9125971", "tag_uid": "DE6CF07300000100"},
     "5F3D8925633343C29FB9A97FA9125971"),
    ({"tray_uuid": ZERO_UUID, "tag_uid": ZERO_UID}, ""),
    ({}, ""),
    ({"tray_uuid": "not-a-uuid", "tag_uid": 12345}, ""),  # what is no hex id is no tag (the report still reads)
    ({"tray_uuid": "F" * 65}, ""),
    ({"tray_uuid": None, "tag_uid": " 0a0b0c0d "}, "0A0B0C0D"),
])
def test_the_tag_is_the_uuid_else_the_uid_in_upper_case_hex(fields, tag):
    assert _tag_of(_tray(**fields)) == tag


def test_a_delta_that_changes_the_spool_changes_the_tag_and_one_without_keeps_it():
    first = {"id": "0", "tray_type": "PLA", "tray_color": "FF0000FF", "tray_uuid": "11" * 16}
    merged, _ = apply_message({}, {"print": {"gcode_state": "IDLE", "msg": 0, "ams": {
        "ams": [{"id": "0", "tray": [first]}], "tray_exist_bits": "1"}}})
    merged, _ = apply_message(merged, {"print": {"msg": 1, "ams": {"ams": [{"id": "0", "tray": [
        {"id": "0", "remain": 40}]}]}}})
    assert normalise(merged).filament_slots[0]["tag"] == "11" * 16
    merged, _ = apply_message(merged, {"print": {"msg": 1, "ams": {"ams": [{"id": "0", "tray": [
        {"id": "0", "tray_uuid": "22" * 16, "tag_uid": "2222222200000100"}]}]}}})
    assert normalise(merged).filament_slots[0]["tag"] == "22" * 16


@pytest.mark.parametrize("model", ["X1C", "P1S", "A1"])
def test_simulated_printers_give_each_tagged_spool_its_own_id(model):
    state = normalise(apply_message({}, {"print": {**bambu_status(model), "msg": 0}})[0])
    tagged = [slot["tag"] for slot in state.filament_slots if slot["tag"]]
    expected = sum(1 for tray in bambu_model(model).trays if tray is not None and tray.sub_brand)
    assert len(tagged) == expected and len(set(tagged)) == expected
    assert all(slot["tag"] == "" for slot in state.filament_slots if not slot["name"])
