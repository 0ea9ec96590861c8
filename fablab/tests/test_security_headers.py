"""Content-Security-Policy and Permissions-Policy on every door's responses."""

import re

import pytest
from django.urls import reverse

from fablab.tests.factories import UserFactory


def directives(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {name: values for name, *values in (part.split() for part in header.split(";") if part.strip())}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/admin/login/?next=/admin/", "/accounts/login/", "/api/v1/docs",
                                  "/api/v1/openapi.json", "/api/v1/health"])
def test_every_door_sends_the_policies(client, path):
    response = client.get(path)
    assert response.status_code in (200, 503)
    policy = directives(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in policy["script-src"]
    assert "camera=()" in response["Permissions-Policy"] and "geolocation=()" in response["Permissions-Policy"]


@pytest.mark.django_db
def test_only_the_admin_allows_eval(admin_client, client):
    assert "'unsafe-eval'" in directives(admin_client.get(reverse("admin:index")))["script-src"]
    user = UserFactory()
    client.force_login(user)
    portal = client.get(reverse("portal:home"))
    assert portal.status_code == 200
    assert "'unsafe-eval'" not in directives(portal)["script-src"]
    assert "'unsafe-eval'" not in directives(client.get("/api/v1/docs"))["script-src"]


@pytest.mark.django_db
def test_api_docs_load_nothing_from_elsewhere(client):
    page = client.get("/api/v1/docs").content.decode()
    assert re.findall(r'(?:src|href)="(https?:[^"]+)"', page) == []
    assert "/static/ninja/swagger-ui-bundle.js" in page


@pytest.mark.django_db
def test_inline_scripts_carry_the_responses_nonce(admin_client):
    from catalog.tests.factories import VariantFactory

    variant = VariantFactory()
    response = admin_client.get(reverse("admin:catalog_modelvariant_upload", args=[variant.pk]))
    assert response.status_code == 200
    nonces = re.findall(r"<script nonce=\"([^\"]+)\"", response.content.decode())
    assert nonces and f"'nonce-{nonces[0]}'" in directives(response)["script-src"]


@pytest.mark.django_db
def test_portal_templates_have_no_inline_event_handlers(client):
    user = UserFactory()
    client.force_login(user)
    page = client.get(reverse("portal:home")).content.decode()
    assert not re.search(r"\son[a-z]+=\"", page)
    assert "portal/portal.js" in page
