"""Create or update the Stripe products and prices of the plans: python manage.py billing_sync_plans."""

from django.core.management.base import BaseCommand, CommandError

from billing import services
from fablab.exceptions import ApplicationError


class Command(BaseCommand):
    help = ("Create or update each paid plan's Stripe product, monthly price and metered overage price "
            "(found by lookup key; safe to run again).")

    def handle(self, *args, **options):
        try:
            report = services.plans_sync_to_stripe()
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        for line in report:
            self.stdout.write(line)
        if not report:
            self.stdout.write("No paid plan has a Stripe price lookup key: nothing to set up.")
