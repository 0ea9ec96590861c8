"""The reconstruction pipeline on the real photo sets of the corpus.

Prints, per set: photos placed, points, reprojection error, mesh size and
watertightness, and seconds per stage. (The synthetic ground-truth benchmark with
accuracy and completeness figures is a separate script, still to come.)
"""

import shutil
import sys
import tempfile
import time
from pathlib import Path

import _setup

_setup.setup_django()

from django.conf import settings  # noqa: E402

from reconstruction.pipeline import Context, ScanFailed, run  # noqa: E402

SETS = [("middlebury_templeSparseRing", "Middlebury temple, 16 views"),
        ("skull_cameramoves_flash_half", "Skull, 66 hand-held photos")]


def main() -> int:
    root = Path(settings.FABLAB_CORPUS) / "photogrammetry"
    failures = 0
    for folder, label in SETS:
        source = root / folder
        if not source.is_dir():
            print(f"{label}: missing ({source})")
            failures += 1
            continue
        with tempfile.TemporaryDirectory(prefix="fablab-bench-") as temporary:
            photos = Path(temporary) / "photos"
            photos.mkdir()
            for image in source.iterdir():
                if image.suffix.lower() in {".jpg", ".jpeg", ".png"}:
                    shutil.copyfile(image, photos / image.name)
            started = time.perf_counter()
            try:
                report = run(Context(photos_dir=photos, work_dir=Path(temporary) / "work", known_dimension_mm=100))
            except ScanFailed as exc:
                print(f"{label}: FAILED: {exc.message}")
                failures += 1
                continue
            total = time.perf_counter() - started
        timings = ", ".join(f"{stage} {seconds:.1f}" for stage, seconds in report["stage_timings"].items())
        print(f"{label}: {report['registered_photos']}/{report['photos']} photos placed, {report['points']} points, "
              f"{report['reprojection_error_px']} px; mesh {report['mesh']['faces']} faces, watertight "
              f"{report['mesh']['watertight']}, size {' x '.join(f'{v:g}' for v in report.get('size_mm', []))} mm "
              f"(longest side entered: 100 mm); {total:.1f} s ({timings})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
