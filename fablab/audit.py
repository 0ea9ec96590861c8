"""The request an audit log entry is written in: who acts and from where, without passing it to every service.

`AuditRequestMiddleware` remembers the current request; `fablab.services.audit_record` reads the person
(request.user), the API key (request.auth, set by django-ninja once the key is checked), the client's
address (`fablab.security.client_ip`) and the user agent from it. Outside a request (tasks, management
commands) an entry has no actor and no address unless they are passed; Stripe's webhook requests act
for nobody, so their entries carry Stripe's address and no actor.
"""

from contextlib import contextmanager
from contextvars import ContextVar

from asgiref.sync import iscoroutinefunction
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import sync_and_async_middleware

_current_request: ContextVar[HttpRequest | None] = ContextVar("fablab_audit_request", default=None)


def current_request() -> HttpRequest | None:
    return _current_request.get()


@contextmanager
def audit_request(request: HttpRequest | None):
    """Make `request` the one audit entries are attributed to, for the duration of the block."""
    token = _current_request.set(request)
    try:
        yield
    finally:
        _current_request.reset(token)


@sync_and_async_middleware
def AuditRequestMiddleware(get_response):  # noqa: N802  (named like the class-based middleware it stands beside)
    """Remembers the request for the audit log (after AuthenticationMiddleware, which sets request.user).

    Works in both modes, so it never makes an async request run through a thread."""
    if iscoroutinefunction(get_response):

        async def middleware(request: HttpRequest) -> HttpResponse:
            with audit_request(request):
                return await get_response(request)

    else:

        def middleware(request: HttpRequest) -> HttpResponse:
            with audit_request(request):
                return get_response(request)

    return middleware


# --- Log-ins: django.contrib.auth's signals cover the admin and allauth's portal alike ----------------

# The credential fields a failed log-in may name the account by; the password is never read.
_IDENTIFIER_FIELDS = ("email", "username", "login")


@receiver(user_logged_in, dispatch_uid="fablab.audit.login")
def _record_login(sender, request, user, **kwargs):
    from fablab.choices import AuditAction
    from fablab.services import audit_record

    with audit_request(request if request is not None else current_request()):
        audit_record(action=AuditAction.LOGIN, actor=user, target=user)


@receiver(user_login_failed, dispatch_uid="fablab.audit.login_failed")
def _record_login_failed(sender, credentials, request=None, **kwargs):
    from fablab.choices import AuditAction
    from fablab.services import audit_record

    identifier = next((str(credentials[field]) for field in _IDENTIFIER_FIELDS if credentials.get(field)), "")
    with audit_request(request if request is not None else current_request()):
        audit_record(action=AuditAction.LOGIN_FAILED, target_type="user", target_text=identifier)


# --- Memberships: the portal's services and the admin's forms and inlines alike -------------------------


def _membership_receivers():
    """Connect the membership receivers (called from FablabConfig.ready, once the models are loaded)."""
    from django.db.models.signals import post_delete, post_init, post_save

    from fablab.models import Membership

    post_init.connect(_remember_role, sender=Membership, dispatch_uid="fablab.audit.membership_init")
    post_save.connect(_record_membership_saved, sender=Membership, dispatch_uid="fablab.audit.membership_saved")
    post_delete.connect(_record_membership_deleted, sender=Membership,
                        dispatch_uid="fablab.audit.membership_deleted")


def _remember_role(sender, instance, **kwargs):
    instance._audit_role = instance.role


def _record_membership_saved(sender, instance, created, raw=False, **kwargs):
    from fablab.choices import AuditAction
    from fablab.services import audit_record

    if raw:
        return  # fixtures being loaded
    if created:
        audit_record(action=AuditAction.MEMBER_ADDED, organization=instance.organization, target=instance.user,
                     extra={"role": instance.role})
    elif instance.role != instance._audit_role:
        audit_record(action=AuditAction.MEMBER_ROLE_CHANGED, organization=instance.organization,
                     target=instance.user, extra={"from": instance._audit_role, "to": instance.role})
    instance._audit_role = instance.role


def _record_membership_deleted(sender, instance, origin=None, **kwargs):
    from fablab.choices import AuditAction
    from fablab.models import Membership
    from fablab.services import audit_record

    # Only a membership removed for itself: one that goes with its organization or user is part of that deletion.
    if not (isinstance(origin, Membership) or getattr(origin, "model", None) is Membership):
        return
    audit_record(action=AuditAction.MEMBER_REMOVED, organization=instance.organization, target=instance.user,
                 extra={"role": instance.role})
