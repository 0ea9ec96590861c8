"""Stage 5: keep the object, drop floaters, close holes, orient it to stand flat on the bed.

When the object stood on a surface that the photos show (the marker sheet, a table),
that surface is cut away with everything below it and the object is stood on it:
the triangulated marker sheet gives the plane when there is one, otherwise a plane is
looked for (RANSAC) in the dense points, accepted only when it clearly carries the object
(the cameras look at it from above, nothing lies under the object below it). Every piece
standing on it is kept; the face the object stood on is closed flat on the plane. The
result is turned so that its outline's smallest rectangle lies along x and y: its
bounding box then gives the sides a caliper would measure.
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


def _place(mesh: trimesh.Trimesh, matrix: np.ndarray) -> None:
    """Move the mesh, keeping in its metadata the whole move from the reconstruction's frame ("placed")."""
    mesh.apply_transform(matrix)
    mesh.metadata["placed"] = np.asarray(matrix) @ mesh.metadata.get("placed", np.eye(4))


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
            _place(mesh, transforms[int(np.argmax(probabilities))])
    except Exception:  # a degenerate hull has no stable pose: keep its orientation
        pass
    low = mesh.bounds[0]
    centre = mesh.bounds.mean(axis=0)
    _place(mesh, trimesh.transformations.translation_matrix([-centre[0], -centre[1], -low[2]]))
    return mesh


@dataclass
class SupportPlane:
    origin: np.ndarray  # a point on the plane (model units)
    axes: np.ndarray  # rows: in-plane x, in-plane y, normal (up, towards the cameras)
    margin: float  # cut this far above the plane (model units)
    footprint: np.ndarray | None = None  # 2D points (plane frame) whose hull is where the object may stand
    source: str = "plane"
    viewpoints: np.ndarray | None = None  # the cameras over the plane (2D, plane frame): the object is among them

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


FOOTPRINT_CELLS = 64  # cells along the scene's diagonal for footprints
FOOTPRINT_MIN_POINTS = 3  # a cell with fewer points is noise, not a footprint


def _cells(points2d: np.ndarray, cell: float) -> np.ndarray:
    """One integer key per 2D point: the cell of a grid of `cell` it falls in."""
    index = np.floor(points2d / cell).astype(np.int64)
    return index[:, 0] * 1_000_003 + index[:, 1]


def _occupied(points2d: np.ndarray, cell: float) -> np.ndarray:
    """The cells that hold at least FOOTPRINT_MIN_POINTS of the points: a footprint that scattered outliers
    (depth noise over a textured table) do not blow up the way they do a convex hull."""
    if not len(points2d):
        return np.zeros(0, np.int64)
    keys, counts = np.unique(_cells(points2d, cell), return_counts=True)
    return keys[counts >= FOOTPRINT_MIN_POINTS]


def _inside_hull(hull_points: np.ndarray, points: np.ndarray) -> np.ndarray:
    from scipy.spatial import ConvexHull, Delaunay

    try:
        corners = hull_points[ConvexHull(hull_points).vertices]
        return Delaunay(corners).find_simplex(points) >= 0
    except Exception:
        return np.zeros(len(points), bool)


RANSAC_ROUNDS = 400
CANDIDATE_PLANES = 6  # the best distinct planes RANSAC found are tried in turn
MIN_PLANE_SHARE = 0.15  # of the points
MIN_CAMERAS_ABOVE = 0.9
MAX_BELOW_UNDER_OBJECT = 0.1  # of what stands on the plane: more below it means the plane cuts through the object
MIN_STANDING = 0.005  # of the points (and at least MIN_STANDING_POINTS): less above the plane is noise, not an object
MIN_STANDING_POINTS = 30
MIN_FOOTPRINT_RATIO = 1.5  # the support is wider than what stands on it
PLANE_THRESHOLD = 0.004  # inlier distance, of the diagonal of the bulk of the points


def _scene_scale(points: np.ndarray) -> float:
    """The diagonal of the bulk of the points (2nd to 98th percentile), robust to stray points."""
    low, high = np.percentile(points, [2, 98], axis=0)
    return float(np.linalg.norm(high - low)) or 1.0


def _ransac_planes(points: np.ndarray, threshold: float, rng) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(inlier count, point, unit normal) of the best distinct planes through the points, most inliers first."""
    found: list[tuple[int, np.ndarray, np.ndarray]] = []
    for _round in range(RANSAC_ROUNDS):
        a, b, c = points[rng.choice(len(points), 3, replace=False)]
        normal = np.cross(b - a, c - a)
        length = np.linalg.norm(normal)
        if length < 1e-12:
            continue
        normal = normal / length
        count = int((np.abs((points - a) @ normal) < threshold).sum())
        found.append((count, a, normal))
    found.sort(key=lambda item: -item[0])
    distinct: list[tuple[int, np.ndarray, np.ndarray]] = []
    for count, a, normal in found:
        if any(abs(normal @ other) > 0.97 and abs((a - origin) @ other) < 3 * threshold
               for _c, origin, other in distinct):
            continue
        distinct.append((count, a, normal))
        if len(distinct) == CANDIDATE_PLANES:
            break
    return distinct


def find_support_plane(points: np.ndarray, cameras: np.ndarray, *, seed: int = 0) -> SupportPlane | None:
    """The surface the object stands on, or None when the points show no such surface.

    The best planes RANSAC finds are tried, most inliers first; one counts as the support
    when the cameras look at it from one side (above), something stands on that side,
    hardly anything lies below it under what stands on it (else it cuts through the
    object: a large flat face of the object itself), and it reaches wider than what
    stands on it. The inlier distance follows the size of the scene and then the
    measured roughness of the plane, so that a table larger than the view or seen at a
    grazing angle (noisier depth) is still found whole.
    """
    points = np.asarray(points, float)
    cameras = np.asarray(cameras, float).reshape(-1, 3)
    if len(points) < 200 or len(cameras) < 2:
        return None
    rng = np.random.default_rng(seed)
    if len(points) > 20000:
        points = points[rng.choice(len(points), 20000, replace=False)]
    threshold = PLANE_THRESHOLD * _scene_scale(points)
    for count, a, normal in _ransac_planes(points, threshold, rng):
        if count < MIN_PLANE_SHARE * len(points):
            break
        plane = _as_support(points, cameras, a, normal, threshold)
        if plane is not None:
            return plane
    return None


def _as_support(points: np.ndarray, cameras: np.ndarray, a: np.ndarray, normal: np.ndarray,
                threshold: float) -> SupportPlane | None:
    inliers = points[np.abs((points - a) @ normal) < threshold]
    centre = inliers.mean(axis=0)
    normal = np.linalg.svd(inliers - centre, full_matrices=False)[2][-1]  # least-squares refit
    # the roughness of the plane sets the final inlier distance (depth noise grows at grazing angles)
    band = np.abs((points - centre) @ normal)
    near = band[band < 2 * threshold]
    spread = 1.4826 * float(np.median(near)) if len(near) else threshold
    threshold = float(np.clip(3 * spread, 0.5 * threshold, 2 * threshold))
    if np.mean((cameras - centre) @ normal > 0) < 0.5:
        normal = -normal
    if np.mean((cameras - centre) @ normal > threshold) < MIN_CAMERAS_ABOVE:
        return None
    height = (points - centre) @ normal
    on_plane = np.abs(height) < threshold
    above = height >= 2 * threshold  # clearly above: the plane's own noise stays out of the object's outline
    below = height <= -2 * threshold
    if above.sum() < max(MIN_STANDING * len(points), MIN_STANDING_POINTS):
        return None
    axes = _frame(normal)
    flat = (points - centre) @ axes[:2].T
    cell = _scene_scale(points) / FOOTPRINT_CELLS
    standing = _occupied(flat[above], cell)
    # below the plane beside the object is harmless (a floor seen past the table's edge); under it, it is not
    if below.any() and np.isin(_cells(flat[below], cell), standing).sum() > MAX_BELOW_UNDER_OBJECT * above.sum():
        return None
    if len(_occupied(flat[on_plane], cell)) < MIN_FOOTPRINT_RATIO * len(standing):
        return None
    if _inside_hull(flat[on_plane], flat[above]).mean() < 0.8:
        return None
    rms = float(np.sqrt(np.mean(height[on_plane] ** 2)))
    return SupportPlane(origin=centre, axes=axes, margin=max(3 * rms, threshold), footprint=flat[on_plane],
                        source="table", viewpoints=(cameras - centre) @ axes[:2].T)


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


MIN_PIECE_AREA = 0.01  # of the largest piece: smaller pieces standing on the support are crumbs of it
MIN_PIECE_HEIGHT = 4  # margins: a piece at least this tall is kept however thin (a pin, a fin)
MIN_FLOATER_AREA = 0.25  # of the largest piece: a piece that does not touch the support is kept only when large
MIN_POINT_SUPPORT = 0.75  # share of a piece's surface within a margin of a measured point: less is made up


def cut_and_cap(mesh: trimesh.Trimesh, origin: np.ndarray, normal: np.ndarray) -> trimesh.Trimesh:
    """The part of the mesh above the plane, each cross-section closed with a flat face on the plane.

    The cross-sections are triangulated as polygons with holes (a bore stays open); where
    a section is not a closed polygon the open rims are left to the repair that follows.
    """
    try:
        capped = mesh.slice_plane(origin, normal, cap=True)
    except Exception:  # an open or broken cross-section cannot be triangulated: cut without a cap
        capped = None
    if capped is None or not len(capped.faces):
        return cut_below(mesh, origin, normal)
    return capped


def _point_support(part: trimesh.Trimesh, tree, reach: float) -> float:
    """The share of the piece's surface (sampled) that has a measured point within `reach`."""
    samples = part.sample(min(2000, max(200, len(part.faces))), seed=0) if part.area > 0 else part.vertices
    distances, _index = tree.query(samples, distance_upper_bound=reach, workers=1)
    return float(np.mean(np.isfinite(distances)))


def standing_pieces(parts: list[trimesh.Trimesh], plane: SupportPlane, cut_height: float,
                    points: np.ndarray | None = None) -> list[trimesh.Trimesh]:
    """The pieces that stand on the support: each touches the cut, lies over the support and is not a crumb.

    Several pieces are all kept; thin tall ones (a pin, a fin) too. Pieces that float
    above without touching the support are kept only when they are large. With the
    measured points, a piece that hardly any of them lies on is dropped: the skin Poisson
    stretches over the rim of a table that nothing was measured on.
    """
    if points is not None and len(points) and len(parts) > 1:
        from scipy.spatial import cKDTree

        points = np.asarray(points)
        tree = cKDTree(points)
        # a margin, or twice the points' own spacing where they are sparser than that
        probe = points[np.random.default_rng(0).choice(len(points), min(len(points), 5000), replace=False)]
        spacing = float(np.median(tree.query(probe, k=2, workers=1)[0][:, 1])) if len(points) > 1 else 0.0
        reach = max(plane.margin, 2 * spacing)
        supported = [part for part in parts if _point_support(part, tree, reach) >= MIN_POINT_SUPPORT]
        parts = supported or parts
    if plane.footprint is not None:
        centres = plane.to_plane(np.array([part.vertices.mean(axis=0) for part in parts]))[:, :2]
        over = _inside_hull(plane.footprint, centres)
        parts = [part for part, inside in zip(parts, over, strict=True) if inside] or parts
    if plane.viewpoints is not None and len(plane.viewpoints) >= 3:
        # the photos were taken around the object: what lies beyond every camera is background on the table
        # (unless the photos were all taken from one side: then nothing lies among them and all stay)
        centres = plane.to_plane(np.array([part.vertices.mean(axis=0) for part in parts]))[:, :2]
        among = _inside_hull(plane.viewpoints, centres)
        if among.any():
            parts = [part for part, inside in zip(parts, among, strict=True) if inside]
    largest = max(part.area for part in parts)
    kept = []
    for part in parts:
        heights = plane.to_plane(part.vertices)[:, 2]
        touches = heights.min() <= cut_height + 1e-6 * max(1.0, abs(cut_height)) + 0.05 * plane.margin
        tall = heights.max() - cut_height >= MIN_PIECE_HEIGHT * plane.margin
        if touches and (part.area >= MIN_PIECE_AREA * largest or tall):
            kept.append(part)
        elif not touches and part.area >= MIN_FLOATER_AREA * largest:
            kept.append(part)
    return kept or [max(parts, key=lambda part: part.area)]


def remove_support(mesh: trimesh.Trimesh, plane: SupportPlane, points: np.ndarray | None = None) -> trimesh.Trimesh:
    """Cut the support and all below it away, keep what stands on it, close it flat and stand it at z = 0.

    The cut runs a small margin above the plane (the support's own roughness); the flat
    faces that close the cut are then lowered onto the plane, so that the object keeps
    its full height and a face it stood on is flat.
    """
    normal = plane.axes[2]
    above = cut_and_cap(mesh, plane.origin + plane.margin * normal, normal)
    parts = list(above.split(only_watertight=False)) if len(above.faces) else []
    if not len(parts):
        raise ScanFailed(_("Nothing was found standing on the surface under the object. Take photos that show the "
                           "object from all sides, not only the surface it stands on."))
    pieces = standing_pieces(parts, plane, plane.margin, points)
    mesh = trimesh.util.concatenate(pieces) if len(pieces) > 1 else pieces[0]
    transform = np.eye(4)
    transform[:3, :3] = plane.axes
    transform[:3, 3] = -plane.axes @ plane.origin
    _place(mesh, transform)
    on_cut = np.abs(mesh.vertices[:, 2] - plane.margin) <= 1e-6 * max(1.0, plane.margin) + 1e-9
    vertices = mesh.vertices.copy()
    vertices[on_cut, 2] = 0.0
    mesh = trimesh.Trimesh(vertices=vertices, faces=mesh.faces, process=True, metadata=dict(mesh.metadata))
    if mesh.is_watertight:  # the cut was capped: a cap may hold slivers, which repairing would open again
        trimesh.repair.fix_normals(mesh)
    else:
        mesh = _repair(mesh)
    mesh = align_in_plane(mesh)
    _place(mesh, trimesh.transformations.translation_matrix([0, 0, -mesh.bounds[0][2]]))
    return mesh


def align_in_plane(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Turn the mesh about z so that its outline's smallest enclosing rectangle lies along x and y.

    The bounding box then measures the object's sides as calipers would, whatever way it
    stood in the photos: the longest side entered scales the object, not a diagonal.
    """
    from scipy.spatial import ConvexHull

    flat = np.asarray(mesh.vertices)[:, :2]
    try:
        corners = flat[ConvexHull(flat).vertices]
    except Exception:
        return mesh
    edges = np.roll(corners, -1, axis=0) - corners
    angles = np.unique(np.mod(np.arctan2(edges[:, 1], edges[:, 0]), np.pi / 2))
    best, best_area = 0.0, np.inf
    for angle in angles:
        c, s = np.cos(angle), np.sin(angle)
        turned = corners @ np.array([[c, -s], [s, c]])
        area = float(np.prod(np.ptp(turned, axis=0)))
        if area < best_area - 1e-12:
            best, best_area = angle, area
    c, s = np.cos(best), np.sin(best)
    rotation = np.eye(4)
    rotation[:2, :2] = [[c, s], [-s, c]]
    _place(mesh, rotation)
    extents = mesh.extents
    if extents[1] > extents[0]:  # the longer side along x
        _place(mesh, trimesh.transformations.rotation_matrix(np.pi / 2, [0, 0, 1]))
    low, high = mesh.bounds
    _place(mesh, trimesh.transformations.translation_matrix([-(low[0] + high[0]) / 2, -(low[1] + high[1]) / 2, 0]))
    return mesh


def _repair(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    placed = mesh.metadata.get("placed")
    mesh.merge_vertices()
    mesh.update_faces(mesh.nondegenerate_faces())
    mesh.remove_unreferenced_vertices()
    trimesh.repair.fill_holes(mesh)
    if not mesh.is_watertight:
        mesh = close_holes(mesh)
    trimesh.repair.fix_normals(mesh)
    if placed is not None:
        mesh.metadata["placed"] = placed
    return mesh


def _measured_points(context) -> np.ndarray | None:
    cloud = context.work_dir / "points.ply"
    return np.asarray(trimesh.load(cloud).vertices) if cloud.exists() else None


def _support_plane(context, points: np.ndarray | None) -> SupportPlane | None:
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
    if points is None:
        points = np.array([point.xyz for point in reconstruction.points3D.values()])
    return find_support_plane(points, cameras) if len(points) else None


def run(context) -> None:
    mesh = trimesh.load(context.work_dir / "poisson.ply", force="mesh")
    points = _measured_points(context)
    plane = _support_plane(context, points)
    context.checkpoint(0.5)
    if plane is not None:
        mesh = remove_support(mesh, plane, points)
        context.report["support_removed"] = plane.source
    else:
        parts = mesh.split(only_watertight=False)
        if not len(parts):
            raise ScanFailed(_("The surface fell apart into nothing usable. Take more photos from more directions."))
        mesh = max(parts, key=lambda part: part.area)
        context.checkpoint(0.7)
        mesh = align_in_plane(stand_flat(_repair(mesh)))
    context.checkpoint(0.9)
    mesh.export(context.work_dir / "clean.ply")
    context.report["watertight"] = bool(mesh.is_watertight)
    # how the reconstruction's frame was moved onto the bed (evaluation maps the result back with it)
    context.report["clean_from_model"] = np.asarray(mesh.metadata.get("placed", np.eye(4))).round(9).tolist()
