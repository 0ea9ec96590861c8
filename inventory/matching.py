"""Find the filaments in stock that fit the filament slots a sliced file states.

A filament fits a slot when its material is the slot's and its colour is within
INVENTORY_COLOUR_TOLERANCE by CIEDE2000 (for multicolour filament: its closest
colour). Candidates are ranked by colour difference, then by a stated brand or
name that matches, then by grams in stock. A slot without a readable colour is
matched by material alone and says so.
"""

import re
from dataclasses import dataclass, field
from decimal import Decimal

from coloraide import Color
from django.conf import settings

from inventory import selectors
from inventory.models import Filament

_HEX = re.compile(r"^#?([0-9A-Fa-f]{3}|[0-9A-Fa-f]{6}|[0-9A-Fa-f]{8})$")


def normalise_hex(value) -> str | None:
    """'#ff8000', 'FF8000', '#F80' and Bambu's '#FF8000FF' (with alpha) become '#FF8000'; else None."""
    match = _HEX.match(str(value or "").strip())
    if not match:
        return None
    digits = match.group(1).upper()
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    return "#" + digits[:6]


def delta_e(a: str, b: str) -> float:
    return float(Color(a).delta_e(Color(b), method="2000"))


def normalise_material(value) -> str:
    return re.sub(r"\s+", " ", str(value or "")).strip().upper()


# Names slicer profiles and makers use for one material, mapped to one name (after material_key's clean-up).
MATERIAL_EQUIVALENTS = {
    "PLA BASIC": "PLA",
    "GENERIC PLA": "PLA",
    "PETG BASIC": "PETG",
    "GENERIC PETG": "PETG",
    "ABS BASIC": "ABS",
    "PA-CF": "PA12-CF",
    "PA12-CF": "PA12-CF",
    "PA-GF": "PA12-GF",
}
_FILLED = re.compile(r"[\s_-]*(CF|GF)$")


def material_key(value) -> str:
    """One name per material, so that equivalent names compare equal: 'PLA Basic' and 'pla' give 'PLA',
    'PA-CF', 'PA CF' and 'PA12-CF' give 'PA12-CF', 'PETG_CF' gives 'PETG-CF'."""
    name = normalise_material(str(value or "").replace("_", " "))
    name = _FILLED.sub(r"-\1", name)
    return MATERIAL_EQUIVALENTS.get(name, name)


@dataclass
class Candidate:
    filament: Filament
    delta_e: float | None
    available_g: Decimal
    spool_codes: list[str]
    same_brand: bool


@dataclass
class SlotMatch:
    slot: int
    material: str
    colour: str | None
    needed_g: Decimal | None
    candidates: list[Candidate] = field(default_factory=list)
    note: str = ""

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    @property
    def available_g(self) -> Decimal:
        return self.best.available_g if self.best else Decimal("0")

    @property
    def enough(self) -> bool:
        return self.best is not None and (self.needed_g is None or self.best.available_g >= self.needed_g)


def match_slots(*, materials: list, colours: list, grams_needed: list | None = None, brands: list | None = None,
                tolerance: float | None = None) -> list[SlotMatch]:
    """One SlotMatch per slot, in slot order (lists as a sliced file states them)."""
    tolerance = settings.INVENTORY_COLOUR_TOLERANCE if tolerance is None else tolerance
    count = max(len(materials or []), len(colours or []))
    stock = list(selectors.filament_list().prefetch_related("spools"))
    results = []
    for index in range(count):
        material = normalise_material((materials or [None] * count)[index] if index < len(materials or []) else "")
        raw_colour = colours[index] if colours and index < len(colours) else None
        colour = normalise_hex(raw_colour)
        needed = _grams_at(grams_needed, index)
        brand = str(brands[index]).strip().lower() if brands and index < len(brands) and brands[index] else ""
        match = SlotMatch(slot=index + 1, material=material, colour=colour, needed_g=needed)
        if raw_colour and colour is None:
            match.note = f"colour {raw_colour!r} is not a hex colour; matched by material only"
        elif colour is None:
            match.note = "the file states no colour; matched by material only"
        for filament in stock:
            if material and normalise_material(filament.material) != material:
                continue
            difference = None
            if colour is not None:
                difference = min(delta_e(colour, c) for c in filament.colours if normalise_hex(c))
                if difference > tolerance:
                    continue
            spools = [s.code for s in filament.spools.all() if s.archived_at is None and s.remaining_grams > 0]
            match.candidates.append(Candidate(
                filament=filament, delta_e=difference, available_g=filament.stock_g,
                spool_codes=spools, same_brand=bool(brand) and filament.brand.strip().lower() == brand,
            ))
        match.candidates.sort(key=lambda c: (c.delta_e if c.delta_e is not None else 0.0, not c.same_brand,
                                             -c.available_g))
        results.append(match)
    return results


def _grams_at(values, index) -> Decimal | None:
    if not values or index >= len(values) or values[index] is None:
        return None
    try:
        return Decimal(str(values[index]))
    except ArithmeticError:
        return None
