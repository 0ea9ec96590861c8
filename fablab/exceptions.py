"""Domain errors. Interfaces map them to their medium (admin message, RFC 7807, task failure)."""


class ApplicationError(Exception):
    """A business rule refused the request. `status` is the HTTP status the API uses."""

    status = 400
    title = "Request refused"
    code = "refused"

    def __init__(self, message: str, *, extra: dict | None = None, headers: dict | None = None):
        super().__init__(message)
        self.message = message
        self.extra = extra or {}
        self.headers = headers or {}  # HTTP headers the API sends with the problem, e.g. Retry-After


class NotFound(ApplicationError):
    status = 404
    title = "Not found"
    code = "not-found"


class PermissionDenied(ApplicationError):
    status = 403
    title = "Permission denied"
    code = "permission-denied"


class Conflict(ApplicationError):
    status = 409
    title = "Conflict"
    code = "conflict"


class IllegalTransition(Conflict):
    """A state machine refused a move its ALLOWED_TRANSITIONS does not list (see fablab.states)."""


class InvalidInput(ApplicationError):
    status = 422
    title = "Invalid input"
    code = "invalid-input"


class PaymentRequired(ApplicationError):
    """The plan's allowance is used up and only a paid plan would allow more."""

    status = 402
    title = "Payment required"
    code = "payment-required"


class TooManyRequests(ApplicationError):
    """A limit per period is reached; `headers` carries Retry-After."""

    status = 429
    title = "Too many requests"
    code = "too-many-requests"
