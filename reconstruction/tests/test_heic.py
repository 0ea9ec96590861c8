"""HEIC/HEIF photos (phones) are accepted, checked like any photo and stored as JPEG for the pipeline."""

import io

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from fablab.exceptions import InvalidInput
from reconstruction import services
from reconstruction.models import ScanPhoto
from reconstruction.tests.factories import stored

pytestmark = pytest.mark.django_db


def heic(name="IMG_0001.HEIC", *, size=(800, 600), seed=0, focal_mm: float | None = 4.25) -> SimpleUploadedFile:
    """A HEIC photo with texture, made with pillow-heif, with an iPhone's EXIF focal length."""
    noise = np.random.default_rng(seed).integers(0, 255, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    image = Image.fromarray(noise).resize(size, Image.NEAREST)
    exif = Image.Exif()
    exif[271], exif[272] = "Apple", "iPhone 15"
    if focal_mm is not None:
        exif.get_ifd(0x8769)[37386] = focal_mm
        exif.get_ifd(0x8769)[41989] = 26
    buffer = io.BytesIO()
    image.save(buffer, "HEIF", quality=60, exif=exif.tobytes())
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/heic")


def test_heic_is_accepted_and_stored_as_jpeg_with_its_focal_length(job):
    upload = heic()
    assert upload.read(12)[4:12] == b"ftypheic"
    added, created = services.scan_photo_add(job=job, upload=upload)
    assert created and added.original_name == "IMG_0001.HEIC"
    assert (added.width, added.height, added.extension) == (800, 600, ".jpg")
    assert added.focal_length_mm == 4.25 and added.focal_length_35mm == 26 and added.camera == "Apple iPhone 15"
    with added.image.open("rb") as handle:
        data = handle.read()
    assert data[:2] == b"\xff\xd8" and added.size_bytes == len(data)
    with Image.open(io.BytesIO(data)) as jpeg:
        assert jpeg.format == "JPEG" and jpeg.size == (800, 600)
        assert float(jpeg.getexif().get_ifd(0x8769)[37386]) == 4.25  # the pipeline's camera prior survives
    again, created = services.scan_photo_add(job=job, upload=heic("copy.heic"))
    assert not created and again.pk == added.pk


@pytest.mark.parametrize("cut", [0.5, 0.05])
def test_corrupt_heic_is_refused_and_nothing_is_stored(job, cut):
    data = heic().read()
    broken = SimpleUploadedFile("IMG_0002.HEIC", data[: int(len(data) * cut)])
    with pytest.raises(InvalidInput, match="IMG_0002.HEIC is not a photo that can be read"):
        services.scan_photo_add(job=job, upload=broken)
    assert not ScanPhoto.objects.exists() and stored() == []


def test_heic_meets_the_same_limits(job, settings):
    with pytest.raises(InvalidInput, match="at least 640 pixels"):
        services.scan_photo_add(job=job, upload=heic(size=(480, 360)))
    settings.RECONSTRUCTION_MAX_PHOTO_PIXELS = 100_000
    with pytest.raises(InvalidInput, match="megapixels"):
        services.scan_photo_add(job=job, upload=heic(seed=1))
    assert not ScanPhoto.objects.exists() and stored() == []


def test_partner_uploads_heic(api):
    scan_id = api.post("/api/v1/scans", {"title": "Shoe"}, content_type="application/json").json()["id"]
    answer = api.post(f"/api/v1/scans/{scan_id}/photos", {"photo": heic()})
    assert answer.status_code == 201, answer.content
    assert ScanPhoto.objects.get().extension == ".jpg"
