"""What a reader returns: SlicedFileInfo with its plates and thumbnails."""

from __future__ import annotations

from dataclasses import dataclass, field

from catalog.slicer.thumbnails import Thumbnail

# Field names and units of the ground truth's schema (expected.json "schema"/"fields").
SCHEMA_FIELDS: tuple[str, ...] = (
    "slicer",
    "slicer_version",
    "estimated_time_s",
    "filament_used_g",
    "filament_used_g_total",
    "filament_used_mm",
    "filament_type",
    "filament_colour",
    "layer_height",
    "first_layer_height",
    "nozzle_diameter",
    "nozzle_temperature",
    "nozzle_temperature_initial_layer",
    "bed_temperature",
    "bed_temperature_initial_layer",
    "printer_model",
    "object_height",
    "layer_count",
    "thumbnail_count",
    "config_key_count",
    "plates",
    "sliced",
)

# The 12 fields the peer comparison in reference/slicer-formats.md scores.
CORE_FIELDS: tuple[str, ...] = (
    "slicer",
    "estimated_time_s",
    "filament_used_g_total",
    "filament_used_mm",
    "filament_type",
    "layer_height",
    "first_layer_height",
    "nozzle_diameter",
    "nozzle_temperature_initial_layer",
    "bed_temperature_initial_layer",
    "printer_model",
    "object_height",
)


def empty_fields() -> dict:
    return dict.fromkeys(SCHEMA_FIELDS)


@dataclass
class Plate:
    """One print job: a plate of a 3MF, or the whole of a single G-code/bgcode file."""

    index: int
    fields: dict = field(default_factory=empty_fields)
    printer_model_id: str | None = None
    gcode_name: str | None = None
    thumbnail_indexes: list[int] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    # Cumulative extrusion per layer and slot from the plate's moves (extrusion.layer_table), None
    # when the plate has no layers. Kept apart from to_json(): it is stored on its own.
    layers: dict | None = None

    def to_json(self) -> dict:
        return {
            "index": self.index,
            "gcode_name": self.gcode_name,
            "printer_model_id": self.printer_model_id,
            "thumbnail_indexes": list(self.thumbnail_indexes),
            "fields": {key: value for key, value in self.fields.items() if key != "plates"},
            "extra": self.extra,
        }


@dataclass
class SlicedFileInfo:
    format: str  # "gcode" | "bgcode" | "3mf" | "ufp" | "stl"
    sliced: bool
    fields: dict = field(default_factory=empty_fields)
    plates: list[Plate] = field(default_factory=list)
    thumbnails: list[Thumbnail] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def layer_tables(self) -> dict:
        """{"<plate index>": layer table} for every plate with layers."""
        return {str(plate.index): plate.layers for plate in self.plates if plate.layers is not None}

    def to_json(self) -> dict:
        """A JSON-serialisable copy: thumbnails are described (format, size), never embedded."""
        return {
            "format": self.format,
            "sliced": self.sliced,
            "fields": dict(self.fields),
            "plates": [plate.to_json() for plate in self.plates],
            "thumbnails": [thumbnail.summary() for thumbnail in self.thumbnails],
            "config": dict(self.config),
            "extra": dict(self.extra),
            "warnings": list(self.warnings),
        }
