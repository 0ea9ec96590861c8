"""STEP output: fitted planes and cylinders, the faceted fallback, bad meshes, the report, downloads."""

import numpy as np
import pytest
import trimesh
from django.core.files.base import ContentFile
from django.urls import reverse

from reconstruction import cad, services
from reconstruction.cad import occ, parts
from reconstruction.pipeline.exporting import write_step
from reconstruction.report_text import report_summary, step_sentences


def reimported(path):
    shape = occ.read_step(path)
    assert occ.is_valid(shape) and occ.is_closed(shape)
    return shape


def truth(part, deflection=0.05):
    mesh, _labels = occ.tessellate(part(), deflection=deflection, angle=0.3)
    assert mesh.is_watertight
    return mesh


def test_a_box_becomes_six_plane_faces(tmp_path):
    report = cad.mesh_to_step(truth(parts.box), tmp_path / "box.step")
    assert report["method"] == "analytic" and report["planes"] == 6 and report["cylinders"] == []
    assert "AUTOMOTIVE_DESIGN" in (tmp_path / "box.step").read_text()  # AP214
    shape = reimported(tmp_path / "box.step")
    kinds = [occ.surface_of(face)[0] for face in occ.faces(shape)]
    assert kinds == ["plane"] * 6
    assert occ.volume(shape) == pytest.approx(40 * 30 * 20, rel=1e-4)


def test_a_block_with_a_hole_gets_a_cylinder_of_the_right_diameter(tmp_path):
    report = cad.mesh_to_step(truth(parts.block_with_hole), tmp_path / "block.step")
    assert report["method"] == "analytic" and report["planes"] == 6
    assert len(report["cylinders"]) == 1 and report["cylinders"][0]["diameter_mm"] == pytest.approx(10, abs=0.1)
    shape = reimported(tmp_path / "block.step")
    cylinders = [params for kind, params in map(occ.surface_of, occ.faces(shape)) if kind == "cylinder"]
    assert len(cylinders) == 1 and 2 * cylinders[0]["radius"] == pytest.approx(10, abs=0.1)
    assert abs(cylinders[0]["axis"] @ [0, 0, 1]) == pytest.approx(1, abs=1e-4)
    assert occ.volume(shape) == pytest.approx(occ.volume(parts.block_with_hole()), rel=0.01)
    assert step_sentences(report)[0] == ("The STEP file is a solid for CAD programs; recognised: 6 planes, "
                                         "1 cylinder: Ø 10.00 mm.")


def test_an_organic_shape_falls_back_to_a_closed_faceted_solid(tmp_path):
    blob = trimesh.creation.icosphere(subdivisions=2, radius=20)
    blob.vertices *= [1.0, 0.8, 0.6]
    blob.vertices += np.random.default_rng(3).normal(0, 0.5, blob.vertices.shape)
    report = cad.mesh_to_step(blob, tmp_path / "blob.step")
    assert report["method"] == "faceted" and report["fallback"] and report["planes"] == 0
    shape = reimported(tmp_path / "blob.step")
    assert occ.volume(shape) == pytest.approx(blob.volume, rel=1e-3)
    assert "faceted" in " ".join(step_sentences(report))


def test_a_large_mesh_is_simplified_first(tmp_path):
    report = cad.mesh_to_step(trimesh.creation.icosphere(subdivisions=3, radius=20), tmp_path / "s.step",
                              max_faces=300)
    assert report["simplified_to_faces"] <= 300
    reimported(tmp_path / "s.step")
    assert "simplified" in " ".join(step_sentences(report))


def _tube():
    """A cylinder without its end caps: open at both ends."""
    tube = trimesh.creation.cylinder(radius=5, height=20, sections=24)
    tube.update_faces(np.abs(tube.face_normals[:, 2]) < 0.5)
    tube.remove_unreferenced_vertices()
    return tube


@pytest.mark.parametrize("mesh, reason", [
    (None, cad.EMPTY),
    (trimesh.Trimesh(), cad.EMPTY),
    (trimesh.Trimesh(np.full((4, 3), np.nan), [[0, 1, 2], [0, 2, 3], [0, 3, 1], [1, 3, 2]], process=False),
     cad.CORRUPT),
    (trimesh.Trimesh(np.eye(4)[:, :3], [[0, 1, 2], [0, 2, 9], [0, 3, 1], [1, 3, 2]], process=False), cad.CORRUPT),
    (trimesh.Trimesh(np.zeros((4, 3)), [[0, 1, 2], [0, 2, 3], [0, 3, 1], [1, 3, 2]]), cad.EMPTY),
    (_tube(), cad.OPEN),
])
def test_a_bad_mesh_is_refused_clearly_and_nothing_is_written(tmp_path, mesh, reason):
    path = tmp_path / "bad.step"
    with pytest.raises(cad.StepFailed) as refused:
        cad.mesh_to_step(mesh, path)
    assert refused.value.reason == reason and refused.value.message
    assert not path.exists()
    # in the pipeline the scan goes on with its mesh; the report says why there is no STEP
    assert write_step(mesh, path) == {"error": reason, "detail": refused.value.message}
    assert not path.exists() and step_sentences({"error": reason})[0].startswith("No STEP file was made")


def test_a_mesh_missing_one_triangle_is_closed_and_still_becomes_a_solid(tmp_path):
    box = trimesh.creation.box(extents=(10, 10, 10)).subdivide()
    box.update_faces(np.arange(len(box.faces)) != 0)
    report = cad.mesh_to_step(box, tmp_path / "box.step")
    assert report["planes"] == 6
    assert occ.volume(reimported(tmp_path / "box.step")) == pytest.approx(1000, rel=1e-6)


def test_the_report_counts_equal_diameters():
    words = step_sentences({"method": "analytic", "planes": 12, "fitted_area_share": 0.97,
                            "cylinders": [{"diameter_mm": 24.02, "count": 1}, {"diameter_mm": 6.01, "count": 2}]})
    assert words[0].endswith("recognised: 12 planes, 3 cylinders: Ø 24.02 mm, Ø 6.01 mm ×2.")
    assert words[1].startswith("97 % of the surface")


@pytest.mark.django_db
def test_the_step_is_offered_in_portal_api_and_report(owner_client, customer_owner, api, partner, tmp_path):
    step = b"ISO-10303-21;\nEND-ISO-10303-21;\n"
    report = {"step": {"method": "analytic", "planes": 6, "cylinders": [{"diameter_mm": 10.0, "count": 1}],
                       "fitted_area_share": 1.0}}
    for organization in (customer_owner.organization, partner):
        job = services.scan_job_create(organization=organization, user=None, title="Bracket")
        job.mesh_stl.save("mesh.stl", ContentFile(b"solid x\nendsolid x\n"), save=False)
        job.cad_step.save("model.step", ContentFile(step), save=False)
        job.status, job.report = "succeeded", report
        job.save()
    portal_job, api_job = services.ScanJob.objects.order_by("pk")
    response = owner_client.get(reverse("scans:download", args=[portal_job.pk, "step"]))
    assert response.status_code == 200 and b"".join(response.streaming_content) == step
    assert response["Content-Type"] == "model/step" and "Bracket.step" in response["Content-Disposition"]
    page = owner_client.get(reverse("scans:detail", args=[portal_job.pk])).content.decode()
    assert "Download STEP" in page and "Ø 10.00 mm" in page
    assert [group["key"] for group in report_summary(portal_job)] == ["step"]
    links = api.get(f"/api/v1/scans/{api_job.pk}").json()["downloads"]
    assert set(links) == {"stl", "3mf", "step", "png", "ply"}
    assert b"".join(api.get(links["step"]).streaming_content) == step
    assert owner_client.get(reverse("scans:download", args=[api_job.pk, "step"])).status_code == 404  # not theirs
