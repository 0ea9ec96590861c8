"""Every non-trivial read of the model library."""

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Q, QuerySet
from django.utils.translation import gettext as _

from catalog import search as catalog_search
from catalog.models import Model, ModelVariant, SlicedFile, VariantVersion
from fablab.exceptions import InvalidInput, NotFound


@dataclass
class VariantFilter:
    q: str = ""
    material: str = ""
    colour: str = ""
    printer_model: str = ""
    nozzle_diameter: Decimal | None = None
    layer_height: Decimal | None = None
    min_time_s: int | None = None
    max_time_s: int | None = None
    designer_id: int | None = None
    tags: list[str] = field(default_factory=list)
    model_id: int | None = None


def variant_list(*, filters: VariantFilter | None = None, partner=None) -> QuerySet[ModelVariant]:
    """Variants matching `filters`, ranked when searching. `partner` limits to what it may see."""
    filters = filters or VariantFilter()
    qs = ModelVariant.objects.select_related("model", "model__designer", "model__category", "current_version")
    if partner is not None:
        qs = qs.filter(Q(model__designer=partner) | Q(model__shared_with_partners=True))
    if filters.model_id is not None:
        qs = qs.filter(model_id=filters.model_id)
    if filters.material:
        material = filters.material.strip()
        qs = qs.filter(Q(material__iexact=material) | Q(filament_types__iregex=rf"(^|,){_re(material)}(,|$)"))
    if filters.colour:
        colour = filters.colour.strip().upper()
        qs = qs.filter(Q(colour__iexact=colour) | Q(filament_colours__icontains=colour))
    if filters.printer_model:
        qs = qs.filter(printer_model__iexact=filters.printer_model.strip())
    if filters.nozzle_diameter is not None:
        qs = qs.filter(nozzle_diameter=filters.nozzle_diameter)
    if filters.layer_height is not None:
        qs = qs.filter(layer_height=filters.layer_height)
    if filters.min_time_s is not None:
        qs = qs.filter(estimated_time_s__gte=filters.min_time_s)
    if filters.max_time_s is not None:
        qs = qs.filter(estimated_time_s__lte=filters.max_time_s)
    if filters.designer_id is not None:
        qs = qs.filter(model__designer_id=filters.designer_id)
    for tag in filters.tags:
        qs = qs.filter(model__tags__name__iexact=tag.strip())
    if filters.q:
        return catalog_search.search(qs, filters.q)
    return qs.order_by("search_title")


def _re(text: str) -> str:
    import re

    return re.escape(text)


def variant_get(*, variant_id: int, partner=None) -> ModelVariant:
    variant = variant_list(partner=partner).filter(pk=variant_id).first()
    if variant is None:
        raise NotFound(_("No variant with id %(id)s.") % {"id": variant_id})
    return variant


def model_list(*, partner=None, q: str = "") -> QuerySet[Model]:
    qs = Model.objects.select_related("designer", "category").prefetch_related("tags").annotate(
        variant_count=Count("variants", distinct=True)
    )
    if partner is not None:
        qs = qs.visible_to_partner(partner)
    if q:
        variant_ids = catalog_search.search(ModelVariant.objects.all(), q).values("model_id")
        qs = qs.filter(Q(pk__in=variant_ids) | Q(name__icontains=q))
    return qs.order_by("name")


def model_get(*, model_id: int, partner=None) -> Model:
    model = model_list(partner=partner).filter(pk=model_id).first()
    if model is None:
        raise NotFound(_("No model with id %(id)s.") % {"id": model_id})
    return model


def version_list(*, variant: ModelVariant) -> QuerySet[VariantVersion]:
    return variant.versions.select_related("sliced_file", "created_by").order_by("-number")


def version_get(*, variant: ModelVariant, number: int) -> VariantVersion:
    version = version_list(variant=variant).filter(number=number).first()
    if version is None:
        raise NotFound(_("Variant %(sku)s has no version %(n)s.") % {"sku": variant.sku, "n": number})
    return version


def version_get_by_id(*, version_id: int, partner=None) -> VariantVersion:
    """A version by its id (as the API's version objects give it). `partner`: only one it may see."""
    qs = VariantVersion.objects.select_related("variant__model", "sliced_file")
    if partner is not None:
        qs = qs.filter(Q(variant__model__designer=partner) | Q(variant__model__shared_with_partners=True))
    version = qs.filter(pk=version_id).first()
    if version is None:
        raise NotFound(_("No catalog version with id %(id)s.") % {"id": version_id})
    return version


def catalog_kpis() -> list[dict]:
    return [
        {"label": _("Models"), "value": Model.objects.count()},
        {"label": _("Variants"), "value": ModelVariant.objects.count()},
        {"label": _("Sliced files"), "value": SlicedFile.objects.count()},
        {"label": _("Files being read"), "value": SlicedFile.objects.filter(status__in=["pending", "running"]).count()},
    ]


@dataclass
class DiffRow:
    key: str
    before: object
    after: object

    @property
    def changed(self) -> bool:
        return self.before != self.after


def version_diff(*, before: VariantVersion, after: VariantVersion, changed_only: bool = True) -> dict:
    """Settings and key metadata of two versions side by side."""

    def rows(a: dict, b: dict) -> list[DiffRow]:
        result = [DiffRow(key, a.get(key), b.get(key)) for key in sorted(set(a) | set(b))]
        return [row for row in result if row.changed] if changed_only else result

    old, new = before.sliced_file, after.sliced_file
    return {
        "metadata": rows(old.effective_metadata, new.effective_metadata),
        "config": rows(old.config, new.config),
        "config_total": len(set(old.config) | set(new.config)),
    }


# --- extrusion per layer -------------------------------------------------------------------


def sliced_file_layer_table(*, sliced_file: SlicedFile, plate: int = 1) -> dict | None:
    """The stored extrusion table of one plate (catalog.slicer.extrusion.layer_table), None without layers."""
    table = (sliced_file.layers or {}).get(str(plate))
    return table if isinstance(table, dict) and table.get("layer_count") else None


def sliced_file_layer_count(*, sliced_file: SlicedFile, plate: int = 1) -> int:
    """How many layers the plate's G-code prints; 0 when the file has no layers (not sliced, no moves)."""
    table = sliced_file_layer_table(sliced_file=sliced_file, plate=plate)
    return int(table["layer_count"]) if table else 0


def sliced_file_extruded_through_layer(*, sliced_file: SlicedFile, plate: int = 1, layer: int) -> list[float]:
    """Grams of filament per slot extruded by layers 1..`layer` of a plate (slot 0 first).

    Layer 0 gives zeros; a layer beyond the last gives the plate's totals. What the start
    G-code purges counts towards layer 1, the end G-code towards the last layer. A file
    without layers raises NotFound: the caller falls back to its own estimate.
    """
    from catalog.slicer.extrusion import table_grams

    if isinstance(layer, bool) or not isinstance(layer, int) or layer < 0:
        raise InvalidInput(_("A layer number is a whole number from 0 up; got %(layer)s.") % {"layer": layer})
    table = sliced_file_layer_table(sliced_file=sliced_file, plate=plate)
    if table is None:
        raise NotFound(_("%(name)s has no extrusion per layer for plate %(plate)s.")
                       % {"name": sliced_file.original_name, "plate": plate})
    return table_grams(table, layer=layer)


def sliced_file_extruded_at(*, sliced_file: SlicedFile, plate: int = 1, layer: int,
                            progress_percent: float | None = None,
                            remaining_seconds: int | None = None) -> list[float]:
    """Grams per slot (slot 0 first) a plate has extruded when the printer stopped on layer `layer`.

    Layers 1..layer-1 are booked in full, and of layer `layer` the part the printer had done: its
    progress (`progress_percent`, as M73 or the printer reports it, or else `remaining_seconds`
    against the plate's estimated print time) is placed on the plate's cumulative time per layer,
    and the grams of the layer follow the points inside it that the table keeps (its knots).
    Without progress, or for a file read before times per layer were kept, the whole layer in
    progress is booked (as sliced_file_extruded_through_layer). A file without layers raises NotFound.
    """
    from catalog.slicer.extrusion import table_grams_at

    if isinstance(layer, bool) or not isinstance(layer, int) or layer < 0:
        raise InvalidInput(_("A layer number is a whole number from 0 up; got %(layer)s.") % {"layer": layer})
    if progress_percent is not None:
        if isinstance(progress_percent, bool) or not isinstance(progress_percent, int | float) \
                or not 0 <= progress_percent <= 100:
            raise InvalidInput(_("Progress is a percentage from 0 to 100; got %(value)s.")
                               % {"value": progress_percent})
    elif remaining_seconds is not None:
        if isinstance(remaining_seconds, bool) or not isinstance(remaining_seconds, int) or remaining_seconds < 0:
            raise InvalidInput(_("Remaining time is a whole number of seconds from 0 up; got %(value)s.")
                               % {"value": remaining_seconds})
    table = sliced_file_layer_table(sliced_file=sliced_file, plate=plate)
    if table is None:
        raise NotFound(_("%(name)s has no extrusion per layer for plate %(plate)s.")
                       % {"name": sliced_file.original_name, "plate": plate})
    if progress_percent is not None:
        return table_grams_at(table, layer=layer, percent=float(progress_percent))
    if remaining_seconds is not None:
        estimate = _plate_estimated_seconds(sliced_file, plate) or (table.get("seconds") or [0])[-1]
        if estimate and estimate > 0:
            done = max(0.0, 1.0 - remaining_seconds / estimate)
            return table_grams_at(table, layer=layer, percent=100 * done, stepped=False)
    return table_grams_at(table, layer=layer)


def _plate_estimated_seconds(sliced_file: SlicedFile, plate: int) -> float | None:
    for entry in sliced_file.plates or []:
        if isinstance(entry, dict) and entry.get("index") == plate:
            value = (entry.get("fields") or {}).get("estimated_time_s")
            if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                return float(value)
    value = (sliced_file.metadata or {}).get("estimated_time_s")
    if plate == 1 and isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None
