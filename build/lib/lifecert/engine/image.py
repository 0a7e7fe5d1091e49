"""Decoding untrusted image bytes into BGR arrays, safely.

Guards: byte size; pixel count read from the header *before* decoding
(decompression bombs never allocate); a format allow-list (HEIC, SVG, PDF … are
refused with UNSUPPORTED_FORMAT); truncated/corrupt data raise UNREADABLE_IMAGE.
EXIF orientation is honoured; alpha is composited on white; CMYK, greyscale,
palette and 16-bit images are converted to 8-bit BGR.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from lifecert.domain.errors import ErrorCode, ImageError
from lifecert.engine.types import ImageBGR

ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "BMP", "WEBP", "TIFF", "GIF", "PPM", "MPO"})
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000

_SNIFF = {
    b"ftypheic": "HEIC",
    b"ftypheix": "HEIC",
    b"ftypmif1": "HEIF",
    b"ftypavif": "AVIF",
}


def _sniff_unsupported(data: bytes) -> str | None:
    head = data[:32]
    for magic, name in _SNIFF.items():
        if magic in head:
            return name
    if head.lstrip().startswith((b"<svg", b"<?xml")):
        return "SVG"
    if head.startswith(b"%PDF"):
        return "PDF"
    return None


def decode_image(
    data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS
) -> ImageBGR:
    """Decode bytes to an (H, W, 3) uint8 BGR array or raise :class:`ImageError`."""
    if len(data) == 0:
        raise ImageError("empty file", code=ErrorCode.UNREADABLE_IMAGE)
    if len(data) > max_bytes:
        raise ImageError(
            f"image is {len(data)} bytes; the limit is {max_bytes}", code=ErrorCode.IMAGE_TOO_LARGE
        )
    unsupported = _sniff_unsupported(data)
    if unsupported:
        raise ImageError(f"{unsupported} images are not supported", code=ErrorCode.UNSUPPORTED_FORMAT)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit applies below
            img = Image.open(io.BytesIO(data))  # lazy: reads the header only
            fmt = img.format or "?"
            if fmt not in ALLOWED_FORMATS:
                raise ImageError(f"{fmt} images are not supported", code=ErrorCode.UNSUPPORTED_FORMAT)
            w, h = img.size
            if w * h > max_pixels:
                raise ImageError(
                    f"image is {w}x{h} = {w * h / 1e6:.1f} MP; the limit is {max_pixels / 1e6:.0f} MP",
                    code=ErrorCode.IMAGE_TOO_LARGE,
                )
            if w < 16 or h < 16:
                raise ImageError(f"image is only {w}x{h} pixels", code=ErrorCode.UNREADABLE_IMAGE)
            img.load()
            upright: Image.Image = ImageOps.exif_transpose(img) or img
            rgb = _to_rgb(upright)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"image has too many pixels: {exc}", code=ErrorCode.IMAGE_TOO_LARGE) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"cannot decode image: {exc}", code=ErrorCode.UNREADABLE_IMAGE) from exc
    arr = np.asarray(rgb, dtype=np.uint8)
    return np.ascontiguousarray(arr[:, :, ::-1])


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float32)
        span = float(arr.max() - arr.min()) or 1.0
        grey = ((arr - arr.min()) * (255.0 / span)).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    return img.convert("RGB")


def read_image_file(path: str | Path, **limits: int) -> ImageBGR:
    p = Path(path)
    if not p.is_file():
        raise ImageError(f"file not found: {p.name}", code=ErrorCode.FILE_MISSING)
    size = p.stat().st_size
    max_bytes = limits.get("max_bytes", DEFAULT_MAX_BYTES)
    if size > max_bytes:
        raise ImageError(f"image is {size} bytes; the limit is {max_bytes}", code=ErrorCode.IMAGE_TOO_LARGE)
    return decode_image(p.read_bytes(), **limits)


def encode_jpeg(image: ImageBGR, quality: int = 90) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", image, [int(cv2.IMWRITE_JPEG_QUALITY), quality])
    if not ok:
        raise ImageError("could not encode JPEG", code=ErrorCode.UNREADABLE_IMAGE)
    return bytes(buf)
