"""Editable CAD from a scanned mesh: a STEP (AP214) solid whose flat sides are planes and whose
holes and bosses are cylinders with their real diameters.

`mesh_to_step(mesh, path)` segments the mesh (`segment`), builds a closed solid on the fitted
surfaces (`build`) and writes it; when no surface fits or the fitted solid cannot be built, it
writes the mesh's triangles as a closed faceted solid and says so. It returns a small report
(JSON-ready) that `reconstruction.report_text` turns into sentences.

OpenCascade (the `cadquery-ocp-novtk` wheel) is imported only here, when a STEP is made: where
the wheel is missing, `available()` is False and everything else keeps working.
"""

import time
from collections import Counter
from pathlib import Path

import numpy as np
import trimesh

from fablab.exceptions import ApplicationError

MAX_FACES = 6000  # larger meshes are simplified first: building the solid takes some ms per triangle
MIN_FITTED_SHARE = 0.5  # below this share of the area on fitted surfaces, the faceted solid is written

# Why no STEP was made (report["step"]["error"]); report_text words each for the customer.
EMPTY, CORRUPT, OPEN, TOO_COMPLEX, FAILED, UNAVAILABLE = (
    "empty", "corrupt", "open", "too complex", "failed", "unavailable")


class StepFailed(ApplicationError):
    status = 422
    title = "STEP not made"
    code = "step-failed"

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def available() -> bool:
    try:
        import OCP.STEPControl  # noqa: F401
    except ImportError:
        return False
    return True


def _checked(mesh) -> trimesh.Trimesh:
    """A copy of the mesh that bounds a solid, or StepFailed saying why it cannot."""
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) < 4 or len(mesh.vertices) < 4:
        raise StepFailed(EMPTY, "The mesh is empty; there is no surface to turn into a solid.")
    if not np.isfinite(mesh.vertices).all():
        raise StepFailed(CORRUPT, "The mesh has vertices without coordinates (NaN or infinite).")
    if mesh.faces.min() < 0 or mesh.faces.max() >= len(mesh.vertices):
        raise StepFailed(CORRUPT, "The mesh is damaged: some triangles refer to vertices it does not have.")
    mesh = trimesh.Trimesh(mesh.vertices.copy(), mesh.faces.copy(), process=True)
    mesh.update_faces(mesh.nondegenerate_faces(height=None))
    mesh.update_faces(mesh.unique_faces())
    mesh.remove_unreferenced_vertices()
    if len(mesh.faces) < 4:
        raise StepFailed(EMPTY, "The mesh is empty; there is no surface to turn into a solid.")
    if not mesh.is_watertight:
        trimesh.repair.fill_holes(mesh)
    if not mesh.is_watertight or not mesh.is_winding_consistent:
        raise StepFailed(OPEN, "The mesh is not closed, so it does not bound a solid.")
    if mesh.volume < 0:
        mesh.invert()
    return mesh


def _closed(mesh: trimesh.Trimesh) -> trimesh.Trimesh | None:
    mesh = trimesh.Trimesh(mesh.vertices, mesh.faces, process=True)
    mesh.update_faces(mesh.nondegenerate_faces(height=None))
    mesh.update_faces(mesh.unique_faces())
    mesh.remove_unreferenced_vertices()
    if not mesh.is_watertight:
        trimesh.repair.fill_holes(mesh)
    return mesh if mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0 else None


def _simplified(mesh: trimesh.Trimesh, max_faces: int) -> trimesh.Trimesh:
    """Fewer triangles, still closed: quadric edge collapse first, else vertices merged per grid cell.

    Both can pinch the surface where it is thinner than the triangles they make; for the grid a few
    cell sizes and offsets are tried, and the first result that is still closed is kept.
    """
    try:
        coarse = _closed(mesh.simplify_quadric_decimation(face_count=max_faces))
    except (ImportError, ValueError):  # fast-simplification missing, or nothing to do
        coarse = None
    if coarse is not None and len(coarse.faces) <= max_faces:
        return coarse
    base = float(np.linalg.norm(mesh.extents)) / np.sqrt(max_faces / 2.0)
    for scale, shift in ((1.0, 0.0), (1.0, 0.5), (1.3, 0.0), (1.3, 0.5), (1.7, 0.25)):
        keys = np.floor((mesh.vertices - mesh.bounds[0]) / (base * scale) + shift).astype(np.int64)
        _unique, cluster = np.unique(keys, axis=0, return_inverse=True)
        cluster = cluster.ravel()
        sums = np.zeros((cluster.max() + 1, 3))
        np.add.at(sums, cluster, mesh.vertices)
        coarse = _closed(trimesh.Trimesh(sums / np.bincount(cluster)[:, None], cluster[mesh.faces], process=False))
        if coarse is not None and len(coarse.faces) <= max_faces:
            return coarse
    raise StepFailed(TOO_COMPLEX, f"The mesh has {len(mesh.faces)} triangles and could not be simplified to "
                                  f"{max_faces} while staying closed.")


def _diameters(regions) -> list[dict]:
    """Cylinder diameters, largest first, equal ones (to 0.01 mm) counted together."""
    counted = Counter(round(2 * float(r.params["radius"]), 2) for r in regions if r.kind == "cylinder")
    return [{"diameter_mm": d, "count": n} for d, n in sorted(counted.items(), reverse=True)]


def _written(solid, path: Path) -> bool:
    """Write the solid and read it back: True when the file holds a valid closed solid (else it is removed).

    Edges whose tolerances the file cannot carry may read back invalid; the solid healed by
    OpenCascade's ShapeFix is then written instead.
    """
    from OCP.ShapeFix import ShapeFix_Shape

    from reconstruction.cad import occ

    for attempt in range(2):
        try:
            if attempt:
                fix = ShapeFix_Shape(solid)
                fix.Perform()
                solid = fix.Shape()
            occ.write_step(solid, path)
            back = occ.read_step(path)
            if occ.is_valid(back) and occ.is_closed(back):
                return True
        except Exception:  # any failure to heal, write or read means: not this file
            pass
    path.unlink(missing_ok=True)
    return False


def mesh_to_step(mesh, path: Path, *, max_faces: int = MAX_FACES) -> dict:
    """Write the mesh as a closed STEP solid at `path`; the report says what was recognised.

    Raises StepFailed (with `reason` one of EMPTY, CORRUPT, OPEN, TOO_COMPLEX, FAILED, UNAVAILABLE)
    when no solid can be made; nothing is written then.
    """
    if not available():
        raise StepFailed(UNAVAILABLE, "OpenCascade (cadquery-ocp-novtk) is not installed.")
    from reconstruction.cad import build, occ, segment

    started = time.perf_counter()
    mesh = _checked(mesh)
    simplified = len(mesh.faces) > max_faces
    if simplified:
        mesh = _simplified(mesh, max_faces)
    regions = segment.segment(mesh)
    fitted = [r for r in regions if r.kind != segment.FREEFORM]
    total_area = float(mesh.area)
    fitted_area = sum(r.area for r in fitted)
    solid, fallback = None, ""
    if fitted_area >= MIN_FITTED_SHARE * total_area:
        try:
            solid, _faceted = build.build(mesh, regions)
            if abs(occ.volume(solid) - mesh.volume) > 0.02 * mesh.volume:
                solid, fallback = None, "volume"
        except Exception:  # BuildFailed, or OpenCascade's own errors on odd geometry: the faceted solid still helps
            solid, fallback = None, "build"
    if fitted_area < MIN_FITTED_SHARE * total_area:
        fitted, fallback = [], "no surfaces"  # a few flat facets on a free-form shape are no CAD model
    path = Path(path)
    if solid is not None and not _written(solid, path):
        solid, fallback = None, "reimport"  # the file did not read back as a valid closed solid
    if solid is None:
        try:
            solid, _faceted = build.build(mesh, [segment.Region(segment.FREEFORM, np.arange(len(mesh.faces)),
                                                                total_area)], analytic=False)
        except Exception as exc:
            raise StepFailed(FAILED, f"No closed solid could be built from the mesh ({exc}).") from None
        fitted, fitted_area = [], 0.0
        if not _written(solid, path):
            raise StepFailed(FAILED, "The STEP file did not read back as a valid closed solid.")
    kinds = Counter(occ.surface_of(face)[0] for face in occ.faces(solid))
    return {
        "method": "faceted" if fallback else "analytic",
        "fallback": fallback,
        "planes": sum(1 for r in fitted if r.kind == segment.PLANE),
        "cylinders": _diameters(fitted),
        "fitted_area_share": round(fitted_area / total_area, 3) if total_area else 0.0,
        "brep_faces": int(sum(kinds.values())),
        "volume_mm3": round(occ.volume(solid), 1),
        "simplified_to_faces": int(len(mesh.faces)) if simplified else None,
        "seconds": round(time.perf_counter() - started, 2),
    }
