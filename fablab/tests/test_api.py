from datetime import timedelta

import pytest
from django.db import DataError
from django.utils import timezone

from fablab import services
from fablab.choices import ApiKeyScope, MembershipRole
from fablab.models import ApiKey
from fablab.tests.factories import MembershipFactory, make_api_key
from fablab.tests.helpers import ApiClient, assert_problem

pytestmark = pytest.mark.django_db


class TestAuthentication:
    def test_missing_header(self, client):
        assert_problem(client.get("/api/v1/organization"), 401, detail_contains="X-API-Key")

    @pytest.mark.parametrize("header", ["garbage", "Bearer fl_x", "fl_ABCDEFGH_" + "a" * 41, "fl__"])
    def test_malformed_header(self, header, partner):
        body = assert_problem(ApiClient(header).get("/api/v1/organization"), 401, detail_contains="Malformed")
        assert body["type"] == "urn:fablab:problem:authentication-failed"

    def test_unknown_key(self, partner):
        assert_problem(ApiClient("fl_ABCDEFGH_" + "a" * 40).get("/api/v1/organization"), 401,
                       detail_contains="Unknown")

    def test_revoked_key(self, partner):
        api_key, raw = make_api_key(partner)
        services.api_key_revoke(api_key=api_key)
        assert_problem(ApiClient(raw).get("/api/v1/organization"), 401, detail_contains="revoked")

    def test_expired_key(self, partner):
        api_key, raw = make_api_key(partner, expires_at=timezone.now() + timedelta(days=1))
        ApiKey.objects.filter(pk=api_key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        assert_problem(ApiClient(raw).get("/api/v1/organization"), 401, detail_contains="expired")

    def test_valid_key_reads_its_organization(self, api, partner):
        response = api.get("/api/v1/organization")
        assert response.status_code == 200
        assert response.json()["id"] == partner.pk
        assert response.json()["kind"] == "partner"

    def test_read_key_cannot_write(self, partner):
        target, _ = make_api_key(partner, name="target")
        _key, raw = make_api_key(partner, scope=ApiKeyScope.READ)
        client = ApiClient(raw)
        assert client.get(f"/api/v1/api-keys/{target.pk}").status_code == 200
        assert_problem(client.post(f"/api/v1/api-keys/{target.pk}/revoke"), 403, detail_contains="only read")
        target.refresh_from_db()
        assert target.revoked_at is None

    def test_write_key_revokes(self, api, partner):
        target, raw_target = make_api_key(partner, name="target")
        response = api.post(f"/api/v1/api-keys/{target.pk}/revoke")
        assert response.status_code == 200
        assert response.json()["status"] == "revoked"
        assert_problem(ApiClient(raw_target).get("/api/v1/organization"), 401)

    def test_secrets_never_leave_the_api(self, partner):
        _key, raw = make_api_key(partner)
        response = ApiClient(raw).get("/api/v1/api-keys")
        text = response.content.decode()
        assert raw not in text
        assert raw.split("_")[2] not in text
        assert "hashed" not in text


class TestIsolation:
    """A partner's key never reads or changes another organization's rows: 404, not 403."""

    def test_cannot_read_other_organizations_key(self, api, other_partner):
        foreign, _ = make_api_key(other_partner)
        assert_problem(api.get(f"/api/v1/api-keys/{foreign.pk}"), 404)

    def test_cannot_revoke_other_organizations_key(self, api, other_partner):
        foreign, foreign_raw = make_api_key(other_partner)
        assert_problem(api.post(f"/api/v1/api-keys/{foreign.pk}/revoke"), 404)
        foreign.refresh_from_db()
        assert foreign.revoked_at is None
        assert ApiClient(foreign_raw).get("/api/v1/organization").status_code == 200

    def test_lists_hold_only_own_rows(self, api, partner, other_partner):
        make_api_key(other_partner, name="foreign")
        MembershipFactory(organization=partner, role=MembershipRole.OWNER)
        MembershipFactory(organization=other_partner)
        keys = api.get("/api/v1/api-keys").json()
        assert {item["name"] for item in keys["items"]} == {"test key"}
        members = api.get("/api/v1/organization/members").json()
        assert members["count"] == 1
        assert members["items"][0]["role"] == "owner"

    def test_unknown_id_and_foreign_id_look_the_same(self, api, other_partner):
        foreign, _ = make_api_key(other_partner)
        unknown = assert_problem(api.get("/api/v1/api-keys/999999"), 404)
        hidden = assert_problem(api.get(f"/api/v1/api-keys/{foreign.pk}"), 404)
        assert unknown["title"] == hidden["title"]


class TestProblemsAndPagination:
    def test_unknown_endpoint(self, api):
        assert_problem(api.get("/api/v1/no/such/thing"), 404, detail_contains="/api/v1/docs")

    def test_wrong_type_in_path(self, api):
        body = assert_problem(api.get("/api/v1/api-keys/not-a-number"), 422)
        assert body["errors"][0]["loc"] == ["path", "key_id"]

    def test_limit_above_maximum_is_refused(self, api, settings):
        body = assert_problem(api.get(f"/api/v1/api-keys?limit={settings.API_PAGE_SIZE_MAX + 1}"), 422)
        assert body["errors"][0]["loc"] == ["query", "limit"]

    @pytest.mark.parametrize("query", ["limit=0", "offset=-1", "limit=abc"])
    def test_bad_pagination(self, api, query):
        assert_problem(api.get(f"/api/v1/api-keys?{query}"), 422)

    def test_pages(self, api, partner):
        for n in range(5):
            make_api_key(partner, name=f"k{n}")
        first = api.get("/api/v1/api-keys?limit=2").json()
        assert first["count"] == 6 and first["limit"] == 2 and first["offset"] == 0
        assert len(first["items"]) == 2
        last = api.get("/api/v1/api-keys?limit=2&offset=4").json()
        assert len(last["items"]) == 2
        names = {i["name"] for i in first["items"]} | {i["name"] for i in last["items"]}
        assert len(names) == 4

    def test_method_not_allowed_on_read_endpoint(self, api):
        response = api.delete("/api/v1/organization")
        assert response.status_code == 405

    def test_unexpected_error_is_a_problem_without_a_trace(self, api, monkeypatch):
        def explode(**kwargs):
            raise RuntimeError("secret internals")

        monkeypatch.setattr("fablab.selectors.membership_list", explode)
        body = assert_problem(api.get("/api/v1/organization/members"), 500)
        assert "secret internals" not in str(body)


    @pytest.mark.parametrize("error", [DataError("value out of range for type bigint"),
                                       OverflowError("Python int too large to convert to SQLite INTEGER")])
    def test_a_value_the_database_cannot_hold_is_invalid_input(self, api, monkeypatch, error):
        def refuse(**kwargs):
            raise error

        monkeypatch.setattr("fablab.selectors.membership_list", refuse)
        body = assert_problem(api.get("/api/v1/organization/members"), 422, detail_contains="out of range")
        assert "bigint" not in body["detail"] and "SQLite" not in body["detail"]


class TestHealthAndDocs:
    def test_health_reports_each_service(self, client):
        response = client.get("/api/v1/health")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok"
        assert set(body["checks"]) == {"database", "broker", "storage"}
        assert all(check["ok"] for check in body["checks"].values())
        assert body["checks"]["broker"]["kind"] == "orm"

    def test_health_degrades_when_storage_fails(self, client, monkeypatch):
        def broken_save(*args, **kwargs):
            raise OSError("disk full")

        monkeypatch.setattr("fablab.health.default_storage.save", broken_save)
        response = client.get("/api/v1/health")
        assert response.status_code == 503
        storage = response.json()["checks"]["storage"]
        assert storage["ok"] is False and "disk full" in storage["error"]

    def test_openapi_schema_and_docs(self, client):
        schema = client.get("/api/v1/openapi.json").json()
        assert schema["info"]["title"] == "fablab API"
        assert "/api/v1/organization" in schema["paths"]
        assert "/api/v1/health" in schema["paths"]
        schemes = schema["components"]["securitySchemes"]
        assert any(s.get("name") == "X-API-Key" and s.get("in") == "header" for s in schemes.values())
        assert client.get("/api/v1/docs").status_code == 200


    def test_openapi_declares_the_problem_answers(self, client):
        schema = client.get("/api/v1/openapi.json").json()
        problem = schema["components"]["schemas"]["Problem"]
        assert set(problem["required"]) == {"type", "title", "status", "detail", "instance"}
        operations = [(method, path, op) for path, item in schema["paths"].items() for method, op in item.items()]
        assert len(operations) > 40
        for method, path, op in operations:
            declared = set(op["responses"])
            expected = {"422"}
            if op.get("security"):
                expected |= {"401", "403", "429"}
            if any(p["in"] == "path" for p in op["parameters"]):
                expected.add("404")
            if method != "get":
                expected.add("409")
            assert expected <= declared, (method, path, sorted(expected - declared))
            for code in expected:
                content = op["responses"][code]["content"]
                assert content == {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
                assert op["responses"][code]["description"]
        health = schema["paths"]["/api/v1/health"]["get"]["responses"]
        assert "401" not in health and "429" not in health  # no key, no rate limit
        assert "404" in schema["paths"]["/api/v1/inventory/spools"]["post"]["responses"]  # filament_id may not exist
        assert "404" not in schema["paths"]["/api/v1/scans"]["post"]["responses"]

    def test_openapi_declares_the_idempotency_key_where_it_is_needed(self, client):
        schema = client.get("/api/v1/openapi.json").json()
        taking = {
            (method, path) for path, item in schema["paths"].items() for method, op in item.items()
            for parameter in op["parameters"]
            if parameter["in"] == "header" and parameter["name"] == "Idempotency-Key" and parameter["required"]
        }
        assert taking == {
            ("post", "/api/v1/inventory/spools"),
            ("post", "/api/v1/inventory/spools/{spool_id}/use"),
            ("post", "/api/v1/inventory/spools/{spool_id}/weigh"),
            ("post", "/api/v1/inventory/spools/{spool_id}/adjust"),
            ("post", "/api/v1/inventory/products/{product_id}/stock"),
            ("post", "/api/v1/inventory/products/{product_id}/sales"),
            ("post", "/api/v1/sales"),
            ("post", "/api/v1/sales/{sale_id}/returns"),
            ("post", "/api/v1/printers/{printer_id}/commands"),
            ("post", "/api/v1/production/jobs"),
        }

    def test_a_declared_idempotency_key_is_really_required(self, lab_api):
        """What the document says matches what the route does: without the header, 422 naming it."""
        assert_problem(lab_api.post("/api/v1/inventory/spools", {"filament_id": 1, "grams": "1000"},
                                    content_type="application/json"), 422, detail_contains="Idempotency-Key")
