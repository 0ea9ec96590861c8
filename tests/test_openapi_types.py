"""The OpenAPI document says what the server does: fields with a fixed set of values are enums of exactly
their TextChoices' values, and decimal numbers are decimal strings, never binary floats."""

import json
import re
from decimal import Decimal

import pytest
from ninja import Schema

from catalog.choices import ExtractionStatus, FileFormat, Licence
from fablab.api import api as partner_api
from fablab.api_types import DECIMAL_FORMAT, DECIMAL_PATTERN, ApiDecimal
from fablab.choices import ApiKeyScope, ApiKeyStatus, MembershipRole, OrganizationKind
from fablab.tests.helpers import assert_problem
from inventory import services
from inventory.choices import (
    BOOKED_PRODUCT_KINDS,
    CONSUMING_KINDS,
    LocationKind,
    MovementKind,
    ProductKind,
    ProductMovementKind,
    SalesChannel,
    SourceType,
)
from inventory.schemas import Grams
from inventory.tests.factories import key, spool
from printers.choices import CommandAction, CommandStatus, JobOutcome, PrinterState
from production.choices import ImportStatus, PrintJobStatus, Priority, Purpose
from reconstruction.choices import ScaleMethod, ScanStatus, Stage
from reconstruction.markers import PAPERS_MM

DOCUMENT = partner_api.get_openapi_schema()
COMPONENTS = DOCUMENT["components"]["schemas"]


def values(choices, *only) -> list[str]:
    return [value for value in choices.values if not only or value in only]


# (component, field) -> the values the field takes, in the order of its TextChoices
CHOICE_FIELDS = {
    ("OrganizationOut", "kind"): values(OrganizationKind),
    ("MemberOut", "role"): values(MembershipRole),
    ("ApiKeyOut", "scope"): values(ApiKeyScope),
    ("ApiKeyOut", "status"): values(ApiKeyStatus),
    ("ModelOut", "licence"): values(Licence),
    ("ModelDetailOut", "licence"): values(Licence),
    ("SlicedFileOut", "format"): values(FileFormat),
    ("SlicedFileOut", "status"): values(ExtractionStatus),
    ("PrinterOut", "state"): values(PrinterState),
    ("PrinterJobOut", "outcome"): values(JobOutcome),
    ("StateTransitionOut", "from_state"): values(PrinterState),
    ("StateTransitionOut", "to_state"): values(PrinterState),
    ("PrinterCommandIn", "action"): values(CommandAction, "pause", "resume", "stop", "light"),
    ("PrinterCommandOut", "action"): values(CommandAction),
    ("PrinterCommandOut", "status"): values(CommandStatus),
    ("LocationOut", "kind"): values(LocationKind),
    ("MovementOut", "kind"): values(MovementKind),
    ("MovementOut", "source_type"): values(SourceType),
    ("UseIn", "kind"): values(MovementKind, *CONSUMING_KINDS),
    ("ProductOut", "kind"): values(ProductKind),
    ("ProductStockIn", "kind"): values(ProductMovementKind, *BOOKED_PRODUCT_KINDS),
    ("ProductMovementOut", "kind"): values(ProductMovementKind),
    ("ProductMovementOut", "source_type"): values(SourceType),
    ("SaleIn", "channel"): values(SalesChannel),
    ("SaleOut", "channel"): values(SalesChannel),
    ("SaleCreateIn", "channel"): values(SalesChannel),
    ("SaleDetailOut", "channel"): values(SalesChannel),
    ("SaleFilterIn", "channel"): values(SalesChannel),
    ("PrinterFileImportOut", "status"): values(ImportStatus),
    ("PrinterFileImportOut", "metadata_status"): values(ExtractionStatus),
    ("PrintJobCreateIn", "priority"): values(Priority),
    ("PrintJobCreateIn", "purpose"): values(Purpose),
    ("PrintJobFilterIn", "status"): values(PrintJobStatus),
    ("PrintJobOut", "status"): values(PrintJobStatus),
    ("PrintJobOut", "priority"): values(Priority),
    ("PrintJobOut", "purpose"): values(Purpose),
    ("ScanCreateIn", "scale_method"): values(ScaleMethod),
    ("ScanOut", "status"): values(ScanStatus),
    ("ScanOut", "stage"): [*values(Stage), ""],  # empty until the pipeline starts
    ("ScanOut", "scale_method"): values(ScaleMethod),
    ("HealthOut", "status"): ["ok", "degraded"],
}

# (component, field) of every decimal number: money, grams, millimetres, percentages
DECIMAL_FIELDS = [
    ("VariantOut", "nozzle_diameter"), ("VariantOut", "layer_height"), ("VariantOut", "filament_used_g"),
    ("VariantFilterIn", "nozzle_diameter"), ("VariantFilterIn", "layer_height"),
    ("FilamentOut", "diameter_mm"), ("FilamentOut", "density_g_cm3"), ("FilamentOut", "net_weight_g"),
    ("FilamentOut", "spool_weight_g"), ("FilamentOut", "reorder_threshold_g"), ("FilamentStockOut", "stock_g"),
    ("SpoolOut", "initial_grams"), ("SpoolOut", "remaining_grams"), ("MovementOut", "delta_grams"),
    ("ReceiveIn", "grams"), ("UseIn", "grams"), ("WeighIn", "gross_grams"), ("AdjustIn", "remaining_grams"),
    ("SaleIn", "unit_price"), ("SaleOut", "unit_price"), ("SaleCreateIn", "unit_price"),
    ("SaleDetailOut", "unit_price"), ("SlotIn", "grams"), ("CandidateOut", "available_g"),
    ("SlotMatchOut", "needed_g"), ("SlotMatchOut", "available_g"), ("ProductOut", "sale_price"),
    ("CostOut", "material"), ("CostOut", "energy"), ("CostOut", "machine"), ("CostOut", "labour"),
    ("CostOut", "total"), ("VariantCostOut", "unit_cost"), ("VariantCostOut", "sale_price_gross"),
    ("VariantCostOut", "sale_price_net"), ("VariantCostOut", "vat_percent"), ("VariantCostOut", "margin"),
    ("VariantCostOut", "margin_percent"), ("ScanCreateIn", "known_dimension_mm"), ("ScanOut", "known_dimension_mm"),
]


def _branches(field: dict) -> list[dict]:
    """The schema of a field without its `null` option."""
    options = field.get("anyOf", [field])
    return [option for option in options if option.get("type") != "null"]


def _field(component: str, name: str) -> dict:
    return COMPONENTS[component]["properties"][name]


@pytest.mark.parametrize(("component", "name"), sorted(CHOICE_FIELDS))
def test_a_choice_field_is_an_enum_of_its_choices(component, name):
    (schema,) = _branches(_field(component, name))
    assert schema["type"] == "string"
    assert schema["enum"] == CHOICE_FIELDS[component, name]


def test_the_query_parameters_with_choices_are_enums_too():
    parameters = {
        (path, parameter["name"]): parameter["schema"]
        for path, item in DOCUMENT["paths"].items() for operation in item.values()
        for parameter in operation.get("parameters", [])
    }
    assert _branches(parameters["/api/v1/sales", "channel"])[0]["enum"] == values(SalesChannel)
    assert _branches(parameters["/api/v1/production/jobs", "status"])[0]["enum"] == values(PrintJobStatus)
    assert parameters["/api/v1/scans/marker-sheet.pdf", "paper"]["enum"] == list(PAPERS_MM)


@pytest.mark.parametrize(("component", "name"), DECIMAL_FIELDS)
def test_a_decimal_field_is_a_decimal_string(component, name):
    (schema,) = _branches(_field(component, name))
    assert (schema["type"], schema["format"], schema["pattern"]) == ("string", DECIMAL_FORMAT, DECIMAL_PATTERN)
    assert set(schema) <= {"type", "format", "pattern", "title", "description"}  # no stray keywords (gt, lt)


def test_a_decimal_field_with_bounds_says_them():
    (schema,) = _branches(_field("VariantFilterIn", "nozzle_diameter"))
    assert schema["description"] == "A decimal number, more than 0, less than 5."
    (schema,) = _branches(_field("ScanCreateIn", "known_dimension_mm"))
    assert schema["description"] == "A decimal number, more than 0, at most 5000."


def test_no_field_is_left_a_bare_number_where_a_decimal_is_meant():
    """The only JSON numbers left are measured floats (progress, temperatures, rates), not money or stock."""
    floats = sorted(
        (component, name) for component, schema in COMPONENTS.items()
        for name, field in schema.get("properties", {}).items()
        if any(option.get("type") == "number" for option in _branches(field))
        or field.get("items", {}).get("type") == "number"
    )
    assert floats == sorted([
        ("AmsUnitOut", "temp_c"), ("CandidateOut", "delta_e"), ("MatchIn", "tolerance"),
        ("PrintJobOut", "filament_booked_g"), ("PrinterJobOut", "progress_reached"),
        ("PrinterOut", "nozzle_diameter_mm"), ("PrinterOut", "progress_percent"),
        ("PrinterOut", "reported_nozzle_diameter_mm"), ("ScanOut", "progress"), ("VersionSuccessRateOut", "high"),
        ("VersionSuccessRateOut", "low"), ("VersionSuccessRateOut", "rate"),
        # a restock recommendation's statistics: estimates, not money or stock
        ("RestockOut", "forecast_per_week"), ("RestockOut", "sigma_per_week"), ("RestockOut", "queue_wait_hours"),
        ("RestockOut", "print_hours"), ("RestockOut", "lead_time_weeks"), ("RestockOut", "service_level_percent"),
        ("RestockOut", "review_weeks"), ("RestockOut", "reorder_point"), ("RestockOut", "order_up_to"),
    ])


def test_the_decimal_pattern_takes_what_the_server_writes():
    pattern = re.compile(DECIMAL_PATTERN)
    for text in ("0", "12.50", "-0.004474", "950.00"):
        assert pattern.match(text)
    for text in ("1E+3", "NaN", "Infinity", "1.", ".5", "1,5", ""):
        assert not pattern.match(text)


@pytest.mark.django_db
class TestValidationMatchesTheDocument:
    def test_a_value_outside_the_enum_is_refused(self, lab_api):
        response = lab_api.post("/api/v1/inventory/spools/1/use", {"grams": "1", "kind": "weighed"},
                                content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1")
        assert_problem(response, 422)

    def test_a_decimal_string_with_an_exponent_is_refused(self, lab_api):
        response = lab_api.post("/api/v1/inventory/spools/1/use", {"grams": "1E+3"},
                                content_type="application/json", HTTP_IDEMPOTENCY_KEY="k2")
        assert_problem(response, 422)
        assert "digits" in json.dumps(response.json()["errors"])

    def test_decimals_come_back_as_plain_digit_strings(self):
        class Out(Schema):
            amount: ApiDecimal
            grams: Grams

        dumped = Out(amount=Decimal("1E-7"), grams=Decimal("1E+3")).model_dump()
        assert dumped == {"amount": "0.0000001", "grams": "1000.00"}
        assert Out(amount=Decimal("0.0000001"), grams=Decimal("0.0000001")).model_dump()["grams"] == "0.0000001"

    def test_a_spool_answers_its_grams_as_decimal_strings(self, lab_api):
        received = spool(grams="1000")
        services.spool_use(spool=received, grams_used=Decimal("12.345679"), idempotency_key=key("use"))
        body = lab_api.get(f"/api/v1/inventory/spools/{received.pk}").json()
        assert body["remaining_grams"] == "987.654321"
        assert body["initial_grams"] == "1000.00"
        assert body["filament"]["diameter_mm"] == "1.75"

    @pytest.mark.parametrize("query", ["nozzle_diameter=0", "nozzle_diameter=5", "layer_height=-0.2",
                                       "layer_height=1e-1"])
    def test_a_decimal_outside_its_documented_bounds_is_refused(self, api, query):
        assert_problem(api.get(f"/api/v1/catalog/variants?{query}"), 422)

    def test_a_decimal_inside_its_bounds_is_taken(self, api):
        assert api.get("/api/v1/catalog/variants?nozzle_diameter=0.4").status_code == 200
