"""The sample catalog: which models, variants and versions the demo loads, and the file of each version.

Nine models, eighteen variants (colours, materials, sizes), twenty-two sliced
files in the three formats, for the demo printers (Prusa CORE One, Bambu Lab A1
and X1 Carbon). Four variants have a second version that changes one setting
(layer height or infill). Every file is made on demand by `build_file`; nothing
is read from disk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from catalog.samples.engine import Stats
from catalog.samples.profiles import BAMBU_A1, BAMBU_X1C, CORE_ONE, FILAMENTS, Job, PrinterProfile
from catalog.samples.toolpath import SliceSettings

FORMATS = {"gcode": ".gcode", "bgcode": ".bgcode", "3mf": ".gcode.3mf"}


@dataclass(frozen=True)
class SampleVersion:
    job: Job
    format: str  # "gcode" | "bgcode" | "3mf"
    change_note: str = ""

    @property
    def file_name(self) -> str:
        """Named the way slicers name their output: object, layer height, material, printer."""
        job = self.job
        slug = re.sub(r"[^a-z0-9]+", "-", job.object_name.lower()).strip("-")
        size = "-".join(f"{key}{value:g}" for key, value in job.shape_args)
        material = "-".join(dict.fromkeys(f.type for f in job.filaments))
        printer = re.sub(r"[^A-Za-z0-9]+", "", job.printer.printer_model.replace("Bambu Lab", ""))
        infill = f"{round(job.settings.infill_density * 100)}pct"
        parts = [slug] + ([size] if size else []) + [f"{job.settings.layer_height:g}mm", infill, material, printer]
        return "_".join(parts) + FORMATS[self.format]


@dataclass(frozen=True)
class SampleVariant:
    name: str
    sku: str
    colour: str
    material: str
    size: str
    versions: tuple[SampleVersion, ...]


@dataclass(frozen=True)
class SampleModel:
    name: str
    description: str
    tags: tuple[str, ...]
    variants: tuple[SampleVariant, ...]
    by_partner: bool = False  # designed by the demo partner, shared with all partners
    shared: bool = False


@dataclass(frozen=True)
class SampleFile:
    name: str
    format: str
    data: bytes = field(repr=False)
    stats: Stats


def _settings(layer: float = 0.2, infill: float = 0.15) -> SliceSettings:
    return SliceSettings(layer_height=layer, first_layer_height=layer, infill_density=infill)


def _version(name: str, shape: str, printer: PrinterProfile, filaments: list[str], fmt: str, *, layer=0.2,
             infill=0.15, note: str = "", **shape_args) -> SampleVersion:
    job = Job(object_name=name, shape=shape, printer=printer, filaments=tuple(FILAMENTS[f] for f in filaments),
              settings=_settings(layer, infill), shape_args=tuple(sorted(shape_args.items())))
    return SampleVersion(job=job, format=fmt, change_note=note)


def _variant(name, sku, filament: str, size: str, *versions, material: str | None = None) -> SampleVariant:
    profile = FILAMENTS[filament]
    return SampleVariant(name=name, sku=sku, colour=profile.colour, material=material or profile.type, size=size,
                         versions=tuple(versions))


FIRST = "Sample file made by the demo."
FINER = "Finer layers: 0.2 mm instead of 0.3 mm."
STRONGER = "Stronger: {new} % infill instead of {old} %."


def sample_models() -> list[SampleModel]:
    key, clip, vase, stand = "Keychain tag", "Cable clip", "Bud vase", "Phone stand"
    bracket, sign, cube, coaster, hook = "Shelf bracket", "HELLO sign", "Calibration cube", "Coaster", "Wall hook"
    return [
        SampleModel(key, "A flat tag with a hole for the key ring, 3 mm thick.", ("keychain", "gift"), (
            _variant("Orange, small", "KEY-S-ORANGE", "pla-orange", "36 x 16 mm",
                     _version(key, "keychain", CORE_ONE, ["pla-orange"], "gcode", layer=0.3, note=FIRST,
                              width=36, depth=16),
                     _version(key, "keychain", CORE_ONE, ["pla-orange"], "gcode", layer=0.2, note=FINER,
                              width=36, depth=16)),
            _variant("Orange, large", "KEY-L-ORANGE", "pla-orange", "50 x 24 mm",
                     _version(key, "keychain", CORE_ONE, ["pla-orange"], "gcode", note=FIRST, width=50, depth=24)),
            _variant("Green, small", "KEY-S-GREEN", "pla-green", "36 x 16 mm",
                     _version(key, "keychain", BAMBU_A1, ["pla-green"], "3mf", note=FIRST, width=36, depth=16)),
        )),
        SampleModel(clip, "Holds a cable along a desk edge; glue or tape its foot down.", ("cable", "desk"), (
            _variant("6 mm cable, black", "CLIP-6-BLACK", "petg-black", "for 6 mm cable",
                     _version(clip, "cable_clip", CORE_ONE, ["petg-black"], "bgcode", infill=0.2, note=FIRST,
                              cable=6),
                     _version(clip, "cable_clip", CORE_ONE, ["petg-black"], "bgcode", infill=0.4,
                              note=STRONGER.format(new=40, old=20), cable=6)),
            _variant("4 mm cable, black", "CLIP-4-BLACK", "petg-black", "for 4 mm cable",
                     _version(clip, "cable_clip", CORE_ONE, ["petg-black"], "bgcode", infill=0.2, note=FIRST,
                              cable=4)),
        )),
        SampleModel(vase, "A small bud vase with a 1.8 mm wall, 30 mm tall.", ("vase", "home"), (
            _variant("Silk turquoise", "VASE-SILK-TURQUOISE", "silk-turquoise", "",
                     _version(vase, "vase", BAMBU_A1, ["silk-turquoise"], "3mf", layer=0.3, note=FIRST)),
            _variant("Lavender", "VASE-LAVENDER", "pla-lavender", "",
                     _version(vase, "vase", BAMBU_A1, ["pla-lavender"], "3mf", layer=0.3, note=FIRST)),
        )),
        SampleModel(stand, "Holds a phone or a tablet upright on a desk; printed on its side.", ("phone", "desk"), (
            _variant("Phone, silver", "STAND-PHONE-SILVER", "pla-silver", "phone",
                     _version(stand, "phone_stand", BAMBU_X1C, ["pla-silver"], "3mf", layer=0.3, infill=0.15,
                              note=FIRST),
                     _version(stand, "phone_stand", BAMBU_X1C, ["pla-silver"], "3mf", layer=0.3, infill=0.25,
                              note=STRONGER.format(new=25, old=15))),
            _variant("Tablet, silver", "STAND-TABLET-SILVER", "pla-silver", "tablet",
                     _version(stand, "phone_stand", BAMBU_X1C, ["pla-silver"], "3mf", layer=0.3, infill=0.15,
                              note=FIRST, scale=1.3)),
        ), by_partner=True, shared=True),
        SampleModel(bracket, "An L bracket with two screw holes in each leg.", ("bracket", "hardware"), (
            _variant("Red PETG", "BRACKET-RED", "petg-red", "36 mm wide",
                     _version(bracket, "bracket", CORE_ONE, ["petg-red"], "gcode", layer=0.3, infill=0.25,
                              note=FIRST),
                     _version(bracket, "bracket", CORE_ONE, ["petg-red"], "gcode", layer=0.2, infill=0.25,
                              note=FINER)),
            _variant("Black PETG", "BRACKET-BLACK", "petg-black", "36 mm wide",
                     _version(bracket, "bracket", CORE_ONE, ["petg-black"], "bgcode", layer=0.3, infill=0.25,
                              note=FIRST)),
        )),
        SampleModel(sign, "A door sign in two colours: plate and frame in one, the letters in the other.",
                    ("sign", "multicolour"), (
            _variant("White and yellow", "SIGN-WHITE-YELLOW", "pla-white", "63 x 20 mm",
                     _version(sign, "sign", BAMBU_X1C, ["pla-white", "pla-yellow"], "3mf", layer=0.3, note=FIRST),
                     material="PLA"),
            _variant("White and orange", "SIGN-WHITE-ORANGE", "pla-white", "63 x 20 mm",
                     _version(sign, "sign", BAMBU_X1C, ["pla-white", "pla-orange"], "3mf", layer=0.3, note=FIRST),
                     material="PLA"),
        ), shared=True),
        SampleModel(cube, "A 20.4 mm cube to check dimensions and extrusion.", ("calibration",), (
            _variant("Orange PLA", "CUBE-ORANGE", "pla-orange", "20.4 mm",
                     _version(cube, "calibration_cube", CORE_ONE, ["pla-orange"], "bgcode", layer=0.3, note=FIRST)),
            _variant("Bambu green", "CUBE-GREEN", "pla-green", "20.4 mm",
                     _version(cube, "calibration_cube", BAMBU_A1, ["pla-green"], "3mf", layer=0.3, note=FIRST)),
        )),
        SampleModel(coaster, "A round coaster with a raised rim, 84 mm across.", ("home", "kitchen"), (
            _variant("Ocean", "COASTER-OCEAN", "pla-ocean", "84 mm",
                     _version(coaster, "coaster", CORE_ONE, ["pla-ocean"], "gcode", layer=0.3, note=FIRST)),
            _variant("Cyan", "COASTER-CYAN", "pla-cyan", "84 mm",
                     _version(coaster, "coaster", CORE_ONE, ["pla-cyan"], "gcode", layer=0.3, note=FIRST)),
        )),
        SampleModel(hook, "A J-shaped hook for a wall, 5 mm thick everywhere.", ("hook", "hardware"), (
            _variant("Galaxy black", "HOOK-BLACK", "pla-black", "14.4 mm wide",
                     _version(hook, "wall_hook", BAMBU_A1, ["pla-black"], "3mf", layer=0.3, note=FIRST)),
        )),
    ]


def build_file(version: SampleVersion) -> SampleFile:
    """The bytes of a version's sliced file (the same bytes every time) and the figures it states."""
    from catalog.samples import bambu, prusa

    writers = {"gcode": prusa.write_gcode, "bgcode": prusa.write_bgcode, "3mf": bambu.write_3mf}
    data, stats = writers[version.format](version.job)
    return SampleFile(name=version.file_name, format=version.format, data=data, stats=stats)


def model_picture(model: SampleModel, *, width: int = 640, height: int = 480) -> bytes:
    """A PNG of the model as its first variant's newest file prints it, for the catalog's model images."""
    from catalog.samples.engine import thumbnail_pngs

    ((_width, _height, png),) = thumbnail_pngs(model.variants[0].versions[-1].job, [(width, height)])
    return png
