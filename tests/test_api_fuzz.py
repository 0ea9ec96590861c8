"""The partner API fuzzed against its own OpenAPI document (schemathesis).

Every operation of the document gets generated requests: valid ones (positive) and ones that break the
schema (negative), sent through the WSGI application with a write key and a read key of one partner
organization that holds some data. Every answer must

- not be a server error (5xx),
- have a status code the document lists for the operation,
- match the schema the document gives for that status and content type.

It is bounded (a few examples per operation and mode, derandomized, no example database) so that it runs
the same on every machine within `make test`. Run it against PostgreSQL too: the failures it guards against
(huge integers, NUL characters) happen there.
"""

import pytest
import schemathesis
from django.core.cache import cache
from django.core.wsgi import get_wsgi_application
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
from fablab.choices import ApiKeyScope
from fablab.tests.factories import PartnerFactory, make_api_key
from printers.tests.factories import PrinterFactory
from production.tests.factories import job, version
from reconstruction.services import scan_job_create

pytestmark = pytest.mark.django_db

DOCUMENT = partner_api.get_openapi_schema()
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 12  # per operation, key and mode

OPERATIONS = sorted(
    (method.upper(), path) for path, item in DOCUMENT["paths"].items() for method in item
)


@pytest.fixture(scope="module")
def wsgi_app():
    return get_wsgi_application()


@pytest.fixture
def world(db):
    """A partner organization with keys and a little of everything it may see, and the ids of it.

    Generated ids almost never exist; every operation is therefore also sent with these real ids in its
    path (one_of below), so its answers with data are checked as well as its 404.
    """
    organization = PartnerFactory()
    design = ModelFactory(designer=organization)
    version_ = version(variant=VariantFactory(model=design))
    printer = PrinterFactory(shared_with_partners=True)
    queued = job(version_, organization=organization)
    scan = scan_job_create(organization=organization, user=None, title="Vase")
    return {
        "keys": {
            "read": make_api_key(organization, scope=ApiKeyScope.READ)[1],
            "write": make_api_key(organization, scope=ApiKeyScope.WRITE)[1],
        },
        "ids": {
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


@pytest.mark.parametrize("scope", ["write", "read"])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_answer_is_documented_and_never_a_server_error(method, path, mode, scope, world, wsgi_app):
    _fuzz(SCHEMA[path][method], mode, wsgi_app, world["keys"][scope], world["ids"])
