"""Reading extract files: CSV (UTF-8, UTF-8 with BOM, GBK/GB18030) and XLSX, streamed row by row.

The encoding is decided on the whole file, not a sniffed prefix: the same pass that
computes the file's sha256 runs an incremental UTF-8 decoder over every block, so a
GBK file whose first megabyte happens to be ASCII is still read as GBK.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING

from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.services.datamatch.mapping import Mapping, MappingError, normalize_header

_BLOCK = 1 << 20
_ZIP_MAGIC = b"PK\x03\x04"


class ExtractError(LifecertError):
    code = ErrorCode.BAD_EXTRACT

if TYPE_CHECKING:
    from lifecert.storage.safezip import ZipLimits


@dataclass(frozen=True)
class FileInfo:
    path: Path
    sha256: str
    size: int
    format: str  # "csv" | "xlsx"
    encoding: str  # "utf-8" | "utf-8-sig" | "gb18030" | "" for xlsx


def inspect_file(path: Path) -> FileInfo:
    """Hash the file and decide its format and text encoding in one streaming pass."""
    if not path.is_file():
        raise LifecertError(f"extract file {path} does not exist", code=ErrorCode.FILE_MISSING, path=str(path))
    h = hashlib.sha256()
    size = 0
    dec = codecs.getincrementaldecoder("utf-8")()
    utf8_ok = True
    first = b""
    with path.open("rb") as fh:
        while block := fh.read(_BLOCK):
            if not first:
                first = block[:4]
            h.update(block)
            size += len(block)
            if utf8_ok:
                try:
                    dec.decode(block, final=False)
                except UnicodeDecodeError:
                    utf8_ok = False
    if utf8_ok:
        try:
            dec.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8_ok = False
    if size == 0:
        raise ExtractError(f"extract file {path.name} is empty")
    if first.startswith(_ZIP_MAGIC):
        if path.suffix.lower() not in (".xlsx", ".xlsm"):
            raise ExtractError(f"{path.name} is a zip/XLSX file; name it .xlsx (old .xls files: save as .xlsx)")
        return FileInfo(path, h.hexdigest(), size, "xlsx", "")
    if first.startswith(b"\xd0\xcf\x11\xe0"):
        raise ExtractError(f"{path.name} is an old binary .xls workbook; save it as .xlsx or CSV")
    # gb18030 is a superset of GBK and GB2312; strict decoding still rejects garbage bytes
    enc = "gb18030"
    if utf8_ok:
        enc = "utf-8-sig" if first.startswith(codecs.BOM_UTF8) else "utf-8"
    return FileInfo(path, h.hexdigest(), size, "csv", enc)


@dataclass(frozen=True)
class Layout:
    """Where each mapped field sits in the file: ``index[i]`` is the column of ``fields[i]`` or -1."""

    fields: tuple[str, ...]
    index: tuple[int, ...]
    headers: tuple[str, ...]


def resolve_layout(mapping: Mapping, header: list[object], file_name: str) -> Layout:
    headers = tuple(normalize_header(h) for h in header)
    pos = {h: i for i, h in reversed(list(enumerate(headers))) if h}
    idx = []
    missing = []
    for fld in mapping.fields:
        found = next((pos[c] for c in mapping.columns[fld] if c in pos), -1)
        if found < 0 and fld != "detail":
            missing.append(f"{fld} (expected header {' or '.join(mapping.columns[fld])})")
        idx.append(found)
    if missing:
        shown = ", ".join(h for h in headers if h) or "(empty header row)"
        raise MappingError(
            f"{file_name}: header row {mapping.header_row} lacks the column(s) that mapping "
            f"{mapping.department!r} needs: {'; '.join(missing)}. Headers found: {shown}",
            department=mapping.department,
            missing=missing,
        )
    return Layout(mapping.fields, tuple(idx), headers)


def iter_rows(info: FileInfo, mapping: Mapping) -> Iterator[tuple[int, list[object]]]:
    """Yield ``(row_no, values)`` after the header; ``row_no`` is the 1-based line/row in the file
    (what a clerk sees in a spreadsheet) and ``values`` follow ``mapping.fields`` (None when absent)."""
    if info.format == "xlsx":
        yield from _iter_xlsx(info, mapping)
    else:
        yield from _iter_csv(info, mapping)


def _pick(row: list[object] | tuple[object, ...], layout: Layout) -> list[object]:
    n = len(row)
    return [row[i] if 0 <= i < n else None for i in layout.index]


def _iter_csv(info: FileInfo, mapping: Mapping) -> Iterator[tuple[int, list[object]]]:
    try:
        with info.path.open("r", encoding=info.encoding, newline="", errors="strict") as fh:
            first_line = ""
            for _ in range(mapping.header_row):
                first_line = fh.readline()
            if not first_line:
                raise ExtractError(f"{info.path.name}: no header row at line {mapping.header_row}")
            delimiter = "\t" if first_line.count("\t") > first_line.count(",") else ","
            header = next(csv.reader([first_line], delimiter=delimiter), [])
            layout = resolve_layout(mapping, list(header), info.path.name)
            row_no = mapping.header_row
            idx = layout.index
            width = max(idx) + 1
            # itemgetter picks the mapped cells in C; rows too short (or unmapped optional cells) take the slow path
            pick = itemgetter(*idx) if len(idx) > 1 and min(idx) >= 0 else None
            for row in csv.reader(fh, delimiter=delimiter):
                row_no += 1
                if not any(row):
                    continue
                if pick is not None and len(row) >= width:
                    yield row_no, list(pick(row))
                    continue
                n = len(row)
                yield row_no, [row[i] if 0 <= i < n else None for i in idx]

    except UnicodeDecodeError as exc:
        raise ExtractError(
            f"{info.path.name}: bytes are neither UTF-8 nor GBK/GB18030 near offset {exc.start}; "
            "re-export the extract as UTF-8 or GBK"
        ) from exc
    except csv.Error as exc:
        raise ExtractError(f"{info.path.name}: malformed CSV ({exc})") from exc


def _xlsx_limits() -> ZipLimits:
    from lifecert.storage.safezip import ZipLimits

    # Real sheets deflate 5-50x; a member over 500x is a zip bomb (deflate tops out near 1030x).
    return ZipLimits(max_members=10_000, max_member_bytes=1 << 30, max_total_bytes=2 << 30, max_ratio=500)


def _iter_xlsx(info: FileInfo, mapping: Mapping) -> Iterator[tuple[int, list[object]]]:
    import zipfile
    import zlib

    from openpyxl import load_workbook

    from lifecert.storage.safezip import checked_members

    def too_big(message: str, code: ErrorCode) -> LifecertError:
        return ExtractError(f"{info.path.name}: {message}")

    # What a corrupt workbook raises while a part is inflated or parsed: a bad deflate stream, a
    # truncated member, broken XML (ElementTree's ParseError is a SyntaxError).
    broken = (zipfile.BadZipFile, zlib.error, EOFError, SyntaxError)
    try:
        # The central directory first (nothing inflated): a 300 KB workbook must not unpack to gigabytes.
        with zipfile.ZipFile(info.path) as zf:
            checked_members(zf, _xlsx_limits(), too_big)
        wb = load_workbook(info.path, read_only=True, data_only=True)
    except (*broken, OSError, KeyError, ValueError) as exc:
        raise ExtractError(f"{info.path.name}: not a readable XLSX workbook ({exc})") from exc
    try:
        if mapping.sheet:
            if mapping.sheet not in wb.sheetnames:
                raise MappingError(
                    f"{info.path.name}: no sheet {mapping.sheet!r} (sheets: {', '.join(wb.sheetnames)})"
                )
            ws = wb[mapping.sheet]
        else:
            ws = wb.worksheets[0]
        rows = ws.iter_rows(values_only=True)
        header: tuple[object, ...] | None = None
        for i, r in enumerate(rows, start=1):
            if i == mapping.header_row:
                header = r
                break
        if header is None:
            raise ExtractError(f"{info.path.name}: no header row at row {mapping.header_row}")
        layout = resolve_layout(mapping, list(header), info.path.name)
        row_no = mapping.header_row
        for r in rows:
            row_no += 1
            if not r or all(v is None or (isinstance(v, str) and not v.strip()) for v in r):
                continue
            yield row_no, _pick(r, layout)
    except broken as exc:  # a sheet broken past the rows already read
        raise ExtractError(f"{info.path.name}: not a readable XLSX workbook ({exc})") from exc
    finally:
        wb.close()
