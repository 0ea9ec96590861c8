from datetime import datetime

from ninja import Field, Schema

from catalog.schemas import VersionOut


class PrinterFileOut(Schema):
    """A file on a printer's storage; `downloadable`: it can go into the catalog."""

    path: str = Field(alias="file.path")
    name: str = Field(alias="file.name")
    size_bytes: int | None = Field(alias="file.size_bytes")
    modified: datetime | None = Field(alias="file.modified")
    folder: str = Field(alias="file.folder")
    downloadable: bool = Field(alias="importable")


class PrinterFileImportIn(Schema):
    path: str
    variant_id: int | None = None


class PrinterFileImportOut(Schema):
    id: int
    printer_id: int
    path: str
    status: str  # queued, running, succeeded, failed
    error: str
    created_at: datetime
    finished_at: datetime | None
    # Once succeeded: the catalog version made from the file, as the catalog API shows versions ...
    catalog_version: VersionOut | None = None
    # ... and its key figures at the top level.
    model_id: int | None = None
    variant_id: int | None = None
    version: int | None = None
    sliced_file_id: int | None = None
    sha256: str | None = None
    metadata_status: str | None = None
    metadata: dict | None = None

    @staticmethod
    def resolve_catalog_version(obj):
        return obj.version if obj.version_id else None

    @staticmethod
    def resolve_model_id(obj) -> int | None:
        return obj.version.variant.model_id if obj.version_id else None

    @staticmethod
    def resolve_variant_id(obj) -> int | None:  # the variant that got the version, not the one asked for
        return obj.version.variant_id if obj.version_id else None

    @staticmethod
    def resolve_version(obj) -> int | None:
        return obj.version.number if obj.version_id else None

    @staticmethod
    def resolve_sliced_file_id(obj) -> int | None:
        return obj.version.sliced_file_id if obj.version_id else None

    @staticmethod
    def resolve_sha256(obj) -> str | None:
        return obj.version.sliced_file.sha256 if obj.version_id else None

    @staticmethod
    def resolve_metadata_status(obj) -> str | None:
        return obj.version.sliced_file.status if obj.version_id else None

    @staticmethod
    def resolve_metadata(obj) -> dict | None:
        return obj.version.sliced_file.metadata if obj.version_id else None
