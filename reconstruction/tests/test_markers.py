"""The marker sheet: its PDF, its detection in synthetic photos, the scale and the bed plane it gives."""

import re

import cv2
import numpy as np
import pycolmap
import pytest
import trimesh

from fablab.exceptions import InvalidInput
from fablab.tests.factories import MembershipFactory
from fablab.tests.helpers import ApiClient, assert_problem
from reconstruction import markers, services
from reconstruction.choices import ScaleMethod
from reconstruction.pipeline import Context, ScanFailed, cleaning, scaling

TRUE_FACTOR = 37.5  # millimetres per model unit in the synthetic scenes


# --- the PDF ----------------------------------------------------------------------------


def rasterise_pdf_rectangles(pdf: bytes, *, px_per_mm: float) -> np.ndarray:
    """Paint every filled rectangle of the (uncompressed) page black on white: the markers as printed."""
    media = re.search(rb"/MediaBox \[ 0 0 ([\d.]+) ([\d.]+) \]", pdf)
    width_pt, height_pt = float(media.group(1)), float(media.group(2))
    scale = px_per_mm / markers.MM
    image = np.full((round(height_pt * scale), round(width_pt * scale)), 255, np.uint8)
    rectangle = rb"(-?[\d.]+) (-?[\d.]+) (-?[\d.]+) (-?[\d.]+) re"
    for path in re.finditer(rb"\nn ((?:[-\d. ]+ re\s*)+)f\*?\n", pdf):  # filled paths made of rectangles
        for values in re.findall(rectangle, path.group(1)):
            x, y, w, h = (float(v) for v in values)
            # the pixels whose centres lie inside
            u0, u1 = (int(np.ceil(value * scale - 0.5)) for value in (x, x + w))
            v0, v1 = (int(np.ceil((height_pt - value) * scale - 0.5)) for value in (y + h, y))
            image[v0:v1, u0:u1] = 0
    return image


@pytest.mark.parametrize("paper", ["A4", "Letter"])
def test_pdf_prints_the_layout_whose_markers_decode_back(paper):
    pdf = markers.marker_sheet_pdf(paper=paper)
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    width, height = markers.PAPERS_MM[paper]
    media = re.search(rb"/MediaBox \[ 0 0 ([\d.]+) ([\d.]+) \]", pdf)
    assert float(media.group(1)) == pytest.approx(width * markers.MM, abs=0.01)
    assert float(media.group(2)) == pytest.approx(height * markers.MM, abs=0.01)
    assert b"100 %" in pdf and b"actual size" in pdf and b"50 mm" in pdf
    px_per_mm = 4.0  # no cell edge of either paper falls on a pixel centre
    found = markers.detect(rasterise_pdf_rectangles(pdf, px_per_mm=px_per_mm))
    assert sorted(found) == sorted(markers.LAYOUT)
    for marker_id, corners in found.items():
        # back to sheet millimetres (pixel centres at +0.5)
        x = (corners[:, 0] + 0.5) / px_per_mm - width / 2
        y = height / 2 - (corners[:, 1] + 0.5) / px_per_mm
        assert np.column_stack([x, y]) == pytest.approx(markers.LAYOUT[marker_id][:, :2], abs=0.3)


def test_layout_has_big_markers_a_clear_centre_and_fits_both_papers():
    corners = np.vstack(list(markers.LAYOUT.values()))
    assert len(markers.LAYOUT) >= 4 and markers.MARKER_MM >= 30
    for width, height in markers.PAPERS_MM.values():
        assert np.all(np.abs(corners[:, 0]) <= width / 2 - 8) and np.all(np.abs(corners[:, 1]) <= height / 2 - 8)
    x0, y0, x1, y1 = markers.CLEAR_AREA_MM
    inside = (corners[:, 0] > x0) & (corners[:, 0] < x1) & (corners[:, 1] > y0) & (corners[:, 1] < y1)
    assert not inside.any()
    for corner_set in markers.LAYOUT.values():
        assert np.linalg.norm(corner_set[0] - corner_set[1]) == pytest.approx(markers.MARKER_MM)


def test_unknown_paper_is_refused():
    with pytest.raises(InvalidInput, match="A4, Letter"):
        markers.marker_sheet_pdf(paper="A0")


# --- synthetic photos of the sheet --------------------------------------------------------


def look_at(centre: np.ndarray, target: np.ndarray) -> np.ndarray:
    """cam_from_world [R | t] of a COLMAP camera (x right, y down, z forward) at centre looking at target."""
    z = (target - centre) / np.linalg.norm(target - centre)
    x = np.cross([0.0, 0.0, -1.0], z)
    x /= np.linalg.norm(x)
    rotation = np.vstack([x, np.cross(z, x), z])
    return np.hstack([rotation, (-rotation @ centre)[:, None]])


def rotation_about(axis, angle: float) -> np.ndarray:
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


class Scene:
    """A marker sheet on a textured table photographed by known cameras with lens distortion.

    Model (world) coordinates are sheet millimetres divided by TRUE_FACTOR, turned and moved
    by a random rigid motion, as a reconstruction would have them.
    """

    def __init__(self, folder, *, views=5, size=(800, 600), k1=-0.08, hide=(), seed=1):
        rng = np.random.default_rng(seed)
        self.rotation, self.shift = rotation_about(rng.normal(size=3), 0.7), rng.normal(size=3)
        px_per_mm = 6.0
        paper_w, paper_h = markers.PAPERS_MM["A4"]
        sheet = markers.marker_sheet_image(px_per_mm=px_per_mm)
        for marker_id in hide:
            x0, y0 = markers.LAYOUT[marker_id][0][:2]
            u0, v0 = int((x0 + paper_w / 2) * px_per_mm) - 3, int((paper_h / 2 - y0) * px_per_mm) - 3
            side = int(markers.MARKER_MM * px_per_mm) + 6
            sheet[v0:v0 + side, u0:u0 + side] = 255
        sheet = cv2.GaussianBlur(sheet, (0, 0), 1.0)
        width, height = size
        camera = pycolmap.Camera.create_from_model_name(1, "SIMPLE_RADIAL", 700.0, width, height)
        camera.params = [700.0, width / 2, height / 2, k1]
        self.model = pycolmap.Reconstruction()
        self.model.add_camera_with_trivial_rig(camera)
        u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
        rays = np.column_stack([camera.cam_from_img(np.column_stack([u.ravel(), v.ravel()])), np.ones(u.size)])
        table = rng.integers(0, 255, (height // 10, width // 10), dtype=np.uint8)
        table = cv2.resize(table, size, interpolation=cv2.INTER_CUBIC)  # wood-like, not a grid of squares
        self.photos = folder / "photos"
        self.photos.mkdir(parents=True)
        for n in range(views):
            azimuth = 2 * np.pi * n / views + rng.uniform(-0.2, 0.2)
            elevation = np.radians(rng.uniform(45, 70))
            centre = rng.uniform(380, 460) * np.array(
                [np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)])
            pose = look_at(centre, rng.normal(scale=15, size=3) * [1, 1, 0])
            directions = rays @ pose[:, :3]  # rays in sheet millimetres
            depth = -centre[2] / directions[:, 2]
            hit = centre + depth[:, None] * directions
            map_x = ((hit[:, 0] + paper_w / 2) * px_per_mm - 0.5).reshape(height, width).astype(np.float32)
            map_y = ((paper_h / 2 - hit[:, 1]) * px_per_mm - 0.5).reshape(height, width).astype(np.float32)
            on_paper = (depth.reshape(height, width) > 0) & (map_x >= 0) & (map_x < sheet.shape[1] - 1) & (
                map_y >= 0) & (map_y < sheet.shape[0] - 1)
            picture = np.where(on_paper, cv2.remap(sheet, map_x, map_y, cv2.INTER_LINEAR), table)
            picture = np.clip(picture + rng.normal(scale=2, size=picture.shape), 0, 255).astype(np.uint8)
            name = f"view{n:02d}.jpg"
            cv2.imwrite(str(self.photos / name), picture, [cv2.IMWRITE_JPEG_QUALITY, 92])
            # the same camera in model units: x_cam = R_c (factor R^T (X - t)) + t_c, up to the scale of x_cam
            in_model = pose[:, :3] @ self.rotation.T
            translation = pose[:, 3] / TRUE_FACTOR - in_model @ self.shift
            self.model.add_image_with_trivial_frame(pycolmap.Image(name=name, camera_id=1, image_id=n + 1),
                                                    pycolmap.Rigid3d(np.hstack([in_model, translation[:, None]])))

    def to_model(self, sheet_mm: np.ndarray) -> np.ndarray:
        return (np.asarray(sheet_mm) / TRUE_FACTOR) @ self.rotation.T + self.shift

    def context(self, work, **kwargs) -> Context:
        work.mkdir(parents=True, exist_ok=True)
        if not (work / "model").exists():
            (work / "model").mkdir()
            self.model.write(work / "model")
        return Context(photos_dir=self.photos, work_dir=work, **kwargs)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return Scene(tmp_path_factory.mktemp("sheet"))


@pytest.fixture(scope="module")
def one_marker_scene(tmp_path_factory):
    return Scene(tmp_path_factory.mktemp("one"), views=4, hide=[11, 12, 13, 14, 15, 16, 17], seed=2)


def write_box(path, size_mm, *, scene: Scene, on_sheet: bool = False) -> None:
    """A box standing on the sheet's centre, optionally with the sheet's own surface below it, in model units.

    Without the sheet it is the cleaned mesh, already upright; with it, the raw surface in the model's frame.
    """
    box = trimesh.creation.box(size_mm)
    box.apply_translation([0, 0, size_mm[2] / 2])
    parts = [box]
    if on_sheet:
        plate = trimesh.creation.box([250, 320, 3])
        plate.apply_translation([0, 0, -1.2])  # the surface a reconstruction makes of the paper, 0.3 mm proud
        floater = trimesh.creation.icosphere(radius=4)
        floater.apply_translation([0, 0, 120])
        parts += [plate, floater]
    mesh = trimesh.util.concatenate(parts)
    mesh.vertices = scene.to_model(mesh.vertices) if on_sheet else mesh.vertices / TRUE_FACTOR
    mesh.export(path)


def test_triangulated_sheet_gives_scale_and_pose(scene):
    sheet = scaling.solve_sheet(scene.model, scene.photos)
    assert sheet is not None
    assert sheet.factor == pytest.approx(TRUE_FACTOR, rel=0.005)
    assert sheet.markers_used == sorted(markers.LAYOUT) and sheet.photos == 5
    assert sheet.spread_percent < 0.5 and sheet.fit_rms_mm < 0.5
    assert sheet.rotation == pytest.approx(scene.rotation, abs=0.01)  # z = the sheet normal, up
    assert sheet.to_model([[0, 0, 0]])[0] == pytest.approx(scene.to_model([0, 0, 0]), abs=0.5 / TRUE_FACTOR)


def test_large_photos_are_searched_small_and_refined_at_full_size(scene):
    photo = cv2.imread(str(scene.photos / "view00.jpg"), cv2.IMREAD_GRAYSCALE)
    small = markers.detect(photo)
    big = markers.detect(cv2.resize(photo, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC))  # 2400 px > 2000
    assert sorted(big) == sorted(small) and len(big) >= 2
    image = scene.model.images[1]
    for marker_id, corners in small.items():
        truth = np.array([image.project_point(point) for point in scene.to_model(markers.LAYOUT[marker_id])]) - 0.5
        assert np.abs(corners - truth).max() < 0.5
        assert np.abs((big[marker_id] + 0.5) / 3 - 0.5 - truth).max() < 0.5


def test_lens_distortion_is_taken_into_account(scene):
    """The same photos read as if the lens had no distortion place the corners worse."""
    sheet = scaling.solve_sheet(scene.model, scene.photos)
    camera = scene.model.cameras[1]
    original = list(camera.params)
    try:
        camera.params = [*original[:3], 0.0]
        naive = scaling.solve_sheet(scene.model, scene.photos)
    finally:
        camera.params = original
    assert naive is None or naive.fit_rms_mm > 2 * sheet.fit_rms_mm


def test_scaling_stage_uses_the_markers(scene, tmp_path):
    context = scene.context(tmp_path / "work", scale_method=ScaleMethod.MARKERS, known_dimension_mm=999)
    write_box(context.work_dir / "clean.ply", [20, 30, 40], scene=scene)
    scaling.run(context)
    report = context.report["scale"]
    assert report["method"] == "marker sheet"
    assert report["factor"] == pytest.approx(TRUE_FACTOR, rel=0.005)
    assert report["markers_used"] == sorted(markers.LAYOUT) and report["consistency_percent"] > 99
    assert sorted(context.report["size_mm"]) == pytest.approx([20, 30, 40], rel=0.005)  # not the 999 mm entered
    assert (context.work_dir / scaling.SHEET_FILE).exists()  # found once, reused by the later stages


def test_sheet_is_cut_away_and_the_object_stands_on_it(scene, tmp_path):
    context = scene.context(tmp_path / "work", scale_method=ScaleMethod.MARKERS)
    write_box(context.work_dir / "poisson.ply", [20, 30, 40], scene=scene, on_sheet=True)
    cleaning.run(context)
    scaling.run(context)
    mesh = trimesh.load(context.work_dir / "scaled.ply", force="mesh")
    assert context.report["support_removed"] == "marker sheet"
    assert mesh.is_watertight
    # the box alone, upright, on z = 0, square to the sheet; cut 1 mm above the paper and closed flat on it,
    # so it keeps its full height
    assert sorted(mesh.extents) == pytest.approx([20, 30, 40], abs=0.3)
    assert mesh.extents[2] == pytest.approx(40, abs=0.3)
    assert mesh.bounds[0][2] == pytest.approx(0, abs=1e-6)
    assert mesh.volume == pytest.approx(20 * 30 * 40, rel=0.02)


def test_too_few_markers_fall_back_to_the_longest_side(one_marker_scene, tmp_path):
    assert scaling.solve_sheet(one_marker_scene.model, one_marker_scene.photos) is None  # one marker is not enough
    context = one_marker_scene.context(tmp_path / "work", scale_method=ScaleMethod.MARKERS, known_dimension_mm=80)
    write_box(context.work_dir / "clean.ply", [20, 30, 40], scene=one_marker_scene)
    scaling.run(context)
    assert context.report["scale"]["method"] == "known dimension"
    assert context.report["scale"]["markers"] == "not found"
    assert max(context.report["size_mm"]) == pytest.approx(80, rel=1e-4)


def test_no_markers_and_no_longest_side_fails_with_advice(one_marker_scene, tmp_path):
    context = one_marker_scene.context(tmp_path / "work", scale_method=ScaleMethod.MARKERS)
    write_box(context.work_dir / "clean.ply", [20, 30, 40], scene=one_marker_scene)
    with pytest.raises(ScanFailed, match=r"No markers of the sheet were found: print it at 100 %"):
        scaling.run(context)
    assert not (context.work_dir / "scaled.ply").exists()


def test_without_markers_asked_for_the_photos_are_not_searched(scene, tmp_path):
    context = scene.context(tmp_path / "work", known_dimension_mm=50)
    write_box(context.work_dir / "clean.ply", [20, 30, 40], scene=scene)
    scaling.run(context)
    assert context.report["scale"]["method"] == "known dimension"
    assert not (context.work_dir / scaling.SHEET_FILE).exists()


# --- support plane without markers --------------------------------------------------------


def box_on_plate(seed: int = 0):
    """A 20x30x40 box on a 200x200 plate, the points a camera above would see, cameras in a ring above."""
    box = trimesh.creation.box([20, 30, 40])
    box.apply_translation([10, -5, 22])
    plate = trimesh.creation.box([200, 200, 2])
    plate.apply_translation([0, 0, 1])
    mesh = trimesh.util.concatenate([box, plate])
    rng = np.random.default_rng(seed)
    points, faces = trimesh.sample.sample_surface_even(mesh, 6000, seed=seed)
    seen = mesh.face_normals[faces][:, 2] > -0.5  # nobody photographs the underside of the table
    points = points[seen] + rng.normal(scale=0.1, size=(seen.sum(), 3))
    angles = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    cameras = np.column_stack([300 * np.cos(angles), 300 * np.sin(angles), np.full(12, 250.0)])
    motion = trimesh.transformations.random_rotation_matrix(rng.random(3))
    motion[:3, 3] = [5, -7, 3]
    mesh.apply_transform(motion)
    return mesh, trimesh.transform_points(points, motion), trimesh.transform_points(cameras, motion)


def test_table_plane_is_removed_and_the_box_stands_at_zero():
    mesh, points, cameras = box_on_plate()
    plane = cleaning.find_support_plane(points, cameras)
    assert plane is not None
    box = cleaning.remove_support(mesh, plane)
    assert box.is_watertight
    assert box.bounds[0][2] == pytest.approx(0, abs=1e-9)
    assert box.extents[2] == pytest.approx(40, abs=0.2)  # the plate is gone, the cut closed flat on its top
    footprint = sorted(box.extents[:2])
    assert footprint == pytest.approx([20, 30], abs=0.2)  # turned square to its sides
    assert box.volume == pytest.approx(20 * 30 * 40, rel=0.02)


def test_no_plane_is_invented_for_an_object_alone():
    alone = trimesh.creation.icosphere(subdivisions=3, radius=30)
    alone.apply_scale([1.0, 0.6, 1.4])
    points = alone.sample(4000, seed=0)
    angles = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    cameras = np.column_stack([200 * np.cos(angles), 200 * np.sin(angles), np.full(12, 80.0)])
    assert cleaning.find_support_plane(points, cameras) is None
    # a box photographed all round: its big faces are planes, but the cameras are on every side of them
    box = trimesh.creation.box([20, 30, 40])
    ring = np.column_stack([120 * np.cos(angles), 120 * np.sin(angles), 60 * np.sin(3 * angles)])
    assert cleaning.find_support_plane(box.sample(4000, seed=1), ring) is None


def test_cutting_keeps_the_side_above_with_a_flat_bottom():
    sphere = trimesh.creation.icosphere(subdivisions=3)
    cap = cleaning.cut_below(sphere, np.array([0, 0, 0.3]), np.array([0.0, 0, 1]))
    assert cap.bounds[0][2] == pytest.approx(0.3) and cap.bounds[1][2] == pytest.approx(sphere.bounds[1][2])
    closed = cleaning._repair(cap)
    assert closed.is_watertight
    h = sphere.bounds[1][2] - 0.3
    assert closed.volume == pytest.approx(np.pi * h**2 * (3 - h) / 3, rel=0.03)


def test_without_a_support_the_mesh_is_stood_flat_as_before(tmp_path):
    box = trimesh.creation.box([10, 20, 30])
    box.apply_transform(trimesh.transformations.random_rotation_matrix(np.random.default_rng(3).random(3)))
    floater = trimesh.creation.icosphere(radius=1)
    floater.apply_translation([40, 0, 0])
    trimesh.util.concatenate([box, floater]).export(tmp_path / "poisson.ply")
    context = Context(photos_dir=tmp_path, work_dir=tmp_path)
    cleaning.run(context)
    mesh = trimesh.load(tmp_path / "clean.ply", force="mesh")
    assert "support_removed" not in context.report and context.report["watertight"]
    assert mesh.bounds[0][2] == pytest.approx(0, abs=1e-9) and mesh.extents[2] == pytest.approx(10)  # widest face down
    assert mesh.volume == pytest.approx(6000)  # the floater is gone


def test_stand_flat_copes_with_a_centre_of_mass_outside_the_hull():
    """Overlapping, inside-out pieces (as a broken surface may have) move the centre of mass outside the hull."""
    solid = trimesh.creation.box([30, 30, 30])
    hollow = trimesh.creation.box([28, 28, 28])
    hollow.invert()
    hollow.apply_translation([10, 0, 0])
    mesh = trimesh.util.concatenate([solid, hollow])
    hull = mesh.convex_hull
    assert not np.all(np.einsum("ij,ij->i", mesh.center_mass - hull.triangles_center, hull.face_normals) < 0)
    flat = cleaning.stand_flat(mesh)
    assert flat.bounds[0][2] == pytest.approx(0, abs=1e-9)


# --- model, service and API ------------------------------------------------------------------


@pytest.mark.django_db
def test_scale_method_is_chosen_and_checked():
    owner = MembershipFactory()
    create = dict(organization=owner.organization, user=owner.user, title="Vase")
    assert services.scan_job_create(**create).scale_method == ScaleMethod.NONE
    assert services.scan_job_create(**create, known_dimension_mm=120).scale_method == ScaleMethod.DIMENSION
    markers_job = services.scan_job_create(**create, scale_method=ScaleMethod.MARKERS)
    assert markers_job.scale_method == ScaleMethod.MARKERS and markers_job.known_dimension_mm is None
    with pytest.raises(InvalidInput, match="longest side"):
        services.scan_job_create(**create, scale_method=ScaleMethod.DIMENSION)
    with pytest.raises(InvalidInput, match="scaling is switched off"):
        services.scan_job_create(**create, scale_method=ScaleMethod.NONE, known_dimension_mm=50)
    with pytest.raises(InvalidInput, match="scale_method"):
        services.scan_job_create(**create, scale_method="laser")


@pytest.mark.django_db
def test_the_pipeline_is_told_the_scale_method(monkeypatch, settings, tmp_path):
    from reconstruction import pipeline
    from reconstruction.choices import ScanStatus
    from reconstruction.models import ScanJob

    settings.RECONSTRUCTION_WORK_DIR = tmp_path
    owner = MembershipFactory()
    job = services.scan_job_create(organization=owner.organization, user=owner.user, title="Vase",
                                   scale_method=ScaleMethod.MARKERS, known_dimension_mm=70)
    ScanJob.objects.filter(pk=job.pk).update(status=ScanStatus.QUEUED)
    seen = {}

    def fake_run(context):
        seen.update(method=context.scale_method, mm=context.known_dimension_mm)
        raise ScanFailed("stop here")

    monkeypatch.setattr(pipeline, "run", fake_run)
    assert services.scan_job_run(job_id=job.pk) == ScanStatus.FAILED
    assert seen == {"method": "markers", "mm": 70.0}


@pytest.mark.django_db
def test_api_creates_marker_scans_and_serves_the_sheet(api, partner):
    created = api.post("/api/v1/scans", {"title": "Mug", "scale_method": "markers"}, content_type="application/json")
    assert created.status_code == 201, created.content
    assert created.json()["scale_method"] == "markers" and created.json()["known_dimension_mm"] is None
    plain = api.post("/api/v1/scans", {"title": "Cup", "known_dimension_mm": 90}, content_type="application/json")
    assert plain.json()["scale_method"] == "dimension"
    assert_problem(api.post("/api/v1/scans", {"title": "x", "scale_method": "laser"},
                            content_type="application/json"), 422)
    assert_problem(api.post("/api/v1/scans", {"title": "x", "scale_method": "dimension"},
                            content_type="application/json"), 422, detail_contains="longest side")
    sheet = api.get("/api/v1/scans/marker-sheet.pdf?paper=Letter")
    assert sheet.status_code == 200 and sheet["Content-Type"] == "application/pdf"
    assert sheet.content.startswith(b"%PDF-") and b"/MediaBox [ 0 0 612 792 ]" in sheet.content
    assert_problem(api.get("/api/v1/scans/marker-sheet.pdf?paper=A0"), 422, detail_contains="A4")
    assert ApiClient().get("/api/v1/scans/marker-sheet.pdf").status_code == 401
