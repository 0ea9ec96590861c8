"""The reconstruction pipeline against ground truth: photos rendered from a known mesh.

Two kinds of scene, each rendered from known cameras, run through the whole pipeline,
aligned to the truth through the cameras and compared:

- the table scenes (default): CAD parts of 80 mm (L-bracket, block with through-holes,
  flange with bore and bolt circle, stepped shaft, organic shape) standing on textured
  tables (wood, cloth, noise; small, medium, larger than the view) that fill the
  background, lit differently in every photo, as customers photograph them;
- `--plain`: the original textured object against a plain background.

Per scene it prints photos placed, accuracy (mean distance to the true surface, % of the
part's bounding-box diagonal), completeness (share of the true surface within 1 % of the
diagonal of the result), the scale error with the part's longest side entered, whether
the mesh is closed and seconds per stage, each against its target, then a summary.

    .venv/bin/python bench/reconstruction_rendered.py [--views 30] [--size 1024]
        [--scene PART:TABLE:TEXTURE:SEED ...] [--quick] [--plain [--shape default]] [--keep DIR] [--refine]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import _setup

_setup.setup_django()

import numpy as np  # noqa: E402

from reconstruction import evaluation, synthetic  # noqa: E402
from reconstruction.pipeline import Context, ScanFailed, cleaning, run  # noqa: E402

TARGET_SECONDS = 120.0
TARGET_ACCURACY_PERCENT = 0.6
TARGET_COMPLETENESS = 0.75
TARGET_SCALE_ERROR_PERCENT = 1.0

# every part, every table size and texture, two seeds for some: 10 scenes
SCENES = [
    ("bracket", "medium", "wood", 0), ("holes", "large", "cloth", 0), ("flange", "small", "noise", 0),
    ("shaft", "large", "wood", 0), ("organic", "medium", "cloth", 0), ("bracket", "large", "noise", 1),
    ("holes", "small", "wood", 1), ("flange", "medium", "cloth", 1), ("shaft", "small", "noise", 1),
    ("organic", "large", "wood", 1),
]
QUICK = SCENES[:3]


def verdict(ok: bool) -> str:
    return "meets target" if ok else "misses target"


def longest_side_mm(truth: synthetic.Truth) -> float:
    """What a customer enters: the longest side of the part's box as it stands, measured along the part."""
    return float(max(cleaning.align_in_plane(truth.mesh()).extents))


def bench_scene(root: Path, *, scene: tuple | None, views: int, size: int, shape: str, refine: bool) -> dict:
    started = time.perf_counter()
    if scene is None:
        truth = synthetic.render_set(root, views=views, size=size, shape=shape)
        label = f"plain '{shape}'"
    else:
        part, table, texture, seed = scene
        truth = synthetic.render_table_set(root, part=part, table=table, texture=texture, views=views, size=size,
                                           seed=seed)
        label = f"{part} / {table} {texture} table / seed {seed}"
    rendered = time.perf_counter() - started
    entered = longest_side_mm(truth)
    print(f"\n== {label}: {views} photos at {size} px rendered in {rendered:.0f} s; longest side entered "
          f"{entered:.2f} mm", flush=True)
    started = time.perf_counter()
    row = {"scene": label}
    try:
        report = run(Context(photos_dir=truth.photos_dir, work_dir=root / "work", known_dimension_mm=entered))
    except ScanFailed as exc:
        print(f"pipeline FAILED after {time.perf_counter() - started:.1f} s: {exc.message}")
        return {**row, "failed": str(exc.message)}
    total = time.perf_counter() - started
    result = evaluation.evaluate(root / "work", truth, refine=refine)
    row.update(placed=f"{result.registered}/{result.photos}", accuracy=result.accuracy_percent,
               completeness=result.completeness, scale=result.scale_error_percent, seconds=total,
               watertight=result.watertight, support=report.get("support_removed", "none"))
    print(f"photos placed:   {result.registered}/{result.photos}, {report.get('points', 0)} sparse points, "
          f"reprojection error {report.get('reprojection_error_px')} px; camera error "
          f"{result.camera_position_error_percent:.3f} % of the diagonal, {result.camera_rotation_error_deg:.3f} deg")
    if result.accuracy_percent is None:
        print("mesh:            none to compare")
    else:
        print(f"accuracy:        {result.accuracy_percent:.3f} % of the diagonal mean "
              f"({result.accuracy_median_percent:.3f} % median)   target < {TARGET_ACCURACY_PERCENT} %: "
              f"{verdict(result.accuracy_percent < TARGET_ACCURACY_PERCENT)}")
        print(f"completeness:    {result.completeness:.3f} within 1 % of the diagonal   target > "
              f"{TARGET_COMPLETENESS}: {verdict(result.completeness > TARGET_COMPLETENESS)}")
    if result.scale_error_percent is not None:
        ok = abs(result.scale_error_percent) < TARGET_SCALE_ERROR_PERCENT
        print(f"scale error:     {result.scale_error_percent:+.3f} % with the longest side entered   target < "
              f"{TARGET_SCALE_ERROR_PERCENT} %: {verdict(ok)}")
    print(f"support removed: {report.get('support_removed', 'none found')}; size {report.get('size_mm')} mm; "
          f"watertight {result.watertight}")
    stages = ", ".join(f"{stage} {seconds:.1f}" for stage, seconds in report.get("stage_timings", {}).items())
    print(f"wall time:       {total:.1f} s   target < {TARGET_SECONDS:.0f} s: {verdict(total < TARGET_SECONDS)}")
    print(f"  per stage (s): {stages}", flush=True)
    return row


def summary(rows: list[dict]) -> None:
    print("\n| scene | placed | accuracy % | completeness | scale error % | s | support |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        if "failed" in row:
            print(f"| {row['scene']} | failed: {row['failed']} | | | | | |")
            continue

        def number(value, digits=3):
            return "–" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"

        print(f"| {row['scene']} | {row['placed']} | {number(row['accuracy'])} | {number(row['completeness'])} | "
              f"{number(row['scale'])} | {row['seconds']:.0f} | {row['support']} |")
    good = [row for row in rows if "failed" not in row and row["accuracy"] is not None]
    met = [row for row in good if row["accuracy"] < TARGET_ACCURACY_PERCENT and row["completeness"]
           > TARGET_COMPLETENESS and row["scale"] is not None and abs(row["scale"]) < TARGET_SCALE_ERROR_PERCENT
           and row["seconds"] < TARGET_SECONDS]
    print(f"\n{len(met)} of {len(rows)} scenes meet every target", flush=True)


def parse_scene(text: str) -> tuple:
    try:
        part, table, texture, seed = text.split(":")
        if part not in synthetic.PARTS or table not in synthetic.TABLES or texture not in synthetic.TABLE_TEXTURES:
            raise ValueError
        return part, table, texture, int(seed)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a scene is PART:TABLE:TEXTURE:SEED with PART one of {', '.join(synthetic.PARTS)}, TABLE one of "
            f"{', '.join(synthetic.TABLES)}, TEXTURE one of {', '.join(synthetic.TABLE_TEXTURES)}") from None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=30)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--scene", type=parse_scene, action="append", help="PART:TABLE:TEXTURE:SEED (repeatable)")
    parser.add_argument("--quick", action="store_true", help=f"only the first {len(QUICK)} table scenes")
    parser.add_argument("--plain", action="store_true", help="the original object on a plain background")
    parser.add_argument("--shape", choices=synthetic.SHAPES, default="default")
    parser.add_argument("--keep", type=Path, help="render and reconstruct into this folder and keep it")
    parser.add_argument("--refine", action="store_true", help="refine the alignment by ICP on the true surface")
    args = parser.parse_args()
    scenes = [None] if args.plain else (args.scene or (QUICK if args.quick else SCENES))
    rows = []
    for number, scene in enumerate(scenes):
        if args.keep:
            folder = args.keep / f"scene-{number:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            rows.append(bench_scene(folder, scene=scene, views=args.views, size=args.size, shape=args.shape,
                                    refine=args.refine))
            continue
        with tempfile.TemporaryDirectory(prefix="fablab-rendered-") as temporary:
            rows.append(bench_scene(Path(temporary), scene=scene, views=args.views, size=args.size,
                                    shape=args.shape, refine=args.refine))
    summary(rows)
    return 0 if all("failed" not in row for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
