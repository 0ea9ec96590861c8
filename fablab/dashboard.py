"""The admin dashboard: a thin aggregator over each app's selectors.

A domain app contributes its figures with `<app>.selectors.<app>_kpis()`, returning a
list of `{"label": ..., "value": ...}`. An app without that function shows zero.
"""

import json
from datetime import timedelta
from importlib import import_module

from django.apps import apps
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _
from django_q.models import Failure, Success

from fablab import selectors
from fablab.admin_site import DOMAIN_ICONS
from fablab.roles import DOMAIN_APPS


def domain_kpis(app_label: str) -> list[dict]:
    try:
        module = import_module(f"{app_label}.selectors")
    except ModuleNotFoundError as exc:
        if exc.name != f"{app_label}.selectors":
            raise
        module = None
    provider = getattr(module, f"{app_label}_kpis", None)
    if provider is None:
        return [{"label": _("Records"), "value": 0}]
    return provider()


def _task_chart(days: int = 7) -> str:
    today = timezone.localdate()
    since = timezone.now() - timedelta(days=days)
    labels = [today - timedelta(days=offset) for offset in range(days - 1, -1, -1)]

    def per_day(model) -> list[int]:
        rows = (
            model.objects.filter(stopped__gte=since)
            .annotate(day=TruncDate("stopped"))
            .values("day")
            .annotate(n=Count("id"))
        )
        counts = {row["day"]: row["n"] for row in rows}
        return [counts.get(day, 0) for day in labels]

    return json.dumps({
        "labels": [day.strftime("%d.%m.") for day in labels],
        "datasets": [
            {"label": _("Succeeded"), "data": per_day(Success), "backgroundColor": "var(--color-primary-600)"},
            {"label": _("Failed"), "data": per_day(Failure), "backgroundColor": "#ef4444"},
        ],
    })


def dashboard_callback(request, context: dict) -> dict:
    tenancy = selectors.tenancy_kpis()
    tasks = selectors.task_kpis()
    context.update({
        "tenancy_kpis": [
            {"label": _("Customer organizations"), "value": tenancy["customers"]},
            {"label": _("Partner organizations"), "value": tenancy["partners"]},
            {"label": _("Members"), "value": tenancy["members"]},
            {"label": _("Active API keys"), "value": tenancy["active_api_keys"]},
            {"label": _("Open invitations"), "value": tenancy["open_invitations"]},
        ],
        "task_kpis": [
            {"label": _("Queued"), "value": tasks["queued"]},
            {"label": _("Succeeded (24 h)"), "value": tasks["succeeded"]},
            {"label": _("Failed (24 h)"), "value": tasks["failed"]},
            {"label": _("Schedules"), "value": tasks["schedules"]},
        ],
        "domain_sections": [
            {
                "label": app_label,
                "title": apps.get_app_config(app_label).verbose_name,
                "icon": DOMAIN_ICONS[app_label],
                "kpis": domain_kpis(app_label),
            }
            for app_label in DOMAIN_APPS
        ],
        "task_chart": _task_chart(),
    })
    return context
