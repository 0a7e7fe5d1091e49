"""Issue 11 fuzzing of the decoders that read untrusted files: images (pensioner frames, enrollment
photos) and department extracts (CSV/TSV/XLSX). Any input either decodes or fails with a typed
LifecertError — never another exception — and memory stays bounded (decompression bombs refused
from their headers). Bounded and derandomised."""

from __future__ import annotations

import io
import resource
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook
from PIL import Image

from lifecert.domain.errors import LifecertError
from lifecert.engine.image import decode_image
from lifecert.services.datamatch.mapping import parse_mapping
from lifecert.services.datamatch.reader import inspect_file, iter_rows

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
MAX_RSS_GROWTH_MB = 300  # a 40 MP decode is ~120 MB; a bomb that slipped through would be far more


def _seed_images() -> list[bytes]:
    rng = np.random.default_rng(3)
    out = []
    for fmt in ("JPEG", "PNG", "GIF", "BMP", "WEBP"):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(buf, fmt)
        out.append(buf.getvalue())
    return out


SEEDS = _seed_images()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 8))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[: cut or len(data)]) + draw(st.binary(max_size=64))


def _bomb_png(w: int, h: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(b"\0" * 1024))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + idat + chunk(b"IEND", b"")


@pytest.mark.parametrize(("w", "h"), [(60_000, 60_000), (1, 2**31 - 1), (100_000, 1000)])
def test_given_decompression_bomb_headers_when_decoded_then_refused_without_allocating(w: int, h: int) -> None:
    before = _rss_mb()
    with pytest.raises(LifecertError):
        decode_image(_bomb_png(w, h))
    assert _rss_mb() - before < MAX_RSS_GROWTH_MB


@FUZZ
@given(data=st.one_of(mutated(SEEDS), st.binary(max_size=2048)))
def test_given_arbitrary_or_mutated_image_bytes_when_decoded_then_image_or_typed_error(data: bytes) -> None:
    before = _rss_mb()
    try:
        img = decode_image(data)
    except LifecertError:
        pass
    else:
        assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8
    assert _rss_mb() - before < MAX_RSS_GROWTH_MB


MAP = parse_mapping({"department": "fuzz", "kind": "alive_evidence",
                     "columns": {"id_number": "证件号", "name": "姓名", "evidence_date": "日期"}})


def _read_all(path: Path) -> None:
    try:
        info = inspect_file(path)
        for _ in iter_rows(info, MAP):
            pass
    except LifecertError:
        pass


def _xlsx_seed() -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["证件号", "姓名", "日期"])
    ws.append(["110101195001010011", "=1+1", "2026-03-01"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


XLSX = _xlsx_seed()
CSV = "证件号,姓名,日期\n110101195001010011,欧阳锋,2026-03-01\n".encode()


@FUZZ
@given(data=st.one_of(mutated([CSV, CSV.decode().encode("gb18030")]), st.binary(max_size=1024),
                      st.text(max_size=500).map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_given_arbitrary_csv_bytes_when_read_then_rows_or_typed_error(tmp_path_factory: pytest.TempPathFactory,
                                                                      data: bytes) -> None:
    p = tmp_path_factory.mktemp("csv") / "extract.csv"
    p.write_bytes(data)
    _read_all(p)


@FUZZ
@given(data=st.one_of(mutated([XLSX]), st.binary(max_size=1024)))
def test_given_arbitrary_or_mutated_xlsx_when_read_then_rows_or_typed_error(
        tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    p = tmp_path_factory.mktemp("xlsx") / "extract.xlsx"
    p.write_bytes(data)
    before = _rss_mb()
    _read_all(p)
    assert _rss_mb() - before < MAX_RSS_GROWTH_MB


def test_given_xlsx_zip_bomb_when_read_then_typed_error_and_bounded_memory(tmp_path: Path) -> None:
    """A 300 KB .xlsx whose sheet inflates to 300 MB of one cell."""
    p = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(io.BytesIO(XLSX)) as src, zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            body = src.read(item)
            if item.filename != "xl/worksheets/sheet1.xml":
                dst.writestr(item, body)
                continue
            head, tail = body.split(b"</sheetData>")
            with dst.open(item.filename, "w", force_zip64=True) as out:  # streamed: the test stays small too
                out.write(head + b'<row r="3"><c r="A3" t="inlineStr"><is><t>')
                for _ in range(300):
                    out.write(b"A" * (1024 * 1024))
                out.write(b"</t></is></c></row></sheetData>" + tail)
    before = _rss_mb()
    with pytest.raises(LifecertError):
        info = inspect_file(p)
        for _ in iter_rows(info, MAP):
            pass
    assert _rss_mb() - before < MAX_RSS_GROWTH_MB
