"""The model library: models, their variants, and the versions of each variant's sliced file.

Model → ModelVariant → VariantVersion → SlicedFile. A sliced file is stored once per
owner and content (storage_owner, sha256) and can back versions of several of that owner's
variants; another owner's identical bytes get a row, a name and a copy of their own. The variant carries a
copy of its current version's key metadata, so that search and filters never join
through the version history.
"""

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from catalog.choices import ExtractionStatus, FileFormat, Licence
from fablab.models import TimeStampedModel

HEX_COLOUR = RegexValidator(r"^#[0-9A-Fa-f]{6}$", _("A colour is written as #RRGGBB."))


def sliced_file_path(instance: "SlicedFile", filename: str) -> str:
    return f"catalog/{instance.storage_owner}/sliced/{instance.sha256[:2]}/{instance.sha256}/{filename}"


def thumbnail_path(instance: "SlicedFileThumbnail", filename: str) -> str:
    sliced = instance.sliced_file
    return f"catalog/{sliced.storage_owner}/thumbnails/{sliced.sha256}/{filename}"


def model_image_path(instance: "ModelImage", filename: str) -> str:
    return f"catalog/{instance.model.storage_owner}/images/{instance.model_id}/{filename}"


class Category(TimeStampedModel):
    name = models.CharField(_("name"), max_length=100, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("category")
        verbose_name_plural = _("categories")

    def __str__(self) -> str:
        return self.name


class Tag(TimeStampedModel):
    name = models.CharField(_("name"), max_length=60)

    class Meta:
        ordering = ["name"]
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        constraints = [models.UniqueConstraint(Lower("name"), name="catalog_tag_unique_name_ci")]

    def __str__(self) -> str:
        return self.name


class ModelQuerySet(models.QuerySet):
    def visible_to_partner(self, organization) -> "ModelQuerySet":
        """What a partner may see: its own designs and what staff shared with partners."""
        return self.filter(models.Q(designer=organization) | models.Q(shared_with_partners=True))


class Model(TimeStampedModel):
    """A printable design, e.g. 'Desk organiser'. Its variants are what gets printed and sold."""

    name = models.CharField(_("name"), max_length=200)
    designer = models.ForeignKey(
        "fablab.Organization", verbose_name=_("designer"), null=True, blank=True, on_delete=models.PROTECT,
        related_name="designed_models", limit_choices_to={"kind": "partner"},
        help_text=_("The partner who designed it; empty for the lab's own designs."),
    )
    category = models.ForeignKey(
        Category, verbose_name=_("category"), null=True, blank=True, on_delete=models.SET_NULL, related_name="models"
    )
    tags = models.ManyToManyField(Tag, verbose_name=_("tags"), blank=True, related_name="models")
    description = models.TextField(_("description"), blank=True)
    licence = models.CharField(_("licence"), max_length=20, choices=Licence.choices, default=Licence.PROPRIETARY)
    shared_with_partners = models.BooleanField(
        _("shared with partners"), default=False, help_text=_("Every partner can see it through the API.")
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("created by"), null=True, blank=True,
        on_delete=models.SET_NULL, related_name="+",
    )

    objects = ModelQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = _("model")
        verbose_name_plural = _("models")

    def __str__(self) -> str:
        return self.name

    @property
    def storage_owner(self) -> str:
        return f"org-{self.designer_id}" if self.designer_id else "lab"


class ModelImage(TimeStampedModel):
    model = models.ForeignKey(Model, verbose_name=_("model"), on_delete=models.CASCADE, related_name="images")
    image = models.ImageField(_("image"), upload_to=model_image_path, width_field="width", height_field="height")
    width = models.PositiveIntegerField(null=True, editable=False)
    height = models.PositiveIntegerField(null=True, editable=False)
    caption = models.CharField(_("caption"), max_length=200, blank=True)
    position = models.PositiveIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["model", "position", "id"]
        verbose_name = _("model image")
        verbose_name_plural = _("model images")

    def __str__(self) -> str:
        return self.caption or self.image.name


class SlicedFile(TimeStampedModel):
    """One stored file of one owner, identified by its content. The owner uploading the same bytes again reuses it.

    Owners never share a row: a row carries its uploader's file name and its metadata, and another
    organization's upload of the same bytes must show neither (nor reveal that the bytes exist).
    """

    file = models.FileField(_("file"), upload_to=sliced_file_path, max_length=400)
    sha256 = models.CharField(_("SHA-256"), max_length=64, editable=False)
    size_bytes = models.BigIntegerField(_("size (bytes)"), editable=False)
    format = models.CharField(_("format"), max_length=10, choices=FileFormat.choices)
    original_name = models.CharField(_("original name"), max_length=255)
    storage_owner = models.CharField(max_length=40, editable=False, default="lab")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("uploaded by"), null=True, blank=True,
        on_delete=models.SET_NULL, related_name="+",
    )
    # What the reader found, kept as read; corrections by people are kept apart.
    status = models.CharField(
        _("metadata"), max_length=10, choices=ExtractionStatus.choices, default=ExtractionStatus.PENDING,
        db_index=True,
    )
    error = models.TextField(_("error"), blank=True)
    sliced = models.BooleanField(_("sliced"), null=True)
    metadata = models.JSONField(_("extracted metadata"), default=dict, blank=True)
    plates = models.JSONField(_("plates"), default=list, blank=True)
    config = models.JSONField(_("slicer configuration"), default=dict, blank=True)
    extra = models.JSONField(_("other extracted values"), default=dict, blank=True)
    warnings = models.JSONField(_("warnings"), default=list, blank=True)
    # Cumulative extrusion per layer and filament slot, from the moves of each plate's G-code:
    # {"<plate>": {"layer_count", "slot_count", "z": [...], "slots": [used slot numbers],
    #  "mm": [[cumulative mm per layer] per used slot], "g_per_mm": [...],
    #  "seconds": [cumulative move time per layer], ...}} (see
    # catalog.slicer.extrusion.layer_table); read it through catalog.selectors.
    layers = models.JSONField(_("extrusion per layer"), default=dict, blank=True, editable=False)
    corrections = models.JSONField(
        _("manual corrections"), default=dict, blank=True,
        help_text=_("Values people corrected; they win over extracted values but never replace them."),
    )
    extracted_at = models.DateTimeField(_("read at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("sliced file")
        verbose_name_plural = _("sliced files")
        constraints = [
            models.UniqueConstraint(fields=["storage_owner", "sha256"], name="catalog_sliced_file_unique_per_owner"),
        ]

    def __str__(self) -> str:
        return self.original_name

    @property
    def effective_metadata(self) -> dict:
        """Extracted values with manual corrections applied on top."""
        return {**self.metadata, **self.corrections}


class SlicedFileThumbnail(TimeStampedModel):
    sliced_file = models.ForeignKey(
        SlicedFile, verbose_name=_("sliced file"), on_delete=models.CASCADE, related_name="thumbnails"
    )
    image = models.ImageField(_("image"), upload_to=thumbnail_path, max_length=400)
    width = models.PositiveIntegerField(_("width"))
    height = models.PositiveIntegerField(_("height"))
    source_format = models.CharField(_("format in the file"), max_length=8)
    plate_index = models.PositiveIntegerField(_("plate"), null=True, blank=True)
    role = models.CharField(_("role"), max_length=20, blank=True)

    class Meta:
        ordering = ["sliced_file", "plate_index", "-width"]
        verbose_name = _("thumbnail")
        verbose_name_plural = _("thumbnails")

    def __str__(self) -> str:
        return f"{self.width}×{self.height} {self.source_format}"


class ModelVariant(TimeStampedModel):
    """A colour, size or material variant of a model, sold under its own SKU."""

    model = models.ForeignKey(Model, verbose_name=_("model"), on_delete=models.CASCADE, related_name="variants")
    name = models.CharField(_("name"), max_length=200)
    sku = models.CharField(
        _("SKU"), max_length=64, unique=True,
        validators=[RegexValidator(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", _("Letters, digits, dot, dash, underscore."))],
    )
    colour = models.CharField(_("colour"), max_length=7, blank=True, validators=[HEX_COLOUR])
    material = models.CharField(_("material"), max_length=40, blank=True)
    size = models.CharField(_("size"), max_length=60, blank=True)
    current_version = models.OneToOneField(
        "VariantVersion", verbose_name=_("current version"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    # Copied from the current version's metadata (see catalog.services), for search and filters.
    printer_model = models.CharField(_("printer"), max_length=100, blank=True, db_index=True)
    filament_types = models.CharField(_("filament types"), max_length=200, blank=True)
    filament_colours = models.CharField(_("filament colours"), max_length=200, blank=True)
    nozzle_diameter = models.DecimalField(_("nozzle (mm)"), max_digits=4, decimal_places=2, null=True, blank=True)
    layer_height = models.DecimalField(_("layer height (mm)"), max_digits=5, decimal_places=3, null=True, blank=True)
    estimated_time_s = models.PositiveIntegerField(_("print time (s)"), null=True, blank=True, db_index=True)
    filament_used_g = models.DecimalField(
        _("filament (g)"), max_digits=9, decimal_places=2, null=True, blank=True,
        validators=[MinValueValidator(0)],
    )
    search_document = models.TextField(editable=False, blank=True)
    # Model name, variant name and SKU: the order among equally good matches.
    search_title = models.CharField(max_length=500, editable=False, blank=True)
    # PostgreSQL only (GIN-indexed, see the migration); unused on SQLite.
    search_vector = SearchVectorField(null=True, editable=False)

    class Meta:
        ordering = ["model__name", "name"]
        verbose_name = _("variant")
        verbose_name_plural = _("variants")

    def __str__(self) -> str:
        return f"{self.model.name} – {self.name}"


class SearchTerm(models.Model):
    """Every word that occurs in the catalog's search texts, to correct mistyped queries."""

    word = models.CharField(max_length=60, unique=True)

    class Meta:
        verbose_name = _("search term")
        verbose_name_plural = _("search terms")

    def __str__(self) -> str:
        return self.word


class VariantVersion(TimeStampedModel):
    variant = models.ForeignKey(
        ModelVariant, verbose_name=_("variant"), on_delete=models.CASCADE, related_name="versions"
    )
    number = models.PositiveIntegerField(_("version"))
    sliced_file = models.ForeignKey(
        SlicedFile, verbose_name=_("sliced file"), on_delete=models.PROTECT, related_name="versions"
    )
    change_note = models.TextField(_("change note"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("created by"), null=True, blank=True,
        on_delete=models.SET_NULL, related_name="+",
    )

    class Meta:
        ordering = ["variant", "-number"]
        verbose_name = _("version")
        verbose_name_plural = _("versions")
        constraints = [
            models.UniqueConstraint(fields=["variant", "number"], name="catalog_version_unique_number"),
        ]

    def __str__(self) -> str:
        return f"{self.variant} v{self.number}"
