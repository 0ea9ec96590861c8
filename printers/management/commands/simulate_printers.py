"""Run fake printers for the demo, manual tests and the fleet benchmark.

    manage.py simulate_printers --bambu 2 --prusa 1

Bambu printers connect as MQTT clients to a broker (default: MQTT_HOST:MQTT_PORT from the settings,
the local Mosquitto without TLS in the demo), user = their serial; profiles alternate (X1, A1 by
default). PrusaLink printers are HTTP servers on consecutive ports from --prusa-port. With
--auto-jobs every fake printer starts a new job a while after the last one ended, so the fleet page
always has something to show. Serials, ports and secrets are printed at start; printers.demo
creates the matching Printer rows. All Bambu printers of one process share one network thread;
--processes N splits them over N processes (for hundreds of printers on several cores).
"""

import signal
import subprocess
import sys
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from printers.demo import DEMO_ACCESS_CODE, DEMO_PRUSA_PASSWORD, DEMO_PRUSA_PORT
from printers.simulators.bambu import PROFILES, BambuFleetSimulator, corpus_dir
from printers.simulators.prusalink import PrusaLinkSimulator


class Command(BaseCommand):
    help = "Run simulated Bambu (MQTT) and PrusaLink (HTTP) printers until interrupted."

    def add_arguments(self, parser):
        parser.add_argument("--bambu", type=int, default=0, help="Number of fake Bambu printers.")
        parser.add_argument("--prusa", type=int, default=0, help="Number of fake PrusaLink printers.")
        parser.add_argument("--host", default=settings.MQTT_HOST, help="MQTT broker host.")
        parser.add_argument("--port", type=int, default=settings.MQTT_PORT, help="MQTT broker port.")
        parser.add_argument("--ca-file", default="", help="CA of the broker's TLS listener (empty: plain MQTT).")
        parser.add_argument("--access-code", default=DEMO_ACCESS_CODE, help="Bambu access code (broker password).")
        parser.add_argument("--profiles", default="X1,A1", help=f"Comma-separated profiles: {', '.join(PROFILES)}.")
        parser.add_argument("--tick", type=float, default=1.0, help="Seconds per simulated tick (report period).")
        parser.add_argument("--print-ticks", type=int, default=600, help="Ticks a simulated job prints.")
        parser.add_argument("--first-index", type=int, default=1, help="Index of the first fake serial.")
        parser.add_argument("--auto-jobs", action="store_true", help="Start jobs by themselves, again and again.")
        parser.add_argument("--prusa-port", type=int, default=DEMO_PRUSA_PORT, help="Port of the first PrusaLink.")
        parser.add_argument("--prusa-password", default=DEMO_PRUSA_PASSWORD)
        parser.add_argument("--seconds", type=float, default=0, help="Stop after N seconds (0: run until Ctrl-C).")
        parser.add_argument("--processes", type=int, default=1, help="Split the Bambu printers over N processes.")

    def handle(self, *args, **o):
        profiles = tuple(p.strip().upper() for p in o["profiles"].split(",") if p.strip())
        unknown = [p for p in profiles if p not in PROFILES]
        if unknown or not profiles:
            raise CommandError(f"Unknown profile(s) {', '.join(unknown)}; choose from {', '.join(PROFILES)}.")
        if o["processes"] < 1:
            raise CommandError("--processes must be at least 1.")
        if o["bambu"] and not corpus_dir().is_dir():
            raise CommandError(f"The fake Bambu printers replay real reports from {corpus_dir()}, which does not "
                               "exist: set FABLAB_CORPUS to the shared corpus folder.")
        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *a: stop.set())
        signal.signal(signal.SIGTERM, lambda *a: stop.set())

        own, children = self._split(o)
        fleet = BambuFleetSimulator(
            count=own, host=o["host"], port=o["port"], access_code=o["access_code"], profiles=profiles,
            ca_file=o["ca_file"] or None, first_index=o["first_index"], tick_seconds=o["tick"],
            print_ticks=o["print_ticks"], auto_jobs=o["auto_jobs"],
        ).start()
        for printer in fleet.printers:
            self.stdout.write(f"bambu {printer.profile} serial={printer.serial} broker={o['host']}:{o['port']}")
        prusas = []
        for index in range(o["prusa"]):
            sim = PrusaLinkSimulator(password=o["prusa_password"], port=o["prusa_port"] + index).start()
            sim.add_file("BENCHY~1.BGC", "benchy 0.4n.bgcode", print_seconds=max(60, int(o["print_ticks"])))
            prusas.append(sim)
            self.stdout.write(f"prusalink port={sim.port} user=maker")
        self.stdout.flush()
        started = last = time.monotonic()
        try:
            while not stop.wait(min(1.0, o["tick"])):
                now = time.monotonic()
                for sim in prusas:
                    sim.advance(now - last)
                    if o["auto_jobs"]:
                        self._prusa_auto_job(sim)
                last = now
                if o["seconds"] and now - started >= o["seconds"]:
                    break
        finally:
            fleet.stop()
            for sim in prusas:
                sim.stop()
            for child in children:  # with --seconds they stop by themselves; an interrupt stops them
                if stop.is_set() or not o["seconds"]:
                    child.terminate()
                try:
                    child.wait(o["seconds"] + 30 if not stop.is_set() else 10)
                except subprocess.TimeoutExpired:
                    child.kill()
        self.stdout.write("simulate_printers: stopped.")

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
                *(["--auto-jobs"] if o["auto_jobs"] else []),
            ]))
        return min(chunk, o["bambu"]), children

    @staticmethod
    def _prusa_auto_job(sim: PrusaLinkSimulator) -> None:
        state = sim.sim.printer_state
        if state in ("FINISHED", "STOPPED"):
            sim.acknowledge()
        elif state in ("IDLE", "READY"):
            sim.start_print("BENCHY~1.BGC")
