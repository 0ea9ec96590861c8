"""Values no column can hold, sent to every route of the partner API: a clear 4xx problem, never a 500.

The routes come from the API's own OpenAPI document, so a route added tomorrow is covered without
touching this file. The failures these guard against happen in PostgreSQL (an offset beyond its
integers, a NUL character in text), so run this module against it too:
DATABASE_URL=postgres://... pytest tests/test_api_hostile_values.py
"""

import json

import pytest

from fablab.api import api as partner_api
from fablab.api_pagination import MAX_OFFSET
from fablab.tests.helpers import assert_problem

pytestmark = pytest.mark.django_db

OPENAPI = partner_api.get_openapi_schema()
BIGINT_MAX = 2**63 - 1


def _operations(method: str):
    for path, operations in OPENAPI["paths"].items():
        if method in operations:
            yield path, operations[method]


def _types(parameter: dict) -> set[str]:
    """The JSON types a parameter takes ({"integer"}, {"string"}, {"array", "string"} ...)."""
    found = set()

    def walk(schema: dict) -> None:
        if "type" in schema:
            found.add(schema["type"])
        for option in schema.get("anyOf", []):
            walk(option)
        if "items" in schema:
            walk(schema["items"])
        if "$ref" in schema:
            walk(OPENAPI["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]])
        if "enum" in schema:
            found.add("string")

    walk(parameter.get("schema", {}))
    return found


def _url(path: str, operation: dict, **values: str) -> str:
    """The path with every path parameter filled: `values` where given, else an id that does not exist."""
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            default = "1" if "integer" in _types(parameter) else "x"
            path = path.replace(f"{{{parameter['name']}}}", values.get(parameter["name"], default))
    return path


def _params(operation: dict, where: str, *types: str) -> list[dict]:
    return [p for p in operation.get("parameters", []) if p["in"] == where and _types(p) & set(types)]


LIST_ROUTES = sorted(
    path for path, operation in _operations("get")
    if {"limit", "offset"} <= {p["name"] for p in _params(operation, "query", "integer")}
)
INTEGER_PARAMS = sorted(
    (path, parameter["in"], parameter["name"])
    for path, operation in _operations("get")
    for parameter in operation.get("parameters", [])
    if parameter["name"] not in ("limit", "offset") and "integer" in _types(parameter)
)
TEXT_QUERY_PARAMS = sorted(
    (path, parameter["name"]) for path, operation in _operations("get")
    for parameter in _params(operation, "query", "string")
)
JSON_BODY_ROUTES = sorted(
    (method, path) for method in ("post", "put", "patch") for path, operation in _operations(method)
    if "application/json" in operation.get("requestBody", {}).get("content", {})
)
FORM_FIELDS = sorted(
    (path, name) for path, operation in _operations("post")
    for name, field in (operation.get("requestBody", {}).get("content", {}).get("multipart/form-data", {})
                        .get("schema", {}).get("properties", {}).items())
    if field.get("format") != "binary" and "string" in _types({"schema": field})
)


def _operation(path: str, method: str = "get") -> dict:
    return OPENAPI["paths"][path][method]


def test_the_routes_were_found():
    """The discovery below reads the schema it expects; an empty list would make every test vacuous."""
    assert len(LIST_ROUTES) >= 14
    assert "/api/v1/api-keys" in LIST_ROUTES and "/api/v1/catalog/variants" in LIST_ROUTES
    assert ("/api/v1/catalog/models", "q") in TEXT_QUERY_PARAMS
    assert ("/api/v1/catalog/variants", "tag") in TEXT_QUERY_PARAMS
    assert ("/api/v1/catalog/models/{model_id}", "path", "model_id") in INTEGER_PARAMS
    assert ("post", "/api/v1/scans") in JSON_BODY_ROUTES
    assert ("/api/v1/catalog/variants/{variant_id}/versions", "change_note") in FORM_FIELDS


# --- pagination -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", LIST_ROUTES)
@pytest.mark.parametrize(("query", "name"), [
    (f"offset={2**63}", "offset"),
    (f"offset={MAX_OFFSET + 1}", "offset"),
    ("offset=-1", "offset"),
    (f"offset=-{2**63 + 1}", "offset"),
    (f"limit={2**63}", "limit"),
    ("limit=-1", "limit"),
])
def test_an_offset_or_limit_out_of_range_is_refused(lab_api, path, query, name):
    body = assert_problem(lab_api.get(f"{_url(path, _operation(path))}?{query}"), 422)
    assert ["query", name] in [error["loc"] for error in body["errors"]]


@pytest.mark.parametrize("path", LIST_ROUTES)
def test_the_largest_offset_is_an_empty_page(lab_api, path):
    response = lab_api.get(f"{_url(path, _operation(path))}?offset={MAX_OFFSET}")
    if response.status_code == 404:  # a list under a parent (a printer's jobs): the parent does not exist
        assert_problem(response, 404)
        return
    assert response.status_code == 200, response.content
    assert response.json()["items"] == [] and response.json()["offset"] == MAX_OFFSET


# --- integers beyond the database's -----------------------------------------------------------


@pytest.mark.parametrize(("path", "where", "name"), INTEGER_PARAMS)
@pytest.mark.parametrize("value", [str(BIGINT_MAX + 1), str(-BIGINT_MAX - 2), "1" + "0" * 40])
def test_an_integer_beyond_bigint_is_not_found_or_refused(lab_api, path, where, name, value):
    operation = _operation(path)
    if where == "path":
        response = lab_api.get(_url(path, operation, **{name: value}))
    else:
        response = lab_api.get(_url(path, operation), {name: value})
    if response.status_code == 200:  # a filter no row matches
        assert response.json()["items"] == []
    else:
        assert_problem(response, response.status_code)
        assert response.status_code in (404, 422)


# --- NUL characters ---------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "name"), TEXT_QUERY_PARAMS)
@pytest.mark.parametrize("value", ["a\x00b", "\x00"])
def test_a_nul_in_a_query_parameter_is_refused(lab_api, path, name, value):
    body = assert_problem(lab_api.get(_url(path, _operation(path)), {name: value}), 422, detail_contains="NUL")
    assert body["errors"][0]["loc"] == ["query", name]


def test_a_nul_in_a_path_is_refused(lab_api):
    assert_problem(lab_api.get("/api/v1/scans/1/download/st%00l"), 422, detail_contains="NUL")


@pytest.mark.parametrize(("method", "path"), JSON_BODY_ROUTES)
def test_a_nul_in_a_json_body_is_refused(lab_api, method, path, partner):
    url = _url(path, _operation(path, method))
    payload = json.dumps({"title": "a\u0000b", "nested": [{"\u0000": 1}]})
    response = getattr(lab_api, method)(url, payload, content_type="application/json",
                                        headers={"Idempotency-Key": "nul-1"})
    body = assert_problem(response, 422, detail_contains="NUL")
    assert body["errors"][0]["loc"] == ["body", "title"]


def test_an_escaped_backslash_before_u0000_is_text_not_nul(api):
    response = api.post("/api/v1/scans", json.dumps({"title": "C:\\u0000 folder"}), content_type="application/json")
    assert response.status_code == 201, response.content
    assert response.json()["title"] == "C:\\u0000 folder"


@pytest.mark.parametrize(("path", "name"), FORM_FIELDS)
def test_a_nul_in_a_form_field_is_refused(lab_api, path, name):
    body = assert_problem(lab_api.post(_url(path, _operation(path, "post")), {name: "a\x00b"}), 422,
                          detail_contains="NUL")
    assert body["errors"][0]["loc"] == ["form", name]


def test_a_nul_in_a_header_is_refused(lab_api):
    assert_problem(lab_api.get("/api/v1/organization", headers={"X-Trace": "a\x00b"}), 422, detail_contains="NUL")


def test_the_portal_and_the_admin_answer_400(admin_client, client):
    response = admin_client.get("/admin/catalog/model/", {"q": "a\x00b"})
    assert response.status_code == 400 and b"NUL" in response.content
    response = client.post("/accounts/login/", {"login": "a\x00@example.com", "password": "x"})
    assert response.status_code == 400
