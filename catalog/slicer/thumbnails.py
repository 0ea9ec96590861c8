"""Embedded preview images: the Thumbnail value and helpers to decode and measure them."""

from __future__ import annotations

import binascii
import io
from dataclasses import dataclass, field

from catalog.slicer.errors import CorruptFile

# Largest preview we convert: previews are small; this only stops a crafted image header.
MAX_THUMBNAIL_PIXELS = 40_000_000

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPG"),
    (b"qoif", "QOI"),
)


@dataclass
class Thumbnail:
    """One preview image as stored in the file (`data` holds the original bytes)."""

    format: str  # "PNG" | "JPG" | "QOI" | "WEBP"
    width: int
    height: int
    data: bytes = field(repr=False)
    plate_index: int | None = None
    role: str = "plate"
    source: str = ""  # where it came from: a zip entry name, "gcode", "bgcode"

    def png(self) -> bytes:
        """The image as PNG bytes (converted with Pillow unless it already is a PNG)."""
        if self.format == "PNG" and self.data.startswith(_MAGIC[0][0]):
            return self.data
        try:
            from PIL import Image

            with Image.open(io.BytesIO(self.data)) as image:
                width, height = image.size
                if width * height > MAX_THUMBNAIL_PIXELS:
                    raise CorruptFile(f"A {width}×{height} preview image is too large to convert.")
                if image.mode not in ("RGB", "RGBA", "L", "LA", "P"):
                    image = image.convert("RGBA")
                out = io.BytesIO()
                image.save(out, format="PNG")
                return out.getvalue()
        except CorruptFile:
            raise
        except Exception as exc:  # Pillow raises many types for damaged images
            raise CorruptFile(
                f"A {self.width}×{self.height} {self.format} preview image in the file is damaged and cannot "
                f"be converted ({exc.__class__.__name__})."
            ) from exc

    def summary(self) -> dict:
        return {
            "format": self.format, "width": self.width, "height": self.height, "size": len(self.data),
            "plate_index": self.plate_index, "role": self.role, "source": self.source,
        }


def sniff_format(data: bytes) -> str | None:
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def decode_base64(text: str) -> bytes | None:
    """Base64 text with the G-code comment prefixes already removed; None when it is not valid."""
    try:
        return binascii.a2b_base64(text.encode("ascii"), strict_mode=False)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None


def image_size(data: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) from the image header, read with Pillow; None when unreadable."""
    kind = sniff_format(data)
    if kind is None:
        return None
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except Exception:  # a damaged image is reported by the caller as a warning
        return None
    return kind, int(width), int(height)
