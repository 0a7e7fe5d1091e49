"""Blob stores for photos and verification frames: opaque bytes (already sealed by the caller)
under a slash-separated name such as ``photos/ab/cd/<sha256>.bin`` or ``sessions/<id>.bin``.

- :class:`LocalBlobStore` (default): files under ``data_dir``; written to a temporary name,
  fsynced and renamed, so a crash never leaves half a blob. One node, or several on a
  shared filesystem.
- :class:`DatabaseBlobStore`: the ``blob`` table of the main database — several API nodes
  without a shared filesystem; backed up with the database.
- :class:`S3BlobStore`: an S3-compatible bucket through boto3 (``pip install '.[s3]'``).

Stores never see plaintext: photos and frames are sealed with AES-GCM (and, from sec's
envelope work, a key id) before they get here. Names are checked (:func:`check_name`)
so no caller can reach outside the store.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import delete, select

from lifecert.domain.errors import ErrorCode, LifecertError

if TYPE_CHECKING:
    from lifecert.config import Settings
    from lifecert.storage.db import Database

# Top-level areas a blob name may start with; the local store only ever lists these folders.
AREAS = ("photos", "sessions")
_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")


def check_name(name: str) -> str:
    if (
        len(name) > 200
        or not _NAME_RE.fullmatch(name)
        or name.split("/", 1)[0] not in AREAS
        or any(part in (".", "..") for part in name.split("/"))
    ):
        raise LifecertError("bad blob name", code=ErrorCode.BAD_REQUEST)
    return name


def _missing(name: str) -> LifecertError:
    return LifecertError(f"blob {name[:40]}… is not in the blob store", code=ErrorCode.FILE_MISSING)


class BlobStore(Protocol):
    kind: str

    def put(self, name: str, data: bytes, *, durable: bool = True) -> None: ...
    def get(self, name: str) -> bytes: ...
    def exists(self, name: str) -> bool: ...
    def delete(self, name: str) -> bool: ...
    def names(self, prefix: str = "") -> Iterator[str]: ...
    def sync(self) -> None: ...


class LocalBlobStore:
    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, name: str) -> Path:
        return self.root / check_name(name)

    def put(self, name: str, data: bytes, *, durable: bool = True) -> None:
        """With ``durable=False`` the caller makes it durable later (:meth:`sync` once per batch)."""
        p = self.path(name)
        p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = p.with_name(f"{p.name}.tmp{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, p)

    def get(self, name: str) -> bytes:
        p = self.path(name)
        if not p.is_file():
            raise _missing(name)
        return p.read_bytes()

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def delete(self, name: str) -> bool:
        p = self.path(name)
        if p.is_file():
            p.unlink()
            return True
        return False

    def names(self, prefix: str = "") -> Iterator[str]:
        for area in AREAS:
            base = self.root / area
            if not base.is_dir():
                continue
            for dirpath, _dirs, files in os.walk(base):
                for f in sorted(files):
                    if ".tmp" in f:
                        continue  # a write in progress (or left by a crash): not a blob
                    name = Path(dirpath, f).relative_to(self.root).as_posix()
                    if name.startswith(prefix):
                        yield name

    def sync(self) -> None:
        os.sync()


class DatabaseBlobStore:
    """Blobs as rows of the ``blob`` table; each call is its own short transaction."""

    kind = "database"

    def __init__(self, db: Database) -> None:
        self.db = db

    def put(self, name: str, data: bytes, *, durable: bool = True) -> None:
        from lifecert.storage.models_cluster import Blob

        check_name(name)
        with self.db.session() as s:
            row = s.get(Blob, name)
            if row is None:
                s.add(Blob(name=name, data=data, size=len(data)))
            else:
                row.data, row.size = data, len(data)

    def get(self, name: str) -> bytes:
        from lifecert.storage.models_cluster import Blob

        with self.db.session() as s:
            data = s.scalar(select(Blob.data).where(Blob.name == check_name(name)))
        if data is None:
            raise _missing(name)
        return bytes(data)

    def exists(self, name: str) -> bool:
        from lifecert.storage.models_cluster import Blob

        with self.db.session() as s:
            return s.scalar(select(Blob.name).where(Blob.name == check_name(name))) is not None

    def delete(self, name: str) -> bool:
        from lifecert.storage.models_cluster import Blob

        with self.db.session() as s:
            return bool(s.execute(delete(Blob).where(Blob.name == check_name(name))).rowcount)  # type: ignore[attr-defined]

    def names(self, prefix: str = "") -> Iterator[str]:
        from lifecert.storage.models_cluster import Blob

        with self.db.session() as s:
            yield from list(s.scalars(select(Blob.name).where(Blob.name.startswith(prefix)).order_by(Blob.name)))

    def sync(self) -> None:
        return None  # committed rows are durable


class S3BlobStore:
    """An S3-compatible bucket (AWS S3, MinIO, Ceph RGW, …) through boto3. Credentials come from
    boto3's usual chain (environment, config file, instance role), never from lifecert settings."""

    kind = "s3"

    def __init__(self, bucket: str, *, endpoint_url: str | None = None, region: str = "us-east-1",
                 prefix: str = "", client: Any = None) -> None:
        if client is None:
            try:
                import boto3
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise LifecertError("the s3 blob store needs boto3: pip install 'lifecert[s3]'",
                                    code=ErrorCode.CONFIG_ERROR) from exc
            client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    def _key(self, name: str) -> str:
        return self.prefix + check_name(name)

    def put(self, name: str, data: bytes, *, durable: bool = True) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(name), Body=data)

    def get(self, name: str) -> bytes:
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self._key(name))
        except self.client.exceptions.NoSuchKey:
            raise _missing(name) from None
        return bytes(obj["Body"].read())

    def exists(self, name: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(name))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def delete(self, name: str) -> bool:
        existed = self.exists(name)
        self.client.delete_object(Bucket=self.bucket, Key=self._key(name))
        return existed

    def names(self, prefix: str = "") -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            for obj in page.get("Contents", []):
                yield obj["Key"][len(self.prefix):]

    def sync(self) -> None:
        return None  # a successful PUT is durable


def open_blob_store(settings: Settings, db: Database) -> BlobStore:
    b = settings.blobs
    if b.backend == "database":
        return DatabaseBlobStore(db)
    if b.backend == "s3":
        return S3BlobStore(b.s3_bucket, endpoint_url=b.s3_endpoint_url, region=b.s3_region, prefix=b.s3_prefix)
    return LocalBlobStore(settings.data_dir)
