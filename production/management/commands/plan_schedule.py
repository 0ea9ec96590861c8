"""Plan an instance of the exchange format and print the plan as JSON, without touching the database.

    manage.py plan_schedule --instance FILE.json [--time-limit SECONDS]

`--instance -` reads the instance from standard input. A bad instance prints every problem found
(with where it is) to standard error and exits with status 1.
"""

import json
import math
import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from production.planning import DEFAULT_TIME_LIMIT_S, InstanceError, load_instance, plan

MAX_TIME_LIMIT_S = 3600


def _time_limit(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or not 0 < seconds <= MAX_TIME_LIMIT_S:
        raise CommandError(_("--time-limit must be a number of seconds above 0 and at most %(max)s.")
                           % {"max": MAX_TIME_LIMIT_S})
    return seconds


class Command(BaseCommand):
    help = "Plan a print-farm instance (JSON exchange format) and print the plan as JSON (no database access)."
    requires_system_checks = []
    requires_migrations_checks = False

    def add_arguments(self, parser):
        parser.add_argument("--instance", required=True, metavar="FILE.json",
                            help="the instance to plan; - reads standard input")
        parser.add_argument("--time-limit", default=str(DEFAULT_TIME_LIMIT_S), metavar="SECONDS",
                            help=f"what CP-SAT may spend, in seconds (default {DEFAULT_TIME_LIMIT_S:g})")

    def handle(self, *args, **options):
        seconds = _time_limit(options["time_limit"])
        path = options["instance"]
        try:
            if path == "-":
                text = sys.stdin.buffer.read()
            else:
                with open(path, "rb") as handle:
                    text = handle.read()
        except OSError as exc:
            raise CommandError(_("Cannot read %(path)s: %(error)s") % {"path": path, "error": exc.strerror}) from None
        try:
            instance = load_instance(text)
        except InstanceError as exc:
            raise CommandError(_("The instance cannot be planned:") + "\n" + exc.message) from None
        result = plan(instance, time_limit_s=seconds)
        self.stdout.write(json.dumps(result.to_dict(), indent=2))
