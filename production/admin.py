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
the hand-set position, then age) with their feasibility and its reasons, filtered by status, priority,
material, colour and printer; drag a row and save to set the order within a priority
(`services.print_job_move`); actions send now, send to printer… (a page choosing one of the free
printers that can take the job), cancel, re-queue, change the priority and check the queue again;
the add form queues a job through `services.print_job_create`. A job's page shows its attempts, its
slot allocations, the inventory ledger rows it wrote and its cost.

The plan timeline (Production → Plan timeline, and "Plan timeline" above the queue):
`/admin/production/printjob/timeline/` (name `production_printjob_timeline`, view permission on print
jobs) draws `selectors.print_plan_timeline`: a row per printer, each planned job a bar linking to its page.

Printer stations (Production → Printer stations): each printer's plate, automatic dispatch, the job on
it and its next job. The same, with a "Plate cleared" button while the plate waits to be cleared, is a
panel on the printer's page and on its fleet card (registered through `printers.panels`); the button
posts to `/admin/production/printerstation/<printer id>/plate-cleared/` (name
`production_printerstation_plate_cleared`, POST only, CSRF-protected, change permission on stations).
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.timezone import localtime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import ChoicesCheckboxFilter
from unfold.decorators import action, display
from unfold.enums import ActionVariant
from unfold.views import ChangeList

from catalog import selectors as catalog_selectors
from fablab.admin_base import ReadOnlyTabInline
from fablab.admin_exports import book_actions
from fablab.exceptions import ApplicationError
from inventory.models import grams_display
from printers import files as printer_files
from printers import selectors as printer_selectors
from printers.models import Printer
from printers.panels import (
    FILES_URL_NAME,
    PanelButton,
    PanelLine,
    PrinterPanel,
    register_file_urls,
    register_printer_panel,
)
from production import admin_restock, books, selectors, services
from production.choices import (
    PRINT_JOB_STATUS_COLORS,
    PRIORITY_COLORS,
    WAITING_STATUSES,
    Priority,
    SlicerUploadStatus,
)
from production.models import (
    PrintAttempt,
    PrinterStation,
    PrintJob,
    SlicerUpload,
    SlotAllocation,
    SpoolLoad,
    UnknownPrint,
)

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


class PrinterFilter(admin.SimpleListFilter):
    """Jobs that are or were on a printer: given to it now, or any of their attempts ran there."""

    title = gettext_lazy("printer")
    parameter_name = "printer"

    def lookups(self, request, model_admin):
        return [(str(printer.pk), printer.name) for printer in printer_selectors.printer_list()]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit():
            raise IncorrectLookupParameters(value)
        tried = PrintAttempt.objects.filter(printer_id=int(value)).values("job_id")
        return queryset.filter(Q(printer_id=int(value)) | Q(pk__in=tried))


class AttemptInline(ReadOnlyTabInline):
    model = PrintAttempt
    fields = ["number", "printer", "printer_job", "file_name", "started_at", "finished_at", "outcome", "reason",
              "booked_at", "cost_total"]


def _table(headers: list, rows: list[tuple], *, name: str):
    """A small read-only table on a job's page (`data-<name>` names it); cells are escaped unless safe."""
    cell = '<td style="padding:.125rem .75rem .125rem 0;white-space:nowrap">{}</td>'
    return format_html(
        '<div style="overflow-x:auto"><table data-{}><tr>{}</tr>{}</table></div>', name,
        format_html_join("", '<th style="padding-right:.75rem;text-align:left">{}</th>', ((h,) for h in headers)),
        format_html_join("", "<tr>{}</tr>", ((format_html_join("", cell, ((value,) for value in row)),)
                                             for row in rows)),
    )


class SendToPrinterForm(forms.Form):
    printer = forms.ModelChoiceField(label=gettext_lazy("Printer"), queryset=Printer.objects.none(),
                                     widget=forms.RadioSelect, empty_label=None)

    def __init__(self, *args, printers, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["printer"]
        field.queryset = printers
        field.label_from_instance = lambda printer: " · ".join(
            part for part in (printer.name, printer.model, printer.location) if part)


TIMELINE_URL_NAME = "production_printjob_timeline"


@admin.register(PrintJob)
class PrintJobAdmin(ModelAdmin):
    list_display = ["id", "show_status", "show_priority", "version", "plate", "copies", "copies_done", "printer",
                    "due_at", "planned_printer", "show_planned_finish", "show_feasibility", "owner"]
    list_display_links = ["id", "version"]
    list_filter = [("status", ChoicesCheckboxFilter), ("priority", ChoicesCheckboxFilter), MaterialFilter,
                   ColourFilter, PrinterFilter]
    search_fields = ["reference", "version__variant__sku", "version__variant__model__name"]
    # Drag to reorder (unfold): the hidden `position` column becomes list-editable; rows dragged and saved reach
    # save_model, which moves each waiting job through services.print_job_move.
    ordering_field = "position"
    hide_ordering_field = True
    list_per_page = 100
    actions = ["send_now", "send_to_printer", "cancel_selected", "requeue_selected", "priority_urgent",
               "priority_high", "priority_normal", "priority_low"]
    actions_list = ["open_timeline", "recheck", "open_restock"]
    actions_detail = ["send_to_printer_page"]
    inlines = [AttemptInline]
    autocomplete_fields = ["version"]
    readonly_fields = ["organization", "version", "plate", "copies", "priority", "due_at", "purpose", "reference",
                       "queued_by", "status", "show_feasibility", "printer", "started_at", "finished_at",
                       "created_at", "show_slots", "show_ledger", "show_cost"]
    fieldsets = [
        (None, {"fields": ["status", "show_feasibility", "version", "plate", "copies", "priority", "due_at",
                           "purpose", "reference", "notes", "organization", "queued_by", "printer", "started_at",
                           "finished_at", "created_at"]}),
        (gettext_lazy("Filament and stock"), {"fields": ["show_slots", "show_ledger"]}),
        (gettext_lazy("Cost"), {"fields": ["show_cost"]}),
    ]

    def get_queryset(self, request):
        return selectors.print_job_list()

    def get_ordering(self, request):
        return ["priority_rank", "position", "created_at", "id"]

    def get_urls(self):
        return [
            path("timeline/", self.admin_site.admin_view(self.timeline_view), name=TIMELINE_URL_NAME),
            *admin_restock.restock_urls(self),
            *super().get_urls(),
        ]

    @action(description=gettext_lazy("Plan timeline"), icon="view_timeline", permissions=["view"],
            url_path="open-timeline")
    def open_timeline(self, request):
        return redirect(f"admin:{TIMELINE_URL_NAME}")

    def timeline_view(self, request):
        """The stored plan as a timeline (selectors.print_plan_timeline): a row per printer, its planned jobs as
        bars from planned start to planned finish, now, due dates, late jobs in red; each bar opens its job."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request), "title": _("Plan timeline"), "opts": self.model._meta,
            "timeline": selectors.print_plan_timeline(),
            "changelist_url": reverse("admin:production_printjob_changelist"),
        }
        return TemplateResponse(request, "production/admin/plan_timeline.html", context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = PrintJobAddForm
            kwargs["fields"] = PrintJobAddForm.Meta.fields
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def get_fieldsets(self, request, obj=None):
        return [(None, {"fields": PrintJobAddForm.Meta.fields})] if obj is None else self.fieldsets

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

    @display(description=_("planned finish"), ordering="planned_finish")
    def show_planned_finish(self, obj):
        if obj.planned_finish is None:
            return "–"
        shown = date_format(localtime(obj.planned_finish), "SHORT_DATETIME_FORMAT")
        if obj.due_at is not None and obj.planned_finish > obj.due_at:
            return format_html('{} <span class="planned-late" style="background:#b91c1c;color:#fff;border-radius:'
                               '.25rem;padding:0 .35rem;font-size:.75rem;font-weight:600">{}</span>', shown, _("late"))
        return shown

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
        for allocation in selectors.print_job_allocations(job=obj):
            ledger = ", ".join(f"{m.spool.code} {grams_display(m.delta_grams)} g ({m.get_kind_display()})"
                               for m in selectors.allocation_movements(allocation=allocation))
            url = reverse("admin:production_slotallocation_change", args=[allocation.pk])
            rows.append((format_html('<a href="{}">{}</a>', url, allocation.attempt.number), allocation.slot,
                         allocation.spool or "–", allocation.get_spool_source_display() or "–",
                         allocation.grams_planned,
                         allocation.grams_booked if allocation.grams_booked is not None else "–", ledger or "–"))
        if not rows:
            return "–"
        return _table([_("attempt"), _("slot"), _("spool"), _("from"), _("planned (g)"), _("booked (g)"),
                       _("ledger")], rows, name="slots")

    @display(description=gettext_lazy("inventory ledger"))
    def show_ledger(self, obj):
        if obj.pk is None:
            return "–"
        movements, product_movements = selectors.print_job_ledger(job=obj)
        rows = [(m.created_at.strftime("%Y-%m-%d %H:%M"), m.spool.code, m.spool.filament,
                 m.get_kind_display(), f"{grams_display(m.delta_grams):+} g", m.reason or "–") for m in movements]
        rows += [(m.created_at.strftime("%Y-%m-%d %H:%M"), m.product.sku, m.location, m.get_kind_display(),
                  f"{m.delta_units:+}", m.reason or "–") for m in product_movements]
        if not rows:
            return _("Nothing booked yet: the ledger gets the job's filament and units when a print ends.")
        return _table([_("at"), _("spool or product"), _("filament or shelf"), _("kind"), _("change"), _("reason")],
                      rows, name="ledger")

    @display(description=_("cost"))
    def show_cost(self, obj):
        attempts = [a for a in obj.attempts.all() if a.booked_at is not None]
        if not attempts and obj.cost_total is None:
            return _("Not computed yet: a job's cost is computed once its print ends.")
        parts = ("material", "energy", "machine", "labour", "total")

        def amounts(item) -> list:
            currency = item.cost_currency or obj.cost_currency or ""
            return [f"{getattr(item, f'cost_{part}')} {currency}".strip()
                    if getattr(item, f"cost_{part}") is not None else "–" for part in parts]

        def time(item) -> str:
            spent = (item.cost_inputs or {}).get("time") or {}
            return f"{spent.get('hours')} h ({spent.get('from')})" if spent.get("hours") is not None else "–"

        rows = [(a.number, a.get_outcome_display(), time(a), *amounts(a)) for a in attempts]
        rows.append((_("job"), "", "", *amounts(obj)))
        table = format_html(
            '<div style="overflow-x:auto"><table data-cost><tr>{}</tr>{}</table></div>',
            format_html_join("", "<th>{}</th>", ((h,) for h in (_("attempt"), _("outcome"), _("time"), _("material"),
                                                                 _("energy"), _("machine"), _("labour"),
                                                                 _("total")))),
            format_html_join("", "<tr>" + "<td>{}</td>" * 8 + "</tr>", rows))
        inputs = obj.cost_inputs or {}
        lines = []
        if inputs.get("unit_cost") is not None:
            lines.append(_("%(units)s good unit(s): %(cost)s %(currency)s per unit, failed attempts included.")
                         % {"units": inputs.get("good_units"), "cost": inputs["unit_cost"],
                            "currency": obj.cost_currency})
        variant = selectors.variant_cost(variant=obj.version.variant)
        unit, margin = variant.unit_cost, variant.margin
        if unit.amount is not None:
            lines.append(_("%(sku)s: %(cost)s %(currency)s per unit over its last %(jobs)s completed print(s).")
                         % {"sku": variant.sku, "cost": unit.amount, "currency": unit.currency, "jobs": unit.jobs})
        if margin.margin is not None:
            lines.append(_("Sale price %(gross)s gross, %(net)s net (VAT %(vat)s %%): margin %(margin)s "
                           "(%(percent)s %% of the net price).")
                         % {"gross": margin.sale_price_gross, "net": margin.sale_price_net, "vat": margin.vat_percent,
                            "margin": margin.margin, "percent": margin.margin_percent})
        notes = selectors.print_cost_texts(costed=obj) or [
            text for a in attempts for text in selectors.print_cost_texts(costed=a)]
        return format_html("{}{}{}", table,
                           format_html_join("", "<p>{}</p>", ((line,) for line in lines)),
                           format_html('<ul style="list-style:disc;padding-left:1rem">{}</ul>',
                                       format_html_join("", "<li>{}</li>", ((n,) for n in notes))) if notes else "")

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

    @action(description=gettext_lazy("Send to printer…"), permissions=["change"])
    def send_to_printer(self, request, queryset):
        """Choose the printer for one job: leads to the job's "send to printer" page."""
        if queryset.count() != 1:
            messages.error(request, _("Choose exactly one job to send to a printer of your choice."))
            return None
        return redirect("admin:production_printjob_send_to_printer_page", queryset.get().pk)

    def get_actions_detail(self, request, object_id):
        actions = super().get_actions_detail(request, object_id)
        job = self.get_object(request, str(object_id))
        if job is None or job.status not in WAITING_STATUSES:
            actions = [a for a in actions if not a.action_name.endswith("_send_to_printer_page")]
        return actions

    @action(description=gettext_lazy("Send to printer…"), icon="print", url_path="send-to-printer",
            permissions=["change"], variant=ActionVariant.PRIMARY)
    def send_to_printer_page(self, request, object_id):
        """GET: the free printers that can take the job; POST (CSRF-protected): send it to the chosen one."""
        job = self.get_object(request, str(object_id))
        if job is None:
            raise Http404(_("No such print job."))
        if not self.has_change_permission(request, job):
            raise PermissionDenied
        change_url = reverse("admin:production_printjob_change", args=[job.pk])
        page_url = reverse("admin:production_printjob_send_to_printer_page", args=[job.pk])
        if job.status not in WAITING_STATUSES:
            messages.error(request, _("Only a queued job can be sent; this one is %(status)s.")
                           % {"status": job.get_status_display()})
            return HttpResponseRedirect(change_url)
        if request.method == "POST":
            form = SendToPrinterForm(request.POST, printers=printer_selectors.printer_list().filter(is_active=True))
            if not form.is_valid():
                messages.error(request, _("Choose one of the printers listed."))
                return HttpResponseRedirect(page_url)
            printer = form.cleaned_data["printer"]
            try:
                sent = services.print_job_dispatch(job=job, printer=printer)
            except ApplicationError as exc:
                messages.error(request, exc.message)
                return HttpResponseRedirect(page_url)
            messages.success(request, _("Job #%(job)s sent to %(printer)s.") % {"job": sent.pk, "printer": printer})
            return HttpResponseRedirect(change_url)
        candidates = services.print_job_free_printers(job=job)  # best first
        form = SendToPrinterForm(printers=printer_selectors.printer_list().filter(pk__in=[p.pk for p in candidates]))
        field = form.fields["printer"]
        field.choices = [(printer.pk, field.label_from_instance(printer)) for printer in candidates]
        if candidates:
            form.initial["printer"] = candidates[0].pk
        context = {
            **self.admin_site.each_context(request),
            "title": _("Send job #%(job)s to a printer") % {"job": job.pk},
            "opts": self.model._meta, "original": job, "job": job, "form": form, "has_choices": bool(candidates),
            "feasibility": selectors.print_job_feasibility_texts(job=job), "change_url": change_url,
        }
        return TemplateResponse(request, "production/admin/send_to_printer.html", context)

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

    @action(description=_("Restock"), icon="autorenew", url_path="open-restock")
    def open_restock(self, request):
        return redirect(f"admin:{admin_restock.LIST_URL_NAME}")


class PrinterStationCostForm(forms.ModelForm):
    class Meta:
        model = PrinterStation
        fields = list(selectors.STATION_COST_SETTINGS)


PLATE_CLEARED_URL_NAME = "production_printerstation_plate_cleared"


def _job_text(job: PrintJob) -> str:
    return f"#{job.pk} {job.version.variant} ×{job.copies}"


def _job_url(job: PrintJob) -> str:
    return reverse("admin:production_printjob_change", args=[job.pk])


def _job_link(job: PrintJob | None):
    if job is None:
        return "–"
    return format_html('<a href="{}">{}</a>', _job_url(job), _job_text(job))


class StationChangeList(ChangeList):
    """The stations' list, each row carrying production's view of its printer (read once for the page)."""

    def get_results(self, request):
        super().get_results(request)
        self.result_list = list(self.result_list)
        views = selectors.printer_production(printers=[station.printer for station in self.result_list])
        for station in self.result_list:
            station.production = views.get(station.printer_id)


@admin.register(PrinterStation)
class PrinterStationAdmin(ModelAdmin):
    """Each printer's production side: plate cleared (after a print), automatic dispatch, its current and next
    job, and what an hour of it costs."""

    list_display = ["printer", "show_plate", "auto_dispatch", "show_current", "show_next", "updated_at"]
    form = PrinterStationCostForm
    readonly_fields = ["printer", "plate_clear", "auto_dispatch", "updated_at"]
    fields = ["printer", "plate_clear", "auto_dispatch", *selectors.STATION_COST_SETTINGS, "updated_at"]
    actions = ["plate_cleared", "auto_on", "auto_off"]

    def save_model(self, request, obj, form, change):
        try:
            services.printer_station_set_costs(printer=obj.printer, **{
                name: form.cleaned_data.get(name) for name in selectors.STATION_COST_SETTINGS})
        except ApplicationError as exc:
            messages.error(request, exc.message)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("printer__live")

    def get_changelist(self, request, **kwargs):
        return StationChangeList

    def get_urls(self):
        return [
            path("<path:object_id>/plate-cleared/", self.admin_site.admin_view(require_POST(self.plate_cleared_view)),
                 name=PLATE_CLEARED_URL_NAME),
            *super().get_urls(),
        ]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @staticmethod
    def _production(obj):
        view = getattr(obj, "production", None)
        return view if view is not None else selectors.printer_production(printers=[obj.printer])[obj.printer_id]

    @display(description=gettext_lazy("plate"), label={"cleared": "success", "waits": "warning", "in_use": "info"})
    def show_plate(self, obj):
        view = self._production(obj)
        if view.plate_clear:
            return "cleared", _("cleared")
        if view.plate_waits:
            return "waits", _("to clear")
        return "in_use", _("in use")

    @display(description=gettext_lazy("on the printer"))
    def show_current(self, obj):
        return _job_link(self._production(obj).current)

    @display(description=gettext_lazy("next job"))
    def show_next(self, obj):
        return _job_link(self._production(obj).next)

    def plate_cleared_view(self, request, object_id):
        """POST only (CSRF-protected): the operator confirms the printer's plate is empty; back to `next`."""
        station = self.get_object(request, str(object_id))
        if station is None:
            raise Http404(_("This printer has no station."))
        if not self.has_change_permission(request, station):
            raise PermissionDenied
        services.printer_plate_cleared(printer=station.printer)
        messages.success(request, _("%(printer)s: plate cleared, ready for the next job.")
                         % {"printer": station.printer})
        target = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                               require_https=request.is_secure()):
            target = reverse("admin:production_printerstation_changelist")
        return HttpResponseRedirect(target)

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


@register_printer_panel
def printer_production_panel(request, printers) -> dict[int, PrinterPanel]:
    """Production's panel on the fleet cards and the printer's page: the job on the printer, the plate, the next job.

    Shown to staff who may view print jobs; "Plate cleared" only to those who may change printer stations.
    """
    user = request.user
    if not user.has_perm("production.view_printjob"):
        return {}
    may_clear = user.has_perm("production.change_printerstation")
    panels = {}
    for printer_id, view in selectors.printer_production(printers=printers).items():
        lines, buttons = [], []
        if view.current is not None:
            lines.append(PanelLine(label=view.current.get_status_display(), text=_job_text(view.current),
                                   url=_job_url(view.current), tone="info", key="current"))
        if view.plate_waits:
            text = (_("after %(job)s (%(status)s)") % {"job": _job_text(view.last),
                                                       "status": view.last.get_status_display()}
                    if view.last is not None else _("the last print ended"))
            lines.append(PanelLine(label=_("Plate to clear"), text=text, tone="warning", key="plate",
                                   url=_job_url(view.last) if view.last is not None else ""))
            if may_clear:
                buttons.append(PanelButton(label=_("Plate cleared"), key="plate-cleared",
                                           url=reverse(f"admin:{PLATE_CLEARED_URL_NAME}", args=[printer_id])))
        if view.next is not None:
            lines.append(PanelLine(label=_("Next job"), text=_job_text(view.next), url=_job_url(view.next),
                                   key="next"))
        else:
            lines.append(PanelLine(label=_("Next job"), text=_("none in the queue fits it"), key="next"))
        panels[printer_id] = PrinterPanel(key="production", title=_("Production"), lines=tuple(lines),
                                          buttons=tuple(buttons))
    return panels


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


class SlicerUploadForm(forms.ModelForm):
    """Filing an upload from the inbox: the variant that gets it as its next version."""

    into_variant = forms.ModelChoiceField(
        label=gettext_lazy("File into"), required=False, queryset=None,
        empty_label=gettext_lazy("A new model named after the file"),
        help_text=gettext_lazy("The catalog variant that gets the file as its next version; it is queued when "
                               "the slicer asked to print it."),
    )

    class Meta:
        model = SlicerUpload
        fields: list[str] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["into_variant"].queryset = catalog_selectors.variant_list()


@admin.register(SlicerUpload)
class SlicerUploadAdmin(ModelAdmin):
    """Files sent from slicers (production/octoprint.py); those in the inbox are filed into the catalog here."""

    form = SlicerUploadForm
    list_display = ["received_at", "__str__", "status", "print_requested", "version", "job", "organization"]
    list_filter = ["status", "print_requested"]
    search_fields = ["original_name", "folder", "sha256"]
    readonly_fields = ["original_name", "folder", "organization", "size_bytes", "sha256", "status",
                       "print_requested", "version", "job", "received_at", "filed_at", "filed_by"]

    def has_add_permission(self, request):
        return False

    def get_fields(self, request, obj=None):
        fields = list(self.readonly_fields)
        if obj is not None and obj.status == SlicerUploadStatus.INBOX:
            fields.insert(0, "into_variant")
        return fields

    def save_model(self, request, obj, form, change):
        if obj.status != SlicerUploadStatus.INBOX:
            return
        try:
            services.slicer_upload_file(upload=obj, variant=form.cleaned_data.get("into_variant"), user=request.user)
        except ApplicationError as exc:
            messages.error(request, exc.message)

    def delete_model(self, request, obj):
        services.slicer_upload_discard(upload=obj)

    def delete_queryset(self, request, queryset):
        for upload in queryset:
            services.slicer_upload_discard(upload=upload)


# The books for the accountant (production.books): the selected or filtered jobs with their costs and purpose.
PrintJobAdmin.actions = [*PrintJobAdmin.actions,
                         *book_actions(lambda queryset: books.print_jobs_table_for(jobs=queryset), "books_print_jobs")]


from production import admin_events  # noqa: E402, F401  (market events: their own module)
