"""How close a reconstruction of a rendered photo set came to the truth.

The pipeline works in a frame and scale of its own; the reconstructed camera centres
(work_dir/model) are mapped onto the true ones by a similarity transform (Umeyama), and
the same transform carries the result into the true frame. The cleaned mesh
(work_dir/clean.ply) was moved to stand on the bed, so it is first registered back onto
the surface it came from (work_dir/poisson.ply, in the model frame). Then:

- registration rate: share of the photos the pipeline placed;
- camera error: position (% of the true bounding-box diagonal) and rotation (degrees);
- accuracy: mean distance from points on the result to the true surface, % of the diagonal;
- completeness: share of the true surface closer than 1 % of the diagonal to the result;
- watertight: whether the printed mesh is closed;
- scale error: how far the size the pipeline gave the result (its scale factor, from the
  longest side entered or the marker sheet) is from the true one (the cameras' alignment).

Alignment uses the cameras only unless `refine=True`, which adds a rigid ICP of the
mesh onto the true surface (an optimistic figure: it hides a part of the camera error).
"""

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import trimesh
from scipy.spatial import cKDTree

from reconstruction.pipeline.scaling import similarity
from reconstruction.synthetic import Truth

COMPLETENESS_THRESHOLD = 0.01  # of the diagonal
SAMPLE_SPACING = 0.002  # of the diagonal, for the dense reference samples of a surface
QUERY_POINTS = 50_000


@dataclass
class Evaluation:
    photos: int
    registered: int
    registration_rate: float
    camera_position_error_percent: float  # mean, % of the diagonal
    camera_position_error_max_percent: float
    camera_rotation_error_deg: float  # mean
    camera_rotation_error_max_deg: float
    focal_error_percent: float | None
    accuracy_percent: float | None  # mean distance result -> truth, % of the diagonal
    accuracy_median_percent: float | None
    completeness: float | None  # share of the truth within COMPLETENESS_THRESHOLD of the result
    watertight: bool | None
    mesh_used: str | None
    refined: bool = False
    scale_error_percent: float | None = None  # the pipeline's scale factor against the cameras' true one

    def as_dict(self) -> dict:
        return asdict(self)


def matrix(scale: float, rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = scale * rotation
    out[:3, 3] = translation
    return out


def _rigid_icp(moving: np.ndarray, tree: cKDTree, target: np.ndarray, initial: np.ndarray, *, iterations: int,
               trim: float = 0.9) -> tuple[np.ndarray, float]:
    """Point-to-point ICP of `moving` onto the points of `tree`; returns (4x4, median residual)."""
    transform = initial.copy()
    residual = np.inf
    for _round in range(iterations):
        placed = moving @ transform[:3, :3].T + transform[:3, 3]
        distances, nearest = tree.query(placed, workers=2)
        keep = distances <= np.quantile(distances, trim)
        _s, rotation, translation = similarity(placed[keep], target[nearest[keep]])
        # rigid: Umeyama's scale is ignored, the rotation and shift are refitted without it
        mu_p, mu_t = placed[keep].mean(axis=0), target[nearest[keep]].mean(axis=0)
        step = np.eye(4)
        step[:3, :3] = rotation
        step[:3, 3] = mu_t - rotation @ mu_p
        transform = step @ transform
        residual = float(np.median(distances))
        if np.allclose(step, np.eye(4), atol=1e-7):
            break
    return transform, residual


def _cube_rotations() -> list[np.ndarray]:
    rotations = []
    for perm in ([0, 1, 2], [1, 2, 0], [2, 0, 1], [1, 0, 2], [0, 2, 1], [2, 1, 0]):
        for signs in np.array(np.meshgrid([1, -1], [1, -1], [1, -1])).T.reshape(-1, 3):
            rotation = np.eye(3)[perm] * signs[:, None]
            if np.linalg.det(rotation) > 0:
                rotations.append(rotation)
    return rotations


def register_rigid(moving: trimesh.Trimesh, fixed: trimesh.Trimesh, *, seed: int = 0) -> np.ndarray:
    """The rigid transform that puts `moving` onto `fixed` when one is a moved copy of (most of) the other.

    Tries the 24 axis-aligned orientations between their principal frames, keeps the one
    whose ICP fits best.
    """
    rng = np.random.default_rng(seed)
    a = np.asarray(moving.vertices)
    b = np.asarray(fixed.vertices)

    def subset(points, count):
        return points[rng.choice(len(points), count, replace=False)] if len(points) > count else points

    def frame(points):
        centre = points.mean(axis=0)
        _u, _s, vt = np.linalg.svd(points - centre, full_matrices=False)
        if np.linalg.det(vt) < 0:
            vt[2] *= -1
        return centre, vt

    b_coarse = subset(b, 50_000)
    coarse_tree = cKDTree(b_coarse)
    a_coarse = subset(a, 1000)
    centre_a, axes_a = frame(subset(a, 50_000))
    centre_b, axes_b = frame(b_coarse)
    best, best_residual = np.eye(4), np.inf
    for flip in _cube_rotations():
        rotation = axes_b.T @ flip @ axes_a
        initial = np.eye(4)
        initial[:3, :3] = rotation
        initial[:3, 3] = centre_b - rotation @ centre_a
        transform, residual = _rigid_icp(a_coarse, coarse_tree, b_coarse, initial, iterations=6)
        if residual < best_residual:
            best, best_residual = transform, residual
    best, _residual = _rigid_icp(subset(a, 20_000), cKDTree(b), b, best, iterations=30, trim=0.95)
    return best


class Surface:
    """Distances to a surface through dense samples of it (point-to-plane near, point-to-point far)."""

    def __init__(self, mesh: trimesh.Trimesh, spacing: float, *, seed: int = 0, max_points: int = 3_000_000):
        count = int(min(max_points, max(10_000, mesh.area / spacing**2)))
        self.points, faces = trimesh.sample.sample_surface(mesh, count, seed=seed)
        self.normals = mesh.face_normals[faces]
        self.spacing = float(np.sqrt(mesh.area / count))
        self.tree = cKDTree(self.points)

    def distance(self, points: np.ndarray) -> np.ndarray:
        euclidean, nearest = self.tree.query(points, workers=2)
        along_normal = np.abs(np.einsum("ij,ij->i", points - self.points[nearest], self.normals[nearest]))
        # random samples leave gaps of up to about twice their mean spacing
        return np.minimum(euclidean, np.maximum(along_normal, euclidean - 2.5 * self.spacing))


def _model_cameras(model_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
    """name -> (centre, world->camera rotation, focal length in pixels) of every placed photo."""
    import pycolmap

    model = pycolmap.Reconstruction(model_dir)
    cameras = {}
    for image in model.images.values():
        if not image.has_pose:
            continue
        pose = image.cam_from_world()
        cameras[image.name] = (np.asarray(image.projection_center(), float), np.asarray(pose.rotation.matrix()),
                               float(image.camera.mean_focal_length()))
    return cameras


def _report(work_dir: Path) -> dict:
    import json

    path = work_dir / "report.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _result_mesh(work_dir: Path) -> tuple[trimesh.Trimesh | None, str | None]:
    """The cleaned result in the model frame (moved back from the bed), or the raw surface."""
    raw_path, clean_path = work_dir / "poisson.ply", work_dir / "clean.ply"
    placed = _report(work_dir).get("clean_from_model")
    if clean_path.exists() and placed is not None:  # the cleaning stage said how it moved the result
        clean = trimesh.load(clean_path, force="mesh")
        clean.apply_transform(np.linalg.inv(np.asarray(placed)))
        return clean, "clean.ply"
    raw = trimesh.load(raw_path, force="mesh") if raw_path.exists() else None
    if clean_path.exists():
        clean = trimesh.load(clean_path, force="mesh")
        if raw is None or not len(raw.faces):
            return clean, None
        clean.apply_transform(register_rigid(clean, raw))
        return clean, "clean.ply"
    if raw is not None and len(raw.faces):
        return raw, "poisson.ply"
    return None, None


def evaluate(work_dir, truth: Truth, *, refine: bool = False, seed: int = 0) -> Evaluation:
    """Compare the pipeline's results in `work_dir` with `truth`."""
    work_dir = Path(work_dir)
    true_mesh = truth.mesh()
    diagonal = float(np.linalg.norm(true_mesh.extents))
    photos = len(truth.poses)
    cameras = _model_cameras(work_dir / "model") if (work_dir / "model").is_dir() else {}
    names = sorted(name for name in cameras if name in truth.poses)
    if len(names) < 3:
        return Evaluation(photos=photos, registered=len(names), registration_rate=len(names) / max(1, photos),
                          camera_position_error_percent=float("nan"), camera_position_error_max_percent=float("nan"),
                          camera_rotation_error_deg=float("nan"), camera_rotation_error_max_deg=float("nan"),
                          focal_error_percent=None, accuracy_percent=None, accuracy_median_percent=None,
                          completeness=None, watertight=None, mesh_used=None)
    true_centres = truth.centres()
    estimated = np.array([cameras[name][0] for name in names])
    expected = np.array([true_centres[name] for name in names])
    scale, rotation, translation = similarity(estimated, expected)
    to_truth = matrix(scale, rotation, translation)
    position_errors = np.linalg.norm(estimated * scale @ rotation.T + translation - expected, axis=1) / diagonal * 100
    angle_errors = []
    for name in names:
        # world->camera in the true frame: R_est R_align^T, against the true R
        aligned = cameras[name][1] @ rotation.T
        cosine = (np.trace(truth.poses[name][0].T @ aligned) - 1) / 2
        angle_errors.append(np.degrees(np.arccos(np.clip(cosine, -1, 1))))
    focal = np.median([cameras[name][2] for name in names])
    mesh, used = _result_mesh(work_dir)
    factor = _report(work_dir).get("scale", {}).get("factor")
    evaluation = Evaluation(
        photos=photos, registered=len(names), registration_rate=len(names) / photos,
        camera_position_error_percent=float(np.mean(position_errors)),
        camera_position_error_max_percent=float(np.max(position_errors)),
        camera_rotation_error_deg=float(np.mean(angle_errors)),
        camera_rotation_error_max_deg=float(np.max(angle_errors)),
        focal_error_percent=float(abs(focal - truth.fx) / truth.fx * 100),
        accuracy_percent=None, accuracy_median_percent=None, completeness=None, watertight=None, mesh_used=used,
        refined=refine, scale_error_percent=float((factor / scale - 1) * 100) if factor else None)
    if mesh is None:
        return evaluation
    evaluation.watertight = bool(mesh.is_watertight)
    mesh = mesh.copy()
    mesh.apply_transform(to_truth)
    true_surface = Surface(true_mesh, SAMPLE_SPACING * diagonal, seed=seed)
    result_points, _faces = trimesh.sample.sample_surface(mesh, QUERY_POINTS, seed=seed + 1)
    if refine:
        rng = np.random.default_rng(seed)
        subset = result_points[rng.choice(len(result_points), min(len(result_points), 20000), replace=False)]
        step, _residual = _rigid_icp(subset, true_surface.tree, true_surface.points, np.eye(4), iterations=30)
        mesh.apply_transform(step)
        result_points = result_points @ step[:3, :3].T + step[:3, 3]
    to_truth_distances = true_surface.distance(result_points) / diagonal * 100
    result_surface = Surface(mesh, SAMPLE_SPACING * diagonal, seed=seed + 2)
    truth_points, _faces = trimesh.sample.sample_surface(true_mesh, QUERY_POINTS, seed=seed + 3)
    to_result = result_surface.distance(truth_points) / diagonal
    evaluation.accuracy_percent = float(np.mean(to_truth_distances))
    evaluation.accuracy_median_percent = float(np.median(to_truth_distances))
    evaluation.completeness = float(np.mean(to_result < COMPLETENESS_THRESHOLD))
    return evaluation
