"""Log-in lockout of the admin (django-axes) and the one definition of a client's address.

The admin counts failed log-ins per account and address together (AXES_LOCKOUT_PARAMETERS); the portal
does the same through allauth's rate limits (fablab.adapters.AccountAdapter). Both read the client's
address through `client_ip`, which trusts X-Forwarded-For only as far as TRUSTED_PROXY_COUNT says.
"""

from allauth.core.internal.httpkit import get_client_ip
from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler
from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse


def client_ip(request: HttpRequest) -> str:
    """The client's address: X-Forwarded-For's entry written by the outermost trusted proxy, else REMOTE_ADDR."""
    return get_client_ip(request) or ""


class AdminLockoutBackend(AxesStandaloneBackend):
    """axes' check, which refuses a locked-out admin log-in; a log-in without a request (the shell, a
    management command) is not an attempt over the web and is let through to the next backend."""

    def authenticate(self, request: HttpRequest | None, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


class AdminOnlyHandler(AxesDatabaseHandler):
    """axes' records (attempts, access and failure logs) for the admin's log-ins only: the portal's
    failures are counted by allauth, and would otherwise fill the admin's lists with rows that lock nothing."""

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        if request is not None and self.is_admin_request(request):
            super().user_login_failed(sender, credentials, request, **kwargs)

    def user_logged_in(self, sender, request, user, **kwargs):
        if request is not None and self.is_admin_request(request):
            super().user_logged_in(sender, request, user, **kwargs)

    def user_logged_out(self, sender, request, user, **kwargs):
        if request is not None and self.is_admin_request(request):
            super().user_logged_out(sender, request, user, **kwargs)


def admin_lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """The admin's lockout page (429): what happened, for how long, and who can lift it."""
    context = {
        **admin.site.each_context(request),
        "title": "",
        "lockout_minutes": settings.LOGIN_LOCKOUT_MINUTES,
    }
    return TemplateResponse(request, "admin/lockout.html", context, status=429).render()
