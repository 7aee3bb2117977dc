"""Image checks with Pillow: what a byte string really is (not what its name or declared
type says), and whether it is safe to decode."""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

ALLOWED_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
# 40 megapixels: far above any real photo or Gemini output, far below a bomb's billions.
MAX_PIXELS = 40_000_000

# Magic numbers for naming what a rejected file is when Pillow cannot tell.
_MAGIC = [
    (b"\x89PNG", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"), (b"BM", "image/bmp"),
    (b"%PDF", "application/pdf"), (b"PK\x03\x04", "application/zip"), (b"\x1f\x8b", "application/gzip"),
    (b"<svg", "image/svg+xml"), (b"<?xml", "application/xml"), (b"<!DOCTYPE html", "text/html"),
    (b"<html", "text/html"), (b"{", "application/json"), (b"\x7fELF", "application/x-executable"),
]


@dataclass(frozen=True)
class ImageInfo:
    format: str  # Pillow's name: PNG, JPEG, WEBP, GIF, ...
    mime_type: str
    width: int
    height: int


class ImageRejected(ValueError):
    """Not an allowed image. ``detected`` names what the bytes really are."""

    def __init__(self, reason: str, detected: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detected = detected


def sniff(data: bytes) -> str:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    head = data[:64].lstrip()
    for magic, name in _MAGIC:
        if head[: len(magic)].lower() == magic.lower():
            return name
    return "unknown (not an image)"


def inspect_image(data: bytes, *, allowed: dict[str, str] = ALLOWED_FORMATS, decode: bool = False,
                  max_pixels: int = MAX_PIXELS) -> ImageInfo:
    """Identify ``data`` and check it is intact. Raises ImageRejected for anything that is
    not an allowed image of at most ``max_pixels`` pixels (read from the header, before a
    single pixel is decoded).

    ``decode=False`` runs Pillow's structural ``verify()``: checksums and chunk layout, no
    pixel buffer (the web process checks uploads this way: a 6000x6000 decode is ~140 MB).
    ``decode=True`` decodes every pixel (the worker, one reference at a time, before it is
    sent upstream), so a truncated JPEG is caught too."""
    fmt = "unknown"
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its own limit and twice that; we refuse outright.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                fmt = image.format or "unknown"
                width, height = image.size
                if fmt not in allowed:
                    raise ImageRejected(f"{fmt} images are not accepted", detected=f"image/{fmt.lower()}")
                if width * height > max_pixels:
                    raise ImageRejected(
                        f"{width}x{height} is {width * height} pixels; the limit is {max_pixels}",
                        detected=allowed[fmt],
                    )
                if decode:
                    image.load()  # a truncated or corrupt upload fails here, not later in Gemini
                else:
                    image.verify()
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected(f"the image is larger than {MAX_PIXELS} pixels (decompression bomb)",
                            detected="image") from None
    except UnidentifiedImageError:
        raise ImageRejected("the bytes are not a complete image Pillow can read", detected=sniff(data)) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(f"the image is corrupt or truncated ({type(exc).__name__})",
                            detected=allowed.get(fmt) or sniff(data)) from None
    return ImageInfo(format=fmt, mime_type=allowed[fmt], width=width, height=height)


# Pillow's names for the output formats a client may ask for (the /v1 `output_format`).
OUTPUT_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


def image_convert(data: bytes, *, output_format: str) -> bytes:
    """``data`` re-encoded as ``output_format`` (png, jpeg, webp); unchanged when it already
    is one. JPEG has no alpha channel, so transparency is flattened onto white."""
    target = OUTPUT_FORMATS[output_format]
    with Image.open(io.BytesIO(data)) as image:
        if image.format == target:
            return data
        image.load()
        if target == "JPEG" and image.mode not in ("RGB", "L"):
            rgba = image.convert("RGBA")
            flat = Image.new("RGB", rgba.size, (255, 255, 255))
            flat.paste(rgba, mask=rgba.getchannel("A"))
            image = flat
        buffer = io.BytesIO()
        # quality 90: visually lossless for generated images at a fraction of PNG's bytes.
        image.save(buffer, format=target, **({"quality": 90} if target in ("JPEG", "WEBP") else {}))
        return buffer.getvalue()
