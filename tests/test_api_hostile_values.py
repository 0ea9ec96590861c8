"""Values no column can hold, sent to every route of the partner API: a clear 4xx problem, never a 500.

The routes come from the API's own OpenAPI document, so a route added tomorrow is covered without
touching this file. The failures these guard against happen in the database (an offset beyond
PostgreSQL's integers), so run this module against PostgreSQL too:
DATABASE_URL=postgres://... pytest tests/test_api_hostile_values.py
"""

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


def _operation(path: str, method: str = "get") -> dict:
    return OPENAPI["paths"][path][method]


def test_the_routes_were_found():
    """The discovery below reads the schema it expects; an empty list would make every test vacuous."""
    assert len(LIST_ROUTES) >= 14
    assert "/api/v1/api-keys" in LIST_ROUTES and "/api/v1/catalog/variants" in LIST_ROUTES
    assert ("/api/v1/catalog/models/{model_id}", "path", "model_id") in INTEGER_PARAMS


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
