"""The admin's sidebar and environment badge (django-unfold callbacks)."""

from datetime import timedelta

from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from fablab.roles import DOMAIN_APPS

DOMAIN_ICONS = {
    "catalog": "category",
    "inventory": "inventory_2",
    "production": "conveyor_belt",
    "printers": "print",
    "reconstruction": "view_in_ar",
    "billing": "payments",
}


def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's login page, always carrying where to go afterwards.

    unfold's login form posts back to its own address and has no hidden `next`
    field, so a login started at /admin/login/ would fall back to the portal's
    LOGIN_REDIRECT_URL. Adding `?next=/admin/` to the address keeps staff in the admin.
    """
    if request.method == "GET" and REDIRECT_FIELD_NAME not in request.GET:
        return redirect(f"{request.path}?{urlencode({REDIRECT_FIELD_NAME: reverse('admin:index')})}")
    return admin.site.login(request)


DOMAIN_PAGES = {
    "inventory": [(_("Shopping list"), "shopping_cart", "admin:inventory_shopping_list", "inventory.view_filament")],
    "production": [(_("Plan timeline"), "view_timeline", "admin:production_printjob_timeline",
                    "production.view_printjob"),
                   (_("Restock"), "autorenew", "admin:production_printjob_restock", "production.view_printjob")],
    "printers": [(_("Fleet"), "grid_view", "admin:printers_fleet", "printers.view_printer")],
}


def environment(request):
    if settings.DEBUG:
        return [_("Development"), "warning"]
    return None


def failed_tasks_badge(request) -> str:
    from django_q.models import Failure

    count = Failure.objects.filter(stopped__gte=timezone.now() - timedelta(hours=24)).count()
    return str(count) if count else ""


def _model_item(model, *, icon: str, title=None, badge: str | None = None) -> dict | None:
    opts = model._meta
    try:
        link = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    except NoReverseMatch:
        return None
    item = {
        "title": title or capfirst(opts.verbose_name_plural),
        "icon": icon,
        "link": link,
        "permission": lambda request, o=opts: request.user.has_perm(f"{o.app_label}.view_{o.model_name}"),
    }
    if badge:
        item["badge"] = badge
    return item


def _items(specs) -> list[dict]:
    items = []
    for label, icon, *rest in specs:
        try:
            model = apps.get_model(label)
        except LookupError:
            continue
        if model not in admin.site._registry:
            continue
        item = _model_item(model, icon=icon, badge=rest[0] if rest else None)
        if item:
            items.append(item)
    return items


def navigation(request) -> list[dict]:
    groups = [
        {
            "items": [
                {"title": _("Dashboard"), "icon": "dashboard", "link": reverse("admin:index")},
                # "active": False, or unfold would mark "/" active on every page.
                {"title": _("Customer portal"), "icon": "storefront", "link": reverse("portal:home"), "active": False},
                {"title": _("API documentation"), "icon": "api", "link": reverse("api:openapi-view"), "active": False},
            ],
        },
        {
            "title": _("Customers & partners"),
            "separator": True,
            "items": _items([
                ("fablab.Organization", "corporate_fare"),
                ("fablab.Membership", "group"),
                ("fablab.Invitation", "forward_to_inbox"),
                ("fablab.ApiKey", "key"),
            ]),
        },
    ]
    # Each domain app gets its own group as soon as it registers models in the admin,
    # with its pages that are not a model's list first.
    for app_label in DOMAIN_APPS:
        config = apps.get_app_config(app_label)
        models = [m for m in config.get_models() if m in admin.site._registry]
        if models:
            pages = [
                {"title": title, "icon": icon, "link": reverse(url_name),
                 "permission": lambda request, p=permission: request.user.has_perm(p)}
                for title, icon, url_name, permission in DOMAIN_PAGES.get(app_label, [])
            ]
            groups.append({
                "title": config.verbose_name,
                "separator": True,
                "collapsible": True,
                "items": pages + [_model_item(m, icon=DOMAIN_ICONS[app_label]) for m in models],
            })
    groups.append({
        "title": _("System"),
        "separator": True,
        "collapsible": True,
        "items": _items([
            ("fablab.User", "person"),
            ("auth.Group", "badge"),
            ("account.EmailAddress", "alternate_email"),
            ("django_q.Schedule", "schedule"),
            ("django_q.OrmQ", "queue"),
            ("django_q.Success", "task_alt"),
            ("django_q.Failure", "error", "fablab.admin_site.failed_tasks_badge"),
            ("axes.AccessAttempt", "lock_person"),
            ("axes.AccessFailureLog", "no_accounts"),
        ]),
    })
    return groups
