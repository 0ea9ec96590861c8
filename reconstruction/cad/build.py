"""A closed OpenCascade solid from a mesh and its fitted regions.

Every vertex is moved onto the surfaces of the regions that meet at it (alternating
projections converge on their intersection: a corner of three planes, the rim of a hole);
every triangle becomes a face on its region's surface; the faces are sewn into a shell and
a solid, and faces on the same surface are merged, so a flat side becomes one plane face
and a hole one cylinder face. Free-form regions stay as their triangles.
"""

import numpy as np
import trimesh
from OCP.BRepBuilderAPI import (
    BRepBuilderAPI_MakeFace,
    BRepBuilderAPI_MakePolygon,
    BRepBuilderAPI_MakeSolid,
    BRepBuilderAPI_Sewing,
)
from OCP.Geom import Geom_CylindricalSurface, Geom_Plane, Geom_SphericalSurface
from OCP.gp import gp_Ax3, gp_Dir, gp_Pnt
from OCP.ShapeFix import ShapeFix_Face, ShapeFix_Solid
from OCP.ShapeUpgrade import ShapeUpgrade_UnifySameDomain
from OCP.TopAbs import TopAbs_SHELL
from OCP.TopExp import TopExp_Explorer
from OCP.TopoDS import TopoDS

from reconstruction.cad.occ import is_valid, volume
from reconstruction.cad.segment import CYLINDER, FREEFORM, PLANE, SPHERE, Region


class BuildFailed(Exception):
    pass


def snap(mesh: trimesh.Trimesh, regions: list[Region], *, rounds: int = 40) -> np.ndarray:
    """Vertices moved onto every fitted surface that meets at them."""
    vertices = mesh.vertices.copy()
    owners = [np.unique(mesh.faces[r.faces]) for r in regions if r.kind != FREEFORM]
    fitted = [r for r in regions if r.kind != FREEFORM]
    for _round in range(rounds):
        before = vertices.copy()
        for region, index in zip(fitted, owners, strict=True):
            vertices[index] = region.project(vertices[index])
        if np.abs(vertices - before).max(initial=0) < 1e-9:
            break
    return vertices


def _point(xyz) -> gp_Pnt:
    return gp_Pnt(float(xyz[0]), float(xyz[1]), float(xyz[2]))


def _frame(origin, direction) -> gp_Ax3:
    return gp_Ax3(_point(origin), gp_Dir(float(direction[0]), float(direction[1]), float(direction[2])))


def _surface(region: Region):
    if region.kind == PLANE:
        normal = region.params["normal"]
        return Geom_Plane(_frame(normal * region.params["offset"], normal))
    if region.kind == CYLINDER:
        return Geom_CylindricalSurface(_frame(region.params["point"], region.params["axis"]),
                                       float(region.params["radius"]))
    if region.kind == SPHERE:
        return Geom_SphericalSurface(_frame(region.params["center"], (0, 0, 1)), float(region.params["radius"]))
    return None


def _triangle_face(corners: np.ndarray, surface):
    polygon = BRepBuilderAPI_MakePolygon(_point(corners[0]), _point(corners[1]), _point(corners[2]), True)
    if not polygon.IsDone():
        return None
    if surface is None or isinstance(surface, Geom_Plane):
        maker = BRepBuilderAPI_MakeFace(surface, polygon.Wire(), True) if surface is not None \
            else BRepBuilderAPI_MakeFace(polygon.Wire(), True)
        return maker.Face() if maker.IsDone() else None
    maker = BRepBuilderAPI_MakeFace(surface, polygon.Wire(), True)
    if not maker.IsDone():
        return None
    fix = ShapeFix_Face(maker.Face())
    fix.Perform()
    return fix.Face()


def _loops(mesh: trimesh.Trimesh, faces: np.ndarray) -> list[list[int]] | None:
    """The closed boundary loops of a set of faces as vertex indices in the faces' winding, or None when
    the boundary touches itself (then the faces are kept as triangles)."""
    directed = mesh.faces[faces][:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    keys = np.sort(directed, axis=1)
    _unique, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    boundary = directed[counts[inverse.ravel()] == 1]
    following: dict[int, int] = {}
    for start, end in boundary:
        if int(start) in following:
            return None
        following[int(start)] = int(end)
    loops = []
    while following:
        start, loop = next(iter(following)), []
        vertex = start
        while True:
            loop.append(vertex)
            vertex = following.pop(vertex, None)
            if vertex is None:
                return None
            if vertex == start:
                break
        if len(loop) < 3:
            return None
        loops.append(loop)
    return loops


def _region_face(vertices: np.ndarray, loops: list[list[int]], surface, normal: np.ndarray | None = None):
    """One face on the surface bounded by the loops, or None. On a plane (`normal` given) the loop
    enclosing the largest area is the outer one; a patch of a curved surface must have one loop."""
    def enclosed(loop):
        points = vertices[loop]
        return float(np.cross(points, np.roll(points, -1, axis=0)).sum(axis=0) @ normal) / 2

    if normal is None and len(loops) != 1:
        return None
    if normal is not None:
        loops = sorted(loops, key=lambda loop: -abs(enclosed(loop)))
    wires = []
    for loop in loops:
        polygon = BRepBuilderAPI_MakePolygon()
        for index in loop:
            polygon.Add(_point(vertices[index]))
        polygon.Close()
        if not polygon.IsDone():
            return None
        wires.append(polygon.Wire())
    maker = BRepBuilderAPI_MakeFace(surface, wires[0], True)
    if not maker.IsDone():
        return None
    for wire in wires[1:]:
        maker.Add(wire)
    fix = ShapeFix_Face(maker.Face())
    fix.FixOrientation()
    fix.Perform()
    face = fix.Face()
    return face if is_valid(face, geometry=False) else None


SECTORS = 3  # a cylinder is built in sectors of 120°, each a simple patch on its surface (no seam)


def _patches(mesh: trimesh.Trimesh, vertices: np.ndarray, region: Region) -> list[np.ndarray]:
    if region.kind != CYLINDER:
        return [region.faces]
    point, axis = region.params["point"], region.params["axis"]
    u = np.cross(axis, [1.0, 0, 0] if abs(axis[0]) < 0.9 else [0, 1.0, 0])
    u /= np.linalg.norm(u)
    v = np.cross(axis, u)
    centres = vertices[mesh.faces[region.faces]].mean(axis=1) - point
    angle = np.arctan2(centres @ v, centres @ u) + np.pi
    sector = np.minimum((angle / (2 * np.pi / SECTORS)).astype(int), SECTORS - 1)
    return [region.faces[sector == k] for k in range(SECTORS) if (sector == k).any()]


def _add_patch(sewing, mesh, vertices, region: Region, faces: np.ndarray, surface) -> int:
    """Add the patch as one face on its surface, else as triangles; returns how many went flat."""
    if surface is not None and region.kind in (PLANE, CYLINDER) and len(faces) > 1:
        loops = _loops(mesh, faces)
        normal = region.params["normal"] if region.kind == PLANE else None
        face = _region_face(vertices, loops, surface.Copy() if region.kind == CYLINDER else surface, normal) \
            if loops else None
        if face is not None:
            sewing.Add(face)
            return 0
    faceted = 0
    for face_index in faces:
        corners = vertices[mesh.faces[face_index]]
        if np.linalg.norm(np.cross(corners[1] - corners[0], corners[2] - corners[0])) < 1e-12:
            continue
        # a curved surface gets its own copy per triangle, so sewing never mistakes an edge for a seam
        face = _triangle_face(corners, surface.Copy() if surface is not None and region.kind != PLANE
                              else surface)
        if face is None and surface is not None:
            face, faceted = _triangle_face(corners, None), faceted + 1
        if face is not None:
            sewing.Add(face)
    return faceted


def build(mesh: trimesh.Trimesh, regions: list[Region], *, analytic: bool = True):
    """The solid and the number of faces that could not be placed on their surface."""
    vertices = snap(mesh, regions) if analytic else mesh.vertices
    span = float(np.linalg.norm(mesh.extents))
    tolerance = max(1e-4 * span, 1e-3)
    sewing = BRepBuilderAPI_Sewing(tolerance, True, False, False, False)
    faceted = 0
    for region in regions:
        surface = _surface(region) if analytic else None
        for patch in _patches(mesh, vertices, region) if analytic else [region.faces]:
            faceted += _add_patch(sewing, mesh, vertices, region, patch, surface)
    sewing.Perform()
    sewn = sewing.SewedShape()
    explorer = TopExp_Explorer(sewn, TopAbs_SHELL)
    if not explorer.More():
        raise BuildFailed("sewing gave no shell")
    solid_maker = BRepBuilderAPI_MakeSolid()
    shells = 0
    while explorer.More():
        solid_maker.Add(TopoDS.Shell(explorer.Current()))
        shells += 1
        explorer.Next()
    if shells != 1:
        raise BuildFailed(f"sewing gave {shells} shells")
    solid = solid_maker.Solid()
    if volume(solid, signed=True) < 0:
        solid.Reverse()
    merged = _merged(solid, tolerance)
    if merged is None:  # let OpenCascade repair the shell's orientation and small gaps, then try again
        fix = ShapeFix_Solid(solid)
        fix.Perform()
        solid = fix.Solid()
        merged = _merged(solid, tolerance) or (solid if is_valid(solid) else None)
    if merged is None or volume(merged) <= 0:
        raise BuildFailed("the sewn solid is not valid")
    return merged, faceted


def _merged(solid, tolerance: float):
    """The solid with the faces on one surface merged into one face, or None when that is not valid."""
    unify = ShapeUpgrade_UnifySameDomain(solid, True, True, False)
    unify.SetLinearTolerance(tolerance)
    unify.SetAngularTolerance(1e-3)
    unify.Build()
    merged = unify.Shape()
    return merged if is_valid(merged) else None
