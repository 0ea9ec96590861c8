"""Run the web server and both task clusters together until Ctrl-C."""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand


def _interrupt(signum, frame):
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Serve admin, portal and API and run the django-q2 clusters (default and long) until interrupted."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000", help="Address for runserver.")
        parser.add_argument(
            "--with-printers", action="store_true",
            help="Also run simulated printers (2 Bambu on the local MQTT broker, 1 PrusaLink) and run_printers.",
        )

    def handle(self, *args, addr: str, with_printers: bool = False, **options):
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        processes = {
            "web": subprocess.Popen([*manage, "runserver", addr]),
            "tasks": subprocess.Popen([*manage, "qcluster"]),
            "long tasks": subprocess.Popen(
                [*manage, "qcluster"], env={**os.environ, "Q_CLUSTER_NAME": settings.LONG_CLUSTER}
            ),
        }
        # Printer processes are optional: if one stops (e.g. a port is taken), the rest keeps serving.
        optional = {}
        if with_printers:
            optional = {
                "printer simulators": subprocess.Popen(
                    [*manage, "simulate_printers", "--bambu", "2", "--prusa", "1", "--auto-jobs"]),
                "printer listener": subprocess.Popen([*manage, "run_printers"]),
            }
        # A supervisor's SIGTERM stops everything just like Ctrl-C does.
        signal.signal(signal.SIGTERM, _interrupt)
        self.stdout.write(self.style.SUCCESS(f"fablab is running at http://{addr}/  (Ctrl-C stops it)"))
        exit_code = 0
        try:
            while True:
                for name, process in processes.items():
                    if process.poll() is not None:
                        self.stderr.write(f"{name} stopped with exit code {process.returncode}; stopping the rest.")
                        exit_code = process.returncode or 1
                        raise KeyboardInterrupt
                for name, process in list(optional.items()):
                    if process.poll() is not None:
                        self.stderr.write(f"{name} stopped with exit code {process.returncode}; serving without it.")
                        del optional[name]
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            processes.update(optional)
            for process in processes.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGINT)
            deadline = time.monotonic() + 15
            for process in processes.values():
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
        if exit_code:
            sys.exit(exit_code)
