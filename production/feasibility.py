"""Can a queued print job be printed with what the lab has? With the reasons when it cannot.

Two checks, both hard filters:

- **filament**: every slot the plate uses needs a filament in stock of the same material (equivalent
  names as one, `inventory.matching.material_key`) and a perceptually close colour (CIEDE2000 within
  INVENTORY_COLOUR_TOLERANCE), with enough grams (grams per slot × copies still to print) once the jobs
  ahead of it in the queue have reserved theirs. Jobs are evaluated in queue order (priority, position, age); a job
  whose filament is all there reserves it from the filament that fits best (closest colour, then most
  grams left);
- **printer**: at least one active printer whose nozzle diameter is the file's, whose nozzle is hard
  enough for abrasive filament (carbon or glass fibre), whose build height takes the object, and whose
  model can print a file sliced for the file's printer model (PRINTER_MODELS, COMPATIBLE_MODELS).

Reasons are kept as `{"text": msgid, "params": {...}}` so that they are shown in the reader's language
(`reason_text`); a parameter that is a list of reasons is shown joined with "; ".
"""

import re
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from inventory import selectors as inventory_selectors
from inventory.matching import delta_e, material_key, normalise_hex
from printers import selectors as printer_selectors
from printers.state import is_abrasive_filament, nozzle_takes_abrasive

# --- reasons -------------------------------------------------------------------------------------

FILE_NOT_READ = gettext_noop("The file's metadata is not read yet (%(status)s); the job is checked again once it is.")
SLOT_NONE_IN_STOCK = gettext_noop("Slot %(slot)s needs %(filament)s: there is none in stock.")
SLOT_SHORT = gettext_noop("Slot %(slot)s needs %(filament)s: %(short)s g short (%(needed)s g needed).")
SLOT_SHORT_AFTER_ONE = gettext_noop("Slot %(slot)s needs %(filament)s: %(short)s g short after the job ahead.")
SLOT_SHORT_AFTER = gettext_noop("Slot %(slot)s needs %(filament)s: %(short)s g short after the %(ahead)s jobs "
                                "ahead.")
NO_ACTIVE_PRINTER = gettext_noop("No printer takes it: there is no active printer.")
NO_PRINTER = gettext_noop("No printer takes it: %(printers)s.")
PRINTER_MODEL = gettext_noop("the file was sliced for the %(file_model)s; %(printer)s is a %(model)s")
PRINTER_MODEL_UNSET = gettext_noop("the file was sliced for the %(file_model)s; %(printer)s has no model set")
PRINTER_NOZZLE = gettext_noop("%(printer)s has a %(has)s mm nozzle, the file needs %(needs)s mm")
PRINTER_ABRASIVE = gettext_noop("%(printer)s has a %(nozzle)s nozzle, %(material)s needs a hardened one")
PRINTER_NOZZLE_UNKNOWN = gettext_noop("%(printer)s does not report its nozzle type, %(material)s needs a hardened "
                                      "one")
PRINTER_HEIGHT = gettext_noop("%(printer)s builds up to %(z)s mm, the object is %(height)s mm tall")


def reason(text: str, **params) -> dict:
    return {"text": text, "params": params}


def reason_text(item: dict) -> str:
    """A stored reason as a sentence in the active language."""
    params = {}
    for key, value in (item.get("params") or {}).items():
        if isinstance(value, list):
            value = "; ".join(reason_text(part) for part in value)
        params[key] = value
    try:
        return _(item.get("text", "")) % params
    except (KeyError, TypeError, ValueError):
        return str(item.get("text", ""))


@dataclass
class Feasibility:
    ok: bool
    reasons: list[dict] = field(default_factory=list)

    @property
    def texts(self) -> list[str]:
        return [reason_text(item) for item in self.reasons]


# --- printer models ------------------------------------------------------------------------------

# key -> (the name people know, the spellings slicers and printers use, letters and digits only, upper case)
PRINTER_MODELS: dict[str, tuple[str, tuple[str, ...]]] = {
    "X1C": ("Bambu Lab X1 Carbon", ("X1C", "X1CARBON", "BAMBULABX1CARBON", "BLP001")),
    "X1": ("Bambu Lab X1", ("X1", "BAMBULABX1", "BLP002")),
    "X1E": ("Bambu Lab X1E", ("X1E", "BAMBULABX1E", "C13")),
    "P1S": ("Bambu Lab P1S", ("P1S", "BAMBULABP1S", "C12")),
    "P1P": ("Bambu Lab P1P", ("P1P", "BAMBULABP1P", "C11")),
    "A1": ("Bambu Lab A1", ("A1", "BAMBULABA1", "N2S")),
    "A1MINI": ("Bambu Lab A1 mini", ("A1MINI", "A1M", "BAMBULABA1MINI", "N1")),
    "H2D": ("Bambu Lab H2D", ("H2D", "BAMBULABH2D", "O1D")),
    "MK3S": ("Prusa MK3S", ("MK3", "MK3S", "MK3SPLUS", "MK3SMMU2S", "MK3SMMU3", "ORIGINALPRUSAI3MK3S")),
    "MK4": ("Prusa MK4", ("MK4", "MK4IS", "MK4MMU3", "MK4ISMMU3", "ORIGINALPRUSAMK4")),
    "MK4S": ("Prusa MK4S", ("MK4S", "MK4SMMU3", "ORIGINALPRUSAMK4S")),
    "MINI": ("Prusa MINI", ("MINI", "MINIIS", "MINIPLUS", "ORIGINALPRUSAMINI")),
    "XL": ("Prusa XL", ("XL", "XLIS", "XL2", "XL5", "ORIGINALPRUSAXL")),
    "COREONE": ("Prusa CORE One", ("COREONE", "PRUSACOREONE")),
}

# A file sliced for the key's model may go to these models (its own included): same bed, same kinematics,
# the same G-code dialect. A file for an X1 Carbon may go to a P1S or an X1E, never to an A1 mini.
_BAMBU_CORE_XY = frozenset({"X1C", "X1", "X1E", "P1S", "P1P"})
COMPATIBLE_MODELS: dict[str, frozenset[str]] = {
    **{key: _BAMBU_CORE_XY for key in _BAMBU_CORE_XY},
    **{key: frozenset({key}) for key in PRINTER_MODELS if key not in _BAMBU_CORE_XY},
}

_ALIASES = {alias: key for key, (_label, aliases) in PRINTER_MODELS.items() for alias in aliases}


def _squash(name) -> str:
    return re.sub(r"[^A-Z0-9]", "", str(name or "").upper())


def printer_model_key(name) -> str | None:
    """The PRINTER_MODELS key of a model name ('Bambu Lab X1 Carbon', 'P1S', 'COREONE'); None when unknown."""
    squashed = _squash(name)
    if squashed in _ALIASES:
        return _ALIASES[squashed]
    for prefix in ("BAMBULAB", "ORIGINALPRUSA", "PRUSA"):
        if squashed.startswith(prefix) and squashed[len(prefix):] in _ALIASES:
            return _ALIASES[squashed[len(prefix):]]
    return None


def printer_model_label(name) -> str:
    key = printer_model_key(name)
    return PRINTER_MODELS[key][0] if key else str(name)


def model_takes_file(printer_model: str, file_model: str) -> bool:
    """Whether a printer of `printer_model` may print a file sliced for `file_model`."""
    file_key, printer_key = printer_model_key(file_model), printer_model_key(printer_model)
    if file_key is None or printer_key is None:  # models the table does not know: only the same name
        return bool(_squash(printer_model)) and _squash(printer_model) == _squash(file_model)
    return printer_key in COMPATIBLE_MODELS[file_key]


# --- what a job needs ----------------------------------------------------------------------------


@dataclass
class SlotNeed:
    slot: int
    material: str  # as the file states it
    colour: str | None  # #RRGGBB, None when the file states none
    grams: Decimal | None  # for the copies still to print; None when the file does not say

    @property
    def label(self) -> str:
        return f"{self.material} {self.colour}" if self.colour else self.material


@dataclass
class JobNeeds:
    readable: bool
    status: str = ""
    slots: list[SlotNeed] = field(default_factory=list)
    printer_model: str = ""
    nozzle_mm: float | None = None
    height_mm: float | None = None


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if result == result and result not in (float("inf"), float("-inf")) else None


def _decimal(value) -> Decimal | None:
    number = _number(value)
    if number is None:
        return None
    try:
        return Decimal(str(number))
    except InvalidOperation:
        return None


def _at(values, index):
    return values[index] if isinstance(values, list) and index < len(values) else None


def plate_fields(sliced_file, plate: int) -> dict:
    """The metadata of one plate: a multi-plate 3MF's plate entry, else the whole file's (with corrections)."""
    plates = [p for p in (sliced_file.plates or []) if isinstance(p, dict)]
    if len(plates) > 1:
        for entry in plates:
            if entry.get("index") == plate and isinstance(entry.get("fields"), dict):
                return entry["fields"]
    return sliced_file.effective_metadata or {}


def plate_count(sliced_file) -> int:
    return max(1, len([p for p in (sliced_file.plates or []) if isinstance(p, dict)]))


def job_needs(job) -> JobNeeds:
    sliced_file = job.version.sliced_file
    if sliced_file.status != "done":
        return JobNeeds(readable=False, status=str(sliced_file.get_status_display()))
    fields = plate_fields(sliced_file, job.plate)
    types, colours, grams = fields.get("filament_type"), fields.get("filament_colour"), fields.get("filament_used_g")
    slots = []
    count = max(len(types) if isinstance(types, list) else 0, len(grams) if isinstance(grams, list) else 0)
    for index in range(count):
        material = _at(types, index)
        if not material or not str(material).strip():
            continue  # the file does not say what this slot holds: nothing to check it against
        if isinstance(grams, list):
            per_copy = _decimal(_at(grams, index))
            if per_copy is None or per_copy <= 0:
                continue  # a slot the plate does not use
            needed = (per_copy * job.copies_left).quantize(Decimal("0.001"))
        else:
            needed = None
        slots.append(SlotNeed(slot=index + 1, material=str(material).strip(),
                              colour=normalise_hex(_at(colours, index)), grams=needed))
    nozzles = fields.get("nozzle_diameter")
    nozzle = next((n for n in map(_number, nozzles if isinstance(nozzles, list) else [nozzles]) if n), None)
    return JobNeeds(readable=True, slots=slots, printer_model=str(fields.get("printer_model") or ""),
                    nozzle_mm=nozzle, height_mm=_number(fields.get("object_height")))


# --- the checks ----------------------------------------------------------------------------------


def _grams(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.1')).normalize():f}"


class FilamentBook:
    """The filament in stock, less what the jobs evaluated so far reserved."""

    def __init__(self):
        self.filaments = list(inventory_selectors.filament_list())
        self.left = {f.pk: Decimal(str(f.stock_g)) for f in self.filaments}
        self.holders: dict[int, set[int]] = defaultdict(set)
        self.tolerance = settings.INVENTORY_COLOUR_TOLERANCE

    def candidates(self, need: SlotNeed) -> list:
        key = material_key(need.material)
        found = []
        for filament in self.filaments:
            if material_key(filament.material) != key:
                continue
            difference = 0.0
            if need.colour is not None:
                difference = min((delta_e(need.colour, c) for c in filament.colours if normalise_hex(c)),
                                 default=float("inf"))
                if difference > self.tolerance:
                    continue
            found.append((difference, filament))
        return [f for _d, f in sorted(found, key=lambda pair: (pair[0], -self.left[pair[1].pk]))]

    def check(self, job_id: int, needs: list[SlotNeed]) -> list[dict]:
        """Reasons the slots cannot be fed (empty: all can, and the grams are now reserved for this job)."""
        left = dict(self.left)
        taken: list[int] = []
        reasons = []
        for need in needs:
            candidates = self.candidates(need)
            if not candidates:
                reasons.append(reason(SLOT_NONE_IN_STOCK, slot=need.slot, filament=need.label))
                continue
            wanted = need.grams if need.grams is not None else Decimal("0")
            chosen = next((f for f in candidates if left[f.pk] >= wanted and left[f.pk] > 0), None)
            if chosen is None:
                best = max(left[f.pk] for f in candidates)
                short = wanted - max(best, Decimal("0"))
                ahead = len(set().union(*(self.holders[f.pk] for f in candidates)))
                if ahead == 0:
                    reasons.append(reason(SLOT_SHORT, slot=need.slot, filament=need.label, short=_grams(short),
                                          needed=_grams(wanted)))
                elif ahead == 1:
                    reasons.append(reason(SLOT_SHORT_AFTER_ONE, slot=need.slot, filament=need.label,
                                          short=_grams(short)))
                else:
                    reasons.append(reason(SLOT_SHORT_AFTER, slot=need.slot, filament=need.label,
                                          short=_grams(short), ahead=ahead))
                continue
            left[chosen.pk] -= wanted
            taken.append(chosen.pk)
        if not reasons:
            self.left = left
            for filament_id in taken:
                self.holders[filament_id].add(job_id)
        return reasons


class PrinterBook:
    """The active printers, with what each reports about its nozzle."""

    def __init__(self):
        self.printers = list(printer_selectors.printer_list().filter(is_active=True))

    @staticmethod
    def refusal(printer, needs: JobNeeds) -> dict | None:
        """Why this printer cannot take the job (the first reason found), None when it can."""
        live = getattr(printer, "live", None)
        if needs.printer_model and not model_takes_file(printer.model, needs.printer_model):
            file_model = printer_model_label(needs.printer_model)
            if not printer.model.strip():
                return reason(PRINTER_MODEL_UNSET, printer=printer.name, file_model=file_model)
            return reason(PRINTER_MODEL, printer=printer.name, model=printer_model_label(printer.model),
                          file_model=file_model)
        has = (live.nozzle_diameter_mm if live is not None and live.nozzle_diameter_mm
               else float(printer.nozzle_diameter_mm))
        if needs.nozzle_mm is not None and abs(has - needs.nozzle_mm) > 0.001:
            return reason(PRINTER_NOZZLE, printer=printer.name, has=f"{has:g}", needs=f"{needs.nozzle_mm:g}")
        abrasive = next((s.material for s in needs.slots if is_abrasive_filament(s.material)), None)
        if abrasive:
            nozzle_type = live.nozzle_type if live is not None else ""
            takes = nozzle_takes_abrasive(nozzle_type)
            if takes is None:
                return reason(PRINTER_NOZZLE_UNKNOWN, printer=printer.name, material=abrasive)
            if not takes:
                return reason(PRINTER_ABRASIVE, printer=printer.name, nozzle=nozzle_type.replace("_", " "),
                              material=abrasive)
        if needs.height_mm is not None and needs.height_mm > printer.bed_z_mm:
            return reason(PRINTER_HEIGHT, printer=printer.name, z=printer.bed_z_mm, height=f"{needs.height_mm:g}")
        return None

    def check(self, needs: JobNeeds) -> list[dict]:
        if not self.printers:
            return [reason(NO_ACTIVE_PRINTER)]
        refusals = []
        for printer in self.printers:
            refusal = self.refusal(printer, needs)
            if refusal is None:
                return []
            refusals.append(refusal)
        return [reason(NO_PRINTER, printers=refusals)]


def evaluate_queue(jobs) -> dict[int, Feasibility]:
    """Feasibility of each job of `jobs`, which must be the waiting jobs in queue order (each job's
    filament is what the jobs before it left)."""
    filament, printers = FilamentBook(), PrinterBook()
    results = {}
    for job in jobs:
        needs = job_needs(job)
        if not needs.readable:
            results[job.pk] = Feasibility(ok=False, reasons=[reason(FILE_NOT_READ, status=needs.status)])
            continue
        reasons = filament.check(job.pk, needs.slots) + printers.check(needs)
        results[job.pk] = Feasibility(ok=not reasons, reasons=reasons)
    return results
