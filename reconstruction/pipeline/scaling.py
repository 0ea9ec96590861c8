"""Stage 6: metric size from the object's longest side as the customer measured it."""

import trimesh


def run(context) -> None:
    mesh = trimesh.load(context.work_dir / "clean.ply", force="mesh")
    longest = float(max(mesh.extents))
    if context.known_dimension_mm:
        factor = float(context.known_dimension_mm) / longest
        context.report["scale"] = {"method": "known dimension", "longest_side_mm": float(context.known_dimension_mm),
                                   "factor": round(factor, 6)}
    else:
        factor = 1.0
        context.report["scale"] = {"method": "none: enter the longest side to get a true-size model",
                                   "factor": 1.0}
    mesh.apply_scale(factor)
    mesh.export(context.work_dir / "scaled.ply")
    context.report["size_mm"] = [round(float(v), 2) for v in mesh.extents]
