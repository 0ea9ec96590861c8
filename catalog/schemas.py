from datetime import datetime

from django.urls import reverse
from ninja import Field, Schema

from catalog.choices import ExtractionStatus, FileFormat, Licence
from fablab.api_types import ApiDecimal, choice, decimal_type


class NamedRef(Schema):
    id: int
    name: str


class ModelOut(Schema):
    id: int
    name: str
    designer: NamedRef | None
    category: str | None
    tags: list[str]
    description: str
    licence: choice(Licence)
    shared_with_partners: bool
    variant_count: int = 0
    created_at: datetime

    @staticmethod
    def resolve_category(obj) -> str | None:
        return obj.category.name if obj.category_id else None

    @staticmethod
    def resolve_tags(obj) -> list[str]:
        return [tag.name for tag in obj.tags.all()]


class VariantOut(Schema):
    id: int
    model_id: int
    model_name: str = Field(alias="model.name")
    name: str
    sku: str
    colour: str
    material: str
    size: str
    current_version: int | None
    printer_model: str
    filament_types: list[str]
    filament_colours: list[str]
    nozzle_diameter: ApiDecimal | None
    layer_height: ApiDecimal | None
    estimated_time_s: int | None
    filament_used_g: ApiDecimal | None

    @staticmethod
    def resolve_current_version(obj) -> int | None:
        return obj.current_version.number if obj.current_version_id else None

    @staticmethod
    def resolve_filament_types(obj) -> list[str]:
        return [t for t in obj.filament_types.split(",") if t]

    @staticmethod
    def resolve_filament_colours(obj) -> list[str]:
        return [c for c in obj.filament_colours.split(",") if c]


class SlicedFileOut(Schema):
    sha256: str
    size_bytes: int
    format: choice(FileFormat)
    original_name: str
    status: choice(ExtractionStatus)
    error: str
    sliced: bool | None
    metadata: dict
    corrections: dict
    plates: list
    warnings: list
    thumbnail_count: int

    @staticmethod
    def resolve_thumbnail_count(obj) -> int:
        return obj.thumbnails.count()


class VersionOut(Schema):
    id: int
    number: int
    change_note: str
    created_at: datetime
    sliced_file: SlicedFileOut
    download_url: str

    @staticmethod
    def resolve_download_url(obj) -> str:
        return reverse("api:catalog_version_download", args=[obj.variant_id, obj.number])


class VariantDetailOut(VariantOut):
    model: ModelOut
    versions: list[VersionOut]

    @staticmethod
    def resolve_versions(obj) -> list:
        return list(obj.versions.select_related("sliced_file").order_by("-number"))


class ModelDetailOut(ModelOut):
    variants: list[VariantOut]

    @staticmethod
    def resolve_variants(obj) -> list:
        return list(obj.variants.select_related("current_version", "model").order_by("name"))


class VariantFilterIn(Schema):
    q: str = Field("", description="Words to search for in names, descriptions, tags and key metadata.")
    material: str = Field("", description="Filament type, e.g. PLA, PETG.")
    colour: str = Field("", pattern=r"^(#[0-9A-Fa-f]{6})?$", description="Filament or variant colour, #RRGGBB.")
    printer_model: str = ""
    nozzle_diameter: decimal_type(gt=0, lt=5) | None = None
    layer_height: decimal_type(gt=0, lt=5) | None = None
    min_time_s: int | None = Field(None, ge=0)
    max_time_s: int | None = Field(None, ge=0)
    designer: int | None = None
    tag: list[str] = Field(default_factory=list)
