"""What the printers did and were told: their jobs and the commands sent to them, read-only (services write both)."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import ChoicesCheckboxFilter, RelatedDropdownFilter
from unfold.decorators import display

from fablab.admin_base import ReadOnlyModelAdmin
from fablab.html import duration_text
from printers.choices import COMMAND_STATUS_COLORS, JOB_OUTCOME_COLORS
from printers.models import PrinterCommand, PrinterJob


@admin.register(PrinterJob)
class PrinterJobAdmin(ModelAdmin):
    list_display = ["printer", "file_name", "started_at", "ended_at", "show_outcome", "progress_reached",
                    "show_duration"]
    list_filter = ["outcome", "printer"]
    search_fields = ["file_name", "external_job_id", "printer__name"]
    readonly_fields = [f.name for f in PrinterJob._meta.fields]

    def has_add_permission(self, request):
        return False  # jobs are recorded from what the printers report

    @display(description=_("outcome"), label=JOB_OUTCOME_COLORS, ordering="outcome")
    def show_outcome(self, obj):
        return obj.outcome, obj.get_outcome_display()

    @display(description=_("duration"), ordering="duration_seconds")
    def show_duration(self, obj):
        return duration_text(obj.duration_seconds)


@admin.register(PrinterCommand)
class PrinterCommandAdmin(ReadOnlyModelAdmin):
    """Commands sent from the admin and the API, and what became of them (written by services only)."""

    list_display = ["created_at", "printer", "show_action", "show_status", "sent_at", "finished_at", "error"]
    list_filter = [("status", ChoicesCheckboxFilter), ("action", ChoicesCheckboxFilter),
                   ("printer", RelatedDropdownFilter)]
    list_select_related = ["printer"]
    search_fields = ["printer__name", "error", "sequence_id"]
    date_hierarchy = "created_at"
    fields = ["printer", "action", "show_status", "params", "sequence_id", "error", "created_at", "sent_at",
              "finished_at"]
    readonly_fields = fields

    @staticmethod
    def action_text(command: PrinterCommand) -> str:
        params = command.params or {}
        detail = params.get("mode") or params.get("path") or params.get("file")
        return f"{command.get_action_display()} ({detail})" if detail else str(command.get_action_display())

    @display(description=_("action"), ordering="action")
    def show_action(self, obj):
        return self.action_text(obj)

    @display(description=_("status"), label=COMMAND_STATUS_COLORS, ordering="status")
    def show_status(self, obj):
        return obj.status, obj.get_status_display()
