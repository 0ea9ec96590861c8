"""Stage 4: a closed surface through the reconstructed points (screened Poisson, pycolmap).

Each point's normal is estimated from its neighbours (PCA) and turned towards the
cameras that saw it, which is what Poisson needs to know inside from outside.
This CPU path works from the sparse points; the dense CUDA path comes with GPU workers.
"""

import numpy as np
import pycolmap
import trimesh
from django.utils.translation import gettext as _

from reconstruction.pipeline import ScanFailed

NEIGHBOURS = 12


def oriented_normals(points: np.ndarray, towards: np.ndarray) -> np.ndarray:
    from scipy.spatial import cKDTree

    tree = cKDTree(points)
    k = min(NEIGHBOURS, len(points))
    _distances, neighbours = tree.query(points, k=k)
    patches = points[np.asarray(neighbours).reshape(len(points), k)]
    patches = patches - patches.mean(axis=1, keepdims=True)
    # The normal is the direction of least spread: the last right-singular vector of each patch.
    _u, _s, vt = np.linalg.svd(patches, full_matrices=False)
    normals = vt[:, -1, :]
    flip = np.einsum("ij,ij->i", normals, towards - points) < 0
    normals[flip] *= -1
    return normals


def _write_ply(path, points, normals) -> None:
    header = (
        "ply\nformat ascii 1.0\n"
        f"element vertex {len(points)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property float nx\nproperty float ny\nproperty float nz\nend_header\n"
    )
    rows = np.hstack([points, normals])
    with open(path, "w") as handle:
        handle.write(header)
        np.savetxt(handle, rows, fmt="%.6f")


def run(context) -> None:
    model = pycolmap.Reconstruction(context.work_dir / "model")
    points, viewpoints = [], []
    centres = {image_id: image.projection_center() for image_id, image in model.images.items()}
    for point in model.points3D.values():
        seen_from = [centres[element.image_id] for element in point.track.elements if element.image_id in centres]
        if not seen_from:
            continue
        points.append(point.xyz)
        viewpoints.append(np.mean(seen_from, axis=0))
    if len(points) < 50:
        raise ScanFailed(_(
            "Only %(n)s points of the surface could be found, too few for a model. Take sharper photos with more "
            "overlap, and avoid shiny or plain single-coloured surfaces (a light dusting of powder helps)."
        ) % {"n": len(points)})
    points, viewpoints = np.asarray(points), np.asarray(viewpoints)
    context.checkpoint(0.2)
    normals = oriented_normals(points, viewpoints)
    cloud = context.work_dir / "points.ply"
    _write_ply(cloud, points, normals)
    context.checkpoint(0.4)
    options = pycolmap.PoissonMeshingOptions()
    options.depth = 8
    options.trim = 0
    mesh_path = context.work_dir / "poisson.ply"
    pycolmap.poisson_meshing(cloud, mesh_path, options)
    if not mesh_path.exists() or mesh_path.stat().st_size == 0:
        raise ScanFailed(_("No surface could be built from the photos. Take more photos from more directions."))
    mesh = trimesh.load(mesh_path, force="mesh")
    context.report["raw_mesh_faces"] = int(len(mesh.faces))
