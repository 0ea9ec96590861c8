"""Meshes of the sample models, built with trimesh from simple 2D outlines.

Every shape is a closed (watertight) trimesh mesh with its faces wound outwards,
placed with its lowest point on z = 0 and centred on x = y = 0. Heights are
multiples of 0.6 mm, so a layer plane at 0.2 or 0.3 mm spacing never lies on a
flat face. A model is a list of `Part`s: a mesh and the filament slot it is
printed with (the two-colour sign has two).

Only numpy and trimesh are needed: outlines are triangulated here by ear
clipping (holes are joined to the outline by a bridge edge first), so no
optional trimesh dependency (shapely, earcut, manifold) is used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import trimesh


@dataclass(frozen=True)
class Part:
    mesh: trimesh.Trimesh
    slot: int = 0  # filament slot, 0-based


# --- 2D outlines ---------------------------------------------------------------------------


def signed_area(points: np.ndarray) -> float:
    """Shoelace area of a closed outline: positive when it runs counter-clockwise."""
    x, y = points[:, 0], points[:, 1]
    return 0.5 * float(x[:-1] @ y[1:] - x[1:] @ y[:-1] + x[-1] * y[0] - x[0] * y[-1])


def oriented(points, *, ccw: bool) -> np.ndarray:
    points = np.asarray(points, dtype=float)
    return points if (signed_area(points) > 0) == ccw else points[::-1].copy()


def arc(cx: float, cy: float, r: float, start_deg: float, end_deg: float, segments: int) -> list:
    """Points of an arc from start to end (both included), counter-clockwise when end > start."""
    return [(cx + r * math.cos(math.radians(a)), cy + r * math.sin(math.radians(a)))
            for a in np.linspace(start_deg, end_deg, segments + 1)]


def circle(cx: float, cy: float, r: float, segments: int = 32) -> np.ndarray:
    return np.array(arc(cx, cy, r, 0, 360, segments)[:-1])


def rounded_rect(width: float, depth: float, radius: float, segments: int = 6) -> np.ndarray:
    """Counter-clockwise outline of a width x depth rectangle centred on 0 with rounded corners."""
    hx, hy, r = width / 2 - radius, depth / 2 - radius, radius
    points = []
    for cx, cy, start in ((hx, -hy, -90), (hx, hy, 0), (-hx, hy, 90), (-hx, -hy, 180)):
        points += arc(cx, cy, r, start, start + 90, segments)
    return np.array(points)


def _inside_triangle(points: np.ndarray, a, b, c) -> np.ndarray:
    """Which of `points` lie inside or on the counter-clockwise triangle abc."""
    def side(p, q):
        return (q[0] - p[0]) * (points[:, 1] - p[1]) - (q[1] - p[1]) * (points[:, 0] - p[0])
    eps = -1e-12
    return (side(a, b) >= eps) & (side(b, c) >= eps) & (side(c, a) >= eps)


def _bridge_holes(outer: np.ndarray, holes: list[np.ndarray]) -> np.ndarray:
    """One weakly simple polygon: each hole joined to the outline by a horizontal bridge.

    The hole with the rightmost vertex goes first; a ray from that vertex towards +x
    meets the current outline at its nearest crossing, which is inserted as a vertex
    and connected to the hole, walked clockwise, and back.
    """
    polygon = [tuple(p) for p in oriented(outer, ccw=True)]
    for hole in sorted((oriented(h, ccw=False) for h in holes), key=lambda h: -h[:, 0].max()):
        start = int(np.argmax(hole[:, 0]))
        hx, hy = hole[start]
        best = None
        for index in range(len(polygon)):
            (x1, y1), (x2, y2) = polygon[index], polygon[(index + 1) % len(polygon)]
            if (y1 > hy) == (y2 > hy) or y1 == y2:
                continue
            x = x1 + (hy - y1) * (x2 - x1) / (y2 - y1)
            if x > hx and (best is None or x < best[0]):
                best = (x, index)
        if best is None:
            raise ValueError("a hole lies outside its outline")
        x, index = best
        ring = [tuple(p) for p in np.roll(hole, -start, axis=0)]
        following = (index + 1) % len(polygon)
        if np.allclose(polygon[index], (x, hy)):
            joint_at = index
        elif np.allclose(polygon[following], (x, hy)):
            joint_at = following
        else:  # the ray crosses the edge between two vertices: split the edge there
            polygon.insert(index + 1, (x, hy))
            joint_at = index + 1
        joint = polygon[joint_at]
        polygon = polygon[: joint_at + 1] + ring + [ring[0], joint] + polygon[joint_at + 1:]
    return np.array(polygon)


def triangulate(outer, holes=()) -> tuple[np.ndarray, np.ndarray]:
    """(vertices, counter-clockwise triangles) of a polygon with holes, by ear clipping."""
    polygon = _bridge_holes(np.asarray(outer, float), [np.asarray(h, float) for h in holes]) if holes \
        else oriented(outer, ccw=True)
    remaining = list(range(len(polygon)))
    triangles = []
    guard = 0
    while len(remaining) > 3:
        guard += 1
        if guard > 4 * len(polygon) ** 2:
            raise ValueError("the outline could not be triangulated")
        count = len(remaining)
        for position in range(count):
            i, j, k = remaining[position - 1], remaining[position], remaining[(position + 1) % count]
            a, b, c = polygon[i], polygon[j], polygon[k]
            cross = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
            if cross <= 1e-12:
                continue  # reflex or flat: not an ear
            others = [m for m in remaining if m not in (i, j, k)]
            candidates = polygon[others]
            # Bridge vertices repeat coordinates; a vertex equal to a corner does not block the ear.
            distinct = ~(np.all(np.isclose(candidates, a), axis=1) | np.all(np.isclose(candidates, b), axis=1)
                         | np.all(np.isclose(candidates, c), axis=1))
            if np.any(_inside_triangle(candidates[distinct], a, b, c)):
                continue
            triangles.append((i, j, k))
            del remaining[position]
            break
        else:
            raise ValueError("the outline could not be triangulated")
    triangles.append(tuple(remaining))
    return polygon, np.array(triangles, dtype=np.int64)


# --- 3D solids -----------------------------------------------------------------------------


def prism(outer, holes=(), *, z0: float, z1: float) -> trimesh.Trimesh:
    """An outline (with holes) extruded from z0 to z1.

    Walls follow the edges of the bridged polygon that the caps were cut from, so
    caps and walls share every vertex (no T-junction where a bridge meets an edge);
    a bridge edge is walked once each way and gets no wall.
    """
    vertices2d, caps = triangulate(outer, holes)
    n = len(vertices2d)
    vertices = np.vstack([np.column_stack([vertices2d, np.full(n, z0)]),
                          np.column_stack([vertices2d, np.full(n, z1)])])
    faces = [caps[:, ::-1], caps + n]
    keys = [tuple(np.round(p, 9)) for p in vertices2d]
    edges = {(keys[i], keys[(i + 1) % n]) for i in range(n)}
    for i in range(n):
        j = (i + 1) % n
        if keys[i] == keys[j] or (keys[j], keys[i]) in edges:
            continue  # a repeated bridge vertex or a bridge edge
        faces.append(np.array([[i, j, j + n], [i, j + n, i + n]]))
    mesh = trimesh.Trimesh(vertices, np.vstack(faces), process=True)
    mesh.merge_vertices()
    mesh.remove_unreferenced_vertices()
    return mesh


def grid_prism(rows: list[str], *, cell: float, z0: float, z1: float, origin=(0.0, 0.0)) -> trimesh.Trimesh:
    """Cells marked '#' (row 0 at the top) extruded from z0 to z1: pixel letters and frames.

    Cells share corner vertices, so the solid is closed; glyphs must not touch only
    at a corner (that corner would belong to two outlines).
    """
    height = len(rows)
    filled = {(r, c) for r, row in enumerate(rows) for c, mark in enumerate(row) if mark == "#"}
    index: dict[tuple, int] = {}
    vertices: list[tuple] = []

    def vertex(col: int, row: int, z: float) -> int:
        key = (col, row, z)
        if key not in index:
            index[key] = len(vertices)
            vertices.append((origin[0] + col * cell, origin[1] + (height - row) * cell, z))
        return index[key]

    faces = []
    for r, c in sorted(filled):
        # corners in the xy plane, counter-clockwise seen from above (y grows upwards, rows downwards)
        corners = [(c, r + 1), (c + 1, r + 1), (c + 1, r), (c, r)]
        top = [vertex(x, y, z1) for x, y in corners]
        bottom = [vertex(x, y, z0) for x, y in corners]
        faces += [(top[0], top[1], top[2]), (top[0], top[2], top[3])]
        faces += [(bottom[0], bottom[2], bottom[1]), (bottom[0], bottom[3], bottom[2])]
        # a wall on each side that borders an empty cell; edge walked with the cell on its left
        for (dr, dc), (p, q) in (((1, 0), (0, 1)), ((0, 1), (1, 2)), ((-1, 0), (2, 3)), ((0, -1), (3, 0))):
            if (r + dr, c + dc) in filled:
                continue
            (px, py), (qx, qy) = corners[p], corners[q]
            a, b = vertex(px, py, z0), vertex(qx, qy, z0)
            d, e = vertex(px, py, z1), vertex(qx, qy, z1)
            faces += [(a, b, e), (a, e, d)]
    return trimesh.Trimesh(np.array(vertices, dtype=float), np.array(faces, dtype=np.int64), process=True)


def box(width: float, depth: float, height: float, *, z0: float = 0.0) -> trimesh.Trimesh:
    mesh = trimesh.creation.box(extents=[width, depth, height])
    mesh.apply_translation([0, 0, z0 + height / 2])
    return mesh


def revolved(profile, *, sections: int = 48) -> trimesh.Trimesh:
    """A solid of revolution about the z axis from an (r, z) profile that starts and ends on the axis."""
    return trimesh.creation.revolve(np.asarray(profile, dtype=float), sections=sections)


def _placed(parts: list[Part]) -> list[Part]:
    """Centre the parts together on x = y = 0 with the lowest point on the bed."""
    bounds = np.array([p.mesh.bounds for p in parts])
    low, high = bounds[:, 0].min(axis=0), bounds[:, 1].max(axis=0)
    shift = np.array([-(low[0] + high[0]) / 2, -(low[1] + high[1]) / 2, -low[2]])
    placed = []
    for part in parts:
        mesh = part.mesh.copy()
        mesh.apply_translation(shift)
        placed.append(Part(mesh=mesh, slot=part.slot))
    return placed


def _standing(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Turn a solid extruded along z so that its outline stands in the xz plane (extrusion along y)."""
    mesh = mesh.copy()
    mesh.apply_transform(trimesh.transformations.rotation_matrix(math.pi / 2, [1, 0, 0]))
    return mesh


# --- the sample models ---------------------------------------------------------------------


def keychain(*, width: float = 44.0, depth: float = 20.0) -> list[Part]:
    """A flat tag with rounded corners and a hole for the key ring, 3 mm thick."""
    outline = rounded_rect(width, depth, radius=min(6.0, depth / 3), segments=6)
    hole = circle(-width / 2 + 6.5, 0.0, 2.6, segments=24)
    return _placed([Part(prism(outline, [hole], z0=0.0, z1=3.0))])


def cable_clip(*, cable: float = 6.0) -> list[Part]:
    """A C-shaped clip for a cable of the given diameter on a flat foot, printed with the C flat on the bed.

    One outline: the foot along the bottom, joined to the ring where the ring's outer
    circle crosses the foot's top edge, and the ring open at the top.
    """
    inner = cable / 2
    outer = inner + 2.0
    opening = 70.0  # degrees, centred on +y
    foot_half, foot_height, overlap = outer + 5.0, 2.4, 0.8
    joint = math.degrees(math.acos((outer - overlap) / outer))  # from straight down to the joint
    top = -outer + overlap
    outline = [(-foot_half, -outer - foot_height), (foot_half, -outer - foot_height), (foot_half, top)]
    outline += arc(0, 0, outer, -90 + joint, 90 - opening / 2, 24)
    outline += arc(0, 0, inner, 90 - opening / 2, -270 + opening / 2, 40)
    outline += arc(0, 0, outer, 90 + opening / 2, 270 - joint, 24)
    outline += [(-foot_half, top)]
    return _placed([Part(prism(np.array(outline), z0=0.0, z1=9.0))])


def vase(*, height: float = 30.0) -> list[Part]:
    """A small bud vase: a solid floor and a 1.8 mm wall (four lines of 0.45 mm) that swells and narrows."""
    floor = 1.8
    wall = 1.8
    outer = [(14.0, 0.0), (16.0, height * 0.25), (15.5, height * 0.5), (10.0, height * 0.8), (9.0, height * 0.92),
             (10.5, height)]
    inner = [(r - wall, z) for r, z in reversed(outer) if z > floor] + [(outer[0][0] - wall, floor)]
    profile = [(0.0, 0.0)] + outer + inner + [(0.0, floor)]
    return _placed([Part(revolved(profile, sections=40))])


def phone_stand(*, scale: float = 1.0, width: float = 18.0) -> list[Part]:
    """A phone stand, printed on its side: the side profile extruded to the stand's width."""
    s = scale
    profile = [
        (0, 0), (70 * s, 0), (70 * s, 6), (62 * s, 6), (62 * s, 14 * s), (56 * s, 14 * s), (56 * s, 6),
        (30 * s, 6), (12 * s, 56 * s), (6 * s, 56 * s), (22 * s, 6), (0, 6),
    ]
    return _placed([Part(prism(np.array(profile, float), z0=0.0, z1=width))])


def bracket(*, width: float = 36.0) -> list[Part]:
    """An L bracket: a 3.6 mm base plate and a 4.2 mm upright on its back edge, two screw holes in each."""
    base = rounded_rect(width, 22.0, radius=3.0, segments=4)
    holes = [circle(x, -2.0, 2.2, segments=20) for x in (-width / 4, width / 4)]
    plate = prism(base, holes, z0=0.0, z1=3.6)
    half, height, r = width / 2, 24.0, 3.0
    outline = [(-half, 0.0), (half, 0.0)] + arc(half - r, height - r, r, 0, 90, 4) \
        + arc(-half + r, height - r, r, 90, 180, 4)
    upright_holes = [circle(x, 14.0, 2.2, segments=20) for x in (-width / 4, width / 4)]
    upright = _standing(prism(np.array(outline), upright_holes, z0=0.0, z1=4.2))
    upright.apply_translation([0.0, 11.0, 3.6])  # y from 6.8 to 11 (the plate's back edge), on top of the plate
    return _placed([Part(plate), Part(upright)])


def wall_hook(*, width: float = 14.4) -> list[Part]:
    """A J-shaped wall hook with a flat back plate, printed on its side (5 mm thick everywhere)."""
    outline = [(0.0, 40.0)]
    outline += arc(14, 8, 14, 180, 360, 18)  # the outside of the hook, from the back plate round to the tip
    outline += [(28.0, 18.0), (23.0, 18.0)]
    outline += arc(14, 8, 9, 360, 180, 14)  # the inside of the hook, back to the plate
    outline += [(5.0, 34.0), (2.5, 40.0)]
    return _placed([Part(prism(np.array(outline), z0=0.0, z1=width))])


def calibration_cube(*, size: float = 20.4) -> list[Part]:
    return _placed([Part(box(size, size, size))])


def coaster(*, diameter: float = 84.0) -> list[Part]:
    """A round coaster with a raised rim: 2.4 mm floor, rim 3.6 mm high."""
    r = diameter / 2
    profile = [(0, 0), (r, 0), (r, 3.6), (r - 3.6, 3.6), (r - 3.6, 2.4), (0, 2.4)]
    return _placed([Part(revolved(profile))])


GLYPHS = {
    "H": ["#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"],
    "E": ["#####", "#....", "#....", "####.", "#....", "#....", "#####"],
    "L": ["#....", "#....", "#....", "#....", "#....", "#....", "#####"],
    "O": ["#####", "#...#", "#...#", "#...#", "#...#", "#...#", "#####"],
}


def sign(*, text: str = "HELLO", cell: float = 1.8) -> list[Part]:
    """A plate with a raised frame in the first filament and raised pixel letters in the second.

    The frame and the letters share their layers, so each of those layers changes filament.
    """
    letters = [GLYPHS[ch] for ch in text]
    glyph_rows = [".".join(letter[r] for letter in letters) for r in range(7)]
    inner_width = len(glyph_rows[0]) + 4  # two empty cells each side
    frame_width = inner_width + 2
    blank = "." * inner_width
    frame = ["#" * frame_width] + ["#" + blank + "#"] * 9 + ["#" * frame_width]
    text_rows = ["." * frame_width, "." * frame_width] + ["..." + row + "..." for row in glyph_rows] \
        + ["." * frame_width, "." * frame_width]
    width, depth = frame_width * cell, len(frame) * cell
    origin = (-width / 2, -depth / 2)
    plate = box(width, depth, 2.4)
    raised_frame = grid_prism(frame, cell=cell, z0=2.4, z1=3.6, origin=origin)
    raised_text = grid_prism(text_rows, cell=cell, z0=2.4, z1=3.6, origin=origin)
    return _placed([Part(plate, slot=0), Part(raised_frame, slot=0), Part(raised_text, slot=1)])
