"""The reconstruction pipeline against ground truth: photos rendered from a known mesh.

Renders the test object of reconstruction/synthetic.py from known cameras (30 photos at
1024 px by default), runs the pipeline on them, aligns the result to the truth through
the cameras and prints: photos placed, camera error, mesh accuracy (mean distance to the
true surface, % of the object's bounding-box diagonal), completeness (share of the true
surface within 1 % of the diagonal of the result), watertightness and seconds per
stage, each against its target.

    .venv/bin/python bench/reconstruction_rendered.py [--views 30] [--size 1024] [--shape default]
                                                      [--keep DIR] [--refine]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import _setup

_setup.setup_django()

from reconstruction import evaluation, synthetic  # noqa: E402
from reconstruction.pipeline import Context, ScanFailed, run  # noqa: E402

TARGET_SECONDS = 120.0
TARGET_ACCURACY_PERCENT = 0.6
TARGET_COMPLETENESS = 0.75


def verdict(ok: bool) -> str:
    return "meets target" if ok else "misses target"


def bench(root: Path, *, views: int, size: int, shape: str, refine: bool) -> int:
    started = time.perf_counter()
    truth = synthetic.render_set(root, views=views, size=size, shape=shape)
    rendered = time.perf_counter() - started
    mesh = truth.mesh()
    print(f"rendered {views} photos at {size} px of the '{shape}' object ({len(mesh.faces)} faces, "
          f"{max(mesh.extents):.0f} mm tall) in {rendered:.1f} s")
    started = time.perf_counter()
    try:
        report = run(Context(photos_dir=truth.photos_dir, work_dir=root / "work",
                             known_dimension_mm=float(max(mesh.extents))))
    except ScanFailed as exc:
        print(f"pipeline FAILED after {time.perf_counter() - started:.1f} s: {exc.message}")
        return 1
    total = time.perf_counter() - started
    started = time.perf_counter()
    result = evaluation.evaluate(root / "work", truth, refine=refine)
    evaluated = time.perf_counter() - started

    print(f"photos placed:   {result.registered}/{result.photos} ({100 * result.registration_rate:.0f} %), "
          f"{report.get('points', 0)} sparse points, reprojection error {report.get('reprojection_error_px')} px")
    print(f"camera error:    position {result.camera_position_error_percent:.3f} % of the diagonal "
          f"(max {result.camera_position_error_max_percent:.3f} %), "
          f"rotation {result.camera_rotation_error_deg:.3f} deg "
          f"(max {result.camera_rotation_error_max_deg:.3f} deg), focal length {result.focal_error_percent:.2f} %")
    if result.accuracy_percent is None:
        print("mesh:            none to compare")
    else:
        print(f"accuracy:        {result.accuracy_percent:.3f} % of the diagonal mean, "
              f"{result.accuracy_median_percent:.3f} % median   target < {TARGET_ACCURACY_PERCENT} %: "
              f"{verdict(result.accuracy_percent < TARGET_ACCURACY_PERCENT)}")
        print(f"completeness:    {result.completeness:.3f} within 1 % of the diagonal   "
              f"target > {TARGET_COMPLETENESS}: "
              f"{verdict(result.completeness > TARGET_COMPLETENESS)}")
        print(f"watertight:      {result.watertight}; mesh {report.get('mesh', {}).get('faces')} faces, "
              f"meshed from {report.get('meshed_from', 'sparse points')} (compared: {result.mesh_used}"
              f"{', ICP-refined' if result.refined else ', aligned by the cameras only'})")
    stages = ", ".join(f"{stage} {seconds:.1f}" for stage, seconds in report.get("stage_timings", {}).items())
    print(f"wall time:       {total:.1f} s   target < {TARGET_SECONDS:.0f} s: {verdict(total < TARGET_SECONDS)}")
    print(f"  per stage (s): {stages}")
    print(f"  (evaluation {evaluated:.1f} s, not counted)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=30)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--shape", choices=synthetic.SHAPES, default="default")
    parser.add_argument("--keep", type=Path, help="render and reconstruct into this folder and keep it")
    parser.add_argument("--refine", action="store_true", help="refine the alignment by ICP on the true surface")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        return bench(args.keep, views=args.views, size=args.size, shape=args.shape, refine=args.refine)
    with tempfile.TemporaryDirectory(prefix="fablab-rendered-") as temporary:
        return bench(Path(temporary), views=args.views, size=args.size, shape=args.shape, refine=args.refine)


if __name__ == "__main__":
    sys.exit(main())
