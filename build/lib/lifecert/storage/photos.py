"""Content-addressed, encrypted photo store under ``data_dir/photos``.

A photo is stored once per sha256 of its original bytes at ``ab/cd/<sha>.bin``,
sealed with AES-GCM (associated data: the sha256). Files are written to a
temporary name and renamed, so a crash never leaves a half-written photo.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.storage.crypto import Cipher


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class PhotoStore:
    def __init__(self, root: Path, cipher: Cipher) -> None:
        self.root = root
        self.cipher = cipher

    def path_for(self, sha: str) -> Path:
        return self.root / sha[:2] / sha[2:4] / f"{sha}.bin"

    def put(self, data: bytes, sha: str | None = None, *, durable: bool = True) -> str:
        """Store ``data``; with ``durable=False`` the caller makes it durable later (e.g. one
        ``os.sync()`` per batch before committing the rows that reference the photos)."""
        sha = sha or sha256_bytes(data)
        p = self.path_for(sha)
        if p.exists():
            return sha
        p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = p.with_suffix(f".tmp{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(self.cipher.seal(data, sha.encode()))
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, p)
        return sha

    def get(self, sha: str) -> bytes:
        p = self.path_for(sha)
        if not p.is_file():
            raise LifecertError(f"photo {sha[:12]}… is not in the photo store", code=ErrorCode.FILE_MISSING)
        return self.cipher.open(p.read_bytes(), sha.encode())

    def exists(self, sha: str) -> bool:
        return self.path_for(sha).is_file()
