"""Reading enrollment inputs into rows.

Accepted inputs:
- a folder of photos plus a CSV or XLSX manifest (columns: ID number, name, photo file name;
  English or Chinese headers), or
- a folder whose photo file names are ID numbers (``11010519491231002X.jpg``), or
- a zip of either (the manifest may be inside the zip or given separately).

CSV encodings: UTF-8, UTF-8 with BOM, GBK/GB18030 (detected: strict UTF-8 first, then GB18030).

Inputs are untrusted: zips (and XLSX manifests, which are zips) go through the hardened reader
(:mod:`lifecert.storage.safezip`) before anything is decompressed, manifests and photos are
read with a size limit, streaming, never whole first; symbolic links leading out of a photo
folder are ignored.
"""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath

from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.storage.safezip import ZipLimits, checked_members, read_file, read_limited

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".pgm", ".ppm",
                  ".heic", ".heif", ".avif"}
MANIFEST_SUFFIXES = {".csv", ".xlsx"}

COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "id_number": ("id_number", "idnumber", "id", "id_no", "身份证号", "身份证号码", "公民身份号码", "证件号码"),
    "name": ("name", "姓名", "名字"),
    "photo": ("photo", "photo_file", "file", "filename", "file_name", "照片", "照片文件", "文件名", "相片"),
}


class ManifestError(LifecertError):
    code = ErrorCode.BAD_MANIFEST


def _manifest_error(message: str, code: ErrorCode) -> ManifestError:
    return ManifestError(message, code=code)


MAX_MANIFEST_BYTES = 64 << 20  # ~500k rows of CSV; a manifest is text, not a payload
# A zip of ID photos: many members, each small and barely compressible. A photo over the image
# limit becomes that row's IMAGE_TOO_LARGE, so the per-member limit here only stops absurd ones.
PHOTO_ZIP_LIMITS = ZipLimits(max_members=1_000_000, max_member_bytes=1 << 30, max_total_bytes=256 << 30)
XLSX_LIMITS = ZipLimits(max_members=10_000, max_member_bytes=256 << 20, max_total_bytes=512 << 20)


@lru_cache(maxsize=4)
def _open_zip(path: str) -> zipfile.ZipFile:
    """Zip handles are cached per process: re-parsing a large central directory per photo is O(n²)."""
    return zipfile.ZipFile(path)


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where a photo's bytes are: a file path, or a member of a zip archive."""

    path: str
    member: str | None = None

    def read(self, limit: int) -> bytes:
        """The photo's bytes, streamed; a PAYLOAD_TOO_LARGE error past ``limit`` bytes."""
        if self.member is None:
            return read_file(Path(self.path), limit, f"photo {self.display}")
        with _open_zip(self.path).open(self.member) as src:
            return read_limited(src, limit, f"photo {self.display}")

    def size(self) -> int:
        """The declared size (a zip member may lie: :meth:`read` still stops at its limit)."""
        if self.member is None:
            return Path(self.path).stat().st_size
        return _open_zip(self.path).getinfo(self.member).file_size

    def exists(self) -> bool:
        if self.member is None:
            return Path(self.path).is_file()
        try:
            _open_zip(self.path).getinfo(self.member)
        except KeyError:
            return False
        return True

    @property
    def display(self) -> str:
        return self.member or Path(self.path).name


@dataclass(frozen=True, slots=True)
class Row:
    row_no: int  # 1-based data row number in the manifest (or file order)
    id_number: str  # as given (validated later)
    name: str
    photo_name: str
    source: SourceRef | None  # None when the named file is missing


@dataclass(frozen=True, slots=True)
class Inputs:
    rows: list[Row]
    description: str

    def fingerprint(self) -> str:
        h = hashlib.sha256(self.description.encode())
        for r in self.rows:
            h.update(f"{r.row_no}|{r.id_number}|{r.name}|{r.photo_name}\n".encode())
        return h.hexdigest()


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM) if it decodes strictly, else GB18030 (a superset of GBK)."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise ManifestError("manifest is neither UTF-8 nor GBK/GB18030 text") from exc


def _header_map(header: list[str]) -> dict[str, int]:
    norm = [h.strip().lower().replace(" ", "_") for h in header]
    found: dict[str, int] = {}
    for key, aliases in COLUMN_ALIASES.items():
        for i, h in enumerate(norm):
            if h in aliases:
                found[key] = i
                break
    missing = [k for k in ("id_number", "photo") if k not in found]
    if missing:
        raise ManifestError(
            f"manifest is missing column(s) {', '.join(missing)}; header was {header!r} "
            f"(accepted names: {', '.join(a for k in missing for a in COLUMN_ALIASES[k])})"
        )
    return found


def read_table(data: bytes, suffix: str) -> list[list[str]]:
    """All rows (header first) of a CSV or XLSX manifest, as stripped strings."""
    if suffix == ".xlsx":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                checked_members(zf, XLSX_LIMITS, _manifest_error)  # an XLSX is a zip: no bombs
        except zipfile.BadZipFile as exc:
            raise ManifestError(f"cannot read XLSX manifest: {exc}") from exc
        try:
            import openpyxl

            wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many types for a bad workbook
            raise ManifestError(f"cannot read XLSX manifest: {exc}") from exc
        ws = wb.worksheets[0]
        rows = [["" if c is None else str(c).strip() for c in r] for r in ws.iter_rows(values_only=True)]
        wb.close()
    elif suffix == ".csv":
        text = decode_text(data)
        rows = [[c.strip() for c in r] for r in csv.reader(io.StringIO(text))]
    else:
        raise ManifestError(f"manifest must be .csv or .xlsx, not {suffix or 'no extension'}")
    rows = [r for r in rows if any(c for c in r)]
    if not rows:
        raise ManifestError("manifest is empty")
    if len(rows) == 1:
        raise ManifestError("manifest has a header but no rows")
    return rows


def _rows_from_table(table: list[list[str]], lookup: dict[str, SourceRef]) -> list[Row]:
    cols = _header_map(table[0])
    out = []
    for i, r in enumerate(table[1:], start=1):
        def cell(key: str, r: list[str] = r) -> str:
            idx = cols.get(key)
            return r[idx] if idx is not None and idx < len(r) else ""

        photo = cell("photo")
        ref = lookup.get(photo) or lookup.get(PurePosixPath(photo).name)
        out.append(Row(row_no=i, id_number=cell("id_number"), name=cell("name"), photo_name=photo, source=ref))
    return out


def _rows_from_names(lookup: dict[str, SourceRef]) -> list[Row]:
    names = sorted({k for k in lookup if "/" not in k})
    rows = [
        Row(row_no=i, id_number=PurePosixPath(n).stem, name="", photo_name=n, source=lookup[n])
        for i, n in enumerate(names, start=1)
    ]
    if not rows:
        raise ManifestError("no photos found and no manifest given")
    return rows


def _is_image(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES and not PurePosixPath(name).name.startswith(".")


def load_inputs(source: Path, manifest: Path | None = None) -> Inputs:
    """Resolve ``source`` (folder or zip) and an optional manifest into rows."""
    if not source.exists():
        raise ManifestError(f"input not found: {source}", code=ErrorCode.FILE_MISSING)
    lookup: dict[str, SourceRef] = {}
    inner_manifest: tuple[bytes, str] | None = None
    if source.is_dir():
        root = source.resolve()
        for p in sorted(source.rglob("*")):
            if p.is_file() and _is_image(p.name) and p.resolve().is_relative_to(root):
                rel = p.relative_to(source).as_posix()
                ref = SourceRef(str(p))
                lookup[rel] = ref
                lookup.setdefault(p.name, ref)
    elif zipfile.is_zipfile(source):
        try:
            zf = _open_zip(str(source))
            members = checked_members(zf, PHOTO_ZIP_LIMITS, _manifest_error)
            for info, member in members:
                if _is_image(info.filename):
                    ref = SourceRef(str(source), info.filename)
                    lookup[member.as_posix()] = ref
                    lookup.setdefault(member.name, ref)
                elif member.suffix.lower() in MANIFEST_SUFFIXES and manifest is None:
                    with zf.open(info) as src:
                        text = read_limited(src, MAX_MANIFEST_BYTES, f"manifest {member}", _manifest_error)
                    inner_manifest = (text, member.suffix.lower())
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as exc:
            raise ManifestError(f"{source.name} is not a readable zip archive ({exc})") from exc
    else:
        raise ManifestError(f"input must be a folder or a .zip file: {source}")

    if manifest is not None:
        if not manifest.is_file():
            raise ManifestError(f"manifest not found: {manifest}", code=ErrorCode.FILE_MISSING)
        data = read_file(manifest, MAX_MANIFEST_BYTES, f"manifest {manifest.name}", _manifest_error)
        rows = _rows_from_table(read_table(data, manifest.suffix.lower()), lookup)
        desc = f"{source.resolve()}|{manifest.resolve()}"
    elif inner_manifest is not None:
        rows = _rows_from_table(read_table(*inner_manifest), lookup)
        desc = f"{source.resolve()}|<zip manifest>"
    else:
        rows = _rows_from_names(lookup)
        desc = f"{source.resolve()}|<file names>"
    return Inputs(rows=rows, description=desc)


def synth_manifest(folder: Path, out: Path, region: str = "220202", seed: str | None = None) -> tuple[int, str]:
    """Demo manifest for ``folder/<person>/<photo>``: one synthetic valid ID number per person.
    Returns (rows, seed).

    Photo paths are written relative to ``folder``. Each ID number (birth date 1940-1964,
    serial) is drawn from a hash of ``seed`` and the person's folder name; ``seed`` defaults
    to the folder's own name, so the same folder always gives the same manifest and two
    different folders do not share ID numbers (which would make one replace the other).
    """
    import hashlib
    from datetime import date, timedelta

    from lifecert.domain.idnumber import make_id_number

    if not folder.is_dir():
        raise ManifestError(f"not a folder: {folder}", code=ErrorCode.FILE_MISSING)
    seed = seed if seed is not None else folder.resolve().name
    rows = []
    used: set[str] = set()
    for person in sorted(p for p in folder.iterdir() if p.is_dir()):
        photos = sorted(p for p in person.iterdir() if p.is_file() and _is_image(p.name))
        if not photos:
            continue
        h = int.from_bytes(hashlib.sha256(f"{seed}/{person.name}".encode()).digest()[:8], "big")
        while True:  # ~9M numbers per region and seed: a rare clash takes the next one
            born = date(1940, 1, 1) + timedelta(days=h % 9000)
            idn = make_id_number(region, born, 1 + (h // 9000) % 999)
            if idn not in used:
                break
            h += 1
        used.add(idn)
        rows.append([idn, person.name, photos[0].relative_to(folder).as_posix()])
    if not rows:
        raise ManifestError(f"no person folders with photos under {folder}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id_number", "name", "photo"])
        w.writerows(rows)
    return len(rows), seed
