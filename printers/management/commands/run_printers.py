"""Keep one MQTT connection per active Bambu printer and record what the printers report.

Run exactly one of these per deployment (a supervisor restarts it): a Bambu printer accepts
very few MQTT clients, and commands from the admin and the API travel through this process.
SIGINT/SIGTERM stop it cleanly: pending states are written, connections closed, printers shown offline.
All connections share one network thread; new ones open at most BAMBU_CONNECTS_PER_SECOND a second.
"""

import logging
import signal
import threading
import time

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from printers import conf
from printers.listener import Listener

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Listen to every active Bambu printer over MQTT (one connection each) until interrupted."

    def add_arguments(self, parser):
        parser.add_argument("--stats-every", type=float, default=60.0,
                            help="Print counters every N seconds (0: never).")

    def handle(self, *args, stats_every: float, **options):
        if float(conf.value("BAMBU_CONNECTS_PER_SECOND")) <= 0 or int(conf.value("BAMBU_CONNECT_THREADS")) < 1:
            raise CommandError(_("BAMBU_CONNECTS_PER_SECOND must be above 0 and BAMBU_CONNECT_THREADS at least 1."))
        stop = threading.Event()

        def on_signal(signum, frame):
            logger.info("run_printers: signal %s, stopping.", signum)
            stop.set()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        listener = Listener()
        self.stdout.write("run_printers: listening to the Bambu printers (Ctrl-C stops).")
        self.stdout.flush()
        if stats_every > 0:
            def report():
                while not stop.wait(stats_every):
                    connected = sum(slot.connection.connected.is_set() for slot in list(listener.slots.values()))
                    self.stdout.write(f"run_printers: {len(listener.slots)} printers, {connected} connected, "
                                      f"{listener.stats}")
                    self.stdout.flush()

            threading.Thread(target=report, daemon=True).start()
        started = time.monotonic()
        listener.run(stop)
        self.stdout.write(f"run_printers: stopped after {time.monotonic() - started:.0f} s, {listener.stats}")
