"""Stage 2: match features between photos; every pair for small sets, neighbours for large ones."""

import os

# OpenMP threads (Poisson, bundle adjustment) sleep rather than spin while they wait: the
# workers share their cores. Read when pycolmap is first loaded.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pycolmap

# Exhaustive matching places hand-held sets far better (66 of 66 skull photos against 30 with
# sequential pairs); beyond this many photos its cost grows too much and neighbours are used.
EXHAUSTIVE_UP_TO = 100


def run(context) -> None:
    database = context.work_dir / "database.db"
    if context.report.get("photos", 0) <= EXHAUSTIVE_UP_TO:
        pycolmap.match_exhaustive(database)
        context.report["matching"] = "exhaustive"
    else:
        options = pycolmap.SequentialPairingOptions()
        options.overlap = 15
        options.loop_detection = False
        pycolmap.match_sequential(database, pairing_options=options)
        context.report["matching"] = "sequential"
