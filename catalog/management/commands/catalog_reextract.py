"""Fill the extrusion per layer of sliced files stored before the catalog kept it.

    manage.py catalog_reextract [--all] [--id ID ...]

By default only files that were read (status done), are sliced and have no layer table yet
are read again; --all reads every read file; --id limits to the given files. Only the layer
table is written: metadata, thumbnails and corrections stay as they are. Safe to run twice.
"""

from django.core.management.base import BaseCommand

from catalog import services
from catalog.choices import ExtractionStatus
from catalog.models import SlicedFile


class Command(BaseCommand):
    help = "Compute the extrusion per layer of stored sliced files that lack it."

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="recompute every read file, not only those without")
        parser.add_argument("--id", type=int, action="append", dest="ids", metavar="ID", help="only this file")

    def handle(self, *args, **options):
        files = SlicedFile.objects.filter(status=ExtractionStatus.DONE, sliced=True).order_by("pk")
        if options["ids"]:
            files = files.filter(pk__in=options["ids"])
        if not options["all"]:
            files = files.filter(layers={})
        done = with_layers = 0
        for sliced_file in files.iterator():
            services.sliced_file_refresh_layers(sliced_file=sliced_file)
            done += 1
            with_layers += bool(sliced_file.layers)
        self.stdout.write(f"{done} file(s) read again, {with_layers} with layers.")
