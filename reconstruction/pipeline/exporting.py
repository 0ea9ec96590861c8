"""Stage 7: STL and 3MF for printing, a preview picture, the point cloud and the report."""

import json
import shutil

import trimesh

from catalog.preview import render_png


def run(context) -> None:
    mesh = trimesh.load(context.work_dir / "scaled.ply", force="mesh")
    out = context.work_dir / "out"
    out.mkdir(exist_ok=True)
    mesh.export(out / "mesh.stl")
    mesh.export(out / "mesh.3mf")
    (out / "preview.png").write_bytes(render_png(mesh.vertices, mesh.faces))
    shutil.copyfile(context.work_dir / "points.ply", out / "points.ply")
    context.report["mesh"] = {
        "faces": int(len(mesh.faces)), "vertices": int(len(mesh.vertices)), "watertight": bool(mesh.is_watertight),
        "volume_mm3": round(float(mesh.volume), 1) if mesh.is_watertight else None,
    }
    (out / "report.json").write_text(json.dumps(context.report, indent=2))
