"""Slice meshes into layers of toolpaths and write them as G-code moves, keeping count.

`cut_layers` cuts each part at the middle of every layer with trimesh's plane
intersection (`trimesh.intersections.mesh_multiplane`, the cut behind
`mesh.section_multiplane`) and chains the cut into outlines and holes;
`slice_parts` makes per layer perimeters (outlines offset inwards by half a line,
then whole lines) and a rectilinear infill inside them, solid near the bottom and
top of the object and wherever the layer above or below is much smaller, sparse
elsewhere.

`Program` writes moves and counts what they do, from the very numbers it writes
(positions rounded to 0.001 mm, extrusion to 0.00001 mm):

- filament length per slot = the sum of E (relative extrusion, retractions included);
- time = the sum, over every G1 move, of its length divided by its feed rate (a move
  without X/Y/Z change counts its |E|). Acceleration, heating, homing and the
  filament swap itself are not counted. G28 leaves the head at X0 Y0 Z0.
- grams = length x cross-section of 1.75 mm filament x the filament's density.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import trimesh

from catalog.samples.shapes import Part, signed_area

FILAMENT_DIAMETER = 1.75
FILAMENT_AREA = math.pi * (FILAMENT_DIAMETER / 2) ** 2
XY_UNITS = 1000  # positions are written with 3 decimals
E_UNITS = 100000  # extrusion is written with 5 decimals


def grams(length_mm: float, density: float) -> float:
    return length_mm * FILAMENT_AREA * density / 1000.0


@dataclass(frozen=True)
class SliceSettings:
    layer_height: float = 0.2
    first_layer_height: float = 0.2
    line_width: float = 0.45
    perimeters: int = 2
    infill_density: float = 0.15  # 0..1, rectilinear
    top_layers: int = 3
    bottom_layers: int = 3


@dataclass
class Path:
    role: str  # "external" | "perimeter" | "solid" | "sparse"
    points: np.ndarray  # (n, 2) in mm
    closed: bool


@dataclass
class Layer:
    index: int
    z: float  # top of the layer
    height: float
    paths: dict[int, list[Path]] = field(default_factory=dict)  # by filament slot

    @property
    def slots(self) -> list[int]:
        return sorted(slot for slot, paths in self.paths.items() if paths)


# --- slicing -------------------------------------------------------------------------------


def _previous(points: np.ndarray) -> np.ndarray:
    return np.concatenate((points[-1:], points[:-1]))


def _next(points: np.ndarray) -> np.ndarray:
    return np.concatenate((points[1:], points[:1]))


def _chain(segments: np.ndarray) -> list[np.ndarray]:
    """Closed loops from the unordered segments of a cut through a closed mesh.

    In such a cut every end point is shared by exactly two segment ends; each end's
    mate (the other end at the same point) leads from one segment to the next.
    """
    ends = np.round(segments.reshape(-1, 2), 6)
    _points, ids = np.unique(ends, axis=0, return_inverse=True)
    ids = ids.reshape(-1)
    if np.any(np.bincount(ids) != 2):
        raise ValueError("the mesh is not closed: a cut through it does not form loops")
    order = np.argsort(ids, kind="stable")
    mate = np.empty(len(ids), dtype=np.int64)
    mate[order[0::2]], mate[order[1::2]] = order[1::2], order[0::2]
    mate = mate.tolist()
    flat = segments.reshape(-1, 2)
    used = [False] * len(segments)
    loops = []
    for start in range(len(segments)):
        if used[start]:
            continue
        used[start] = True
        indexes = [2 * start]
        end = 2 * start + 1
        while True:
            indexes.append(end)
            entry = mate[end]
            if used[entry // 2]:
                break
            used[entry // 2] = True
            end = entry ^ 1  # leave the next segment by its other end
        loops.append(flat[indexes[:-1]])
    return loops


def _clean_loop(points: np.ndarray) -> np.ndarray | None:
    """Drop the closing point, points closer than 0.05 mm to the one before, and points on a straight line."""
    loop = np.asarray(points, dtype=float)
    if len(loop) > 1 and np.allclose(loop[0], loop[-1]):
        loop = loop[:-1]
    for _round in range(len(loop)):
        if len(loop) < 3:
            return None
        step = np.linalg.norm(loop - _previous(loop), axis=1)
        keep = step >= 0.05
        if not keep.all():
            keep[int(np.argmax(step))] = True  # never drop every point
            loop = loop[keep]
            continue
        before, after = loop - _previous(loop), _next(loop) - loop
        cross = before[:, 0] * after[:, 1] - before[:, 1] * after[:, 0]
        straight = np.abs(cross) <= 1e-6 * np.linalg.norm(before + after, axis=1)
        if not straight.any():
            break
        loop = loop[~straight]
    if len(loop) < 3 or abs(signed_area(loop)) <= 0.05:
        return None
    return loop


def _contains(loop: np.ndarray, point) -> bool:
    x, y = point
    xs, ys = loop[:, 0], loop[:, 1]
    following = _next(loop)
    xn, yn = following[:, 0], following[:, 1]
    crosses = (ys > y) != (yn > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        at = xs + (y - ys) * (xn - xs) / (yn - ys)
    return bool(np.count_nonzero(crosses & (x < at)) % 2)


def _islands(loops: list[np.ndarray]) -> list[list[np.ndarray]]:
    """Group loops into islands: [outline (counter-clockwise), holes (clockwise)...]."""
    depth = [sum(_contains(other, loop[0]) for j, other in enumerate(loops) if j != i)
             for i, loop in enumerate(loops)]
    islands = []
    for i, loop in enumerate(loops):
        if depth[i] % 2:
            continue
        outline = loop if signed_area(loop) > 0 else loop[::-1].copy()
        holes = []
        for j, other in enumerate(loops):
            if depth[j] == depth[i] + 1 and _contains(loop, other[0]):
                holes.append(other if signed_area(other) < 0 else other[::-1].copy())
        islands.append([outline, *holes])
    islands.sort(key=lambda island: (round(-island[0][:, 1].max(), 3), round(island[0][:, 0].min(), 3)))
    return islands


def _offset_once(loop: np.ndarray, distance: float) -> np.ndarray:
    previous, following = _previous(loop), _next(loop)
    before, after = loop - previous, following - loop
    before = before / np.linalg.norm(before, axis=1)[:, None]
    after = after / np.linalg.norm(after, axis=1)[:, None]
    left_before = np.column_stack([-before[:, 1], before[:, 0]])
    left_after = np.column_stack([-after[:, 1], after[:, 0]])
    denominator = 1.0 + np.einsum("ij,ij->i", left_before, left_after)
    shift = (left_before + left_after) / np.maximum(denominator, 0.2)[:, None]  # miter, limited at sharp tips
    return loop + shift * distance


def offset_loop(loop: np.ndarray, distance: float) -> np.ndarray | None:
    """The loop moved `distance` to its left (into the material); None where it collapses.

    A short edge next to a corner can vanish in the offset (the end of an arc next to
    a square tip): its nearly straight end point is dropped and the offset done again.
    An edge that vanishes between two real corners means the material is thinner
    than twice the distance there, and the loop collapses.
    """
    for _attempt in range(len(loop)):
        if len(loop) < 3:
            return None
        moved = _offset_once(loop, distance)
        new_edges = _next(moved) - moved
        old_edges = _next(loop) - loop
        reversed_edges = np.flatnonzero(np.einsum("ij,ij->i", new_edges, old_edges) <= 1e-9)
        if not len(reversed_edges):
            return moved if signed_area(moved) * signed_area(loop) > 0 else None
        before, after = loop - _previous(loop), old_edges
        turn = np.abs(before[:, 0] * after[:, 1] - before[:, 1] * after[:, 0]) / (
            np.linalg.norm(before, axis=1) * np.linalg.norm(after, axis=1))
        edge = int(reversed_edges[0])
        ends = (edge, (edge + 1) % len(loop))
        vertex = min(ends, key=lambda i: turn[i])
        if turn[vertex] > 0.5:  # both ends are real corners (more than 30 degrees)
            return None
        loop = np.delete(loop, vertex, axis=0)
    return None


def _start_at_rear(loop: np.ndarray) -> np.ndarray:
    """Start a closed loop at its rearmost point (largest y, then smallest x): a steady seam."""
    order = np.lexsort((loop[:, 0], -loop[:, 1]))
    return np.roll(loop, -int(order[0]), axis=0)


def _infill(boundary: list[np.ndarray], *, spacing: float, angle_deg: float, min_length: float) -> list[Path]:
    """Rectilinear lines at `angle_deg` between the boundary loops (even-odd rule), in zig-zag order.

    Scan line k lies at k x spacing (in the turned frame); an edge from y1 to y2 is
    crossed by the lines with ceil(min/spacing) <= k < ceil(max/spacing), so at a
    shared vertex exactly one of the two edges counts it.
    """
    theta = math.radians(angle_deg)
    cos, sin = math.cos(theta), math.sin(theta)
    to_line = np.array([[cos, sin], [-sin, cos]])  # row vectors: p_line = p @ to_line.T, so p = p_line @ to_line
    all_k, all_x = [], []
    for loop in boundary:
        start = loop @ to_line.T
        end = _next(start)
        low = np.minimum(start[:, 1], end[:, 1])
        high = np.maximum(start[:, 1], end[:, 1])
        first = np.ceil(low / spacing).astype(np.int64)
        counts = np.maximum(np.ceil(high / spacing).astype(np.int64) - first, 0)
        if not counts.sum():
            continue
        edge = np.repeat(np.arange(len(start)), counts)
        offsets = np.arange(len(edge)) - np.repeat(np.cumsum(counts) - counts, counts)
        k = first[edge] + offsets
        x1, y1, x2, y2 = start[edge, 0], start[edge, 1], end[edge, 0], end[edge, 1]
        all_k.append(k)
        all_x.append(x1 + (k * spacing - y1) * (x2 - x1) / (y2 - y1))
    if not all_k:
        return []
    k, x = np.concatenate(all_k), np.concatenate(all_x)
    order = np.lexsort((x, k))
    k, x = k[order], x[order]
    # every scan line crosses the closed boundary an even number of times: pair them in order
    starts, ends, lines = x[0::2], x[1::2], k[0::2]
    keep = (ends - starts) >= min_length
    paths = []
    flip = False
    current = None
    row: list[tuple[float, float]] = []

    def flush() -> None:
        nonlocal flip
        if not row:
            return
        ordered = [(b, a) for a, b in reversed(row)] if flip else row
        for a, b in ordered:
            line = np.array([[a, current * spacing], [b, current * spacing]]) @ to_line
            paths.append(Path(role="", points=line, closed=False))
        flip = not flip

    for a, b, line_k in zip(starts[keep].tolist(), ends[keep].tolist(), lines[keep].tolist(), strict=True):
        if line_k != current:
            flush()
            row = []
            current = line_k
        row.append((a, b))
    flush()
    return paths


def _solid_layers(areas: list[float], settings: SliceSettings) -> list[bool]:
    count = len(areas)
    solid = []
    for index, area in enumerate(areas):
        if area <= 0:
            solid.append(False)
            continue
        above = [areas[j] if j < count else 0.0 for j in range(index + 1, index + 1 + settings.top_layers)]
        below = [areas[j] if j >= 0 else 0.0 for j in range(index - settings.bottom_layers, index)]
        solid.append(any(other < 0.85 * area for other in above + below))
    return solid


def layer_tops(height: float, settings: SliceSettings) -> list[float]:
    tops = [settings.first_layer_height]
    while tops[-1] + 1e-6 < height:
        tops.append(round(tops[-1] + settings.layer_height, 6))
    return [round(z, 6) for z in tops]


@dataclass(frozen=True)
class Outlines:
    """What each layer plane cuts out of the parts: islands per filament slot, before any toolpath."""

    tops: tuple[float, ...]
    heights: tuple[float, ...]
    islands: dict[int, list[list[list[np.ndarray]]]]  # slot -> layer -> island -> [outline, holes...]


def cut_layers(parts: list[Part], settings: SliceSettings) -> Outlines:
    """Cut the parts at the middle of each layer (trimesh's plane intersection, as mesh.section_multiplane
    uses) and group the cuts into islands: an outline and its holes."""
    height = max(float(part.mesh.bounds[1][2]) for part in parts)
    tops = layer_tops(height, settings)
    heights = [tops[0]] + [round(b - a, 6) for a, b in zip(tops, tops[1:], strict=False)]
    middles = [top - h / 2 for top, h in zip(tops, heights, strict=True)]
    slots = sorted({part.slot for part in parts})
    sections: dict[int, list[list[np.ndarray]]] = {slot: [[] for _ in tops] for slot in slots}
    for part in parts:
        lines, to_3d, _faces = trimesh.intersections.mesh_multiplane(
            part.mesh, plane_origin=[0, 0, 0], plane_normal=[0, 0, 1], heights=middles)
        for index, (segments, transform) in enumerate(zip(lines, to_3d, strict=True)):
            if not len(segments):
                continue
            flat = np.asarray(segments, dtype=float).reshape(-1, 2)
            placed = np.column_stack([flat, np.zeros(len(flat)), np.ones(len(flat))]) @ np.asarray(transform).T
            for points in _chain(placed[:, :2].reshape(-1, 2, 2)):
                loop = _clean_loop(points)
                if loop is not None:
                    sections[part.slot][index].append(loop)
    islands = {slot: [_islands(loops) for loops in sections[slot]] for slot in slots}
    return Outlines(tops=tuple(tops), heights=tuple(heights), islands=islands)


def slice_parts(parts: list[Part], settings: SliceSettings, outlines: Outlines | None = None) -> list[Layer]:
    """Layers of toolpaths (x, y relative to the parts' centre) for every filament slot."""
    outlines = outlines or cut_layers(parts, settings)
    islands = outlines.islands
    slots = sorted(islands)
    areas = {slot: [sum(signed_area(loop) for island in layer for loop in island) for layer in islands[slot]]
             for slot in slots}
    solid = {slot: _solid_layers(areas[slot], settings) for slot in slots}
    width = settings.line_width
    layers = []
    for index, top in enumerate(outlines.tops):
        layer = Layer(index=index, z=top, height=outlines.heights[index])
        for slot in slots:
            paths: list[Path] = []
            for island in islands[slot][index]:
                for loop in island:
                    for ring in reversed(range(settings.perimeters)):  # inner perimeters first
                        moved = offset_loop(loop, (ring + 0.5) * width)
                        if moved is not None:
                            paths.append(Path(role="external" if ring == 0 else "perimeter",
                                              points=_start_at_rear(moved), closed=True))
                boundary = [offset_loop(loop, settings.perimeters * width) for loop in island]
                if any(b is None for b in boundary):
                    continue  # thinner than the perimeters: no room for infill
                is_solid = solid[slot][index] or index < settings.bottom_layers
                if not is_solid and settings.infill_density <= 0:
                    continue
                spacing = width if is_solid else width / settings.infill_density
                angle = 45.0 if index % 2 == 0 else 135.0
                for path in _infill(boundary, spacing=spacing, angle_deg=angle, min_length=width):
                    path.role = "solid" if is_solid else "sparse"
                    paths.append(path)
            layer.paths[slot] = paths
        layers.append(layer)
    while layers and not any(layers[-1].paths.values()):
        layers.pop()
    return layers


# --- writing moves -------------------------------------------------------------------------


def number(value: int, units: int) -> str:
    """An integer count of 1/units written as G-code does: '.3', '130.343', '-.8', '0'.

    value / units is the double nearest to the decimal, so formatting it with as many
    decimals as `units` has zeros gives that decimal back exactly.
    """
    text = _PATTERNS[units] % (value / units)
    text = text.rstrip("0")
    if text[-1] == ".":
        text = text[:-1]
    if text[0] == "0" and len(text) > 1:
        return text[1:]
    if text[:2] == "-0" and len(text) > 2:
        return "-" + text[2:]
    return text


_PATTERNS = {XY_UNITS: "%.3f", E_UNITS: "%.5f"}


@dataclass
class Progress:
    """Where an M73 progress line goes, and how much of the print time has passed there."""

    seconds: float


class Program:
    """G-code lines with the machine state (absolute X/Y/Z, relative E) and what they add up to."""

    def __init__(self, slots: int):
        self.lines: list[str | Progress] = []
        self.x = self.y = self.z = 0
        self.feed = 0
        self.slot = 0
        self.extruded = [0] * slots  # per slot, in 1/E_UNITS mm
        self.seconds = 0.0
        self.retracted = False

    def line(self, text: str) -> None:
        self.lines.append(text)

    def lines_of(self, block: Iterable[str]) -> None:
        self.lines.extend(block)

    def progress(self) -> None:
        self.lines.append(Progress(self.seconds))

    def tool(self, slot: int) -> None:
        self.line(f"T{slot}")
        self.slot = slot

    def home(self) -> None:
        self.line("G28 ; home all axes")
        self.x = self.y = self.z = 0

    def move(self, *, x: float | None = None, y: float | None = None, z: float | None = None,
             e: float | None = None, feed: int | None = None, note: str = "") -> None:
        parts = ["G1"]
        nx, ny, nz = self.x, self.y, self.z
        if x is not None and (value := round(x * XY_UNITS)) != nx:
            parts.append("X" + number(value, XY_UNITS))
            nx = value
        if y is not None and (value := round(y * XY_UNITS)) != ny:
            parts.append("Y" + number(value, XY_UNITS))
            ny = value
        if z is not None and (value := round(z * XY_UNITS)) != nz:
            parts.append("Z" + number(value, XY_UNITS))
            nz = value
        e_units = round(e * E_UNITS) if e is not None else 0
        if e_units:
            parts.append("E" + number(e_units, E_UNITS))
        if feed is not None and feed != self.feed:
            parts.append(f"F{feed}")
            self.feed = feed
        if len(parts) == 1:
            return
        if not self.feed:
            raise ValueError("a move before any feed rate was set")
        dx, dy, dz = (nx - self.x) / XY_UNITS, (ny - self.y) / XY_UNITS, (nz - self.z) / XY_UNITS
        distance = math.sqrt(dx * dx + dy * dy + dz * dz)
        if distance == 0:
            distance = abs(e_units) / E_UNITS
        self.seconds += distance / (self.feed / 60.0)
        self.x, self.y, self.z = nx, ny, nz
        self.extruded[self.slot] += e_units
        self.lines.append(" ".join(parts) + (f" ; {note}" if note else ""))

    def polyline(self, points: list, *, per_mm: float, feed: int) -> None:
        """Extrude from the current position through `points` (mm): one line per point whose rounded
        position differs, with E = the length between rounded positions x `per_mm`."""
        x0, y0 = self.x, self.y
        lines = self.lines
        feed_text = f" F{feed}" if feed != self.feed else ""
        travelled, extruded = 0.0, 0
        for px, py in points:
            x, y = round(px * XY_UNITS), round(py * XY_UNITS)
            if x == x0 and y == y0:
                continue
            dx, dy = (x - x0) / XY_UNITS, (y - y0) / XY_UNITS
            length = math.sqrt(dx * dx + dy * dy)
            e = round(length * per_mm * E_UNITS)
            text = "G1"
            if x != x0:
                text += " X" + number(x, XY_UNITS)
            if y != y0:
                text += " Y" + number(y, XY_UNITS)
            if e:
                text += " E" + number(e, E_UNITS)
            lines.append(text + feed_text)
            feed_text = ""
            travelled += length
            extruded += e
            x0, y0 = x, y
        if not travelled:
            return
        self.feed = feed
        self.seconds += travelled / (feed / 60.0)
        self.extruded[self.slot] += extruded
        self.x, self.y = x0, y0

    def position(self) -> tuple[float, float]:
        return self.x / XY_UNITS, self.y / XY_UNITS

    def length_mm(self, slot: int) -> float:
        return self.extruded[slot] / E_UNITS

    def render(self, *, total_seconds: float, progress_line: Callable[[int, int], str]) -> list[str]:
        """The final lines, with each progress mark written as `progress_line(percent, minutes_left)`."""
        out = []
        for item in self.lines:
            if isinstance(item, Progress):
                percent = min(100, int(100 * item.seconds / total_seconds)) if total_seconds else 100
                left = max(0, round((total_seconds - item.seconds) / 60))
                out.append(progress_line(percent, left))
            else:
                out.append(item)
        return out


@dataclass(frozen=True)
class Motion:
    """Speeds (mm/s) and retraction of one printer profile."""

    external: float
    perimeter: float
    sparse: float
    solid: float
    first_layer: float
    travel: float
    z_travel: float
    retract_length: float
    retract_speed: float
    retract_before_travel: float = 2.0


def extrusion_per_mm(*, width: float, height: float) -> float:
    """Filament (mm) per mm of a line: a rectangle with rounded ends, as PrusaSlicer models it."""
    cross_section = (width - height * (1 - math.pi / 4)) * height
    return cross_section / FILAMENT_AREA


def retract(program: Program, motion: Motion) -> None:
    if not program.retracted:
        program.move(e=-motion.retract_length, feed=int(motion.retract_speed * 60))
        program.retracted = True


def unretract(program: Program, motion: Motion) -> None:
    if program.retracted:
        program.move(e=motion.retract_length, feed=int(motion.retract_speed * 60))
        program.retracted = False


def travel(program: Program, motion: Motion, x: float, y: float) -> None:
    here_x, here_y = program.position()
    if math.hypot(x - here_x, y - here_y) > motion.retract_before_travel:
        retract(program, motion)
    program.move(x=x, y=y, feed=int(motion.travel * 60))


def print_paths(program: Program, paths: list[Path], *, origin: tuple[float, float], motion: Motion,
                layer: Layer, width: float, role_lines: Callable[[str], list[str]]) -> None:
    """Travel to and extrude each path; `role_lines` gives the comments a slicer writes when the role changes."""
    per_mm = extrusion_per_mm(width=width, height=layer.height)
    role = None
    ox, oy = origin
    for path in paths:
        points = (path.points + np.array([ox, oy])).tolist()
        if path.closed:
            points.append(points[0])
        travel(program, motion, points[0][0], points[0][1])
        unretract(program, motion)
        if path.role != role:
            program.lines_of(role_lines(path.role))
            role = path.role
        speed = motion.first_layer if layer.index == 0 else getattr(motion, path.role)
        program.polyline(points[1:], per_mm=per_mm, feed=int(speed * 60))
