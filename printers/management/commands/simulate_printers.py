"""Run simulated printers for the demo, manual tests and the fleet benchmark.

    manage.py simulate_printers --bambu 2 --prusa 1 --ftps-port 9990 --clear-plate-after 20 \
        --files var/demo-printer-files

Bambu printers connect as MQTT clients to a broker (default: MQTT_HOST:MQTT_PORT from the settings,
the local Mosquitto without TLS in the demo), user = their serial; models alternate (X1C and A1 by
default; P1S too). PrusaLink printers (Core One, or MK4) are HTTP servers on consecutive ports from
--prusa-port. They need nothing beside the code: their reports come from the project's payload model.

Each printer prints what it is sent (Bambu: an FTPS upload or a file on its SD card and
`project_file`; PrusaLink: a PUT upload and start) for the file's sliced time divided by --speed,
reporting progress, layers and time left as the file states them. --files DIR puts print files on
every printer: those in DIR/<MODEL>/ (DIR/X1C, DIR/A1, DIR/COREONE...) or else in DIR itself
(.gcode.3mf for Bambu, .gcode/.bgcode for PrusaLink); a printer without files gets a small one of the
simulators' own. With --auto-jobs every printer starts its files by itself, one after the other, as an
operator at the printer would: a few seconds after the start, and --job-gap seconds after each job's
end (the plate is cleared, then the next file starts). --fail-at-layer / --cancel-at-layer make every
printer's first job fail / be cancelled at that layer; --control FILE takes such orders while running
(see printers/simulators/control.py). Without --auto-jobs the printers wait for files they are sent (the
demo's print queue feeds them); --clear-plate-after N then clears a plate N seconds after its job ended.
--ftps-port P gives the n-th Bambu printer an FTPS server for its SD card on port P + n - 1 (files are
uploaded there, then started over MQTT; 0: no FTPS, the SD card holds only the --files). Serials, ports and
secrets are printed at start; printers.demo creates the matching Printer rows (files_port included). All
Bambu printers of one process share one network thread; --processes N splits them over N processes (for
hundreds of printers on several cores).
"""

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from printers.demo import DEMO_ACCESS_CODE, DEMO_PRUSA_PASSWORD, DEMO_PRUSA_PORT
from printers.simulators import control
from printers.simulators.bambu import BambuFleetSimulator
from printers.simulators.ftps import BambuFTPSSimulator
from printers.simulators.payloads import BAMBU_MODELS, PRUSA_MODELS, bambu_model, prusa_model, prusa_serial
from printers.simulators.prusalink import PrusaLinkSimulator
from printers.simulators.storage import BAMBU_FORMATS, PRUSA_FORMATS, builtin_print_file, files_in_folder

DEFAULT_SPEED = 5.0  # a demo print of the sample files takes a minute or two


def _positive(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = "Run simulated Bambu (MQTT) and PrusaLink (HTTP) printers until interrupted."

    def add_arguments(self, parser):
        parser.add_argument("--bambu", type=int, default=0, help="Number of simulated Bambu printers.")
        parser.add_argument("--prusa", type=int, default=0, help="Number of simulated PrusaLink printers.")
        parser.add_argument("--host", default=settings.MQTT_HOST, help="MQTT broker host.")
        parser.add_argument("--port", type=int, default=settings.MQTT_PORT, help="MQTT broker port.")
        parser.add_argument("--ca-file", default="", help="CA of the broker's TLS listener (empty: plain MQTT).")
        parser.add_argument("--access-code", default=DEMO_ACCESS_CODE, help="Bambu access code (broker password).")
        parser.add_argument("--profiles", default="X1C,A1",
                            help=f"Comma-separated Bambu models, taken in turn: {', '.join(BAMBU_MODELS)}.")
        parser.add_argument("--prusa-model", default="COREONE", help=f"One of {', '.join(PRUSA_MODELS)}.")
        parser.add_argument("--tick", type=_positive, default=1.0, help="Seconds per simulated tick (report period).")
        parser.add_argument("--speed", type=_positive, default=DEFAULT_SPEED,
                            help="Print this many times faster than the file's sliced time (1: real time).")
        parser.add_argument("--print-ticks", type=int, default=600,
                            help="Ticks a job of a file known only by name prints (the benchmark's printers).")
        parser.add_argument("--files", default="", help="Folder of print files to put on the printers' storage.")
        parser.add_argument("--first-index", type=int, default=1, help="Index of the first simulated serial.")
        parser.add_argument("--auto-jobs", action="store_true", help="Start jobs by themselves, again and again.")
        parser.add_argument("--job-gap", type=float, default=40.0,
                            help="Seconds a finished job stays on the plate before the next one starts.")
        parser.add_argument("--fail-at-layer", type=int, default=0, help="Every printer's first job fails there.")
        parser.add_argument("--cancel-at-layer", type=int, default=0,
                            help="Every printer's first job is cancelled there.")
        parser.add_argument("--clear-plate-after", type=float, default=0.0,
                            help="Without --auto-jobs: seconds after a job's end until its plate is cleared "
                                 "(0: never by itself).")
        parser.add_argument("--ftps-port", type=int, default=0,
                            help="FTPS port of the first Bambu printer's SD card, the next ones following "
                                 "(0: no FTPS).")
        parser.add_argument("--control", default="", help="A file to write orders to while running (JSON).")
        parser.add_argument("--prusa-port", type=int, default=DEMO_PRUSA_PORT, help="Port of the first PrusaLink.")
        parser.add_argument("--prusa-password", default=DEMO_PRUSA_PASSWORD)
        parser.add_argument("--seconds", type=float, default=0, help="Stop after N seconds (0: run until Ctrl-C).")
        parser.add_argument("--processes", type=int, default=1, help="Split the Bambu printers over N processes.")

    def handle(self, *args, **o):
        try:
            models = tuple(bambu_model(p).key for p in o["profiles"].split(",") if p.strip())
            prusa = prusa_model(o["prusa_model"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if not models:
            raise CommandError(f"--profiles names no model; choose from {', '.join(BAMBU_MODELS)}.")
        if o["clear_plate_after"] < 0 or o["ftps_port"] < 0:
            raise CommandError("--clear-plate-after and --ftps-port cannot be negative.")
        if o["processes"] < 1:
            raise CommandError("--processes must be at least 1.")
        if o["fail_at_layer"] < 0 or o["cancel_at_layer"] < 0 or (o["fail_at_layer"] and o["cancel_at_layer"]):
            raise CommandError("Give one of --fail-at-layer and --cancel-at-layer, with a layer from 1.")
        files_dir = Path(o["files"]) if o["files"] else None
        if files_dir is not None and not files_dir.is_dir():
            raise CommandError(f"--files {files_dir}: no such folder.")
        stop = threading.Event()
        previous = {}
        if threading.current_thread() is threading.main_thread():  # called in a thread: --seconds stops it
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous[signum] = signal.signal(signum, lambda *a: stop.set())
        try:
            self._run(o, models, prusa, files_dir, stop)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _run(self, o: dict, models: tuple[str, ...], prusa, files_dir: Path | None, stop: threading.Event) -> None:

        own, children = self._split(o)
        fleet = BambuFleetSimulator(
            count=own, host=o["host"], port=o["port"], access_code=o["access_code"], profiles=models,
            ca_file=o["ca_file"] or None, first_index=o["first_index"], tick_seconds=o["tick"],
            print_ticks=o["print_ticks"], auto_jobs=o["auto_jobs"], speed=o["speed"], job_gap_seconds=o["job_gap"],
            clear_plate_seconds=o["clear_plate_after"], files={},
        )
        storages = []
        try:
            for index, printer in enumerate(fleet.printers):
                if o["ftps_port"]:
                    storage = BambuFTPSSimulator(serial=printer.serial, access_code=o["access_code"],
                                                 port=o["ftps_port"] + index).start()
                    storages.append(storage)
                    printer.storage = storage
                found = files_in_folder(files_dir, printer.model.key, BAMBU_FORMATS) if files_dir else {}
                for name, data in (found or dict([builtin_print_file("3mf")])).items():
                    if printer.storage is not None:
                        printer.storage.add_file(f"/{name}", data)
                    else:
                        printer.add_file(name, data)
                self._first_job(printer, o)
                ftps = f" ftps=127.0.0.1:{printer.storage.port}" if printer.storage is not None else ""
                self.stdout.write(f"bambu {printer.model.key} serial={printer.serial} broker={o['host']}:{o['port']}"
                                  f"{ftps} files={len(printer.print_files())}")
        except OSError as exc:
            for storage in storages:
                storage.close()
            raise CommandError(f"FTPS simulator: {exc}") from None
        fleet.start()
        prusas = []
        for index in range(o["prusa"]):
            sim = PrusaLinkSimulator(password=o["prusa_password"], port=o["prusa_port"] + index, model=prusa.key,
                                     serial=prusa_serial(prusa, index + 1), speed=o["speed"],
                                     auto_jobs=o["auto_jobs"], job_gap_seconds=o["job_gap"],
                                     clear_plate_seconds=o["clear_plate_after"])
            found = files_in_folder(files_dir, prusa.key, PRUSA_FORMATS) if files_dir else {}
            for name, data in (found or dict([builtin_print_file("gcode")])).items():
                sim.add_print_file(name, data)
            self._first_job(sim, o)
            try:
                sim.start()
            except OSError as exc:
                fleet.stop()
                for running in prusas:
                    running.stop()
                for running in storages:
                    running.close()
                raise CommandError(f"PrusaLink simulator on port {sim.port}: {exc}") from None
            prusas.append(sim)
            self.stdout.write(f"prusalink {prusa.key} port={sim.port} user=maker files={len(sim.sim.files)}")
        self.stdout.flush()
        printers = [*fleet.printers, *prusas]
        started = last = time.monotonic()
        try:
            while not stop.wait(min(1.0, o["tick"])):
                now = time.monotonic()
                for sim in prusas:
                    sim.advance(now - last)
                last = now
                if o["control"]:
                    for line in control.read_and_apply(Path(o["control"]), printers):
                        self.stdout.write(f"control: {line}")
                    self.stdout.flush()
                if o["seconds"] and now - started >= o["seconds"]:
                    break
        finally:
            fleet.stop()
            for sim in prusas:
                sim.stop()
            for storage in storages:
                storage.close()
            for child in children:  # with --seconds they stop by themselves; an interrupt stops them
                if stop.is_set() or not o["seconds"]:
                    child.terminate()
                try:
                    child.wait(o["seconds"] + 30 if not stop.is_set() else 10)
                except subprocess.TimeoutExpired:
                    child.kill()
        self.stdout.write("simulate_printers: stopped.")

    @staticmethod
    def _first_job(printer, o: dict) -> None:
        if o["fail_at_layer"]:
            printer.fail_at_layer(o["fail_at_layer"])
        elif o["cancel_at_layer"]:
            printer.cancel_at_layer(o["cancel_at_layer"])

    @staticmethod
    def _split(o: dict) -> tuple[int, list[subprocess.Popen]]:
        """The Bambu printers this process runs; the others run in child processes (even slices keep the
        alternation of profiles)."""
        if o["processes"] == 1 or o["bambu"] < 2:
            return o["bambu"], []
        profiles = max(1, len([p for p in o["profiles"].split(",") if p.strip()]))
        chunk = -(-o["bambu"] // o["processes"])
        chunk = -(-chunk // profiles) * profiles
        children = []
        for first in range(chunk, o["bambu"], chunk):
            count = min(chunk, o["bambu"] - first)
            children.append(subprocess.Popen([
                sys.executable, str(settings.BASE_DIR / "manage.py"), "simulate_printers", "--bambu", str(count),
                "--first-index", str(o["first_index"] + first), "--host", o["host"], "--port", str(o["port"]),
                "--ca-file", o["ca_file"], "--access-code", o["access_code"], "--profiles", o["profiles"],
                "--tick", str(o["tick"]), "--print-ticks", str(o["print_ticks"]), "--seconds", str(o["seconds"]),
                "--speed", str(o["speed"]), "--job-gap", str(o["job_gap"]), "--files", o["files"],
                "--fail-at-layer", str(o["fail_at_layer"]), "--cancel-at-layer", str(o["cancel_at_layer"]),
                "--clear-plate-after", str(o["clear_plate_after"]),
                "--ftps-port", str(o["ftps_port"] + first if o["ftps_port"] else 0),
                *(["--auto-jobs"] if o["auto_jobs"] else []),
            ]))
        return min(chunk, o["bambu"]), children
