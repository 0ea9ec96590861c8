"""Preview pictures of the sample models in their filament colours (PNG, transparent background).

A flat-shaded view from the front right and above, painted far-to-near with
Pillow at two (small icons: three) times the size and scaled down, which smooths the edges. The
same mesh and colours give the same bytes.
"""

from __future__ import annotations

import io
import math

import numpy as np
import trimesh
from PIL import Image, ImageDraw

from catalog.samples.shapes import Part

MAX_EDGE_MM = 4.0
_LIGHT = np.array([0.3, 0.5, 1.0]) / np.linalg.norm([0.3, 0.5, 1.0])


def _view() -> np.ndarray:
    turn, tilt = math.radians(-30.0), math.radians(-60.0)
    around_z = np.array([[math.cos(turn), -math.sin(turn), 0], [math.sin(turn), math.cos(turn), 0], [0, 0, 1]])
    around_x = np.array([[1, 0, 0], [0, math.cos(tilt), -math.sin(tilt)], [0, math.sin(tilt), math.cos(tilt)]])
    return around_x @ around_z


def rgb(colour: str) -> np.ndarray:
    colour = colour.lstrip("#")
    return np.array([int(colour[i: i + 2], 16) for i in (0, 2, 4)], dtype=float)


def scene(parts: list[Part]) -> tuple[np.ndarray, np.ndarray]:
    """(triangles in view space, filament slot of each), for `render_png`.

    Faces are first cut to at most MAX_EDGE_MM: small faces keep the far-to-near
    painting right where a big face (a plate's top) meets others.
    """
    triangles, slots = [], []
    for part in parts:
        vertices, faces = trimesh.remesh.subdivide_to_size(part.mesh.vertices, part.mesh.faces, max_edge=MAX_EDGE_MM)
        triangles.append(vertices[faces])
        slots.append(np.full(len(faces), part.slot))
    view = np.concatenate(triangles) @ _view().T
    normals = np.cross(view[:, 1] - view[:, 0], view[:, 2] - view[:, 0])
    lengths = np.linalg.norm(normals, axis=1)
    facing = (lengths > 1e-12) & (normals[:, 2] > 1e-9 * np.maximum(lengths, 1))
    order = np.argsort(view[facing][:, :, 2].mean(axis=1), kind="stable")  # far to near
    return view[facing][order], np.concatenate(slots)[facing][order]


def render_png(view_scene: tuple[np.ndarray, np.ndarray], colours: list[str], *, width: int, height: int) -> bytes:
    """PNG of a `scene`, each face in the colour of its filament slot (`colours[slot]`)."""
    view, slots = view_scene
    normals = np.cross(view[:, 1] - view[:, 0], view[:, 2] - view[:, 0])
    normals = normals / np.linalg.norm(normals, axis=1)[:, None]
    shade = 0.4 + 0.6 * np.clip(normals @ _LIGHT, 0.0, 1.0)
    tints = np.maximum(np.array([rgb(c) for c in colours]), 48.0)[slots]  # black still shows its shading
    fills = [tuple(c) + (255,) for c in np.clip(tints * shade[:, None], 0, 255).round().astype(int).tolist()]

    supersample = 3 if max(width, height) <= 64 else 2  # smooth edges; small icons need more
    big_w, big_h = width * supersample, height * supersample
    flat = view[:, :, :2].reshape(-1, 2)
    low, high = flat.min(axis=0), flat.max(axis=0)
    span = np.maximum(high - low, 1e-9)
    margin = 0.08
    scale = min(big_w * (1 - 2 * margin) / span[0], big_h * (1 - 2 * margin) / span[1])
    centre = (low + high) / 2
    screen_x = ((view[:, :, 0] - centre[0]) * scale + big_w / 2).tolist()
    screen_y = (big_h / 2 - (view[:, :, 1] - centre[1]) * scale).tolist()

    image = Image.new("RGBA", (big_w, big_h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    for xs, ys, fill in zip(screen_x, screen_y, fills, strict=True):
        draw.polygon(list(zip(xs, ys, strict=True)), fill=fill, outline=fill)
    image = image.reduce(supersample)  # the mean of each block of pixels: smooth edges
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
