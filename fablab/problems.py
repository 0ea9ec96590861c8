"""RFC 7807 problem details: the one shape every API error takes."""

import logging
import math
from http import HTTPStatus

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DataError
from django.http import Http404, HttpRequest, JsonResponse
from ninja.errors import AuthenticationError, AuthorizationError, HttpError, Throttled, ValidationError

from fablab.exceptions import ApplicationError

logger = logging.getLogger("fablab.api")

PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_response(
    request: HttpRequest, *, status: int, title: str, detail: str, code: str | None = None, **extra
) -> JsonResponse:
    body = {
        "type": f"urn:fablab:problem:{code}" if code else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.get_full_path(),
        **extra,
    }
    return JsonResponse(body, status=status, content_type=PROBLEM_CONTENT_TYPE)


def _validation_errors(errors: list) -> list[dict]:
    cleaned = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        cleaned.append({"loc": loc, "msg": error.get("msg", ""), "type": error.get("type", "")})
    return cleaned


def install_problem_handlers(api) -> None:
    @api.exception_handler(ApplicationError)
    def application_error(request, exc: ApplicationError):
        response = problem_response(
            request, status=exc.status, title=exc.title, detail=exc.message, code=exc.code, **exc.extra
        )
        for header, value in exc.headers.items():
            response[header] = value
        return response

    @api.exception_handler(ValidationError)
    def validation_error(request, exc: ValidationError):
        errors = _validation_errors(exc.errors)
        where = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5])
        return problem_response(
            request, status=422, title="Invalid input", detail=f"The request is not valid: {where}",
            code="invalid-input", errors=errors,
        )

    @api.exception_handler(AuthenticationError)
    def authentication_error(request, exc):
        return problem_response(
            request, status=401, title="Authentication required",
            detail=f"Send a valid API key in the {settings.API_KEY_HEADER} header.",
            code="authentication-required",
        )

    @api.exception_handler(AuthorizationError)
    def authorization_error(request, exc):
        return problem_response(request, status=403, title="Permission denied", detail=str(exc),
                                code="permission-denied")

    @api.exception_handler(Throttled)
    def throttled(request, exc: Throttled):
        response = problem_response(
            request, status=429, title="Too many requests",
            detail=getattr(exc, "detail", None)
            or "The rate limit of this API key's organization was exceeded; retry later.",
            code="rate-limited",
        )
        if exc.wait is not None:
            response["Retry-After"] = str(math.ceil(exc.wait))
        return response

    @api.exception_handler(HttpError)
    def http_error(request, exc: HttpError):
        try:
            title = HTTPStatus(exc.status_code).phrase
        except ValueError:
            title = "Error"
        return problem_response(request, status=exc.status_code, title=title, detail=str(exc) or title)

    @api.exception_handler(Http404)
    def not_found(request, exc):
        return problem_response(request, status=404, title="Not found",
                                detail=str(exc) or "No such resource.", code="not-found")

    @api.exception_handler(DjangoPermissionDenied)
    def permission_denied(request, exc):
        return problem_response(request, status=403, title="Permission denied",
                                detail=str(exc) or "Permission denied.", code="permission-denied")

    def out_of_range(request, exc: Exception):
        # A value the database cannot hold (a number beyond its integers, a text it refuses) is the
        # request's fault; the checks in front of the database should have caught it, so it is logged.
        logger.warning("A value of %s %s is out of range: %s", request.method, request.path, exc)
        return problem_response(
            request, status=422, title="Invalid input", code="invalid-input",
            detail="A value of this request is out of range: a number too large or a text the database refuses.",
        )

    api.add_exception_handler(DataError, out_of_range)
    api.add_exception_handler(OverflowError, out_of_range)  # SQLite: an integer beyond 64 bits in a query

    @api.exception_handler(Exception)
    def unexpected(request, exc):
        logger.exception("Unhandled error in %s %s", request.method, request.path)
        return problem_response(
            request, status=500, title="Internal error",
            detail="The server failed to handle this request. It has been logged.", code="internal-error",
        )
