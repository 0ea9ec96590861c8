"""Every write to stock. Quantities change only here, one movement at a time.

Each change locks the spool row (select_for_update), re-checks its idempotency key
under the lock, appends one Movement and updates the cached remaining grams in the
same transaction. Replaying an event with the same idempotency key returns the
movement recorded the first time and changes nothing. Once a change of what is in
stock commits (a spool's grams, a spool received or archived, a filament added or
edited), inventory.signals.stock_changed tells the apps that follow it.
"""

import datetime
import json
import secrets
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from fablab.exceptions import ApplicationError, Conflict, InvalidInput
from fablab.validation import validate
from inventory import selectors
from inventory.choices import (
    BOOKED_PRODUCT_KINDS,
    CONSUMING_KINDS,
    AlertItem,
    MovementKind,
    ProductMovementKind,
    SalesChannel,
    SourceType,
)
from inventory.models import (
    GRAM_QUANTUM,
    RFID_TAG,
    Filament,
    Location,
    Movement,
    Product,
    ProductMovement,
    ProductStock,
    Sale,
    Spool,
    SpoolmanExtra,
    StockAlert,
    Vendor,
    grams_display,
)
from inventory.signals import stock_changed

MAX_GRAMS = Decimal("50000")  # no spool holds 50 kg; larger numbers are typing errors
_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: readable on a label


def grams(value, *, field: str = "grams", allow_zero: bool = False) -> Decimal:
    """A positive, plausible weight in grams to the microgram (what the ledger stores), or InvalidInput.

    Every amount of filament booked anywhere passes through here, so a report of a
    few milligrams is booked as it was measured, not rounded away.
    """
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise InvalidInput(_("%(field)s must be a number of grams, not %(value)r.")
                           % {"field": field, "value": value}) from None
    if not amount.is_finite():
        raise InvalidInput(_("%(field)s must be a finite number of grams.") % {"field": field})
    if amount > MAX_GRAMS:
        raise InvalidInput(_("%(field)s of %(value)s g is more than any spool holds (%(max)s g).")
                           % {"field": field, "value": amount, "max": MAX_GRAMS})
    if amount < -MAX_GRAMS:  # checked before rounding: a number of 23 digits or more cannot be rounded to the µg
        raise InvalidInput(_("%(field)s must be more than 0 g, not %(value)s g.") % {"field": field, "value": amount})
    amount = amount.quantize(GRAM_QUANTUM, rounding=ROUND_HALF_UP)
    if amount < 0 or (amount == 0 and not allow_zero):
        raise InvalidInput(_("%(field)s must be more than 0 g, not %(value)s g.")
                           % {"field": field, "value": amount.normalize() if amount else 0})
    return amount


def _key(idempotency_key: str) -> str:
    key = (idempotency_key or "").strip()
    if not key or len(key) > 200:
        raise InvalidInput(_("Every stock change needs an idempotency key of 1 to 200 characters."))
    return key


def _replayed(key: str, *, spool_id: int | None, kind: str) -> Movement | None:
    """The movement recorded earlier under `key`, after checking it describes the same change."""
    movement = Movement.objects.filter(idempotency_key=key).first()
    if movement is None:
        return None
    if (spool_id is not None and movement.spool_id != spool_id) or movement.kind != kind:
        raise Conflict(_("The idempotency key %(key)s was already used for a different stock change.")
                       % {"key": key})
    return movement


def _new_code() -> str:
    for _attempt in range(20):
        code = "S-" + "".join(secrets.choice(_CODE_ALPHABET) for _ in range(5))
        if not Spool.objects.filter(code=code).exists():
            return code
    raise Conflict(_("Could not find a free label code; try again."))


def _stock_changed(sender, filament_id: int, spool_id: int | None = None) -> None:
    """Tell other apps (inventory.signals.stock_changed) once the current transaction commits."""
    transaction.on_commit(lambda: stock_changed.send(sender=sender, filament_id=filament_id, spool_id=spool_id))


def _assign(instance, fields: dict) -> None:
    """Set the given editable fields of `instance`; any other name is refused."""
    editable = {f.name for f in instance._meta.concrete_fields if f.editable and not f.primary_key}
    unknown = sorted(set(fields) - editable)
    if unknown:
        raise InvalidInput(_("Unknown fields: %(fields)s.") % {"fields": ", ".join(unknown)})
    for name, value in fields.items():
        setattr(instance, name, value)


def _filament_fields(fields: dict) -> dict:
    if "colour_hex" in fields:
        fields["colour_hex"] = (fields["colour_hex"] or "").upper()
    if "extra_colours" in fields:
        fields["extra_colours"] = [str(c).upper() for c in fields["extra_colours"] or []]
    return fields


def vendor_for_brand(*, brand: str) -> Vendor | None:
    """The vendor of a filament brand (the oldest of that name), made the first time the brand is used."""
    if not brand:
        return None
    vendor = Vendor.objects.filter(name=brand).order_by("pk").first()
    if vendor is None:
        vendor = Vendor(name=brand)
        validate(vendor)
        vendor.save()
    return vendor


def vendor_create(*, name: str, comment: str = "", empty_spool_weight_g=None, external_id: str = "") -> Vendor:
    """A vendor no filament uses yet (Spoolman clients register vendors before their filaments)."""
    vendor = Vendor(name=(name or "").strip(), comment=comment or "", empty_spool_weight_g=empty_spool_weight_g,
                    external_id=external_id or "")
    validate(vendor)
    vendor.save()
    return vendor


@transaction.atomic
def vendor_update(*, vendor: Vendor, **fields) -> Vendor:
    """Change a vendor; a new name renames the brand of every filament of that vendor."""
    old_name = vendor.name
    if "name" in fields:
        fields["name"] = (fields["name"] or "").strip()
    _assign(vendor, fields)
    validate(vendor)
    vendor.save()
    if vendor.name != old_name:
        for filament in Filament.objects.filter(vendor=vendor):
            filament.brand = vendor.name
            validate(filament)
            filament.save(update_fields=["brand", "updated_at"])
    return vendor


@transaction.atomic
def vendor_delete(*, vendor: Vendor) -> None:
    """Delete a vendor as Spoolman does: its filaments stay, without a vendor, and keep their brand."""
    SpoolmanExtra.objects.filter(resource="vendor", object_id=vendor.pk).delete()
    vendor.delete()


def extra_set(*, resource: str, object_id: int, values: dict) -> None:
    """Merge a Spoolman client's extra fields: each value is JSON text; None clears the key."""
    for key, value in (values or {}).items():
        if not isinstance(key, str) or not 0 < len(key) <= 64:
            raise InvalidInput(_("An extra field's key is 1 to 64 characters."))
        if value is None:
            SpoolmanExtra.objects.filter(resource=resource, object_id=object_id, key=key).delete()
            continue
        try:
            json.loads(value)
        except (TypeError, ValueError):
            raise InvalidInput(_("Extra field %(key)s must hold JSON text, such as 42 or a quoted string.")
                               % {"key": key}) from None
        SpoolmanExtra.objects.update_or_create(resource=resource, object_id=object_id, key=key,
                                               defaults={"value": value})


def _link_vendor(filament: Filament, fields: dict) -> None:
    """A vendor given links the filament and names its brand; a brand given alone links its vendor."""
    if "vendor" in fields:
        if filament.vendor is not None:
            filament.brand = filament.vendor.name
    elif "brand" in fields:
        filament.vendor = vendor_for_brand(brand=filament.brand)


@transaction.atomic
def filament_create(**fields) -> Filament:
    filament = Filament()
    _assign(filament, _filament_fields(fields))
    _link_vendor(filament, fields)
    validate(filament)
    filament.save()
    _stock_changed(Filament, filament.pk)
    return filament


@transaction.atomic
def filament_update(*, filament: Filament, **fields) -> Filament:
    """Change a filament's description, prices or reorder level (a new level may raise or clear an alert)."""
    _assign(filament, _filament_fields(fields))
    _link_vendor(filament, fields)
    validate(filament)
    filament.save()
    stock_alert_check(filament=filament)
    _stock_changed(Filament, filament.pk)
    return filament


def location_create(*, name: str, kind: str, parent: Location | None = None) -> Location:
    location = Location()
    return location_update(location=location, name=name, kind=kind, parent=parent)


def location_update(*, location: Location, name: str, kind: str, parent: Location | None) -> Location:
    """Name, kind and place of a location; a location never lies inside itself."""
    location.name, location.kind, location.parent = (name or "").strip(), kind, parent
    validate(location)
    location.save()
    return location


def clean_rfid_tag(value) -> str:
    """A spool's RFID tag as stored: hex digits in upper case, without the spaces, dashes or colons a
    reader or a UUID may show between them; "" for none. Its form is checked by the model (RFID_TAG)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(_("An RFID tag is written as hexadecimal digits, not %(value)r.") % {"value": value},
                           extra={"fields": {"rfid_tag": [_("Hexadecimal digits.")]}})
    tag = "".join(value.split()).replace("-", "").replace(":", "").upper()
    if tag and not RFID_TAG.regex.match(tag):  # refused before any query looks for it (a NUL, letters)
        raise InvalidInput(RFID_TAG.message, extra={"fields": {"rfid_tag": [RFID_TAG.message]}})
    return tag


def _tag_taken(spool: Spool) -> Conflict | None:
    if not spool.rfid_tag:
        return None
    other = Spool.objects.filter(rfid_tag=spool.rfid_tag, archived_at__isnull=True).exclude(pk=spool.pk).first()
    if other is None:
        return None
    return Conflict(_("Spool %(code)s in stock already has the RFID tag %(tag)s; archive it or remove its tag "
                      "first.") % {"code": other.code, "tag": spool.rfid_tag},
                    extra={"fields": {"rfid_tag": [_("Another spool in stock has this tag.")]}})


def _save_spool(spool: Spool, *, fields: list[str] | None = None) -> None:
    """Check and save a spool; its RFID tag must name no other spool in stock (Conflict), also when another
    request gives it to one at the same moment."""
    taken = _tag_taken(spool)
    if taken is not None:
        raise taken
    validate(spool, exclude=["code", "remaining_grams"])
    try:
        with transaction.atomic():
            spool.save(update_fields=fields)
    except IntegrityError:
        taken = _tag_taken(spool)
        if taken is not None:
            raise taken from None
        raise


def spool_update(*, spool: Spool, lot_number: str | None = None, rfid_tag: str | None = None,
                 comment: str | None = None) -> Spool:
    """What may be corrected on a spool besides its stock (which changes only with a movement): its lot, its
    RFID tag and its comment ("" removes one; None leaves a field as it is). A tag names one spool in stock."""
    if lot_number is not None:
        spool.lot_number = (lot_number or "").strip()
    if rfid_tag is not None:
        spool.rfid_tag = clean_rfid_tag(rfid_tag)
    if comment is not None:
        spool.comment = comment.strip()
    _save_spool(spool, fields=["lot_number", "rfid_tag", "comment", "updated_at"])
    return spool


@transaction.atomic
def spool_receive(*, filament: Filament, initial_grams, idempotency_key: str, location: Location | None = None,
                  lot_number: str = "", rfid_tag: str = "", source_type: str = SourceType.USER, source_id: str = "",
                  by=None) -> Spool:
    """A new spool arrives: it is created with a 'received' movement of its net grams.

    `rfid_tag`: the id a printer reads from the spool's tag, if it has one (unique among spools in stock).
    """
    key = _key(idempotency_key)
    amount = grams(initial_grams, field=_("received grams"))
    replay = _replayed(key, spool_id=None, kind=MovementKind.RECEIVED)
    if replay is not None:
        return replay.spool
    spool = Spool(filament=filament, code=_new_code(), location=location, lot_number=lot_number.strip(),
                  rfid_tag=clean_rfid_tag(rfid_tag), initial_grams=amount, remaining_grams=amount)
    _save_spool(spool)
    try:
        with transaction.atomic():
            Movement.objects.create(
                spool=spool, kind=MovementKind.RECEIVED, delta_grams=amount, reason=_("Received"),
                source_type=source_type, source_id=source_id, idempotency_key=key, to_location=location,
                created_by=by,
            )
    except IntegrityError:
        # Someone recorded the same key at the same moment: theirs stands, this spool goes.
        spool.delete()
        return _replayed(key, spool_id=None, kind=MovementKind.RECEIVED).spool
    stock_alert_check(filament=filament)
    _stock_changed(Spool, filament.pk)
    return spool


def _change(*, spool: Spool, kind: str, idempotency_key: str, delta_for: Callable[[Spool], Decimal],
            reason: str = "", source_type: str = SourceType.USER, source_id: str = "", by=None,
            allow_negative: bool = False, to_location: Location | None = None,
            move: bool = False, allow_archived: bool = False) -> Movement:
    key = _key(idempotency_key)
    replay = _replayed(key, spool_id=spool.pk, kind=kind)
    if replay is not None:
        return replay
    with transaction.atomic():
        locked = Spool.objects.select_for_update().select_related("filament").get(pk=spool.pk)
        replay = _replayed(key, spool_id=spool.pk, kind=kind)  # a concurrent twin may have won the lock
        if replay is not None:
            return replay
        if locked.archived_at is not None and kind != MovementKind.ADJUSTED and not allow_archived:
            raise Conflict(_("Spool %(code)s is archived.") % {"code": locked.code})
        delta = delta_for(locked)
        if locked.remaining_grams + delta < 0 and not allow_negative:
            raise InvalidInput(
                _("Spool %(code)s has %(left)s g left; it cannot give %(amount)s g.")
                % {"code": locked.code, "left": grams_display(locked.remaining_grams),
                   "amount": grams_display(-delta)}
            )
        try:
            with transaction.atomic():
                movement = Movement.objects.create(
                    spool=locked, kind=kind, delta_grams=delta, reason=reason[:255], source_type=source_type,
                    source_id=str(source_id)[:100], idempotency_key=key, created_by=by,
                    from_location=locked.location if move else None, to_location=to_location,
                )
        except IntegrityError:
            return _replayed(key, spool_id=spool.pk, kind=kind)
        updates = {"remaining_grams": F("remaining_grams") + delta, "updated_at": timezone.now()}
        if kind in CONSUMING_KINDS and locked.opened_at is None:
            updates["opened_at"] = timezone.now()
        if move:
            updates["location"] = to_location
        Spool.objects.filter(pk=locked.pk).update(**updates)
        stock_alert_check(filament=locked.filament)
        if delta:
            _stock_changed(Spool, locked.filament_id, locked.pk)
    return movement


def spool_use(*, spool: Spool, grams_used, idempotency_key: str, kind: str = MovementKind.USED, reason: str = "",
              source_type: str = SourceType.USER, source_id: str = "", by=None, clamp: bool = False,
              allow_archived: bool = False) -> Movement:
    """Take filament off a spool: a print used it, a failed print used part of it, or it was wasted.

    More than the spool holds is refused, unless `clamp`: then what is left is booked and
    the spool stands at 0 (a printer host reports what it extruded; it cannot be refused).
    `allow_archived` books on an archived spool too (a host still printing from it).
    """
    if kind not in CONSUMING_KINDS:
        label = MovementKind(kind).label if kind in MovementKind.values else kind
        raise InvalidInput(_("'%(kind)s' does not take filament off a spool.") % {"kind": label})
    amount = grams(grams_used, field=_("used grams"))

    def delta(locked: Spool) -> Decimal:
        return -min(amount, max(locked.remaining_grams, Decimal("0"))) if clamp else -amount

    return _change(spool=spool, kind=kind, idempotency_key=idempotency_key, delta_for=delta,
                   reason=reason, source_type=source_type, source_id=source_id, by=by,
                   allow_archived=allow_archived)


def spool_credit(*, spool: Spool, grams_returned, idempotency_key: str, reason: str,
                 source_type: str = SourceType.USER, source_id: str = "", by=None) -> Movement:
    """Give grams back to a spool that an earlier booking took them from by mistake (an adjustment).

    Used when staff correct which spool fed a print: the grams go back here and onto the right spool.
    """
    amount = grams(grams_returned, field=_("returned grams"))
    if not (reason or "").strip():
        raise InvalidInput(_("Say why the grams go back to the spool."))
    return _change(spool=spool, kind=MovementKind.ADJUSTED, idempotency_key=idempotency_key,
                   delta_for=lambda s: amount, reason=reason.strip(), source_type=source_type,
                   source_id=source_id, by=by)


def spool_weigh(*, spool: Spool, gross_grams, idempotency_key: str, by=None,
                source_type: str = SourceType.USER, source_id: str = "") -> Movement:
    """The spool was put on a scale: book the difference between the scale and the ledger."""
    gross = grams(gross_grams, field=_("weight on the scale"))

    def correction(locked: Spool) -> Decimal:
        empty = locked.filament.spool_weight_g
        if gross < empty:
            raise InvalidInput(
                _("The scale shows %(gross)s g, less than the empty spool of %(filament)s (%(empty)s g). "
                  "Check the scale or the filament's empty-spool weight.")
                % {"gross": grams_display(gross), "filament": locked.filament, "empty": empty}
            )
        return (gross - empty) - locked.remaining_grams

    return _change(spool=spool, kind=MovementKind.WEIGHED, idempotency_key=idempotency_key, delta_for=correction,
                   reason=_("Weighed %(gross)s g on the scale") % {"gross": grams_display(gross)},
                   source_type=source_type, source_id=source_id, by=by)


def spool_adjust(*, spool: Spool, remaining_grams, idempotency_key: str, reason: str, by=None,
                 source_type: str = SourceType.USER, source_id: str = "") -> Movement:
    """Set the remaining grams to a counted value, with the reason on record."""
    target = grams(remaining_grams, field=_("remaining grams"), allow_zero=True)
    if not (reason or "").strip():
        raise InvalidInput(_("Say why the stock is adjusted."))
    return _change(spool=spool, kind=MovementKind.ADJUSTED, idempotency_key=idempotency_key,
                   delta_for=lambda s: target - s.remaining_grams, reason=reason.strip(), by=by,
                   source_type=source_type, source_id=source_id)


def spool_move(*, spool: Spool, location: Location | None, idempotency_key: str, by=None) -> Movement:
    return _change(spool=spool, kind=MovementKind.MOVED, idempotency_key=idempotency_key,
                   delta_for=lambda s: Decimal("0"), reason=_("Moved to %(to)s") % {"to": location or "—"},
                   by=by, to_location=location, move=True)


@transaction.atomic
def filament_delete(*, filament: Filament) -> None:
    """Delete a filament no spool in use has: one never received goes; one whose spools were all
    deleted by a Spoolman client (retired) is retired too, since those spools keep it for the ledger."""
    if filament.spools.filter(retired_at__isnull=True).exists():
        raise Conflict(_("%(filament)s has spools; archive them instead.") % {"filament": filament})
    SpoolmanExtra.objects.filter(resource="filament", object_id=filament.pk).delete()
    if filament.spools.exists():
        filament.retired_at = timezone.now()
        filament.save(update_fields=["retired_at", "updated_at"])
        _stock_changed(Filament, filament.pk)
    else:
        filament.delete()


def spool_retire(*, spool: Spool) -> Spool:
    """A spool deleted by a Spoolman client: archived and no longer shown to Spoolman clients.
    The spool and its ledger stay (the admin lists it among the archived spools)."""
    with transaction.atomic():
        spool = spool_archive(spool=spool)
        if spool.retired_at is None:
            spool.retired_at = timezone.now()
            spool.save(update_fields=["retired_at", "updated_at"])
        SpoolmanExtra.objects.filter(resource="spool", object_id=spool.pk).delete()
    return spool


def spool_unarchive(*, spool: Spool) -> Spool:
    """Put an archived spool back into stock."""
    with transaction.atomic():
        locked = Spool.objects.select_for_update().get(pk=spool.pk)
        if locked.archived_at is not None:
            locked.archived_at = locked.retired_at = None  # back in stock: Spoolman clients see it again
            locked.save(update_fields=["archived_at", "retired_at", "updated_at"])
            stock_alert_check(filament=locked.filament)
    return locked


def spool_archive(*, spool: Spool) -> Spool:
    with transaction.atomic():
        locked = Spool.objects.select_for_update().get(pk=spool.pk)
        if locked.archived_at is None:
            locked.archived_at = timezone.now()
            locked.save(update_fields=["archived_at", "updated_at"])
            stock_alert_check(filament=locked.filament)
            _stock_changed(Spool, locked.filament_id, locked.pk)
    return locked


# --- Products ----------------------------------------------------------------------------


def product_create(**fields) -> Product:
    product = Product()
    _assign(product, fields)
    validate(product)
    product.save()
    return product


def product_update(*, product: Product, **fields) -> Product:
    """Change a product's description, cost or reorder level (a new level may raise or clear an alert)."""
    _assign(product, fields)
    validate(product)
    product.save()
    stock_alert_check(product=product)
    return product


def product_set_unit_cost(*, product: Product, unit_cost) -> Product:
    """Set what one unit of `product` costs (production keeps printed products' unit cost up to date); only the
    unit cost changes. A negative, malformed or too large amount is refused (InvalidInput)."""
    try:
        amount = Decimal(str(unit_cost))
    except (InvalidOperation, ValueError, TypeError):
        raise InvalidInput(_("A unit cost must be an amount, not %(value)r.") % {"value": unit_cost}) from None
    if not amount.is_finite() or amount.adjusted() > 12:
        raise InvalidInput(_("A unit cost must be a finite amount, not %(value)s.") % {"value": unit_cost})
    product.unit_cost = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    validate(product)
    Product.objects.filter(pk=product.pk).update(unit_cost=product.unit_cost, updated_at=timezone.now())
    return product


def units(value, *, field: str = "units") -> int:
    if isinstance(value, bool):
        raise InvalidInput(_("%(field)s must be a whole number.") % {"field": field})
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise InvalidInput(_("%(field)s must be a whole number, not %(value)r.")
                           % {"field": field, "value": value}) from None
    if not number.is_finite() or number != number.to_integral_value():
        raise InvalidInput(_("%(field)s must be a whole number, not %(value)r.") % {"field": field, "value": value})
    if number <= 0 or number > MAX_UNITS:
        raise InvalidInput(_("%(field)s must be between 1 and %(max)s.") % {"field": field, "max": MAX_UNITS})
    return int(number)


MAX_UNITS = 100_000
_PRODUCT_SIGN = {
    ProductMovementKind.PRODUCED: 1, ProductMovementKind.RECEIVED: 1, ProductMovementKind.RETURNED: 1,
    ProductMovementKind.MOVED_IN: 1, ProductMovementKind.SOLD: -1, ProductMovementKind.MOVED_OUT: -1,
}


@transaction.atomic
def product_stock_change(*, product: Product, location: Location, kind: str, quantity, idempotency_key: str,
                         reason: str = "", source_type: str = SourceType.USER, source_id: str = "",
                         by=None) -> ProductMovement:
    """Add or take units of a product at a location; `quantity` is positive, the kind gives the sign.

    ADJUSTED sets the stock at the location to `quantity` (which may be 0).
    """
    key = _key(idempotency_key)
    existing = ProductMovement.objects.filter(idempotency_key=key).first()
    if existing is not None:
        if existing.product_id != product.pk or existing.kind != kind:
            raise Conflict(_("The idempotency key %(key)s was already used for a different stock change.")
                           % {"key": key})
        return existing
    if kind not in ProductMovementKind.values:
        raise InvalidInput(_("Unknown product movement %(kind)r.") % {"kind": kind})
    amount = units(quantity, field=_("units")) if kind != ProductMovementKind.ADJUSTED else _count(quantity)
    ProductStock.objects.get_or_create(product=product, location=location)
    stock = ProductStock.objects.select_for_update().get(product=product, location=location)
    if ProductMovement.objects.filter(idempotency_key=key).exists():  # a concurrent twin won the lock
        return ProductMovement.objects.get(idempotency_key=key)
    delta = amount - stock.quantity if kind == ProductMovementKind.ADJUSTED else _PRODUCT_SIGN[kind] * amount
    if stock.quantity + delta < 0:
        raise InvalidInput(_("%(sku)s has %(left)s units at %(location)s; %(amount)s cannot be taken.")
                           % {"sku": product.sku, "left": stock.quantity, "location": location, "amount": -delta})
    movement = ProductMovement.objects.create(
        product=product, location=location, kind=kind, delta_units=delta, reason=reason[:255],
        source_type=source_type, source_id=str(source_id)[:100], idempotency_key=key, created_by=by,
    )
    ProductStock.objects.filter(pk=stock.pk).update(quantity=F("quantity") + delta)
    stock_alert_check(product=product)
    return movement


def product_stock_book(*, product: Product, location: Location, kind: str, quantity, idempotency_key: str,
                       reason: str = "", source_type: str = SourceType.USER, source_id: str = "",
                       by=None) -> ProductMovement:
    """Units booked by staff or the lab's systems: made, received, returned, or counted (adjusted).

    Sales go through sale_record, so that they count for the sales velocity.
    """
    if kind not in BOOKED_PRODUCT_KINDS:
        raise InvalidInput(_("Units can be booked as %(kinds)s; sales are recorded as sales.")
                           % {"kinds": ", ".join(BOOKED_PRODUCT_KINDS)})
    return product_stock_change(product=product, location=location, kind=kind, quantity=quantity,
                                idempotency_key=idempotency_key, reason=reason, source_type=source_type,
                                source_id=source_id, by=by)


def _count(value) -> int:
    if value in (0, "0"):
        return 0
    return units(value, field=_("counted units"))


MAX_UNIT_PRICE = Decimal("99999999.99")  # what the column holds (ten digits, two after the point)


def unit_price_amount(value) -> Decimal:
    """A unit price as stored (to the cent), or InvalidInput: a finite amount from 0 to MAX_UNIT_PRICE."""
    if isinstance(value, bool):
        raise InvalidInput(_("The unit price must be a number."))
    try:
        price = Decimal(str(value).strip())
    except (InvalidOperation, ValueError, TypeError):
        raise InvalidInput(_("The unit price must be a number.")) from None
    if not price.is_finite() or price < 0:
        raise InvalidInput(_("The unit price must be 0 or more."))
    if price > MAX_UNIT_PRICE:
        raise InvalidInput(_("A unit price of %(price)s is more than %(max)s.")
                           % {"price": price, "max": MAX_UNIT_PRICE})
    return price.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _sale_day(value) -> datetime.date:
    """The day of a sale: a date, or a datetime taken in the lab's time zone; never after tomorrow."""
    if isinstance(value, datetime.datetime):
        value = timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    if not isinstance(value, datetime.date):
        raise InvalidInput(_("The date of a sale must be a date, not %(value)r.") % {"value": value})
    if value > timezone.localdate() + datetime.timedelta(days=1):
        raise InvalidInput(_("A sale on %(day)s lies in the future.") % {"day": value.isoformat()})
    return value


def _sale_replayed(key: str, *, product: Product, kind: str) -> Sale | None:
    """The sale or return recorded earlier under `key` (Conflict when the key booked something else)."""
    movement = ProductMovement.objects.filter(idempotency_key=key).select_related("sale").first()
    if movement is None:
        return None
    sale = getattr(movement, "sale", None)
    if sale is None or movement.product_id != product.pk or movement.kind != kind:
        raise Conflict(_("The idempotency key %(key)s was already used for a different stock change.")
                       % {"key": key})
    return sale


def _sale_location(product: Product, quantity: int) -> Location:
    """Where a sale without a location takes its units from: the location holding most units of the product."""
    stock = ProductStock.objects.filter(product=product, quantity__gt=0).select_related("location") \
        .order_by("-quantity", "location_id").first()
    if stock is None:
        raise InvalidInput(_("%(sku)s has no units in stock; %(amount)s cannot be sold.")
                           % {"sku": product.sku, "amount": quantity})
    return stock.location


@transaction.atomic
def sale_record(*, product: Product, quantity, unit_price, sold_on, channel: str, idempotency_key: str,
                location: Location | None = None, currency: str = "EUR", reference: str = "",
                source_type: str = SourceType.USER, source_id: str = "", by=None) -> Sale:
    """Record a sale and take its units out of stock, once per idempotency key.

    `location`: where the units are taken from; None takes them from the location holding most units of the
    product. A sale may not take more units than that location holds (InvalidInput), as the ledger never
    goes below zero. The same key sent again returns the sale recorded the first time.
    """
    key = _key(idempotency_key)
    replay = _sale_replayed(key, product=product, kind=ProductMovementKind.SOLD)
    if replay is not None:
        return replay
    if channel not in SalesChannel.values:
        raise InvalidInput(_("Unknown sales channel %(channel)r.") % {"channel": channel})
    amount = units(quantity, field=_("units"))
    sale = Sale(product=product, sold_on=_sale_day(sold_on), channel=channel, quantity=amount,
                unit_price=unit_price_amount(unit_price), currency=(currency or "").strip().upper(),
                reference=(reference or "").strip())
    validate(sale, exclude=["movement"])
    movement = product_stock_change(
        product=product, location=location or _sale_location(product, amount), kind=ProductMovementKind.SOLD,
        quantity=amount, idempotency_key=key, reason=_("Sale %(ref)s") % {"ref": sale.reference} if sale.reference
        else _("Sale"), source_type=source_type, source_id=source_id, by=by,
    )
    existing = Sale.objects.filter(movement=movement).first()  # a concurrent twin won the lock
    if existing is not None:
        return existing
    sale.movement = movement
    validate(sale)
    sale.save()
    return sale


@transaction.atomic
def sale_return(*, sale: Sale, quantity, idempotency_key: str, location: Location | None = None,
                returned_on=None, source_type: str = SourceType.USER, source_id: str = "", by=None) -> Sale:
    """Units of an earlier sale come back: a row of negative units linked to the sale, and a 'returned'
    movement putting them back at `location` (by default where the sale took them from).

    All returns of one sale together never exceed what it sold (InvalidInput); the refund is the sale's
    unit price. The same key sent again returns the return recorded the first time.
    """
    key = _key(idempotency_key)
    original = Sale.objects.select_for_update().select_related("product", "movement__location").get(pk=sale.pk)
    replay = _sale_replayed(key, product=original.product, kind=ProductMovementKind.RETURNED)
    if replay is not None:
        return replay
    if original.is_return:
        raise InvalidInput(_("A return cannot be returned; return units of the sale itself."))
    amount = units(quantity, field=_("returned units"))
    returned = -sum(original.returns.values_list("quantity", flat=True))
    if returned + amount > original.quantity:
        raise InvalidInput(_("Sale %(id)s sold %(sold)s units and %(returned)s came back already; %(amount)s more "
                             "cannot be returned.") % {"id": original.pk, "sold": original.quantity,
                                                        "returned": returned, "amount": amount})
    row = Sale(product=original.product, sold_on=_sale_day(returned_on or timezone.localdate()),
               channel=original.channel, quantity=-amount, unit_price=original.unit_price,
               currency=original.currency, reference=original.reference, return_of=original)
    validate(row, exclude=["movement"])
    row.movement = product_stock_change(
        product=original.product, location=location or original.movement.location,
        kind=ProductMovementKind.RETURNED, quantity=amount, idempotency_key=key,
        reason=_("Return of sale %(id)s") % {"id": original.pk}, source_type=source_type,
        source_id=source_id or str(original.pk), by=by,
    )
    validate(row)
    row.save()
    return row


@transaction.atomic
def sale_record_many(*, rows: list[dict], by=None, source_type: str = SourceType.USER) -> list[Sale]:
    """Record several sales at once (a bulk form, an import): all of them or, when any row is refused, none.

    Each row holds sale_record's arguments. A refusal raises InvalidInput whose `extra["rows"]` maps each
    refused row's index (from 0) to its message; nothing of the batch is written.
    """
    errors: dict[int, str] = {}
    sales: list[Sale] = []
    for index, row in enumerate(rows):
        try:
            with transaction.atomic():
                sales.append(sale_record(**row, by=by, source_type=source_type))
        except ApplicationError as exc:
            errors[index] = str(exc.message)
    if errors:
        raise InvalidInput(
            _("%(n)s of %(total)s sales were refused; none was recorded.") % {"n": len(errors), "total": len(rows)},
            extra={"rows": errors},
        )
    return sales


# --- Low-stock alerts ------------------------------------------------------------------


def _notify(alert_id: int) -> None:
    from django.conf import settings as django_settings
    from django.contrib.auth import get_user_model
    from django.core.mail import send_mail
    from django.db.models import Q

    alert = StockAlert.objects.select_related("filament", "product").get(pk=alert_id)
    if alert.notified_at is not None:
        return
    recipients = list(
        get_user_model().objects.filter(is_active=True, is_staff=True)
        .filter(Q(is_superuser=True) | Q(groups__name="Manager")).exclude(email="")
        .values_list("email", flat=True).distinct()
    )
    item = alert.filament or alert.product
    unit = "g" if alert.filament_id else _("units")
    if recipients:
        send_mail(
            subject=f"{django_settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}" + _("Low stock: %(item)s") % {"item": item},
            message=_("%(item)s is down to %(level)s %(unit)s, below its reorder level of %(threshold)s %(unit)s.\n"
                      "See the shopping list in the admin.")
            % {"item": item, "level": alert.level, "unit": unit, "threshold": alert.threshold},
            from_email=django_settings.DEFAULT_FROM_EMAIL, recipient_list=recipients,
        )
    StockAlert.objects.filter(pk=alert.pk).update(notified_at=timezone.now())


def stock_alert_check(*, filament: Filament | None = None, product: Product | None = None) -> StockAlert | None:
    """Raise an alert when stock is below the reorder level and none is open; clear it once above.

    So a filament that keeps falling below its level raises one alert (and one e-mail)
    per crossing, not one per print.
    """
    if filament is not None:
        threshold = filament.reorder_threshold_g
        level = selectors.filament_stock_g(filament=filament)
        lookup = {"filament": filament, "item_type": AlertItem.FILAMENT}
    else:
        threshold = Decimal(product.reorder_threshold_units)
        level = selectors.product_units(product=product)
        lookup = {"product": product, "item_type": AlertItem.PRODUCT}
    level = Decimal(str(level)).quantize(GRAM_QUANTUM)  # compared exactly, recorded rounded for people
    open_alert = StockAlert.objects.filter(cleared_at__isnull=True, **lookup).first()
    if threshold > 0 and level < threshold:
        if open_alert is not None:
            return open_alert
        try:
            with transaction.atomic():
                alert = StockAlert.objects.create(level=grams_display(level), threshold=threshold, **lookup)
        except IntegrityError:
            return StockAlert.objects.filter(cleared_at__isnull=True, **lookup).first()
        transaction.on_commit(lambda: _notify(alert.pk))
        return alert
    if open_alert is not None:
        StockAlert.objects.filter(pk=open_alert.pk).update(cleared_at=timezone.now())
    return None
