from django import forms
from django.utils.translation import gettext_lazy as _

from fablab.choices import ApiKeyScope, MembershipRole, OrganizationKind


class SignupForm(forms.Form):
    """Extra sign-up fields; allauth calls `signup()` once the user row exists."""

    organization_name = forms.CharField(
        label=_("Organization"),
        max_length=200,
        required=False,
        help_text=_("Your company or workshop. Leave empty if you were invited."),
    )

    def signup(self, request, user):
        from fablab.services import user_onboard
        from fablab.views import INVITATION_SESSION_KEY

        user_onboard(
            user=user,
            organization_name=self.cleaned_data.get("organization_name", ""),
            invitation_token=request.session.pop(INVITATION_SESSION_KEY, ""),
        )


class InvitationForm(forms.Form):
    email = forms.EmailField(label=_("E-mail"))
    role = forms.ChoiceField(
        label=_("Role"),
        choices=[(role.value, role.label) for role in (MembershipRole.MEMBER, MembershipRole.ADMIN)],
        initial=MembershipRole.MEMBER,
    )


class ApiKeyForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    scope = forms.ChoiceField(label=_("Scope"), choices=ApiKeyScope.choices, initial=ApiKeyScope.READ)
    expires_at = forms.DateTimeField(
        label=_("Expires"), required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )

    def __init__(self, *args, organization=None, **kwargs):
        super().__init__(*args, **kwargs)
        if organization is None or organization.kind != OrganizationKind.LAB:
            # A printer host's key is for the lab's own systems only (ApiKey.clean).
            self.fields["scope"].choices = [(scope.value, scope.label) for scope in ApiKeyScope
                                            if scope != ApiKeyScope.PRINTER_HOST]


class AccountDeleteForm(forms.Form):
    password = forms.CharField(label=_("Your password"), strip=False,
                               widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))


class OrganizationDeleteForm(forms.Form):
    name = forms.CharField(label=_("The organization's name"), max_length=200, strip=True)
    password = forms.CharField(label=_("Your password"), strip=False,
                               widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))


class OwnershipTransferForm(forms.Form):
    membership = forms.TypedChoiceField(label=_("New owner"), coerce=int, empty_value=None)
    keep_ownership = forms.BooleanField(label=_("Stay an owner as well"), required=False)

    def __init__(self, *args, candidates=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["membership"].choices = [(m.pk, f"{m.user.email} ({m.get_role_display()})") for m in candidates]
