"""The README's authorisation table, walked: every API operation × every kind of caller answers as the table says.

The table is read from README.md ("Who may call what"), so the documentation is what is tested. The operations
come from the API's own OpenAPI document (checked against every operation the routers hold, so a hidden one is
not skipped): an operation the table lacks fails, as does a row naming an operation that no longer exists.

A refusal (401, 403) must be exactly that status as a problem document. Any other cell lets the call past
the guard: the answer is then whatever the operation says about these made-up ids and empty bodies (200, 404,
422, ...), never 401, 403 or a server error. Which rows an allowed caller sees is each app's own tests' concern.
"""

import re
from pathlib import Path

import pytest
from django.conf import settings

from fablab.api import api
from fablab.choices import ApiKeyScope, OrganizationKind
from fablab.tests.factories import OrganizationFactory, make_api_key
from fablab.tests.helpers import ApiClient, assert_problem

README = Path(settings.BASE_DIR) / "README.md"
API_PREFIX = "/api/v1"
CALLERS = ["anonymous", "customer read", "customer write", "partner read", "partner write", "lab read", "lab write"]
REFUSALS = {"401": 401, "403": 403}
ALLOWED = {"allowed", "own rows only", "own + shared rows", "shared rows", "own + staff's rows"}
# Made-up values for the path parameters: no row has these ids, so an allowed caller gets 404 (or 422).
PATH_VALUES = {"kind": "stl", "number": "1"}
MISSING_ID = "999999"


def readme_table() -> dict[tuple[str, str], dict[str, str]]:
    """{(method, path): {caller: cell}} from the README's "Who may call what" table."""
    text = README.read_text(encoding="utf-8")
    section = text.split("### Who may call what", 1)
    assert len(section) == 2, "README.md has no '### Who may call what' section"
    lines = [line.strip() for line in section[1].splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("| operation |"))
    header = [cell.strip() for cell in lines[start].strip("|").split("|")]
    assert header[1:] == CALLERS, f"the table's columns are {header[1:]}, expected {CALLERS}"
    table = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        match = re.fullmatch(r"`(GET|POST|PUT|PATCH|DELETE) (/\S*)`", cells[0])
        if match is None:
            assert cells[0].startswith("**"), f"a row of the table names no operation: {line}"
            continue
        operation = (match[1], API_PREFIX + match[2])
        assert operation not in table, f"{operation} is in the table twice"
        assert len(cells) == len(header), f"{operation} has {len(cells) - 1} cells, expected {len(CALLERS)}"
        for cell in cells[1:]:
            assert cell in REFUSALS or cell in ALLOWED, f"{operation}: unknown cell {cell!r}"
        table[operation] = dict(zip(CALLERS, cells[1:], strict=True))
    return table


def api_operations() -> set[tuple[str, str]]:
    """Every (method, path) of the OpenAPI document; fails when the routers hold operations the document hides."""
    document = api.get_openapi_schema()
    documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    held = sum(len(operation.methods) for bound in api._get_bound_routers()
               for view in bound.path_operations.values() for operation in view.operations)
    assert held == len(documented), "an API operation is missing from the OpenAPI document (include_in_schema?)"
    return documented


TABLE = readme_table()
OPERATIONS = sorted(api_operations())


def test_the_table_names_every_operation_and_only_those():
    assert sorted(set(OPERATIONS) - set(TABLE)) == [], "operations missing from the README's authorisation table"
    assert sorted(set(TABLE) - set(OPERATIONS)) == [], "table rows naming operations the API does not have"


def client_of(caller: str) -> ApiClient:
    if caller == "anonymous":
        return ApiClient()
    kind, scope = caller.split()
    organization = OrganizationFactory(kind={"customer": OrganizationKind.CUSTOMER, "partner": OrganizationKind.PARTNER,
                                             "lab": OrganizationKind.LAB}[kind])
    return ApiClient(make_api_key(organization, scope={"read": ApiKeyScope.READ, "write": ApiKeyScope.WRITE}[scope])[1])


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES.get(m[1], MISSING_ID), path)


@pytest.mark.django_db
@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_operation_answers_each_caller_as_the_table_says(method, path, caller):
    assert (method, path) in TABLE, f"{method} {path} is missing from the README's authorisation table"
    cell = TABLE[(method, path)][caller]
    client = client_of(caller)
    url = concrete(path)
    if method == "GET":
        response = client.get(url)
    else:
        response = client.generic(method, url, data="{}", content_type="application/json")

    if cell in REFUSALS:
        assert_problem(response, REFUSALS[cell])
    else:
        assert response.status_code not in (401, 403), (cell, response.status_code, response.content[:300])
        assert response.status_code < 500, (response.status_code, response.content[:300])


@pytest.mark.django_db
def test_a_customers_write_key_cannot_act_like_a_partners(fake_reader):
    """The finding as it was reported: a customer's portal-made write key listed the printers and variants shared
    with partners, downloaded a shared sliced file, read the lab's stock and stopped a printing printer."""
    from catalog import services as catalog_services
    from catalog.tests.factories import ModelFactory, VariantFactory, gcode_upload
    from inventory.tests.factories import spool
    from printers import services as printer_services
    from printers.choices import PrinterState
    from printers.models import PrinterCommand
    from printers.state import NormalisedState
    from printers.tests.factories import PrinterFactory

    printer = PrinterFactory(shared_with_partners=True)
    printer_services.printer_apply_state(printer=printer, state=NormalisedState(
        state=PrinterState.PRINTING, raw_state="RUNNING", job_key="7", progress_percent=30.0))
    variant = VariantFactory(model=ModelFactory(shared_with_partners=True))
    catalog_services.variant_upload_sliced_file(variant=variant, upload=gcode_upload(body=b"G28 ; shared\n"))
    stock = spool()
    customer = ApiClient(make_api_key(OrganizationFactory(kind=OrganizationKind.CUSTOMER),
                                      scope=ApiKeyScope.WRITE)[1])
    partner = ApiClient(make_api_key(OrganizationFactory(kind=OrganizationKind.PARTNER),
                                     scope=ApiKeyScope.WRITE)[1])

    reads = ["/api/v1/printers", f"/api/v1/printers/{printer.pk}", "/api/v1/catalog/variants",
             f"/api/v1/catalog/variants/{variant.pk}", f"/api/v1/catalog/variants/{variant.pk}/versions/1/download",
             "/api/v1/inventory/spools", f"/api/v1/inventory/spools/{stock.pk}", "/api/v1/inventory/filaments"]
    for url in reads:
        assert partner.get(url).status_code == 200, url  # what partners are meant to see
        assert_problem(customer.get(url), 403, detail_contains="not to customers' keys")
    refused = customer.post(f"/api/v1/printers/{printer.pk}/commands", data={"action": "stop"},
                            content_type="application/json", headers={"Idempotency-Key": "stop-1"})
    assert_problem(refused, 403, detail_contains="not to customers' keys")
    assert not PrinterCommand.objects.exists()


@pytest.mark.django_db
def test_a_printer_hosts_key_is_refused_by_every_operation():
    """A printer host's key (scope 'printer_host', the lab's own) belongs to the Spoolman API alone: every
    operation here that takes a key refuses it with 403; one open to anyone does not look at it."""
    client = ApiClient(make_api_key(OrganizationFactory(kind=OrganizationKind.LAB), scope=ApiKeyScope.PRINTER_HOST)[1])
    for method, path in OPERATIONS:
        url = concrete(path)
        if method == "GET":
            response = client.get(url)
        else:
            response = client.generic(method, url, data="{}", content_type="application/json")
        if TABLE[(method, path)]["anonymous"] in REFUSALS:
            assert_problem(response, 403)  # its kind (the lab) is refused first where the lab is; else its scope
        else:
            assert response.status_code not in (401, 403) and response.status_code < 500, (method, path)
