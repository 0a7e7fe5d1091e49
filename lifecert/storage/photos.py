"""Content-addressed, encrypted photo store on top of a blob store (lifecert.storage.blobs).

A photo is stored once per sha256 of its original bytes as ``photos/ab/cd/<sha>.bin``,
sealed with AES-GCM (associated data: the sha256). With the local blob store that is
``data_dir/photos/ab/cd/<sha>.bin``, written to a temporary name and renamed, so a crash
never leaves a half-written photo.
"""

from __future__ import annotations

import hashlib

from lifecert.storage.blobs import BlobStore
from lifecert.storage.crypto import Cipher


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class PhotoStore:
    def __init__(self, blobs: BlobStore, cipher: Cipher) -> None:
        self.blobs = blobs
        self.cipher = cipher

    @staticmethod
    def name_for(sha: str) -> str:
        return f"photos/{sha[:2]}/{sha[2:4]}/{sha}.bin"

    def put(self, data: bytes, sha: str | None = None, *, durable: bool = True) -> str:
        """Store ``data``; with ``durable=False`` the caller makes it durable later (one
        :meth:`sync` per batch before committing the rows that reference the photos)."""
        sha = sha or sha256_bytes(data)
        name = self.name_for(sha)
        if self.blobs.exists(name):
            return sha
        self.blobs.put(name, self.cipher.seal(data, sha.encode()), durable=durable)
        return sha

    def get(self, sha: str) -> bytes:
        """The photo's original bytes; FILE_MISSING when it is not stored."""
        return self.cipher.open(self.blobs.get(self.name_for(sha)), sha.encode())

    def exists(self, sha: str) -> bool:
        return self.blobs.exists(self.name_for(sha))

    def delete(self, sha: str) -> bool:
        return self.blobs.delete(self.name_for(sha))

    def sync(self) -> None:
        self.blobs.sync()
