"""STEP output against parts of known geometry.

For each part of reconstruction/cad/parts.py (a block with through-holes, an L-bracket, a
flange with a bore and bolt holes, all about 80 mm) the exact solid is tessellated, the mesh
is turned into a STEP file as a scan's mesh would be, and the STEP is read back and compared
with the exact solid: valid and closed (BRepCheck), volume error, share of the true area on
faces of the right type, plane normal errors, hole diameter and axis errors, and seconds.
`--noisy` also runs each part with Gaussian noise on the vertices (and, with --edge-mm, cut into
smaller triangles first), closer to what a scan gives.

    .venv/bin/python bench/reconstruction_cad.py [--noisy] [--noise-mm 0.02] [--part flange]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import _setup

_setup.setup_django()

import numpy as np  # noqa: E402
import trimesh  # noqa: E402

from reconstruction import cad  # noqa: E402
from reconstruction.cad import measure, occ, parts  # noqa: E402

TARGET_RIGHT_TYPE = 0.90
TARGET_DIAMETER_MM = 0.1
TARGET_VOLUME_PERCENT = 1.0


def verdict(ok: bool) -> str:
    return "meets target" if ok else "misses target"


def noisy(mesh: trimesh.Trimesh, *, edge_mm: float, noise_mm: float, seed: int) -> trimesh.Trimesh:
    remeshed = mesh.copy()
    if edge_mm > 0:
        remeshed = trimesh.Trimesh(*trimesh.remesh.subdivide_to_size(mesh.vertices, mesh.faces, max_edge=edge_mm))
    remeshed.vertices += np.random.default_rng(seed).normal(0, noise_mm, remeshed.vertices.shape)
    return remeshed


def one(name: str, truth, mesh: trimesh.Trimesh, folder: Path) -> bool:
    started = time.perf_counter()
    try:
        report = cad.mesh_to_step(mesh, folder / "part.step")
    except cad.StepFailed as exc:
        print(f"  {name}: no STEP ({exc.reason}: {exc.message})")
        return False
    seconds = time.perf_counter() - started
    result = measure.compare(truth, occ.read_step(folder / "part.step"))
    diameters = ", ".join(f"Ø {c['diameter_mm']:.2f}" + (f" ×{c['count']}" if c["count"] > 1 else "")
                          for c in report["cylinders"])
    by_kind = ", ".join(f"{kind} {100 * share:.1f} %" for kind, share in result["right_type_by_kind"].items())
    diameter = result["max_diameter_error_mm"]
    ok_type = result["right_type_share"] >= TARGET_RIGHT_TYPE
    ok_diameter = diameter is not None and diameter <= TARGET_DIAMETER_MM
    ok_volume = result["volume_error_percent"] <= TARGET_VOLUME_PERCENT
    print(f"  {name}: {len(mesh.faces)} triangles -> {report['method']} solid, {report['brep_faces']} faces "
          f"{result['faces']}, {report['planes']} planes, cylinders {diameters or 'none'}, {seconds:.1f} s")
    print(f"    valid {result['valid']}, closed {result['closed']}; volume error "
          f"{result['volume_error_percent']:.3f} %  target <= {TARGET_VOLUME_PERCENT} %: {verdict(ok_volume)}")
    print(f"    area on the right type {100 * result['right_type_share']:.1f} % ({by_kind})  "
          f"target >= {100 * TARGET_RIGHT_TYPE:.0f} %: {verdict(ok_type)}")
    normal = result["max_plane_normal_error_degrees"]
    axis = result["max_axis_error_degrees"]
    print(f"    plane normals max {normal:.4f} deg; " if normal is not None else "    no planes matched; ", end="")
    print(f"diameters max error {diameter:.4f} mm  target <= {TARGET_DIAMETER_MM} mm: {verdict(ok_diameter)}; "
          f"axes max {axis:.4f} deg" if diameter is not None else "no cylinders matched")
    return result["valid"] and result["closed"] and ok_type and ok_diameter and ok_volume


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=sorted(parts.PARTS), action="append")
    parser.add_argument("--noisy", action="store_true", help="also remeshed with noise, like a scan")
    parser.add_argument("--noise-mm", type=float, default=0.02)
    parser.add_argument("--edge-mm", type=float, default=0.0,
                        help="with --noisy: first cut the triangles to this longest edge (0: keep them)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    met = True
    with tempfile.TemporaryDirectory(prefix="fablab-cad-") as temporary:
        folder = Path(temporary)
        for name in args.part or list(parts.PARTS):
            truth = parts.PARTS[name]()
            mesh, _labels = occ.tessellate(truth, deflection=0.01, angle=0.15)
            print(f"{name} (true volume {occ.volume(truth):.1f} mm³, size "
                  f"{' × '.join(f'{e:.0f}' for e in mesh.extents)} mm)")
            met &= one("exact mesh", truth, mesh, folder)
            if args.noisy:
                label = f"remeshed to {args.edge_mm} mm, " if args.edge_mm > 0 else ""
                met &= one(f"{label}noise σ {args.noise_mm} mm", truth,
                           noisy(mesh, edge_mm=args.edge_mm, noise_mm=args.noise_mm, seed=args.seed), folder)
    print("all targets met" if met else "some targets missed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
