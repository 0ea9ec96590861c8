from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from fablab.exceptions import ApplicationError
from fablab.security import client_ip


class AccountAdapter(DefaultAccountAdapter):
    error_messages = {
        **DefaultAccountAdapter.error_messages,
        "too_many_login_attempts": _(
            "Too many failed log-in attempts for this account from your address. Try again later, or reset "
            "your password with \"Forgot your password?\"."
        ),
    }

    def _get_login_attempts_cache_key(self, request, **credentials):
        """Failed log-ins count per account and address together (ACCOUNT_RATE_LIMITS["login_failed"]).

        Many failures against one account from one address lock only that pair: the other people behind
        a shared proxy address, and the account's owner elsewhere, still log in.
        """
        return f"{super()._get_login_attempts_cache_key(request, **credentials)}:{client_ip(request)}"

    def is_open_for_signup(self, request):
        """Sign-up is open unless SIGNUP_OPEN=false; an invited person may always sign up."""
        if settings.SIGNUP_OPEN:
            return True
        from fablab.services import invitation_get_open
        from fablab.views import INVITATION_SESSION_KEY

        token = request.session.get(INVITATION_SESSION_KEY)
        if not token:
            return False
        try:
            invitation_get_open(token=token)
        except ApplicationError:
            return False
        return True
