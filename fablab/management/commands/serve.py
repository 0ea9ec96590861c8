"""Run the web server and both task clusters together until Ctrl-C."""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

DEMO_CLEAR_PLATE_SECONDS = 20  # how long a simulated printer's finished print stays on its plate


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass  # already gone


class Command(BaseCommand):
    help = "Serve admin, portal and API and run the django-q2 clusters (default and long) until interrupted."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000", help="Address for runserver.")
        parser.add_argument(
            "--with-printers", action="store_true",
            help="Also run simulated printers (2 Bambu on the local MQTT broker, 1 PrusaLink) that print what "
                 "the demo's print queue sends them and clear their own plates, and run_printers.",
        )

    def handle(self, *args, addr: str, with_printers: bool = False, **options):
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]

        base_env = dict(os.environ)
        if with_printers:
            # The simulated printers clear their own plates: a demo printer idle again counts as cleared,
            # so automatic dispatch sends it the next queued job (settings.PRODUCTION_IDLE_MEANS_PLATE_CLEARED).
            base_env["DEMO_PLATES_CLEAR_THEMSELVES"] = "1"

        def start(*command, env=None):
            # Each child leads its own process group, so that stopping it also stops what it
            # started (the task clusters' workers) and a Ctrl-C reaches it once, from here.
            return subprocess.Popen([*manage, *command], env={**base_env, **(env or {})}, start_new_session=True)

        processes = {
            "web": start("runserver", addr),
            "tasks": start("qcluster"),
            "long tasks": start("qcluster", env={"Q_CLUSTER_NAME": settings.LONG_CLUSTER}),
        }
        # Printer processes are optional: if one stops (e.g. a port is taken), the rest keeps serving.
        optional = {}
        if with_printers:
            from printers.demo import DEMO_FTPS_PORT, demo_files_dir

            # The simulated printers hold the sample files `manage.py demo` put on their storage and print what
            # the print queue sends them (uploaded to each Bambu printer's own FTPS port); a while after a job
            # ends they clear their plate and wait for the next one.
            files = demo_files_dir()
            optional = {
                "printer simulators": start("simulate_printers", "--bambu", "2", "--prusa", "1",
                                            "--ftps-port", str(DEMO_FTPS_PORT),
                                            "--clear-plate-after", str(DEMO_CLEAR_PLATE_SECONDS),
                                            *(["--files", str(files)] if files.is_dir() else [])),
                "printer listener": start("run_printers"),
            }
            if settings.HOME_ASSISTANT_MQTT_URL:
                optional["Home Assistant publisher"] = start("publish_home_assistant")
        # A supervisor's SIGTERM stops everything just like Ctrl-C does.
        previous_handlers = {signum: signal.signal(signum, _interrupt) if signum == signal.SIGTERM
                             else signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
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
            # A second Ctrl-C or SIGTERM (a supervisor or `make` passing one on) must not cut the clean-up
            # short: children left running would hold the ports and keep printing.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            processes.update(optional)
            for process in processes.values():
                _signal_group(process, signal.SIGINT)
            deadline = time.monotonic() + 20
            for process in processes.values():
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
                _signal_group(process, signal.SIGKILL)  # whatever is left of its group
            for signum, handler in previous_handlers.items():
                signal.signal(signum, handler)
        if exit_code:
            sys.exit(exit_code)
