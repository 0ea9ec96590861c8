"""Densification on synthetic scenes with known cameras: pairs, rectification, matching, filtering."""

import cv2
import numpy as np
import pycolmap
import pytest

from reconstruction.pipeline import densify, meshing

SIZE = (320, 240)
FOCAL = 300.0


def look_at(centre, target=(0.0, 0.0, 0.0), up=(0.0, -1.0, 0.0)) -> np.ndarray:
    """World-to-camera rotation of a camera at `centre` looking at `target` (x right, y down)."""
    forward = np.asarray(target, float) - centre
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    return np.stack([right, np.cross(forward, right), forward])


def camera(model: str = "PINHOLE", k: float = 0.0) -> pycolmap.Camera:
    """A COLMAP camera of SIZE; SIMPLE_RADIAL with radial distortion k."""
    width, height = SIZE
    made = pycolmap.Camera.create_from_model_name(1, model, FOCAL, width, height)
    if model == "SIMPLE_RADIAL":
        made.params = [FOCAL, width / 2, height / 2, k]
    return made


# A plane tilted away from the cameras, painted with band-limited noise fixed to the plane.
PLANE_POINT = np.array([0.0, 0.0, 0.0])
PLANE_NORMAL = np.array([0.35, 0.0, -1.0]) / np.linalg.norm([0.35, 0.0, -1.0])
AXIS_U = np.cross(PLANE_NORMAL, [0.0, 1.0, 0.0])
AXIS_U /= np.linalg.norm(AXIS_U)
AXIS_V = np.cross(PLANE_NORMAL, AXIS_U)
TEXTURE_EXTENT = 4.0  # the texture covers [-2, 2]^2 in plane coordinates
_rng = np.random.default_rng(7)
TEXTURE = cv2.GaussianBlur(_rng.uniform(0, 255, (800, 800)).astype(np.float32), (0, 0), 1.2)
TEXTURE = cv2.normalize(TEXTURE, None, 0, 255, cv2.NORM_MINMAX)


def render_plane(view: densify.View) -> np.ndarray:
    """What a camera sees of the textured plane (any COLMAP camera model, distortion included)."""
    width, height = SIZE
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    rays_camera = view.camera.cam_from_img(np.stack([u.ravel(), v.ravel()], axis=1))
    rays = np.hstack([rays_camera, np.ones((len(rays_camera), 1))]) @ view.rotation  # into the world
    along = ((PLANE_POINT - view.centre) @ PLANE_NORMAL) / (rays @ PLANE_NORMAL)
    hits = view.centre + rays * along[:, None]
    scale = TEXTURE.shape[0] / TEXTURE_EXTENT
    map_x = ((hits - PLANE_POINT) @ AXIS_U + TEXTURE_EXTENT / 2) * scale
    map_y = ((hits - PLANE_POINT) @ AXIS_V + TEXTURE_EXTENT / 2) * scale
    image = cv2.remap(TEXTURE, map_x.reshape(height, width).astype(np.float32),
                      map_y.reshape(height, width).astype(np.float32), cv2.INTER_LINEAR)
    return np.clip(image, 0, 255).astype(np.uint8)


def two_views(model: str = "PINHOLE", k: float = 0.0):
    """Two cameras 5 units from the plane, 0.9 apart and both aimed at its centre (about 10 degrees)."""
    centres = [np.array([-0.45, 0.05, -5.0]), np.array([0.45, -0.05, -5.0])]
    rng = np.random.default_rng(1)
    grid = rng.uniform(-1.0, 1.0, (300, 2))
    points = PLANE_POINT + grid[:, :1] * AXIS_U + grid[:, 1:] * AXIS_V
    views = [densify.View(name=f"{n}.png", camera=camera(model, k), rotation=look_at(centre), centre=centre,
                          point_ids=np.arange(len(points))) for n, centre in enumerate(centres)]
    return views, points


@pytest.mark.parametrize("model, k", [("PINHOLE", 0.0), ("SIMPLE_RADIAL", -0.08)])
def test_a_rectified_pair_recovers_the_true_depth(model, k):
    views, points = two_views(model, k)
    photos = {n: (render_plane(view), 1.0) for n, view in enumerate(views)}
    pair = densify.plan_pair(0, 1, views, points, np.ones(len(points), bool))
    assert pair is not None and pair.num_disparities % 16 == 0
    densify.match_pair(pair, views, photos)
    dense = densify.points_from_depth(pair, views[0].centre)
    signed = (dense - PLANE_POINT) @ PLANE_NORMAL
    # the plane's part seen by both cameras is well covered, and the points lie on it without bias
    assert len(dense) > 0.5 * SIZE[0] * SIZE[1] * 0.5
    assert abs(np.mean(signed)) < 0.001 * 5.0
    assert np.median(np.abs(signed)) < 0.003 * 5.0
    assert np.mean(np.abs(signed) < 0.01 * 5.0) > 0.97


def test_rectification_makes_matching_points_share_a_row():
    views, points = two_views("SIMPLE_RADIAL", -0.08)
    pair = densify.plan_pair(0, 1, views, points, np.ones(len(points), bool))
    local = (points - views[0].centre) @ pair.rotation.T
    row_left = pair.focal * local[:, 1] / local[:, 2]
    right = (points - views[1].centre) @ pair.rotation.T
    row_right = pair.focal * right[:, 1] / right[:, 2]
    assert np.allclose(row_left, row_right, atol=1e-6)
    # the disparities of the sparse points fall inside the matcher's range
    disparity = pair.focal * pair.baseline / local[:, 2] - pair.offset
    assert disparity.min() > 0 and disparity.max() < pair.num_disparities


def test_the_depth_check_drops_points_no_other_view_confirms():
    views, points = two_views()
    photos = {n: (render_plane(view), 1.0) for n, view in enumerate(views)}
    forward = densify.match_pair(densify.plan_pair(0, 1, views, points, np.ones(len(points), bool)), views, photos)
    backward = densify.match_pair(densify.plan_pair(1, 0, views, points, np.ones(len(points), bool)), views, photos)
    central = np.abs(points @ AXIS_U) + np.abs(points @ AXIS_V) < 0.8
    on_plane = points[central][:50]
    off_plane = on_plane - 0.3 * PLANE_NORMAL  # 0.3 units in front of the surface: an outlier
    votes = densify.confirmations(np.vstack([on_plane, off_plane]), [(backward, views[1].centre)])
    assert len(on_plane) == 50
    assert np.mean(votes[:50] == 1) >= 0.9 and np.all(votes[50:] == 0)
    far_away = np.array([[40.0, 40.0, 5.0]])  # outside every depth map: no vote
    assert densify.confirmations(far_away, [(forward, views[0].centre)]).tolist() == [0]


def test_neighbours_are_close_views_with_a_useful_angle():
    # 12 cameras on a ring around a sphere of points, plus one almost on top of camera 0
    angles = np.radians(np.arange(0, 360, 30))
    centres = [np.array([4 * np.cos(a), 4 * np.sin(a), 0.5]) for a in angles]
    centres.append(centres[0] + [0.0, 0.02, 0.0])
    rng = np.random.default_rng(0)
    points = rng.normal(size=(3000, 3))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    views = []
    for n, centre in enumerate(centres):
        facing = np.einsum("ij,ij->i", points, centre - points) > 0.3
        views.append(densify.View(name=str(n), camera=camera(), rotation=look_at(centre, up=(0, 0, -1)),
                                  centre=centre, point_ids=np.nonzero(facing)[0]))
    chosen = densify.select_neighbours(views, points, count=2)
    assert set(chosen[3]) == {2, 4}  # 30 degrees either side
    assert 12 not in chosen[0] and 0 not in chosen[12]  # the twin sees the same, from no angle
    assert all(len(partners) == 2 for partners in chosen.values())
    assert all(6 not in chosen[n] for n in (0, 12))  # the opposite side shares nothing


def test_pair_score_refuses_tiny_angles_and_few_points():
    assert densify.pair_score(500, 1.0) == 0
    assert densify.pair_score(5, 15.0) == 0
    assert densify.pair_score(500, 60.0) == 0
    assert densify.pair_score(500, densify.BEST_ANGLE) > densify.pair_score(500, 35.0) > 0


def test_region_ignores_stray_points_and_voxels_average():
    rng = np.random.default_rng(3)
    points = np.vstack([rng.uniform(0, 1, (2000, 3)), [[100.0, 100.0, 100.0]] * 5])
    low, high = densify.sparse_region(points)
    assert np.all(high < 1.5) and np.all(low > -0.5)
    cloud = np.array([[0.01, 0.01, 0.01], [0.03, 0.03, 0.03], [0.51, 0.01, 0.01]])
    towards = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    thinned, directions = densify.voxel_thin(cloud, towards, voxel=0.1)
    order = np.argsort(thinned[:, 0])
    assert np.allclose(thinned[order], [[0.02, 0.02, 0.02], [0.51, 0.01, 0.01]])
    assert np.allclose(directions[order], [[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])


def test_poisson_depth_grows_with_the_points():
    depths = [meshing.poisson_depth(count) for count in (1_000, 100_000, 300_000, 5_000_000)]
    assert depths == sorted(depths) and depths[0] >= 8 and depths[-1] <= meshing.POISSON_MAX_DEPTH


def test_dense_points_are_written_with_normals(tmp_path):
    points = np.random.default_rng(0).normal(size=(200, 3))
    normals = points / np.linalg.norm(points, axis=1, keepdims=True)
    meshing.write_ply(tmp_path / "dense.ply", points, normals)
    data = (tmp_path / "dense.ply").read_bytes()
    header, body = data.split(b"end_header\n", 1)
    assert b"element vertex 200" in header and b"property float nx" in header
    assert np.allclose(np.frombuffer(body, "<f4").reshape(200, 6), np.hstack([points, normals]), atol=1e-6)


def test_a_camera_moving_towards_the_object_is_no_stereo_partner():
    here = densify.View(name="a", camera=camera(), rotation=np.eye(3), centre=np.zeros(3), point_ids=np.arange(3))
    closer = densify.View(name="b", camera=camera(), rotation=np.eye(3), centre=np.array([0.3, 0.0, 1.0]),
                          point_ids=np.arange(3))
    beside = densify.View(name="c", camera=camera(), rotation=np.eye(3), centre=np.array([1.0, 0.0, 0.2]),
                          point_ids=np.arange(3))
    assert not densify.sideways(here, closer)
    assert densify.sideways(here, beside)
