"""Files on printers: listing every file and fetching the bytes of a listed one, over a real implicit-FTPS
server (Bambu) and the PrusaLink simulator over HTTP, both on loopback, with real sliced files.

What a file may become (a catalog version) is decided elsewhere; these tests need no other app."""

import hashlib
import io
import logging

import pytest
from django.core.cache import cache

from fablab.exceptions import InvalidInput, NotFound
from printers import services
from printers.exceptions import PrinterAuthError, PrinterConflict, PrinterUnreachable
from printers.files import PrinterFile, printer_file_fetch, printer_files_list
from printers.simulators.ftps import BambuFTPSSimulator
from printers.tests.factories import BambuPrinterFactory, PrinterFactory
from printers.tests.file_fixtures import ACCESS_CODE, BAMBU_FILE, PRUSA_FILE, corpus, expected

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("printer_file_settings")]


class Refused(Exception):
    """What a caller raises in `destination_for` to refuse a file before any byte arrives."""


def into(buffer: io.BytesIO, seen: list | None = None):
    def destination_for(printer_file: PrinterFile) -> io.BytesIO:
        if seen is not None:
            seen.append(printer_file)
        return buffer

    return destination_for


def refuse(printer_file: PrinterFile):
    raise Refused(printer_file.name)


def test_every_file_is_listed_the_printer_hands_out(bambu, prusa):
    """The printers app lists every file, whatever it is: what the catalog takes is not its business."""
    on_bambu = {f.path: f for f in printer_files_list(printer=bambu)}
    assert on_bambu["/timelapse/video_2024-05-01.mp4"].downloadable is True
    on_prusa = {f.path: f for f in printer_files_list(printer=prusa)}
    assert on_prusa["/usb/README~1.TXT"].downloadable is True


@pytest.mark.parametrize("full_paths", [False, True], ids=["P1-bare-names", "X1-full-paths"])
def test_bambu_listing_without_mlsd_falls_back_to_nlst(settings, full_paths):
    with BambuFTPSSimulator(serial="01S00C000000042", access_code=ACCESS_CODE, mlsd=False,
                            nlst_full_paths=full_paths) as simulator:
        simulator.add_file("/benchy.gcode.3mf", corpus(BAMBU_FILE))
        settings.BAMBU_FTPS_PORT = simulator.port
        printer = BambuPrinterFactory(serial=simulator.serial, host=simulator.host)
        services.printer_set_credentials(printer=printer, secret=ACCESS_CODE)
        listed = printer_files_list(printer=printer)
    assert [(f.path, f.folder, f.size_bytes) for f in listed] == [
        ("/benchy.gcode.3mf", "/", expected(BAMBU_FILE)["size_bytes"])]
    assert listed[0].modified is not None
    assert [cmd for cmd, _arg, _code in simulator.commands if cmd == "NLST"]  # MLSD refused: fell back


def test_fetch_writes_the_exact_bytes_of_a_listed_file(bambu, prusa, prusa_sim):
    buffer, seen = io.BytesIO(), []
    fetched = printer_file_fetch(printer=bambu, path=f"/cache/{BAMBU_FILE}", destination_for=into(buffer, seen))
    assert seen == [fetched] and fetched.size_bytes == expected(BAMBU_FILE)["size_bytes"]
    assert hashlib.sha256(buffer.getvalue()).hexdigest() == expected(BAMBU_FILE)["sha256"]

    buffer = io.BytesIO()
    fetched = printer_file_fetch(printer=prusa, path="/usb/MINICU~1.BGC", destination_for=into(buffer))
    assert fetched.name == "minicube mk4s.bgcode"
    assert fetched.size_bytes == len(buffer.getvalue())  # the file info told the size before the transfer
    assert hashlib.sha256(buffer.getvalue()).hexdigest() == expected(PRUSA_FILE)["sha256"]
    # a file the catalog would not take is fetched all the same: the caller decides
    buffer = io.BytesIO()
    printer_file_fetch(printer=prusa, path="/usb/README~1.TXT", destination_for=into(buffer))
    assert buffer.getvalue() == b"hello"


def test_a_file_refused_by_the_caller_is_not_downloaded(bambu, ftps_sim, prusa, prusa_sim):
    with pytest.raises(Refused):
        printer_file_fetch(printer=bambu, path=f"/cache/{BAMBU_FILE}", destination_for=refuse)
    assert not [cmd for cmd, _arg, _code in ftps_sim.commands if cmd == "RETR"]
    with pytest.raises(Refused):
        printer_file_fetch(printer=prusa, path="/usb/MINICU~1.BGC", destination_for=refuse)
    assert not [r for r in prusa_sim.requests if r[:2] == ("GET", "/usb/MINICU~1.BGC")]


def test_a_write_refused_mid_transfer_ends_it_and_propagates(bambu, prusa):
    class Full(io.BytesIO):
        def write(self, chunk):
            raise Refused("full")

    with pytest.raises(Refused):
        printer_file_fetch(printer=bambu, path=f"/cache/{BAMBU_FILE}", destination_for=lambda f: Full())
    with pytest.raises(Refused):
        printer_file_fetch(printer=prusa, path="/usb/MINICU~1.BGC", destination_for=lambda f: Full())


def test_a_file_the_printer_does_not_hand_out_is_refused(prusa, prusa_sim):
    prusa_sim.add_file("LOCKED~1.BGC", "locked.bgcode", b"GCDE\x01\x00", read_only=True)  # no download reference
    listed = {f.path: f for f in printer_files_list(printer=prusa)}
    assert listed["/usb/LOCKED~1.BGC"].downloadable is False
    with pytest.raises(InvalidInput, match="does not hand out locked.bgcode"):
        printer_file_fetch(printer=prusa, path="/usb/LOCKED~1.BGC", destination_for=refuse)


@pytest.mark.parametrize("bad_path", ["", "cache/cube.gcode.3mf", "/cache/../../etc/passwd",
                                      "/cache/cube.gcode.3mf\r\nDELE /cache/cube.gcode.3mf", "/" + "a" * 600])
def test_malformed_paths_are_refused_before_the_printer_is_contacted(bambu, ftps_sim, bad_path):
    with pytest.raises(InvalidInput):
        printer_file_fetch(printer=bambu, path=bad_path, destination_for=refuse)
    assert ftps_sim.commands == []


@pytest.mark.parametrize("unlisted", ["/etc/passwd", "/cache/%2e%2e/cube.gcode.3mf", "/sdcard/cube.gcode.3mf"])
def test_paths_the_printer_does_not_list_are_not_found(bambu, prusa, unlisted):
    with pytest.raises(NotFound):
        printer_file_fetch(printer=bambu, path=unlisted, destination_for=refuse)
    with pytest.raises(NotFound):
        printer_file_fetch(printer=prusa, path=unlisted, destination_for=refuse)


def test_a_file_vanishing_during_the_fetch_is_a_broken_transfer(prusa, prusa_sim):
    prusa_sim.vanish_during_download("MINICU~1.BGC")
    with pytest.raises(PrinterUnreachable, match="broke off after"):
        printer_file_fetch(printer=prusa, path="/usb/MINICU~1.BGC", destination_for=into(io.BytesIO()))


def test_one_transfer_per_printer_at_a_time(bambu, ftps_sim):
    cache.add(f"printers:files:{bambu.pk}", "another process", timeout=60)
    with pytest.raises(PrinterConflict, match="Another file transfer"):
        printer_files_list(printer=bambu)
    with pytest.raises(PrinterConflict, match="Another file transfer"):
        printer_file_fetch(printer=bambu, path=f"/cache/{BAMBU_FILE}", destination_for=refuse)
    assert ftps_sim.commands == []


def test_wrong_prusalink_password_is_a_clear_error_without_the_password(prusa, caplog):
    services.printer_set_credentials(printer=prusa, secret="not-the-password")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PrinterAuthError, match="password") as info:
        printer_files_list(printer=prusa)
    assert "not-the-password" not in info.value.message and "not-the-password" not in caplog.text


def test_serial_mismatch_is_refused_before_the_access_code_is_sent(bambu, ftps_sim):
    bambu.serial = "01P00A999999999"
    bambu.save()
    with pytest.raises(PrinterUnreachable, match="serial number") as info:
        printer_files_list(printer=bambu)
    assert ACCESS_CODE not in info.value.message
    assert not [cmd for cmd, _arg, _code in ftps_sim.commands if cmd == "PASS"]


def test_printers_without_file_storage_are_refused():
    printer = PrinterFactory(driver="klipper")
    with pytest.raises(InvalidInput, match="no file storage"):
        printer_file_fetch(printer=printer, path="/x.gcode", destination_for=refuse)


def test_the_files_button_is_offered_only_where_another_app_serves_the_page(client, monkeypatch):
    """The printer's page links to "Files on the printer" by URL name; without an app serving it, no button."""
    from django.urls import reverse

    from fablab.tests.factories import UserFactory

    printer = PrinterFactory()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    change_url = reverse("admin:printers_printer_change", args=[printer.pk])
    button = reverse("admin:printers_printer_detail_files", args=[printer.pk])
    assert button in client.get(change_url).content.decode()
    assert client.get(button).url == reverse("admin:printers_printer_files", args=[printer.pk])
    monkeypatch.setattr("printers.admin.printers.files_page_url", lambda printer_id: None)  # no app registered the page
    assert button not in client.get(change_url).content.decode()
    assert client.get(button).status_code == 404
