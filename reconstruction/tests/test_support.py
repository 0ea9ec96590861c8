"""Finding and removing the surface an object stands on, on synthetic scenes with a known answer."""

import numpy as np
import pytest
import trimesh

from reconstruction import evaluation
from reconstruction.pipeline import cleaning

RNG_SEED = 4


def _tilt():
    """A world frame in which the table is not horizontal: the removal must not rely on z being up."""
    return trimesh.transformations.rotation_matrix(0.4, [1, 0.3, 0]) @ trimesh.transformations.translation_matrix(
        [5, -3, 2])


def _scene(objects, *, table=400.0, thickness=8.0):
    """A table (top at z = 0) with the objects standing on it, as one closed surface, moved by _tilt()."""
    slab = trimesh.creation.box((table, table, thickness))
    slab.apply_translation([0, 0, -thickness / 2])
    scene = slab
    for item in objects:
        scene = scene.union(item)
    scene.apply_transform(_tilt())
    return scene


def _box(size, at=(0.0, 0.0)):
    box = trimesh.creation.box(size)
    box.apply_translation([at[0], at[1], size[2] / 2 - 0.5])  # sunk slightly into the table top, as Poisson blends
    return box


def _cloud(scene, *, count=30000, noise=0.15, seed=RNG_SEED):
    """Points a camera above sees: the upward-facing surface only, with depth noise."""
    rng = np.random.default_rng(seed)
    points, faces = trimesh.sample.sample_surface(scene, count * 3, seed=seed)
    up = _tilt()[:3, 2]
    visible = scene.face_normals[faces] @ up > -0.2
    points = points[visible][:count]
    return points + rng.normal(scale=noise, size=points.shape)


def _cameras(radius=350.0, height=250.0, count=16):
    angles = np.linspace(0, 2 * np.pi, count, endpoint=False)
    local = np.column_stack([radius * np.cos(angles), radius * np.sin(angles), np.full(count, height)])
    return trimesh.transform_points(local, _tilt())


def test_a_box_on_a_large_table_is_kept_whole_the_table_removed_and_its_bottom_closed_flat():
    box = _box((80, 50, 48), at=(20, -10))
    scene = _scene([box])
    plane = cleaning.find_support_plane(_cloud(scene), _cameras())
    assert plane is not None and plane.source == "table"
    assert abs(plane.axes[2] @ _tilt()[:3, 2]) > 0.999  # the table's normal
    assert plane.axes[2] @ _tilt()[:3, 2] > 0  # pointing up, towards the cameras
    result = cleaning.remove_support(scene, plane)
    assert result.is_watertight
    # the box alone, at its full height above the table (48 mm less the 0.5 mm sunk into it), sides along x and y
    assert result.extents == pytest.approx([80, 50, 47.5], abs=0.6)
    assert result.volume == pytest.approx(80 * 50 * 47.5, rel=0.02)
    bottom = result.vertices[:, 2] < 1e-6
    assert bottom.sum() >= 4 and np.allclose(result.vertices[bottom, 2], 0)
    # the bottom is one flat face: the faces at z = 0 face straight down and cover the footprint
    down = result.face_normals[:, 2] < -0.999
    assert result.area_faces[down].sum() == pytest.approx(80 * 50, rel=0.02)
    # the move from the reconstruction's frame is kept: mapped back, the result lies on the scene's surface
    upper = result.vertices[result.vertices[:, 2] > 2]
    back = trimesh.transform_points(upper, np.linalg.inv(result.metadata["placed"]))
    assert evaluation.Surface(scene, spacing=1.0).distance(back).max() < 0.01


def test_scaling_by_the_longest_side_uses_the_object_not_the_table(tmp_path):
    from reconstruction.pipeline import Context, scaling

    scene = _scene([_box((80, 50, 48))], table=600)
    plane = cleaning.find_support_plane(_cloud(scene), _cameras())
    # a turned object: the longest side is measured along the object, not along a diagonal of the world axes
    scene.apply_transform(trimesh.transformations.rotation_matrix(0.5, _tilt()[:3, 2]))
    plane = cleaning.find_support_plane(_cloud(scene), trimesh.transform_points(
        _cameras(), trimesh.transformations.rotation_matrix(0.5, _tilt()[:3, 2])))
    cleaned = cleaning.remove_support(scene, plane)
    cleaned.apply_scale(0.01)  # the reconstruction's own units
    cleaned.export(tmp_path / "clean.ply")
    context = Context(photos_dir=tmp_path, work_dir=tmp_path, known_dimension_mm=80.0)
    scaling.run(context)
    scaled = trimesh.load(tmp_path / "scaled.ply")
    assert max(scaled.extents) == pytest.approx(80.0, rel=1e-6)
    assert sorted(scaled.extents) == pytest.approx([47.5, 50, 80], abs=0.6)


def test_two_pieces_and_a_thin_pin_on_a_table_are_all_kept():
    pin = trimesh.creation.cylinder(radius=1.5, height=40, sections=24)
    pin.apply_translation([60, 40, 19.5])
    scene = _scene([_box((50, 40, 30), at=(-40, 0)), _box((30, 30, 60), at=(40, -30)), pin])
    plane = cleaning.find_support_plane(_cloud(scene, count=40000), _cameras())
    assert plane is not None
    result = cleaning.remove_support(scene, plane)
    pieces = result.split(only_watertight=False)
    assert len(pieces) == 3
    assert all(piece.is_watertight for piece in pieces)
    volumes = sorted(piece.volume for piece in pieces)
    assert volumes == pytest.approx([np.pi * 1.5**2 * 39.5, 30 * 30 * 59.5, 50 * 40 * 29.5], rel=0.05)
    assert result.bounds[0][2] == pytest.approx(0, abs=1e-6)


def test_crumbs_left_on_the_table_are_dropped():
    crumb = trimesh.creation.icosphere(radius=1.0)
    crumb.apply_translation([-120, 100, 0.4])
    scene = _scene([_box((60, 60, 40)), crumb])
    plane = cleaning.find_support_plane(_cloud(scene), _cameras())
    result = cleaning.remove_support(scene, plane)
    assert len(result.split(only_watertight=False)) == 1
    assert result.extents == pytest.approx([60, 60, 39.5], abs=0.6)


def test_things_on_the_table_beyond_the_cameras_are_background():
    """The photos were taken around the part: a box far off on the same table is not part of the scan."""
    scene = _scene([_box((60, 40, 30)), _box((50, 50, 50), at=(430, 0))], table=1000)
    plane = cleaning.find_support_plane(_cloud(scene, count=40000), _cameras())
    result = cleaning.remove_support(scene, plane)
    assert len(result.split(only_watertight=False)) == 1
    assert result.extents == pytest.approx([60, 40, 29.5], abs=0.6)


def test_a_surface_no_measured_point_lies_on_is_dropped():
    """Poisson stretches skin where nothing was measured (over a table's rim): only what the points show stays."""
    real = _box((60, 40, 30), at=(-40, 0))
    ghost = _box((70, 70, 40), at=(60, 40))
    measured = _cloud(_scene([real]), count=40000)
    scene = _scene([real, ghost])
    plane = cleaning.find_support_plane(measured, _cameras())
    assert plane is not None
    result = cleaning.remove_support(scene, plane, measured)
    assert len(result.split(only_watertight=False)) == 1
    assert result.extents == pytest.approx([60, 40, 29.5], abs=0.6)
    # without the points both stay: the check needs the measured points
    assert len(cleaning.remove_support(scene, plane).split(only_watertight=False)) == 2


def test_an_object_with_no_support_is_left_whole():
    """No table in the photos: its largest flat face is no support (the cameras see it from all sides)."""
    box = trimesh.creation.box((80, 50, 48))
    rng = np.random.default_rng(1)
    points = box.sample(20000, seed=1) + rng.normal(scale=0.1, size=(20000, 3))
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    rings = [np.column_stack([200 * np.cos(angles), 200 * np.sin(angles), np.full(24, z)]) for z in (-80, 0, 120)]
    assert cleaning.find_support_plane(points, np.vstack(rings)) is None


def test_a_large_flat_face_of_the_object_is_not_taken_for_the_table():
    """A wide plate on a small stand: the plate's top has the most points, but the plate is no support."""
    plate = trimesh.creation.box((200, 200, 4))
    plate.apply_translation([0, 0, 42])
    stand = trimesh.creation.cylinder(radius=10, height=40, sections=32)
    stand.apply_translation([0, 0, 20])
    thing = plate.union(stand)
    rng = np.random.default_rng(2)
    points = thing.sample(20000, seed=2) + rng.normal(scale=0.1, size=(20000, 3))
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    cameras = np.vstack([np.column_stack([300 * np.cos(angles), 300 * np.sin(angles), np.full(24, z)])
                         for z in (-100, 150)])
    assert cleaning.find_support_plane(points, cameras) is None


def test_a_plane_that_cuts_through_the_object_is_refused():
    """A big slab through the middle of a tall object, cameras above: much of the object lies below it."""
    tall = trimesh.creation.box((60, 60, 120))
    slab = trimesh.creation.box((400, 400, 2))
    scene = tall.union(slab)
    rng = np.random.default_rng(3)
    points = scene.sample(30000, seed=3) + rng.normal(scale=0.1, size=(30000, 3))
    assert cleaning.find_support_plane(points, _cameras_above()) is None


def _cameras_above():
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    return np.column_stack([300 * np.cos(angles), 300 * np.sin(angles), np.full(16, 250.0)])


def test_a_table_larger_than_the_view_seen_at_a_grazing_angle_is_found():
    """The table fills the view (most points on it), far parts noisier; cameras low, at 10 to 20 degrees."""
    scene = _scene([_box((80, 50, 48))], table=2000, thickness=20)
    rng = np.random.default_rng(5)
    points = _cloud(scene, count=60000, noise=0.0)
    up = _tilt()[:3, 2]
    centre = trimesh.transform_points([[0, 0, 0]], _tilt())[0]
    distance = np.linalg.norm(points - centre, axis=1)
    # what the photos show: out to 700 mm, with depth noise growing with distance (grazing rays)
    points = points[distance < 700]
    points = points + rng.normal(size=(len(points), 1)) * (0.1 + 0.004 * distance[distance < 700, None]) * up
    angles = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    local = np.column_stack([500 * np.cos(angles), 500 * np.sin(angles), 500 * np.tan(np.radians(
        np.where(np.arange(20) % 2, 10, 20)))])
    plane = cleaning.find_support_plane(points, trimesh.transform_points(local, _tilt()))
    assert plane is not None and plane.axes[2] @ up > 0.999
    result = cleaning.remove_support(scene, plane)
    assert result.extents == pytest.approx([80, 50, 47.5], abs=1.5)
    assert result.is_watertight


def test_the_stage_without_a_support_keeps_the_object_and_stands_it_flat(tmp_path):
    from reconstruction.pipeline import Context

    box = trimesh.creation.box((80, 50, 48))
    box.apply_transform(trimesh.transformations.random_rotation_matrix(np.random.default_rng(6).random(3)))
    box.export(tmp_path / "poisson.ply")
    context = Context(photos_dir=tmp_path, work_dir=tmp_path)
    cleaning.run(context)
    clean = trimesh.load(tmp_path / "clean.ply")
    assert "support_removed" not in context.report and context.report["watertight"]
    assert sorted(clean.extents) == pytest.approx([48, 50, 80], abs=1e-6)
    assert clean.bounds[0][2] == pytest.approx(0, abs=1e-9)
    back = trimesh.transform_points(clean.vertices, np.linalg.inv(context.report["clean_from_model"]))
    assert evaluation.Surface(box, spacing=1.0).distance(back).max() < 0.01
