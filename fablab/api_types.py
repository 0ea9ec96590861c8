"""Field types the API's schemas share, so that what the OpenAPI document says is what the server does.

- `ApiDecimal`: a decimal number (money, grams, millimetres) travels as a JSON string of plain digits,
  "12.50", never as a binary floating-point number that loses digits. The document says
  `type: string, format: decimal` with the pattern below, in requests and in answers alike. A JSON number in
  a request is still accepted (clients written before this rule send them), but a string must match the
  pattern: no exponent, no NaN or Infinity.
- `choice(...)`: a field that takes one of a fixed set of values is typed with the TextChoices of its
  model field (or a subset of it), so the document lists the values as an `enum` and anything else is
  refused with 422.
"""

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, Literal

import annotated_types
from django.db.models import TextChoices
from pydantic import BeforeValidator, GetJsonSchemaHandler, PlainSerializer
from pydantic_core import core_schema as cs

DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"
DECIMAL_FORMAT = "decimal"
_DECIMAL_RE = re.compile(DECIMAL_PATTERN)

# JSON Schema bounds of a number, and how a sentence says them.
_BOUNDS = {
    "minimum": "at least",
    "exclusiveMinimum": "more than",
    "maximum": "at most",
    "exclusiveMaximum": "less than",
}


def _plain_digits(value: Any) -> Any:
    """A string must be plain digits (no exponent, no NaN); numbers pass on to Decimal's own checks."""
    if isinstance(value, str) and not _DECIMAL_RE.match(value.strip()):
        raise ValueError("must be a decimal number written with digits, e.g. \"12.50\"")
    return value


def _decimal_text(value: Decimal) -> str:
    """Always positional notation: "0.0000001", never "1E-7"."""
    return format(value, "f")


def _number_text(value) -> str:
    """5.0 -> "5", 0.1 -> "0.1" (a bound as the description says it)."""
    return format(Decimal(str(value)).normalize(), "f")


class _DecimalJsonSchema:
    """Documents a Decimal as a decimal string, keeping any bounds the field declares as a sentence."""

    def __get_pydantic_json_schema__(self, schema: cs.CoreSchema, handler: GetJsonSchemaHandler) -> dict:
        generated = handler(schema)
        branches = generated.get("anyOf", [generated])
        bounds = {}
        for branch in branches:
            bounds.update({key: branch[key] for key in _BOUNDS if key in branch})
        documented = {"type": "string", "format": DECIMAL_FORMAT, "pattern": DECIMAL_PATTERN}
        if bounds:
            documented["description"] = "A decimal number, " + ", ".join(
                f"{_BOUNDS[key]} {_number_text(value)}" for key, value in bounds.items()) + "."
        return documented


def decimal_type(text: Callable[[Decimal], str] = _decimal_text, *, gt=None, ge=None, lt=None, le=None) -> Any:
    """A Decimal field type of the API; `text` writes a value for the answer (positional digits only).

    Bounds go here, not in the field's Field(...): there pydantic would check them but document them as
    keywords of no JSON Schema; here they are checked and said in the description of the value.
    """
    bounds = [bound for bound in (
        annotated_types.Gt(gt) if gt is not None else None, annotated_types.Ge(ge) if ge is not None else None,
        annotated_types.Lt(lt) if lt is not None else None, annotated_types.Le(le) if le is not None else None,
    ) if bound is not None]
    return Annotated[Decimal, *bounds, BeforeValidator(_plain_digits), PlainSerializer(text, return_type=str),
                     _DecimalJsonSchema()]


ApiDecimal = decimal_type()


def choice(choices: type[TextChoices], *only: str, blank: bool = False) -> Any:
    """The values of `choices` as a Literal type: `only` the subset a field takes, `blank` with "" (a field
    that is empty until it is set). Its OpenAPI schema is an `enum` of exactly these values."""
    unknown = {str(value) for value in only} - set(choices.values)
    if unknown:
        raise ValueError(f"{sorted(unknown)} are not values of {choices.__name__}")
    # in the order of the choices, whatever the order (or the set) `only` came in
    values = tuple(value for value in choices.values if not only or value in only)
    return Literal[values + ("",)] if blank else Literal[values]
