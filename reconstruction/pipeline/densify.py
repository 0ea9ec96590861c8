"""Stage 4: dense points on the object's surface, from the placed photos.

With CUDA, COLMAP's PatchMatch stereo and fusion do it. Without, every photo is paired
with the one or two neighbours that see the most of the same points from a useful
angle; each pair is rectified from the known poses (undistortion included) and matched
with OpenCV's semi-global matcher, in a disparity range bounded by the sparse points'
depths and with its left-right check. A point is kept only when a depth map of another
view agrees with it and it lies in the region of the sparse points (the background
goes). The survivors are thinned on a voxel grid and get normals turned towards the
cameras that saw them: `dense.ply`, which meshing prefers to the sparse points.
"""

import os

# OpenMP threads (Poisson, bundle adjustment) sleep rather than spin while they wait: the
# workers share their cores. Read when pycolmap is first loaded.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import copy
import logging
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
import pycolmap

logger = logging.getLogger(__name__)

NEIGHBOURS = 2  # stereo partners per photo
MIN_SHARED_POINTS = 15  # sparse points two photos must share to be paired
MIN_ANGLE, BEST_ANGLE, MAX_ANGLE = 3.0, 15.0, 45.0  # triangulation angle of a pair, degrees
MAX_LOOK_ALONG_BASELINE = 0.75  # |cos| of the angle between a camera's axis and the baseline: refuse
# pairs that move towards the object, their rectified images would be stretched beyond use
MAX_SIDE = 512  # longest side of a rectified image, px: the working resolution
MIN_DISPARITIES, MAX_DISPARITIES = 32, 256
BLOCK_SIZE = 5
PIXEL_STRIDE = 2  # every n-th pixel of a depth map becomes a point
DEPTH_TOLERANCE = 0.006  # relative depth difference at which two views agree
MIN_CONFIRMATIONS = 1  # other views that must agree with a point
VOXELS_ALONG_DIAGONAL = 320  # thinning grid, relative to the diagonal of the region
MAX_POINTS = 250_000  # more would need a deeper Poisson octree: a mesh too large to clean
CUDA_MAX_IMAGE_SIZE = 2000
THREADS = max(1, min(2, os.cpu_count() or 1))


@dataclass
class View:
    """A placed photo: its camera, world-to-camera rotation, centre and sparse points."""

    name: str
    camera: pycolmap.Camera
    rotation: np.ndarray
    centre: np.ndarray
    point_ids: np.ndarray  # indices into the sparse points


@dataclass
class Pair:
    """Two photos rectified so that their epipolar lines are the image rows.

    `rotation` takes world vectors into the rectified frame shared by both (the x axis runs
    from the reference's centre to the other's). A point X of that frame lies at pixel
    (focal * X/Z - origin_x, focal * Y/Z - origin_y) of each rectified image; the other image's
    origin sits `offset` pixels left of the reference's, so a disparity d found by the
    matcher means d + offset in full coordinates and a depth of focal * baseline / (d + offset).
    """

    reference: int
    other: int
    rotation: np.ndarray
    focal: float
    baseline: float
    origin: tuple[float, float]
    offset: float
    size: tuple[int, int]  # width, height
    num_disparities: int
    depth: np.ndarray | None = None


# --- choosing pairs ------------------------------------------------------------------------------


def triangulation_angles(points: np.ndarray, centre_a: np.ndarray, centre_b: np.ndarray) -> np.ndarray:
    """Angle in degrees at each point between the rays to two camera centres."""
    a = centre_a - points
    b = centre_b - points
    cosine = np.einsum("ij,ij->i", a, b) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)
    return np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))


def pair_score(shared: int, angle: float) -> float:
    """Many shared points and an angle near BEST_ANGLE make a good stereo pair; 0 means unusable."""
    if shared < MIN_SHARED_POINTS or not MIN_ANGLE <= angle <= MAX_ANGLE:
        return 0.0
    return shared * float(np.exp(-0.5 * ((angle - BEST_ANGLE) / 10.0) ** 2))


def sideways(view: View, other: View) -> bool:
    """Whether the baseline runs across both cameras' viewing directions rather than along them."""
    baseline = other.centre - view.centre
    length = np.linalg.norm(baseline)
    if length == 0:
        return False
    along = np.abs(np.array([view.rotation[2], other.rotation[2]]) @ (baseline / length))
    return bool(np.all(along <= MAX_LOOK_ALONG_BASELINE))


def select_neighbours(views: list[View], points: np.ndarray, count: int = NEIGHBOURS) -> dict[int, list[int]]:
    """For each view, the indices of its best `count` partners, best first."""
    chosen = {}
    for i, view in enumerate(views):
        scored = []
        for j, other in enumerate(views):
            if i == j or not sideways(view, other):
                continue
            shared = np.intersect1d(view.point_ids, other.point_ids, assume_unique=True)
            if len(shared) < MIN_SHARED_POINTS:
                continue
            angle = float(np.median(triangulation_angles(points[shared], view.centre, other.centre)))
            score = pair_score(len(shared), angle)
            if score > 0:
                scored.append((score, j))
        chosen[i] = [j for _score, j in sorted(scored, reverse=True)[:count]]
    return chosen


# --- rectification -------------------------------------------------------------------------------


def rectifying_rotation(reference: View, other: View) -> np.ndarray:
    """World-to-rectified rotation: x along the baseline, z close to the reference's viewing direction."""
    x_axis = other.centre - reference.centre
    x_axis = x_axis / np.linalg.norm(x_axis)
    viewing = reference.rotation[2] + other.rotation[2]
    y_axis = np.cross(viewing, x_axis)
    y_axis = y_axis / np.linalg.norm(y_axis)
    z_axis = np.cross(x_axis, y_axis)
    return np.stack([x_axis, y_axis, z_axis])


def plan_pair(reference_index: int, other_index: int, views: list[View], points: np.ndarray,
              inside: np.ndarray, max_side: int = MAX_SIDE) -> Pair | None:
    """Rectified frame, resolution, crop and disparity range of a pair, from the sparse points."""
    reference, other = views[reference_index], views[other_index]
    rotation = rectifying_rotation(reference, other)
    baseline = float(np.linalg.norm(other.centre - reference.centre))
    seen = np.union1d(reference.point_ids, other.point_ids)
    seen = seen[inside[seen]]
    if len(seen) < MIN_SHARED_POINTS:
        return None
    in_reference = (points[seen] - reference.centre) @ rotation.T
    in_reference = in_reference[in_reference[:, 2] > 1e-6]
    if len(in_reference) < MIN_SHARED_POINTS:
        return None
    x1 = in_reference[:, 0] / in_reference[:, 2]
    x2 = (in_reference[:, 0] - baseline) / in_reference[:, 2]
    y = in_reference[:, 1] / in_reference[:, 2]
    depth_low, depth_high = np.percentile(in_reference[:, 2], [1, 99])
    spread = depth_high - depth_low
    depth_low, depth_high = max(depth_low - 0.25 * spread, 1e-6), depth_high + 0.25 * spread
    (x_low, x_high), (y_low, y_high) = np.percentile(x1, [1, 99]), np.percentile(np.r_[y, y], [1, 99])
    x2_low, x2_high = np.percentile(x2, [1, 99])
    pad_x, pad_y = 0.1 * (x_high - x_low), 0.1 * (y_high - y_low)
    x_low, x_high = min(x_low, x2_low) - pad_x, max(x_high, x2_high) + pad_x
    y_low, y_high = y_low - pad_y, y_high + pad_y
    # Disparity (in units of the focal length) of the nearest and farthest expected surface.
    disparity_low, disparity_high = baseline / depth_high, baseline / depth_low
    native = float(min(reference.camera.mean_focal_length(), other.camera.mean_focal_length()))
    width_units = (x_high - x_low) + (disparity_high - disparity_low)
    focal = min(native, max_side / max(width_units, y_high - y_low))
    num_disparities = int(np.ceil((disparity_high - disparity_low) * focal / 16.0)) * 16
    if num_disparities > MAX_DISPARITIES:  # a very deep scene: lower the resolution to keep the range
        focal *= MAX_DISPARITIES / num_disparities
        num_disparities = MAX_DISPARITIES
    num_disparities = max(MIN_DISPARITIES, num_disparities)
    offset = disparity_low * focal
    # The matcher cannot match the first num_disparities columns: start the crop that much earlier.
    origin_x = x_low * focal - num_disparities
    origin_y = y_low * focal
    width = int(np.ceil(x_high * focal - origin_x)) + 1
    height = int(np.ceil((y_high - y_low) * focal)) + 1
    return Pair(reference=reference_index, other=other_index, rotation=rotation, focal=focal, baseline=baseline,
                origin=(origin_x, origin_y), offset=offset, size=(width, height), num_disparities=num_disparities)


def rectification_maps(view: View, pair: Pair, origin_x: float, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap maps from a rectified image into the photo (downscaled by `scale`), any camera model."""
    width, height = pair.size
    u, v = np.meshgrid(np.arange(width, dtype=np.float64) + origin_x, np.arange(height, dtype=np.float64)
                       + pair.origin[1])
    rays = np.stack([u.ravel() / pair.focal, v.ravel() / pair.focal, np.ones(u.size)], axis=1)
    in_camera = rays @ (view.rotation @ pair.rotation.T).T
    pixels = view.camera.img_from_cam(in_camera, check_cheirality=False)
    pixels = pixels * scale - 0.5  # COLMAP puts pixel centres at +0.5, OpenCV at integers
    behind = in_camera[:, 2] <= 0
    pixels[behind] = -1e6
    maps = pixels.reshape(height, width, 2).astype(np.float32)
    return maps[..., 0], maps[..., 1]


# --- matching ------------------------------------------------------------------------------------


def disparity_map(left: np.ndarray, right: np.ndarray, num_disparities: int,
                  block_size: int = BLOCK_SIZE) -> np.ndarray:
    """Semi-global matching with its left-right check; float disparities, NaN where none was found."""
    matcher = cv2.StereoSGBM_create(
        minDisparity=0, numDisparities=num_disparities, blockSize=block_size,
        P1=8 * block_size * block_size, P2=32 * block_size * block_size, disp12MaxDiff=1, preFilterCap=31,
        uniquenessRatio=10, speckleWindowSize=60, speckleRange=1, mode=cv2.STEREO_SGBM_MODE_SGBM_3WAY)
    raw = matcher.compute(left, right)
    disparity = raw.astype(np.float32) / 16.0
    disparity[raw < 0] = np.nan
    disparity[:, :num_disparities] = np.nan
    return disparity


def depth_from_disparity(pair: Pair, disparity: np.ndarray) -> np.ndarray:
    full = disparity + pair.offset
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = pair.focal * pair.baseline / full
    depth[~(full > 0.5)] = np.nan
    return depth.astype(np.float32)


def points_from_depth(pair: Pair, centre: np.ndarray, stride: int = 1) -> np.ndarray:
    """World points of a pair's depth map (every `stride`-th pixel), one row per valid pixel."""
    depth = pair.depth[::stride, ::stride]
    rows, columns = np.nonzero(np.isfinite(depth))
    z = depth[rows, columns].astype(np.float64)
    x = (columns * stride + pair.origin[0]) * z / pair.focal
    y = (rows * stride + pair.origin[1]) * z / pair.focal
    return np.stack([x, y, z], axis=1) @ pair.rotation + centre


def confirmations(points: np.ndarray, others: list[tuple[Pair, np.ndarray]],
                  tolerance: float = DEPTH_TOLERANCE) -> np.ndarray:
    """How many of the other depth maps (pair, centre of its reference) agree with each point."""
    votes = np.zeros(len(points), dtype=np.int32)
    for pair, centre in others:
        local = (points - centre) @ pair.rotation.T
        z = local[:, 2]
        ahead = z > 1e-9
        safe = np.where(ahead, z, 1.0)
        columns = np.rint(pair.focal * local[:, 0] / safe - pair.origin[0]).astype(np.int64)
        rows = np.rint(pair.focal * local[:, 1] / safe - pair.origin[1]).astype(np.int64)
        height, width = pair.depth.shape
        valid = ahead & (columns >= 0) & (columns < width) & (rows >= 0) & (rows < height)
        measured = np.full(len(points), np.nan, dtype=np.float64)
        measured[valid] = pair.depth[rows[valid], columns[valid]]
        with np.errstate(invalid="ignore"):
            votes += (np.abs(measured - z) <= tolerance * z).astype(np.int32)
    return votes


def voxel_thin(points: np.ndarray, towards: np.ndarray, voxel: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the points (and of their viewing directions) in each occupied voxel."""
    cells = np.floor((points - points.min(axis=0)) / voxel).astype(np.int64)
    extent = cells.max(axis=0) + 1
    keys = (cells[:, 0] * extent[1] + cells[:, 1]) * extent[2] + cells[:, 2]
    _unique, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    thinned = np.stack([np.bincount(inverse, weights=points[:, k]) for k in range(3)], axis=1) / counts[:, None]
    directions = np.stack([np.bincount(inverse, weights=towards[:, k]) for k in range(3)], axis=1)
    return thinned, directions


def sparse_region(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Box around the bulk of the sparse points, a little larger: the dense points must lie inside."""
    low, high = np.percentile(points, [1, 99], axis=0)
    pad = 0.08 * (high - low)
    return low - pad, high + pad


# --- the stage -----------------------------------------------------------------------------------


def load_views(model: pycolmap.Reconstruction) -> tuple[list[View], np.ndarray]:
    ids = sorted(model.points3D.keys())
    index = {point_id: k for k, point_id in enumerate(ids)}
    points = np.array([model.points3D[point_id].xyz for point_id in ids], dtype=np.float64).reshape(-1, 3)
    views = []
    for image in sorted(model.images.values(), key=lambda image: image.name):
        if not image.has_pose:
            continue
        pose = image.cam_from_world()
        seen = sorted({index[p.point3D_id] for p in image.points2D if p.has_point3D()})
        # copies: the reconstruction's own objects die with it
        views.append(View(name=image.name, camera=copy.copy(image.camera), rotation=np.asarray(pose.rotation.matrix()),
                          centre=np.asarray(image.projection_center()), point_ids=np.asarray(seen, dtype=np.int64)))
    return views, points


def _photo(path, scale: float) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise OSError(f"cannot read {path}")
    if scale < 0.95:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return image


def match_pair(pair: Pair, views: list[View], photos: dict[int, tuple[np.ndarray, float]]) -> Pair:
    reference, other = views[pair.reference], views[pair.other]
    (left_photo, left_scale), (right_photo, right_scale) = photos[pair.reference], photos[pair.other]
    left_maps = rectification_maps(reference, pair, pair.origin[0], left_scale)
    right_maps = rectification_maps(other, pair, pair.origin[0] - pair.offset, right_scale)
    left = cv2.remap(left_photo, *left_maps, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    right = cv2.remap(right_photo, *right_maps, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    covered = cv2.remap(np.full(left_photo.shape, 255, np.uint8), *left_maps, cv2.INTER_NEAREST,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    covered = cv2.erode(covered, np.ones((BLOCK_SIZE, BLOCK_SIZE), np.uint8)) > 0
    disparity = disparity_map(left, right, pair.num_disparities)
    disparity[~covered] = np.nan
    pair.depth = depth_from_disparity(pair, disparity)
    return pair


def densify_cpu(views: list[View], points: np.ndarray, photos_dir, checkpoint=lambda fraction: None,
                threads: int = THREADS) -> tuple[np.ndarray, np.ndarray, dict]:
    """Dense points and the point each one was seen from, with figures for the report."""
    low, high = sparse_region(points)
    inside = np.all((points >= low) & (points <= high), axis=1)
    neighbours = select_neighbours(views, points)
    pairs = [plan for i, partners in neighbours.items() for j in partners
             if (plan := plan_pair(i, j, views, points, inside)) is not None]
    stats = {"pairs": len(pairs)}
    if not pairs:
        return np.empty((0, 3)), np.empty((0, 3)), stats
    # Each photo is read once, at the resolution its sharpest pair needs.
    scales = {}
    for pair in pairs:
        for index in (pair.reference, pair.other):
            native = views[index].camera.mean_focal_length()
            scales[index] = min(1.0, max(scales.get(index, 0.0), pair.focal / native))
    photos = {}
    for index, scale in scales.items():
        image = _photo(photos_dir / views[index].name, scale)
        photos[index] = (image, image.shape[1] / views[index].camera.width)
    previous_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    pool = ThreadPoolExecutor(max_workers=threads)
    try:
        futures = [pool.submit(match_pair, pair, views, photos) for pair in pairs]
        finished = []
        for done, future in enumerate(futures):
            finished.append(future.result())
            checkpoint(0.7 * (done + 1) / len(pairs))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # a cancelled scan stops after the pairs under way
        cv2.setNumThreads(previous_threads)
    photos.clear()
    by_reference: dict[int, list[Pair]] = {}
    for pair in finished:
        by_reference.setdefault(pair.reference, []).append(pair)
    kept_points, kept_towards, raw = [], [], 0
    for number, pair in enumerate(finished):
        reference = views[pair.reference]
        candidates = points_from_depth(pair, reference.centre, PIXEL_STRIDE)
        raw += len(candidates)
        candidates = candidates[np.all((candidates >= low) & (candidates <= high), axis=1)]
        nearby = {pair.reference, pair.other, *neighbours[pair.reference], *neighbours.get(pair.other, [])}
        others = [(q, views[q.reference].centre) for k in nearby for q in by_reference.get(k, [])
                  if {q.reference, q.other} != {pair.reference, pair.other}]
        if not others or not len(candidates):
            continue
        agreed = confirmations(candidates, others) >= MIN_CONFIRMATIONS
        candidates = candidates[agreed]
        rays = reference.centre - candidates
        kept_points.append(candidates)
        kept_towards.append(rays / np.linalg.norm(rays, axis=1, keepdims=True))
        checkpoint(0.7 + 0.2 * (number + 1) / len(finished))
    stats["raw_points"] = int(raw)
    if not kept_points:
        return np.empty((0, 3)), np.empty((0, 3)), stats
    dense, towards = np.vstack(kept_points), np.vstack(kept_towards)
    stats["confirmed_points"] = int(len(dense))
    voxel = float(np.linalg.norm(high - low)) / VOXELS_ALONG_DIAGONAL
    dense, directions = voxel_thin(dense, towards, voxel)
    while len(dense) > MAX_POINTS:
        voxel *= 1.25
        dense, directions = voxel_thin(dense, directions, voxel)
    directions /= np.linalg.norm(directions, axis=1, keepdims=True) + 1e-12
    stats["voxel"] = voxel
    return dense, dense + directions, stats


def densify_cuda(context, model_dir, region: tuple[np.ndarray, np.ndarray]) -> int:
    """COLMAP's dense reconstruction: undistortion, PatchMatch stereo, fusion into dense.ply."""
    workspace = context.work_dir / "mvs"
    shutil.rmtree(workspace, ignore_errors=True)
    undistort = pycolmap.UndistortCameraOptions()
    undistort.max_image_size = CUDA_MAX_IMAGE_SIZE
    pycolmap.undistort_images(workspace, model_dir, context.photos_dir, output_type="COLMAP",
                              undistort_options=undistort)
    context.checkpoint(0.1)
    options = pycolmap.PatchMatchOptions()
    options.max_image_size = CUDA_MAX_IMAGE_SIZE
    options.geom_consistency = True
    pycolmap.patch_match_stereo(workspace, workspace_format="COLMAP", options=options)
    context.checkpoint(0.8)
    fusion = pycolmap.StereoFusionOptions()
    fusion.bounding_box = (region[0].astype(np.float32), region[1].astype(np.float32))
    fused = pycolmap.stereo_fusion(context.work_dir / "dense.ply", workspace, workspace_format="COLMAP",
                                   input_type="geometric", options=fusion, output_type="PLY")
    shutil.rmtree(workspace, ignore_errors=True)
    return fused.num_points3D()


def run(context) -> None:
    from reconstruction.pipeline.meshing import oriented_normals, write_ply

    started = time.perf_counter()
    dense_path = context.work_dir / "dense.ply"
    dense_path.unlink(missing_ok=True)
    model_dir = context.work_dir / "model"
    model = pycolmap.Reconstruction(model_dir)
    views, points = load_views(model)
    report = {"method": "patch match (CUDA)" if pycolmap.has_cuda else "semi-global matching (CPU)"}
    if len(points) < 50 or len(views) < 2:
        report["points"] = 0
    elif pycolmap.has_cuda:
        report["points"] = densify_cuda(context, model_dir, sparse_region(points))
    else:
        dense, towards, stats = densify_cpu(views, points, context.photos_dir, context.checkpoint)
        report.update(stats)
        report["points"] = int(len(dense))
        if len(dense) >= 50:
            context.checkpoint(0.92)
            write_ply(dense_path, dense, oriented_normals(dense, towards))
    if report["points"] < 1000:
        dense_path.unlink(missing_ok=True)  # too little to beat the sparse points
    report["seconds"] = round(time.perf_counter() - started, 2)
    context.report["densify"] = report
