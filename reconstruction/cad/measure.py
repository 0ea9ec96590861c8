"""How close a STEP solid is to the exact part it was made from.

Both are tessellated; each triangle of the truth finds the nearest triangle of the result,
which tells on which result face it landed. From that: the share of the true area that lies
on a face of the right type (plane on plane, cylinder on cylinder), and for each true plane
and cylinder the normal, radius and axis errors of the face that covers most of it.
"""

from collections import Counter

import numpy as np
import trimesh
from scipy.spatial import cKDTree

from reconstruction.cad import occ


def _angle_degrees(a, b) -> float:
    """The angle between two lines (directions without sign)."""
    cosine = abs(float(np.dot(a, b)) / (np.linalg.norm(a) * np.linalg.norm(b)))
    return float(np.degrees(np.arccos(min(1.0, cosine))))


def _fine(shape, deflection: float):
    """The shape's triangles cut to at most 1 % of its diagonal, so nearest triangles are near places."""
    mesh, labels = occ.tessellate(shape, deflection=deflection, angle=0.2)
    vertices, faces, index = trimesh.remesh.subdivide_to_size(
        mesh.vertices, mesh.faces, max_edge=0.01 * float(np.linalg.norm(mesh.extents)), return_index=True)
    return trimesh.Trimesh(vertices, faces, process=False), np.asarray(labels)[index]


def compare(truth, result, *, deflection: float = 0.05) -> dict:
    """Valid, closed, volume error and per-type scores of `result` (a shape) against `truth` (a shape)."""
    truth_mesh, truth_labels = _fine(truth, deflection)
    result_mesh, result_labels = _fine(result, deflection)
    truth_faces, result_faces = occ.faces(truth), occ.faces(result)
    truth_surfaces = [occ.surface_of(face) for face in truth_faces]
    result_surfaces = [occ.surface_of(face) for face in result_faces]
    _distance, nearest = cKDTree(result_mesh.triangles_center).query(truth_mesh.triangles_center)
    landed = np.asarray(result_labels)[nearest]
    areas = truth_mesh.area_faces
    truth_labels = np.asarray(truth_labels)
    right = np.array([truth_surfaces[t][0] == result_surfaces[r][0] for t, r in zip(truth_labels, landed, strict=True)])
    by_type: dict[str, list[float]] = {}
    normal_errors, diameter_errors, axis_errors = [], [], []
    for index, (kind, params) in enumerate(truth_surfaces):
        mine = truth_labels == index
        if not mine.any():
            continue
        share = by_type.setdefault(kind, [0.0, 0.0])
        share[0] += float(areas[mine & right].sum())
        share[1] += float(areas[mine].sum())
        main = Counter(landed[mine]).most_common(1)[0][0]
        found_kind, found = result_surfaces[main]
        if kind != found_kind:
            continue
        if kind == "plane":
            normal_errors.append(_angle_degrees(params["normal"], found["normal"]))
        elif kind == "cylinder":
            diameter_errors.append(abs(2 * found["radius"] - 2 * params["radius"]))
            axis_errors.append(_angle_degrees(params["axis"], found["axis"]))
    truth_volume = occ.volume(truth)
    return {
        "valid": occ.is_valid(result),
        "closed": occ.is_closed(result),
        "volume_error_percent": 100 * abs(occ.volume(result) - truth_volume) / truth_volume,
        "right_type_share": float(areas[right].sum() / areas.sum()),
        "right_type_by_kind": {kind: done / total for kind, (done, total) in by_type.items()},
        "faces": dict(Counter(kind for kind, _params in result_surfaces)),
        "max_plane_normal_error_degrees": max(normal_errors, default=None),
        "max_diameter_error_mm": max(diameter_errors, default=None),
        "max_axis_error_degrees": max(axis_errors, default=None),
    }
