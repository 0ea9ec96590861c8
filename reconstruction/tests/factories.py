import io
from pathlib import Path

import numpy as np
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image


def photo(name: str = "p.jpg", *, size=(800, 600), seed: int = 0, fmt: str = "JPEG", blank: bool = False,
          focal_mm: float | None = None) -> SimpleUploadedFile:
    """A decodable photo with texture (or a blank one), optionally with an EXIF focal length."""
    if blank:
        image = Image.new("RGB", size, (128, 128, 128))
    else:
        noise = np.random.default_rng(seed).integers(0, 255, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
        image = Image.fromarray(noise).resize(size, Image.NEAREST)
    buffer = io.BytesIO()
    kwargs = {}
    if focal_mm is not None and fmt == "JPEG":
        exif = Image.Exif()
        exif[271], exif[272] = "Canon", "EOS REBEL T3"
        exif.get_ifd(0x8769)[37386] = focal_mm
        kwargs["exif"] = exif
    image.save(buffer, fmt, **kwargs)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/jpeg")


def stored() -> list[Path]:
    """Every file in the test's storage (nothing may be left behind by a refused or deleted scan)."""
    root = Path(default_storage.location)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
