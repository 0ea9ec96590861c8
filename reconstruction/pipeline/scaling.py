"""Stage 6: true size, from the printed marker sheet or from the object's longest side.

Marker sheet: the sheet's markers are found in every placed photo, each corner is
triangulated from all photos that saw it (with the reconstruction's poses and lens
model), and the scale is the median ratio of the known distances between corners (on
the sheet's layout) to their reconstructed distances. The fitted sheet also gives the
bed plane, which the cleaning stage uses to cut the sheet away and stand the object up.
"""

import json
from dataclasses import dataclass
from itertools import combinations

import cv2
import numpy as np
import trimesh
from django.utils.translation import gettext as _

from reconstruction import markers
from reconstruction.pipeline import ScanFailed

MIN_MARKERS = 2  # markers, each triangulated from at least MIN_VIEWS photos
MIN_VIEWS = 2
MAX_REPROJECTION_PX = 2.0
MIN_ANGLE_DEG = 2.0
SHEET_FILE = "sheet.json"


def scale_method(context) -> str:
    """The method asked for; without one, the longest side when it was given."""
    method = getattr(context, "scale_method", None)
    if method:
        return str(method)
    return "dimension" if context.known_dimension_mm else "none"


# --- finding the sheet ------------------------------------------------------------------


def observe(model, photos_dir, on_photo=lambda fraction: None) -> dict[tuple[int, int], list]:
    """(marker id, corner) -> [(image id, undistorted normalised point)] over the placed photos."""
    seen: dict[tuple[int, int], list] = {}
    images = [image for image in model.images.values() if image.has_pose]
    for number, image in enumerate(images):
        on_photo(number / max(1, len(images)))
        gray = cv2.imread(str(photos_dir / image.name), cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION)
        if gray is None:
            continue
        camera = image.camera
        height, width = gray.shape
        if abs(width / height - camera.width / camera.height) > 0.01:
            continue  # not the picture the camera was calibrated on
        factor = camera.width / width
        for marker_id, corners in markers.detect(gray).items():
            # pixel centres sit at +0.5 in COLMAP's image coordinates
            normalised = camera.cam_from_img((corners + 0.5) * factor)
            for corner, point in enumerate(np.asarray(normalised).reshape(-1, 2)):
                if np.all(np.isfinite(point)):
                    seen.setdefault((marker_id, corner), []).append((image.image_id, point))
    return seen


def triangulate(observations: list, poses: dict[int, np.ndarray], focal_px: dict[int, float]) -> np.ndarray | None:
    """One point from its normalised observations (DLT), dropping the worst view while it does not fit."""
    views = list(observations)
    while len(views) >= MIN_VIEWS:
        rows = []
        for image_id, (x, y) in views:
            pose = poses[image_id]
            rows.append(x * pose[2] - pose[0])
            rows.append(y * pose[2] - pose[1])
        _u, _s, vt = np.linalg.svd(np.asarray(rows))
        homogeneous = vt[-1]
        if abs(homogeneous[3]) < 1e-12:
            return None
        point = homogeneous[:3] / homogeneous[3]
        errors, depths = [], []
        for image_id, observed in views:
            in_camera = poses[image_id] @ np.append(point, 1.0)
            depths.append(in_camera[2])
            errors.append(np.linalg.norm(in_camera[:2] / in_camera[2] - observed) * focal_px[image_id])
        worst = int(np.argmax(errors))
        if min(depths) > 0 and errors[worst] <= MAX_REPROJECTION_PX:
            centres = [-poses[image_id][:, :3].T @ poses[image_id][:, 3] for image_id, _p in views]
            rays = [(point - centre) / np.linalg.norm(point - centre) for centre in centres]
            widest = max(np.degrees(np.arccos(np.clip(a @ b, -1, 1))) for a, b in combinations(rays, 2))
            return point if widest >= MIN_ANGLE_DEG else None
        views.pop(worst)
    return None


def similarity(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """s, R, t minimising |s R source + t - target|^2 (least squares, Umeyama 1991)."""
    source, target = np.asarray(source, float), np.asarray(target, float)
    mu_s, mu_t = source.mean(axis=0), target.mean(axis=0)
    a, b = source - mu_s, target - mu_t
    u, d, vt = np.linalg.svd(b.T @ a / len(source))
    sign = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[2, 2] = -1
    rotation = u @ sign @ vt
    variance = (a**2).sum(axis=1).mean()
    scale = float(np.trace(np.diag(d) @ sign) / variance) if variance > 0 else 1.0
    return scale, rotation, mu_t - scale * rotation @ mu_s


@dataclass
class Sheet:
    factor: float  # millimetres per model unit
    spread_percent: float
    markers_used: list[int]
    corners: int
    photos: int
    rotation: np.ndarray  # sheet axes in the model: columns x, y, z (z = up, towards the cameras)
    origin: np.ndarray  # the sheet centre in the model
    fit_rms_mm: float

    def to_model(self, sheet_mm: np.ndarray) -> np.ndarray:
        return (np.asarray(sheet_mm) / self.factor) @ self.rotation.T + self.origin

    def to_sheet(self, model_points: np.ndarray) -> np.ndarray:
        return (np.asarray(model_points) - self.origin) @ self.rotation * self.factor

    def as_dict(self) -> dict:
        return {"factor": self.factor, "spread_percent": self.spread_percent, "markers_used": self.markers_used,
                "corners": self.corners, "photos": self.photos, "rotation": self.rotation.tolist(),
                "origin": self.origin.tolist(), "fit_rms_mm": self.fit_rms_mm}

    @classmethod
    def from_dict(cls, data: dict) -> "Sheet":
        return cls(**{**data, "rotation": np.asarray(data["rotation"]), "origin": np.asarray(data["origin"])})


def solve_sheet(model, photos_dir, on_photo=lambda fraction: None) -> Sheet | None:
    """The marker sheet in a reconstruction, or None when too few of its markers were seen."""
    seen = observe(model, photos_dir, on_photo)
    images = {image_id: image for image_id, image in model.images.items() if image.has_pose}
    poses = {image_id: image.cam_from_world().matrix() for image_id, image in images.items()}
    focal = {image_id: float(image.camera.mean_focal_length()) for image_id, image in images.items()}
    known, found, photos = [], [], set()
    for (marker_id, corner), observations in sorted(seen.items()):
        if len(observations) < MIN_VIEWS:
            continue
        point = triangulate(observations, poses, focal)
        if point is not None:
            known.append((marker_id, markers.LAYOUT[marker_id][corner]))
            found.append(point)
            photos.update(image_id for image_id, _p in observations)
    if len({marker_id for marker_id, _c in known}) < MIN_MARKERS:
        return None
    ids = np.array([marker_id for marker_id, _c in known])
    layout = np.array([c for _m, c in known])
    found = np.array(found)
    keep = np.ones(len(found), bool)
    for _round in range(3):  # fit, drop corners far off the sheet, fit again
        scale, rotation, shift = similarity(layout[keep], found[keep])
        residual_mm = np.linalg.norm(scale * layout @ rotation.T + shift - found, axis=1) / scale
        limit = max(1.0, 3.0 * float(np.median(residual_mm[keep])))
        if np.array_equal(residual_mm <= limit, keep):
            break
        keep = residual_mm <= limit
        if len(set(ids[keep])) < MIN_MARKERS or keep.sum() < 4:
            return None
    layout, found, ids = layout[keep], found[keep], ids[keep]
    scale, rotation, shift = similarity(layout, found)
    pairs = np.array(list(combinations(range(len(found)), 2)))
    known_mm = np.linalg.norm(layout[pairs[:, 0]] - layout[pairs[:, 1]], axis=1)
    measured = np.linalg.norm(found[pairs[:, 0]] - found[pairs[:, 1]], axis=1)
    ratios = known_mm / measured
    middle = float(np.median(ratios))
    deviation = 1.4826 * float(np.median(np.abs(ratios - middle))) or 1e-9 * middle
    ratios = ratios[np.abs(ratios - middle) <= 3 * deviation]
    factor = float(np.median(ratios))
    residual = np.linalg.norm(scale * layout @ rotation.T + shift - found, axis=1) / scale
    # the printed side faces the cameras; a fit that puts them behind the paper is a false one
    centres = np.array([image.projection_center() for image in images.values()])
    if np.mean((centres - shift) @ rotation[:, 2] > 0) < 0.5:
        return None
    return Sheet(factor=factor, spread_percent=round(100 * float(np.std(ratios)) / factor, 3),
                 markers_used=sorted({int(i) for i in ids}), corners=int(len(found)), photos=len(photos),
                 rotation=rotation, origin=shift, fit_rms_mm=round(float(np.sqrt(np.mean(residual**2))), 3))


def marker_sheet(context) -> Sheet | None:
    """The job's marker sheet, found once and kept in the work folder (None when not used or not found)."""
    if scale_method(context) != "markers":
        return None
    saved = context.work_dir / SHEET_FILE
    if saved.exists():
        data = json.loads(saved.read_text())
        return Sheet.from_dict(data) if data else None
    import pycolmap

    model = pycolmap.Reconstruction(context.work_dir / "model")
    sheet = solve_sheet(model, context.photos_dir, on_photo=lambda fraction: context.checkpoint(0.5 * fraction))
    saved.write_text(json.dumps(sheet.as_dict() if sheet else {}))
    return sheet


# --- the stage --------------------------------------------------------------------------


def run(context) -> None:
    """Scale the cleaned object: by the marker sheet, or so that the longest side of its box is the one entered.

    The cleaned mesh is the object alone (the table it stood on is already cut away) and
    turned so that its box lies along its sides, so the longest side entered is compared
    with the object's, never with the scene's or a diagonal.
    """
    mesh = trimesh.load(context.work_dir / "clean.ply", force="mesh")
    method = scale_method(context)
    sheet = marker_sheet(context) if method == "markers" else None
    if sheet is not None:
        factor = sheet.factor
        context.report["scale"] = {
            "method": "marker sheet", "factor": round(factor, 6), "markers_used": sheet.markers_used,
            "corners": sheet.corners, "photos_with_markers": sheet.photos,
            "spread_percent": sheet.spread_percent, "consistency_percent": round(max(0.0, 100 - sheet.spread_percent),
                                                                               3),
            "fit_rms_mm": sheet.fit_rms_mm,
        }
    elif method in ("markers", "dimension") and context.known_dimension_mm:
        factor = float(context.known_dimension_mm) / float(max(mesh.extents))
        context.report["scale"] = {"method": "known dimension", "longest_side_mm": float(context.known_dimension_mm),
                                   "factor": round(factor, 6)}
        if method == "markers":
            context.report["scale"]["markers"] = "not found"
    elif method == "markers":
        raise ScanFailed(_(
            "No markers of the sheet were found: print it at 100 %, keep it flat and visible in most photos "
            "(or enter the object's longest side instead)."
        ))
    else:
        factor = 1.0
        context.report["scale"] = {"method": "none: enter the longest side to get a true-size model",
                                   "factor": 1.0}
    mesh.apply_scale(factor)
    mesh.export(context.work_dir / "scaled.ply")
    context.report["size_mm"] = [round(float(v), 2) for v in mesh.extents]
