"""Every write to the model library."""

import hashlib
import logging
from collections.abc import Iterable
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from typing import BinaryIO

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from catalog import search as catalog_search
from catalog.choices import ALLOWED_TRANSITIONS, ExtractionStatus, FileFormat
from catalog.models import (
    Category,
    Model,
    ModelImage,
    ModelVariant,
    SlicedFile,
    SlicedFileThumbnail,
    Tag,
    VariantVersion,
)
from fablab.exceptions import Conflict, InvalidInput, PermissionDenied
from fablab.files import delete_stored, format_mib
from fablab.states import check_transition
from fablab.validation import validate

logger = logging.getLogger(__name__)

# Names the catalog accepts; the content decides the format, the name must agree.
ACCEPTED_SUFFIXES = {
    ".gcode.3mf": {FileFormat.THREE_MF},
    ".3mf": {FileFormat.THREE_MF},
    ".bgcode": {FileFormat.BGCODE},
    ".gcode": {FileFormat.GCODE},
    ".ufp": {FileFormat.UFP},
    ".stl": {FileFormat.STL},
}
_CHUNK = 1024 * 1024


# --- Models, variants, tags ---------------------------------------------------------------


def _words(text: str) -> str:
    return " ".join((text or "").split())


def tags_get_or_create(*, names: Iterable[str]) -> list[Tag]:
    tags = []
    for raw in names:
        name = _words(raw)[:60]
        if not name:
            continue
        tag = Tag.objects.filter(name__iexact=name).first() or Tag.objects.create(name=name)
        tags.append(tag)
    return tags


def _refresh_search_of(variants) -> None:
    """Rebuild the search text of `variants` (a ModelVariant queryset) after a name they carry changed."""
    for variant in variants.select_related("model__category", "current_version__sliced_file"):
        variant_refresh_search(variant=variant)


def _save_named(instance: Category | Tag, *, name: str, variants=None):
    """Save a category or tag under `name`; `variants` that carry the old name get their search text rebuilt."""
    instance.name = _words(name)
    validate(instance)
    instance.save()
    if variants is not None:
        _refresh_search_of(variants)
    return instance


def category_create(*, name: str) -> Category:
    return _save_named(Category(), name=name)


@transaction.atomic
def category_update(*, category: Category, name: str) -> Category:
    """Rename a category; its models' variants are found by the new name."""
    return _save_named(category, name=name, variants=ModelVariant.objects.filter(model__category=category))


def tag_create(*, name: str) -> Tag:
    return _save_named(Tag(), name=name)


@transaction.atomic
def tag_update(*, tag: Tag, name: str) -> Tag:
    """Rename a tag; the variants of its models are found by the new name."""
    return _save_named(tag, name=name, variants=ModelVariant.objects.filter(model__tags=tag))


def _save_model(model: Model, *, tags: Iterable[str]) -> None:
    if model.designer is not None and model.designer.kind != "partner":
        raise InvalidInput(_("A designer must be a partner organization."))
    validate(model)
    model.save()
    model.tags.set(tags_get_or_create(names=tags))


@transaction.atomic
def model_create(
    *, name: str, designer=None, category: Category | None = None, tags: Iterable[str] = (),
    description: str = "", licence: str | None = None, shared_with_partners: bool = False, created_by=None,
) -> Model:
    model = Model(
        name=(name or "").strip(), designer=designer, category=category, description=description,
        shared_with_partners=shared_with_partners, created_by=created_by,
    )
    if licence:
        model.licence = licence
    _save_model(model, tags=tags)
    return model


@transaction.atomic
def model_update(
    *, model: Model, name: str, designer, category: Category | None, tags: Iterable[str], description: str,
    licence: str, shared_with_partners: bool,
) -> Model:
    """Change a model: every field is given. Its variants' search text follows the new name, tags and category."""
    model.name = (name or "").strip()
    model.designer = designer
    model.category = category
    model.description = description
    model.licence = licence
    model.shared_with_partners = shared_with_partners
    _save_model(model, tags=tags)
    _refresh_search_of(model.variants.all())
    return model


def variant_sku_check(*, sku: str, variant: ModelVariant | None = None) -> str:
    """The SKU as stored, or Conflict when another variant has it in any letter case."""
    sku = (sku or "").strip()
    others = ModelVariant.objects.filter(sku__iexact=sku)
    if variant is not None and variant.pk is not None:
        others = others.exclude(pk=variant.pk)
    if others.exists():
        raise Conflict(_("SKU %(sku)s is already used.") % {"sku": sku})
    return sku


def _save_variant(variant: ModelVariant, *, name: str, sku: str, colour: str, material: str, size: str) -> None:
    variant.sku = variant_sku_check(sku=sku, variant=variant)
    variant.name = (name or "").strip()
    variant.colour = (colour or "").upper()
    variant.material = (material or "").strip()
    variant.size = (size or "").strip()
    validate(variant)
    variant.save()
    variant_refresh_search(variant=variant)


@transaction.atomic
def variant_create(*, model: Model, name: str, sku: str, colour: str = "", material: str = "",
                   size: str = "") -> ModelVariant:
    variant = ModelVariant(model=model)
    _save_variant(variant, name=name, sku=sku, colour=colour, material=material, size=size)
    return variant


@transaction.atomic
def variant_update(*, variant: ModelVariant, model: Model, name: str, sku: str, colour: str, material: str,
                   size: str) -> ModelVariant:
    """Change a variant: every field is given. Its search text is rebuilt."""
    variant.model = model
    _save_variant(variant, name=name, sku=sku, colour=colour, material=material, size=size)
    return variant


@transaction.atomic
def model_image_create(*, model: Model, image, caption: str = "", position: int = 0) -> ModelImage:
    row = ModelImage(model=model)
    _save_model_image(row, image=image, caption=caption, position=position)
    return row


@transaction.atomic
def model_image_update(*, model_image: ModelImage, image, caption: str, position: int) -> ModelImage:
    _save_model_image(model_image, image=image, caption=caption, position=position)
    return model_image


def _save_model_image(row: ModelImage, *, image, caption: str, position: int) -> None:
    row.image = image
    row.caption = (caption or "").strip()
    row.position = position
    validate(row)
    row.save()


def version_update(*, version: VariantVersion, change_note: str) -> VariantVersion:
    version.change_note = (change_note or "").strip()
    validate(version)
    version.save(update_fields=["change_note", "updated_at"])
    return version


def variant_refresh_search(*, variant: ModelVariant) -> None:
    """Copy the current version's key metadata onto the variant and rebuild its search text."""
    meta = {}
    if variant.current_version_id:
        meta = variant.current_version.sliced_file.effective_metadata
    types = [t for t in (meta.get("filament_type") or []) if t]
    colours = [c.upper() for c in (meta.get("filament_colour") or []) if c]
    nozzles = [n for n in (meta.get("nozzle_diameter") or []) if n is not None]
    variant.printer_model = (meta.get("printer_model") or "")[:100]
    variant.filament_types = ",".join(dict.fromkeys(types))[:200]
    variant.filament_colours = ",".join(dict.fromkeys(colours))[:200]
    variant.nozzle_diameter = _decimal(nozzles[0] if nozzles else None, places=2)
    variant.layer_height = _decimal(meta.get("layer_height"), places=3)
    time_s = meta.get("estimated_time_s")
    variant.estimated_time_s = int(time_s) if isinstance(time_s, int | float) and time_s >= 0 else None
    variant.filament_used_g = _decimal(meta.get("filament_used_g_total"), places=2)
    model = variant.model
    parts = [
        model.name, variant.name, variant.sku, variant.material, variant.size, model.description,
        " ".join(model.tags.values_list("name", flat=True)), model.category.name if model.category else "",
        variant.printer_model, " ".join(types), meta.get("slicer") or "",
    ]
    variant.search_document = " ".join(p for p in parts if p)
    variant.search_title = f"{model.name} {variant.name} {variant.sku}"[:500]
    catalog_search.remember_terms(variant.search_document)
    variant.save(update_fields=[
        "printer_model", "filament_types", "filament_colours", "nozzle_diameter", "layer_height",
        "estimated_time_s", "filament_used_g", "search_document", "search_title", "updated_at",
    ])
    if catalog_search.is_postgres():
        ModelVariant.objects.filter(pk=variant.pk).update(search_vector=catalog_search.vector_for({
            "A": f"{model.name} {variant.name} {variant.sku}",
            "B": " ".join(parts[3:5] + parts[6:]),
            "C": model.description,
        }))


def _decimal(value, *, places: int) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return round(Decimal(str(value)), places)
    except (InvalidOperation, ValueError):
        return None


# --- Sliced files -------------------------------------------------------------------------


def _suffix(name: str) -> str | None:
    lowered = (name or "").lower()
    for suffix in ACCEPTED_SUFFIXES:  # longest first: ".gcode.3mf" before ".3mf"
        if lowered.endswith(suffix):
            return suffix
    return None


def sliced_file_suffix(*, name: str) -> str | None:
    """The suffix by which the catalog takes a file of this name (".gcode.3mf", ".stl", ...), or None.

    The same rule as the upload's: other apps ask it before fetching a file for the catalog.
    """
    return _suffix(name)


def _sha256(upload: BinaryIO) -> str:
    digest = hashlib.sha256()
    upload.seek(0)
    for chunk in iter(lambda: upload.read(_CHUNK), b""):
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()


@contextmanager
def _delete_files_on_error(stored: list):
    """Files written to storage inside this block are removed again if the block fails."""
    try:
        yield
    except BaseException:
        for field_file in stored:
            try:
                delete_stored(field_file.storage, field_file.name)
            except Exception:  # the original error matters more than a failed clean-up
                logger.exception("could not remove %s after a failed upload", field_file.name)
        raise


def _read(source, *, name: str):
    from catalog.slicer import read_sliced_file

    return read_sliced_file(source, name=name)


def _transition(sliced_file: SlicedFile, status: str) -> None:
    check_transition(ALLOWED_TRANSITIONS, sliced_file.status, status, what=_("The metadata status"))
    sliced_file.status = status


def _add_thumbnail(sliced_file: SlicedFile, *, png: bytes, width: int, height: int, source_format: str,
                   plate_index: int | None, role: str, position: int, stored: list) -> None:
    row = SlicedFileThumbnail(sliced_file=sliced_file, width=width, height=height, source_format=source_format,
                              plate_index=plate_index, role=role)
    row.image.save(f"{position}-{role or 'image'}-{width}x{height}.png", ContentFile(png), save=False)
    stored.append(row.image)
    row.save()


def _counting_stored_thumbnails(info) -> tuple[dict, list]:
    """The reader's fields and plates, with `thumbnail_count` saying how many of the file's previews are stored.

    The reader counts every preview block the file embeds; one that is cut off or damaged is listed
    in `extra["skipped_thumbnails"]` and not stored, so the catalog does not count it either.
    """
    fields, plates = dict(info.fields), info.to_json().get("plates", [])
    skipped = len(info.extra.get("skipped_thumbnails") or [])
    if skipped and isinstance(fields.get("thumbnail_count"), int):
        fields["thumbnail_count"] = max(fields["thumbnail_count"] - skipped, 0)
        if len(plates) == 1 and "thumbnail_count" in plates[0]["fields"]:  # a single G-code's one plate
            plates[0]["fields"]["thumbnail_count"] = fields["thumbnail_count"]
    return fields, plates


def _apply_info(sliced_file: SlicedFile, info, stored: list, *, source=None) -> None:
    """Store what the reader found on the file row and save its thumbnails as PNG.

    A mesh file without pictures of its own (STL, a 3MF project) gets a rendered preview.
    """
    sliced_file.format = info.format
    sliced_file.sliced = info.sliced
    sliced_file.metadata, sliced_file.plates = _counting_stored_thumbnails(info)
    sliced_file.config = info.config
    sliced_file.extra = info.extra
    sliced_file.warnings = list(info.warnings)
    sliced_file.layers = info.layer_tables()
    sliced_file.error = ""
    sliced_file.extracted_at = timezone.now()
    sliced_file.thumbnails.all().delete()
    for position, thumbnail in enumerate(info.thumbnails):
        _add_thumbnail(
            sliced_file, png=thumbnail.png(), width=thumbnail.width, height=thumbnail.height,
            source_format=thumbnail.format, plate_index=getattr(thumbnail, "plate_index", None),
            role=getattr(thumbnail, "role", "") or "", position=position, stored=stored,
        )
    if not info.thumbnails and not info.sliced and info.format in (FileFormat.STL, FileFormat.THREE_MF) and source:
        from catalog.preview import PREVIEW_SIZE, render_file

        try:
            png = render_file(source, file_type=info.format)
        except Exception as exc:  # a picture is a nicety: the upload itself stays valid
            logger.warning("no preview for %s: %s", sliced_file.original_name, exc)
            sliced_file.warnings = [*sliced_file.warnings, _("No preview could be drawn: %(reason)s") % {
                "reason": exc}]
        else:
            _add_thumbnail(sliced_file, png=png, width=PREVIEW_SIZE, height=PREVIEW_SIZE, source_format="PNG",
                           plate_index=None, role="preview", position=0, stored=stored)


def _detect_format(upload: BinaryIO, *, name: str) -> str:
    from catalog.slicer import detect_format

    upload.seek(0)
    try:
        return detect_format(upload, name=name)
    finally:
        upload.seek(0)


def _acceptable_name(upload: File) -> tuple[str, str]:
    """The upload's file name and suffix; InvalidInput when it is empty, too large or named as no accepted file."""
    name = (getattr(upload, "name", "") or "").rsplit("/", 1)[-1].rsplit("\\", 1)[-1][:255]
    size = upload.size
    limit = settings.CATALOG_MAX_UPLOAD_BYTES
    if size == 0:
        raise InvalidInput(_("%(name)s is empty.") % {"name": name} if name else _("The file is empty."))
    if size > limit:
        raise InvalidInput(_("%(name)s is %(size)s; the limit is %(limit)s.")
                           % {"name": name, "size": format_mib(size, up=True), "limit": format_mib(limit)})
    suffix = _suffix(name)
    if suffix is None:
        raise InvalidInput(_("%(name)s is not a file the catalog accepts: use .gcode, .bgcode, .3mf, "
                             ".gcode.3mf, .ufp or .stl.") % {"name": name})
    return name, suffix


def sliced_file_check(*, upload: File) -> str:
    """Refuse (InvalidInput) a file the catalog would not take, without storing anything; else its format.

    The same checks as an upload's (size, name, content matching the name): other apps ask it
    before they hold a file for the catalog that is filed into a variant later.
    """
    name, suffix = _acceptable_name(upload)
    detected = _detect_format(upload, name=name)
    if detected not in ACCEPTED_SUFFIXES[suffix]:
        raise InvalidInput(_("%(name)s has the extension %(named)s but contains %(actual)s.")
                           % {"name": name, "named": suffix, "actual": FileFormat(detected).label})
    if upload.size <= settings.CATALOG_SYNC_READ_BYTES:
        _read(upload, name=name)  # damaged content is refused now, not when the file is filed
        upload.seek(0)
    return detected


@transaction.atomic
def variant_upload_sliced_file(*, variant: ModelVariant, upload: File, change_note: str = "",
                               uploaded_by=None) -> VariantVersion:
    """Add a sliced file to a variant as its next version and make it the current one.

    The file is refused (nothing stored, no row written) when it is too large, has a
    name the catalog does not take, its content is not the format its name says, or
    it cannot be read. The same bytes uploaded again for the same owner (the model's
    designer, or the lab) reuse the stored file; uploading the file that is already the
    variant's current version is refused.
    """
    name, suffix = _acceptable_name(upload)
    size = upload.size

    locked = ModelVariant.objects.select_for_update().select_related("model").get(pk=variant.pk)
    sha256 = _sha256(upload)
    owner = locked.model.storage_owner
    # Only the owner's own copy is reused: another organization's row has its name and metadata.
    sliced_file = SlicedFile.objects.filter(storage_owner=owner, sha256=sha256).first()
    stored: list = []
    with _delete_files_on_error(stored):
        if sliced_file is None:
            detected = _detect_format(upload, name=name)
            if detected not in ACCEPTED_SUFFIXES[suffix]:
                raise InvalidInput(
                    _("%(name)s has the extension %(named)s but contains %(actual)s.")
                    % {"name": name, "named": suffix, "actual": FileFormat(detected).label}
                )
            sliced_file = SlicedFile(
                sha256=sha256, size_bytes=size, format=detected, original_name=name,
                storage_owner=owner, uploaded_by=uploaded_by,
            )
            read_now = size <= settings.CATALOG_SYNC_READ_BYTES
            info = _read(upload, name=name) if read_now else None
            sliced_file.file.save(name, upload, save=False)
            stored.append(sliced_file.file)
            if info is not None:
                sliced_file.status = ExtractionStatus.DONE
                sliced_file.save()
                _apply_info(sliced_file, info, stored, source=upload)
            sliced_file.save()
            if not read_now:
                transaction.on_commit(lambda: _enqueue_extraction(sliced_file.pk))
        elif locked.current_version and locked.current_version.sliced_file_id == sliced_file.pk:
            raise Conflict(
                _("%(name)s is identical to version %(number)s, the current version of this variant.")
                % {"name": name, "number": locked.current_version.number}
            )

        last = locked.versions.order_by("-number").values_list("number", flat=True).first() or 0
        version = VariantVersion(variant=locked, number=last + 1, sliced_file=sliced_file,
                                 change_note=change_note.strip(), created_by=uploaded_by)
        validate(version)
        version.save()
        locked.current_version = version
        locked.save(update_fields=["current_version", "updated_at"])
        variant_refresh_search(variant=locked)
    return version


def _require_designer(variant: ModelVariant, organization, *, refusal: str) -> None:
    """Partners change only what they designed; models shared with them are read-only."""
    if variant.model.designer_id != organization.pk:
        raise PermissionDenied(refusal)


def variant_upload_by_designer(*, variant: ModelVariant, organization, upload: File,
                               change_note: str = "") -> VariantVersion:
    """A partner's upload: only the model's designer adds versions; shared models are read-only to others."""
    _require_designer(variant, organization,
                      refusal=_("This model is shared with you read-only; only its designer can add versions."))
    return variant_upload_sliced_file(variant=variant, upload=upload, change_note=change_note)


def _enqueue_extraction(sliced_file_id: int) -> None:
    from django_q.tasks import async_task

    async_task("catalog.tasks.extract_sliced_file", sliced_file_id, task_name=f"read sliced file {sliced_file_id}")


def sliced_file_extract(*, sliced_file: SlicedFile) -> SlicedFile:
    """Read a stored file's metadata (the background path for large files). Safe to run twice."""
    from catalog.slicer import SlicerFileError

    with transaction.atomic():
        sliced_file = SlicedFile.objects.select_for_update().get(pk=sliced_file.pk)
        if sliced_file.status == ExtractionStatus.DONE:
            return sliced_file
        if sliced_file.status == ExtractionStatus.FAILED:
            _transition(sliced_file, ExtractionStatus.PENDING)
        _transition(sliced_file, ExtractionStatus.RUNNING)
        sliced_file.save(update_fields=["status", "updated_at"])

    stored: list = []
    try:
        with sliced_file.file.open("rb") as handle, transaction.atomic(), _delete_files_on_error(stored):
            info = _read(handle, name=sliced_file.original_name)
            _apply_info(sliced_file, info, stored, source=handle)
            _transition(sliced_file, ExtractionStatus.DONE)
            sliced_file.save()
            for version in sliced_file.versions.select_related("variant"):
                if version.variant.current_version_id == version.pk:
                    variant_refresh_search(variant=version.variant)
    except SlicerFileError as exc:
        sliced_file.error = exc.message
        _transition(sliced_file, ExtractionStatus.FAILED)
        sliced_file.save(update_fields=["error", "status", "updated_at"])
    return sliced_file


def sliced_file_reread(*, sliced_file: SlicedFile) -> SlicedFile:
    """Read a file's metadata again, e.g. after the reader learnt a new slicer."""
    with transaction.atomic():
        locked = SlicedFile.objects.select_for_update().get(pk=sliced_file.pk)
        if locked.status in (ExtractionStatus.DONE, ExtractionStatus.FAILED):
            _transition(locked, ExtractionStatus.PENDING)
            locked.save(update_fields=["status", "updated_at"])
    return sliced_file_extract(sliced_file=locked)


def sliced_file_correct(*, sliced_file: SlicedFile, corrections: dict, by=None) -> SlicedFile:
    """Record people's corrections of extracted values; the extracted values stay as read."""
    from catalog.slicer import SCHEMA_FIELDS

    unknown = sorted(set(corrections) - set(SCHEMA_FIELDS))
    if unknown:
        raise InvalidInput(_("Unknown metadata fields: %(fields)s.") % {"fields": ", ".join(unknown)})
    with transaction.atomic():
        sliced_file.corrections = {k: v for k, v in {**sliced_file.corrections, **corrections}.items()
                                   if v is not None}
        sliced_file.save(update_fields=["corrections", "updated_at"])
        for version in sliced_file.versions.select_related("variant"):
            if version.variant.current_version_id == version.pk:
                variant_refresh_search(variant=version.variant)
    return sliced_file


@transaction.atomic
def variant_set_current_version(*, variant: ModelVariant, version: VariantVersion) -> ModelVariant:
    """Make `version` (e.g. an older one) the variant's current version; its metadata follows."""
    if version.variant_id != variant.pk:
        raise InvalidInput(_("Version %(n)s belongs to another variant.") % {"n": version.number})
    variant.current_version = version
    variant.save(update_fields=["current_version", "updated_at"])
    variant_refresh_search(variant=variant)
    return variant


def variant_set_current_version_by_designer(*, variant: ModelVariant, organization,
                                            version: VariantVersion) -> ModelVariant:
    """A partner's choice of current version: only the model's designer may make it."""
    _require_designer(variant, organization, refusal=_(
        "This model is shared with you read-only; only its designer can choose its current version."))
    return variant_set_current_version(variant=variant, version=version)


def sliced_file_refresh_layers(*, sliced_file: SlicedFile) -> SlicedFile:
    """Compute and store the extrusion per layer of a stored file, leaving its other metadata as read.

    For files read before the catalog kept layers. A file that cannot be read (any more) keeps
    an empty table; its other fields and status are untouched. Safe to run twice.
    """
    from catalog.slicer import SlicerFileError

    try:
        with sliced_file.file.open("rb") as handle:
            info = _read(handle, name=sliced_file.original_name)
    except (SlicerFileError, OSError) as exc:
        logger.warning("no layers for %s: %s", sliced_file.original_name, exc)
        return sliced_file
    with transaction.atomic():
        locked = SlicedFile.objects.select_for_update().get(pk=sliced_file.pk)
        locked.layers = info.layer_tables()
        locked.save(update_fields=["layers", "updated_at"])
    sliced_file.layers = locked.layers
    return sliced_file
