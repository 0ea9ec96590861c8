"""API rate limits: one allowance per organization, and wrong keys throttled per source address."""

import pytest
from django.core.cache import cache

from fablab.api import api as partner_api
from fablab.choices import ApiKeyScope
from fablab.tests.factories import PartnerFactory, make_api_key
from fablab.tests.helpers import ApiClient, assert_problem

ORGANIZATION = "/api/v1/organization"
WRONG_KEY = "fl_ABCDEFGH_" + "a" * 40


@pytest.fixture(autouse=True)
def _small_limits(settings, monkeypatch):
    """Three requests per organization and five wrong keys per address, counted afresh in every test."""
    (throttle,) = partner_api.throttle
    monkeypatch.setattr(throttle, "num_requests", 3)
    settings.API_AUTH_FAILURE_LIMIT = "5/h"
    cache.clear()
    yield
    cache.clear()


def client(raw: str, address: str = "203.0.113.7") -> ApiClient:
    return ApiClient(raw, REMOTE_ADDR=address)


@pytest.mark.django_db
class TestPerOrganization:
    def test_two_keys_of_one_organization_share_one_limit(self):
        partner = PartnerFactory()
        first, second = (client(make_api_key(partner, scope=ApiKeyScope.READ)[1]) for _ in range(2))
        assert [first.get(ORGANIZATION).status_code for _ in range(2)] == [200, 200]
        assert second.get(ORGANIZATION).status_code == 200
        response = second.get(ORGANIZATION)
        body = assert_problem(response, 429, detail_contains="organization")
        assert body["type"] == "urn:fablab:problem:rate-limited"
        assert int(response["Retry-After"]) > 0
        assert_problem(first.get(ORGANIZATION), 429)

    def test_other_organizations_keep_their_own_allowance(self):
        busy, other = PartnerFactory(), PartnerFactory()
        busy_client = client(make_api_key(busy)[1])
        for _ in range(3):
            busy_client.get(ORGANIZATION)
        assert_problem(busy_client.get(ORGANIZATION), 429)
        assert client(make_api_key(other)[1]).get(ORGANIZATION).status_code == 200

    def test_health_is_not_limited(self):
        for _ in range(5):
            assert client("").get("/api/v1/health").status_code in (200, 503)


@pytest.mark.django_db
class TestWrongKeysPerAddress:
    def test_many_wrong_keys_from_one_address_get_429(self):
        guesser = client(WRONG_KEY)
        assert [guesser.get(ORGANIZATION).status_code for _ in range(5)] == [401] * 5
        response = guesser.get(ORGANIZATION)
        assert_problem(response, 429, detail_contains="wrong API key")
        assert int(response["Retry-After"]) > 0

    def test_a_throttled_address_learns_nothing_from_a_right_key(self):
        _key, raw = make_api_key(PartnerFactory())
        for _ in range(5):
            client(WRONG_KEY).get(ORGANIZATION)
        assert_problem(client(raw).get(ORGANIZATION), 429)
        assert client(raw, address="198.51.100.20").get(ORGANIZATION).status_code == 200

    @pytest.mark.parametrize("raw", ["garbage", WRONG_KEY, "fl_ABCDEFGH_" + "a" * 39 + "\u00e9"])
    def test_every_kind_of_wrong_key_counts(self, raw):
        for _ in range(5):
            assert_problem(client(raw).get(ORGANIZATION), 401)
        assert_problem(client(raw).get(ORGANIZATION), 429)

    def test_revoked_keys_count_too(self):
        from fablab.services import api_key_revoke

        api_key, raw = make_api_key(PartnerFactory())
        api_key_revoke(api_key=api_key)
        for _ in range(5):
            assert_problem(client(raw).get(ORGANIZATION), 401)
        assert_problem(client(raw).get(ORGANIZATION), 429)

    def test_right_keys_and_missing_keys_do_not_count(self):
        _key, raw = make_api_key(PartnerFactory())
        for _ in range(6):
            assert_problem(client("").get(ORGANIZATION), 401)
        for _ in range(4):
            client(WRONG_KEY).get(ORGANIZATION)
        assert client(raw).get(ORGANIZATION).status_code == 200
        assert_problem(client(WRONG_KEY).get(ORGANIZATION), 401)  # the fifth wrong key is still answered

    def test_address_behind_a_trusted_proxy_is_the_clients(self, settings):
        settings.TRUSTED_PROXY_COUNT = settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
        for _ in range(5):
            ApiClient(WRONG_KEY, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.7").get(ORGANIZATION)
        _key, raw = make_api_key(PartnerFactory())
        colleague = ApiClient(raw, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.20")
        assert colleague.get(ORGANIZATION).status_code == 200
