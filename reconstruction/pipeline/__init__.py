"""Photos in, a printable mesh out: one module per stage, run in order by `run()`.

Each stage writes its results into the job's work folder and a `<stage>.done` marker;
a retry skips the stages already done. Between and inside stages the pipeline calls
`checkpoint()`, which reports progress and raises Cancelled when cancellation was
asked for. Failures raise ScanFailed with a message that says what to do.
"""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fablab.exceptions import ApplicationError

# (stage, share of the total progress)
STAGES = [("features", 20), ("matching", 15), ("mapping", 15), ("densify", 20), ("meshing", 13), ("cleaning", 7),
          ("scaling", 3), ("exporting", 7)]


class ScanFailed(ApplicationError):
    status = 422
    title = "Scan failed"
    code = "scan-failed"


class Cancelled(Exception):
    pass


@dataclass
class Context:
    photos_dir: Path
    work_dir: Path
    known_dimension_mm: float | None = None
    scale_method: str | None = None  # ScaleMethod; None: the longest side when given, else none
    step: bool = False  # also write model.step, a CAD solid of planes and cylinders (reconstruction.cad)
    report: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    on_progress: Callable[[str, float], None] = lambda stage, percent: None
    is_cancelled: Callable[[], bool] = lambda: False
    _stage: str = ""
    _base: float = 0.0
    _share: float = 0.0

    def checkpoint(self, fraction: float = 0.0) -> None:
        """Progress within the current stage (0..1); stop here if cancelled."""
        if self.is_cancelled():
            raise Cancelled
        self.on_progress(self._stage, min(100.0, self._base + self._share * max(0.0, min(1.0, fraction))))


def run(context: Context) -> dict:
    from reconstruction.pipeline import cleaning, densify, exporting, features, mapping, matching, meshing, scaling

    modules = {"features": features, "matching": matching, "mapping": mapping, "densify": densify,
               "meshing": meshing, "cleaning": cleaning, "scaling": scaling, "exporting": exporting}
    context.work_dir.mkdir(parents=True, exist_ok=True)
    saved = context.work_dir / "report.json"
    if saved.exists():
        context.report.update(json.loads(saved.read_text()))
        context.timings.update(context.report.get("stage_timings", {}))
    done = 0.0
    for stage, share in STAGES:
        context._stage, context._base, context._share = stage, done, share
        marker = context.work_dir / f"{stage}.done"
        if not marker.exists():
            context.checkpoint(0)
            started = time.perf_counter()
            modules[stage].run(context)
            context.timings[stage] = round(time.perf_counter() - started, 2)
            context.report["stage_timings"] = context.timings
            saved.write_text(json.dumps(context.report, indent=2))
            marker.touch()
        done += share
        context.checkpoint(1)
    return context.report
