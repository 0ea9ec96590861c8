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
"""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from catalog import selectors as catalog_selectors
from fablab.exceptions import ApplicationError
from printers import files as printer_files
from printers.panels import FILES_URL_NAME, register_file_urls
from production import selectors, services

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
