"""Run a print job through a slicer's way of writing G-code and count what the moves add up to.

A `Flavour` writes what differs between slicers (start and end G-code, layer-change
comments, feature comments, filament changes); `run` slices the job, walks its
layers and returns the program and its `Stats`, which every figure a sample file
states is taken from.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from catalog.samples.profiles import Job
from catalog.samples.toolpath import (
    FILAMENT_AREA,
    Layer,
    Outlines,
    Program,
    SliceSettings,
    cut_layers,
    grams,
    print_paths,
    retract,
    slice_parts,
)

# Fixed so that the same job gives the same bytes on every run.
PRODUCER = "FabLab Samples"
PRODUCER_VERSION = "1.0"
PRODUCED_ON = ("2025-06-02", "09:30:00")


@dataclass(frozen=True)
class Stats:
    lengths_mm: tuple[float, ...]  # per slot: the sum of E
    densities: tuple[float, ...]
    seconds: float  # every move of the file
    model_seconds: float  # from the first layer change to the end of the last layer
    first_layer_seconds: float
    layer_count: int
    max_z: float
    tool_changes: int

    @property
    def grams(self) -> tuple[float, ...]:
        return tuple(grams(length, density) for length, density in zip(self.lengths_mm, self.densities, strict=True))

    @property
    def total_grams(self) -> float:
        return sum(self.grams)

    @property
    def total_mm(self) -> float:
        return sum(self.lengths_mm)

    @property
    def volumes_cm3(self) -> tuple[float, ...]:
        return tuple(length * FILAMENT_AREA / 1000 for length in self.lengths_mm)


class Flavour(Protocol):
    def start(self, program: Program, job: Job, layers: list[Layer]) -> None: ...

    def layer_change(self, program: Program, job: Job, layer: Layer, count: int) -> None: ...

    def role_lines(self, role: str, job: Job) -> list[str]: ...

    def tool_change(self, program: Program, job: Job, layer: Layer, slot: int) -> None: ...

    def end(self, program: Program, job: Job, layers: list[Layer]) -> None: ...


@lru_cache(maxsize=32)
def sliced(shape: str, shape_args: tuple, settings: SliceSettings) -> list[Layer]:
    from catalog.samples.profiles import mesh_parts

    layer_only = SliceSettings(layer_height=settings.layer_height, first_layer_height=settings.first_layer_height)
    return slice_parts(mesh_parts(shape, shape_args), settings, _outlines(shape, shape_args, layer_only))


@lru_cache(maxsize=32)
def _outlines(shape: str, shape_args: tuple, layer_only: SliceSettings) -> Outlines:
    """The cut layers depend on the layer heights only: versions that change the infill share them."""
    from catalog.samples.profiles import mesh_parts

    return cut_layers(mesh_parts(shape, shape_args), layer_only)


def run(job: Job, flavour: Flavour) -> tuple[Program, Stats]:
    layers = sliced(job.shape, job.shape_args, job.settings)
    program = Program(slots=len(job.filaments))
    motion = job.printer.motion
    flavour.start(program, job, layers)
    model_start = first_layer_end = None
    tool_changes = 0
    for layer in layers:
        if layer.index == 1:
            first_layer_end = program.seconds
        if model_start is None:
            model_start = program.seconds
        flavour.layer_change(program, job, layer, len(layers))
        retract(program, motion)
        program.move(z=layer.z, feed=int(motion.z_travel * 60))
        slots = layer.slots
        if program.slot in slots:  # finish with the loaded filament first
            slots.remove(program.slot)
            slots.insert(0, program.slot)
        for slot in slots:
            if slot != program.slot:
                flavour.tool_change(program, job, layer, slot)
                tool_changes += 1
            print_paths(program, layer.paths[slot], origin=job.printer.centre, motion=motion, layer=layer,
                        width=job.settings.line_width, role_lines=lambda role: flavour.role_lines(role, job))
    model_end = program.seconds
    flavour.end(program, job, layers)
    stats = Stats(
        lengths_mm=tuple(program.length_mm(slot) for slot in range(len(job.filaments))),
        densities=tuple(f.density for f in job.filaments),
        seconds=program.seconds,
        model_seconds=model_end - (model_start or 0.0),
        first_layer_seconds=(first_layer_end if first_layer_end is not None else model_end) - (model_start or 0.0),
        layer_count=len(layers),
        max_z=layers[-1].z if layers else 0.0,
        tool_changes=tool_changes,
    )
    return program, stats


def duration(seconds: float) -> str:
    """Whole seconds as slicers write them: '1h 2m 3s', '12m 5s', '40s', '1d 0h 2m 0s'."""
    total = int(round(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h {minutes}m {secs}s"
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def z_text(z: float) -> str:
    """A layer height as slicers write it in comments: 0.2, 3, 12.6."""
    return f"{z:.3f}".rstrip("0").rstrip(".")


def thumbnail_pngs(job: Job, sizes: list[tuple[int, int]]) -> list[tuple[int, int, bytes]]:
    from catalog.samples.render import render_png

    view = _scene(job.shape, job.shape_args)
    colours = [f.colour for f in job.filaments]
    return [(w, h, render_png(view, colours, width=w, height=h)) for w, h in sizes]


@lru_cache(maxsize=32)
def _scene(shape: str, shape_args: tuple):
    from catalog.samples.profiles import mesh_parts
    from catalog.samples.render import scene

    return scene(mesh_parts(shape, shape_args))
