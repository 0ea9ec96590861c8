"""python manage.py reconstruct PHOTO_DIR --out OUT_DIR [--known-dimension-mm X] [--step]"""

import json
import shutil
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from reconstruction.pipeline import Context, ScanFailed, run
from reconstruction.report_text import step_sentences

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def step_line(step: dict) -> str:
    return "STEP: " + " ".join(step_sentences(step))


class Command(BaseCommand):
    help = "Reconstruct a printable mesh from a folder of photos (the same pipeline as scan jobs)."

    def add_arguments(self, parser):
        parser.add_argument("photo_dir", type=Path)
        parser.add_argument("--out", type=Path, required=True, help="Folder for mesh.stl, mesh.3mf, preview.png, "
                                                                      "report.json, points.ply (and model.step).")
        parser.add_argument("--known-dimension-mm", type=float, default=None,
                            help="The object's longest side in mm; the mesh is scaled to it.")
        parser.add_argument("--step", action="store_true",
                            help="Also write model.step: a CAD solid whose flat sides are planes and whose holes "
                                 "and bosses are cylinders (a faceted solid when none fit).")

    def handle(self, *args, photo_dir: Path, out: Path, known_dimension_mm, step=False, **options):
        photos = sorted(p for p in photo_dir.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if photo_dir.is_dir() \
            else []
        if len(photos) < 8:
            raise CommandError(f"{photo_dir} holds {len(photos)} JPEG or PNG photos; a scan needs at least 8.")
        if known_dimension_mm is not None and not 0 < known_dimension_mm <= 5000:
            raise CommandError("--known-dimension-mm must be between 0 and 5000.")
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="fablab-scan-") as temporary:
            work = Path(temporary)
            (work / "photos").mkdir()
            for photo in photos:
                shutil.copyfile(photo, work / "photos" / photo.name)
            last = {"stage": ""}

            def progress(stage, percent):
                if stage != last["stage"]:
                    self.stdout.write(f"{percent:5.1f} %  {stage}")
                    last["stage"] = stage

            try:
                report = run(Context(photos_dir=work / "photos", work_dir=work / "stages",
                                     known_dimension_mm=known_dimension_mm, step=step, on_progress=progress))
            except ScanFailed as exc:
                raise CommandError(exc.message) from None
            for name in ("mesh.stl", "mesh.3mf", "preview.png", "report.json", "points.ply", "model.step"):
                if (work / "stages" / "out" / name).exists():
                    shutil.copyfile(work / "stages" / "out" / name, out / name)
        self.stdout.write(self.style.SUCCESS(
            f"{report['registered_photos']} of {report['photos']} photos placed, {report['points']} points, "
            f"mesh {report['mesh']['faces']} faces, watertight {report['mesh']['watertight']}, "
            f"size {report['size_mm']} mm -> {out}"))
        if step:
            self.stdout.write(step_line(report.get("step") or {}))
        self.stdout.write(json.dumps(report.get("stage_timings", {})))
