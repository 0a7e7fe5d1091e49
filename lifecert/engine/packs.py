"""Model packs: every set of third-party weights the engines load (insightface packs,
EdgeFace, YuNet, MiniFASNet, ...), described in ``models/manifest.toml`` and installed
into ``settings.resolved_models_dir / <name>``.

A pack is a ``[packs.NAME]`` table of the manifest::

    [packs.yunet]
    version = "2023mar"
    engine = "edgeface"            # who loads it (informational; engines look packs up by name)
    licence = "MIT / Apache-2.0"
    source = "opencv_zoo models/face_detection_yunet"
    # url = "https://.../NAME.zip" # optional: an archive `lifecert models pull` downloads

    [packs.yunet.files."face_detection_yunet_2023mar.onnx"]
    role = "detection"             # what the file is FOR; never guessed from tensor shapes
    sha256 = "8f23..."             # pinned: install/pull/load refuse any other bytes
    url = "https://.../x.onnx"     # optional: per-file download for `pull` (needs a pin)
    required = true                # default true; false files may be absent
    input_size = [320, 320]        # optional model facts the engines read
    input_mean = 127.5
    input_std = 127.5

``install`` takes a folder (copies the files the manifest names, nothing else) or a zip
(hardened reader: no absolute paths, ``..``, symlinks, encrypted members, bombs). Both
stage into a temporary folder, check the pins and the required roles, write ``pack.json``
(every file's sha256 and size) and only then replace an existing install. Loading
re-hashes the files against ``pack.json`` and the pins (:func:`require`). Nothing here
touches the network except :func:`pull_pack`, run on request.

How a pack is used by engine code::

    pack = packs.require(settings, "minifasnet")      # verified, or ModelError MODEL_MISSING
    path = pack.path("pad_v2")                         # the file playing role "pad_v2"
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import socket
import stat
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from lifecert.domain.errors import ErrorCode, ModelError
from lifecert.engine.manifest import Threshold, load_manifest, sha256_file
from lifecert.storage.safezip import ZipLimits, checked_members

if TYPE_CHECKING:
    from lifecert.config import Settings

PACK_RECORD = "pack.json"
PACK_RECORD_FORMAT = 1

# Size guards for zips and folders. Real packs: buffalo_l is ~330 MB unpacked, antelopev2 ~400 MB.
MAX_MEMBER_BYTES = 1 << 30
MAX_TOTAL_BYTES = 2 << 30
MAX_MEMBERS = 64
MAX_RATIO = 200  # uncompressed / compressed; ONNX weights barely compress, bombs do

_PACK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


# -- the manifest's description ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PackFile:
    """One file of a pack. ``input_size`` is (width, height); (0, 0) means dynamic or n/a."""

    name: str
    role: str
    input_size: tuple[int, int]
    required: bool
    sha256: str | None = None
    input_mean: float | None = None
    input_std: float | None = None
    url: str | None = None
    embedding_size: int | None = None
    # Files built on this machine from an upstream original (lifecert.engine.pack_convert): where
    # the original is, its pinned sha256, the network it holds, and the sha256 of the conversion.
    upstream_url: str | None = None
    upstream_name: str | None = None
    upstream_sha256: str | None = None
    architecture: str | None = None
    converted_sha256: str | None = None

    @property
    def pins(self) -> tuple[str, ...]:
        """Every sha256 this file may have: the distributed file's and the local conversion's."""
        return tuple(p for p in (self.sha256, self.converted_sha256) if p)

    @property
    def convertible(self) -> bool:
        return bool(self.upstream_url and self.upstream_name and self.upstream_sha256 and self.architecture)


@dataclass(frozen=True, slots=True)
class PackSpec:
    name: str
    version: str
    engine: str | None
    files: tuple[PackFile, ...]
    archive: str
    embedding_size: int | None = None
    licence: str | None = None
    source: str | None = None
    url: str | None = None
    thresholds: dict[str, Threshold] = field(default_factory=dict)

    def by_role(self, role: str) -> PackFile | None:
        return next((f for f in self.files if f.role == role), None)

    def file(self, role: str) -> PackFile:
        """The file playing ``role``; CONFIG_ERROR when the manifest names none."""
        f = self.by_role(role)
        if f is None:
            raise ModelError(f"manifest pack '{self.name}' names no {role} file", code=ErrorCode.CONFIG_ERROR)
        return f

    @property
    def required_files(self) -> list[PackFile]:
        return [f for f in self.files if f.required]

    @property
    def downloadable(self) -> bool:
        return (bool(self.url) or any(f.url for f in self.files) or self.engine == "insightface"
                or self.convertible)

    @property
    def convertible(self) -> bool:
        """Every required file can be built here from a pinned upstream original."""
        return all(f.convertible for f in self.required_files)


@dataclass(frozen=True, slots=True)
class InstalledPack:
    """A pack present (and, through :func:`require`, verified) in the models directory."""

    spec: PackSpec
    directory: Path

    def path(self, role: str) -> Path:
        """The installed file playing ``role`` (MODEL_MISSING when absent)."""
        f = self.spec.file(role)
        p = self.directory / f.name
        if not p.is_file():
            raise ModelError(
                f"{f.name} ({role}) is missing from {self.directory}; {install_hint(self.spec.name)}",
                code=ErrorCode.MODEL_MISSING,
            )
        return p

    def has(self, role: str) -> bool:
        f = self.spec.by_role(role)
        return f is not None and (self.directory / f.name).is_file()


def install_hint(name: str, manifest_path: Path | None = None) -> str:
    """The commands that put pack ``name`` in place, for error messages."""
    try:
        return install_hint_for(pack_spec(name, manifest_path))
    except ModelError:
        return f"run `lifecert models pull {name}` or, offline, `lifecert models install --from {name}.zip`"


def check_pack_name(name: str) -> str:
    if not _PACK_NAME.match(name) or ".." in name:
        raise ModelError(f"'{name}' is not a valid pack name (letters, digits, _ . -)", code=ErrorCode.BAD_REQUEST)
    return name


def check_file_name(name: str) -> str:
    if "/" in name or "\\" in name or name.startswith(".") or not name or name == PACK_RECORD:
        raise ModelError(f"manifest file name '{name}' must be a plain file name", code=ErrorCode.CONFIG_ERROR)
    return name


def _raw_packs(manifest_path: Path | None) -> dict[str, Any]:
    packs = load_manifest(manifest_path).get("packs", {})
    if not isinstance(packs, dict):
        raise ModelError("manifest [packs] must be a table", code=ErrorCode.CONFIG_ERROR)
    return packs


def known_packs(manifest_path: Path | None = None, *, engine: str | None = None) -> list[str]:
    """Pack names of the manifest, optionally only those an engine loads."""
    raw = _raw_packs(manifest_path)
    return sorted(n for n, p in raw.items() if engine is None or (isinstance(p, dict) and p.get("engine") == engine))


def _opt_float(f: dict[str, Any], key: str) -> float | None:
    return float(f[key]) if key in f else None


def pack_spec(name: str, manifest_path: Path | None = None) -> PackSpec:
    """The manifest's description of pack ``name``; CONFIG_ERROR when it has none or it is malformed."""
    check_pack_name(name)
    raw = _raw_packs(manifest_path).get(name)
    if raw is None:
        known = ", ".join(known_packs(manifest_path)) or "none"
        raise ModelError(
            f"model pack '{name}' is not described in the model manifest (known: {known}); "
            f"describe it under [packs.{name}] in models/manifest.toml",
            code=ErrorCode.CONFIG_ERROR,
        )
    try:
        files = []
        for fname, f in raw.get("files", {}).items():
            size = f.get("input_size", [0, 0])
            pin = str(f["sha256"]).lower() if f.get("sha256") else None
            up_pin = str(f["upstream_sha256"]).lower() if f.get("upstream_sha256") else None
            conv_pin = str(f["converted_sha256"]).lower() if f.get("converted_sha256") else None
            for what, v in (("sha256", pin), ("upstream_sha256", up_pin), ("converted_sha256", conv_pin)):
                if v is not None and not _SHA256.match(v):
                    raise ValueError(f"{what} of {fname} is not 64 hex digits")
            files.append(PackFile(
                name=check_file_name(fname),
                role=str(f["role"]),
                input_size=(int(size[0]), int(size[1])),
                required=bool(f.get("required", True)),
                sha256=pin,
                input_mean=_opt_float(f, "input_mean"),
                input_std=_opt_float(f, "input_std"),
                url=str(f["url"]) if f.get("url") else None,
                embedding_size=int(f["embedding_size"]) if "embedding_size" in f else None,
                upstream_url=str(f["upstream_url"]) if f.get("upstream_url") else None,
                upstream_name=check_file_name(str(f["upstream"])) if f.get("upstream") else None,
                upstream_sha256=up_pin,
                architecture=str(f["architecture"]) if f.get("architecture") else None,
                converted_sha256=conv_pin,
            ))
        th = {
            k: Threshold(similarity=float(t["similarity"]), far=t.get("far"), dataset=t.get("dataset"),
                         date=t.get("date"))
            for k, t in raw.get("thresholds", {}).items()
        }
        spec = PackSpec(
            name=name,
            version=str(raw.get("version", "1")),
            engine=str(raw["engine"]) if raw.get("engine") else None,
            files=tuple(files),
            archive=str(raw.get("archive", f"{name}.zip")),
            embedding_size=int(raw["embedding_size"]) if "embedding_size" in raw else None,
            licence=str(raw["licence"]) if raw.get("licence") else None,
            source=str(raw["source"]) if raw.get("source") else None,
            url=str(raw["url"]) if raw.get("url") else None,
            thresholds=th,
        )
    except ModelError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise ModelError(f"manifest entry of pack '{name}' is malformed: {exc}", code=ErrorCode.CONFIG_ERROR) from exc
    if not spec.required_files:
        raise ModelError(f"manifest pack '{name}' names no required file", code=ErrorCode.CONFIG_ERROR)
    roles = [f.role for f in spec.files]
    if len(set(roles)) != len(roles):
        raise ModelError(f"manifest pack '{name}' gives one role to two files", code=ErrorCode.CONFIG_ERROR)
    return spec


# -- installed packs ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FileCheck:
    name: str
    role: str | None
    status: str  # ok | missing | changed
    sha256: str | None
    detail: str = ""


def pack_dir(models_dir: Path, name: str) -> Path:
    return Path(models_dir) / check_pack_name(name)


def read_pack_record(directory: Path) -> dict[str, Any] | None:
    """The pack.json of an installed pack, or None when there is none."""
    p = directory / PACK_RECORD
    if not p.is_file():
        return None
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{p} is unreadable ({exc})", code=ErrorCode.MODEL_MISSING) from exc
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise ModelError(f"{p} is not a pack record", code=ErrorCode.MODEL_MISSING)
    return data


def check_pack(models_dir: Path, spec: PackSpec) -> list[FileCheck]:
    """Re-hash every file recorded in pack.json and compare with the record and the
    manifest's pins. Raises MODEL_MISSING when the pack or its record is absent."""
    d = pack_dir(models_dir, spec.name)
    hint = install_hint_for(spec)
    if not d.is_dir():
        raise ModelError(f"model pack '{spec.name}' is not installed in {d}; {hint}", code=ErrorCode.MODEL_MISSING)
    record = read_pack_record(d)
    if record is None:
        raise ModelError(
            f"{d} has no {PACK_RECORD} (files were not installed by lifecert, so their sha256 is unknown); {hint}",
            code=ErrorCode.MODEL_MISSING,
        )
    roles = {f.name: f for f in spec.files}
    out: list[FileCheck] = []
    names = set(record["files"]) | {f.name for f in spec.required_files}
    for fname in sorted(names):
        entry = record["files"].get(fname) or {}
        pf = roles.get(fname)
        role = pf.role if pf else entry.get("role")
        path = d / fname
        if not path.is_file():
            out.append(FileCheck(fname, role, "missing", None, "file not present"))
            continue
        actual = sha256_file(path)
        recorded = entry.get("sha256")
        if recorded is None:
            out.append(FileCheck(fname, role, "missing", actual, f"not recorded in {PACK_RECORD}"))
        elif actual != recorded:
            out.append(FileCheck(fname, role, "changed", actual, f"sha256 {actual[:12]}… != recorded {recorded[:12]}…"))
        elif pf is not None and pf.pins and actual not in pf.pins:
            out.append(FileCheck(fname, role, "changed", actual,
                                 f"sha256 {actual[:12]}… != manifest {pf.pins[0][:12]}…"))
        else:
            out.append(FileCheck(fname, role, "ok", actual))
    return out


def install_hint_for(spec: PackSpec) -> str:
    if spec.convertible and not spec.url:
        return (f"run `lifecert models pull {spec.name}` (downloads the pinned upstream originals and converts them) "
                f"or, offline, `lifecert models install {spec.name} --from DIR` (DIR holds the pack's files)")
    if spec.engine != "insightface" and not spec.downloadable:
        return f"run `lifecert models install {spec.name} --from DIR` (DIR holds the pack's files)"
    return f"run `lifecert models pull {spec.name}` or, offline, `lifecert models install --from {spec.name}.zip`"


def verify_pack(models_dir: Path, spec: PackSpec) -> list[FileCheck]:
    """:func:`check_pack`, raising MODEL_MISSING naming every bad file (with the fix)."""
    checks = check_pack(models_dir, spec)
    bad = [c for c in checks if c.status != "ok"]
    if bad:
        what = "; ".join(f"{c.name}: {c.detail}" for c in bad)
        raise ModelError(
            f"model pack '{spec.name}' in {pack_dir(models_dir, spec.name)} is damaged ({what}); "
            f"{install_hint_for(spec)}",
            code=ErrorCode.MODEL_MISSING,
        )
    return checks


def require(settings: Settings, name: str, *, verify: bool = True) -> InstalledPack:
    """Pack ``name`` from ``settings.resolved_models_dir``, re-hashed unless ``verify`` is False.
    MODEL_MISSING (with the command that fixes it) when absent or damaged."""
    spec = pack_spec(name, settings.manifest_path)
    directory = pack_dir(settings.resolved_models_dir, name)
    if verify:
        verify_pack(settings.resolved_models_dir, spec)
    elif not directory.is_dir():
        raise ModelError(
            f"model pack '{name}' is not installed in {directory}; {install_hint_for(spec)}",
            code=ErrorCode.MODEL_MISSING,
        )
    return InstalledPack(spec, directory)


def is_installed(settings: Settings, name: str) -> bool:
    """True when pack ``name`` has a pack record in the models directory (not re-hashed)."""
    try:
        d = pack_dir(settings.resolved_models_dir, name)
        return read_pack_record(d) is not None if d.is_dir() else False
    except ModelError:
        return False


# -- installing: the hardened zip reader (lifecert.storage.safezip) --------------------------------
def _pack_error(message: str, code: ErrorCode) -> ModelError:
    return ModelError(message, code=code)


def _plan_members(zf: zipfile.ZipFile) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    limits = ZipLimits(MAX_MEMBERS, MAX_MEMBER_BYTES, MAX_TOTAL_BYTES, MAX_RATIO)  # read now: tests patch them
    members = checked_members(zf, limits, _pack_error)
    if not members:
        raise ModelError("zip holds no files", code=ErrorCode.MODEL_MISSING)
    # Packs are zipped either flat (buffalo_l.zip) or inside one folder (antelopev2.zip).
    tops = {rel.parts[0] for _, rel in members}
    if len(tops) == 1 and all(len(rel.parts) > 1 for _, rel in members):
        members = [(i, PurePosixPath(*rel.parts[1:])) for i, rel in members]
    seen: set[str] = set()
    for _, rel in members:
        key = str(rel).lower()
        if key in seen or key == PACK_RECORD:
            raise ModelError(f"zip has a duplicate or reserved entry '{rel}'", code=ErrorCode.BAD_REQUEST)
        seen.add(key)
    return members


def _copy_stream(src: Any, target: Path, limit: int, what: str) -> tuple[str, int]:
    """Stream ``src`` to a new file ``target`` (never more than ``limit`` bytes); (sha256, size)."""
    h = hashlib.sha256()
    written = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("xb") as dst:
        for chunk in iter(lambda: src.read(1 << 20), b""):
            written += len(chunk)
            if written > limit:
                raise ModelError(f"{what} is larger than declared", code=ErrorCode.BAD_REQUEST)
            h.update(chunk)
            dst.write(chunk)
    return h.hexdigest(), written


def _stage_zip(zip_path: Path, staging: Path) -> dict[str, dict[str, Any]]:
    files: dict[str, dict[str, Any]] = {}
    try:
        with zipfile.ZipFile(zip_path) as zf:
            for info, rel in _plan_members(zf):
                with zf.open(info) as src:
                    digest, size = _copy_stream(src, staging.joinpath(*rel.parts), info.file_size,
                                                f"zip member '{info.filename}'")
                files[str(rel)] = {"sha256": digest, "size": size}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, NotImplementedError) as exc:
        raise ModelError(f"{zip_path.name} is not a readable zip archive ({exc})",
                         code=ErrorCode.MODEL_MISSING) from exc
    return files


def _stage_dir(src_dir: Path, spec: PackSpec, staging: Path) -> dict[str, dict[str, Any]]:
    """Copy the files the manifest names (and only those) from a folder. Symbolic links and
    non-regular files are refused: the bytes installed must be the bytes in that folder."""
    files: dict[str, dict[str, Any]] = {}
    total = 0
    for f in spec.files:
        p = src_dir / f.name
        try:
            st = p.lstat()
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
            raise ModelError(f"{p} is not a regular file (links are refused)", code=ErrorCode.BAD_REQUEST)
        if st.st_size > MAX_MEMBER_BYTES:
            raise ModelError(f"{p} is {st.st_size} bytes; the limit is {MAX_MEMBER_BYTES}",
                             code=ErrorCode.PAYLOAD_TOO_LARGE)
        total += st.st_size
        if total > MAX_TOTAL_BYTES:
            raise ModelError(f"{src_dir} holds more than {MAX_TOTAL_BYTES} bytes of pack files",
                             code=ErrorCode.PAYLOAD_TOO_LARGE)
        with p.open("rb") as fh:
            digest, size = _copy_stream(fh, staging / f.name, st.st_size, str(p))
        files[f.name] = {"sha256": digest, "size": size}
    return files


def install_pack(
    source: Path, models_dir: Path, name: str | None = None, *, manifest_path: Path | None = None,
    source_label: str | None = None,
) -> dict[str, Any]:
    """Install pack ``name`` from a folder or a zip into ``models_dir/<name>``; returns pack.json.

    The name defaults to the folder's or zip's name. Refuses unknown packs (CONFIG_ERROR),
    unsafe zips (BAD_REQUEST / PAYLOAD_TOO_LARGE), unreadable zips, incomplete packs and
    files whose sha256 differs from the manifest's pin (MODEL_MISSING). An existing install
    is replaced only after the new one is complete; a failure leaves nothing behind.
    """
    source = Path(source)
    if source.is_dir():
        pack = name or source.name
    elif source.is_file():
        pack = name or source.name.removesuffix(".zip")
    else:
        raise ModelError(f"file not found: {source}", code=ErrorCode.FILE_MISSING)
    spec = pack_spec(pack, manifest_path)
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".staging-{pack}-", dir=models_dir))
    try:
        files = _stage_dir(source, spec, staging) if source.is_dir() else _stage_zip(source, staging)
        return _commit(spec, files, staging, models_dir, source_label or source.name, source.name)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _commit(
    spec: PackSpec, files: dict[str, dict[str, Any]], staging: Path, models_dir: Path, label: str, shown: str,
) -> dict[str, Any]:
    """Check the staged files against the spec, write pack.json, swap the folder in."""
    roles = {f.name: f.role for f in spec.files}
    for fname, entry in files.items():
        entry["role"] = roles.get(fname)
    missing = [f"{f.name} ({f.role})" for f in spec.required_files if f.name not in files]
    if missing:
        raise ModelError(f"{shown} is not a complete '{spec.name}' pack: missing {', '.join(missing)}",
                         code=ErrorCode.MODEL_MISSING)
    for f in spec.files:
        if f.pins and f.name in files and files[f.name]["sha256"] not in f.pins:
            raise ModelError(
                f"{f.name} in {shown} has sha256 {files[f.name]['sha256'][:12]}…, the manifest pins {f.pins[0][:12]}…",
                code=ErrorCode.MODEL_MISSING,
            )
    record = {
        "format": PACK_RECORD_FORMAT,
        "name": spec.name,
        "engine": spec.engine,
        "version": spec.version,
        "licence": spec.licence,
        "source": label,
        "installed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": dict(sorted(files.items())),
    }
    (staging / PACK_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    target = pack_dir(models_dir, spec.name)
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".old-{spec.name}-", dir=models_dir))
        target.replace(old / spec.name)
    staging.replace(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return record


# Kept for callers of the first pack API (zip only).
def install_pack_zip(
    zip_path: Path, models_dir: Path, name: str | None = None, *, manifest_path: Path | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    return install_pack(zip_path, models_dir, name, manifest_path=manifest_path, source_label=source)


# -- pulling -------------------------------------------------------------------------------------
def default_pack_url(spec: PackSpec) -> str | None:
    """Where pack ``spec`` is downloaded from as one archive: the manifest's ``url``, or for
    insightface packs insightface's own model-zoo address. None for per-file packs."""
    if spec.url:
        return spec.url
    if spec.engine == "insightface":
        from insightface.utils.storage import model_zoo_download_url

        return str(model_zoo_download_url(f"{spec.name}.zip"))
    return None


def _check_reachable(src: str, name: str, offline: str, timeout: float) -> None:
    parsed = urlparse(src)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ModelError(f"cannot download from '{src}': only http(s) URLs", code=ErrorCode.BAD_REQUEST)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:  # insightface's downloader has no timeout: fail fast when the host is unreachable
        socket.create_connection((parsed.hostname, port), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise ModelError(
            f"cannot download pack '{name}': {parsed.hostname}:{port} is unreachable ({reason}); "
            f"without internet, {offline}",
            code=ErrorCode.MODEL_MISSING,
        ) from exc


def _download(src: str, target: Path, name: str, offline: str) -> None:
    import requests
    from insightface.utils.download import download_file

    try:
        with contextlib.redirect_stdout(None):  # insightface prints its progress
            download_file(src, path=str(target), overwrite=True)
    except (requests.RequestException, RuntimeError, OSError) as exc:
        raise ModelError(
            f"cannot download pack '{name}' from {src} ({exc.__class__.__name__}); {offline}",
            code=ErrorCode.MODEL_MISSING,
        ) from exc


def pull_pack(
    name: str, models_dir: Path, *, url: str | None = None, manifest_path: Path | None = None,
    connect_timeout: float = 10.0,
) -> dict[str, Any]:
    """Download pack ``name`` and install it with the same checks as a local install.

    Archive packs (``url`` or insightface's zoo) download one zip; per-file packs download
    each file's ``url``, and every such file must have a pinned sha256 in the manifest
    (an unpinned download is refused). Convertible packs (every file has a pinned
    ``upstream_url`` and an ``architecture``) are pulled by
    :func:`lifecert.engine.pack_convert.pull_converted` instead (``lifecert models pull``
    chooses). Without network: one clear MODEL_MISSING."""
    spec = pack_spec(name, manifest_path)  # refuse unknown packs before any network traffic
    models_dir = Path(models_dir)
    archive = url or default_pack_url(spec)
    if archive is None:
        per_file = [(f, f.url) for f in spec.files if f.url]
        if not per_file:
            raise ModelError(
                f"pack '{name}' has no download source in the manifest (its files are converted or "
                f"licence-restricted); {install_hint_for(spec)}",
                code=ErrorCode.MODEL_MISSING,
            )
        unpinned = [f.name for f, _ in per_file if not f.sha256]
        if unpinned:
            raise ModelError(f"pack '{name}': {', '.join(unpinned)} has a url but no sha256 pin; refusing to "
                             "download unverifiable weights", code=ErrorCode.CONFIG_ERROR)
        offline = f"copy the files to this machine and run `lifecert models install {name} --from DIR`"
        models_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".download-{name}-", dir=models_dir) as tmp:
            for f, src in per_file:
                _check_reachable(src, name, offline, connect_timeout)
                _download(src, Path(tmp) / f.name, name, offline)
            return install_pack(Path(tmp), models_dir, name, manifest_path=manifest_path,
                                source_label=", ".join(src for _, src in per_file))
    offline = f"copy {name}.zip to this machine and run `lifecert models install --from {name}.zip`"
    _check_reachable(archive, name, offline, connect_timeout)
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".download-{name}-", dir=models_dir) as tmp:
        zip_path = Path(tmp) / f"{name}.zip"
        _download(archive, zip_path, name, offline)
        return install_pack(zip_path, models_dir, name, manifest_path=manifest_path, source_label=archive)


# -- listing ---------------------------------------------------------------------------------------
def list_packs(models_dir: Path, manifest_path: Path | None = None) -> list[dict[str, Any]]:
    """Every pack of the manifest and what is installed (recorded sha256, not re-hashed)."""
    out = []
    for name in known_packs(manifest_path):
        spec = pack_spec(name, manifest_path)
        d = pack_dir(models_dir, name)
        record = read_pack_record(d) if d.is_dir() else None
        out.append({
            "pack": name,
            "engine": spec.engine,
            "licence": spec.licence,
            "path": str(d),
            "installed": record is not None,
            "installed_at": record.get("installed_at") if record else None,
            "source": record.get("source") if record else None,
            "files": record["files"] if record else {},
        })
    return out
