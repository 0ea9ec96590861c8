import pytest

from fablab.tests.factories import OrganizationFactory


@pytest.fixture
def org(db):
    return OrganizationFactory()
