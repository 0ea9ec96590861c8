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
from OCP.ShapeFix import ShapeFix_Face
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


def build(mesh: trimesh.Trimesh, regions: list[Region], *, analytic: bool = True):
    """The solid and the number of faces that could not be placed on their surface."""
    vertices = snap(mesh, regions) if analytic else mesh.vertices
    span = float(np.linalg.norm(mesh.extents))
    tolerance = max(1e-4 * span, 1e-3)
    sewing = BRepBuilderAPI_Sewing(tolerance, True, False, False, False)
    faceted = 0
    for region in regions:
        surface = _surface(region) if analytic else None
        for face_index in region.faces:
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
    unify = ShapeUpgrade_UnifySameDomain(solid, True, True, False)
    unify.SetLinearTolerance(tolerance)
    unify.SetAngularTolerance(1e-3)
    unify.Build()
    merged = unify.Shape()
    if is_valid(merged):
        solid = merged
    if not is_valid(solid) or volume(solid) <= 0:
        raise BuildFailed("the sewn solid is not valid")
    return solid, faceted
