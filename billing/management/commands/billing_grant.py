"""Give an organization a plan without Stripe (partners, support): python manage.py billing_grant ORG_SLUG PLAN_KEY."""

from django.core.management.base import BaseCommand, CommandError

from billing import services
from fablab.exceptions import ApplicationError


class Command(BaseCommand):
    help = "Give an organization a complimentary plan (no Stripe subscription)."

    def add_arguments(self, parser):
        parser.add_argument("organization_slug")
        parser.add_argument("plan_key")
        parser.add_argument("--note", default="", help="Why the plan was given (shown in the admin).")

    def handle(self, *args, organization_slug, plan_key, note, **options):
        try:
            row = services.plan_grant_by_key(organization_slug=organization_slug, plan_key=plan_key,
                                             note=note or "billing_grant")
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"{row.organization} now has the {row.plan} plan (complimentary).")
