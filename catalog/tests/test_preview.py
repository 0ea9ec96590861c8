import io

import numpy as np
import pytest
import trimesh
from PIL import Image

from catalog.preview import render_file, render_png, simplify


def opaque_share(png: bytes) -> float:
    alpha = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))[:, :, 3]
    return float((alpha > 0).mean())


def test_draws_a_cube_in_the_middle():
    cube = trimesh.creation.box(extents=(20, 20, 20))
    png = render_png(cube.vertices, cube.faces, size=200)
    image = Image.open(io.BytesIO(png))
    assert image.size == (200, 200) and image.mode == "RGBA"
    assert 0.3 < opaque_share(png) < 0.8
    alpha = np.asarray(image)[:, :, 3]
    assert alpha[100, 100] > 0 and alpha[0, 0] == 0


def test_large_meshes_are_simplified_without_holes():
    sphere = trimesh.creation.icosphere(subdivisions=7)  # 327,680 faces
    vertices, faces = simplify(sphere.vertices, sphere.faces, max_faces=20_000)
    assert len(faces) <= 20_000
    simplified = trimesh.Trimesh(vertices, faces)
    assert abs(simplified.area - sphere.area) / sphere.area < 0.05
    png = render_png(sphere.vertices, sphere.faces, size=256)
    # A sphere covers pi/4 of its bounding square; holes would show as transparency.
    assert opaque_share(png) == pytest.approx(np.pi / 4 * 0.88 ** 2, rel=0.08)


def test_renders_stl_from_a_file():
    buffer = io.BytesIO(trimesh.creation.cylinder(radius=5, height=30).export(file_type="stl"))
    assert render_file(buffer, file_type="stl").startswith(b"\x89PNG")


@pytest.mark.parametrize("vertices,faces", [(np.zeros((0, 3)), np.zeros((0, 3), dtype=int)),
                                            (np.zeros((3, 2)), np.array([[0, 1, 2]]))])
def test_refuses_empty_or_malformed_meshes(vertices, faces):
    with pytest.raises(ValueError):
        render_png(vertices, faces)


def test_flat_triangles_only_still_give_an_image():
    vertices = np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0]], dtype=float)
    assert render_png(vertices, np.array([[0, 1, 2]])).startswith(b"\x89PNG")
