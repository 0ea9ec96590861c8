"""Stage 5: a closed surface through the reconstructed points (screened Poisson, pycolmap).

The dense points of the densify stage are used when there are any, else the sparse
points, whose normals are estimated from their neighbours (PCA) and turned towards the
cameras that saw them: Poisson needs them to know inside from outside. The octree
depth follows the number of points, and parts of the surface far from any point are
trimmed away (cleaning closes the openings).
"""

import os

# OpenMP threads (Poisson, bundle adjustment) sleep rather than spin while they wait: the
# workers share their cores. Read when pycolmap is first loaded.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import shutil

import numpy as np
import pycolmap
import trimesh
from django.utils.translation import gettext as _

from reconstruction.pipeline import ScanFailed

NEIGHBOURS = 12
# Octree depth by number of points: (at most this many points, depth). The dense points are
# thinned to about 1/300 of their region's diagonal, which depth 8 resolves; deeper costs
# three to four times the time per level for no measurable gain on the rendered benchmark.
POISSON_DEPTHS = [(300_000, 8)]
POISSON_MAX_DEPTH = 9
# Surface whose sample density is below this is removed (COLMAP's trim of PoissonRecon) when meshing
# dense points: the balloons Poisson blows over unseen parts. Cleaning closes the openings; a
# harder trim leaves openings too large for that (rendered benchmark: 0.27 % error at 5, 0.32 % at
# 0, 0.39 % at 7).
POISSON_TRIM = 5
# A surface with more faces than this is rebuilt one octree level coarser: cleaning a mesh of a
# million faces takes more memory than a worker has (the 66 skull photos at depth 8).
MAX_FACES = 600_000
MIN_DEPTH = 6


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


def write_ply(path, points, normals) -> None:
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(points)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property float nx\nproperty float ny\nproperty float nz\nend_header\n"
    )
    with open(path, "wb") as handle:
        handle.write(header.encode("ascii"))
        handle.write(np.hstack([points, normals]).astype("<f4").tobytes())


def poisson_depth(count: int) -> int:
    for most, depth in POISSON_DEPTHS:
        if count <= most:
            return depth
    return POISSON_MAX_DEPTH


def sparse_cloud(context, cloud) -> int:
    """Write the sparse points with oriented normals; returns how many."""
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
    write_ply(cloud, points, oriented_normals(points, viewpoints))
    return len(points)


def run(context) -> None:
    cloud = context.work_dir / "points.ply"
    dense = context.work_dir / "dense.ply"
    if dense.exists():
        shutil.copyfile(dense, cloud)
        count, trim = int(context.report.get("densify", {}).get("points", 0)), POISSON_TRIM
        context.report["meshed_from"] = "dense points"
    else:
        count, trim = sparse_cloud(context, cloud), 0
        context.report["meshed_from"] = "sparse points"
    context.checkpoint(0.4)
    options = pycolmap.PoissonMeshingOptions()
    options.depth = poisson_depth(count)
    options.trim = trim
    options.num_threads = 2
    mesh_path = context.work_dir / "poisson.ply"
    while True:
        mesh_path.unlink(missing_ok=True)
        pycolmap.poisson_meshing(cloud, mesh_path, options)
        if not mesh_path.exists() or mesh_path.stat().st_size == 0:
            raise ScanFailed(_("No surface could be built from the photos. Take more photos from more directions."))
        mesh = trimesh.load(mesh_path, force="mesh")
        if len(mesh.faces) <= MAX_FACES or options.depth <= MIN_DEPTH:
            break
        options.depth -= 1
        context.checkpoint(0.7)
    context.report["raw_mesh_faces"] = int(len(mesh.faces))
    context.report["poisson_depth"] = options.depth
