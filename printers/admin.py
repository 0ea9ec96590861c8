from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.decorators import action, display

from fablab.admin_base import ReadOnlyTabInline
from fablab.exceptions import ApplicationError
from printers import selectors, services
from printers.choices import JOB_OUTCOME_COLORS, PRINTER_STATE_COLORS, PrinterState
from printers.models import Printer, PrinterJob, StateTransition


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return "—"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min"


class PrinterForm(forms.ModelForm):
    secret = forms.CharField(
        label=_("Password or access code"), required=False, strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Stored encrypted and never shown again. Leave empty to keep the current one."),
    )

    class Meta:
        model = Printer
        fields = ["name", "driver", "model", "serial", "host", "port", "auth_method", "nozzle_diameter_mm",
                  "bed_x_mm", "bed_y_mm", "bed_z_mm", "location", "is_active", "shared_with_partners"]


class TransitionInline(ReadOnlyTabInline):
    model = StateTransition
    fields = ["at", "from_state", "to_state", "reason"]
    ordering = ["-at", "-id"]

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-at", "-id")


class JobInline(ReadOnlyTabInline):
    model = PrinterJob
    fields = ["file_name", "external_job_id", "started_at", "ended_at", "outcome", "progress_reached",
              "duration_seconds", "end_reason"]


@admin.register(Printer)
class PrinterAdmin(ModelAdmin):
    form = PrinterForm
    list_display = ["name", "driver", "model", "location", "show_state", "show_progress", "show_remaining",
                    "show_last_report", "is_active"]
    list_filter = ["driver", "is_active", "live__state", "shared_with_partners"]
    search_fields = ["name", "model", "serial", "host", "location"]
    readonly_fields = ["show_state", "show_progress", "show_remaining", "show_temperatures", "show_file",
                       "show_slots", "show_errors", "show_last_report", "show_has_credentials"]
    fieldsets = [
        (None, {"fields": ["name", "driver", "model", "serial", "location", "is_active", "shared_with_partners"]}),
        (_("Connection"), {"fields": ["host", "port", "auth_method", "secret", "show_has_credentials"]}),
        (_("Hardware"), {"fields": ["nozzle_diameter_mm", "bed_x_mm", "bed_y_mm", "bed_z_mm"]}),
        (_("Live state"), {"classes": ["tab"], "fields": [
            "show_state", "show_progress", "show_remaining", "show_temperatures", "show_file", "show_slots",
            "show_errors", "show_last_report"]}),
    ]
    inlines = [JobInline, TransitionInline]
    actions = ["pause_printers", "resume_printers", "stop_printers"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("live")

    def get_urls(self):
        return [
            path("fleet/", self.admin_site.admin_view(self.fleet_view), name="printers_fleet"),
            path("fleet.json", self.admin_site.admin_view(self.fleet_json), name="printers_fleet_json"),
            *super().get_urls(),
        ]

    def fleet_view(self, request):
        """Every active printer as a card; the page refreshes the cards from fleet.json every few seconds."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request), "title": _("Printer fleet"), "opts": self.model._meta,
            "cards": selectors.printer_fleet(), "json_url": reverse("admin:printers_fleet_json"),
            "change_url": reverse("admin:printers_printer_change", args=[0]).replace("/0/", "/{id}/"),
            "refresh_ms": 3000,
            "labels": {"nozzle": _("Nozzle"), "bed": _("Bed"), "chamber": _("Chamber"), "left": _("left"),
                       "layer": _("layer"), "updated": _("Updated"),
                       "stale": _("Could not refresh; showing the last known state.")},
        }
        return TemplateResponse(request, "printers/admin/fleet.html", context)

    def fleet_json(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        return JsonResponse({"printers": selectors.printer_fleet()})

    def _live(self, obj):
        return getattr(obj, "live", None) if obj.pk else None

    @display(description=_("state"), label=PRINTER_STATE_COLORS, ordering="live__state")
    def show_state(self, obj):
        live = self._live(obj)
        state = live.state if live else PrinterState.OFFLINE
        return state, PrinterState(state).label

    @display(description=_("progress"))
    def show_progress(self, obj):
        live = self._live(obj)
        if not live or live.progress_percent is None or live.state == PrinterState.IDLE:
            return "—"
        layers = f" · {live.layer}/{live.total_layers}" if live.layer is not None and live.total_layers else ""
        return f"{live.progress_percent:.0f} %{layers}"

    @display(description=_("remaining"))
    def show_remaining(self, obj):
        live = self._live(obj)
        return _duration(live.remaining_seconds) if live and live.remaining_seconds else "—"

    @display(description=_("temperatures"))
    def show_temperatures(self, obj):
        live = self._live(obj)
        if not live:
            return "—"

        def pair(now, target):
            return "—" if now is None else f"{now:.0f} °C" + (f" → {target:.0f} °C" if target else "")

        parts = [_("nozzle") + " " + pair(live.nozzle_temp_c, live.nozzle_target_c),
                 _("bed") + " " + pair(live.bed_temp_c, live.bed_target_c)]
        if live.chamber_temp_c is not None:
            parts.append(_("chamber") + " " + pair(live.chamber_temp_c, live.chamber_target_c))
        return " · ".join(parts)

    @display(description=_("current file"))
    def show_file(self, obj):
        live = self._live(obj)
        return (live.current_file if live else "") or "—"

    @display(description=_("filament slots"))
    def show_slots(self, obj):
        live = self._live(obj)
        if not live or not live.filament_slots:
            return "—"
        return "; ".join(
            f"{'*' if s.get('loaded') else ''}{s.get('slot')}: {s.get('type')} {s.get('colour')}"
            + (f" {s['remaining_percent']} %" if s.get("remaining_percent") is not None else "")
            for s in live.filament_slots
        )

    @display(description=_("errors"))
    def show_errors(self, obj):
        live = self._live(obj)
        if not live or not live.errors:
            return "—"
        return "; ".join(f"{e.get('code')}: {e.get('text')}" for e in live.errors)

    @display(description=_("last report"), ordering="live__last_report_at")
    def show_last_report(self, obj):
        live = self._live(obj)
        if not live or not live.last_report_at:
            return "—"
        return live.last_report_at.strftime("%Y-%m-%d %H:%M:%S") + (f" ({live.last_error})" if live.last_error else "")

    @display(description=_("credentials stored"), boolean=True)
    def show_has_credentials(self, obj):
        return obj.has_credentials

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        services.printer_ensure_live_state(printer=obj)
        if form.cleaned_data.get("secret"):
            services.printer_set_credentials(printer=obj, secret=form.cleaned_data["secret"])

    def _command(self, request, queryset, *, name: str, title: str, service):
        if request.POST.get("confirm") != "yes":
            return TemplateResponse(request, "admin/printers/confirm_command.html", {
                **self.admin_site.each_context(request), "title": title, "printers": list(queryset),
                "action": name, "opts": self.model._meta,
            })
        for printer in queryset:
            try:
                service(printer=printer)
            except ApplicationError as exc:
                self.message_user(request, f"{printer}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, _("%(printer)s: command sent.") % {"printer": printer}, messages.SUCCESS)
        return None

    @action(description=_("Pause the current job"))
    def pause_printers(self, request, queryset):
        return self._command(request, queryset, name="pause_printers", title=_("Pause the current job?"),
                             service=services.printer_pause)

    @action(description=_("Resume the paused job"))
    def resume_printers(self, request, queryset):
        return self._command(request, queryset, name="resume_printers", title=_("Resume the paused job?"),
                             service=services.printer_resume)

    @action(description=_("Stop (cancel) the current job"))
    def stop_printers(self, request, queryset):
        return self._command(request, queryset, name="stop_printers", title=_("Stop the current job? "
                             "It cannot be resumed."), service=services.printer_stop)


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
        return _duration(obj.duration_seconds)
