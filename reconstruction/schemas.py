from datetime import datetime

from django.urls import reverse
from ninja import Field, Schema

from fablab.api_types import ApiDecimal, choice, decimal_type
from reconstruction.choices import ScaleMethod, ScanStatus, Stage


class ScanCreateIn(Schema):
    title: str = Field(..., min_length=1, max_length=200)
    known_dimension_mm: decimal_type(gt=0, le=5000) | None = Field(None,
                                               description="The real length of the object's longest side.")
    scale_method: choice(ScaleMethod) | None = Field(
        None, description="How the mesh gets its true size: 'dimension' (the longest side, required), 'markers' "
                          "(the printed marker sheet under the object, see /scans/marker-sheet.pdf; the longest "
                          "side, when given, is the fallback) or 'none'. Default: 'dimension' when the longest "
                          "side is given, else 'none'.")


class ScanOut(Schema):
    id: int
    title: str
    status: choice(ScanStatus)
    stage: choice(Stage, blank=True) = Field(description="The pipeline's current stage; empty before it starts.")
    progress: float
    known_dimension_mm: ApiDecimal | None
    scale_method: choice(ScaleMethod)
    photos: int
    report: dict
    error: str
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime | None
    downloads: dict[str, str]

    @staticmethod
    def resolve_photos(obj) -> int:
        return obj.photos.count()

    @staticmethod
    def resolve_downloads(obj) -> dict[str, str]:
        if obj.status != "succeeded" or obj.purged_at:
            return {}
        kinds = ("stl", "3mf", "step", "png", "ply") if obj.cad_step else ("stl", "3mf", "png", "ply")
        return {kind: reverse("api:scan_download", args=[obj.pk, kind]) for kind in kinds}


class PhotoOut(Schema):
    created: bool
    name: str
    format: str = Field(description="What the photo is, whatever its name says: JPEG (also for HEIC, which is "
                                    "converted) or PNG.")
    photos: int
    advice: str
