from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings

from fablab.exceptions import ApplicationError


class AccountAdapter(DefaultAccountAdapter):
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
