"""Photo sets rendered from a known mesh and known cameras: ground truth for the pipeline.

`render_set(out_dir)` builds a closed test object procedurally, paints it with a solid
texture full of detail at every scale (so that SIFT finds features everywhere), renders
it on the CPU from cameras on rings around it against a plain background and writes

    out_dir/photos/view_000.jpg ...   the photos (JPEG quality 95, 35 mm equivalent focal length in EXIF)
    out_dir/truth.ply                 the true surface, in world units (mm)
    out_dir/truth.json                intrinsics and the world->camera pose of every photo

The renderer is a vectorised z-buffer rasteriser in numpy: back faces are culled, each
triangle's pixels are enumerated from its bounding box, the nearest surface wins per
pixel, and colour comes from the texture evaluated at the exact 3D point under each
pixel (perspective-correct barycentrics), with Lambert shading from a light at the camera.
Camera convention as in COLMAP: x_cam = R @ x_world + t, x right, y down, z forward,
pixel centres at half-integer coordinates.

`render_table_set(out_dir, part=..., table=..., texture=...)` renders scenes like the
photos customers take: a CAD part (PARTS: an L-bracket, a block with through-holes, a
flange with a bore and a bolt circle, a stepped shaft, an organic shape), 80 mm on its
longest side, standing on a textured table (wood, cloth or noise; small, medium or
larger than the view) that fills the background, from cameras above the table only, with
the light changing direction and strength from photo to photo. The truth is the part
alone.
"""

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image

SHAPES = ("default", "block")
BACKGROUND = 0.62  # plain neutral grey
OBJECT_HEIGHT_MM = 120.0


@dataclass
class Truth:
    root: Path
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    poses: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # name -> (R, t) world->camera
    shape: str = "default"

    @property
    def photos_dir(self) -> Path:
        return self.root / "photos"

    @property
    def mesh_path(self) -> Path:
        return self.root / "truth.ply"

    def mesh(self) -> trimesh.Trimesh:
        return trimesh.load(self.mesh_path, force="mesh", process=False)

    def centres(self) -> dict[str, np.ndarray]:
        return {name: -rotation.T @ translation for name, (rotation, translation) in self.poses.items()}

    def write(self) -> None:
        data = {
            "shape": self.shape, "mesh": self.mesh_path.name,
            "intrinsics": {"width": self.width, "height": self.height, "fx": self.fx, "fy": self.fy,
                           "cx": self.cx, "cy": self.cy, "model": "PINHOLE"},
            "images": {name: {"R": rotation.tolist(), "t": translation.tolist()}
                       for name, (rotation, translation) in sorted(self.poses.items())},
        }
        (self.root / "truth.json").write_text(json.dumps(data, indent=1))

    @classmethod
    def load(cls, root: Path | str) -> "Truth":
        root = Path(root)
        data = json.loads((root / "truth.json").read_text())
        k = data["intrinsics"]
        poses = {name: (np.asarray(pose["R"], dtype=float), np.asarray(pose["t"], dtype=float))
                 for name, pose in data["images"].items()}
        return cls(root=root, width=k["width"], height=k["height"], fx=k["fx"], fy=k["fy"], cx=k["cx"], cy=k["cy"],
                   poses=poses, shape=data.get("shape", "default"))


# -- the test objects -------------------------------------------------------------------------------------------------

def _rotation_to(axis) -> np.ndarray:
    """A rotation whose third row is the unit vector `axis` (rows: a local frame)."""
    z = np.asarray(axis, dtype=float)
    z = z / np.linalg.norm(z)
    helper = np.array([1.0, 0, 0]) if abs(z[0]) < 0.9 else np.array([0, 1.0, 0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z])


def _ellipsoid_radius(directions, axis, semi_axes) -> np.ndarray:
    """Distance from the centre to an origin-centred ellipsoid along each unit direction."""
    local = directions @ _rotation_to(axis).T
    return 1.0 / np.sqrt(((local / np.asarray(semi_axes)) ** 2).sum(axis=1))


def _default_radius(d: np.ndarray) -> np.ndarray:
    """A blend of lobes (a figurine-like body, arms, a head, horns, a foot) with grooves, ribs and bumps.

    The smooth union of the lobes leaves concave creases between them; engraved rings,
    ribs and dimples add concave detail, thin horns and raised bumps convex detail.
    """
    lobes = [
        _ellipsoid_radius(d, [0, 0, 1], [0.5, 0.42, 0.95]),         # body
        _ellipsoid_radius(d, [1, 0.15, 0.35], [0.2, 0.2, 1.0]),      # arm
        _ellipsoid_radius(d, [-1, -0.3, 0.2], [0.18, 0.24, 0.9]),   # other arm
        _ellipsoid_radius(d, [0.1, 0.3, 1], [0.36, 0.36, 1.2]),      # head
        _ellipsoid_radius(d, [0.2, -1, -0.7], [0.24, 0.3, 0.95]),    # foot
        _ellipsoid_radius(d, [0, 0.2, -1], [0.62, 0.5, 0.95]),       # base
    ]
    for azimuth in np.radians([20, 140, 260]):                      # horns
        lobes.append(_ellipsoid_radius(d, [np.cos(azimuth), np.sin(azimuth), 1.6], [0.13, 0.13, 1.15]))
    sharpness = 16.0
    r = np.log(np.exp(sharpness * np.stack(lobes)).sum(axis=0)) / sharpness - math.log(2.0) / sharpness
    z = d[:, 2]
    azimuth = np.arctan2(d[:, 1], d[:, 0])
    r *= 1 - 0.05 * np.exp(-((z - 0.35) / 0.035) ** 2)                      # an engraved ring
    r *= 1 - 0.05 * np.exp(-((z + 0.25) / 0.03) ** 2) * (1 + np.cos(3 * azimuth)) / 2  # a broken groove
    r *= 1 + 0.025 * np.sin(38 * z) * np.clip(-3 * z, 0, 1)                  # ribs on the lower half
    r *= 1 + 0.03 * np.sin(9 * azimuth) * np.clip(3 * z - 1.2, 0, 1) * np.sqrt(1 - z**2)  # flutes at the top
    rng = np.random.default_rng(7)
    for _ in range(18):
        centre = rng.normal(size=3)
        centre /= np.linalg.norm(centre)
        height = rng.choice([-0.06, 0.06]) * rng.uniform(0.6, 1.0)
        width = rng.uniform(0.08, 0.18)
        r *= 1 + height * np.exp(-((1 - d @ centre) / (width**2 / 2)))
    return r


def _block_radius(d: np.ndarray) -> np.ndarray:
    """A rounded, ribbed block: nothing like the default object."""
    power = 5.0
    size = np.array([1.0, 0.55, 0.7])
    r = (np.abs(d / size) ** power).sum(axis=1) ** (-1 / power)
    r *= 1 + 0.03 * np.cos(14 * d[:, 0])
    return r


def make_mesh(shape: str = "default", subdivisions: int = 6) -> trimesh.Trimesh:
    """The test object: a displaced sphere (closed, watertight, star-shaped), standing on z = 0, in mm."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; choose one of {', '.join(SHAPES)}")
    sphere = trimesh.creation.icosphere(subdivisions=subdivisions)
    directions = sphere.vertices / np.linalg.norm(sphere.vertices, axis=1, keepdims=True)
    radius = _default_radius(directions) if shape == "default" else _block_radius(directions)
    vertices = directions * radius[:, None]
    vertices *= OBJECT_HEIGHT_MM / np.ptp(vertices[:, 2])
    vertices[:, 2] -= vertices[:, 2].min()
    mesh = trimesh.Trimesh(vertices=vertices, faces=sphere.faces, process=False)
    if mesh.volume < 0:
        mesh.invert()
    return mesh


# -- the texture ------------------------------------------------------------------------------------------------------

class SolidTexture:
    """Colour as a function of the 3D point (in mm): value noise at several scales.

    Soft areas of colour, hard-edged dark and light patches from a few millimetres down
    to about one and fine speckles give strong local contrast at every scale a photo
    sees. Each octave is turned by its own random rotation, which hides the lattice.
    """

    TABLE = 64
    OCTAVES = 8

    def __init__(self, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.tables = rng.random((self.OCTAVES, self.TABLE, self.TABLE, self.TABLE), dtype=np.float32)
        self.rotations = [np.linalg.qr(rng.normal(size=(3, 3)))[0] for _octave in range(self.OCTAVES)]
        self.offsets = rng.uniform(0, 1000, size=(self.OCTAVES, 3))
        self.palette = (rng.random((8, 3)) * 0.75 + 0.25).astype(np.float32)

    def _noise(self, points: np.ndarray, octave: int, period_mm: float) -> np.ndarray:
        q = points @ (self.rotations[octave].T / period_mm) + self.offsets[octave]
        base = np.floor(q)
        f = (q - base).astype(np.float32)
        f = f * f * (3 - 2 * f)
        i = base.astype(np.int64) % self.TABLE
        j = (i + 1) % self.TABLE
        table = self.tables[octave]
        x0, y0, z0 = i.T
        x1, y1, z1 = j.T
        fx, fy, fz = f.T
        c00 = table[x0, y0, z0] * (1 - fx) + table[x1, y0, z0] * fx
        c10 = table[x0, y1, z0] * (1 - fx) + table[x1, y1, z0] * fx
        c01 = table[x0, y0, z1] * (1 - fx) + table[x1, y0, z1] * fx
        c11 = table[x0, y1, z1] * (1 - fx) + table[x1, y1, z1] * fx
        return (c00 * (1 - fy) + c10 * fy) * (1 - fz) + (c01 * (1 - fy) + c11 * fy) * fz

    def __call__(self, points: np.ndarray) -> np.ndarray:
        hue = self._noise(points, 0, 24.0) * 0.7 + self._noise(points, 1, 10.0) * 0.3
        position = np.clip(hue * 1.4 - 0.2, 0, 0.999) * (len(self.palette) - 1)
        low = position.astype(np.int64)
        blend = (position - low)[:, None]
        colour = self.palette[low] * (1 - blend) + self.palette[low + 1] * blend
        patches = (self._noise(points, 2, 6.0) + 0.7 * self._noise(points, 3, 3.0)
                   + 0.5 * self._noise(points, 4, 1.6)) / 2.2
        shade = 0.2 + 0.8 / (1 + np.exp(-(patches - 0.5) * 30))
        speckle = self._noise(points, 5, 1.3)
        shade = np.where(speckle > 0.8, shade * 0.35, np.where(speckle < 0.2, np.minimum(1, shade + 0.45), shade))
        return np.clip(colour * shade[:, None], 0, 1)


# -- cameras ----------------------------------------------------------------------------------------------------------

def rings(views: int) -> tuple[tuple[float, float], ...]:
    """(elevation in degrees, share of the views) per ring: three rings for a full set, fewer for small ones,
    so that neighbouring photos stay close enough to match."""
    if views >= 28:
        return (-20.0, 0.27), (12.0, 0.4), (45.0, 0.33)
    if views >= 14:
        return (-10.0, 0.5), (30.0, 0.5)
    return ((20.0, 1.0),)


def _look_at(position: np.ndarray, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The world-to-camera rotation and translation of a camera at `position` looking at `centre`, its image's
    x to the right and y down, with the world's z up."""
    forward = centre - position
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0, 0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])
    return rotation, -rotation @ position


def ring_cameras(views: int, centre: np.ndarray, distance: float, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """World->camera poses on rings around `centre`, each looking at it, upright (world z up)."""
    layout = rings(views)
    counts = [max(1, round(views * share)) for _elevation, share in layout]
    counts[len(counts) // 2] += views - sum(counts)
    rng = np.random.default_rng(seed)
    poses = []
    for (elevation, _share), count in zip(layout, counts, strict=True):
        start = rng.uniform(0, 360)
        for k in range(count):
            azimuth = math.radians(start + 360.0 * k / count)
            tilt = math.radians(elevation)
            position = centre + distance * np.array([math.cos(tilt) * math.cos(azimuth),
                                                     math.cos(tilt) * math.sin(azimuth), math.sin(tilt)])
            poses.append(_look_at(position, centre))
    return poses


# -- the renderer -----------------------------------------------------------------------------------------------------

def render(mesh: trimesh.Trimesh, texture, rotation, translation, *, width, height, fx, fy, cx, cy,
           supersample: int = 1, vertex_normals: np.ndarray | None = None,
           light: tuple[np.ndarray, float] | None = None) -> np.ndarray:
    """One view as an (height, width, 3) float image in 0..1.

    `light`: (unit direction towards the light in the world, strength); without it the
    light sits at the camera at full strength.
    """
    s = supersample
    w, h = width * s, height * s
    fx, fy, cx, cy = fx * s, fy * s, cx * s, cy * s
    camera = mesh.vertices @ np.asarray(rotation).T + np.asarray(translation)
    depth = camera[:, 2]
    u = fx * camera[:, 0] / depth + cx
    v = fy * camera[:, 1] / depth + cy
    faces = mesh.faces
    fu, fv = u[faces], v[faces]
    # Signed area in the image (y down): front faces of an outward-oriented mesh turn clockwise on screen.
    area = (fu[:, 1] - fu[:, 0]) * (fv[:, 2] - fv[:, 0]) - (fu[:, 2] - fu[:, 0]) * (fv[:, 1] - fv[:, 0])
    front = (area < -1e-12) & (depth[faces] > 1e-6).all(axis=1)
    faces, fu, fv, area = faces[front], fu[front], fv[front], area[front]
    x0 = np.clip(np.ceil(fu.min(axis=1) - 0.5), 0, w).astype(np.int64)
    x1 = np.clip(np.floor(fu.max(axis=1) - 0.5), -1, w - 1).astype(np.int64)
    y0 = np.clip(np.ceil(fv.min(axis=1) - 0.5), 0, h).astype(np.int64)
    y1 = np.clip(np.floor(fv.max(axis=1) - 0.5), -1, h - 1).astype(np.int64)
    bw, bh = x1 - x0 + 1, y1 - y0 + 1
    counts = np.where((bw > 0) & (bh > 0), bw * bh, 0)
    keep = counts > 0
    faces, fu, fv, area, x0, y0, bw, counts = (a[keep] for a in (faces, fu, fv, area, x0, y0, bw, counts))
    # Edge functions: the barycentric weight of vertex k is linear in the pixel position.
    nxt, prv = [1, 2, 0], [2, 0, 1]
    a = (fv[:, nxt] - fv[:, prv]) / area[:, None]
    b = (fu[:, prv] - fu[:, nxt]) / area[:, None]
    c = -(a * fu[:, nxt] + b * fv[:, nxt])
    owner = np.repeat(np.arange(len(faces)), counts)
    local = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    px = x0[owner] + local % bw[owner]
    py = y0[owner] + local // bw[owner]
    sx, sy = px + 0.5, py + 0.5
    weights = a[owner] * sx[:, None] + b[owner] * sy[:, None] + c[owner]
    inside = (weights >= -1e-9).all(axis=1)
    owner, px, py, weights = owner[inside], px[inside], py[inside], weights[inside]
    inverse_depth = weights / depth[faces[owner]]
    total = inverse_depth.sum(axis=1)
    # Nearest surface per pixel: sort by pixel, then by depth, and keep the first of each pixel.
    pixel = py * w + px
    quantised = np.clip(total / total.max() * (2**30 - 1), 0, 2**30 - 1).astype(np.int64)
    order = np.argsort(pixel * 2**30 + (2**30 - 1 - quantised))
    first = np.ones(len(order), dtype=bool)
    first[1:] = pixel[order][1:] != pixel[order][:-1]
    chosen = order[first]
    owner, pixel = owner[chosen], pixel[chosen]
    perspective = inverse_depth[chosen] / total[chosen, None]
    corners = faces[owner]
    points = np.einsum("ij,ijk->ik", perspective, mesh.vertices[corners])
    normals = vertex_normals if vertex_normals is not None else mesh.vertex_normals
    normal = np.einsum("ij,ijk->ik", perspective, normals[corners])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    centre = -np.asarray(rotation).T @ np.asarray(translation)
    towards = centre - points
    towards /= np.linalg.norm(towards, axis=1, keepdims=True)
    if light is None:
        shade = 0.3 + 0.7 * np.clip(np.einsum("ij,ij->i", normal, towards), 0, 1)
    else:
        direction, strength = light
        # the side facing the camera is the one seen: a normal the renderer sees from behind is turned round
        facing = np.where(np.einsum("ij,ij->i", normal, towards)[:, None] < 0, -normal, normal)
        shade = strength * (0.35 + 0.65 * np.clip(facing @ np.asarray(direction, float), 0, 1))
    image = np.full((h * w, 3), BACKGROUND, dtype=np.float32)
    image[pixel] = np.clip(texture(points) * shade[:, None], 0, 1)
    image = image.reshape(h, w, 3)
    if s > 1:
        image = image.reshape(height, s, width, s, 3).mean(axis=(1, 3))
    return image


def _exif(fx: float, width: int, height: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "fablab"          # Make
    exif[0x0110] = "synthetic"       # Model
    details = exif.get_ifd(0x8769)
    details[0xA405] = int(round(fx / max(width, height) * 35))  # FocalLengthIn35mmFilm
    return exif


def _save_photo(truth, path: Path, image: np.ndarray, fx: float, size: int, rotation, translation) -> None:
    """Write a rendered view as the JPEG a camera would (with its focal length in EXIF) and note its pose."""
    Image.fromarray((image * 255 + 0.5).astype(np.uint8)).save(path, quality=95, exif=_exif(fx, size, size))
    truth.poses[path.name] = (rotation, translation)


def render_set(out_dir, *, views: int = 30, size: int = 1024, seed: int = 0, shape: str = "default",
               supersample: int = 1, prefix: str = "view") -> Truth:
    """Render `views` photos of the test object at `size` x `size` pixels into out_dir/photos."""
    root = Path(out_dir)
    (root / "photos").mkdir(parents=True, exist_ok=True)
    mesh = make_mesh(shape)
    mesh.export(root / "truth.ply")
    texture = SolidTexture(seed + (1000 if shape != "default" else 0))
    fx = fy = 0.9 * size
    truth = Truth(root=root, width=size, height=size, fx=fx, fy=fy, cx=size / 2, cy=size / 2, shape=shape)
    centre = mesh.bounds.mean(axis=0)
    radius = float(np.linalg.norm(mesh.vertices - centre, axis=1).max())
    # The object's bounding sphere fills about 95 % of the frame.
    distance = radius / math.sin(math.atan(0.5 * size / fx * 0.95))
    normals = mesh.vertex_normals
    for index, (rotation, translation) in enumerate(ring_cameras(views, centre, distance, seed)):
        image = render(mesh, texture, rotation, translation, width=size, height=size, fx=fx, fy=fy, cx=truth.cx,
                       cy=truth.cy, supersample=supersample, vertex_normals=normals)
        _save_photo(truth, root / "photos" / f"{prefix}_{index:03d}.jpg", image, fx, size, rotation, translation)
    truth.write()
    return truth


# -- scenes like customers' photos: a CAD part on a textured table ---------------------------------------------------

PARTS = ("bracket", "holes", "flange", "shaft", "organic")
TABLES = {"small": 160.0, "medium": 420.0, "large": 3000.0}  # side in mm; "large" reaches past every view
TABLE_TEXTURES = ("wood", "cloth", "noise")
PART_LONGEST_MM = 80.0
TABLE_THICKNESS_MM = 18.0


def _cylinder(radius: float, height: float, *, z: float = 0.0, x: float = 0.0, y: float = 0.0,
              axis=(0, 0, 1)) -> trimesh.Trimesh:
    cylinder = trimesh.creation.cylinder(radius=radius, height=height, sections=96)
    if tuple(axis) != (0, 0, 1):
        cylinder.apply_transform(trimesh.geometry.align_vectors([0, 0, 1], axis))
    cylinder.apply_translation([x, y, z])
    return cylinder


def _box_at(size, low) -> trimesh.Trimesh:
    box = trimesh.creation.box(size)
    box.apply_translation(np.asarray(low, float) + np.asarray(size, float) / 2)
    return box


def make_part(name: str) -> trimesh.Trimesh:
    """A CAD part with known geometry, in mm, standing on z = 0, its longest side 80 mm along x."""
    if name == "bracket":  # an L-bracket: a base plate and an upright, a hole in each
        shape = _box_at((80, 40, 8), (0, 0, 0)).union(_box_at((8, 40, 50), (0, 0, 0)))
        shape = shape.difference(_cylinder(4.5, 30, x=50, y=20, z=4))
        shape = shape.difference(_cylinder(4.5, 30, x=4, y=20, z=32, axis=(1, 0, 0)))
    elif name == "holes":  # a block with three vertical and one horizontal through-hole
        shape = _box_at((80, 50, 30), (0, 0, 0))
        for x in (18, 40, 62):
            shape = shape.difference(_cylinder(5 if x != 40 else 8, 50, x=x, y=25, z=15))
        shape = shape.difference(_cylinder(4, 100, x=40, y=25, z=15, axis=(1, 0, 0)))
    elif name == "flange":  # a flange: a disc with a hub, a bore and a bolt circle of six holes
        shape = _cylinder(40, 10, z=5).union(_cylinder(20, 26, z=13))
        shape = shape.difference(_cylinder(10, 60, z=13))
        for k in range(6):
            angle = 2 * np.pi * k / 6
            shape = shape.difference(_cylinder(4, 30, x=31 * np.cos(angle), y=31 * np.sin(angle), z=5))
    elif name == "shaft":  # a stepped shaft, standing on its widest end
        shape = _cylinder(15, 24, z=12).union(_cylinder(11, 34, z=41)).union(_cylinder(7, 24, z=68))
    elif name == "organic":
        shape = make_mesh("default", subdivisions=5)
    else:
        raise ValueError(f"unknown part {name!r}; choose one of {', '.join(PARTS)}")
    shape = shape.copy()
    shape.apply_scale(PART_LONGEST_MM / max(shape.extents))
    low, high = shape.bounds
    shape.apply_translation([-(low[0] + high[0]) / 2, -(low[1] + high[1]) / 2, -low[2]])
    if shape.volume < 0:
        shape.invert()
    return shape


class TableTexture:
    """The colour of a table top (z = 0) at a point: wood grain, woven cloth or plain noise."""

    def __init__(self, kind: str, seed: int = 0):
        if kind not in TABLE_TEXTURES:
            raise ValueError(f"unknown table texture {kind!r}; choose one of {', '.join(TABLE_TEXTURES)}")
        self.kind = kind
        self.noise = SolidTexture(seed + 500)
        rng = np.random.default_rng(seed + 77)
        self.angle = rng.uniform(0, np.pi)
        self.tint = (rng.random(3) * 0.25 + 0.75).astype(np.float32)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        n = self.noise
        if self.kind == "noise":
            grey = n(points).mean(axis=1, keepdims=True)
            return np.clip(0.55 * n(points) + 0.45 * grey, 0, 1) * self.tint
        c, s = math.cos(self.angle), math.sin(self.angle)
        along = points[:, 0] * c + points[:, 1] * s
        across = -points[:, 0] * s + points[:, 1] * c
        if self.kind == "wood":
            warp = 6.0 * n._noise(points * [0.2, 0.2, 1], 0, 20.0) + 1.5 * n._noise(points, 1, 4.0)
            grain = 0.5 + 0.5 * np.sin(2 * np.pi * (across + warp * 3) / 7.0)
            pores = n._noise(points * [1, 1, 1], 5, 0.9)
            brown = np.array([0.55, 0.36, 0.2], np.float32)
            dark = np.array([0.3, 0.17, 0.08], np.float32)
            colour = brown + (dark - brown) * (grain ** 3)[:, None]
            knots = n._noise(points, 2, 8.0)
            colour = colour * (0.75 + 0.5 * knots)[:, None]
            colour = np.where((pores > 0.78)[:, None], colour * 0.6, colour)
            return np.clip(colour * self.tint, 0, 1)
        # cloth: a fine weave of two thread colours, with slubs and soft dirt
        warp = 0.5 + 0.5 * np.sin(2 * np.pi * along / 1.6)
        weft = 0.5 + 0.5 * np.sin(2 * np.pi * across / 1.6)
        thread = np.where(((np.floor(along / 1.6) + np.floor(across / 1.6)) % 2)[:, None] > 0,
                          np.array([0.25, 0.35, 0.55], np.float32), np.array([0.75, 0.72, 0.65], np.float32))
        relief = (0.7 + 0.3 * warp * weft)[:, None]
        blotches = n(points)
        return np.clip(thread * relief * 0.75 + 0.25 * blotches * self.tint, 0, 1)


def make_table(size_mm: float, cell_mm: float | None = None) -> trimesh.Trimesh:
    """A table slab, top at z = 0, centred, in triangles small enough that no view sees one from behind."""
    table = trimesh.creation.box((size_mm, size_mm, TABLE_THICKNESS_MM))
    table.apply_translation([0, 0, -TABLE_THICKNESS_MM / 2])
    cell = cell_mm or max(10.0, size_mm / 120)
    vertices, faces = trimesh.remesh.subdivide_to_size(table.vertices, table.faces, max_edge=cell)
    return trimesh.Trimesh(vertices=vertices, faces=faces, process=False)


def rings_above(views: int) -> tuple[tuple[float, float], ...]:
    """Rings for an object on a table: every camera above it, from low (grazing the table) to steep."""
    if views >= 28:
        return (15.0, 0.3), (35.0, 0.4), (60.0, 0.3)
    if views >= 14:
        return (22.0, 0.5), (48.0, 0.5)
    return ((35.0, 1.0),)


def _lights(count: int, poses, rng) -> list[tuple[np.ndarray, float]]:
    """Per photo a light from above, off the camera's direction by up to 50 degrees, 70 % to 115 % strength."""
    lights = []
    for rotation, _translation in poses[:count]:
        towards_camera = -np.asarray(rotation)[2]
        direction = towards_camera + rng.normal(scale=0.5, size=3) + [0, 0, 0.4]
        direction /= np.linalg.norm(direction)
        lights.append((direction, float(rng.uniform(0.7, 1.15))))
    return lights


def render_table_set(out_dir, *, part: str = "bracket", table: str = "medium", texture: str = "wood",
                     views: int = 30, size: int = 1024, seed: int = 0, fill: float = 0.7) -> Truth:
    """Render `views` photos of a CAD part on a textured table; the truth is the part alone."""
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; choose one of {', '.join(TABLES)}")
    root = Path(out_dir)
    (root / "photos").mkdir(parents=True, exist_ok=True)
    shape = make_part(part)
    rng = np.random.default_rng(seed)
    turn = trimesh.transformations.rotation_matrix(rng.uniform(0, 2 * np.pi), [0, 0, 1])
    placed = shape.copy()
    placed.apply_transform(turn)  # the part stands turned on the table; the truth is turned with it
    placed.export(root / "truth.ply")
    # faces of their own: flat shading on the part's flat faces and sharp edges
    flat = placed.copy()
    flat.unmerge_vertices()
    slab = make_table(TABLES[table])
    slab.unmerge_vertices()
    scene = trimesh.util.concatenate([flat, slab])
    normals = np.vstack([_corner_normals(flat), _corner_normals(slab)])
    part_texture = SolidTexture(seed + 2000)
    table_texture = TableTexture(texture, seed)

    def colour(points: np.ndarray) -> np.ndarray:
        on_table = points[:, 2] < 1e-3
        out = np.empty((len(points), 3), np.float32)
        if on_table.any():
            out[on_table] = table_texture(points[on_table])
        if (~on_table).any():
            out[~on_table] = part_texture(points[~on_table])
        return out

    fx = fy = 0.9 * size
    truth = Truth(root=root, width=size, height=size, fx=fx, fy=fy, cx=size / 2, cy=size / 2,
                  shape=f"{part} on a {table} {texture} table")
    centre = placed.bounds.mean(axis=0)
    radius = float(np.linalg.norm(placed.vertices - centre, axis=1).max())
    distance = radius / math.sin(math.atan(0.5 * size / fx * fill))
    layout = rings_above(views)
    poses = _ring_poses(views, centre, distance, layout, seed)
    for index, ((rotation, translation), light) in enumerate(zip(poses, _lights(len(poses), poses, rng),
                                                               strict=True)):
        image = render(scene, colour, rotation, translation, width=size, height=size, fx=fx, fy=fy, cx=truth.cx,
                       cy=truth.cy, vertex_normals=normals, light=light)
        _save_photo(truth, root / "photos" / f"view_{index:03d}.jpg", image, fx, size, rotation, translation)
    truth.write()
    return truth


def _corner_normals(mesh: trimesh.Trimesh) -> np.ndarray:
    """Per vertex of a mesh whose faces have vertices of their own: its face's normal."""
    normals = np.zeros((len(mesh.vertices), 3))
    normals[mesh.faces.reshape(-1)] = np.repeat(mesh.face_normals, 3, axis=0)
    return normals


def _ring_poses(views, centre, distance, layout, seed) -> list[tuple[np.ndarray, np.ndarray]]:
    counts = [max(1, round(views * share)) for _elevation, share in layout]
    counts[len(counts) // 2] += views - sum(counts)
    rng = np.random.default_rng(seed)
    poses = []
    for (elevation, _share), count in zip(layout, counts, strict=True):
        start = rng.uniform(0, 360)
        for k in range(count):
            azimuth = math.radians(start + 360.0 * k / count + rng.uniform(-4, 4))
            tilt = math.radians(elevation + rng.uniform(-3, 3))
            reach = distance * rng.uniform(0.93, 1.07)
            position = centre + reach * np.array([math.cos(tilt) * math.cos(azimuth),
                                                  math.cos(tilt) * math.sin(azimuth), math.sin(tilt)])
            poses.append(_look_at(position, centre))
    return poses
