"""The restock page of the admin (Production → Print queue → Restock, and the sidebar's Production group).

- `/admin/production/printjob/restock/` (name `production_printjob_restock`): one row per printed product
  that sold in the last RESTOCK_HISTORY_WEEKS weeks (production.restock.restock_list): the forecast method
  and units per week, stock, units queued, lead time, reorder point, recommended units and plates; a box to
  tick on each row with plates to print; needs the view permission on print jobs;
- `/admin/production/printjob/restock/queue/` (name `production_printjob_restock_queue`): POST only,
  CSRF-protected, the add permission on print jobs: queues the ticked products' plates
  (`restock.restock_print_jobs_create`, all or none) and returns to the page with what it did.
"""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from fablab.exceptions import ApplicationError
from production import restock

LIST_URL_NAME = "production_printjob_restock"
QUEUE_URL_NAME = "production_printjob_restock_queue"


def restock_view(job_admin, request):
    if not job_admin.has_view_permission(request):
        raise PermissionDenied
    context = {
        **job_admin.admin_site.each_context(request),
        "title": _("Restock"),
        "opts": job_admin.model._meta,
        "rows": restock.restock_list(),
        "may_queue": job_admin.has_add_permission(request),
        "queue_url": reverse(f"admin:{QUEUE_URL_NAME}"),
        "service_level": settings.RESTOCK_SERVICE_LEVEL_PERCENT,
        "review_weeks": settings.RESTOCK_REVIEW_WEEKS,
        "history_weeks": settings.RESTOCK_HISTORY_WEEKS,
    }
    return TemplateResponse(request, "production/admin/restock.html", context)


def restock_queue_view(job_admin, request):
    if not job_admin.has_add_permission(request):
        raise PermissionDenied
    back = reverse(f"admin:{LIST_URL_NAME}")
    try:
        jobs = restock.restock_print_jobs_create(product_ids=request.POST.getlist("product"), user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return HttpResponseRedirect(back)
    plates = sum(job.copies for job in jobs)
    messages.success(request, ngettext("%(jobs)d print job queued with %(plates)d plate(s) in all.",
                                       "%(jobs)d print jobs queued with %(plates)d plates in all.", len(jobs))
                     % {"jobs": len(jobs), "plates": plates})
    return HttpResponseRedirect(back)


def restock_urls(job_admin) -> list:
    """The restock pages, mounted by the print queue's admin under /admin/production/printjob/."""
    site = job_admin.admin_site

    def list_view(request):
        return restock_view(job_admin, request)

    def queue_view(request):
        return restock_queue_view(job_admin, request)

    return [
        path("restock/", site.admin_view(list_view), name=LIST_URL_NAME),
        path("restock/queue/", site.admin_view(require_POST(queue_view)), name=QUEUE_URL_NAME),
    ]
