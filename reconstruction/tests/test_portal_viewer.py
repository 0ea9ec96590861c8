"""The finished scan's page: the 3D viewer, the report in words, the create form and the marker sheet."""

import re
from datetime import timedelta

import pytest
import trimesh
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.views import serve
from django.core.files.base import ContentFile
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from fablab.choices import MembershipRole
from fablab.tests.factories import MembershipFactory
from reconstruction import report_text, services, views
from reconstruction.choices import ScaleMethod, ScanStatus
from reconstruction.models import ScanJob, ScanPhoto

pytestmark = pytest.mark.django_db

MODEL_SIZE_MM = (60.0, 30.0, 20.0)


def box_stl() -> bytes:
    """A small real binary STL: an uneven box, so that turning it changes its outline."""
    return trimesh.creation.box(extents=MODEL_SIZE_MM).export(file_type="stl")


def sample_report(**changes) -> dict:
    report = {
        "photos": 24, "registered_photos": 22, "points": 18432, "features_per_photo": 5120,
        "unplaced_photos": ["0123456789abcdef.jpg", "fedcba9876543210.jpg"], "photos_without_detail": [],
        "densify": {"method": "semi-global matching (CPU)", "points": 254321, "seconds": 61.2},
        "meshed_from": "dense points",
        "scale": {"method": "marker sheet", "factor": 41.2, "markers_used": [11, 12, 14, 15, 17],
                  "corners": 20, "photos_with_markers": 19, "spread_percent": 0.42, "consistency_percent": 99.58,
                  "fit_rms_mm": 0.31},
        "size_mm": list(MODEL_SIZE_MM), "watertight": True,
        "mesh": {"faces": 12, "vertices": 8, "watertight": True, "volume_mm3": 36000.0},
        "stage_timings": {"features": 42.4, "matching": 12.0, "mapping": 95.3, "densify": 61.2, "meshing": 30.1,
                          "cleaning": 3.2, "scaling": 0.4, "exporting": 1.9},
    }
    report.update(changes)
    return report


def finish(job: ScanJob, *, stl: bytes | None = None, report: dict | None = None) -> ScanJob:
    """Put a job in the state the pipeline leaves a successful scan in."""
    job.mesh_stl.save("mesh.stl", ContentFile(box_stl() if stl is None else stl), save=False)
    job.report = sample_report() if report is None else report
    job.stage_timings = job.report.get("stage_timings", {})
    job.status, job.progress = ScanStatus.SUCCEEDED, 100.0
    job.finished_at = timezone.now()
    job.expires_at = job.finished_at + timedelta(days=30)
    job.save()
    return job


@pytest.fixture
def finished_job(customer_owner):
    job = services.scan_job_create(organization=customer_owner.organization, user=customer_owner.user,
                                   title="Gear box", scale_method=ScaleMethod.MARKERS)
    return finish(job)


@pytest.fixture
def foreign_finished_job():
    other = MembershipFactory(role=MembershipRole.OWNER)
    job = services.scan_job_create(organization=other.organization, user=other.user, title="Not yours",
                                   known_dimension_mm=50)
    return finish(job)


# --- the viewer --------------------------------------------------------------------------


def test_finished_scan_page_has_the_viewer_with_local_script_only(owner_client, finished_job):
    page = owner_client.get(reverse("scans:detail", args=[finished_job.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    stl_url = reverse("scans:download", args=[finished_job.pk, "stl"])
    assert f'data-stl-url="{stl_url}"' in html
    assert f'data-stl-bytes="{finished_job.mesh_stl.size}"' in html
    assert 'data-testid="viewer-canvas"' in html
    scripts = re.findall(r'<script[^>]*\ssrc="([^"]+)"', html)
    assert "/static/reconstruction/viewer.js" in scripts
    assert all(src.startswith("/static/") for src in scripts), scripts
    assert "WebGL" in html  # the fallback text travels with the page


def test_draft_page_has_photo_advice_and_no_viewer(owner_client, customer_owner):
    job = services.scan_job_create(organization=customer_owner.organization, user=customer_owner.user,
                                   title="Draft", scale_method=ScaleMethod.MARKERS)
    html = owner_client.get(reverse("scans:detail", args=[job.pk])).content.decode()
    assert "data-stl-url" not in html and "viewer.js" not in html
    assert "20 to 50 photos" in html and "8 to 200" in html and "overlap" in html
    assert reverse("scans:marker_sheet") in html and "Size from: Printed marker sheet" in html


def test_viewer_script_is_served_as_a_static_file():
    path = finders.find("reconstruction/viewer.js")
    assert path, "reconstruction/viewer.js is not found by the static files finders"
    response = serve(RequestFactory().get("/static/reconstruction/viewer.js"), "reconstruction/viewer.js",
                     insecure=True)
    body = b"".join(response.streaming_content).decode()
    assert response.status_code == 200 and "javascript" in response["Content-Type"]
    assert 'getContext("webgl"' in body and "DataView" in body
    assert "http://" not in body and "https://" not in body  # nothing is fetched from elsewhere


def test_stl_is_served_to_its_organization_only(owner_client, finished_job, foreign_finished_job):
    url = reverse("scans:download", args=[finished_job.pk, "stl"])
    response = owner_client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == box_stl()
    foreign = owner_client.get(reverse("scans:download", args=[foreign_finished_job.pk, "stl"]))
    assert foreign.status_code == 404
    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]


# --- the marker sheet --------------------------------------------------------------------


def test_marker_sheet_downloads_as_a_pdf(owner_client):
    response = owner_client.get(reverse("scans:marker_sheet"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response.content.startswith(b"%PDF")
    letter = owner_client.get(reverse("scans:marker_sheet") + "?paper=Letter")
    assert letter.status_code == 200 and letter.content.startswith(b"%PDF") and letter.content != response.content


def test_marker_sheet_needs_a_login_and_a_known_paper(owner_client):
    anonymous = Client().get(reverse("scans:marker_sheet"))
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    unknown = owner_client.get(reverse("scans:marker_sheet") + "?paper=A0")
    assert unknown.status_code == 400 and "A0" in unknown.content.decode()


# --- the create form ---------------------------------------------------------------------


def test_create_form_offers_both_scale_methods_with_marker_how_to_and_photo_advice(owner_client):
    html = owner_client.get(reverse("scans:list")).content.decode()
    assert 'value="dimension"' in html and 'value="markers"' in html
    assert reverse("scans:marker_sheet") + "?paper=A4" in html
    assert "100 %" in html and "50 mm" in html
    assert "20 to 50 photos" in html and "8 to 200" in html


def test_longest_side_method_without_a_dimension_is_refused(owner_client, customer_owner):
    response = owner_client.post(reverse("scans:list"), {"title": "Vase", "scale_method": "dimension"})
    assert response.status_code == 400
    assert "Enter the object&#x27;s longest side in mm, or choose the marker sheet" in response.content.decode()
    assert not ScanJob.objects.filter(organization=customer_owner.organization).exists()


@pytest.mark.parametrize("data, error", [
    ({"title": "Vase", "scale_method": "none"}, "Select a valid choice"),
    ({"title": "Vase", "scale_method": "dimension", "known_dimension_mm": "0"}, "greater than or equal to 1"),
    ({"title": "Vase", "scale_method": "markers", "known_dimension_mm": "long"}, "Enter a number"),
    ({"title": "", "scale_method": "markers"}, "This field is required"),
])
def test_bad_create_input_is_refused_with_its_reason(owner_client, customer_owner, data, error):
    response = owner_client.post(reverse("scans:list"), data)
    assert response.status_code == 400 and error in response.content.decode()
    assert not ScanJob.objects.filter(organization=customer_owner.organization).exists()


def test_marker_method_needs_no_dimension(owner_client, customer_owner):
    response = owner_client.post(reverse("scans:list"), {"title": "Vase", "scale_method": "markers"})
    job = ScanJob.objects.get(organization=customer_owner.organization)
    assert response.status_code == 302 and response["Location"] == reverse("scans:detail", args=[job.pk])
    assert job.scale_method == ScaleMethod.MARKERS and job.known_dimension_mm is None


def test_marker_method_keeps_a_dimension_as_fallback(owner_client, customer_owner):
    owner_client.post(reverse("scans:list"), {"title": "Vase", "scale_method": "markers",
                                              "known_dimension_mm": "120.5"})
    job = ScanJob.objects.get(organization=customer_owner.organization)
    assert job.scale_method == ScaleMethod.MARKERS and float(job.known_dimension_mm) == 120.5


# --- the report in words -----------------------------------------------------------------


def test_report_renders_as_sentences(owner_client, finished_job):
    # The pipeline names photos by their content hash; the page shows the customer's own names.
    ScanPhoto.objects.create(job=finished_job, image="x.jpg", original_name="kitchen-table-07.jpg",
                             sha256="0123456789abcdef" + "0" * 48, extension=".jpg", size_bytes=1, width=800,
                             height=600)
    html = owner_client.get(reverse("scans:detail", args=[finished_job.pk])).content.decode()
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    assert "22 of 24 photos were placed in 3D." in text
    assert "Not placed: kitchen-table-07.jpg, fedcba9876543210.jpg." in text
    assert "18,432 points on the object" in text
    assert "Dense matching found 254,321 points more." in text
    assert "marker sheet: 5 markers were found in 19 photos" in text
    assert "agree to within 0.42 %, so the size is very reliable" in text
    assert "60.0 × 30.0 × 20.0 mm" in text
    assert "closed (watertight) and ready to slice" in text and "36.0 cm³" in text
    assert "The scan took 4 min 6 s: finding features 42 s" in text and "dense matching 1 min 1 s" in text
    assert "will be deleted on" in text
    assert "stage_timings" not in text and "{" not in text.split("How the scan went")[1].split("Delete")[0]


def test_report_words_for_the_longest_side_and_for_no_scale(customer_owner):
    job = services.scan_job_create(organization=customer_owner.organization, user=customer_owner.user,
                                   title="Cup", known_dimension_mm=95, scale_method=ScaleMethod.MARKERS)
    job.report = sample_report(
        scale={"method": "known dimension", "longest_side_mm": 95.0, "factor": 3.1, "markers": "not found"},
        registered_photos=24, unplaced_photos=[], mesh={"faces": 1000, "watertight": False})
    words = {group["key"]: group["text"] for group in report_text.report_summary(job)}
    assert words["photos"] == "All 24 photos were placed in 3D."
    assert "marker sheet was not found" in words["scale"] and "measures 95.0 mm, as you entered" in words["scale"]
    assert words["mesh"].startswith("The mesh has small openings")
    job.report = {"photos": 10, "registered_photos": 10, "scale": {"method": "none: enter the longest side"}}
    job.stage_timings = {}
    words = {group["key"]: group["text"] for group in report_text.report_summary(job)}
    assert "not scaled" in words["scale"] and set(words) == {"photos", "scale"}


@pytest.mark.parametrize("seconds, words", [
    (0.3, "under a second"), (42.4, "42 s"), (120, "2 min"), (185.6, "3 min 6 s"), (4000, "1 h 6 min"),
])
def test_durations_in_words(seconds, words):
    assert report_text.duration(seconds) == words


# --- in a real browser -------------------------------------------------------------------

WEBGL_ARGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"]


@pytest.fixture
def webgl_browser(monkeypatch):
    """The system's Chromium (as in tests/test_browser.py), with software WebGL switched on."""
    from tests.test_browser import CHROMIUM_ARGS, launch_chromium

    with launch_chromium(monkeypatch, [arg for arg in CHROMIUM_ARGS if arg != "--disable-gpu"] + WEBGL_ARGS) \
            as launched:
        yield launched


def logged_in_page(browser, live_server, user):
    from django.conf import settings

    from tests.test_browser import TIMEOUT_MS

    client = Client()
    client.force_login(user)
    context = browser.new_context(viewport={"width": 1100, "height": 900}, locale="en-US")
    context.set_default_timeout(TIMEOUT_MS)
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "url": live_server.url,
                          "value": client.cookies[settings.SESSION_COOKIE_NAME].value}])
    return context.new_page()


NEXT_FRAME = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_viewer_draws_the_mesh_and_turns_it_when_dragged(live_server, webgl_browser, customer_owner):
    from playwright.sync_api import expect

    from tests.test_browser import screenshot, wait_until

    job = finish(services.scan_job_create(organization=customer_owner.organization, user=customer_owner.user,
                                          title="Box", known_dimension_mm=60))
    page = logged_in_page(webgl_browser, live_server, customer_owner.user)
    page.goto(f"{live_server.url}{reverse('scans:detail', args=[job.pk])}")
    wait_until(page, "window.fablabViewer && window.fablabViewer.stats.state !== 'loading' "
                     "&& window.fablabViewer.stats.state !== 'starting'")
    stats = page.evaluate("window.fablabViewer.stats")
    assert stats["state"] == "ready", stats
    assert stats["triangles"] == 12 and stats["sizeMm"] == list(MODEL_SIZE_MM)
    expect(page.get_by_test_id("viewer-size")).to_contain_text("60.0 × 30.0 × 20.0 mm")
    canvas = page.get_by_test_id("viewer-canvas")
    drawn = page.evaluate("window.fablabViewer.drawnPixels()")
    box = canvas.bounding_box()
    assert drawn > 0.02 * box["width"] * box["height"], drawn
    before = canvas.evaluate("c => c.toDataURL()")
    screenshot(page, "scan-viewer")

    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 150, y + 40, steps=6)
    page.mouse.up()
    page.evaluate(NEXT_FRAME)
    after = canvas.evaluate("c => c.toDataURL()")
    assert after != before
    assert page.evaluate("window.fablabViewer.drawnPixels()") > 0
    screenshot(page, "scan-viewer-turned")

    page.get_by_role("button", name="Reset view").click()
    page.evaluate(NEXT_FRAME)
    assert canvas.evaluate("c => c.toDataURL()") == before

    # Wheel zooms in, shift-drag moves the model, the keyboard turns it.
    home = page.evaluate("({...window.fablabViewer.view})")
    page.mouse.move(x, y)
    page.mouse.wheel(0, -300)
    page.evaluate(NEXT_FRAME)
    assert page.evaluate("window.fablabViewer.view.distance") < home["distance"]
    page.keyboard.down("Shift")
    page.mouse.down()
    page.mouse.move(x + 80, y, steps=4)
    page.mouse.up()
    page.keyboard.up("Shift")
    view = page.evaluate("window.fablabViewer.view")
    assert view["target"] != home["target"] and view["yaw"] == home["yaw"]
    canvas.focus()
    page.keyboard.press("ArrowLeft")
    assert page.evaluate("window.fablabViewer.view.yaw") != home["yaw"]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_viewer_explains_what_it_cannot_show(live_server, webgl_browser, customer_owner, monkeypatch):
    from playwright.sync_api import expect

    job = finish(services.scan_job_create(organization=customer_owner.organization, user=customer_owner.user,
                                          title="Broken", known_dimension_mm=60), stl=b"solid broken\nfacet")
    url = f"{live_server.url}{reverse('scans:detail', args=[job.pk])}"
    page = logged_in_page(webgl_browser, live_server, customer_owner.user)
    page.goto(url)
    expect(page.locator("[data-role=message]")).to_contain_text("text STL")
    truncated = finish(services.scan_job_create(organization=customer_owner.organization, user=customer_owner.user,
                                                title="Cut off", known_dimension_mm=60), stl=box_stl()[:-20])
    page.goto(f"{live_server.url}{reverse('scans:detail', args=[truncated.pk])}")
    expect(page.locator("[data-role=message]")).to_contain_text("damaged")
    assert page.evaluate("window.fablabViewer.stats.error") == "invalid"

    # A mesh over the viewer's limit is not even downloaded.
    monkeypatch.setattr(views, "VIEWER_MAX_BYTES", len(box_stl()) - 1)
    big = finish(services.scan_job_create(organization=customer_owner.organization, user=customer_owner.user,
                                          title="Big", known_dimension_mm=60))
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{live_server.url}{reverse('scans:detail', args=[big.pk])}")
    expect(page.locator("[data-role=message]")).to_contain_text("too large to show")
    assert not [url for url in requested if url.endswith("/download/stl/")]

    no_webgl = logged_in_page(webgl_browser, live_server, customer_owner.user)
    no_webgl.add_init_script("HTMLCanvasElement.prototype.getContext = () => null;")
    no_webgl.goto(url)
    expect(no_webgl.locator("[data-role=message]")).to_contain_text("cannot show 3D")
    expect(no_webgl.get_by_role("link", name="Download STL")).to_be_visible()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_create_a_marker_sheet_scan_in_the_browser(live_server, webgl_browser, customer_owner):
    from playwright.sync_api import expect

    from tests.test_browser import screenshot

    page = logged_in_page(webgl_browser, live_server, customer_owner.user)
    page.goto(f"{live_server.url}{reverse('scans:list')}")
    page.get_by_label("What are you scanning?").fill("Teapot")
    page.get_by_role("button", name="Create scan").click()
    expect(page.get_by_test_id("form-error")).to_contain_text("Enter the object's longest side in mm")
    screenshot(page, "scan-create-form")
    assert not ScanJob.objects.exists()

    page.get_by_label("Use the marker sheet").check()
    with page.expect_download() as download:
        page.get_by_test_id("marker-sheet-link").first.click()
    assert download.value.suggested_filename == "fablab-marker-sheet-a4.pdf"
    page.get_by_role("button", name="Create scan").click()
    expect(page.get_by_test_id("scan-scale")).to_contain_text("Printed marker sheet")
    job = ScanJob.objects.get()
    assert (job.title, job.scale_method, job.known_dimension_mm) == ("Teapot", ScaleMethod.MARKERS, None)
