"""Stage 7: STL and 3MF for printing, a STEP solid when asked, a preview picture, the point cloud and
the report."""

import json
import logging
import shutil

import numpy as np
import trimesh

from catalog.preview import render_png
from reconstruction.pipeline.cleaning import close_holes

logger = logging.getLogger(__name__)


def as_stored(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """The mesh as STL and 3MF store it: single-precision coordinates.

    A dense surface has vertices closer together than a float32 can tell apart at its size;
    stored as they are, they collapse in the file and the printed model is no longer closed.
    So the rounding is done here: the vertices it makes identical are merged, the faces that
    degenerate into lines or repeat are dropped, and holes left behind are filled, so the files
    hold exactly the surface that the report (faces, closed, volume) describes.
    """
    stored = trimesh.Trimesh(mesh.vertices.astype(np.float32).astype(np.float64), mesh.faces, process=True)
    stored.update_faces(stored.nondegenerate_faces(height=None))
    stored.update_faces(stored.unique_faces())
    stored.remove_unreferenced_vertices()
    if not stored.is_watertight:
        trimesh.repair.fill_holes(stored)
        stored = close_holes(stored)
        trimesh.repair.fix_normals(stored)
        stored.vertices = stored.vertices.astype(np.float32).astype(np.float64)  # the fills' new centres
    return stored


def write_step(mesh: trimesh.Trimesh, path) -> dict:
    """The STEP beside the mesh, and what the report says about it; a STEP that cannot be made never
    fails the scan: the report then says why (reason: empty, open, too complex, failed, unavailable)."""
    from django.conf import settings

    from reconstruction import cad

    try:
        return cad.mesh_to_step(mesh, path, max_faces=getattr(settings, "RECONSTRUCTION_STEP_MAX_FACES", cad.MAX_FACES))
    except cad.StepFailed as exc:
        path.unlink(missing_ok=True)
        return {"error": exc.reason, "detail": exc.message}
    except Exception as exc:  # the mesh files are written; a CAD fault must not lose them
        logger.exception("the STEP file could not be made")
        path.unlink(missing_ok=True)
        return {"error": cad.FAILED, "detail": str(exc)}


def run(context) -> None:
    mesh = as_stored(trimesh.load(context.work_dir / "scaled.ply", force="mesh"))
    out = context.work_dir / "out"
    out.mkdir(exist_ok=True)
    mesh.export(out / "mesh.stl")
    mesh.export(out / "mesh.3mf")
    (out / "preview.png").write_bytes(render_png(mesh.vertices, mesh.faces))
    shutil.copyfile(context.work_dir / "points.ply", out / "points.ply")
    if context.step:
        context.report["step"] = write_step(mesh, out / "model.step")
    context.report["mesh"] = {
        "faces": int(len(mesh.faces)), "vertices": int(len(mesh.vertices)), "watertight": bool(mesh.is_watertight),
        "volume_mm3": round(float(mesh.volume), 1) if mesh.is_watertight else None,
    }
    (out / "report.json").write_text(json.dumps(context.report, indent=2))
