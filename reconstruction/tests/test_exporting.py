"""The exported files hold the surface the report describes, closed."""

import io

import numpy as np
import trimesh

from reconstruction.pipeline.exporting import as_stored


def _reloaded(mesh: trimesh.Trimesh, file_type: str) -> trimesh.Trimesh:
    return trimesh.load(io.BytesIO(mesh.export(file_type=file_type)), file_type=file_type, force="mesh")


def test_stored_mesh_is_single_precision_closed_and_keeps_its_shape():
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=60.0)
    vertices = sphere.vertices + 1e-9  # detail below what a float32 keeps at 60 mm
    opened = trimesh.Trimesh(vertices, np.vstack([sphere.faces[10:], sphere.faces[:2]]), process=False)
    assert not opened.is_watertight  # eight faces missing: holes
    stored = as_stored(opened)
    assert stored.is_watertight and stored.is_winding_consistent
    assert np.array_equal(stored.vertices, stored.vertices.astype(np.float32).astype(np.float64))
    assert abs(stored.volume - sphere.volume) < 0.01 * sphere.volume
    for file_type in ("stl", "3mf"):
        reloaded = _reloaded(stored, file_type)
        assert reloaded.is_watertight and len(reloaded.faces) == len(stored.faces), file_type


def test_a_closed_mesh_is_stored_unchanged():
    box = trimesh.creation.box(extents=(40.0, 30.0, 20.0))
    stored = as_stored(box)
    assert stored.is_watertight and len(stored.faces) == len(box.faces)
    assert np.allclose(stored.bounds, box.bounds)
