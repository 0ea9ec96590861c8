"""The simulated printers' own payloads: what a Bambu Lab or a PrusaLink printer of each model sends.

Written from the protocol (printers.md §1–2), not replayed from captures, so the simulators need
nothing beside the code. The test corpus of real payloads is what proves these match real printers:
`printers/tests/test_simulator_payloads.py` feeds both through the app's normalisers and compares
every key the normalisers read.

Bambu (`device/<serial>/report`): `bambu_status(model)` is the full `print` object of an idle printer
— temperatures, fans, `gcode_state`, `mc_percent`, `layer_num` / `total_layer_num`,
`mc_remaining_time` (minutes), `subtask_name`, `gcode_file`, `hms`, `print_error`, `stg_cur`, the AMS
with its trays (`tray_now`, `tray_exist_bits`), the external spool (`vt_tray`), the nozzle — laid out
and typed like the model's firmware: X1C (01.09 firmware) pushes the full object every time, has a
chamber sensor read through `device.ctc` and describes its nozzle in `device.nozzle.info`; P1S and A1
push deltas, report `chamber_temper` 5 (no sensor) and an AMS (AMS Lite on the A1) without temperature.
`bambu_version(model, serial)` is the `get_version` answer (module list).

PrusaLink on Buddy firmware (Core One, MK4): `prusa_version`, `prusa_info`, `prusa_status` and
`prusa_job` build `/api/version`, `/api/v1/info`, `/api/v1/status` and `/api/v1/job`.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass

# --- Bambu Lab ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tray:
    sub_brand: str  # e.g. "PLA Basic"; "" for a spool without a Bambu RFID tag
    material: str
    colour: str  # RRGGBBAA
    remain: int  # % left, -1 unknown (no RFID)
    info_idx: str  # Bambu's filament preset id, e.g. GFA00


@dataclass(frozen=True)
class BambuModel:
    key: str  # X1C, P1S, A1
    product_name: str  # as get_version's ota module names it
    project_name: str
    serial_prefix: str
    board: tuple[str, str]  # (module name, hw_ver) of the main board in get_version
    firmware: str
    full_pushes: bool  # X1: every push is the full object; P1/A1: deltas after the first
    idle_stage: int  # stg_cur while idle: -1 on X1, 255 on P1/A1
    chamber_sensor: bool
    nozzle_type: str
    ams_name: str  # get_version module of the AMS: "ams/0" or "ams_f1/0" (AMS Lite)
    ams_hw: str
    ams_climate: bool  # the AMS reports its humidity in % and its temperature
    trays: tuple[Tray, ...]
    external: Tray | None  # the spool on the external holder, if one hangs there
    float_temperatures: bool  # X1 firmware sends 0.0 where P1/A1 send 0


_BASIC = "PLA Basic"
BAMBU_MODELS = {
    "X1C": BambuModel(
        key="X1C", product_name="Bambu Lab X1-Carbon", project_name="BL-P001", serial_prefix="00M",
        board=("rv1126", "AP05"), firmware="01.09.00.01", full_pushes=True, idle_stage=-1, chamber_sensor=True,
        nozzle_type="hardened_steel", ams_name="ams/0", ams_hw="AMS08", ams_climate=True,
        trays=(Tray(_BASIC, "PLA", "C0C0C0FF", 86, "GFA00"), Tray(_BASIC, "PLA", "FFFFFFFF", 54, "GFA00"),
               Tray("", "PLA", "FF8000FF", -1, "GFL99"), Tray(_BASIC, "PLA", "000000FF", 100, "GFA00")),
        external=None, float_temperatures=True,
    ),
    "P1S": BambuModel(
        key="P1S", product_name="Bambu Lab P1S", project_name="C12", serial_prefix="01P", board=("esp32", "AP04"),
        firmware="01.08.02.00", full_pushes=False, idle_stage=255, chamber_sensor=False,
        nozzle_type="stainless_steel", ams_name="ams/0", ams_hw="AMS08", ams_climate=False,
        trays=(Tray("PETG HF", "PETG", "FE0000FF", 72, "GFG02"), Tray("", "PETG", "000000FF", -1, "GFG99"),
               Tray("", "PETG", "FFFFFFFF", -1, "GFG99"), Tray(_BASIC, "PLA", "00AE42FF", 35, "GFA00")),
        external=Tray("", "PLA", "161616FF", 0, "GFL99"), float_temperatures=False,
    ),
    "A1": BambuModel(
        key="A1", product_name="Bambu Lab A1", project_name="N2S", serial_prefix="039", board=("esp32", "AP05"),
        firmware="01.05.00.00", full_pushes=False, idle_stage=255, chamber_sensor=False,
        nozzle_type="stainless_steel", ams_name="ams_f1/0", ams_hw="AMS_F102", ams_climate=False,
        trays=(Tray(_BASIC, "PLA", "00AE42FF", 91, "GFA00"), Tray("", "PLA", "8100FEFF", -1, "GFL99"),
               Tray("PLA Silk", "PLA", "02C0AEFF", 64, "GFA05"), Tray("", "PLA", "3D3E3DFF", -1, "GFL99")),
        external=Tray("", "PLA", "FFFFFFFF", 0, "GFL99"), float_temperatures=False,
    ),
}
# Short names the simulate_printers command has always accepted.
BAMBU_ALIASES = {"X1": "X1C", "P1": "P1S"}


def bambu_model(name: str) -> BambuModel:
    """The model for X1C / P1S / A1 (or the short names X1, P1); ValueError for anything else."""
    key = name.strip().upper().replace("-", "")
    key = BAMBU_ALIASES.get(key, key)
    if key not in BAMBU_MODELS:
        raise ValueError(f"Unknown Bambu model {name!r}; choose one of {', '.join(BAMBU_MODELS)}.")
    return BAMBU_MODELS[key]


def _tray(tray_id: str, tray: Tray | None, *, model: BambuModel) -> dict:
    """One AMS tray (or the external spool) as the firmware describes it; an empty slot is its id only."""
    if tray is None:
        return {"id": tray_id}
    rfid = bool(tray.sub_brand)
    # A Bambu spool's RFID: the tag's own uid and the spool's uuid (made up here, one per model and tray).
    uid = hashlib.sha256(f"{model.key}:{tray_id}".encode()).hexdigest().upper()
    body = {
        "id": tray_id, "remain": tray.remain, "k": 0.019999999552965164, "n": 1, "cali_idx": -1,
        "tag_uid": uid[:8] + "00000100" if rfid else "0000000000000000",
        "tray_id_name": "A00-K0" if rfid else "", "tray_info_idx": tray.info_idx, "tray_type": tray.material,
        "tray_sub_brands": tray.sub_brand, "tray_color": tray.colour, "tray_weight": "1000" if rfid else "0",
        "tray_diameter": "1.75" if rfid else "0.00", "tray_temp": "0", "tray_time": "0", "bed_temp_type": "0",
        "bed_temp": "0", "nozzle_temp_max": "240", "nozzle_temp_min": "190",
        "xcam_info": "000000000000000000000000", "tray_uuid": uid[8:40] if rfid else "0" * 32, "ctype": 0,
        "cols": [tray.colour],
    }
    if model.ams_climate:  # newer AMS firmware adds drying data and the tray's state
        body.update({"drying_temp": "55", "drying_time": "8", "state": 11, "total_len": 330000})
    return body


def bambu_ams(model: BambuModel, *, loaded: int | None = None) -> dict:
    """The `ams` block: one unit with four trays; `loaded` is the global tray id in use (None: none)."""
    unit = {"id": "0", "humidity": "4", "temp": "0.0",
            "tray": [_tray(str(i), tray, model=model) for i, tray in enumerate(model.trays)]}
    if model.ams_climate:
        unit.update({"humidity_raw": "24", "temp": "25.3", "dry_time": 0, "info": "1001"})
    present = sum(1 << i for i, tray in enumerate(model.trays) if tray is not None)
    now = "255" if loaded is None else str(loaded)
    return {
        "ams": [unit], "ams_exist_bits": "1", "tray_exist_bits": f"{present:x}", "tray_is_bbl_bits": f"{present:x}",
        "tray_tar": now, "tray_now": now, "tray_pre": now, "tray_read_done_bits": f"{present:x}",
        "tray_reading_bits": "0", "version": 4, "insert_flag": True, "power_on_flag": False,
    }


def _temperature(model: BambuModel, value: float) -> float | int:
    if model.float_temperatures or value != int(value):
        return float(value)
    return int(value)


def bambu_status(model: BambuModel | str) -> dict:
    """The full `print` object of an idle printer of this model (without command/msg/sequence_id)."""
    model = bambu_model(model) if isinstance(model, str) else model
    t = lambda value: _temperature(model, value)  # noqa: E731 - one short conversion, used a dozen times
    status = {
        "upgrade_state": {"sequence_id": 0, "progress": "", "status": "IDLE", "consistency_request": False,
                          "dis_state": 0, "err_code": 0, "force_upgrade": False, "message": "0%, 0B/s",
                          "module": "", "new_version_state": 2, "cur_state_code": 0, "new_ver_list": []},
        "ipcam": {"ipcam_dev": "1", "ipcam_record": "enable", "timelapse": "disable", "resolution": "1080p",
                  "tutk_server": "disable", "mode_bits": 3},
        "xcam": {"buildplate_marker_detector": True},
        "upload": {"status": "idle", "progress": 0, "message": ""},
        "net": {"conf": 0, "info": [{"ip": 16777343, "mask": 16777215}]},
        "nozzle_temper": t(24.0), "nozzle_target_temper": t(0), "bed_temper": t(23.0), "bed_target_temper": t(0),
        "mc_print_stage": "1", "heatbreak_fan_speed": "0", "cooling_fan_speed": "0", "big_fan1_speed": "0",
        "big_fan2_speed": "0", "mc_percent": 0, "mc_remaining_time": 0, "ams_status": 0, "ams_rfid_status": 0,
        "hw_switch_state": 1, "spd_mag": 100, "spd_lvl": 2, "print_error": 0, "lifecycle": "product",
        "wifi_signal": "-52dBm", "gcode_state": "IDLE", "gcode_file_prepare_percent": "0", "queue_number": 0,
        "queue_total": 0, "queue_est": 0, "queue_sts": 0, "project_id": "0", "profile_id": "0", "task_id": "0",
        "subtask_id": "0", "subtask_name": "", "gcode_file": "", "stg": [], "stg_cur": model.idle_stage,
        "print_type": "idle", "home_flag": 863847839, "mc_print_line_number": "0", "mc_print_sub_stage": 0,
        "sdcard": True, "force_upgrade": False, "mess_production_state": "active", "layer_num": 0,
        "total_layer_num": 0, "s_obj": [], "filam_bak": [], "fan_gear": 0, "nozzle_diameter": "0.4",
        "nozzle_type": model.nozzle_type, "cali_version": 0, "k": "0.0200", "flag3": 31, "hms": [],
        "online": {"ahb": False, "rfid": False, "version": 1804806695},
        "ams": bambu_ams(model),
        "lights_report": [{"node": "chamber_light", "mode": "on"}],
        "fun": "3EC18FFF9CFF",
    }
    # The external holder: its spool, or a tray record with no material when nothing hangs there.
    status["vt_tray"] = _tray("254", model.external or Tray("", "", "00000000", 0, ""), model=model)
    if model.chamber_sensor:
        status["lights_report"].append({"node": "work_light", "mode": "flashing"})
        status["device"] = {
            "bed": {"info": {"temp": 23}, "state": 0}, "bed_temp": 23,
            "ctc": {"info": {"temp": 25}, "state": 0},
            "extruder": {"info": [{"id": 0, "temp": 24, "htar": 0, "hnow": 0, "snow": 65535, "stat": 0,
                                   "filam_bak": []}], "state": 1},
            "nozzle": {"exist": 1, "info": [{"id": 0, "type": "HH01", "diameter": 0.4, "tm": 0, "wear": 0}],
                       "state": 0},
            "fan": 0, "type": 1,
        }
    else:
        status["chamber_temper"] = 5  # P1 and A1 have no chamber sensor: the firmware sends 5
    return status


def bambu_set_temperatures(status: dict, model: BambuModel, *, nozzle: float, bed: float,
                           nozzle_target: float | None = None, bed_target: float | None = None,
                           chamber: float | None = None) -> None:
    """Write temperatures where and how this model's firmware reports them.

    The `device` block (newer X1 firmware) is rewritten only with new targets or a chamber reading:
    it is one of the blocks the app's listener reads in full, so it changes with the job, not each second.
    """
    status["nozzle_temper"], status["bed_temper"] = round(nozzle, 4), round(bed, 4)
    if nozzle_target is not None:
        status["nozzle_target_temper"] = _temperature(model, nozzle_target)
    if bed_target is not None:
        status["bed_target_temper"] = _temperature(model, bed_target)
    device = status.get("device")
    if isinstance(device, dict) and (nozzle_target is not None or chamber is not None):
        device = copy.deepcopy(device)
        try:
            device["bed"]["info"]["temp"] = device["bed_temp"] = round(bed)
            extruder = device["extruder"]["info"][0]
            extruder["temp"] = round(nozzle)
            if nozzle_target is not None:
                extruder["htar"] = round(nozzle_target)
            if chamber is not None:
                device["ctc"]["info"]["temp"] = round(chamber)
        except (KeyError, IndexError, TypeError):
            return  # a device block of another layout (e.g. a captured report a test put in): left as it is
        status["device"] = device


def bambu_version(model: BambuModel | str, serial: str) -> dict:
    """The `info` body of the answer to `get_version`: the printer's modules."""
    model = bambu_model(model) if isinstance(model, str) else model
    board, board_hw = model.board
    return {
        "command": "get_version", "sequence_id": "0", "result": "success", "reason": "",
        "module": [
            {"name": "ota", "product_name": model.product_name, "project_name": model.project_name,
             "sw_ver": model.firmware, "hw_ver": "OTA", "loader_ver": "00.00.00.00", "sn": serial, "flag": 3,
             "visible": True},
            {"name": board, "project_name": model.project_name, "sw_ver": "01.13.33.99", "hw_ver": board_hw,
             "loader_ver": "00.00.00.00", "sn": f"{serial}-B", "flag": 0, "visible": False},
            {"name": "mc", "project_name": model.project_name, "sw_ver": "00.01.29.83", "hw_ver": "MC07",
             "loader_ver": "00.00.00.32", "sn": f"{serial}-MC", "flag": 0, "visible": False},
            {"name": "th", "project_name": model.project_name, "sw_ver": "00.00.07.69", "hw_ver": "TH09",
             "loader_ver": "00.00.00.26", "sn": f"{serial}-TH", "flag": 0, "visible": False},
            {"name": model.ams_name, "product_name": "AMS Lite" if "f1" in model.ams_name else "AMS (1)",
             "sw_ver": "00.00.07.94", "hw_ver": model.ams_hw, "loader_ver": "00.00.00.00", "sn": f"{serial}-AMS0",
             "flag": 0, "visible": True},
        ],
    }


# --- PrusaLink (Buddy firmware) ----------------------------------------------------------------------


@dataclass(frozen=True)
class PrusaModel:
    key: str  # COREONE, MK4
    hostname: str
    serial_prefix: str
    nozzle_diameter: float = 0.4


PRUSA_MODELS = {
    "COREONE": PrusaModel(key="COREONE", hostname="PrusaCoreOne", serial_prefix="10763"),
    "MK4": PrusaModel(key="MK4", hostname="PrusaMK4", serial_prefix="10589"),
}


def prusa_model(name: str) -> PrusaModel:
    """The model for COREONE (also "Core One") or MK4; ValueError for anything else."""
    key = "".join(ch for ch in name.upper() if ch.isalnum())
    if key not in PRUSA_MODELS:
        raise ValueError(f"Unknown PrusaLink model {name!r}; choose one of {', '.join(PRUSA_MODELS)}.")
    return PRUSA_MODELS[key]


def prusa_serial(model: PrusaModel, index: int) -> str:
    return f"{model.serial_prefix}-{3742441631700000 + index:016d}"


def prusa_version(model: PrusaModel) -> dict:
    return {"api": "2.0.0", "server": "2.1.2", "nozzle_diameter": model.nozzle_diameter, "text": "PrusaLink",
            "hostname": model.hostname, "capabilities": {"upload-by-put": True}}


def prusa_info(model: PrusaModel, serial: str) -> dict:
    return {"nozzle_diameter": model.nozzle_diameter, "mmu": False, "serial": serial, "hostname": model.hostname,
            "min_extrusion_temp": 170}


def prusa_status(*, state: str, temp_nozzle: float, target_nozzle: float, temp_bed: float, target_bed: float,
                 axis_z: float, job: dict | None = None, fan_print: int = 0, fan_hotend: int = 0) -> dict:
    """`/api/v1/status`. `job`: {"id", "progress", "time_printing", "time_remaining"?} while there is a job.

    Like the firmware: temperatures with one decimal, targets whole, fans in RPM, X and Y only while
    the printer is not printing, `time_remaining` left out when the printer does not know it.
    """
    printer = {"state": state, "temp_bed": round(temp_bed, 1), "target_bed": round(target_bed),
               "temp_nozzle": round(temp_nozzle, 1), "target_nozzle": round(target_nozzle),
               "axis_z": round(axis_z, 1), "flow": 100, "speed": 100, "fan_hotend": fan_hotend,
               "fan_print": fan_print}
    if state != "PRINTING":
        printer.update(axis_x=241.0, axis_y=170.0)
    status = {"storage": {"path": "/usb/", "name": "usb", "read_only": False}, "printer": printer}
    if job is not None:
        status["job"] = {key: job[key] for key in ("id", "progress", "time_remaining", "time_printing")
                         if key in job}
    return status


def prusa_job(*, job_id: int, state: str, progress: float, time_printing: int, time_remaining: int | None,
              file: dict) -> dict:
    """`/api/v1/job` while there is a job.

    `file`: {"name" (8.3), "display_name", "path" ("/usb"), "size", "m_timestamp", "refs"}.
    """
    body = {"id": job_id, "state": state, "progress": progress}
    if time_remaining is not None:
        body["time_remaining"] = time_remaining
    body["time_printing"] = time_printing
    body["file"] = {key: file[key] for key in ("refs", "name", "display_name", "path", "size", "m_timestamp")}
    return body
