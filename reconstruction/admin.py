from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.decorators import action, display

from fablab.admin_base import ReadOnlyTabInline
from fablab.exceptions import ApplicationError
from reconstruction import services
from reconstruction.choices import SCAN_STATUS_COLORS
from reconstruction.models import ScanJob, ScanPhoto


class PhotoInline(ReadOnlyTabInline):
    model = ScanPhoto
    fields = ["original_name", "width", "height", "size_bytes", "focal_length_mm", "camera"]


@admin.register(ScanJob)
class ScanJobAdmin(ModelAdmin):
    list_display = ["title", "organization", "show_status", "stage", "progress", "attempts", "created_at",
                    "finished_at"]
    list_filter = ["status", "stage", "organization"]
    search_fields = ["title", "organization__name"]
    readonly_fields = ["organization", "created_by", "status", "stage", "progress", "stage_timings", "report",
                       "error", "attempts", "cancel_requested_at", "started_at", "finished_at", "expires_at",
                       "purged_at", "mesh_stl", "mesh_3mf", "cad_step", "preview", "point_cloud"]
    inlines = [PhotoInline]
    actions = ["retry", "cancel", "add_to_catalog"]

    def has_add_permission(self, request):
        return False  # customers and partners create scans in the portal or the API

    @display(description=_("status"), label=SCAN_STATUS_COLORS)
    def show_status(self, obj):
        return obj.status, obj.get_status_display()

    def _each(self, request, queryset, service, done):
        for job in queryset:
            try:
                service(job=job)
            except ApplicationError as exc:
                messages.error(request, f"{job}: {exc.message}")
            else:
                messages.success(request, f"{job}: {done}")

    @action(description=_("Retry failed scans"))
    def retry(self, request, queryset):
        self._each(request, queryset, services.scan_job_retry, _("queued again"))

    @action(description=_("Add to the catalog"))
    def add_to_catalog(self, request, queryset):
        self._each(request, queryset, lambda job: services.scan_job_add_to_catalog(job=job, by=request.user),
                   _("added to the catalog"))

    @action(description=_("Cancel scans"))
    def cancel(self, request, queryset):
        self._each(request, queryset, services.scan_job_cancel, _("cancelled"))
