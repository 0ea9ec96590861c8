"""Bambu Studio / OrcaSlicer-style sliced 3MF (.gcode.3mf) with one plate.

The archive holds what those slicers export for a sliced plate: the plate's G-code
`Metadata/plate_1.gcode` (a header block with totals, the settings, then the
G-code with '; CHANGE_LAYER', '; Z_HEIGHT:', '; LAYER_HEIGHT:', 'M73 L' layer and
'M73 P R' progress lines, and an AMS filament change 'M620 S{n}A / T{n} / flush /
M621 S{n}A' where the filament changes), its MD5 (`plate_1.gcode.md5`, upper-case
hex), `slice_info.config` (time, weight and per-filament metres and grams),
`project_settings.config` (the settings as JSON), `model_settings.config`, the
plate pictures `plate_1.png` and `plate_1_small.png`, `plate_1.json`, and the
stub `3D/3dmodel.model` a sliced export carries. Entry dates are fixed so the same
job gives the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from xml.sax.saxutils import quoteattr

from catalog.samples.engine import PRODUCED_ON, PRODUCER, PRODUCER_VERSION, Stats, duration, run, thumbnail_pngs, z_text
from catalog.samples.profiles import Job
from catalog.samples.toolpath import FILAMENT_AREA, Layer, Program, retract

_ROLES = {"external": "Outer wall", "perimeter": "Inner wall", "sparse": "Sparse infill",
          "solid": "Internal solid infill"}
_ZIP_DATE = (2025, 6, 2, 9, 30, 0)
PLATE_PNG = (512, 512)
SMALL_PNG = (128, 128)


class BambuFlavour:
    def start(self, program: Program, job: Job, layers: list[Layer]) -> None:
        first, printer = job.filaments[0], job.printer
        program.progress()
        program.lines_of([
            f";===== machine: {printer.printer_model} =====",
            "M1002 gcode_claim_action : 2",
            f"M140 S{first.bed_first} ; set bed temperature",
            "M104 S140 ; warm the nozzle",
            f"M190 S{first.bed_first} ; wait for the bed",
        ])
        program.home()
        program.lines_of([
            f"M104 S{first.nozzle_first} ; set nozzle temperature",
            f"M109 S{first.nozzle_first} ; wait for the nozzle",
            "G90",
            "M83",
            "M620 S0A",
        ])
        program.tool(0)
        program.line("M621 S0A")
        program.move(z=0.3, feed=1200)
        program.move(x=18.0, y=1.0, feed=18000, note="to the purge line")
        program.move(x=118.0, e=10.0, feed=1200, note="purge line")

    def layer_change(self, program: Program, job: Job, layer: Layer, count: int) -> None:
        program.lines_of([
            "; CHANGE_LAYER", f"; Z_HEIGHT: {z_text(layer.z)}", f"; LAYER_HEIGHT: {z_text(layer.height)}",
            f"; layer num/total_layer_count: {layer.index + 1}/{count}", "; update layer progress",
            f"M73 L{layer.index + 1}", f"M991 S0 P{layer.index} ;notify layer change",
        ])
        program.progress()
        if layer.index == 1:
            program.line("M106 S255 ; part cooling fan on")

    def role_lines(self, role: str, job: Job) -> list[str]:
        return [f"; FEATURE: {_ROLES[role]}", f"; LINE_WIDTH: {job.settings.line_width}"]

    def tool_change(self, program: Program, job: Job, layer: Layer, slot: int) -> None:
        printer, motion = job.printer, job.printer.motion
        old, new = job.filaments[program.slot], job.filaments[slot]
        flush = printer.flush_mm3 / FILAMENT_AREA  # mm of the new filament pushed through the nozzle
        program.lines_of(["; CP TOOLCHANGE START", f"; material : {old.type} -> {new.type}"])
        retract(program, motion)
        program.line(f"M620 S{slot}A")
        program.move(z=layer.z + 3.0, feed=int(motion.z_travel * 60), note="lift")
        program.move(x=printer.purge_at[0], y=printer.purge_at[1], feed=int(motion.travel * 60),
                     note="to the purge chute")
        program.line("M400")
        program.tool(slot)
        program.line("M400")
        program.retracted = False  # the new filament is loaded to the nozzle
        program.line("; FLUSH_START")
        for _part in range(3):
            program.move(e=flush / 3, feed=300)
        program.line("; FLUSH_END")
        retract(program, motion)
        program.line(f"M621 S{slot}A")
        program.move(z=layer.z, feed=int(motion.z_travel * 60))
        program.line("; CP TOOLCHANGE END")  # the next path unretracts after its travel

    def end(self, program: Program, job: Job, layers: list[Layer]) -> None:
        printer = job.printer
        program.line("M400 ; wait for buffer to clear")
        retract(program, printer.motion)
        program.move(z=min(layers[-1].z + 0.5, printer.max_height), feed=900, note="lower the bed a little")
        program.move(x=65.0, y=printer.bed_depth - 11, feed=12000, note="move to a safe position")
        program.lines_of(["M140 S0 ; turn off bed", "M106 S0 ; turn off fan", "M104 S0 ; turn off hotend",
                          "M400"])


def _per_filament(job: Job, value) -> list[str]:
    return [str(value(f)) for f in job.filaments]


def _settings(job: Job) -> dict[str, str | list[str]]:
    """The settings the file was made with, under Bambu Studio's names (per-filament values are lists)."""
    s, printer, motion = job.settings, job.printer, job.printer.motion
    w, d = printer.bed_width, printer.bed_depth
    plate = "textured_plate_temp"
    return {
        "bottom_shell_layers": str(s.bottom_layers),
        "curr_bed_type": printer.bed_type,
        "filament_colour": _per_filament(job, lambda f: f.colour),
        "filament_density": _per_filament(job, lambda f: f"{f.density:g}"),
        "filament_diameter": _per_filament(job, lambda f: "1.75"),
        "filament_settings_id": _per_filament(job, lambda f: f.settings_id),
        "filament_type": _per_filament(job, lambda f: f.type),
        "filament_vendor": _per_filament(job, lambda f: f.vendor),
        "flush_volume_per_change": f"{printer.flush_mm3:g}",
        "initial_layer_print_height": f"{s.first_layer_height:g}",
        "initial_layer_speed": f"{motion.first_layer:g}",
        "inner_wall_speed": f"{motion.perimeter:g}",
        "internal_solid_infill_speed": f"{motion.solid:g}",
        "layer_height": f"{s.layer_height:g}",
        "line_width": f"{s.line_width:g}",
        "nozzle_diameter": [f"{printer.nozzle:g}"],
        "nozzle_temperature": _per_filament(job, lambda f: f.nozzle),
        "nozzle_temperature_initial_layer": _per_filament(job, lambda f: f.nozzle_first),
        "outer_wall_speed": f"{motion.external:g}",
        plate: _per_filament(job, lambda f: f.bed),
        plate + "_initial_layer": _per_filament(job, lambda f: f.bed_first),
        "print_settings_id": f"{s.layer_height:.2f}mm SAMPLE @{printer.printer_model}",
        "printable_area": ["0x0", f"{w:g}x0", f"{w:g}x{d:g}", f"0x{d:g}"],
        "printable_height": f"{printer.max_height:g}",
        "printer_model": printer.printer_model,
        "printer_settings_id": printer.settings_id,
        "retraction_length": [f"{motion.retract_length:g}"],
        "retraction_speed": [f"{motion.retract_speed:g}"],
        "retract_before_travel": [f"{motion.retract_before_travel:g}"],
        "sparse_infill_density": f"{round(s.infill_density * 100):d}%",
        "sparse_infill_pattern": "zig-zag",
        "sparse_infill_speed": f"{motion.sparse:g}",
        "top_shell_layers": str(s.top_layers),
        "travel_speed": f"{motion.travel:g}",
        "use_relative_e_distances": "1",
        "wall_loops": str(s.perimeters),
    }


def _config_line(key: str, value) -> str:
    text = ",".join(value) if isinstance(value, list) else value
    return f"; {key} = {text}"


def plate_gcode(job: Job) -> tuple[bytes, Stats]:
    program, stats = run(job, BambuFlavour())
    body = program.render(total_seconds=stats.seconds, progress_line=lambda p, r: f"M73 P{p} R{r}")
    day, time = PRODUCED_ON
    header = [
        "; HEADER_BLOCK_START",
        f"; generated by {PRODUCER} {PRODUCER_VERSION} on {day} at {time}",
        f"; model printing time: {duration(stats.model_seconds)}; total estimated time: {duration(stats.seconds)}",
        f"; total layer number: {stats.layer_count}",
        f"; total filament length [mm] : {stats.total_mm:.2f}",
        f"; total filament volume [cm^3] : {sum(stats.volumes_cm3):.2f}",
        f"; total filament weight [g] : {stats.total_grams:.2f}",
        f"; filament_density: {','.join(f'{f.density:g}' for f in job.filaments)}",
        f"; filament_diameter: {','.join('1.75' for _f in job.filaments)}",
        f"; max_z_height: {stats.max_z:.2f}",
        f"; filament: {','.join(str(i + 1) for i in range(len(job.filaments)))}",
        "; HEADER_BLOCK_END",
        "",
        "; CONFIG_BLOCK_START",
    ]
    header += [_config_line(key, value) for key, value in sorted(_settings(job).items())]
    header += ["; CONFIG_BLOCK_END", "", "; EXECUTABLE_BLOCK_START"]
    lines = header + body + ["M73 P100 R0", "; EXECUTABLE_BLOCK_END", ""]
    return "\n".join(lines).encode("utf-8"), stats


def _slice_info(job: Job, stats: Stats) -> str:
    printer = job.printer
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        "<config>",
        "  <header>",
        '    <header_item key="X-BBL-Client-Type" value="slicer"/>',
        '    <header_item key="X-BBL-Client-Version" value=""/>',
        "  </header>",
        "  <plate>",
    ]
    meta = [
        ("index", "1"), ("printer_model_id", printer.model_id), ("nozzle_diameters", f"{printer.nozzle:g}"),
        ("timelapse_type", "0"), ("prediction", str(int(round(stats.seconds)))),
        ("weight", f"{stats.total_grams:.2f}"), ("first_layer_time", f"{stats.first_layer_seconds:.2f}"),
        ("outside", "false"), ("support_used", "false"), ("label_object_enabled", "false"),
        ("filament_maps", " ".join("1" for _f in job.filaments)),
    ]
    lines += [f"    <metadata key={quoteattr(k)} value={quoteattr(v)}/>" for k, v in meta]
    lines.append(f'    <object identify_id="1" name={quoteattr(job.object_name)} skipped="false" />')
    for slot, filament in enumerate(job.filaments):
        if not stats.lengths_mm[slot]:
            continue  # like the slicers, only filaments the plate uses
        # metres with 5 decimals: the length to 0.01 mm, as the G-code moves sum it
        lines.append(
            f'    <filament id="{slot + 1}" type={quoteattr(filament.type)} color={quoteattr(filament.colour)} '
            f'used_m="{stats.lengths_mm[slot] / 1000:.5f}" used_g="{stats.grams[slot]:.2f}" />')
    lines += ["  </plate>", "</config>", ""]
    return "\n".join(lines)


def _model_stub() -> str:
    day, _time = PRODUCED_ON
    return "\n".join([
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<model unit="millimeter" xml:lang="en-US" xmlns="http://schemas.microsoft.com/3dmanufacturing/core/2015/02"'
        ' xmlns:BambuStudio="http://schemas.bambulab.com/package/2021">',
        f" <metadata name=\"Application\">{PRODUCER.replace(' ', '')}-{PRODUCER_VERSION}</metadata>",
        ' <metadata name="BambuStudio:3mfVersion">1</metadata>',
        f' <metadata name="CreationDate">{day}</metadata>',
        " <resources>",
        " </resources>",
        " <build/>",
        "</model>",
        "",
    ])


_CONTENT_TYPES = """<?xml version="1.0" encoding="UTF-8"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
 <Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
 <Default Extension="model" ContentType="application/vnd.ms-package.3dmanufacturing-3dmodel+xml"/>
 <Default Extension="png" ContentType="image/png"/>
 <Default Extension="gcode" ContentType="text/x.gcode"/>
</Types>
"""

_RELS = """<?xml version="1.0" encoding="UTF-8"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
 <Relationship Target="/3D/3dmodel.model" Id="rel-1" Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/>
 <Relationship Target="/Metadata/plate_1.png" Id="rel-2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/thumbnail"/>
 <Relationship Target="/Metadata/plate_1.png" Id="rel-4" Type="http://schemas.bambulab.com/package/2021/cover-thumbnail-middle"/>
 <Relationship Target="/Metadata/plate_1_small.png" Id="rel-5" Type="http://schemas.bambulab.com/package/2021/cover-thumbnail-small"/>
</Relationships>
"""

_GCODE_RELS = """<?xml version="1.0" encoding="UTF-8"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
 <Relationship Target="/Metadata/plate_1.gcode" Id="rel-1" Type="http://schemas.bambulab.com/package/2021/gcode"/>
</Relationships>
"""

_MODEL_SETTINGS = """<?xml version="1.0" encoding="UTF-8"?>
<config>
  <plate>
    <metadata key="plater_id" value="1"/>
    <metadata key="plater_name" value=""/>
    <metadata key="locked" value="false"/>
    <metadata key="gcode_file" value="Metadata/plate_1.gcode"/>
    <metadata key="thumbnail_file" value="Metadata/plate_1.png"/>
    <metadata key="pattern_bbox_file" value="Metadata/plate_1.json"/>
  </plate>
</config>
"""


def _plate_json(job: Job, stats: Stats) -> str:
    parts = job.parts()
    cx, cy = job.printer.centre
    low = min(p.mesh.bounds[0][0] for p in parts) + cx, min(p.mesh.bounds[0][1] for p in parts) + cy
    high = max(p.mesh.bounds[1][0] for p in parts) + cx, max(p.mesh.bounds[1][1] for p in parts) + cy
    box = [round(low[0], 3), round(low[1], 3), round(high[0], 3), round(high[1], 3)]
    return json.dumps({
        "bbox_all": box,
        "bbox_objects": [{"area": round((box[2] - box[0]) * (box[3] - box[1]), 3), "bbox": box, "id": 1,
                          "layer_height": job.settings.layer_height, "name": job.object_name}],
        "bed_type": "textured_plate",
        "filament_colors": [f.colour for f in job.filaments],
        "filament_ids": list(range(len(job.filaments))),
        "first_extruder": 0,
        "first_layer_time": round(stats.first_layer_seconds, 3),
        "is_seq_print": False,
        "nozzle_diameter": job.printer.nozzle,
        "version": 2,
    }, sort_keys=True)


def write_3mf(job: Job) -> tuple[bytes, Stats]:
    gcode, stats = plate_gcode(job)
    (_w, _h, plate_png), (_sw, _sh, small_png) = thumbnail_pngs(job, [PLATE_PNG, SMALL_PNG])
    entries = [
        ("[Content_Types].xml", _CONTENT_TYPES.encode(), True),
        ("_rels/.rels", _RELS.encode(), True),
        ("3D/3dmodel.model", _model_stub().encode(), True),
        ("Metadata/plate_1.gcode", gcode, True),
        ("Metadata/plate_1.gcode.md5", hashlib.md5(gcode).hexdigest().upper().encode(), True),
        ("Metadata/slice_info.config", _slice_info(job, stats).encode(), True),
        ("Metadata/project_settings.config", json.dumps(_settings(job), indent=4, sort_keys=True).encode(), True),
        ("Metadata/model_settings.config", _MODEL_SETTINGS.encode(), True),
        ("Metadata/_rels/model_settings.config.rels", _GCODE_RELS.encode(), True),
        ("Metadata/plate_1.json", _plate_json(job, stats).encode(), True),
        ("Metadata/plate_1.png", plate_png, False),
        ("Metadata/plate_1_small.png", small_png, False),
    ]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data, deflate in entries:
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data, compresslevel=6 if deflate else None)
    return buffer.getvalue(), stats
