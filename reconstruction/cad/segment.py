"""Split a triangle mesh into regions and fit an analytic surface to each.

Regions are grown over edges that bend gently (a flat face or the facets of a round hole),
so sharp edges separate them. Each region is then tried as a plane (least squares), as a
cylinder (its normals are all perpendicular to the axis, so the axis is the direction in
which the normals spread least; the radius comes from a circle fitted to the points seen
along the axis). A region none of them fits is searched for flat parts,
and what remains stays free-form: it is written as its triangles.

Pure numpy/scipy: nothing here needs OpenCascade.
"""

from dataclasses import dataclass, field

import numpy as np
import trimesh
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

PLANE = "plane"
CYLINDER = "cylinder"
SPHERE = "sphere"
FREEFORM = "freeform"

SMOOTH_DEGREES = 30.0  # neighbouring faces bending less than this belong to the same smooth patch
PLANE_GROW_DEGREES = 4.0  # a free-form patch's faces within this of a seed's normal may form a plane


@dataclass
class Region:
    kind: str
    faces: np.ndarray  # indices into the mesh's faces
    area: float
    # plane: normal, offset (n·x = offset); cylinder: axis point, direction, radius; sphere: centre, radius
    params: dict = field(default_factory=dict)
    rms: float = 0.0  # fit residual (mm)

    def project(self, points: np.ndarray) -> np.ndarray:
        """The closest points on this region's surface (free-form: unchanged)."""
        if self.kind == PLANE:
            n = self.params["normal"]
            return points - np.outer(points @ n - self.params["offset"], n)
        if self.kind == CYLINDER:
            p0, a, r = self.params["point"], self.params["axis"], self.params["radius"]
            rel = points - p0
            along = rel @ a
            radial = rel - np.outer(along, a)
            length = np.linalg.norm(radial, axis=1, keepdims=True)
            return p0 + np.outer(along, a) + radial / np.maximum(length, 1e-12) * r
        if self.kind == SPHERE:
            c, r = self.params["center"], self.params["radius"]
            rel = points - c
            return c + rel / np.maximum(np.linalg.norm(rel, axis=1, keepdims=True), 1e-12) * r
        return points


def _tolerance(mesh: trimesh.Trimesh) -> float:
    """How far a point may lie from its fitted surface: 0.2 % of the diagonal, at least 0.01 mm."""
    return max(2e-3 * float(np.linalg.norm(mesh.extents)), 0.01)


def _patches(mesh: trimesh.Trimesh, faces: np.ndarray | None, max_degrees: float) -> list[np.ndarray]:
    """Groups of faces (within `faces`, or all) joined by edges that bend less than `max_degrees`."""
    count = len(mesh.faces)
    pairs = mesh.face_adjacency
    keep = mesh.face_adjacency_angles < np.radians(max_degrees)
    if faces is not None:
        inside = np.zeros(count, bool)
        inside[faces] = True
        keep &= inside[pairs[:, 0]] & inside[pairs[:, 1]]
    pairs = pairs[keep]
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(count, count))
    _n, labels = connected_components(graph, directed=False)
    chosen = np.arange(count) if faces is None else np.asarray(faces)
    order = np.argsort(labels[chosen], kind="stable")
    chosen, sorted_labels = chosen[order], labels[chosen][order]
    splits = np.flatnonzero(np.diff(sorted_labels)) + 1
    return np.split(chosen, splits)


def _points(mesh: trimesh.Trimesh, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The region's vertices, and the area each stands for (a third of each adjoining face)."""
    corners = mesh.faces[faces].ravel()
    weights = np.repeat(mesh.area_faces[faces] / 3.0, 3)
    unique, inverse = np.unique(corners, return_inverse=True)
    return mesh.vertices[unique], np.bincount(inverse, weights=weights)


def fit_plane(mesh, faces, tolerance) -> Region | None:
    points, weights = _points(mesh, faces)
    if len(points) < 3 or weights.sum() <= 0:
        return None
    centre = np.average(points, axis=0, weights=weights)
    rel = points - centre
    _values, vectors = np.linalg.eigh((rel * weights[:, None]).T @ rel)
    normal = vectors[:, 0]
    if float(np.average(mesh.face_normals[faces] @ normal, weights=mesh.area_faces[faces])) < 0:
        normal = -normal
    distance = rel @ normal
    rms = float(np.sqrt(np.average(distance ** 2, weights=weights)))
    if rms > tolerance or np.abs(distance).max() > 3 * tolerance:
        return None
    return Region(PLANE, np.asarray(faces), float(mesh.area_faces[faces].sum()),
                  {"normal": normal, "offset": float(centre @ normal)}, rms)


def _circle(xy: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre and radius of the circle through 2-D points (algebraic fit, then Gauss-Newton)."""
    a = np.column_stack([2 * xy, np.ones(len(xy))])
    b = (xy ** 2).sum(axis=1)
    w = np.sqrt(weights)
    solution, *_ = np.linalg.lstsq(a * w[:, None], b * w, rcond=None)
    centre = solution[:2]
    radius = float(np.sqrt(max(solution[2] + centre @ centre, 1e-18)))
    for _step in range(10):
        rel = xy - centre
        dist = np.maximum(np.linalg.norm(rel, axis=1), 1e-12)
        residual = dist - radius
        jacobian = np.column_stack([-rel / dist[:, None], -np.ones(len(xy))])
        delta, *_ = np.linalg.lstsq(jacobian * w[:, None], -residual * w, rcond=None)
        centre, radius = centre + delta[:2], radius + float(delta[2])
        if np.abs(delta).max() < 1e-10:
            break
    return centre, abs(radius)


def fit_cylinder(mesh, faces, tolerance) -> Region | None:
    normals, areas = mesh.face_normals[faces], mesh.area_faces[faces]
    if len(faces) < 4:
        return None
    _values, vectors = np.linalg.eigh((normals * areas[:, None]).T @ normals)
    axis = vectors[:, 0]
    if float(np.sqrt(np.average((normals @ axis) ** 2, weights=areas))) > 0.1:
        return None  # the normals do not all lie across one direction
    points, weights = _points(mesh, faces)
    u = np.cross(axis, [1.0, 0, 0] if abs(axis[0]) < 0.9 else [0, 1.0, 0])
    u /= np.linalg.norm(u)
    v = np.cross(axis, u)
    xy = np.column_stack([points @ u, points @ v])
    centre, radius = _circle(xy, weights)
    residual = np.linalg.norm(xy - centre, axis=1) - radius
    rms = float(np.sqrt(np.average(residual ** 2, weights=weights)))
    # a cylinder much larger than the region is a slightly bent plane, not a hole or a boss
    if rms > tolerance or np.abs(residual).max() > 3 * tolerance or radius > 2 * float(np.linalg.norm(mesh.extents)):
        return None
    along = points @ axis
    point = centre[0] * u + centre[1] * v + along.min() * axis
    return Region(CYLINDER, np.asarray(faces), float(areas.sum()),
                  {"point": point, "axis": axis, "radius": radius, "length": float(np.ptp(along))}, rms)


def fit_sphere(mesh, faces, tolerance) -> Region | None:
    points, weights = _points(mesh, faces)
    if len(points) < 8:
        return None
    a = np.column_stack([2 * points, np.ones(len(points))])
    b = (points ** 2).sum(axis=1)
    w = np.sqrt(weights)
    solution, *_ = np.linalg.lstsq(a * w[:, None], b * w, rcond=None)
    centre = solution[:3]
    radius = float(np.sqrt(max(solution[3] + centre @ centre, 1e-18)))
    residual = np.linalg.norm(points - centre, axis=1) - radius
    rms = float(np.sqrt(np.average(residual ** 2, weights=weights)))
    if rms > tolerance or np.abs(residual).max() > 3 * tolerance or radius > float(np.linalg.norm(mesh.extents)):
        return None
    return Region(SPHERE, np.asarray(faces), float(mesh.area_faces[faces].sum()),
                  {"center": centre, "radius": radius}, rms)


def _planes_within(mesh, faces, tolerance) -> list[Region]:
    """Flat parts of a patch no single surface fits: faces grown from seeds along nearly equal normals."""
    found = []
    normals = mesh.face_normals
    remaining = set(int(f) for f in faces)
    minimum_area = 0.01 * float(mesh.area)
    neighbours: dict[int, list[int]] = {}
    for a, b in mesh.face_adjacency:
        if a in remaining and b in remaining:
            neighbours.setdefault(int(a), []).append(int(b))
            neighbours.setdefault(int(b), []).append(int(a))
    cos_limit = np.cos(np.radians(PLANE_GROW_DEGREES))
    for seed in sorted(remaining, key=lambda f: -mesh.area_faces[f]):
        if seed not in remaining:
            continue
        grown, stack = {seed}, [seed]
        while stack:
            face = stack.pop()
            for other in neighbours.get(face, ()):
                if other in remaining and other not in grown and normals[other] @ normals[seed] > cos_limit:
                    grown.add(other)
                    stack.append(other)
        if len(grown) < 2 or mesh.area_faces[list(grown)].sum() < minimum_area:
            continue
        region = fit_plane(mesh, np.array(sorted(grown)), tolerance)
        if region is not None:
            found.append(region)
            remaining -= grown
    return found


def segment(mesh: trimesh.Trimesh) -> list[Region]:
    """Regions covering every face of the mesh: fitted planes and cylinders, and the free-form rest."""
    tolerance = _tolerance(mesh)
    regions: list[Region] = []
    for patch in _patches(mesh, None, SMOOTH_DEGREES):
        # spheres are recognised by fit_sphere but not yet built as faces (OpenCascade needs their poles and
        # seam placed with care), so they stay free-form here
        region = fit_plane(mesh, patch, tolerance) or fit_cylinder(mesh, patch, tolerance)
        if region is not None:
            regions.append(region)
            continue
        planes = _planes_within(mesh, patch, tolerance)
        regions.extend(planes)
        used = np.concatenate([p.faces for p in planes]) if planes else np.array([], int)
        rest = np.setdiff1d(patch, used)
        for part in (_patches(mesh, rest, SMOOTH_DEGREES) if len(rest) else []):
            fitted = fit_cylinder(mesh, part, tolerance) if len(part) >= 4 else None
            regions.append(fitted or Region(FREEFORM, part, float(mesh.area_faces[part].sum())))
    return regions
