"""The partner API fuzzed against its own OpenAPI document (schemathesis).

Every operation of the document gets generated requests: valid ones (positive) and ones that break the
schema (negative), sent through the WSGI application with a write key and a read key of one partner
organization that holds some data (and, for the lab's stock and sales operations, a write key of the lab's
own organization). Every answer must

- not be a server error (5xx),
- have a status code the document lists for the operation,
- match the schema the document gives for that status and content type.

It is bounded (a few examples per operation and mode, derandomized, no example database) so that it runs
the same on every machine within `make test`. Run it against PostgreSQL too: the failures it guards against
(huge integers, NUL characters) happen there.
"""

from datetime import date
from decimal import Decimal

import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from catalog.tests.factories import ModelFactory, VariantFactory
from fablab.api import api as partner_api
from fablab.choices import ApiKeyScope, OrganizationKind
from fablab.tests.factories import OrganizationFactory, PartnerFactory, make_api_key
from inventory import services as inventory_services
from inventory.choices import LocationKind, ProductKind, ProductMovementKind, SalesChannel
from inventory.tests.factories import key, spool
from printers.tests.factories import PrinterFactory
from production.tests.factories import job, version
from reconstruction.services import scan_job_create

pytestmark = pytest.mark.django_db

DOCUMENT = partner_api.get_openapi_schema()
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 8  # per operation, key and mode


# Operations open to the lab's own keys only (stock and sales): fuzzed with a lab write key too, so their
# writes are exercised, not only refused to the partner.
LAB_PATHS = ("/api/v1/inventory/", "/api/v1/sales")


def _runs():
    """(method, path, mode, key scope) to fuzz: reads with the read key; writes with both keys (the read key
    must get a documented 403, never a 5xx); schema-breaking requests only where there is input to break."""
    for path, item in sorted(DOCUMENT["paths"].items()):
        for method, operation in sorted(item.items()):
            scopes = ["read"] if method == "get" else ["write", "read"]
            modes = [GenerationMode.POSITIVE]
            if operation.get("parameters") or operation.get("requestBody"):
                modes.append(GenerationMode.NEGATIVE)
            if path.startswith(LAB_PATHS):
                scopes.append("lab")
            for mode in modes:
                for scope in scopes:
                    yield pytest.param(method.upper(), path, mode, scope, id=f"{method.upper()} {path} {mode} {scope}")


@pytest.fixture
def wsgi_app():
    """The project's WSGI application, kept from closing the test's database connection after each request
    (as Django's own test client does), so the requests see the test's data and leave nothing behind."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def world(db):
    """A partner organization with keys and a little of everything it may see, the lab's own organization
    with a key and some stock and a sale, and the ids of it all.

    Generated ids almost never exist; every operation is therefore also sent with these real ids in its
    path (one_of below), so its answers with data are checked as well as its 404.
    """
    organization = PartnerFactory()
    design = ModelFactory(designer=organization)
    version_ = version(variant=VariantFactory(model=design))
    printer = PrinterFactory(shared_with_partners=True)
    queued = job(version_, organization=organization)
    scan = scan_job_create(organization=organization, user=None, title="Vase")
    lab = OrganizationFactory(kind=OrganizationKind.LAB)
    shelf = inventory_services.location_create(name="Shelf", kind=LocationKind.SHELF)
    product = inventory_services.product_create(sku="RING", name="Keyring rings", kind=ProductKind.BOUGHT)
    inventory_services.product_stock_change(product=product, location=shelf, kind=ProductMovementKind.RECEIVED,
                                            quantity=10, idempotency_key=key())
    sale = inventory_services.sale_record(product=product, quantity=1, unit_price=Decimal("2.50"),
                                          sold_on=date(2026, 1, 5), channel=SalesChannel.SHOP,
                                          idempotency_key=key())
    return {
        "keys": {
            "read": make_api_key(organization, scope=ApiKeyScope.READ)[1],
            "write": make_api_key(organization, scope=ApiKeyScope.WRITE)[1],
            "lab": make_api_key(lab, scope=ApiKeyScope.WRITE)[1],
        },
        "ids": {
            "spool_id": spool(location=shelf).pk,
            "product_id": product.pk,
            "sale_id": sale.pk,
            "key_id": make_api_key(organization, scope=ApiKeyScope.READ)[0].pk,  # a key no request uses
            "model_id": design.pk,
            "variant_id": version_.variant_id,
            "number": version_.number,
            "version_id": version_.pk,
            "printer_id": printer.pk,
            "job_id": queued.pk,
            "scan_id": scan.pk,
        },
    }


def _fuzz(operation, mode: GenerationMode, app, key: str, ids: dict) -> None:
    known = {parameter.name: ids[parameter.name] for parameter in operation.path_parameters if parameter.name in ids}
    strategy = operation.as_strategy(generation_mode=mode)
    if known:
        strategy = st.one_of(strategy, operation.as_strategy(generation_mode=mode, path_parameters=known))

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None, print_blob=False,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case):
        cache.clear()  # the rate limits would answer 429 long before the examples are through
        headers = {"X-API-Key": key}
        response = case.call(app=app, headers=headers)
        case.validate_response(response, checks=CHECKS, headers=headers)

    run()


@pytest.mark.parametrize(("method", "path", "mode", "scope"), list(_runs()))
def test_every_answer_is_documented_and_never_a_server_error(method, path, mode, scope, world, wsgi_app):
    # A schema loaded for this test alone: what schemathesis learns from answers stays with it, so each
    # test generates the same requests whichever tests ran before it.
    schema = schemathesis.openapi.from_dict(DOCUMENT)
    _fuzz(schema[path][method], mode, wsgi_app, world["keys"][scope], world["ids"])
