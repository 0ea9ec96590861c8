"""Printers with files on their storage, for the tests of the file listing and of what is done with the files:
a real implicit-FTPS server (Bambu) and the PrusaLink simulator over HTTP, both on loopback, holding real
sliced files of the corpus. Imported by the conftest of each test folder that uses them."""

from pathlib import Path

import pytest
from django.core.cache import cache

from fablab.tests.helpers import corpus_path, slicer_expected
from printers import services
from printers.simulators.ftps import BambuFTPSSimulator
from printers.simulators.prusalink import PrusaLinkSimulator
from printers.tests.factories import BambuPrinterFactory, PrinterFactory

ACCESS_CODE = "41c0de77"
PRUSA_PASSWORD = "pl-secret-93"
BAMBU_FILE = "bambustudio-02.04.00.70_a1mini_cube.gcode.3mf"
PRUSA_FILE = "prusaslicer-2.8.1_mk4s_minicube.bgcode"


def corpus(name: str) -> Path:
    return corpus_path("slicer", name)


def expected(name: str) -> dict:
    return slicer_expected()[name]


@pytest.fixture
def printer_file_settings(settings, tmp_path):
    """Short timeouts, no waiting for a busy printer, temporary files in the test's own folder."""
    settings.PRINTER_FILES_TIMEOUT_SECONDS = 5
    settings.PRINTER_HTTP_TIMEOUT_SECONDS = 2
    settings.PRINTER_FILES_LOCK_WAIT_SECONDS = 0
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "upload-tmp")
    (tmp_path / "upload-tmp").mkdir()
    cache.clear()


@pytest.fixture
def ftps_sim(settings):
    with BambuFTPSSimulator(serial="01P00A391800123", access_code=ACCESS_CODE) as simulator:
        simulator.add_file(f"/cache/{BAMBU_FILE}", corpus(BAMBU_FILE))
        simulator.add_file("/model/plate 2 (copy).3mf", corpus("bambustudio-02.04.00.70_x1c_2plates.gcode.3mf"))
        simulator.add_file("/timelapse/video_2024-05-01.mp4", b"\x00\x00\x00\x18ftypmp42")
        settings.BAMBU_FTPS_PORT = simulator.port
        yield simulator


@pytest.fixture
def bambu(ftps_sim):
    printer = BambuPrinterFactory(name="P1S west", serial=ftps_sim.serial, host=ftps_sim.host)
    services.printer_set_credentials(printer=printer, secret=ACCESS_CODE)
    return printer


@pytest.fixture
def prusa_sim():
    with PrusaLinkSimulator(password=PRUSA_PASSWORD) as simulator:
        simulator.add_file("MINICU~1.BGC", "minicube mk4s.bgcode", corpus(PRUSA_FILE).read_bytes())
        simulator.add_file("README~1.TXT", "readme.txt", b"hello")
        yield simulator


@pytest.fixture
def prusa(prusa_sim):
    printer = PrinterFactory(name="Core One east", host=prusa_sim.host, port=prusa_sim.port)
    services.printer_set_credentials(printer=printer, secret=PRUSA_PASSWORD)
    return printer
