"""3MF projects and sliced 3MF files (Bambu Studio, OrcaSlicer and its forks, PrusaSlicer).

Which source wins when two parts of one 3MF disagree: the plate's own G-code
(Metadata/plate_N.gcode) is the primary source for every value of that plate, because
it is what the printer runs. Metadata/slice_info.config only fills values that G-code
does not state: per-filament grams of Bambu Studio files (their G-code has none) and
the plate weight of OrcaSlicer 2.0 files (their footer has no total). When both state
grams and they differ (per filament, or the G-code total or sum against the plate
weight) by more than 1 % (and 0.011 g), the G-code values are kept, the slice_info
values are stored in `extra` (slice_info_filament_used_g, slice_info_weight_g) and a
warning names both. Print time follows the same rule (slice_info prediction only when
the G-code states no time; a different prediction goes to extra with a warning).

The archive is opened through zipsafety.SafeZip: limits are checked on the central
directory first and again on the bytes actually inflated. Plate G-code is streamed
(gcode.read_gcode_stream): a head window is inflated first and the rest only when the
head lacks the statistics or settings (OrcaSlicer writes them at the end).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import BinaryIO

from catalog.slicer import gcode
from catalog.slicer.errors import UnsafeArchive, UnsupportedFile
from catalog.slicer.normalise import parse_number
from catalog.slicer.result import Plate, SlicedFileInfo, empty_fields
from catalog.slicer.scoring import values_match
from catalog.slicer.thumbnails import Thumbnail, image_size
from catalog.slicer.zipsafety import SafeZip, ZipLimits

MAX_METADATA_BYTES = 32 << 20
MAX_IMAGE_BYTES = 32 << 20
MODEL_HEAD_BYTES = 64 << 10
_LIFTED_PLATE_KEYS = frozenset({"filament_total_mm_header", "model_printing_time_s", "header_filament"})
_PLATE_GCODE = re.compile(r"^Metadata/plate_(\d+)\.gcode$")
_IMAGE = re.compile(r"\.(png|jpe?g|webp|qoi)$", re.I)
_APPLICATION = re.compile(rb"<metadata\s+name=\"Application\"\s*>([^<]*)</metadata>")


def is_3mf(names: list[str]) -> bool:
    return "[Content_Types].xml" in names or "3D/3dmodel.model" in names


def read_3mf(handle: BinaryIO, *, size: int, name: str, limits: ZipLimits | None = None) -> SlicedFileInfo:
    archive = SafeZip(handle, size=size, name=name, limits=limits)
    names = archive.names()
    if not is_3mf(names):
        raise UnsupportedFile(f"{name} is a ZIP archive but not a 3MF (it has no 3D/3dmodel.model or "
                              f"[Content_Types].xml). Upload the .3mf or .gcode.3mf the slicer saved.")
    warnings: list[str] = []
    extra: dict = {}
    slice_info = _slice_info(archive, warnings)
    project = _project_settings(archive, warnings)
    application = _application(archive)
    if application:
        extra["application"] = application
    if slice_info["client_version"] is not None:
        extra["slice_info_client_version"] = slice_info["client_version"]
    if project is not None:
        extra["project_settings_key_count"] = len(project)
        if project.get("printer_model"):
            extra["project_settings_printer_model"] = project.get("printer_model")
        if isinstance(project.get("nozzle_temperature"), list):
            # Kept as written: it may list more values than the plate's G-code has slots.
            extra["project_settings_nozzle_temperature"] = project["nozzle_temperature"]
    images = sorted(n for n in names if _IMAGE.search(n))
    gcode_entries = sorted((n for n in names if _PLATE_GCODE.match(n)), key=_plate_number)
    extra["archive_images"] = images
    extra["archive_gcode_entries"] = gcode_entries
    thumbnails = _archive_images(archive, images, warnings)

    plates: list[Plate] = []
    summaries: list[dict] = []
    first_result = None
    sliced_plates = {int(p["index"]): p for p in slice_info["plates"] if p.get("index") is not None}
    for entry in gcode_entries:
        number = _plate_number(entry)
        result = gcode.read_gcode_stream(archive.stream(entry), name=f"{name} ({entry})")
        info_plate = sliced_plates.get(number, {})
        fields, plate_extra, plate_warnings = _plate_fields(result, info_plate, project, number=number)
        warnings.extend(plate_warnings)
        for thumbnail in result.thumbnails:
            thumbnail.plate_index = number
            thumbnail.source = entry
        thumbnails.extend(result.thumbnails)
        plate_json = _plate_json(archive, number, warnings)
        if isinstance(plate_json.get("filament_ids"), list):
            plate_extra["plate_json_filament_ids"] = plate_json["filament_ids"]  # 0-based slots
        layers = gcode.layers_for(result.counts, config=result.config, fields=fields, extra=result.extra,
                                  fallback=project)
        plate = Plate(index=number, fields=fields, printer_model_id=info_plate.get("printer_model_id"),
                      gcode_name=entry, extra=plate_extra, layers=layers)
        plate.thumbnail_indexes = [i for i, t in enumerate(thumbnails) if t.plate_index == number]
        plates.append(plate)
        summaries.append(_summary(info_plate, number, result))
        if first_result is None:
            first_result = (result, plate_extra)

    sliced = bool(plates)
    config = project if project is not None else _prusa_project_config(archive, warnings)
    if not sliced:
        fields = empty_fields()
        fields["sliced"] = False
        fields["plates"] = []
        if application:
            extra["project_slicer"], extra["project_slicer_version"] = _split_application(application)
        return SlicedFileInfo(format="3mf", sliced=False, fields=fields, plates=[], thumbnails=thumbnails,
                              config=config or {}, extra=extra, warnings=warnings)
    fields = dict(plates[0].fields)
    fields["plates"] = summaries
    for plate in plates:
        plate.fields["plates"] = None
    result, plate_extra = first_result
    for key in ("extruder_colour", "bed_type", "printer_settings_id"):
        if key in result.extra:
            extra[key] = result.extra[key]
    for key, value in plate_extra.items():
        if key.startswith(("slice_info_", "gcode_", "plate_json_")) or key in _LIFTED_PLATE_KEYS:
            extra[key] = value
    return SlicedFileInfo(format="3mf", sliced=True, fields=fields, plates=plates, thumbnails=thumbnails,
                          config=config or {}, extra=extra, warnings=warnings + result.warnings)


def _plate_number(entry: str) -> int:
    match = _PLATE_GCODE.match(entry)
    return int(match.group(1)) if match else 0


# --- metadata entries ----------------------------------------------------------------------


def _read_small(archive: SafeZip, entry: str, warnings: list[str]) -> bytes | None:
    info = archive.infos.get(entry)
    if info is None:
        return None
    if info.file_size > MAX_METADATA_BYTES:
        warnings.append(f"{archive.name}: {entry} is {info.file_size >> 20} MiB, too large for metadata; skipped.")
        return None
    return archive.read(entry)


def _xml(data: bytes, entry: str, archive: SafeZip, warnings: list[str]):
    head = data[:4096]
    if b"<!DOCTYPE" in head or b"<!ENTITY" in data:
        raise UnsafeArchive(f"{archive.name}: {entry} declares XML entities, which 3MF metadata never does; the "
                            f"file is refused.")
    try:
        return ET.fromstring(data)
    except ET.ParseError:
        warnings.append(f"{archive.name}: {entry} is not valid XML and was ignored.")
        return None


def _slice_info(archive: SafeZip, warnings: list[str]) -> dict:
    out: dict = {"client_version": None, "plates": []}
    data = _read_small(archive, "Metadata/slice_info.config", warnings)
    if data is None:
        return out
    root = _xml(data, "Metadata/slice_info.config", archive, warnings)
    if root is None:
        return out
    for item in root.iter("header_item"):
        if item.get("key") == "X-BBL-Client-Version":
            out["client_version"] = item.get("value") or ""
    for plate in root.iter("plate"):
        meta = {m.get("key"): m.get("value") for m in plate.findall("metadata") if m.get("key")}
        filaments = []
        for item in plate.findall("filament"):
            filaments.append({
                "id": parse_number(item.get("id")),
                "type": item.get("type"),
                "color": item.get("color"),
                "used_m": parse_number(item.get("used_m")),
                "used_g": parse_number(item.get("used_g")),
            })
        out["plates"].append({
            "index": parse_number(meta.get("index")),
            "prediction_s": parse_number(meta.get("prediction")),
            "weight_g": parse_number(meta.get("weight")),
            "printer_model_id": meta.get("printer_model_id"),
            "nozzle_diameters": meta.get("nozzle_diameters"),
            "filaments": filaments,
            "objects": [obj.get("name") for obj in plate.findall("object")],
        })
    return out


def _project_settings(archive: SafeZip, warnings: list[str]) -> dict | None:
    data = _read_small(archive, "Metadata/project_settings.config", warnings)
    if data is None:
        return None
    try:
        project = json.loads(data.decode("utf-8", errors="replace"))
    except ValueError:
        warnings.append(f"{archive.name}: Metadata/project_settings.config is not valid JSON and was ignored.")
        return None
    if not isinstance(project, dict):
        return None
    return {str(k): v if isinstance(v, str | list) else json.dumps(v) for k, v in project.items()}


def _plate_json(archive: SafeZip, number: int, warnings: list[str]) -> dict:
    """Metadata/plate_N.json (Bambu Studio / Orca): bounding boxes, bed type, filament ids (0-based)."""
    entry = f"Metadata/plate_{number}.json"
    data = _read_small(archive, entry, warnings)
    if data is None:
        return {}
    try:
        value = json.loads(data.decode("utf-8", errors="replace"))
    except ValueError:
        warnings.append(f"{archive.name}: {entry} is not valid JSON and was ignored.")
        return {}
    return value if isinstance(value, dict) else {}


def _prusa_project_config(archive: SafeZip, warnings: list[str]) -> dict:
    data = _read_small(archive, "Metadata/Slic3r_PE.config", warnings)
    if data is None:
        return {}
    config = {}
    for line in data.decode("utf-8", errors="replace").splitlines():
        match = re.match(r"^; ([A-Za-z0-9_]+) = ?(.*)$", line.rstrip("\r"))
        if match:
            config[match.group(1)] = match.group(2).strip()
    return config


def _application(archive: SafeZip) -> str | None:
    if "3D/3dmodel.model" not in archive.infos:
        return None
    head = archive.read("3D/3dmodel.model", max_bytes=MODEL_HEAD_BYTES)
    match = _APPLICATION.search(head)
    if match is None:
        return None
    return match.group(1).decode("utf-8", errors="replace").strip() or None


def _split_application(application: str) -> tuple[str | None, str | None]:
    match = re.match(r"^(.*?)[- ](\d[\w.\-+]*)$", application)
    if match:
        return match.group(1), match.group(2)
    return application, None


# --- images --------------------------------------------------------------------------------


def _image_role(entry: str) -> tuple[str | None, int | None]:
    base = entry.rsplit("/", 1)[-1]
    patterns = (
        (r"^pick_(\d+)\.png$", None),
        (r"^plate_(\d+)\.png$", "plate"),
        (r"^plate_(\d+)_small\.png$", "small"),
        (r"^plate_no_light_(\d+)\.png$", "no_light"),
        (r"^top_(\d+)\.png$", "top"),
    )
    if entry.startswith("Metadata/"):
        for pattern, role in patterns:
            match = re.match(pattern, base)
            if match:
                return role, int(match.group(1))
        if base == "thumbnail.png":
            return "thumbnail", None
    if "/.thumbnails/" in entry:
        return "cover", None
    if "Model Pictures/" in entry:
        return "picture", None
    if "Profile Pictures/" in entry:
        match = re.match(r"^plate_(\d+)\.", base)
        return "profile", int(match.group(1)) if match else None
    return "image", None


def _archive_images(archive: SafeZip, images: list[str], warnings: list[str]) -> list[Thumbnail]:
    thumbnails = []
    for entry in images:
        role, plate = _image_role(entry)
        if role is None:  # pick_N.png: an object-picking mask, not a picture
            continue
        info = archive.infos[entry]
        if info.file_size > MAX_IMAGE_BYTES:
            warnings.append(f"{archive.name}: image {entry} is {info.file_size >> 20} MiB; skipped.")
            continue
        data = archive.read(entry)
        measured = image_size(data)
        if measured is None:
            warnings.append(f"{archive.name}: image {entry} is damaged or not an image; skipped.")
            continue
        fmt, width, height = measured
        thumbnails.append(Thumbnail(format=fmt, width=width, height=height, data=data, plate_index=plate,
                                    role=role, source=entry))
    return thumbnails


# --- plate G-code --------------------------------------------------------------------------


def _slots(fields: dict, project: dict | None, info_plate: dict) -> int:
    for key in ("filament_type", "filament_colour"):
        if fields.get(key):
            return len(fields[key])
    if project and isinstance(project.get("filament_type"), list):
        return len(project["filament_type"])
    ids = [f["id"] for f in info_plate.get("filaments", []) if isinstance(f.get("id"), int)]
    return max(ids) if ids else 0


def _plate_fields(result: gcode.GcodeResult, info_plate: dict, project: dict | None, *, number: int):
    """Fields of one plate: its G-code first, then slice_info and project settings for what it lacks."""
    fields = dict(result.fields)
    extra: dict = {"config_key_count": result.config_key_count}
    warnings: list[str] = []
    if project:
        fallback = empty_fields()
        gcode.map_slic3r_family(gcode.Scan(config=dict(project)), fallback, {})
        for key in ("filament_type", "filament_colour", "layer_height", "first_layer_height", "nozzle_diameter",
                    "nozzle_temperature", "nozzle_temperature_initial_layer", "bed_temperature",
                    "bed_temperature_initial_layer", "printer_model"):
            if fields.get(key) is None and fallback.get(key) is not None:
                fields[key] = fallback[key]
    slots = _slots(fields, project, info_plate)
    filaments = [f for f in info_plate.get("filaments", []) if isinstance(f.get("id"), int) and f["id"] >= 1]
    if fields["estimated_time_s"] is None and info_plate.get("prediction_s") is not None:
        fields["estimated_time_s"] = info_plate["prediction_s"]
    elif info_plate.get("prediction_s") is not None and \
            not values_match(info_plate["prediction_s"], fields["estimated_time_s"]):
        warnings.append(f"Plate {number}: the G-code estimates {fields['estimated_time_s']} s but slice_info.config "
                        f"says {info_plate['prediction_s']} s; the G-code value is used.")
        extra["slice_info_prediction_s"] = info_plate["prediction_s"]
    if fields["filament_used_g_total"] is None and info_plate.get("weight_g") is not None:
        fields["filament_used_g_total"] = info_plate["weight_g"]
    info_grams = None
    if filaments and slots:
        info_grams = [0.0] * max(slots, max(f["id"] for f in filaments))
        for item in filaments:
            info_grams[item["id"] - 1] = item["used_g"] if item["used_g"] is not None else 0.0
    if fields["filament_used_g"] is None and info_grams is not None:
        fields["filament_used_g"] = info_grams
    if fields["filament_used_mm"] is None and filaments and slots:
        mm = [0.0] * max(slots, max(f["id"] for f in filaments))
        header_mm = result.header.get("filament_total_mm")
        for item in filaments:
            metres = item["used_m"]
            mm[item["id"] - 1] = round(metres * 1000, 3) if metres is not None else 0.0
        if len(filaments) == 1 and header_mm is not None:
            mm[filaments[0]["id"] - 1] = header_mm
        fields["filament_used_mm"] = mm
    if result.header.get("filament_total_mm") is not None:
        extra["filament_total_mm_header"] = result.header["filament_total_mm"]
    if result.header.get("model_printing_time_s") is not None:
        extra["model_printing_time_s"] = result.header["model_printing_time_s"]
    if result.header.get("filament") is not None:
        extra["header_filament"] = result.header["filament"]
    # Do the two sources agree on grams?
    gcode_grams = result.fields.get("filament_used_g")
    if info_grams is not None and gcode_grams is not None:
        numeric = [g for g in gcode_grams if isinstance(g, int | float)]
        stated_total = result.fields.get("filament_used_g_total")
        gcode_total = stated_total if stated_total is not None else round(sum(numeric), 4)
        per_slot_differs = any(
            not values_match(item["used_g"], gcode_grams[item["id"] - 1])
            for item in filaments if item["used_g"] is not None and item["id"] - 1 < len(gcode_grams)
        )
        weight = info_plate.get("weight_g")
        total_differs = weight is not None and not values_match(weight, gcode_total)
        if per_slot_differs or total_differs:
            extra["slice_info_filament_used_g"] = info_grams
            extra["slice_info_weight_g"] = weight
            extra["gcode_filament_used_g"] = gcode_grams
            extra["gcode_filament_used_g_sum"] = round(sum(numeric), 4)
            warnings.append(
                f"Plate {number}: the G-code footer says {_grams(gcode_grams)} g per filament "
                f"({extra['gcode_filament_used_g_sum']} g in all) but slice_info.config says "
                f"{_grams(info_grams)} g (plate weight {weight} g). The G-code values are used"
                + ("; the total is slice_info's plate weight because the G-code states none." if stated_total is None
                   else ".")
            )
    fields["sliced"] = True
    return fields, extra, warnings


def _grams(values: list) -> str:
    return ", ".join(str(v) for v in values)


def _summary(info_plate: dict, number: int, result: gcode.GcodeResult) -> dict:
    summary = {
        "index": info_plate.get("index", number),
        "prediction_s": info_plate.get("prediction_s"),
        "weight_g": info_plate.get("weight_g"),
        "printer_model_id": info_plate.get("printer_model_id"),
        "nozzle_diameters": info_plate.get("nozzle_diameters"),
        "filaments": info_plate.get("filaments", []),
        "objects": info_plate.get("objects", []),
        "gcode_object_height": result.fields.get("object_height"),
        "gcode_layer_count": result.fields.get("layer_count"),
    }
    header = result.header
    if header.get("filament_used_g_total") is not None:
        summary["gcode_filament_used_g_total"] = header["filament_used_g_total"]
    if header.get("filament_total_mm") is not None:
        summary["gcode_filament_total_mm"] = header["filament_total_mm"]
    if header.get("estimated_time_s") is not None:
        summary["gcode_estimated_time_s_header"] = header["estimated_time_s"]
    return summary

