"""Publish every printer's state to Home Assistant over MQTT discovery until interrupted.

Optional: without HOME_ASSISTANT_MQTT_URL it says so and exits. Run one per deployment next to
run_printers (a supervisor restarts it); it only reads the database.
"""

import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from fablab.exceptions import ApplicationError
from printers import homeassistant


class Command(BaseCommand):
    help = "Publish the printers' states to Home Assistant (MQTT discovery) until interrupted."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=1.0,
                            help="Seconds between two looks at the database for changed printers (default 1).")
        parser.add_argument("--once", action="store_true",
                            help="Publish every config and state once, then exit.")

    def handle(self, *args, interval: float, once: bool, **options):
        if interval <= 0:
            raise CommandError("--interval must be more than 0 seconds.")
        try:
            config = homeassistant.broker_config()
            if config is None:
                self.stdout.write("HOME_ASSISTANT_MQTT_URL is not set; nothing to publish.")
                return
            publisher = homeassistant.HomeAssistantPublisher(config=config).connect()
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        try:
            if once:
                count = publisher.publish_all()
                self.stdout.write(f"publish_home_assistant: published {count} printers to {config.host}.")
                return
            stop = threading.Event()
            signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
            signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
            self.stdout.write(f"publish_home_assistant: publishing to {config.host}:{config.port} "
                              f"(prefix {publisher.prefix}); Ctrl-C stops.")
            self.stdout.flush()
            publisher.run(stop, interval=interval)
            self.stdout.write(f"publish_home_assistant: stopped, {publisher.stats}")
        finally:
            publisher.close()
