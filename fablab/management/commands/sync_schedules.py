from django.core.management.base import BaseCommand

from fablab.schedules import sync_schedules


class Command(BaseCommand):
    help = "Make the django-q2 schedules in the database match those declared in fablab/schedules.py."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Only say what would change.")

    def handle(self, *args, dry_run=False, **options):
        report = sync_schedules(dry_run=dry_run)
        for action in ("created", "updated", "deleted"):
            for name in report[action]:
                self.stdout.write(f"{'would be ' if dry_run else ''}{action}: {name}")
        self.stdout.write(self.style.SUCCESS(
            f"schedules: {len(report['created'])} created, {len(report['updated'])} updated, "
            f"{len(report['deleted'])} deleted, {len(report['unchanged'])} unchanged"
        ))
