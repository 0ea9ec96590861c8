import factory
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model

from fablab.choices import ApiKeyScope, MembershipRole, OrganizationKind
from fablab.models import Membership, Organization
from fablab.services import api_key_create, invitation_create

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.Sequence(lambda n: f"user{n}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def verified(obj, create, extracted, **kwargs):
        obj.save()
        if create and extracted is not False:
            EmailAddress.objects.create(user=obj, email=obj.email, verified=True, primary=True)


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Organization {n}")
    slug = factory.Sequence(lambda n: f"organization-{n}")
    kind = OrganizationKind.CUSTOMER


class PartnerFactory(OrganizationFactory):
    kind = OrganizationKind.PARTNER


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = MembershipRole.MEMBER


def make_api_key(organization, *, scope=ApiKeyScope.READ, **kwargs) -> tuple:
    """An API key of `organization` and its secret."""
    return api_key_create(organization=organization, name=kwargs.pop("name", "test key"), scope=scope, **kwargs)


def accept_url(token: str) -> str:
    """The link an invitation e-mail carries in tests."""
    return f"http://testserver/invitations/accept/{token}/"


def make_invitation(by: Membership, email: str, role: str = MembershipRole.MEMBER) -> tuple:
    """`by` (a managing member) invites `email` into their organization: the invitation and its token."""
    return invitation_create(organization=by.organization, email=email, role=role, invited_by=by.user,
                             accept_url_for=accept_url)
