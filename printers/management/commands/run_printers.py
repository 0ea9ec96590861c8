"""Keep one connection per active printer whose driver keeps one (Bambu: MQTT) and record what they report.

Run exactly one of these per deployment (a supervisor restarts it), or, for a large fleet, one per
shard (`--shard 0/2` and `--shard 1/2`: each serves the printers whose id modulo 2 is its index):
a Bambu printer accepts very few MQTT clients, and the commands the admin and the API request for
these printers travel through the process that holds the printer's connection.
SIGINT/SIGTERM stop it cleanly: pending states are written, connections closed, printers shown offline.
All connections share one network thread; new ones open at most BAMBU_CONNECTS_PER_SECOND a second.
"""

import logging
import re
import signal
import threading
import time

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from printers import conf
from printers.listener import Listener

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Listen to every active printer with a connection of its own (Bambu MQTT), one each, until interrupted."

    def add_arguments(self, parser):
        parser.add_argument("--stats-every", type=float, default=60.0,
                            help="Print counters every N seconds (0: never).")
        parser.add_argument("--shard", default="0/1", metavar="INDEX/COUNT",
                            help="Serve only the printers whose id modulo COUNT is INDEX (default 0/1: all).")

    def handle(self, *args, stats_every: float, shard: str = "0/1", **options):
        match = re.fullmatch(r"(\d+)/(\d+)", shard.strip())
        if not match or not int(match[1]) < int(match[2]):
            raise CommandError(_("--shard must be INDEX/COUNT with INDEX below COUNT, e.g. 0/2 and 1/2."))
        if float(conf.value("BAMBU_CONNECTS_PER_SECOND")) <= 0 or int(conf.value("BAMBU_CONNECT_THREADS")) < 1:
            raise CommandError(_("BAMBU_CONNECTS_PER_SECOND must be above 0 and BAMBU_CONNECT_THREADS at least 1."))
        stop = threading.Event()

        def on_signal(signum, frame):
            logger.info("run_printers: signal %s, stopping.", signum)
            stop.set()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        listener = Listener(shard=(int(match[1]), int(match[2])))
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
