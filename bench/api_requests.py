"""Latency of authenticated API requests through the whole stack.

Creates a throw-away test database (PostgreSQL when DATABASE_URL points at one,
else SQLite), a partner with members and API keys, then times requests made with
Django's test client: API-key check, tenant scoping, pagination, serialisation.
Prints p50/p95/p99 per endpoint and requests per second.
"""

import os

import _setup

_setup.setup_django()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "400"))
ENDPOINTS = ["/api/v1/organization", "/api/v1/organization/members?limit=50", "/api/v1/api-keys?limit=25"]


def main() -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.API_RATE_LIMIT = "1000000/s"
    with _setup.throwaway_database():
        from fablab.choices import MembershipRole, OrganizationKind
        from fablab.models import Membership, User
        from fablab.services import api_key_create, organization_create

        partner = organization_create(name="Bench Partner", kind=OrganizationKind.PARTNER)
        for other in range(20):  # other tenants' rows the scoping must skip
            org = organization_create(name=f"Other {other}", kind=OrganizationKind.CUSTOMER)
            for n in range(10):
                api_key_create(organization=org, name=f"o{other}-{n}")
        users = User.objects.bulk_create(User(username=f"b{n}", email=f"b{n}@example.com") for n in range(50))
        Membership.objects.bulk_create(
            Membership(user=u, organization=partner, role=MembershipRole.MEMBER) for u in users
        )
        for n in range(30):
            api_key_create(organization=partner, name=f"key {n}")
        _key, raw = api_key_create(organization=partner, name="bench", scope="write")

        client = Client(headers={"X-API-Key": raw})

        def answered(response) -> None:
            assert response.status_code == 200, response.content

        print(f"database: {connection.vendor}, {REQUESTS} requests per endpoint")
        print(f"{'endpoint':<42} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s':>8}")
        for path in ENDPOINTS:
            for _ in range(20):  # warm-up
                assert client.get(path).status_code == 200
            samples = _setup.timed_ms(lambda path=path: client.get(path), REQUESTS, check=answered)
            p50, p95, p99 = (_setup.percentile(samples, point) for point in (50, 95, 99))
            print(f"{path:<42} {p50:>8.2f} {p95:>8.2f} {p99:>8.2f} {1000 * len(samples) / sum(samples):>8.0f}")


if __name__ == "__main__":
    main()
