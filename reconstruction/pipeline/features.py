"""Stage 1: SIFT features of every photo (pycolmap), one camera model for the set."""

import os

# OpenMP threads (Poisson, bundle adjustment) sleep rather than spin while they wait: the
# workers share their cores. Read when pycolmap is first loaded.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pycolmap
from django.utils.translation import gettext as _

from reconstruction.pipeline import ScanFailed

MAX_IMAGE_SIZE = 1600


def run(context) -> None:
    database = context.work_dir / "database.db"
    database.unlink(missing_ok=True)
    options = pycolmap.FeatureExtractionOptions()
    options.max_image_size = MAX_IMAGE_SIZE
    options.num_threads = 2
    pycolmap.extract_features(database, context.photos_dir, extraction_options=options,
                              camera_mode=pycolmap.CameraMode.SINGLE)
    context.checkpoint(0.9)
    db = pycolmap.Database.open(database)
    try:
        counts = {image.name: db.num_keypoints_for_image(image.image_id) for image in db.read_all_images()}
    finally:
        db.close()
    context.report["photos"] = len(counts)
    context.report["features_per_photo"] = round(sum(counts.values()) / max(1, len(counts)))
    poor = sorted(name for name, count in counts.items() if count < 100)
    if len(counts) - len(poor) < 3:
        raise ScanFailed(_(
            "Almost no detail could be found in the photos. Photograph the object in even light, in focus, "
            "against a background with some texture, and fill most of each photo with the object."
        ))
    context.report["photos_without_detail"] = poor
