"""Printers, filaments and print jobs of the sample files."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from catalog.samples import shapes
from catalog.samples.shapes import Part
from catalog.samples.toolpath import Motion, SliceSettings


@dataclass(frozen=True)
class FilamentProfile:
    name: str  # the maker's colour name, e.g. "Prusa Orange"
    vendor: str
    type: str  # PLA, PETG, ...
    colour: str  # #RRGGBB
    density: float  # g/cm³
    nozzle: int  # °C
    nozzle_first: int
    bed: int
    bed_first: int

    @property
    def settings_id(self) -> str:
        return f"{self.vendor} {self.type} {self.name}"


@dataclass(frozen=True)
class PrinterProfile:
    family: str  # "prusa" | "bambu"
    printer_model: str  # as the slicer states it
    settings_id: str
    bed_width: float
    bed_depth: float
    max_height: float
    motion: Motion
    model_id: str = ""  # Bambu's printer_model_id in slice_info.config
    bed_type: str = ""  # Bambu's curr_bed_type
    nozzle: float = 0.4
    purge_at: tuple[float, float] = (0.0, 0.0)  # where a Bambu printer flushes on a filament change
    flush_mm3: float = 0.0  # flushed per filament change

    @property
    def centre(self) -> tuple[float, float]:
        return self.bed_width / 2, self.bed_depth / 2


CORE_ONE = PrinterProfile(
    family="prusa", printer_model="COREONE", settings_id="Prusa CORE One 0.4 nozzle", bed_width=250, bed_depth=220,
    max_height=270,
    motion=Motion(external=40, perimeter=60, sparse=100, solid=80, first_layer=30, travel=200, z_travel=12,
                  retract_length=0.7, retract_speed=35),
)
BAMBU_A1 = PrinterProfile(
    family="bambu", printer_model="Bambu Lab A1", settings_id="Bambu Lab A1 0.4 nozzle", bed_width=256,
    bed_depth=256, max_height=256, model_id="N2S", bed_type="Textured PEI Plate",
    motion=Motion(external=120, perimeter=180, sparse=250, solid=200, first_layer=50, travel=400, z_travel=20,
                  retract_length=0.8, retract_speed=30),
    purge_at=(-48.0, 180.0), flush_mm3=150.0,
)
BAMBU_X1C = PrinterProfile(
    family="bambu", printer_model="Bambu Lab X1 Carbon", settings_id="Bambu Lab X1 Carbon 0.4 nozzle",
    bed_width=256, bed_depth=256, max_height=250, model_id="BL-P001", bed_type="Textured PEI Plate",
    motion=Motion(external=120, perimeter=180, sparse=250, solid=200, first_layer=50, travel=400, z_travel=20,
                  retract_length=0.8, retract_speed=30),
    purge_at=(70.0, 265.0), flush_mm3=150.0,
)
PRINTERS = {"coreone": CORE_ONE, "a1": BAMBU_A1, "x1c": BAMBU_X1C}


def _pla(name, vendor, colour, density=1.24):
    return FilamentProfile(name=name, vendor=vendor, type="PLA", colour=colour, density=density, nozzle=215,
                           nozzle_first=220, bed=60, bed_first=60)


FILAMENTS = {
    "pla-orange": _pla("Prusa Orange", "Prusament", "#FF8000"),
    "pla-green": _pla("Basic Bambu Green", "Bambu Lab", "#00AE42", 1.26),
    "pla-white": _pla("Basic Jade White", "Bambu Lab", "#FFFFFF", 1.26),
    "pla-silver": _pla("Basic Silver", "Bambu Lab", "#C0C0C0", 1.26),
    "pla-yellow": _pla("Basic Sunflower Yellow", "Bambu Lab", "#FEC600", 1.26),
    "pla-black": _pla("Galaxy Black", "Prusament", "#3D3E3D"),
    "pla-lavender": _pla("PolyTerra Lavender", "Polymaker", "#8100FE", 1.31),
    "pla-ocean": _pla("PolyTerra Ocean", "Polymaker", "#0D6385", 1.31),
    "pla-cyan": _pla("PolyTerra Cyan", "Polymaker", "#29B3B1", 1.31),
    "silk-turquoise": FilamentProfile(name="Silk Turquoise", vendor="Sunlu", type="SILK", colour="#02C0AE",
                                      density=1.24, nozzle=220, nozzle_first=225, bed=60, bed_first=60),
    "petg-black": FilamentProfile(name="Black", vendor="Extrudr", type="PETG", colour="#000000", density=1.27,
                                  nozzle=240, nozzle_first=235, bed=85, bed_first=80),
    "petg-red": FilamentProfile(name="Signal Red", vendor="Extrudr", type="PETG", colour="#FE0000", density=1.27,
                                nozzle=240, nozzle_first=235, bed=85, bed_first=80),
}

SHAPES = {
    "keychain": shapes.keychain,
    "cable_clip": shapes.cable_clip,
    "vase": shapes.vase,
    "phone_stand": shapes.phone_stand,
    "bracket": shapes.bracket,
    "sign": shapes.sign,
    "calibration_cube": shapes.calibration_cube,
    "coaster": shapes.coaster,
    "wall_hook": shapes.wall_hook,
}


@dataclass(frozen=True)
class Job:
    """One sliced file to make: an object, its printer, its filament per slot and the slicing settings."""

    object_name: str
    shape: str  # a key of SHAPES
    printer: PrinterProfile
    filaments: tuple[FilamentProfile, ...]
    settings: SliceSettings
    shape_args: tuple[tuple[str, float], ...] = ()

    def parts(self) -> list[Part]:
        return mesh_parts(self.shape, self.shape_args)


@lru_cache(maxsize=32)
def mesh_parts(shape: str, shape_args: tuple[tuple[str, float], ...] = ()) -> list[Part]:
    return SHAPES[shape](**dict(shape_args))
