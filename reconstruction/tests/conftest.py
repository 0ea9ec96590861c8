import pytest

from fablab.tests.factories import MembershipFactory
from reconstruction import services


@pytest.fixture
def job(db):
    """A new scan of a member's organization, without photos."""
    owner = MembershipFactory()
    return services.scan_job_create(organization=owner.organization, user=owner.user, title="Skull")

