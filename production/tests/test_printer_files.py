"""Moving files from printers into the catalog: listing what can go, the download, the admin page and the
API, over a real implicit-FTPS server (Bambu) and the PrusaLink simulator over HTTP, both on loopback, with
real sliced files."""

import logging

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.urls import reverse

from catalog.models import Model, ModelVariant, SlicedFile, VariantVersion
from catalog.tests.factories import ModelFactory, VariantFactory
from fablab.choices import ApiKeyScope
from fablab.exceptions import InvalidInput, NotFound
from fablab.tests.factories import PartnerFactory, UserFactory, make_api_key
from printers import services
from printers.drivers.prusalink import driver as prusalink_driver
from printers.exceptions import PrinterAuthError, PrinterConflict, PrinterUnreachable
from printers.files import printer_files_list
from printers.tests.factories import PrinterFactory
from printers.tests.file_fixtures import ACCESS_CODE, BAMBU_FILE, PRUSA_FILE, PRUSA_PASSWORD, corpus, expected
from production import selectors
from production.models import PrinterFileImport
from production.services import printer_file_import

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("printer_file_settings")]

API = "/api/v1"


# --- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture
def staff():
    return UserFactory(is_staff=True, is_superuser=True)


def nothing_stored(tmp_path) -> None:
    assert SlicedFile.objects.count() == 0 and VariantVersion.objects.count() == 0
    assert Model.objects.count() == 0
    media = tmp_path / "media"
    assert not media.exists() or not [p for p in media.rglob("*") if p.is_file()]
    assert list((tmp_path / "upload-tmp").iterdir()) == []  # no half file left behind


# --- listing -------------------------------------------------------------------------------------------


def catalog_list(printer) -> dict:
    """The printer's files as staff and the API see them, by path: (the printer's file, can go into the catalog)."""
    return {entry.file.path: (entry.file, entry.importable) for entry in selectors.printer_file_list(printer=printer)}


def test_bambu_lists_every_folder_and_says_which_files_the_catalog_takes(bambu, ftps_sim):
    listed = catalog_list(bambu)
    assert set(listed) == {f"/cache/{BAMBU_FILE}", "/model/plate 2 (copy).3mf", "/timelapse/video_2024-05-01.mp4"}
    cube, importable = listed[f"/cache/{BAMBU_FILE}"]
    assert (cube.name, cube.folder, cube.size_bytes, importable) == (
        BAMBU_FILE, "/cache", expected(BAMBU_FILE)["size_bytes"], True)
    assert cube.modified is not None and cube.modified.utcoffset() is not None
    assert listed["/model/plate 2 (copy).3mf"][1] is True
    assert listed["/timelapse/video_2024-05-01.mp4"][1] is False
    assert ftps_sim.data_connections and all(ftps_sim.data_connections)  # every data channel resumed the session


def test_prusalink_lists_storage_with_long_names(prusa, prusa_sim):
    listed = catalog_list(prusa)
    assert set(listed) == {"/usb/MINICU~1.BGC", "/usb/README~1.TXT"}
    cube, importable = listed["/usb/MINICU~1.BGC"]
    assert (cube.name, cube.folder, importable, cube.size_bytes) == ("minicube mk4s.bgcode", "/usb", True, None)
    assert cube.modified.year == 2024 and cube.modified.utcoffset() is not None
    assert listed["/usb/README~1.TXT"][1] is False


def test_prusalink_lists_and_imports_files_in_folders(prusa, prusa_sim, staff, monkeypatch):
    prusa_sim.add_folder("CUSTOM~1", "customer orders")
    prusa_sim.add_folder("CUSTOM~1/2024-1~1", "2024-11 gears")
    prusa_sim.add_file("CUSTOM~1/2024-1~1/GEAR~1.BGC", "gear 40t.bgcode", corpus(PRUSA_FILE).read_bytes())
    prusa_sim.add_file("CUSTOM~1/NOTES~1.TXT", "notes.txt", b"call back")
    listed = catalog_list(prusa)
    assert set(listed) == {"/usb/MINICU~1.BGC", "/usb/README~1.TXT", "/usb/CUSTOM~1/NOTES~1.TXT",
                           "/usb/CUSTOM~1/2024-1~1/GEAR~1.BGC"}
    gear, importable = listed["/usb/CUSTOM~1/2024-1~1/GEAR~1.BGC"]
    assert (gear.name, gear.folder, importable) == ("gear 40t.bgcode", "/usb/customer orders/2024-11 gears", True)
    assert listed["/usb/CUSTOM~1/NOTES~1.TXT"][1] is False
    version = printer_file_import(printer=prusa, path=gear.path, user=staff)
    assert version.sliced_file.original_name == "gear 40t.bgcode"
    assert version.sliced_file.sha256 == expected(PRUSA_FILE)["sha256"]
    assert ("GET", "/usb/CUSTOM~1/2024-1~1/GEAR~1.BGC", 200) in prusa_sim.requests
    with pytest.raises(NotFound):  # a file the folder does not hold
        printer_file_import(printer=prusa, path="/usb/CUSTOM~1/GONE~1.BGC", user=staff)

    monkeypatch.setattr(prusalink_driver, "MAX_FOLDERS", 2)  # a stick full of folders: listing stops, with a warning
    assert "/usb/CUSTOM~1/2024-1~1/GEAR~1.BGC" not in {f.path for f in printer_files_list(printer=prusa)}


# --- import into the catalog ------------------------------------------------------------------------------


def test_bambu_import_makes_a_new_model_with_the_extracted_metadata(bambu, staff, tmp_path):
    truth = expected(BAMBU_FILE)
    version = printer_file_import(printer=bambu, path=f"/cache/{BAMBU_FILE}", user=staff)
    variant = ModelVariant.objects.get(pk=version.variant_id)
    assert variant.model.name == "bambustudio-02.04.00.70 a1mini cube"
    assert variant.model.created_by == staff and variant.current_version == version and version.number == 1
    sliced = version.sliced_file
    assert sliced.sha256 == truth["sha256"] and sliced.size_bytes == truth["size_bytes"]
    assert sliced.status == "done" and sliced.uploaded_by == staff
    assert sliced.metadata["estimated_time_s"] == truth["estimated_time_s"] == 1095
    assert variant.estimated_time_s == 1095
    assert float(variant.filament_used_g) == truth["filament_used_g_total"]
    assert variant.printer_model == truth["printer_model"]
    assert "P1S west" in version.change_note and f"/cache/{BAMBU_FILE}" in version.change_note
    assert list((tmp_path / "upload-tmp").iterdir()) == []


def test_prusalink_import_into_an_existing_variant(prusa, prusa_sim, staff):
    truth = expected(PRUSA_FILE)
    variant = VariantFactory(model=ModelFactory(name="Calibration cube"))
    version = printer_file_import(printer=prusa, path="/usb/MINICU~1.BGC", user=staff, variant=variant)
    assert version.variant_id == variant.pk and version.number == 1
    assert version.sliced_file.original_name == "minicube mk4s.bgcode"
    assert version.sliced_file.sha256 == truth["sha256"]
    variant.refresh_from_db()
    assert variant.estimated_time_s == truth["estimated_time_s"] == 221
    assert variant.printer_model == "MK4S"
    assert Model.objects.count() == 1  # no new model
    assert ("GET", "/usb/MINICU~1.BGC", 200) in prusa_sim.requests


def test_importing_the_same_file_again_into_the_same_variant_is_refused(prusa, staff):
    variant = VariantFactory()
    printer_file_import(printer=prusa, path="/usb/MINICU~1.BGC", user=staff, variant=variant)
    from fablab.exceptions import Conflict

    with pytest.raises(Conflict, match="identical to version 1"):
        printer_file_import(printer=prusa, path="/usb/MINICU~1.BGC", user=staff, variant=variant)
    assert SlicedFile.objects.count() == 1


# --- failures ----------------------------------------------------------------------------------------


def test_wrong_access_code_is_a_clear_error_without_the_code(bambu, staff, tmp_path, caplog):
    services.printer_set_credentials(printer=bambu, secret="wrong-code-1")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PrinterAuthError, match="refused the access code") as listing:
        printer_files_list(printer=bambu)
    with pytest.raises(PrinterAuthError) as importing:
        printer_file_import(printer=bambu, path=f"/cache/{BAMBU_FILE}", user=staff)
    for exc in (listing.value, importing.value):
        assert "wrong-code-1" not in exc.message and ACCESS_CODE not in exc.message
    assert "wrong-code-1" not in caplog.text
    nothing_stored(tmp_path)


def test_credentials_never_reach_the_logs(bambu, prusa, staff, caplog):
    caplog.set_level(logging.DEBUG)
    printer_files_list(printer=bambu)
    printer_file_import(printer=bambu, path=f"/cache/{BAMBU_FILE}", user=staff)
    printer_file_import(printer=prusa, path="/usb/MINICU~1.BGC", user=staff)
    assert caplog.records  # the import is logged ...
    assert ACCESS_CODE not in caplog.text and PRUSA_PASSWORD not in caplog.text  # ... without secrets


def test_unreachable_printers(bambu, ftps_sim, prusa, prusa_sim, staff, tmp_path):
    ftps_sim.stop()
    prusa_sim.power_off()
    with pytest.raises(PrinterUnreachable, match="refused the connection"):
        printer_files_list(printer=bambu)
    with pytest.raises(PrinterUnreachable, match="refused"):
        printer_files_list(printer=prusa)
    with pytest.raises(PrinterUnreachable):
        printer_file_import(printer=bambu, path=f"/cache/{BAMBU_FILE}", user=staff)
    with pytest.raises(PrinterUnreachable):
        printer_file_import(printer=prusa, path="/usb/MINICU~1.BGC", user=staff)
    nothing_stored(tmp_path)


def test_file_too_large_is_refused_and_nothing_is_stored(bambu, ftps_sim, prusa, prusa_sim, staff, settings,
                                                         tmp_path):
    settings.CATALOG_MAX_UPLOAD_BYTES = 20_000
    with pytest.raises(InvalidInput, match="at most 0 MB"):
        printer_file_import(printer=bambu, path=f"/cache/{BAMBU_FILE}", user=staff)
    assert not [cmd for cmd, _arg, _code in ftps_sim.commands if cmd == "RETR"]  # refused from the listed size
    with pytest.raises(InvalidInput, match="CATALOG_MAX_UPLOAD_MB"):
        printer_file_import(printer=prusa, path="/usb/MINICU~1.BGC", user=staff)
    nothing_stored(tmp_path)


def test_file_growing_past_the_limit_while_downloading_is_cut_off(prusa, staff, settings, tmp_path, monkeypatch):
    # RPi PrusaLink gives no size in the file info: the limit is then enforced while the bytes arrive.
    from printers.drivers.prusalink import PrusaLinkClient

    monkeypatch.setattr(PrusaLinkClient, "file_info", lambda self, **kwargs: {})
    settings.CATALOG_MAX_UPLOAD_BYTES = 20_000
    with pytest.raises(InvalidInput, match="larger than"):
        printer_file_import(printer=prusa, path="/usb/MINICU~1.BGC", user=staff)
    nothing_stored(tmp_path)


def test_file_vanishing_during_download_stores_nothing(bambu, ftps_sim, prusa, prusa_sim, staff, tmp_path):
    ftps_sim.vanish_during_download(f"/cache/{BAMBU_FILE}")
    with pytest.raises(PrinterUnreachable, match="broke off"):
        printer_file_import(printer=bambu, path=f"/cache/{BAMBU_FILE}", user=staff)
    prusa_sim.vanish_during_download("MINICU~1.BGC")
    with pytest.raises(PrinterUnreachable, match="broke off after"):
        printer_file_import(printer=prusa, path="/usb/MINICU~1.BGC", user=staff)
    nothing_stored(tmp_path)
    # and afterwards it is simply gone
    with pytest.raises(NotFound, match="Refresh the file list"):
        printer_file_import(printer=bambu, path=f"/cache/{BAMBU_FILE}", user=staff)
    with pytest.raises(NotFound):
        printer_file_import(printer=prusa, path="/usb/MINICU~1.BGC", user=staff)


def test_a_file_the_catalog_cannot_read_leaves_no_new_model_behind(bambu, ftps_sim, staff, tmp_path):
    ftps_sim.add_file("/cache/broken.gcode.3mf", b"this is not a zip archive at all")
    with pytest.raises(InvalidInput, match="broken.gcode.3mf"):
        printer_file_import(printer=bambu, path="/cache/broken.gcode.3mf", user=staff)
    assert ModelVariant.objects.count() == 0
    nothing_stored(tmp_path)


def test_file_deleted_after_listing(bambu, ftps_sim, staff, tmp_path):
    assert printer_files_list(printer=bambu)
    ftps_sim.remove_file(f"/cache/{BAMBU_FILE}")
    with pytest.raises(NotFound, match="not on P1S west"):
        printer_file_import(printer=bambu, path=f"/cache/{BAMBU_FILE}", user=staff)
    nothing_stored(tmp_path)


BAD_PATHS = [
    "", "   ", "cache/cube.gcode.3mf", "../etc/passwd", "/cache/../../etc/passwd", "/cache/./cube.gcode.3mf",
    "/cache//cube.gcode.3mf", "/cache/cube.gcode.3mf\r\nDELE /cache/cube.gcode.3mf", "/cache/x\x00.3mf",
    "\\cache\\cube.gcode.3mf", "/usb/../../root/.ssh/id_rsa", "/" + "a" * 600,
]


@pytest.mark.parametrize("bad_path", BAD_PATHS)
def test_path_traversal_and_odd_paths_are_refused_before_any_transfer(bambu, ftps_sim, staff, tmp_path, bad_path):
    with pytest.raises(InvalidInput):
        printer_file_import(printer=bambu, path=bad_path, user=staff)
    assert ftps_sim.commands == []  # the printer was not even contacted
    nothing_stored(tmp_path)


@pytest.mark.parametrize("unlisted", ["/etc/passwd", "/cache/%2e%2e/cube.gcode.3mf", "/sdcard/cube.gcode.3mf"])
def test_paths_the_printer_does_not_list_are_not_found(bambu, prusa, staff, tmp_path, unlisted):
    with pytest.raises(NotFound):
        printer_file_import(printer=bambu, path=unlisted, user=staff)
    with pytest.raises(NotFound):
        printer_file_import(printer=prusa, path=unlisted, user=staff)
    nothing_stored(tmp_path)


def test_files_the_catalog_does_not_take_are_refused(bambu, prusa, staff, tmp_path):
    with pytest.raises(InvalidInput, match="cannot go into the catalog"):
        printer_file_import(printer=bambu, path="/timelapse/video_2024-05-01.mp4", user=staff)
    with pytest.raises(InvalidInput, match="cannot go into the catalog"):
        printer_file_import(printer=prusa, path="/usb/README~1.TXT", user=staff)
    nothing_stored(tmp_path)


def test_an_import_waits_for_no_other_transfer_with_the_printer(bambu, ftps_sim, staff, tmp_path):
    cache.add(f"printers:files:{bambu.pk}", "another process", timeout=60)
    with pytest.raises(PrinterConflict, match="Another file transfer"):
        printer_file_import(printer=bambu, path=f"/cache/{BAMBU_FILE}", user=staff)
    assert ftps_sim.commands == []
    nothing_stored(tmp_path)


# --- admin -------------------------------------------------------------------------------------------------


def test_admin_lists_files_and_downloads_one_into_a_new_model(client, staff, bambu, run_tasks):
    client.force_login(staff)
    url = reverse("admin:printers_printer_files", args=[bambu.pk])
    printer_page = client.get(reverse("admin:printers_printer_change", args=[bambu.pk]))
    assert reverse("admin:printers_printer_detail_files", args=[bambu.pk]) in printer_page.content.decode()
    assert client.get(reverse("admin:printers_printer_detail_files", args=[bambu.pk])).url == url
    page = client.get(url)
    assert page.status_code == 200
    body = page.content.decode()
    assert BAMBU_FILE in body and "plate 2 (copy).3mf" in body and "video_2024-05-01.mp4" in body
    assert body.count('name="path"') == 2  # a button for each file the catalog takes, none for the video
    assert "csrfmiddlewaretoken" in body
    with run_tasks():
        response = client.post(reverse("admin:printers_printer_files_import", args=[bambu.pk]),
                               {"path": f"/cache/{BAMBU_FILE}", "variant": ""})
    assert response.status_code == 302 and response.url == url
    version = VariantVersion.objects.get()
    assert version.variant.estimated_time_s == 1095
    body = client.get(url).content.decode()
    assert "in the background" in body  # the message
    download = PrinterFileImport.objects.get()
    assert (download.status, download.version, download.requested_by) == ("succeeded", version, staff)
    assert f'data-import="{download.pk}" data-status="succeeded"' in body and "version 1 of" in body


def test_admin_downloads_into_a_chosen_variant_and_shows_errors(client, staff, prusa, prusa_sim, run_tasks):
    variant = VariantFactory()
    client.force_login(staff)
    import_url = reverse("admin:printers_printer_files_import", args=[prusa.pk])
    with run_tasks():
        client.post(import_url, {"path": "/usb/MINICU~1.BGC", "variant": str(variant.pk)})
    assert variant.versions.count() == 1
    response = client.post(import_url, {"path": "/usb/../etc/passwd", "variant": ""}, follow=True)
    assert "is not a path the printer lists" in response.content.decode()
    assert PrinterFileImport.objects.count() == 1  # a malformed path is refused before anything is queued
    with run_tasks():  # the same file again into the same variant: the download fails, and says why
        client.post(import_url, {"path": "/usb/MINICU~1.BGC", "variant": str(variant.pk)})
    failed = PrinterFileImport.objects.filter(status="failed").get()
    assert failed.error and failed.error in client.get(reverse("admin:printers_printer_files",
                                                               args=[prusa.pk])).content.decode()
    prusa_sim.power_off()
    page = client.get(reverse("admin:printers_printer_files", args=[prusa.pk]))
    assert page.status_code == 200 and 'id="files-error"' in page.content.decode()
    assert PRUSA_PASSWORD not in page.content.decode()
    assert client.get(import_url).status_code == 405  # POST only
    assert Model.objects.count() == 1


def test_admin_file_pages_are_refused_to_others(client, bambu, ftps_sim):
    list_url = reverse("admin:printers_printer_files", args=[bambu.pk])
    import_url = reverse("admin:printers_printer_files_import", args=[bambu.pk])
    data = {"path": f"/cache/{BAMBU_FILE}", "variant": ""}
    assert client.get(list_url).status_code == 302  # anonymous: to the login page
    partner_member = UserFactory(is_staff=False)  # a customer or partner of another organization
    client.force_login(partner_member)
    assert client.get(list_url).status_code == 302 and client.post(import_url, data).status_code == 302
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_printer"))
    client.force_login(viewer)
    assert client.get(list_url).status_code == 200
    assert 'name="path"' not in client.get(list_url).content.decode()  # may look, not import
    assert client.post(import_url, data).status_code == 403
    client.force_login(UserFactory(is_staff=True))  # staff without any printer permission
    assert client.get(list_url).status_code == 403
    assert VariantVersion.objects.count() == 0
    # a POST without the CSRF token is refused
    csrf_client = type(client)(enforce_csrf_checks=True)
    csrf_client.force_login(UserFactory(is_staff=True, is_superuser=True))
    assert csrf_client.post(import_url, data).status_code == 403
    assert VariantVersion.objects.count() == 0


# --- API ----------------------------------------------------------------------------------------------------


def test_api_lists_and_imports_for_lab_keys(client, bambu, lab_read_key, lab_key, run_tasks):
    read, write = lab_read_key, lab_key
    listed = client.get(f"{API}/printers/{bambu.pk}/files", headers={"X-API-Key": read})
    assert listed.status_code == 200
    entry = next(f for f in listed.json() if f["name"] == BAMBU_FILE)
    assert entry["path"] == f"/cache/{BAMBU_FILE}" and entry["size_bytes"] == 48350 and entry["downloadable"]
    assert set(entry) == {"path", "name", "size_bytes", "modified", "folder", "downloadable"}
    video = next(f for f in listed.json() if f["name"] == "video_2024-05-01.mp4")
    assert video["downloadable"] is False  # listed, but not a file the catalog takes
    response = client.post(f"{API}/printers/{bambu.pk}/files/import", {"path": entry["path"]},
                           content_type="application/json", headers={"X-API-Key": write})
    assert response.status_code == 202, response.content
    queued = response.json()
    assert queued["status"] == "queued" and queued["path"] == entry["path"] and queued["version"] is None
    assert queued["catalog_version"] is None
    again = client.post(f"{API}/printers/{bambu.pk}/files/import", {"path": entry["path"]},
                        content_type="application/json", headers={"X-API-Key": write})
    assert again.status_code == 202 and again.json()["id"] == queued["id"]  # still waiting: the same download
    from production.tasks import run_file_import

    assert run_file_import(queued["id"]) == "succeeded"
    assert run_file_import(queued["id"]) == "not waiting"  # a task delivered twice downloads once
    status_url = f"{API}/printers/{bambu.pk}/files/imports/{queued['id']}"
    body = client.get(status_url, headers={"X-API-Key": read}).json()
    assert body["status"] == "succeeded" and body["version"] == 1 and body["metadata_status"] == "done"
    assert body["metadata"]["estimated_time_s"] == expected(BAMBU_FILE)["estimated_time_s"]
    assert body["sha256"] == expected(BAMBU_FILE)["sha256"]
    assert VariantVersion.objects.count() == 1
    version = VariantVersion.objects.select_related("variant", "sliced_file").get()
    assert (body["model_id"], body["variant_id"], body["sliced_file_id"]) == (
        version.variant.model_id, version.variant_id, version.sliced_file_id)
    # the version as the catalog's own API shows versions (catalog.schemas.VersionOut)
    shown = body["catalog_version"]
    assert set(shown) == {"id", "number", "change_note", "created_at", "sliced_file", "download_url"}
    assert shown["number"] == 1 and "P1S west" in shown["change_note"]
    assert shown["sliced_file"]["sha256"] == body["sha256"] and shown["sliced_file"]["status"] == "done"
    assert shown["sliced_file"]["metadata"] == body["metadata"]
    assert shown["download_url"] == reverse("api:catalog_version_download", args=[version.variant_id, 1])
    assert client.get(f"{API}/printers/{bambu.pk}/files/imports/999999", headers={"X-API-Key": read}).status_code \
        == 404
    with run_tasks():  # a file that is not on the printer: the download fails with the reason
        missing = client.post(f"{API}/printers/{bambu.pk}/files/import", {"path": "/cache/gone.3mf"},
                              content_type="application/json", headers={"X-API-Key": write}).json()
    failed = client.get(f"{API}/printers/{bambu.pk}/files/imports/{missing['id']}", headers={"X-API-Key": read})
    assert failed.json()["status"] == "failed" and "is not on P1S west" in failed.json()["error"]


def test_api_imports_into_a_chosen_variant(client, prusa, lab_read_key, lab_key):
    read, write = lab_read_key, lab_key
    variant = VariantFactory()
    import_url = f"{API}/printers/{prusa.pk}/files/import"
    unknown = client.post(import_url, {"path": "/usb/MINICU~1.BGC", "variant_id": 999999},
                          content_type="application/json", headers={"X-API-Key": write})
    assert unknown.status_code == 404 and PrinterFileImport.objects.count() == 0
    queued = client.post(import_url, {"path": "/usb/MINICU~1.BGC", "variant_id": variant.pk},
                         content_type="application/json", headers={"X-API-Key": write}).json()
    assert queued["variant_id"] is None  # the variant that got a version: none yet
    from production.tasks import run_file_import

    assert run_file_import(queued["id"]) == "succeeded"
    body = client.get(f"{API}/printers/{prusa.pk}/files/imports/{queued['id']}", headers={"X-API-Key": read}).json()
    assert (body["variant_id"], body["version"], body["catalog_version"]["number"]) == (variant.pk, 1, 1)
    assert Model.objects.count() == 1  # no new model


def test_api_refuses_partner_keys_read_keys_bad_paths_and_unknown_printers(client, bambu, lab_read_key, lab_key):
    read, write = lab_read_key, lab_key
    bambu.shared_with_partners = True
    bambu.save()
    _key, partner_key = make_api_key(PartnerFactory(), scope=ApiKeyScope.WRITE)
    files_url, import_url = f"{API}/printers/{bambu.pk}/files", f"{API}/printers/{bambu.pk}/files/import"
    body = {"path": f"/cache/{BAMBU_FILE}"}
    refused = client.get(files_url, headers={"X-API-Key": partner_key})
    assert refused.status_code == 403 and "lab's own API keys" in refused.json()["detail"]
    assert client.post(import_url, body, content_type="application/json",
                       headers={"X-API-Key": partner_key}).status_code == 403
    assert client.post(import_url, body, content_type="application/json",
                       headers={"X-API-Key": read}).status_code == 403
    bad = client.post(import_url, {"path": "/cache/../../etc/shadow"}, content_type="application/json",
                      headers={"X-API-Key": write})
    assert bad.status_code == 422 and "is not a path the printer lists" in bad.json()["detail"]
    assert client.get(f"{API}/printers/999999/files", headers={"X-API-Key": read}).status_code == 404
    elsewhere = PrinterFileImport.objects.create(printer=PrinterFactory(), path="/usb/X~1.BGC")
    assert client.get(f"{API}/printers/{bambu.pk}/files/imports/{elsewhere.pk}",  # another printer's download
                      headers={"X-API-Key": read}).status_code == 404
    assert client.get(f"{API}/printers/{bambu.pk}/files/imports/{elsewhere.pk}",
                      headers={"X-API-Key": partner_key}).status_code == 403
    assert VariantVersion.objects.count() == 0
    services.printer_set_credentials(printer=bambu, secret="bad-code")
    denied = client.get(files_url, headers={"X-API-Key": read})
    assert denied.status_code == 502 and "bad-code" not in denied.content.decode()


def test_a_download_whose_worker_died_does_not_block_the_file(prusa, staff, settings, run_tasks):
    from datetime import timedelta

    from django.utils import timezone

    from production.services import printer_file_import_request

    stuck = printer_file_import_request(printer=prusa, path="/usb/MINICU~1.BGC", user=staff)
    PrinterFileImport.objects.filter(pk=stuck.pk).update(
        status="running", created_at=timezone.now() - timedelta(seconds=2 * settings.TASK_TIMEOUT_SECONDS + 1))
    with run_tasks():
        retry = printer_file_import_request(printer=prusa, path="/usb/MINICU~1.BGC", user=staff)
    assert retry.pk != stuck.pk
    stuck.refresh_from_db()
    assert stuck.status == "failed" and "did not finish in time" in stuck.error
    retry.refresh_from_db()
    assert retry.status == "succeeded" and retry.version.sliced_file.original_name == "minicube mk4s.bgcode"
