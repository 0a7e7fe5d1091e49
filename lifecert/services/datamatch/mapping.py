"""Column mappings: one YAML file per department in ``<data_dir>/mappings/<department>.yaml``.

A mapping names the department, the kind of extract (death, imprisonment, alive
evidence), how often it is due, and which column header holds each field. A new
department with a new layout is a new file, never new code. The package ships
examples (``lifecert/data/mappings``) that seed the data directory on first use.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lifecert.config import Settings
from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.storage.models_data import DataKind

DEFAULT_DATE_FORMATS = ("%Y-%m-%d", "%Y%m%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日")

# Required fields per kind; imprisonment also needs term_start or release_date (checked below).
REQUIRED: dict[str, tuple[str, ...]] = {
    DataKind.DEATH: ("id_number", "name", "death_date"),
    DataKind.IMPRISONMENT: ("id_number", "name"),
    DataKind.ALIVE_EVIDENCE: ("id_number", "name", "evidence_date"),
}
OPTIONAL: dict[str, tuple[str, ...]] = {
    DataKind.DEATH: ("detail",),
    DataKind.IMPRISONMENT: ("term_start", "term_end", "release_date", "detail"),
    DataKind.ALIVE_EVIDENCE: ("detail",),
}
DEPARTMENT_CODE = re.compile(r"^[a-z0-9][a-z0-9_\-]{1,63}$")  # a department's code (mapping file, exchange API)


class MappingError(LifecertError):
    code = ErrorCode.BAD_MAPPING


@dataclass(frozen=True)
class Mapping:
    department: str
    name: str
    kind: str
    columns: dict[str, tuple[str, ...]]  # field -> accepted headers (first found wins)
    cadence_months: int = 1
    due_day: int = 10
    date_formats: tuple[str, ...] = DEFAULT_DATE_FORMATS
    evidence_type: str = ""
    sheet: str | None = None
    header_row: int = 1  # 1-based line of the header (title rows above it are skipped)
    sha256: str = ""
    path: Path | None = field(default=None, compare=False)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.columns)


def normalize_header(h: object) -> str:
    """Headers compared after NFKC (full-width → half-width), without spaces or a BOM."""
    s = unicodedata.normalize("NFKC", str(h if h is not None else "")).replace("\ufeff", "")
    return "".join(s.split())


def shipped_mappings_dir() -> Path:
    import lifecert

    return Path(lifecert.__file__).resolve().parent / "data" / "mappings"


def mappings_dir(settings: Settings) -> Path:
    return settings.data_dir / "mappings"


def seed_mappings(settings: Settings) -> Path:
    """Create ``<data_dir>/mappings`` (0700) and copy shipped examples that are not there yet (0600)."""
    target = mappings_dir(settings)
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    for src in sorted(shipped_mappings_dir().glob("*.yaml")):
        dst = target / src.name
        if not dst.exists():
            shutil.copyfile(src, dst)
            os.chmod(dst, 0o600)
    return target


def load_mapping(path: Path) -> Mapping:
    """Read and check one mapping file; every problem is a :class:`MappingError` naming the file."""
    where = str(path)
    if not path.is_file():
        raise MappingError(f"mapping file {where} does not exist", path=where)
    raw_bytes = path.read_bytes()
    try:
        doc = yaml.safe_load(raw_bytes.decode("utf-8-sig"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise MappingError(f"mapping file {where} is not valid UTF-8 YAML: {exc}", path=where) from exc
    if not isinstance(doc, dict):
        raise MappingError(f"mapping file {where} must be a YAML mapping with keys department, kind, columns",
                           path=where)
    return parse_mapping(doc, where=where, sha256=hashlib.sha256(raw_bytes).hexdigest(), path=path)


def parse_mapping(doc: dict[str, Any], *, where: str = "<mapping>", sha256: str = "",
                  path: Path | None = None) -> Mapping:
    def fail(msg: str) -> MappingError:
        return MappingError(f"{where}: {msg}", path=where)

    department = str(doc.get("department") or (path.stem if path else "")).strip()
    if not DEPARTMENT_CODE.match(department):
        raise fail(f"department {department!r} must be 2-64 characters of a-z, 0-9, '_' or '-'")
    if path is not None and path.stem != department:
        raise fail(f"department {department!r} does not match the file name {path.name!r}")
    kind = str(doc.get("kind", "")).strip()
    if kind not in DataKind.ALL:
        raise fail(f"kind {kind!r} is not one of {', '.join(DataKind.ALL)}")
    cols = doc.get("columns")
    if not isinstance(cols, dict) or not cols:
        raise fail("'columns' must map field names to column headers")
    allowed = set(REQUIRED[kind]) | set(OPTIONAL[kind])
    columns: dict[str, tuple[str, ...]] = {}
    for fld, spec in cols.items():
        if fld not in allowed:
            raise fail(f"field {fld!r} is not known for kind {kind}; known: {', '.join(sorted(allowed))}")
        headers = spec if isinstance(spec, list) else [spec]
        names = tuple(normalize_header(h) for h in headers if h is not None and str(h).strip())
        if not names:
            raise fail(f"field {fld!r} has no column header")
        columns[str(fld)] = names
    missing = [f for f in REQUIRED[kind] if f not in columns]
    if missing:
        raise fail(f"kind {kind} needs column(s) for {', '.join(missing)}")
    if kind == DataKind.IMPRISONMENT and not ({"term_start", "release_date"} & set(columns)):
        raise fail("kind imprisonment needs a column for term_start (sentences) or release_date (releases)")
    try:
        cadence = int(doc.get("cadence_months", 1))
        due_day = int(doc.get("due_day", 10))
        header_row = int(doc.get("header_row", 1))
    except (TypeError, ValueError) as exc:
        raise fail(f"cadence_months, due_day and header_row must be whole numbers ({exc})") from exc
    if not 1 <= cadence <= 6:
        raise fail(f"cadence_months must be 1..6 (extracts come at most every six months), got {cadence}")
    if not 1 <= due_day <= 28:
        raise fail(f"due_day must be 1..28, got {due_day}")
    if header_row < 1:
        raise fail("header_row is 1-based and must be at least 1")
    fmts = doc.get("date_formats") or list(DEFAULT_DATE_FORMATS)
    if not isinstance(fmts, list) or not all(isinstance(f, str) and "%" in f for f in fmts):
        raise fail("date_formats must be a list of strftime patterns such as '%Y-%m-%d'")
    return Mapping(
        department=department,
        name=str(doc.get("name") or department),
        kind=kind,
        columns=columns,
        cadence_months=cadence,
        due_day=due_day,
        date_formats=tuple(fmts),
        evidence_type=str(doc.get("evidence_type") or ""),
        sheet=str(doc["sheet"]) if doc.get("sheet") else None,
        header_row=header_row,
        sha256=sha256,
        path=path,
    )


def mapping_for(settings: Settings, department: str, explicit: Path | None = None) -> Mapping:
    """The mapping of ``department`` (or an explicit file), seeding the directory first."""
    if explicit is not None:
        m = load_mapping(explicit)
        if m.department != department:
            raise MappingError(f"{explicit}: mapping is for department {m.department!r}, not {department!r}")
        return m
    directory = seed_mappings(settings)
    path = directory / f"{department}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in directory.glob("*.yaml"))) or "none"
        raise MappingError(
            f"no mapping for department {department!r}: create {path} (known departments: {known})",
            department=department,
        )
    return load_mapping(path)


def all_mappings(settings: Settings) -> list[Mapping]:
    """Every readable mapping in the data directory (broken files are skipped here, reported on use)."""
    out = []
    for p in sorted(seed_mappings(settings).glob("*.yaml")):
        try:
            out.append(load_mapping(p))
        except MappingError:
            continue
    return out
