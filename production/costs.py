"""The cost of a print, as arithmetic on Decimals; production.services reads the inputs and stores the results.

One attempt at a print costs:

- material: for each filament slot, the grams booked × its spool's price per kg ÷ 1000;
- energy: the printer's average power (W) ÷ 1000 × hours × the tariff per kWh;
- machine: (purchase price ÷ expected lifetime hours + maintenance per hour) × hours;
- labour: handling minutes ÷ 60 × the hourly rate.

Each part is computed exactly and rounded half-up to cents once, at the end; the total is the sum of the
rounded parts, so the four figures shown always add up to it. A job costs the sum of its attempts (a failed
attempt is carried into the units the job produced), a unit the job's total ÷ its good units (half-up to
cents), a variant the mean of its recent completed jobs' unit costs. Sale prices are gross (VAT included);
the margin is the net price less the unit cost, and its percentage is of the net price.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("99999999.99")  # the most a cost field holds (10 digits, 2 of them decimals)
SECONDS_PER_HOUR = Decimal("3600")


# Why a cost leaves something out (stored as production.feasibility.reason() dicts, shown with reason_text).
SLOT_NOT_BOOKED = gettext_noop("Slot %(slot)s: no spool was chosen yet, so its filament is not counted; choose the "
                               "spool on the slot and the cost is computed again.")
SLOT_OTHER_CURRENCY = gettext_noop("Slot %(slot)s: %(filament)s is priced in %(filament_currency)s, costs are kept in "
                                   "%(currency)s (PRODUCTION_CURRENCY), so its filament is not counted.")
TIME_UNKNOWN = gettext_noop("Neither the printer nor the file says how long it printed: energy and machine time "
                            "are not counted.")


class CostError(ValueError):
    """The inputs give no cost: a negative, infinite or absurd value, or amounts in two currencies."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def cents(value: Decimal) -> Decimal:
    """`value` rounded half-up to cents (0.005 → 0.01, 0.625 → 0.63)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def text(value: Decimal | None) -> str | None:
    """A Decimal as JSON keeps it: plain digits, never an exponent."""
    return None if value is None else format(value, "f")


def _checked(value, name: str, *, positive: bool = False) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise CostError(_("%(name)s must be a number, not %(value)r.") % {"name": name, "value": value})
    value = Decimal(value)
    if not value.is_finite():
        raise CostError(_("%(name)s must be a finite number, not %(value)s.") % {"name": name, "value": value})
    if positive and value <= 0:
        raise CostError(_("%(name)s must be more than 0, not %(value)s.") % {"name": name, "value": value})
    if value < 0:
        raise CostError(_("%(name)s must not be negative (%(value)s).") % {"name": name, "value": value})
    return value


def _labels() -> dict[str, str]:
    return {"material": _("material"), "energy": _("energy"), "machine": _("machine"), "labour": _("labour"),
            "total": _("total")}


def _fits(value: Decimal, name: str) -> Decimal:
    if value > MAX_AMOUNT:
        raise CostError(_("The %(name)s cost of %(value)s is more than a cost can be (%(max)s): check the "
                          "printer's station and the PRODUCTION_* settings.")
                        % {"name": _labels()[name], "value": format(value, ".0f"), "max": MAX_AMOUNT})
    return value


# --- one attempt ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MaterialLine:
    """The filament of one slot: grams booked and what its spool's filament costs per kg."""

    slot: int
    grams: Decimal
    price_per_kg: Decimal | None  # None: not priced (no spool chosen yet, or priced in another currency)
    spool: str = ""  # the spool's label code
    filament: str = ""
    currency: str = ""

    @property
    def amount(self) -> Decimal | None:
        return None if self.price_per_kg is None else self.grams * self.price_per_kg / 1000


@dataclass(frozen=True)
class Rates:
    """What an hour on one printer costs besides its material, and the labour of one print."""

    power_w: Decimal
    energy_price_per_kwh: Decimal
    purchase_price: Decimal
    lifetime_hours: Decimal
    maintenance_per_hour: Decimal
    handling_minutes: Decimal
    labour_per_hour: Decimal
    from_station: frozenset[str] = frozenset()  # the figures the printer's station set; the others are settings

    @property
    def machine_per_hour(self) -> Decimal:
        return self.purchase_price / self.lifetime_hours + self.maintenance_per_hour


@dataclass(frozen=True)
class AttemptInputs:
    currency: str
    seconds: Decimal  # how long the attempt printed
    seconds_from: str  # "printer" (its real start and end), "estimate", "estimate_progress" or "unknown"
    materials: tuple[MaterialLine, ...]
    rates: Rates
    warnings: tuple[dict, ...] = ()  # production.feasibility.reason() dicts, shown with reason_text

    @property
    def hours(self) -> Decimal:
        return self.seconds / SECONDS_PER_HOUR

    def as_json(self) -> dict:
        rates = self.rates
        return {
            "currency": self.currency,
            "time": {"seconds": text(self.seconds), "hours": text(self.hours.quantize(Decimal("0.0001"))),
                     "from": self.seconds_from},
            "material": [{"slot": line.slot, "grams": text(line.grams), "spool": line.spool,
                          "filament": line.filament, "price_per_kg": text(line.price_per_kg),
                          "currency": line.currency, "amount": text(line.amount)} for line in self.materials],
            "energy": {"power_w": text(rates.power_w), "price_per_kwh": text(rates.energy_price_per_kwh)},
            "machine": {"purchase_price": text(rates.purchase_price), "lifetime_hours": text(rates.lifetime_hours),
                        "maintenance_per_hour": text(rates.maintenance_per_hour)},
            "labour": {"handling_minutes": text(rates.handling_minutes), "per_hour": text(rates.labour_per_hour)},
            "from_station": sorted(rates.from_station),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class Cost:
    """A cost in four parts, each in cents; `inputs` says what it was computed from."""

    currency: str
    material: Decimal
    energy: Decimal
    machine: Decimal
    labour: Decimal
    inputs: dict = field(default_factory=dict, compare=False)

    @property
    def total(self) -> Decimal:
        return self.material + self.energy + self.machine + self.labour

    def model_fields(self) -> dict:
        """The values of the cost_* fields of PrintJob and PrintAttempt."""
        return {"cost_currency": self.currency, "cost_material": self.material, "cost_energy": self.energy,
                "cost_machine": self.machine, "cost_labour": self.labour, "cost_total": self.total,
                "cost_inputs": self.inputs}


def attempt_cost(inputs: AttemptInputs) -> Cost:
    """The cost of one attempt; CostError for inputs that give none (nothing is rounded before the end)."""
    rates = inputs.rates
    seconds = _checked(inputs.seconds, _("The printing time"))
    power = _checked(rates.power_w, _("The average power"))
    tariff = _checked(rates.energy_price_per_kwh, _("The energy price per kWh"))
    price = _checked(rates.purchase_price, _("The purchase price"))
    lifetime = _checked(rates.lifetime_hours, _("The expected lifetime"), positive=True)
    maintenance = _checked(rates.maintenance_per_hour, _("The maintenance per hour"))
    minutes = _checked(rates.handling_minutes, _("The handling time"))
    hourly = _checked(rates.labour_per_hour, _("The labour rate"))
    material = Decimal("0")
    for line in inputs.materials:
        grams = _checked(line.grams, _("The grams of slot %(slot)s") % {"slot": line.slot})
        if line.price_per_kg is not None:
            material += grams * _checked(line.price_per_kg, _("The price per kg of slot %(slot)s")
                                         % {"slot": line.slot}) / 1000
    hours = seconds / SECONDS_PER_HOUR
    parts = {
        "material": material,
        "energy": power / 1000 * hours * tariff,
        "machine": (price / lifetime + maintenance) * hours,
        "labour": minutes / 60 * hourly,
    }
    rounded = {name: cents(_fits(value, name)) for name, value in parts.items()}
    _fits(sum(rounded.values()), "total")
    return Cost(currency=inputs.currency, inputs=inputs.as_json(), **rounded)


# --- a job, a unit, a variant --------------------------------------------------------------------


def job_cost(costs: Sequence[Cost], *, currency: str, inputs: dict | None = None) -> Cost:
    """The sum of a job's attempts' costs (all in `currency`)."""
    foreign = sorted({cost.currency for cost in costs} - {currency})
    if foreign:
        raise CostError(_("The attempts' costs are in %(foreign)s, not %(currency)s: they cannot be added up.")
                        % {"foreign": ", ".join(foreign), "currency": currency})
    parts = {name: sum((getattr(cost, name) for cost in costs), Decimal("0"))
             for name in ("material", "energy", "machine", "labour")}
    for name, value in parts.items():
        _fits(value, name)
    _fits(sum(parts.values()), "total")
    return Cost(currency=currency, inputs=inputs or {}, **parts)


def per_unit(total: Decimal, units: int) -> Decimal | None:
    """What one good unit costs: the job's total (failed attempts included) ÷ its good units; None for none."""
    if units <= 0:
        return None
    return cents(total / units)


def mean(amounts: Iterable[Decimal]) -> Decimal | None:
    """The mean of `amounts`, half-up to cents; None for none."""
    values = list(amounts)
    if not values:
        return None
    return cents(sum(values, Decimal("0")) / len(values))


@dataclass(frozen=True)
class Margin:
    """A unit's cost against its sale price; None where the cost or the price is not known."""

    currency: str
    unit_cost: Decimal | None
    sale_price_gross: Decimal | None
    sale_price_net: Decimal | None
    vat_percent: Decimal
    margin: Decimal | None  # net price − unit cost
    margin_percent: Decimal | None  # of the net price


def net_price(gross: Decimal, vat_percent: Decimal) -> Decimal:
    """The price without VAT of a gross price, half-up to cents."""
    gross = _checked(gross, _("The sale price"))
    vat = _checked(vat_percent, _("The VAT rate"))
    return cents(gross * 100 / (100 + vat))


def margin(*, currency: str, unit_cost: Decimal | None, sale_price_gross: Decimal | None,
           vat_percent: Decimal) -> Margin:
    net = net_price(sale_price_gross, vat_percent) if sale_price_gross is not None else None
    amount = percent = None
    if net is not None and unit_cost is not None:
        amount = net - unit_cost
        percent = cents(amount * 100 / net) if net > 0 else None
    return Margin(currency=currency, unit_cost=unit_cost, sale_price_gross=sale_price_gross, sale_price_net=net,
                  vat_percent=vat_percent, margin=amount, margin_percent=percent)
