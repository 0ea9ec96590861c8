"""Print what the slicer reader finds in files, without touching the database.

    manage.py inspect_sliced_file PATH [PATH ...] [--json]

With --json: one JSON object per line per file (JSON Lines). A file that cannot be read
gives {"path": ..., "error": "..."} and the others are still read. Exit status 0 when
every file was read, 1 when any failed.
"""

import json
import sys

from django.core.management.base import BaseCommand

from catalog.slicer import SCHEMA_FIELDS, SlicerFileError, read_sliced_file


class Command(BaseCommand):
    help = "Read slicer metadata from G-code, binary G-code, 3MF or STL files (no database access)."
    requires_system_checks = []
    requires_migrations_checks = False

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH", help="files to read")
        parser.add_argument("--json", action="store_true", help="print JSON Lines instead of a summary")

    def handle(self, *args, **options):
        paths = options["paths"]
        as_json = options["json"]
        failed = 0
        for path in paths:
            try:
                info = read_sliced_file(path)
            except SlicerFileError as exc:
                failed += 1
                if as_json:
                    self._line({"path": path, "error": exc.message})
                else:
                    self.stdout.write(f"{path}\n  error: {exc.message}\n")
                continue
            if as_json:
                self._line(self._record(path, info))
            else:
                self.stdout.write(self._summary(path, info))
        if failed:
            sys.exit(1)

    def _line(self, record: dict) -> None:
        self.stdout.write(_dumps(record))

    @staticmethod
    def _record(path: str, info) -> dict:
        record = {"path": path, "format": info.format, "sliced": info.sliced}
        for key in SCHEMA_FIELDS:
            if key != "sliced":
                record[key] = info.fields.get(key)
        record["plate_count"] = len(info.plates)
        record["plate_summaries"] = [
            {"index": p.index, "gcode_name": p.gcode_name, "printer_model_id": p.printer_model_id,
             "estimated_time_s": p.fields.get("estimated_time_s"),
             "filament_used_g_total": p.fields.get("filament_used_g_total")}
            for p in info.plates
        ]
        record["thumbnails"] = [t.summary() for t in info.thumbnails]
        record["config_size"] = len(info.config)
        record["extra"] = info.extra
        record["warnings"] = info.warnings
        return record

    @staticmethod
    def _summary(path: str, info) -> str:
        f = info.fields
        lines = [path, f"  format: {info.format}, {'sliced' if info.sliced else 'not sliced'}"]

        def add(label, value, unit=""):
            if value is not None and value != []:
                if isinstance(value, list):
                    value = ", ".join(str(v) for v in value)
                lines.append(f"  {label}: {value}{unit}")

        add("slicer", " ".join(str(v) for v in (f.get("slicer"), f.get("slicer_version")) if v) or None)
        add("printer", f.get("printer_model"))
        add("print time", _duration(f.get("estimated_time_s")))
        add("filament", f.get("filament_used_g_total"), " g")
        add("filament per slot", f.get("filament_used_g"), " g")
        add("filament length", f.get("filament_used_mm"), " mm")
        add("filament type", f.get("filament_type"))
        add("colour", f.get("filament_colour"))
        add("layer height", f.get("layer_height"), " mm")
        add("first layer", f.get("first_layer_height"), " mm")
        add("nozzle", f.get("nozzle_diameter"), " mm")
        add("nozzle temperature", f.get("nozzle_temperature"), " °C")
        add("first-layer nozzle", f.get("nozzle_temperature_initial_layer"), " °C")
        add("bed temperature", f.get("bed_temperature"), " °C")
        add("first-layer bed", f.get("bed_temperature_initial_layer"), " °C")
        add("object height", f.get("object_height"), " mm")
        add("layers", f.get("layer_count"))
        if info.format == "stl":
            add("triangles", info.extra.get("triangle_count"))
            add("size", info.extra.get("size_mm"), " mm")
        if info.plates:
            lines.append(f"  plates: {len(info.plates)}")
        pictures = ", ".join(f"{t.width}x{t.height} {t.format}" for t in info.thumbnails)
        lines.append(f"  thumbnails: {pictures or 'none'}")
        lines.append(f"  settings: {len(info.config)}")
        for warning in info.warnings:
            lines.append(f"  warning: {warning}")
        return "\n".join(lines) + "\n"


def _duration(seconds) -> str | None:
    if not isinstance(seconds, int | float):
        return None
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def _dumps(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False, default=str)
