import secrets
from dataclasses import dataclass
from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.decorators import action, display
from unfold.enums import ActionVariant

from fablab.admin_base import ReadOnlyTabInline
from fablab.exceptions import ApplicationError
from fablab.html import duration_text
from printers import selectors, services
from printers.admin.charts import Series, legend, line_chart
from printers.admin.records import PrinterCommandAdmin
from printers.choices import (
    COMMAND_DONE,
    COMMAND_STATUS_COLORS,
    PRINTER_STATE_COLORS,
    CommandAction,
    PrinterState,
)
from printers.models import Printer, PrinterJob, StateTransition
from printers.panels import file_urls, files_page_url, printer_panels


class PrinterForm(forms.ModelForm):
    secret = forms.CharField(
        label=_("Password or access code"), required=False, strip=True, max_length=services.SECRET_MAX_LENGTH,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Stored encrypted and never shown again. Leave empty to keep the current one."),
    )

    class Meta:
        model = Printer
        fields = ["name", "driver", "model", "serial", "host", "port", "files_port", "auth_method",
                  "nozzle_diameter_mm", "bed_x_mm", "bed_y_mm", "bed_z_mm", "location", "is_active",
                  "shared_with_partners"]


class TransitionInline(ReadOnlyTabInline):
    model = StateTransition
    fields = ["at", "from_state", "to_state", "reason"]
    ordering = ["-at", "-id"]
    per_page = 20

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-at", "-id")


class JobInline(ReadOnlyTabInline):
    model = PrinterJob
    fields = ["file_name", "external_job_id", "started_at", "ended_at", "outcome", "progress_reached",
              "duration_seconds", "end_reason"]
    ordering = ["-started_at", "-id"]
    per_page = 20


@dataclass(frozen=True)
class AdminCommand:
    """A button on the printer's page: the command it requests and its question."""

    action: str
    label: Promise
    question: Promise
    explanation: Promise | str
    light_on: bool | None = None

    def request(self, printer: Printer, *, idempotency_key: str = ""):
        """Request the command (it is carried out in the background; the printer's page shows its status)."""
        return services.printer_command_request(printer=printer, action=self.action, light_on=self.light_on,
                                                idempotency_key=idempotency_key)


ADMIN_COMMANDS = {
    "pause": AdminCommand(CommandAction.PAUSE, _("Pause"), _("Pause the current job?"),
                          _("The printer parks the head and waits until the job is resumed.")),
    "resume": AdminCommand(CommandAction.RESUME, _("Resume"), _("Resume the paused job?"),
                           _("The printer heats up again and goes on printing.")),
    "stop": AdminCommand(CommandAction.STOP, _("Stop"), _("Stop the current job?"),
                         _("The job is cancelled and cannot be resumed.")),
    "light_on": AdminCommand(CommandAction.LIGHT, _("Light on"), _("Switch the chamber light on?"), "", True),
    "light_off": AdminCommand(CommandAction.LIGHT, _("Light off"), _("Switch the chamber light off?"), "", False),
}
# Commands shown on the printer's page, newest first.
RECENT_COMMANDS = 5


def _form_key(request) -> str:
    """The idempotency key a confirmation form carries: sending the form twice requests one command."""
    return (request.POST.get("idempotency_key") or "").strip()[:100]

CHART_WINDOWS = {"1h": (timedelta(hours=1), _("1 h")), "6h": (timedelta(hours=6), _("6 h")),
                 "24h": (timedelta(hours=24), _("24 h"))}
DEFAULT_CHART_WINDOW = "6h"
COLOURS = {"nozzle": "#dc2626", "bed": "#2563eb", "chamber": "#16a34a", "progress": "#7c3aed"}


@admin.register(Printer)
class PrinterAdmin(ModelAdmin):
    form = PrinterForm
    list_display = ["name", "driver", "model", "location", "show_state", "show_progress", "show_remaining",
                    "show_last_report", "is_active"]
    list_filter = ["driver", "is_active", "live__state", "shared_with_partners"]
    search_fields = ["name", "model", "serial", "host", "location"]
    readonly_fields = ["show_state", "show_progress", "show_remaining", "show_temperatures", "show_file",
                       "show_slots", "show_nozzle", "show_ams", "show_warnings", "show_errors", "show_last_report",
                       "show_has_credentials"]
    fieldsets = [
        (None, {"fields": ["name", "driver", "model", "serial", "location", "is_active", "shared_with_partners"]}),
        (_("Connection"), {"fields": ["host", "port", "files_port", "auth_method", "secret",
                                      "show_has_credentials"]}),
        (_("Hardware"), {"fields": ["nozzle_diameter_mm", "bed_x_mm", "bed_y_mm", "bed_z_mm"]}),
        (_("Live state"), {"classes": ["tab"], "fields": [
            "show_state", "show_progress", "show_remaining", "show_temperatures", "show_file", "show_slots",
            "show_nozzle", "show_ams", "show_warnings", "show_errors", "show_last_report"]}),
    ]
    inlines = [JobInline, TransitionInline]
    actions = ["pause_printers", "resume_printers", "stop_printers"]
    actions_detail = ["detail_pause", "detail_resume", "detail_stop", "detail_light_on", "detail_light_off",
                      "detail_files"]
    change_form_outer_before_template = "printers/admin/printer_panel.html"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("live")

    def get_urls(self):
        return [
            path("fleet/", self.admin_site.admin_view(self.fleet_view), name="printers_fleet"),
            path("fleet.json", self.admin_site.admin_view(self.fleet_json), name="printers_fleet_json"),
            path("<int:object_id>/command/<str:command>/", self.admin_site.admin_view(self.command_view),
                 name="printers_printer_command"),
            *file_urls(self),
            *super().get_urls(),
        ]

    # --- the printer's page: charts and command buttons ------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        printer = self.get_object(request, object_id)
        if printer is not None:
            extra_context = {**(extra_context or {}), "printer_panel": self._panel(request, printer),
                             "printer_panels": printer_panels(request, [printer])[printer.pk],
                             "panels_next": request.get_full_path()}
        return super().change_view(request, object_id, form_url, extra_context)

    def _panel(self, request, printer: Printer) -> dict:
        window = request.GET.get("window", DEFAULT_CHART_WINDOW)
        if window not in CHART_WINDOWS:
            window = DEFAULT_CHART_WINDOW
        end = timezone.now()
        start = end - CHART_WINDOWS[window][0]
        data = selectors.printer_telemetry(printer=printer, since=start)
        live = self._live(printer)
        temperatures = []
        for part, label in (("nozzle", _("Nozzle")), ("bed", _("Bed")), ("chamber", _("Chamber"))):
            actual = data.get(f"{part}_c")
            if actual and any(v is not None for v in actual):
                temperatures.append(Series(str(label), actual, COLOURS[part]))
            target = data.get(f"{part}_target_c")
            if target and any(v is not None for v in target):
                temperatures.append(Series(str(_("%(part)s target") % {"part": label}), target, COLOURS[part],
                                           dashed=True))
            elif actual and live is not None and getattr(live, f"{part}_target_c", None):
                # Samples without targets: the current target as a reference line.
                now_target = getattr(live, f"{part}_target_c")
                temperatures.append(Series(str(_("%(part)s target now") % {"part": label}),
                                           [now_target] * len(data["at"]), COLOURS[part], dashed=True))
        progress = [Series(str(_("Progress")), data.get("progress_percent") or [], COLOURS["progress"])]
        has_progress = any(v is not None for v in progress[0].values)
        return {
            "window": window,
            "windows": [{"key": key, "label": label, "url": f"?window={key}", "active": key == window}
                        for key, (_span, label) in CHART_WINDOWS.items()],
            "samples": len(data["at"]),
            "temperature_chart": line_chart(times=data["at"], series=temperatures, start=start, end=end,
                                            unit="°C", y_min=0, title=str(_("Temperatures")))
            if temperatures else None,
            "temperature_legend": legend(temperatures),
            "progress_chart": line_chart(times=data["at"], series=progress, start=start, end=end, unit="%",
                                         y_min=0, y_max=100, title=str(_("Progress")))
            if has_progress else None,
            "chamber_now": live.chamber_temp_c if live is not None and "chamber_c" not in data else None,
            "warnings": selectors.printer_live_warnings(printer=printer),
            "commands": self._recent_commands(printer),
        }

    @staticmethod
    def _recent_commands(printer: Printer) -> dict:
        commands = list(selectors.printer_command_list(printer=printer)[:RECENT_COMMANDS])
        return {
            "rows": [{"action": PrinterCommandAdmin.action_text(command), "status": command.status,
                      "status_label": command.get_status_display(),
                      "color": COMMAND_STATUS_COLORS[command.status], "created_at": command.created_at,
                      "finished_at": command.finished_at, "error": command.error} for command in commands],
            "waiting": any(command.status not in COMMAND_DONE for command in commands),
            "log_url": reverse("admin:printers_printercommand_changelist") + f"?printer__id__exact={printer.pk}",
        }

    def _allowed_commands(self, request, object_id) -> set[str]:
        """The command buttons this user may press on this printer now (cached for the request)."""
        cache = request.__dict__.setdefault("_printer_commands", {})
        if object_id not in cache:
            printer = self.get_object(request, str(object_id))
            allowed = set()
            if printer is not None and self.has_change_permission(request, printer):
                live = self._live(printer)
                allowed = {name for name, spec in ADMIN_COMMANDS.items()
                           if not services.command_refusal(printer=printer, action=spec.action, live=live)}
            cache[object_id] = allowed
        return cache[object_id]

    def get_actions_detail(self, request, object_id):
        allowed = self._allowed_commands(request, object_id)
        prefix = f"{self.model._meta.app_label}_{self.model._meta.model_name}_detail_"

        def shown(name: str) -> bool:
            if name == "files":  # a page another app serves (printers.panels), when it is installed
                return files_page_url(object_id) is not None
            return name not in ADMIN_COMMANDS or name in allowed

        return [a for a in super().get_actions_detail(request, object_id)
                if shown(a.action_name.removeprefix(prefix))]

    @action(description=_("Files on the printer"), icon="folder_open", url_path="files-on-printer")
    def detail_files(self, request, object_id):
        url = files_page_url(object_id)
        if url is None:
            raise Http404
        return redirect(url)

    @action(description=_("Pause"), icon="pause", url_path="pause", variant=ActionVariant.WARNING)
    def detail_pause(self, request, object_id):
        return redirect("admin:printers_printer_command", object_id, "pause")

    @action(description=_("Resume"), icon="play_arrow", url_path="resume", variant=ActionVariant.PRIMARY)
    def detail_resume(self, request, object_id):
        return redirect("admin:printers_printer_command", object_id, "resume")

    @action(description=_("Stop"), icon="stop", url_path="stop", variant=ActionVariant.DANGER)
    def detail_stop(self, request, object_id):
        return redirect("admin:printers_printer_command", object_id, "stop")

    @action(description=_("Light on"), icon="light_mode", url_path="light-on")
    def detail_light_on(self, request, object_id):
        return redirect("admin:printers_printer_command", object_id, "light_on")

    @action(description=_("Light off"), icon="dark_mode", url_path="light-off")
    def detail_light_off(self, request, object_id):
        return redirect("admin:printers_printer_command", object_id, "light_off")

    def command_view(self, request, object_id: int, command: str):
        """GET asks for confirmation and sends nothing; POST (with the CSRF token) sends the command once."""
        spec = ADMIN_COMMANDS.get(command)
        printer = self.get_object(request, str(object_id))
        if spec is None or printer is None:
            raise Http404
        if not self.has_change_permission(request, printer):
            raise PermissionDenied
        change_url = reverse("admin:printers_printer_change", args=[printer.pk])
        refusal = services.command_refusal(printer=printer, action=spec.action)
        if refusal:
            self.message_user(request, refusal, messages.ERROR)
            return redirect(change_url)
        if request.method == "POST":
            try:
                spec.request(printer, idempotency_key=_form_key(request))
            except ApplicationError as exc:
                self.message_user(request, f"{printer}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, _("%(printer)s: %(command)s sent, waiting for the printer; its answer "
                                             "shows under Commands below.")
                                  % {"printer": printer, "command": spec.label}, messages.SUCCESS)
            return redirect(change_url)
        return TemplateResponse(request, "printers/admin/confirm_printer_command.html", {
            **self.admin_site.each_context(request), "title": spec.question, "opts": self.model._meta,
            "original": printer, "printer": printer, "live": self._live(printer), "command": spec,
            "back_url": change_url, "idempotency_key": secrets.token_urlsafe(16),
        })

    def fleet_view(self, request):
        """Every active printer as a card; the page refreshes the cards from fleet.json every few seconds."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request), "title": _("Printer fleet"), "opts": self.model._meta,
            "cards": self._fleet_cards(request), "json_url": reverse("admin:printers_fleet_json"),
            "next_url": request.get_full_path(),
            "change_url": reverse("admin:printers_printer_change", args=[0]).replace("/0/", "/{id}/"),
            "refresh_ms": 3000,
            "labels": {"nozzle": _("Nozzle"), "bed": _("Bed"), "chamber": _("Chamber"), "left": _("left"),
                       "layer": _("layer"), "updated": _("Updated"), "humidity": _("humidity"),
                       "humidity_scale": _("Humidity level as Bambu Studio shows it: 1 dry … 5 wet."),
                       "remaining_unknown": _("remaining unknown"),
                       "stale": _("Could not refresh; showing the last known state.")},
        }
        return TemplateResponse(request, "printers/admin/fleet.html", context)

    def fleet_json(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        return JsonResponse({"printers": self._fleet_cards(request)})

    @staticmethod
    def _fleet_cards(request) -> list[dict]:
        """The fleet's cards, each with the panels other apps add (printers.panels) as JSON."""
        cards = selectors.printer_fleet()
        printers = selectors.printer_list().filter(pk__in=[card["id"] for card in cards])
        panels = printer_panels(request, printers)
        for card in cards:
            card["panels"] = [panel.as_json() for panel in panels.get(card["id"], [])]
        return cards

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
        return duration_text(live.remaining_seconds) if live and live.remaining_seconds else "—"

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
        unknown = _("remaining unknown")
        return "; ".join(
            f"{'*' if s.get('loaded') else ''}{s.get('slot')}: {s.get('type')} {s.get('colour')} · "
            + (f"{s['remaining_percent']} %" if s.get("remaining_percent") is not None else unknown)
            for s in live.filament_slots
        )

    @display(description=_("nozzle"))
    def show_nozzle(self, obj):
        live = self._live(obj)
        if not live or (not live.nozzle_type and live.nozzle_diameter_mm is None):
            return "—"
        size = f"{live.nozzle_diameter_mm:g} mm " if live.nozzle_diameter_mm is not None else ""
        kind = live.nozzle_type.replace("_", " ") or _("type unknown")
        return f"{size}{kind}"

    @display(description=_("AMS"))
    def show_ams(self, obj):
        live = self._live(obj)
        if not live or not live.ams_units:
            return "—"
        parts = []
        humidity_label, wet_label = _("humidity"), _("wet")
        for unit in live.ams_units:
            level = unit.get("humidity_level")
            humidity = "—" if level is None else f"{level}/5" + (
                f" ({unit['humidity_percent']} %)" if unit.get("humidity_percent") is not None else "")
            temperature = f" · {unit['temp_c']:.0f} °C" if unit.get("temp_c") is not None else ""
            wet = f" · {wet_label}" if unit.get("wet") else ""
            parts.append(f"AMS {unit.get('id')}: {humidity_label} {humidity}{temperature}{wet}")
        return "; ".join(parts) + " " + str(_("(humidity 1 dry … 5 wet, as Bambu Studio shows it)"))

    @display(description=_("warnings"))
    def show_warnings(self, obj):
        warnings = selectors.printer_live_warnings(printer=obj) if obj.pk else []
        return "; ".join(warnings) or "—"

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
        """Through the services: a new printer gets its live state and encrypted credentials from
        printer_create, a change goes through printer_update (the form has validated what they check)."""
        secret = form.cleaned_data.get("secret") or ""
        if change:
            services.printer_update(printer=obj, secret=secret, **{
                name: form.cleaned_data[name] for name in form.changed_data if name in services.EDITABLE_FIELDS})
            return
        created = services.printer_create(secret=secret, **{
            name: form.cleaned_data[name] for name in PrinterForm.Meta.fields if name in form.cleaned_data})
        for field in Printer._meta.concrete_fields:  # the admin goes on with the form's instance
            setattr(obj, field.attname, getattr(created, field.attname))
        obj._state.adding, obj._state.db = False, created._state.db

    def _command(self, request, queryset, *, name: str, title: str, command: str):
        if request.POST.get("confirm") != "yes":
            return TemplateResponse(request, "admin/printers/confirm_command.html", {
                **self.admin_site.each_context(request), "title": title, "printers": list(queryset),
                "action": name, "opts": self.model._meta, "idempotency_key": secrets.token_urlsafe(16),
            })
        key = _form_key(request)
        for printer in queryset:
            try:
                ADMIN_COMMANDS[command].request(printer, idempotency_key=f"{key}:{printer.pk}" if key else "")
            except ApplicationError as exc:
                self.message_user(request, f"{printer}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, _("%(printer)s: command sent, waiting for the printer.")
                                  % {"printer": printer}, messages.SUCCESS)
        return None

    @action(description=_("Pause the current job"))
    def pause_printers(self, request, queryset):
        return self._command(request, queryset, name="pause_printers", title=_("Pause the current job?"),
                             command="pause")

    @action(description=_("Resume the paused job"))
    def resume_printers(self, request, queryset):
        return self._command(request, queryset, name="resume_printers", title=_("Resume the paused job?"),
                             command="resume")

    @action(description=_("Stop (cancel) the current job"))
    def stop_printers(self, request, queryset):
        return self._command(request, queryset, name="stop_printers", title=_("Stop the current job? "
                             "It cannot be resumed."), command="stop")
