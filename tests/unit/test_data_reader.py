"""Extract files: encoding decided on the whole file, CSV/TSV/XLSX streaming, bad files named clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import Workbook

from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.services.datamatch.mapping import parse_mapping
from lifecert.services.datamatch.reader import ExtractError, inspect_file, iter_rows
from lifecert.services.datamatch.tipoffs import RateLimiter

MAP = parse_mapping({"department": "m1", "kind": "alive_evidence",
                     "columns": {"id_number": "证件号", "name": "姓名", "evidence_date": "日期"}})
ROW1 = ["110101195001010011", "欧阳锋", "2026-03-01"]
TEXT = "证件号,姓名,日期\n110101195001010011,欧阳锋,2026-03-01\n\n110101195001010038,黄药师,2026-03-02\n"


@pytest.mark.parametrize(("encoding", "bom", "expected"), [
    ("utf-8", b"", "utf-8"),
    ("utf-8", b"\xef\xbb\xbf", "utf-8-sig"),
    ("gbk", b"", "gb18030"),
])
def test_given_text_in_encoding_when_inspected_then_detected_and_rows_read(
        tmp_path: Path, encoding: str, bom: bytes, expected: str) -> None:
    f = tmp_path / "x.csv"
    f.write_bytes(bom + TEXT.encode(encoding))

    info = inspect_file(f)
    rows = list(iter_rows(info, MAP))

    assert (info.format, info.encoding, info.size) == ("csv", expected, f.stat().st_size)
    assert rows == [(2, ROW1), (4, ["110101195001010038", "黄药师", "2026-03-02"])]


def test_given_same_bytes_when_inspected_twice_then_same_hash_and_one_byte_changes_it(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text(TEXT, encoding="utf-8")
    b.write_text(TEXT.replace("03-02", "03-03"), encoding="utf-8")

    assert inspect_file(a).sha256 == inspect_file(a).sha256 != inspect_file(b).sha256


def test_given_tab_separated_file_when_read_then_columns_split_on_tabs(tmp_path: Path) -> None:
    f = tmp_path / "x.txt"
    f.write_text(TEXT.replace(",", "\t"), encoding="utf-8")

    assert next(iter_rows(inspect_file(f), MAP))[1] == ["110101195001010011", "欧阳锋", "2026-03-01"]


def test_given_xlsx_with_short_row_when_read_then_missing_cells_are_none(tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    ws.append(["日期", "证件号", "姓名"])
    ws.append(["2026-03-01", "110101195001010011", "欧阳锋"])
    ws.append([None, None, None])
    ws.append(["2026-03-02", "110101195001010038"])
    f = tmp_path / "x.xlsx"
    wb.save(f)

    rows = list(iter_rows(inspect_file(f), MAP))

    assert rows == [(2, ROW1), (4, ["110101195001010038", None, "2026-03-02"])]


def test_given_garbage_bytes_when_read_then_extract_error_names_offset(tmp_path: Path) -> None:
    f = tmp_path / "x.csv"
    f.write_bytes("证件号,姓名,日期\n".encode() + b"\x81\x20\xff\xfe,,\n")

    with pytest.raises(ExtractError, match="neither UTF-8 nor GBK"):
        list(iter_rows(inspect_file(f), MAP))


@pytest.mark.parametrize(("name", "data", "fragment"), [
    ("empty.csv", b"", "is empty"),
    ("old.xls", b"\xd0\xcf\x11\xe0" + b"\0" * 100, "old binary .xls"),
    ("zip.csv", b"PK\x03\x04" + b"\0" * 100, "name it .xlsx"),
    ("bad.xlsx", b"PK\x03\x04" + b"\0" * 100, "not a readable XLSX"),
])
def test_given_unusable_file_when_read_then_clear_error(tmp_path: Path, name: str, data: bytes, fragment: str) -> None:
    f = tmp_path / name
    f.write_bytes(data)

    with pytest.raises(ExtractError, match=fragment):
        list(iter_rows(inspect_file(f), MAP))


def test_given_rate_limiter_when_limit_reached_then_refused_until_window_passes() -> None:
    lim = RateLimiter(2, 60.0)
    lim.hit("1.2.3.4", now=0.0)
    lim.hit("1.2.3.4", now=1.0)
    lim.hit("5.6.7.8", now=1.0)  # other clients are not affected

    with pytest.raises(LifecertError) as err:
        lim.hit("1.2.3.4", now=30.0)
    assert err.value.code == ErrorCode.RATE_LIMITED
    assert err.value.details["retry_after"] == 31
    lim.hit("1.2.3.4", now=60.5)


@pytest.mark.parametrize("member", ["docProps/core.xml", "xl/worksheets/sheet1.xml"])
def test_given_xlsx_with_a_broken_deflate_stream_when_read_then_extract_error_not_zlib_error(
    tmp_path: Path, member: str
) -> None:
    """A workbook whose central directory is intact but one member's compressed bytes are damaged
    (found by the fuzz test: zlib.error escaped openpyxl) is refused with a typed error."""
    import zipfile

    wb = Workbook()
    ws = wb.active
    ws.append(["证件号", "姓名", "日期"])
    for i in range(200):
        ws.append([ROW1[0], f"欧阳锋{i}", ROW1[2]])
    f = tmp_path / "broken.xlsx"
    wb.save(f)
    with zipfile.ZipFile(f) as zf:
        zi = zf.getinfo(member)
    assert zi.compress_type == zipfile.ZIP_DEFLATED and zi.compress_size > 40
    data = bytearray(f.read_bytes())
    # Local header: 30 bytes + name + extra, then the deflate stream; overwrite its middle.
    name_len = int.from_bytes(data[zi.header_offset + 26:zi.header_offset + 28], "little")
    extra_len = int.from_bytes(data[zi.header_offset + 28:zi.header_offset + 30], "little")
    start = zi.header_offset + 30 + name_len + extra_len
    mid = start + zi.compress_size // 3
    data[mid:mid + 16] = b"\xff" * 16
    f.write_bytes(bytes(data))

    with pytest.raises(ExtractError, match="not a readable XLSX"):
        list(iter_rows(inspect_file(f), MAP))
