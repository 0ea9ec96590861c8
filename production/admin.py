"""Admin pages of production.

"Files on the printer", a page of each printer in the admin (registered with the printer's admin
through `printers.panels`, so its address stays under the printer's):

- `/admin/printers/printer/<id>/files/` (name `printers_printer_files`): the files on the printer,
  newest first, each file that can go into the catalog with a "Download to catalog" button; one
  select above the table picks the target catalog variant (empty: a new model named after the file);
- `/admin/printers/printer/<id>/files/import/` (name `printers_printer_files_import`): POST only,
  CSRF-protected; queues the download (`services.printer_file_import_request`, carried out by a
  background task) and returns to the list, which shows the recent downloads with their outcome.

Viewing needs the view permission on printers; importing also needs the change permission on
printers and the catalog's permission to add versions (and models, for a new model).

The print queue (Production → Print queue): the waiting and past jobs in queue order (priority, then
the hand-set position, then age) with their feasibility and its reasons; drag a row and save to set
the order within a priority; actions cancel, re-queue, change the priority and check the queue again;
the add form queues a job through `services.print_job_create`.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import ChoicesCheckboxFilter
from unfold.decorators import action, display

from catalog import selectors as catalog_selectors
from fablab.admin_base import ReadOnlyTabInline
from fablab.exceptions import ApplicationError
from inventory.models import grams_display
from printers import files as printer_files
from printers.panels import FILES_URL_NAME, register_file_urls
from production import selectors, services
from production.choices import PRINT_JOB_STATUS_COLORS, PRIORITY_COLORS, WAITING_STATUSES, Priority
from production.models import PrintAttempt, PrinterStation, PrintJob, SlotAllocation, SpoolLoad, UnknownPrint

IMPORT_URL_NAME = "printers_printer_files_import"
IMPORT_PERMISSIONS = ("catalog.add_variantversion",)
NEW_MODEL_PERMISSIONS = ("catalog.add_model", "catalog.add_modelvariant")
RECENT_IMPORTS = 10


class FileImportForm(forms.Form):
    path = forms.CharField(max_length=printer_files.MAX_PATH_LENGTH, strip=False)
    variant = forms.ModelChoiceField(
        label=gettext_lazy("Add to"), required=False, queryset=None,
        empty_label=gettext_lazy("A new model named after the file"),
        help_text=gettext_lazy("The catalog variant that gets the file as its next version."),
        widget=forms.Select(attrs={"class": "border border-base-200 dark:border-base-700 rounded-default px-2 py-1 "
                                            "bg-white dark:bg-base-900 max-w-full"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["variant"].queryset = catalog_selectors.variant_list()


def _printer(printer_admin, request, object_id, *, change: bool = False):
    printer = printer_admin.get_object(request, str(object_id))
    if printer is None:
        raise Http404(_("No such printer."))
    allowed = (printer_admin.has_change_permission(request, printer) if change
               else printer_admin.has_view_permission(request, printer))
    if not allowed:
        raise PermissionDenied
    return printer


def _may_import(printer_admin, request, printer) -> bool:
    return printer_admin.has_change_permission(request, printer) and request.user.has_perms(IMPORT_PERMISSIONS)


def printer_files_view(printer_admin, request, object_id):
    printer = _printer(printer_admin, request, object_id)
    error = ""
    try:
        entries = selectors.printer_file_list(printer=printer)
    except ApplicationError as exc:
        entries, error = [], exc.message
    context = {
        **printer_admin.admin_site.each_context(request),
        "title": _("Files on %(printer)s") % {"printer": printer.name},
        "opts": printer_admin.model._meta,
        "original": printer,
        "printer": printer,
        "entries": entries,
        "error": error,
        "form": FileImportForm(),
        "imports": selectors.printer_file_import_list(printer=printer)[:RECENT_IMPORTS],
        "may_import": _may_import(printer_admin, request, printer),
        "import_url": reverse(f"admin:{IMPORT_URL_NAME}", args=[printer.pk]),
        "change_url": reverse("admin:printers_printer_change", args=[printer.pk]),
    }
    return TemplateResponse(request, "production/admin/printer_files.html", context)


def printer_file_import_view(printer_admin, request, object_id):
    printer = _printer(printer_admin, request, object_id, change=True)
    if not _may_import(printer_admin, request, printer):
        raise PermissionDenied
    back = reverse(f"admin:{FILES_URL_NAME}", args=[printer.pk])
    form = FileImportForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            label = (form.fields[field].label or field) if field in form.fields else field
            messages.error(request, f"{label}: {' '.join(errors)}")
        return HttpResponseRedirect(back)
    variant = form.cleaned_data["variant"]
    if variant is None and not request.user.has_perms(NEW_MODEL_PERMISSIONS):
        raise PermissionDenied
    try:
        queued = services.printer_file_import_request(printer=printer, path=form.cleaned_data["path"],
                                                      user=request.user, variant=variant)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return HttpResponseRedirect(back)
    messages.success(request, _("%(path)s is being downloaded into the catalog in the background; see "
                                "“Downloads to the catalog” below.") % {"path": queued.path})
    return HttpResponseRedirect(back)


@register_file_urls
def printer_file_urls(printer_admin) -> list:
    """The file pages, mounted by the printer's admin under /admin/printers/printer/."""
    site = printer_admin.admin_site

    def list_view(request, object_id):
        return printer_files_view(printer_admin, request, object_id)

    def import_view(request, object_id):
        return printer_file_import_view(printer_admin, request, object_id)

    return [
        path("<int:object_id>/files/", site.admin_view(list_view), name=FILES_URL_NAME),
        path("<int:object_id>/files/import/", site.admin_view(require_POST(import_view)), name=IMPORT_URL_NAME),
    ]


# --- the print queue -----------------------------------------------------------------------------


class PrintJobAddForm(forms.ModelForm):
    class Meta:
        model = PrintJob
        fields = ["version", "plate", "copies", "priority", "due_at", "purpose", "reference", "notes"]

    def clean(self):
        cleaned = super().clean()
        version, plate = cleaned.get("version"), cleaned.get("plate")
        if version is not None and plate is not None:
            try:
                services.print_job_check_plate(version=version, plate=plate)
            except ApplicationError as exc:
                raise ValidationError(exc.message) from None
        return cleaned


class _TextFilter(admin.SimpleListFilter):
    """Jobs whose variant's file states a value (the variant's copy of its current file's metadata)."""

    field = ""

    def lookups(self, request, model_admin):
        values = set()
        for text in (PrintJob.objects.values_list(f"version__variant__{self.field}", flat=True).distinct()):
            values |= {part.strip() for part in (text or "").split(",") if part.strip()}
        return [(value, value) for value in sorted(values)]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{f"version__variant__{self.field}__icontains": self.value()})
        return queryset


class MaterialFilter(_TextFilter):
    title = gettext_lazy("material")
    parameter_name = "material"
    field = "filament_types"


class ColourFilter(_TextFilter):
    title = gettext_lazy("colour")
    parameter_name = "colour"
    field = "filament_colours"


class AttemptInline(ReadOnlyTabInline):
    model = PrintAttempt
    fields = ["number", "printer", "printer_job", "file_name", "started_at", "finished_at", "outcome", "reason",
              "booked_at"]


@admin.register(PrintJob)
class PrintJobAdmin(ModelAdmin):
    list_display = ["id", "show_status", "show_priority", "version", "plate", "copies", "due_at",
                    "show_feasibility", "owner"]
    list_display_links = ["id", "version"]
    list_filter = [("status", ChoicesCheckboxFilter), ("priority", ChoicesCheckboxFilter), MaterialFilter,
                   ColourFilter]
    search_fields = ["reference", "version__variant__sku", "version__variant__model__name"]
    ordering_field = "position"
    hide_ordering_field = True
    list_per_page = 100
    actions = ["send_now", "cancel_selected", "requeue_selected", "priority_urgent", "priority_high",
               "priority_normal", "priority_low"]
    actions_list = ["recheck"]
    inlines = [AttemptInline]
    autocomplete_fields = ["version"]
    readonly_fields = ["organization", "version", "plate", "copies", "priority", "due_at", "purpose", "reference",
                       "queued_by", "status", "show_feasibility", "printer", "started_at", "finished_at",
                       "created_at", "show_slots"]
    fields = ["status", "show_feasibility", "version", "plate", "copies", "priority", "due_at", "purpose",
              "reference", "notes", "organization", "queued_by", "printer", "started_at", "finished_at",
              "created_at", "show_slots"]

    def get_queryset(self, request):
        return selectors.print_job_list()

    def get_ordering(self, request):
        return ["priority_rank", "position", "created_at", "id"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = PrintJobAddForm
            kwargs["fields"] = PrintJobAddForm.Meta.fields
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def get_fields(self, request, obj=None):
        return PrintJobAddForm.Meta.fields if obj is None else self.fields

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def has_delete_permission(self, request, obj=None):
        return False  # a job is cancelled, never deleted: its attempts and bookings stay explained

    def save_model(self, request, obj, form, change):
        if not change:
            data = form.cleaned_data
            job = services.print_job_create(
                version=data["version"], plate=data["plate"], copies=data["copies"], priority=data["priority"],
                due_at=data.get("due_at"), purpose=data["purpose"], reference=data.get("reference", ""),
                notes=data.get("notes", ""), queued_by=request.user,
            )
            obj.pk = job.pk
            obj.refresh_from_db()
            return
        if "position" in form.changed_data:  # dragged in the list
            if obj.status in WAITING_STATUSES:
                try:
                    services.print_job_move(job=obj, position=obj.position)
                except ApplicationError as exc:
                    messages.error(request, exc.message)
            return
        if "notes" in form.changed_data:
            services.print_job_set_notes(job=obj, notes=obj.notes)

    def save_related(self, request, form, formsets, change):
        pass  # the job's rows are written by services

    @display(description=_("status"), ordering="status", label=PRINT_JOB_STATUS_COLORS)
    def show_status(self, obj):
        return obj.status, obj.get_status_display()

    @display(description=_("priority"), ordering="priority_rank", label=PRIORITY_COLORS)
    def show_priority(self, obj):
        return obj.priority, obj.get_priority_display()

    @display(description=_("who"))
    def owner(self, obj):
        return obj.organization or obj.queued_by or "–"

    @display(description=_("feasibility"))
    def show_feasibility(self, obj):
        if obj.status not in WAITING_STATUSES:
            return "–"
        reasons = selectors.print_job_feasibility_texts(job=obj)
        if obj.feasible:
            badge, colour = _("can print"), "#15803d"
        elif obj.feasible is None:
            badge, colour = _("not checked"), "#6b7280"
        else:
            badge, colour = _("cannot print"), "#b91c1c"
        return format_html(
            '<span style="color:{};font-weight:600">{}</span>{}', colour, badge,
            format_html('<ul style="font-size:.8rem;margin:.25rem 0 0;padding-left:1rem;list-style:disc">{}</ul>',
                        format_html_join("", "<li>{}</li>", ((r,) for r in reasons))) if reasons else "",
        )

    @display(description=_("filament: slots and ledger"))
    def show_slots(self, obj):
        rows = []
        for allocation in SlotAllocation.objects.filter(attempt__job=obj).select_related("attempt", "spool"):
            ledger = ", ".join(f"{m.spool.code} {grams_display(m.delta_grams)} g ({m.get_kind_display()})"
                               for m in selectors.allocation_movements(allocation=allocation))
            url = reverse("admin:production_slotallocation_change", args=[allocation.pk])
            rows.append((url, allocation.attempt.number, allocation.slot, allocation.spool or "–",
                         allocation.get_spool_source_display() or "–", allocation.grams_planned,
                         allocation.grams_booked if allocation.grams_booked is not None else "–", ledger or "–"))
        if not rows:
            return "–"
        return format_html("<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th>"
                           "<th>{}</th></tr>{}</table>", _("attempt"), _("slot"), _("spool"), _("from"),
                           _("planned (g)"), _("booked (g)"), _("ledger"),
                           format_html_join("", '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td>'
                                            "<td>{}</td><td>{}</td><td>{}</td></tr>", rows))

    def _each(self, request, queryset, run, done: str):
        changed, refused = 0, []
        for job in queryset:
            try:
                run(job)
            except ApplicationError as exc:
                refused.append(f"#{job.pk}: {exc.message}")
            else:
                changed += 1
        if changed:
            messages.success(request, ngettext("%(count)d job %(done)s.", "%(count)d jobs %(done)s.", changed)
                             % {"count": changed, "done": done})
        for message in refused:
            messages.error(request, message)

    @action(description=_("Send now to a free printer"), permissions=["change"])
    def send_now(self, request, queryset):
        self._each(request, queryset, lambda job: services.print_job_dispatch(job=job), _("sent"))

    @action(description=_("Cancel selected jobs"), permissions=["change"])
    def cancel_selected(self, request, queryset):
        self._each(request, queryset, lambda job: services.print_job_cancel(job=job), _("cancelled"))

    @action(description=_("Re-queue selected jobs"), permissions=["change"])
    def requeue_selected(self, request, queryset):
        self._each(request, queryset, lambda job: services.print_job_requeue(job=job), _("queued again"))

    def _priority(self, request, queryset, priority):
        self._each(request, queryset, lambda job: services.print_job_set_priority(job=job, priority=priority),
                   _("now have priority %(priority)s") % {"priority": Priority(priority).label})

    @action(description=_("Priority: urgent"), permissions=["change"])
    def priority_urgent(self, request, queryset):
        self._priority(request, queryset, Priority.URGENT)

    @action(description=_("Priority: high"), permissions=["change"])
    def priority_high(self, request, queryset):
        self._priority(request, queryset, Priority.HIGH)

    @action(description=_("Priority: normal"), permissions=["change"])
    def priority_normal(self, request, queryset):
        self._priority(request, queryset, Priority.NORMAL)

    @action(description=_("Priority: low"), permissions=["change"])
    def priority_low(self, request, queryset):
        self._priority(request, queryset, Priority.LOW)

    @action(description=_("Check the queue again"), icon="refresh", permissions=["change"], url_path="recheck")
    def recheck(self, request):
        changed = services.print_jobs_recheck()
        messages.success(request, ngettext("Queue checked: %(count)d job changed.",
                                           "Queue checked: %(count)d jobs changed.", changed) % {"count": changed})
        return HttpResponseRedirect(reverse("admin:production_printjob_changelist"))


@admin.register(PrinterStation)
class PrinterStationAdmin(ModelAdmin):
    """Each printer's production side: plate cleared (after a print), automatic dispatch."""

    list_display = ["printer", "plate_clear", "auto_dispatch", "updated_at"]
    readonly_fields = ["printer", "plate_clear", "auto_dispatch", "updated_at"]
    actions = ["plate_cleared", "auto_on", "auto_off"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def _each(self, request, queryset, run, done: str):
        for station in queryset.select_related("printer"):
            run(station.printer)
        messages.success(request, done)

    @action(description=_("Plate cleared: ready for the next job"), permissions=["change"])
    def plate_cleared(self, request, queryset):
        self._each(request, queryset, lambda printer: services.printer_plate_cleared(printer=printer),
                   _("Plates marked cleared."))

    @action(description=_("Automatic dispatch on"), permissions=["change"])
    def auto_on(self, request, queryset):
        self._each(request, queryset, lambda p: services.printer_station_set_auto(printer=p, auto_dispatch=True),
                   _("Automatic dispatch switched on."))

    @action(description=_("Automatic dispatch off"), permissions=["change"])
    def auto_off(self, request, queryset):
        self._each(request, queryset, lambda p: services.printer_station_set_auto(printer=p, auto_dispatch=False),
                   _("Automatic dispatch switched off."))


class SpoolLoadForm(forms.ModelForm):
    class Meta:
        model = SpoolLoad
        fields = ["printer", "tray", "spool"]


@admin.register(SpoolLoad)
class SpoolLoadAdmin(ModelAdmin):
    """Staff say which spool sits in which printer slot; consumption is booked on it."""

    form = SpoolLoadForm
    list_display = ["printer", "tray", "spool", "loaded_at", "loaded_by"]
    autocomplete_fields = ["spool"]

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        try:
            load = services.spool_load(printer=data["printer"], tray=data["tray"], spool=data["spool"],
                                       by=request.user)
        except ApplicationError as exc:
            raise ValidationError(exc.message) from exc
        obj.pk = load.pk

    def delete_model(self, request, obj):
        services.spool_unload(load=obj)


@admin.register(SlotAllocation)
class SlotAllocationAdmin(ModelAdmin):
    """Correct the spool that fed a slot: the booked grams move to it through the ledger."""

    list_display = ["attempt", "slot", "tray", "spool", "spool_source", "grams_planned", "grams_booked"]
    fields = ["attempt", "slot", "tray", "spool", "spool_source", "grams_planned", "grams_booked"]
    readonly_fields = ["attempt", "slot", "tray", "spool_source", "grams_planned", "grams_booked"]
    autocomplete_fields = ["spool"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if "spool" in form.changed_data and obj.spool is not None:
            original = SlotAllocation.objects.get(pk=obj.pk)
            try:
                services.slot_allocation_correct(allocation=original, spool=obj.spool, by=request.user)
            except ApplicationError as exc:
                messages.error(request, exc.message)


@admin.register(UnknownPrint)
class UnknownPrintAdmin(ModelAdmin):
    """Prints a printer ran that match no dispatched job and no catalog file."""

    list_display = ["seen_at", "printer", "file_name", "outcome"]
    readonly_fields = ["printer", "printer_job", "file_name", "outcome", "seen_at"]

    def has_add_permission(self, request):
        return False
