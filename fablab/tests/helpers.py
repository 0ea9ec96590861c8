"""Plain helpers every app's tests share: an API client and the problem+json check.

Fixtures live in the root conftest.py; what a test imports lives here.
"""

from django.test import Client

# --- The API -------------------------------------------------------------------------------


class ApiClient(Client):
    """A test client that sends an API key with every request."""

    def __init__(self, key: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.key = key

    def generic(self, method, path, *args, headers=None, **kwargs):
        headers = dict(headers or {})
        if self.key is not None:
            headers.setdefault("X-API-Key", self.key)
        return super().generic(method, path, *args, headers=headers, **kwargs)


def assert_problem(response, status: int, *, detail_contains: str = "") -> dict:
    """The response is an RFC 7807 problem with this status; returns its body."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["type"]
    assert body["instance"].startswith("/api/v1/")
    if detail_contains:
        assert detail_contains in body["detail"], body["detail"]
    return body
