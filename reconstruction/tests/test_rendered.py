"""The pipeline against ground truth: photos rendered from a known mesh and known cameras."""

import shutil

import numpy as np
import pytest
import trimesh
from PIL import Image

from reconstruction import evaluation, synthetic
from reconstruction.pipeline import Context, ScanFailed, run, scaling

SMALL = {"views": 24, "size": 640}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    return synthetic.render_set(tmp_path_factory.mktemp("rendered"), **SMALL)


def test_renderer_shows_the_object_where_the_cameras_see_it(rendered):
    truth = synthetic.Truth.load(rendered.root)
    assert len(truth.poses) == SMALL["views"] and truth.fx == pytest.approx(0.9 * SMALL["size"])
    mesh = truth.mesh()
    assert mesh.is_watertight and len(mesh.faces) >= 50_000
    for name, (rotation, translation) in list(truth.poses.items())[:4]:
        image = np.asarray(Image.open(truth.photos_dir / name).convert("RGB"), dtype=float) / 255
        assert image.shape == (SMALL["size"], SMALL["size"], 3)
        background = np.all(np.abs(image - synthetic.BACKGROUND) < 0.03, axis=2)
        camera = mesh.vertices @ rotation.T + translation
        u = np.round(truth.fx * camera[:, 0] / camera[:, 2] + truth.cx - 0.5).astype(int)
        v = np.round(truth.fy * camera[:, 1] / camera[:, 2] + truth.cy - 0.5).astype(int)
        inside = (u > 1) & (v > 1) & (u < SMALL["size"] - 2) & (v < SMALL["size"] - 2)
        assert inside.all()  # the whole object is in the frame
        # every projected vertex lands on the object, and the object covers only what projects
        assert background[v, u].mean() < 0.02
        assert 0.1 < 1 - background.mean() < 0.6


def test_rendered_set_is_reconstructed_close_to_the_truth(rendered, tmp_path):
    mesh = rendered.mesh()
    report = run(Context(photos_dir=rendered.photos_dir, work_dir=tmp_path / "work",
                         known_dimension_mm=float(max(mesh.extents))))
    result = evaluation.evaluate(tmp_path / "work", rendered)
    assert report["registered_photos"] == result.registered
    assert result.registration_rate >= 0.9
    assert result.camera_position_error_percent < 1.0 and result.camera_rotation_error_deg < 1.0
    assert result.watertight and report["mesh"]["watertight"]
    assert result.accuracy_percent < 1.5
    assert result.completeness > 0.6
    printed = trimesh.load(tmp_path / "work" / "out" / "mesh.stl")
    assert max(printed.extents) == pytest.approx(max(mesh.extents), rel=1e-3)


def test_a_set_of_two_different_objects_fails_with_advice(rendered, tmp_path):
    box = synthetic.render_set(tmp_path, views=12, size=SMALL["size"], shape="block", seed=1, prefix="box")
    for photo in rendered.photos_dir.iterdir():
        shutil.copyfile(photo, box.photos_dir / photo.name)
    with pytest.raises(ScanFailed) as failed:
        run(Context(photos_dir=box.photos_dir, work_dir=tmp_path / "work"))
    message = str(failed.value.message)
    assert "two different things" in message and "same object" in message
    assert "24 photos fit together" in message and "12 others (box_000.jpg" in message
    assert not (tmp_path / "work" / "out").exists()


def test_similarity_recovers_a_known_transform():
    rng = np.random.default_rng(3)
    points = rng.normal(size=(20, 3))
    rotation = trimesh.transformations.random_rotation_matrix(rng.random(3))[:3, :3]
    moved = 2.5 * points @ rotation.T + [1, -2, 3]
    scale, found, shift = scaling.similarity(points, moved)
    assert scale == pytest.approx(2.5) and np.allclose(found, rotation) and np.allclose(shift, [1, -2, 3])


def test_distances_to_a_surface_are_measured_along_its_normal():
    sphere = trimesh.creation.icosphere(subdivisions=5, radius=10)
    surface = evaluation.Surface(sphere, spacing=0.2)
    directions = np.random.default_rng(1).normal(size=(500, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    assert np.allclose(surface.distance(directions * 10.5), 0.5, atol=0.05)
    assert np.allclose(surface.distance(directions * 10), 0, atol=0.05)
    assert np.allclose(surface.distance(directions * 13), 3, atol=0.05)
