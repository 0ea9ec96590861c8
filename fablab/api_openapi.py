"""What the OpenAPI document adds to ninja's: the error answers of every operation and the Idempotency-Key header.

ninja documents the answers a route declares; the errors (RFC 7807 problem documents from
fablab.problems and fablab.middleware) come from the API's shared machinery, so they are added
here, to every operation that can give them, from what the operation is: authenticated,
rate-limited, writing, naming a row. A route added tomorrow is documented the same way.
"""

import inspect

from ninja import NinjaAPI
from ninja.openapi.schema import OpenAPISchema

from fablab.problems import PROBLEM_CONTENT_TYPE

PROBLEM_SCHEMA = {
    "title": "Problem",
    "description": "An error, as an RFC 7807 problem document.",
    "type": "object",
    "properties": {
        "type": {"type": "string", "description": "urn:fablab:problem:<code>, or about:blank."},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "What went wrong and what to do about it."},
        "instance": {"type": "string", "description": "The path of the request."},
        "errors": {
            "type": "array", "description": "Invalid input only: each invalid value and where it is.",
            "items": {"type": "object", "properties": {
                "loc": {"type": "array", "items": {"type": "string"}},
                "msg": {"type": "string"},
                "type": {"type": "string"},
            }},
        },
    },
    "required": ["type", "title", "status", "detail", "instance"],
}

ERRORS = {
    400: "The body cannot be read: not JSON, or not the form data the operation takes.",
    401: "No valid API key: missing, malformed, unknown, revoked or expired.",
    403: "The key may not do this: a read-only key on a write, or the operation is not open to this "
         "organization's kind or role.",
    404: "No such row for this organization (another organization's rows are not found either).",
    402: "The organization's plan allows no more of this in the current billing period; upgrade or wait for the "
         "next period.",
    409: "The request conflicts with the current state, e.g. an illegal state change or a repeated upload.",
    422: "Invalid input (a value out of range, of the wrong type, or holding a NUL character); `errors` says where.",
    429: "The organization's rate limit (API_RATE_LIMIT, shared by all its keys) was exceeded, or too many "
         "wrong keys came from this address (API_AUTH_FAILURE_LIMIT); retry after `Retry-After` seconds.",
}

IDEMPOTENCY_KEY = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": True,
    "schema": {"type": "string", "minLength": 1},
    "description": "A unique string per real-world event: the same key sent again changes nothing and answers "
                   "what the first request did. Missing: 422.",
}


def may_answer(*statuses: int):
    """Declare the problem answers a view gives beyond those its kind implies (e.g. 402 from a quota)."""

    def mark(view):
        view.problem_statuses = (*getattr(view, "problem_statuses", ()), *statuses)
        return view

    return mark


def _takes_idempotency_key(operation) -> bool:
    """Whether the view reads the header through fablab.api_auth.idempotency_key."""
    code = getattr(inspect.unwrap(operation.view_func), "__code__", None)
    return code is not None and "idempotency_key" in code.co_names


def _names_rows(details: dict, components: dict) -> bool:
    """Whether the operation names rows that may not exist: a path parameter, or a body field `..._id`."""
    if any(p["in"] == "path" for p in details.get("parameters", [])):
        return True
    for content in details.get("requestBody", {}).get("content", {}).values():
        body = content.get("schema", {})
        if "$ref" in body:
            body = components.get(body["$ref"].rsplit("/", 1)[-1], {})
        if any(name.endswith("_id") for name in body.get("properties", {})):
            return True
    return False


def _errors_of(operation, details: dict, components: dict) -> list[int]:
    methods = {method.upper() for method in operation.methods}
    codes = [422, *getattr(inspect.unwrap(operation.view_func), "problem_statuses", ())]
    if details.get("requestBody"):
        codes.append(400)
    if operation.auth_callbacks:
        codes += [401, 403]
    if _names_rows(details, components):
        codes.append(404)
    if methods - {"GET", "HEAD", "OPTIONS"}:
        codes.append(409)
    if operation.throttle_objects:
        codes.append(429)
    return sorted(codes)


def document_errors(api: NinjaAPI, schema: OpenAPISchema) -> OpenAPISchema:
    """Add the problem answers and the Idempotency-Key header to every operation of `schema`."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    problem = {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    operations = {}
    for bound_router in api._get_bound_routers():
        for path_view in bound_router.path_operations.values():
            for operation in path_view.operations:
                operations[operation.operation_id or api.get_openapi_operation_id(operation)] = operation
    for path_item in schema["paths"].values():
        for details in path_item.values():
            operation = operations.get(details.get("operationId"))
            if operation is None:
                continue
            responses = details.setdefault("responses", {})
            for code in _errors_of(operation, details, components):
                responses.setdefault(code, {"description": ERRORS[code], "content": problem})
            if _takes_idempotency_key(operation):
                parameters = details.setdefault("parameters", [])
                if not any(p["in"] == "header" and p["name"] == IDEMPOTENCY_KEY["name"] for p in parameters):
                    parameters.append(dict(IDEMPOTENCY_KEY))
    return schema
