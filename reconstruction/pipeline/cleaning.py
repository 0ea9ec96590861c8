"""Stage 5: keep the object, drop floaters, close holes, orient it to stand flat on the bed.

When the object stood on a surface that the photos show (the marker sheet, a table),
that surface is cut away with everything below it and the object is stood on it:
the triangulated marker sheet gives the plane when there is one, otherwise a plane is
looked for (RANSAC) under the points, accepted only when it clearly carries the object.
"""

from dataclasses import dataclass

import numpy as np
import trimesh
from django.utils.translation import gettext as _

from reconstruction.pipeline import ScanFailed


def close_holes(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Close every boundary loop with a fan around its centroid, oriented like its neighbours.

    trimesh fills only holes of three or four edges; Poisson surfaces may keep larger
    openings where the points were sparse.
    """
    faces = mesh.faces
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    undirected = np.sort(directed, axis=1)
    _unique, inverse, counts = np.unique(undirected, axis=0, return_inverse=True, return_counts=True)
    boundary = directed[counts[inverse.reshape(-1)] == 1]
    if not len(boundary):
        return mesh
    following = {int(a): int(b) for a, b in boundary}
    vertices = list(map(tuple, mesh.vertices))
    new_faces = []
    while following:
        start, loop = next(iter(following)), []
        node = start
        while node in following:
            loop.append(node)
            node = following.pop(node)
        if len(loop) < 3:
            continue
        centre = len(vertices)
        vertices.append(tuple(mesh.vertices[loop].mean(axis=0)))
        for a, b in zip(loop, loop[1:] + loop[:1], strict=True):
            new_faces.append((b, a, centre))  # the boundary runs a->b in its face, so the cap runs b->a
    if not new_faces:
        return mesh
    return trimesh.Trimesh(vertices=np.asarray(vertices), faces=np.vstack([faces, np.asarray(new_faces)]),
                           process=True)


def stand_flat(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Rotate so that the mesh rests on its most stable face, then put it on z = 0 centred."""
    try:
        # On the hull with the mesh's centre of mass: the same poses, without walking every face of a dense
        # mesh. A self-intersecting surface can put its centre of mass outside its hull, where trimesh would
        # search for a valid one forever: the hull's own centre stands in then.
        hull = mesh.convex_hull
        centre = mesh.center_mass
        if not np.all(np.einsum("ij,ij->i", centre - hull.triangles_center, hull.face_normals) < 0):
            centre = hull.center_mass
        transforms, probabilities = trimesh.poses.compute_stable_poses(hull, center_mass=centre, n_samples=1)
        if len(transforms):
            mesh.apply_transform(transforms[int(np.argmax(probabilities))])
    except Exception:  # a degenerate hull has no stable pose: keep its orientation
        pass
    low = mesh.bounds[0]
    centre = mesh.bounds.mean(axis=0)
    mesh.apply_translation([-centre[0], -centre[1], -low[2]])
    return mesh


@dataclass
class SupportPlane:
    origin: np.ndarray  # a point on the plane (model units)
    axes: np.ndarray  # rows: in-plane x, in-plane y, normal (up, towards the cameras)
    margin: float  # cut this far above the plane (model units)
    footprint: np.ndarray | None = None  # 2D points (plane frame) whose hull is where the object may stand
    source: str = "plane"

    def to_plane(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points) - self.origin) @ self.axes.T


def _frame(normal: np.ndarray) -> np.ndarray:
    normal = normal / np.linalg.norm(normal)
    helper = np.eye(3)[int(np.argmin(np.abs(normal)))]
    x = np.cross(helper, normal)
    x /= np.linalg.norm(x)
    return np.vstack([x, np.cross(normal, x), normal])


def _hull_area(points2d: np.ndarray) -> float:
    from scipy.spatial import ConvexHull

    try:
        return float(ConvexHull(points2d).volume)
    except Exception:  # fewer than three points or all on a line
        return 0.0


def _inside_hull(hull_points: np.ndarray, points: np.ndarray) -> np.ndarray:
    from scipy.spatial import ConvexHull, Delaunay

    try:
        corners = hull_points[ConvexHull(hull_points).vertices]
        return Delaunay(corners).find_simplex(points) >= 0
    except Exception:
        return np.zeros(len(points), bool)


RANSAC_ROUNDS = 300
MIN_PLANE_SHARE = 0.25  # of the points
MIN_CAMERAS_ABOVE = 0.9
MIN_ABOVE = 0.9  # of the points off the plane
MIN_FOOTPRINT_RATIO = 1.5  # the support is wider than what stands on it


def find_support_plane(points: np.ndarray, cameras: np.ndarray, *, seed: int = 0) -> SupportPlane | None:
    """The surface the object stands on, or None when the points show no such surface.

    The dominant plane (RANSAC) counts as the support only when the cameras are above it,
    almost nothing lies below it, something stands on it and it reaches wider than that.
    """
    points = np.asarray(points, float)
    if len(points) < 200 or len(cameras) < 2:
        return None
    rng = np.random.default_rng(seed)
    if len(points) > 20000:
        points = points[rng.choice(len(points), 20000, replace=False)]
    low, high = np.percentile(points, [2, 98], axis=0)
    threshold = 0.005 * float(np.linalg.norm(high - low))
    best, best_count = None, 0
    for _round in range(RANSAC_ROUNDS):
        a, b, c = points[rng.choice(len(points), 3, replace=False)]
        normal = np.cross(b - a, c - a)
        length = np.linalg.norm(normal)
        if length < 1e-12:
            continue
        normal /= length
        count = int((np.abs((points - a) @ normal) < threshold).sum())
        if count > best_count:
            best, best_count = (a, normal), count
    if best is None or best_count < MIN_PLANE_SHARE * len(points):
        return None
    a, normal = best
    inliers = points[np.abs((points - a) @ normal) < threshold]
    centre = inliers.mean(axis=0)
    normal = np.linalg.svd(inliers - centre, full_matrices=False)[2][-1]  # least-squares refit
    if np.mean((cameras - centre) @ normal > 0) < 0.5:
        normal = -normal
    if np.mean((cameras - centre) @ normal > threshold) < MIN_CAMERAS_ABOVE:
        return None
    height = (points - centre) @ normal
    on_plane = np.abs(height) < threshold
    above = height >= threshold
    if above.sum() < 0.05 * len(points) or above.sum() < MIN_ABOVE * (~on_plane).sum():
        return None
    axes = _frame(normal)
    flat = (points - centre) @ axes[:2].T
    if _hull_area(flat[on_plane]) < MIN_FOOTPRINT_RATIO * _hull_area(flat[above]):
        return None
    if _inside_hull(flat[on_plane], flat[above]).mean() < 0.8:
        return None
    spread = float(np.sqrt(np.mean(height[on_plane] ** 2)))
    return SupportPlane(origin=centre, axes=axes, margin=max(3 * spread, threshold), footprint=flat[on_plane],
                        source="table")


def sheet_plane(sheet) -> SupportPlane:
    """The support plane given by a triangulated marker sheet: the paper, cut 1 mm above."""
    from reconstruction import markers

    width, height = max(paper[0] for paper in markers.PAPERS_MM.values()), max(
        paper[1] for paper in markers.PAPERS_MM.values())
    paper = np.array([[-width, -height], [width, -height], [width, height], [-width, height]]) / 2 / sheet.factor
    return SupportPlane(origin=np.asarray(sheet.origin), axes=np.asarray(sheet.rotation).T, margin=1.0 / sheet.factor,
                        footprint=paper, source="marker sheet")


def cut_below(mesh: trimesh.Trimesh, origin: np.ndarray, normal: np.ndarray) -> trimesh.Trimesh:
    """The part of the mesh on the normal's side of the plane; cut faces are split along it (left open)."""
    vertices, faces = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    height = (vertices - origin) @ normal
    up = height >= 0
    count = up[faces].sum(axis=1)
    kept = [faces[count == 3]]
    # the one vertex on its own side first, the cyclic order (and so the orientation) kept
    crossing = faces[(count == 1) | (count == 2)]
    lonely = up[crossing] != (up[crossing].sum(axis=1, keepdims=True) >= 2)
    alone = np.argmax(lonely, axis=1)
    rolled = np.array([np.roll(face, -shift) for face, shift in zip(crossing, alone, strict=True)]).reshape(-1, 3)
    edges = np.vstack([np.sort(rolled[:, [0, 1]], axis=1), np.sort(rolled[:, [0, 2]], axis=1)])
    unique, inverse = np.unique(edges, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    h0, h1 = height[unique[:, 0]], height[unique[:, 1]]
    t = h0 / (h0 - h1)
    cuts = vertices[unique[:, 0]] + t[:, None] * (vertices[unique[:, 1]] - vertices[unique[:, 0]])
    first = len(vertices) + inverse[: len(rolled)]  # on edge a-b
    second = len(vertices) + inverse[len(rolled):]  # on edge a-c
    a, b, c = rolled[:, 0], rolled[:, 1], rolled[:, 2]
    single = up[a]  # a above alone: one triangle; a below alone: a quad of b, c and the two cuts
    kept.append(np.column_stack([a, first, second])[single])
    quads = ~single
    kept.append(np.column_stack([first, b, c])[quads])
    kept.append(np.column_stack([first, c, second])[quads])
    result = trimesh.Trimesh(vertices=np.vstack([vertices, cuts]), faces=np.vstack(kept), process=True)
    result.remove_unreferenced_vertices()
    return result


def remove_support(mesh: trimesh.Trimesh, plane: SupportPlane) -> trimesh.Trimesh:
    """Cut the support and all below it away, keep the object on it, close it and stand it at z = 0."""
    normal = plane.axes[2]
    above = cut_below(mesh, plane.origin + plane.margin * normal, normal)
    parts = above.split(only_watertight=False) if len(above.faces) else []
    if not len(parts):
        raise ScanFailed(_("Nothing was found standing on the surface under the object. Take photos that show the "
                           "object from all sides, not only the surface it stands on."))
    if plane.footprint is not None:
        centres = plane.to_plane(np.array([part.vertices.mean(axis=0) for part in parts]))[:, :2]
        standing = [part for part, inside in zip(parts, _inside_hull(plane.footprint, centres), strict=True) if inside]
        parts = standing or parts
    mesh = max(parts, key=lambda part: part.area)
    mesh = _repair(mesh)
    transform = np.eye(4)
    transform[:3, :3] = plane.axes
    transform[:3, 3] = -plane.axes @ plane.origin
    mesh.apply_transform(transform)
    low, high = mesh.bounds
    mesh.apply_translation([-(low[0] + high[0]) / 2, -(low[1] + high[1]) / 2, -low[2]])
    return mesh


def _repair(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    mesh.merge_vertices()
    mesh.update_faces(mesh.nondegenerate_faces())
    mesh.remove_unreferenced_vertices()
    trimesh.repair.fill_holes(mesh)
    if not mesh.is_watertight:
        mesh = close_holes(mesh)
    trimesh.repair.fix_normals(mesh)
    return mesh


def _support_plane(context) -> SupportPlane | None:
    from reconstruction.pipeline import scaling

    sheet = scaling.marker_sheet(context)
    if sheet is not None:
        return sheet_plane(sheet)
    model = context.work_dir / "model"
    if not model.is_dir():
        return None
    import pycolmap

    reconstruction = pycolmap.Reconstruction(model)
    cameras = np.array([image.projection_center() for image in reconstruction.images.values() if image.has_pose])
    cloud = context.work_dir / "points.ply"
    if cloud.exists():
        points = np.asarray(trimesh.load(cloud).vertices)
    else:
        points = np.array([point.xyz for point in reconstruction.points3D.values()])
    return find_support_plane(points, cameras) if len(points) else None


def run(context) -> None:
    mesh = trimesh.load(context.work_dir / "poisson.ply", force="mesh")
    plane = _support_plane(context)
    context.checkpoint(0.5)
    if plane is not None:
        mesh = remove_support(mesh, plane)
        context.report["support_removed"] = plane.source
    else:
        parts = mesh.split(only_watertight=False)
        if not len(parts):
            raise ScanFailed(_("The surface fell apart into nothing usable. Take more photos from more directions."))
        mesh = max(parts, key=lambda part: part.area)
        context.checkpoint(0.7)
        mesh = stand_flat(_repair(mesh))
    context.checkpoint(0.9)
    mesh.export(context.work_dir / "clean.ply")
    context.report["watertight"] = bool(mesh.is_watertight)
