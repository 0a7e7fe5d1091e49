"""Decoding untrusted image bytes: every bad input gets a typed error; odd-but-valid inputs decode."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from lifecert.domain.errors import ErrorCode, ImageError
from lifecert.engine.image import decode_image


def _jpeg(img: Image.Image, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", **kw)
    return buf.getvalue()


def _rgb(w: int = 64, h: int = 48) -> Image.Image:
    arr = np.zeros((h, w, 3), np.uint8)
    arr[..., 0] = 200  # red channel: checks RGB→BGR order
    return Image.fromarray(arr, "RGB")


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height with a tiny (invalid) body: a decompression bomb probe."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b"")


def test_given_rgb_jpeg_when_decoded_then_bgr_uint8() -> None:
    out = decode_image(_jpeg(_rgb()))
    assert out.shape == (48, 64, 3) and out.dtype == np.uint8
    assert out[..., 2].mean() > 150 and out[..., 0].mean() < 30  # red lands in channel 2 (BGR)


def test_given_truncated_jpeg_when_decoded_then_unreadable() -> None:
    data = _jpeg(Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8)))
    with pytest.raises(ImageError) as ei:
        decode_image(data[: len(data) // 2])
    assert ei.value.code == ErrorCode.UNREADABLE_IMAGE


def test_given_random_bytes_when_decoded_then_unreadable() -> None:
    with pytest.raises(ImageError) as ei:
        decode_image(b"this is not an image at all" * 10)
    assert ei.value.code == ErrorCode.UNREADABLE_IMAGE


def test_given_empty_bytes_when_decoded_then_unreadable() -> None:
    with pytest.raises(ImageError) as ei:
        decode_image(b"")
    assert ei.value.code == ErrorCode.UNREADABLE_IMAGE


def test_given_heic_when_decoded_then_unsupported_format() -> None:
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 100
    with pytest.raises(ImageError) as ei:
        decode_image(heic)
    assert ei.value.code == ErrorCode.UNSUPPORTED_FORMAT


def test_given_100_megapixel_header_when_decoded_then_too_large_without_allocating() -> None:
    with pytest.raises(ImageError) as ei:
        decode_image(png_header_only(10_000, 10_000))
    assert ei.value.code == ErrorCode.IMAGE_TOO_LARGE
    assert "100.0 MP" in ei.value.message


def test_given_bytes_over_the_limit_when_decoded_then_too_large() -> None:
    with pytest.raises(ImageError) as ei:
        decode_image(_jpeg(_rgb()), max_bytes=100)
    assert ei.value.code == ErrorCode.IMAGE_TOO_LARGE


def test_given_rgba_png_when_decoded_then_alpha_composited_on_white() -> None:
    arr = np.zeros((40, 40, 4), np.uint8)  # fully transparent black
    buf = io.BytesIO()
    Image.fromarray(arr, "RGBA").save(buf, "PNG")
    out = decode_image(buf.getvalue())
    assert out.shape == (40, 40, 3) and out.min() == 255


def test_given_cmyk_and_greyscale_jpegs_when_decoded_then_three_channel_bgr() -> None:
    cmyk = _jpeg(_rgb().convert("CMYK"))
    grey = _jpeg(_rgb().convert("L"))
    assert decode_image(cmyk).shape == (48, 64, 3)
    g = decode_image(grey)
    assert g.shape == (48, 64, 3) and np.array_equal(g[..., 0], g[..., 1])


def test_given_exif_orientation_when_decoded_then_rotated_upright() -> None:
    img = _rgb(80, 40)  # landscape pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    out = decode_image(_jpeg(img, exif=exif.tobytes()))
    assert out.shape[:2] == (80, 40)  # displayed portrait


def test_given_a_tiny_image_when_decoded_then_unreadable() -> None:
    with pytest.raises(ImageError):
        decode_image(_jpeg(_rgb(8, 8)))
