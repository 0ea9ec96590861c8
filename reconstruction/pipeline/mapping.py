"""Stage 3: place the cameras and triangulate points (incremental mapping)."""

import pycolmap
from django.utils.translation import gettext as _

from reconstruction.pipeline import ScanFailed

MIN_REGISTERED_SHARE = 0.5
MIN_SEPARATE_SHARE = 0.25  # unplaced photos that match only among themselves: another object
MIN_LINK_INLIERS = 15


def run(context) -> None:
    database = context.work_dir / "database.db"
    sparse = context.work_dir / "sparse"
    sparse.mkdir(exist_ok=True)
    reconstructions = pycolmap.incremental_mapping(database, context.photos_dir, sparse)
    total = context.report.get("photos", 0)
    if not reconstructions:
        raise ScanFailed(_(
            "None of the %(total)s photos could be placed relative to each other. Take the photos closer "
            "together (each overlapping the last by about two thirds) while walking around the object."
        ) % {"total": total})
    best = max(reconstructions.values(), key=lambda r: r.num_reg_images())
    registered = best.num_reg_images()
    context.report.update({
        "registered_photos": registered,
        "points": best.num_points3D(),
        "reprojection_error_px": round(best.compute_mean_reprojection_error(), 3),
        "separate_groups": len(reconstructions),
    })
    if registered < max(3, MIN_REGISTERED_SHARE * total):
        missing = sorted({img.name for img in best.images.values()} ^ _all_names(database))
        raise ScanFailed(_(
            "Only %(placed)s of %(total)s photos could be placed (not placed: %(names)s). Take more overlapping "
            "photos around the parts of the object those photos show, or check that all photos show the same "
            "object."
        ) % {"placed": registered, "total": total, "names": ", ".join(missing[:5]) or "—"})
    separate = max(_separate_groups(database, {img.name for img in best.images.values()}), key=len, default=[])
    if len(separate) >= max(3, MIN_SEPARATE_SHARE * total):
        raise ScanFailed(_(
            "The photos show two different things: %(placed)s photos fit together, while %(apart)s others "
            "(%(names)s) match only among themselves. Check that all photos show the same object, and upload the "
            "photos of each object as a scan of its own."
        ) % {"placed": registered, "apart": len(separate), "names": ", ".join(sorted(separate)[:5])})
    (context.work_dir / "model").mkdir(exist_ok=True)
    best.write(context.work_dir / "model")
    context.report["unplaced_photos"] = sorted(_all_names(database) - {img.name for img in best.images.values()})


def _all_names(database) -> set[str]:
    db = pycolmap.Database.open(database)
    try:
        return {image.name for image in db.read_all_images()}
    finally:
        db.close()


def _separate_groups(database, placed: set[str]) -> list[list[str]]:
    """Groups of unplaced photos that match each other but none of the placed photos."""
    db = pycolmap.Database.open(database)
    try:
        names = {image.image_id: image.name for image in db.read_all_images()}
        pair_ids, inliers = db.read_two_view_geometry_num_inliers()
    finally:
        db.close()
    parent = {name: name for name in names.values()}

    def root(name):
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    for pair_id, count in zip(pair_ids, inliers, strict=True):
        if count >= MIN_LINK_INLIERS:
            first, second = pycolmap.pair_id_to_image_pair(pair_id)
            parent[root(names[first])] = root(names[second])
    groups: dict[str, list[str]] = {}
    for name in names.values():
        groups.setdefault(root(name), []).append(name)
    return [group for group in groups.values() if not placed & set(group)]
