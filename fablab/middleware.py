"""Request checks that hold for every door: the admin, the portal and the APIs."""

import json

from csp.constants import UNSAFE_EVAL
from csp.middleware import CSPMiddleware
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.http.multipartparser import MultiPartParserError
from django.utils.translation import gettext as _

from fablab.problems import problem_response
from fablab.validation import NUL, nul_location

API_PREFIX = "/api/"
ADMIN_PREFIX = "/admin/"
ADMIN_CSP_UPDATE = {"script-src": [UNSAFE_EVAL]}
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _nul_in_request(request: HttpRequest) -> list[str] | None:
    """Where the request carries a NUL character (["query", "q"], ["body", "title"], ...); None if nowhere."""
    if NUL in request.path:
        return ["path"]
    for name, values in request.GET.lists():
        if NUL in name or any(NUL in value for value in values):
            return ["query", name]
    for name, value in request.META.items():
        if name.startswith("HTTP_") and isinstance(value, str) and NUL in value:
            return ["header", name[5:].replace("_", "-").title()]
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return None
    if request.content_type in _FORM_TYPES:
        try:
            fields = request.POST  # parsed once; the view reads the same QueryDict
        except MultiPartParserError:
            return None  # a damaged body is the view's to refuse
        for name, values in fields.lists():
            if NUL in name or any(NUL in value for value in values):
                return ["form", name]
    elif request.content_type == "application/json" and b"\\u0000" in request.body:
        # JSON spells NUL only as the escape \u0000 (a raw NUL is not valid JSON): parse only when it is there.
        try:
            where = nul_location(json.loads(request.body))
        except ValueError:
            return None
        if where is not None:
            return ["body", *(str(part) for part in where)]
    return None


class RefuseNulMiddleware:
    """Refuse any request whose path, query, headers, form fields or JSON body hold a NUL character.

    No text column can store NUL (PostgreSQL raises an error), so without this a search or a form
    with %00 in it would fail with a server error deep inside a query. The partner API answers 422
    as an RFC 7807 problem; every other page answers 400.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        found = _nul_in_request(request)
        if found is None:
            return self.get_response(request)
        where = [part.replace(NUL, "\\x00") for part in found]
        detail = _("The request contains a NUL character (in %(where)s); no field can hold one.") % {
            "where": ".".join(where)}
        if request.path.startswith(API_PREFIX):
            return problem_response(request, status=422, title="Invalid input", detail=detail, code="invalid-input",
                                    errors=[{"loc": where, "msg": detail, "type": "nul_character"}])
        return HttpResponseBadRequest(detail, content_type="text/plain; charset=utf-8")


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's policy (settings.CONTENT_SECURITY_POLICY), with what the admin alone needs on top, and
    a Permissions-Policy header on every response.

    unfold's admin is built on Alpine.js, whose standard build evaluates the expressions in its `x-data`
    and `@click` attributes with `new Function`: the admin's pages, and only they, allow 'unsafe-eval'.
    """

    def get_policy_parts(self, request: HttpRequest, response: HttpResponse, report_only: bool = False):
        parts = super().get_policy_parts(request, response, report_only)
        if request.path_info.startswith(ADMIN_PREFIX) and parts.update is None:
            parts.update = ADMIN_CSP_UPDATE
        return parts

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        response = super().process_response(request, response)
        if settings.PERMISSIONS_POLICY and "Permissions-Policy" not in response:
            response["Permissions-Policy"] = settings.PERMISSIONS_POLICY
        return response
