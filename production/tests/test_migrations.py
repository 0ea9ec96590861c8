"""The downloads into the catalog move from the printers app's table to production's, and back when unapplied."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from catalog.tests.factories import VariantFactory
from fablab.tests.factories import UserFactory
from printers.tests.factories import PrinterFactory

BEFORE = [("printers", "0004_file_import"), ("production", None)]
REQUESTED = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)


def migrate(targets) -> object:
    """Migrate to `targets` and return the apps of that state (only the file downloads differ between them)."""
    return MigrationExecutor(connection).migrate(targets).apps


@pytest.mark.django_db(transaction=True)
def test_downloads_move_to_production_with_their_ids_and_back():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    printer, user, variant = PrinterFactory(), UserFactory(), VariantFactory()
    try:
        before = migrate(BEFORE)
        old = before.get_model("printers", "PrinterFileImport")
        done = old.objects.create(id=41, printer_id=printer.pk, path="/usb/A~1.BGC", variant_id=variant.pk,
                                  requested_by_id=user.pk, status="failed", error="too large", finished_at=REQUESTED)
        waiting = old.objects.create(id=42, printer_id=printer.pk, path="/usb/B~1.BGC", status="queued")
        running = old.objects.create(id=43, printer_id=printer.pk, path="/usb/C~1.BGC", status="running")
        old.objects.filter(pk__in=[41, 42, 43]).update(created_at=REQUESTED)

        after = migrate(latest)
        new = after.get_model("production", "PrinterFileImport")
        rows = {row.pk: row for row in new.objects.all()}
        assert sorted(rows) == [41, 42, 43]
        copied = rows[41]
        assert (copied.printer_id, copied.path, copied.variant_id, copied.requested_by_id, copied.status,
                copied.error, copied.created_at, copied.finished_at) == (
            printer.pk, "/usb/A~1.BGC", variant.pk, user.pk, "failed", "too large", REQUESTED, REQUESTED)
        # queued under the old task name, they can never finish: failed, with a reason the person can act on
        for pk in (42, 43):
            assert rows[pk].status == "failed" and "Ask for it again" in rows[pk].error
            assert rows[pk].finished_at is not None and rows[pk].created_at == REQUESTED
        assert "printerfileimport" not in {m._meta.model_name for m in after.get_app_config("printers").get_models()}
        assert new.objects.create(printer_id=printer.pk, path="/usb/D~1.BGC").pk > 43  # ids go on after the last

        back = migrate(BEFORE)
        returned = back.get_model("printers", "PrinterFileImport")
        assert sorted(returned.objects.values_list("pk", flat=True)) == [41, 42, 43, 44]
        assert returned.objects.get(pk=41).requested_by_id == user.pk
        assert [waiting.pk, running.pk, done.pk] == [42, 43, 41]
    finally:
        migrate(latest)


@pytest.mark.django_db(transaction=True)
def test_jobs_printed_before_copies_were_counted_count_their_completed_attempts():
    from production.tests.factories import VersionFactory

    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    version = VersionFactory()
    try:
        before = migrate([("production", "0003_printer_loop")])
        job_model, attempt_model = before.get_model("production", "PrintJob"), before.get_model("production",
                                                                                                  "PrintAttempt")
        printed = job_model.objects.create(version_id=version.pk, copies=3, status="queued")
        waiting = job_model.objects.create(version_id=version.pk, copies=2, status="queued")
        for number, outcome in enumerate(["completed", "failed", "completed", "running"], start=1):
            attempt_model.objects.create(job_id=printed.pk, number=number, outcome=outcome)
        attempt_model.objects.create(job_id=waiting.pk, number=1, outcome="cancelled")

        after = migrate(latest).get_model("production", "PrintJob")
        assert after.objects.get(pk=printed.pk).copies_done == 2
        assert after.objects.get(pk=waiting.pk).copies_done == 0
    finally:
        migrate(latest)
