"""Reading untrusted zip archives and files with limits checked before anything is read whole.

One hardened reader for every input that arrives as a zip or a file tree: model packs
(:mod:`lifecert.engine.packs`) and enrollment inputs (``enrollment/manifest.py``). Refused:
absolute paths and ``..`` (nothing may name a place outside the archive), symbolic links,
encrypted members, more members or bytes than the caller allows, and members that expand
more than ``max_ratio`` times (zip bombs). Reads stream and stop at the limit, so a member
whose header lies about its size cannot make us hold more than the limit either.
"""

from __future__ import annotations

import re
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from lifecert.domain.errors import ErrorCode, LifecertError

# Builds the caller's typed error (a ModelError for packs, a ManifestError for enrollment).
ErrorFactory = Callable[[str, ErrorCode], LifecertError]

CHUNK = 1 << 20


def _default_error(message: str, code: ErrorCode) -> LifecertError:
    return LifecertError(message, code=code)


@dataclass(frozen=True, slots=True)
class ZipLimits:
    max_members: int
    max_member_bytes: int
    max_total_bytes: int
    max_ratio: int = 200  # uncompressed / compressed, checked for members over 1 MiB


def member_path(info: zipfile.ZipInfo, error: ErrorFactory = _default_error) -> PurePosixPath | None:
    """The safe relative path of a zip member; None for directories and desktop junk
    (``__MACOSX``, ``._*``, ``.DS_Store``); a BAD_REQUEST error for an unsafe one."""
    raw = info.filename.replace("\\", "/")
    if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw):
        raise error(f"unsafe zip: absolute path '{info.filename}'", ErrorCode.BAD_REQUEST)
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise error(f"unsafe zip: path traversal in '{info.filename}'", ErrorCode.BAD_REQUEST)
    if stat.S_ISLNK(info.external_attr >> 16):
        raise error(f"unsafe zip: symbolic link '{info.filename}'", ErrorCode.BAD_REQUEST)
    if info.is_dir() or not parts:
        return None
    if parts[0] == "__MACOSX" or parts[-1].startswith("._") or parts[-1] == ".DS_Store":
        return None
    return PurePosixPath(*parts)


def checked_members(
    zf: zipfile.ZipFile, limits: ZipLimits, error: ErrorFactory = _default_error
) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """Every file member with its safe path, after checking the whole central directory
    against ``limits`` (nothing is decompressed here)."""
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise error(f"zip has {len(infos)} entries; the limit is {limits.max_members}", ErrorCode.PAYLOAD_TOO_LARGE)
    members: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
    total = 0
    for info in infos:
        rel = member_path(info, error)
        if rel is None:
            continue
        if info.flag_bits & 0x1:
            raise error(f"zip member '{info.filename}' is encrypted", ErrorCode.BAD_REQUEST)
        if info.file_size > limits.max_member_bytes:
            raise error(f"zip member '{info.filename}' is {info.file_size} bytes; the limit is "
                        f"{limits.max_member_bytes}", ErrorCode.PAYLOAD_TOO_LARGE)
        if info.file_size > (1 << 20) and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise error(f"zip member '{info.filename}' expands {info.file_size // max(info.compress_size, 1)}x; "
                        "refused as a zip bomb", ErrorCode.PAYLOAD_TOO_LARGE)
        total += info.file_size
        members.append((info, rel))
    if total > limits.max_total_bytes:
        raise error(f"zip unpacks to {total} bytes; the limit is {limits.max_total_bytes}",
                    ErrorCode.PAYLOAD_TOO_LARGE)
    return members


def read_limited(src: IO[bytes], limit: int, what: str, error: ErrorFactory = _default_error) -> bytes:
    """All of ``src`` if it holds at most ``limit`` bytes; a PAYLOAD_TOO_LARGE error as soon as it
    holds more (never more than ``limit`` + one chunk in memory)."""
    buf = bytearray()
    while True:
        chunk = src.read(min(CHUNK, limit + 1 - len(buf)))
        if not chunk:
            return bytes(buf)
        buf += chunk
        if len(buf) > limit:
            raise error(f"{what} is larger than {limit} bytes", ErrorCode.PAYLOAD_TOO_LARGE)


def read_file(path: Path, limit: int, what: str, error: ErrorFactory = _default_error) -> bytes:
    """A regular file's bytes, refused by its size before reading and while reading (it may grow)."""
    size = path.stat().st_size
    if size > limit:
        raise error(f"{what} is {size} bytes; the limit is {limit}", ErrorCode.PAYLOAD_TOO_LARGE)
    with path.open("rb") as fh:
        return read_limited(fh, limit, what, error)
