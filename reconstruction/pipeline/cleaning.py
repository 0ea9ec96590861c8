"""Stage 5: keep the object, drop floaters, close holes, orient it to stand flat on the bed."""

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
        transforms, probabilities = trimesh.poses.compute_stable_poses(mesh, n_samples=1)
        if len(transforms):
            mesh.apply_transform(transforms[int(np.argmax(probabilities))])
    except Exception:  # a degenerate hull has no stable pose: keep its orientation
        pass
    low = mesh.bounds[0]
    centre = mesh.bounds.mean(axis=0)
    mesh.apply_translation([-centre[0], -centre[1], -low[2]])
    return mesh


def run(context) -> None:
    mesh = trimesh.load(context.work_dir / "poisson.ply", force="mesh")
    parts = mesh.split(only_watertight=False)
    if not len(parts):
        raise ScanFailed(_("The surface fell apart into nothing usable. Take more photos from more directions."))
    mesh = max(parts, key=lambda part: part.area)
    context.checkpoint(0.3)
    mesh.merge_vertices()
    mesh.update_faces(mesh.nondegenerate_faces())
    mesh.remove_unreferenced_vertices()
    trimesh.repair.fill_holes(mesh)
    if not mesh.is_watertight:
        mesh = close_holes(mesh)
    trimesh.repair.fix_normals(mesh)
    context.checkpoint(0.7)
    mesh = stand_flat(mesh)
    mesh.export(context.work_dir / "clean.ply")
    context.report["watertight"] = bool(mesh.is_watertight)
