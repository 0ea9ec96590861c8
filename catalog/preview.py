"""Preview images of meshes (STL, unsliced 3MF), drawn without a GPU or a display.

An isometric, flat-shaded view painted far-to-near with Pillow. Meshes with more
faces than MAX_FACES are first simplified by vertex clustering: vertices closer
than a grid cell (a fraction of a pixel at preview size) are merged, which keeps
the surface closed and the picture the same while bounding the drawing time.
"""

import io

import numpy as np
from PIL import Image, ImageDraw

MAX_FACES = 60_000
PREVIEW_SIZE = 512
BASE_COLOUR = np.array([20, 150, 140], dtype=float)
LIGHT = np.array([0.35, 0.45, 1.0]) / np.linalg.norm([0.35, 0.45, 1.0])


def _isometric() -> np.ndarray:
    turn = np.radians(-45.0)
    tilt = np.radians(-54.7356)  # look down onto the bed at the isometric angle
    around_z = np.array([[np.cos(turn), -np.sin(turn), 0], [np.sin(turn), np.cos(turn), 0], [0, 0, 1]])
    around_x = np.array([[1, 0, 0], [0, np.cos(tilt), -np.sin(tilt)], [0, np.sin(tilt), np.cos(tilt)]])
    return around_x @ around_z


def simplify(vertices: np.ndarray, faces: np.ndarray, *, max_faces: int = MAX_FACES) -> tuple:
    """Merge vertices on an ever coarser grid until at most `max_faces` faces remain."""
    cells = 512
    while len(faces) > max_faces and cells >= 16:
        low = vertices.min(axis=0)
        cell = max(float((vertices.max(axis=0) - low).max()), 1e-9) / cells
        keys = np.floor((vertices - low) / cell).astype(np.int64)
        _unique, cluster = np.unique(keys, axis=0, return_inverse=True)
        cluster = cluster.reshape(-1)
        counts = np.bincount(cluster)
        merged = np.zeros((len(counts), 3))
        np.add.at(merged, cluster, vertices)
        merged /= counts[:, None]
        remapped = cluster[faces]
        distinct = (remapped[:, 0] != remapped[:, 1]) & (remapped[:, 1] != remapped[:, 2]) & (
            remapped[:, 0] != remapped[:, 2])
        remapped = remapped[distinct]
        _rows, first = np.unique(np.sort(remapped, axis=1), axis=0, return_index=True)
        vertices, faces = merged, remapped[np.sort(first)]
        cells //= 2
    return vertices, faces


def render_png(vertices: np.ndarray, faces: np.ndarray, *, size: int = PREVIEW_SIZE) -> bytes:
    """PNG of a triangle mesh (vertices in mm, faces as vertex indices), transparent background."""
    vertices = np.asarray(vertices, dtype=float)
    faces = np.asarray(faces, dtype=np.int64)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3 or not len(faces):
        raise ValueError("the mesh has no triangles to draw")
    vertices, faces = simplify(vertices, faces)
    triangles = vertices[faces]
    edges_a = triangles[:, 1] - triangles[:, 0]
    edges_b = triangles[:, 2] - triangles[:, 0]
    cross = np.cross(edges_a, edges_b)
    area = np.linalg.norm(cross, axis=1)
    usable = area > 0
    triangles, cross, area = triangles[usable], cross[usable], area[usable]
    normals = cross / area[:, None]

    rotation = _isometric()
    view = triangles @ rotation.T
    view_normals = normals @ rotation.T
    facing = view_normals[:, 2] > 0
    view, view_normals = view[facing], view_normals[facing]
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    if not len(view):
        return _png(image)

    xy = view[:, :, :2]
    low, high = xy.reshape(-1, 2).min(axis=0), xy.reshape(-1, 2).max(axis=0)
    span = max(float((high - low).max()), 1e-9)
    margin = size * 0.06
    scale = (size - 2 * margin) / span
    offset = (size - (high - low) * scale) / 2
    screen = (xy - low) * scale + offset
    screen[:, :, 1] = size - screen[:, :, 1]

    brightness = 0.3 + 0.7 * np.clip(view_normals @ LIGHT, 0, 1)
    colours = np.clip(BASE_COLOUR[None, :] * brightness[:, None] + 40 * brightness[:, None], 0, 255).astype(int)
    order = np.argsort(view[:, :, 2].mean(axis=1))  # far first, near last
    draw = ImageDraw.Draw(image)
    for index in order:
        r, g, b = colours[index]
        draw.polygon([tuple(point) for point in screen[index]], fill=(int(r), int(g), int(b), 255))
    return _png(image)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def render_file(source, *, file_type: str, size: int = PREVIEW_SIZE) -> bytes:
    """Load an STL or 3MF with trimesh and render it. Raises ValueError when it has no mesh."""
    import trimesh

    source.seek(0)
    mesh = trimesh.load(source, file_type=file_type, force="mesh")
    if not isinstance(mesh, trimesh.Trimesh) or not len(mesh.faces):
        raise ValueError("the file contains no mesh")
    return render_png(mesh.vertices, mesh.faces, size=size)
