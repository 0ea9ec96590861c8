"""Production: the work that joins the other apps (today: moving a printer's file into the catalog).

PrinterFileImport records one request to download a file from a printer's storage into the
catalog; `services.printer_file_import_request` writes it and a background task carries it out
(`services.printer_file_import_run`).
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from production.choices import ImportStatus


class PrinterFileImport(models.Model):
    """One file on a printer's storage being downloaded into the catalog by a background task.

    Downloads from a printer can take minutes (PrusaLink sends a few hundred kB a second),
    longer than a web request may wait.
    """

    printer = models.ForeignKey("printers.Printer", verbose_name=_("printer"), on_delete=models.CASCADE,
                                related_name="file_imports")
    path = models.CharField(_("path on the printer"), max_length=512)
    variant = models.ForeignKey("catalog.ModelVariant", verbose_name=_("into variant"), null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="+",
                                help_text=_("Empty: a new model named after the file."))
    requested_by = models.ForeignKey("fablab.User", verbose_name=_("requested by"), null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(_("status"), max_length=12, choices=ImportStatus.choices, default=ImportStatus.QUEUED,
                              db_index=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    version = models.ForeignKey("catalog.VariantVersion", verbose_name=_("catalog version"), null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("requested"), auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("file download")
        verbose_name_plural = _("file downloads")

    def __str__(self) -> str:
        return f"{self.printer}: {self.path} ({self.status})"
