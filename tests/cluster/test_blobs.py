"""Blob stores: the same behaviour from the local directory, the database table (SQLite and
PostgreSQL) and an S3-compatible server over HTTP; the photo store keeps sealed bytes only."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifecert.config import Settings
from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.storage.blobs import BlobStore, DatabaseBlobStore, LocalBlobStore, S3BlobStore, open_blob_store
from lifecert.storage.crypto import Cipher
from lifecert.storage.db import Database
from lifecert.storage.photos import PhotoStore
from tests.conftest import empty_postgres


@pytest.fixture(params=["local", "sqlite", "postgres", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    kind = request.param
    if kind == "local":
        yield LocalBlobStore(tmp_path)
    elif kind == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'b.sqlite'}")
        yield DatabaseBlobStore(db)
        db.dispose()
    elif kind == "postgres":
        request.applymarker(pytest.mark.postgres)
        url = request.getfixturevalue("postgres_url")
        empty_postgres(url)
        db = Database(url)
        yield DatabaseBlobStore(db)
        db.dispose()
    else:
        import boto3

        endpoint = request.getfixturevalue("s3_endpoint")
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="test", aws_secret_access_key="test")
        bucket = f"lifecert-{os.urandom(4).hex()}"
        client.create_bucket(Bucket=bucket)
        yield S3BlobStore(bucket, client=client, prefix="node-a")


def test_given_a_blob_store_when_blobs_are_put_read_listed_and_deleted_then_all_backends_agree(
    store: BlobStore,
) -> None:
    store.put("photos/ab/cd/abcd.bin", b"\x00sealed-1")
    store.put("sessions/s1.bin", b"frames")
    store.put("sessions/s1.bin", b"frames v2")  # overwrite is allowed (same name, new bytes)
    assert store.get("photos/ab/cd/abcd.bin") == b"\x00sealed-1"
    assert store.get("sessions/s1.bin") == b"frames v2"
    assert store.exists("sessions/s1.bin") and not store.exists("sessions/none.bin")
    assert sorted(store.names()) == ["photos/ab/cd/abcd.bin", "sessions/s1.bin"]
    assert list(store.names("sessions/")) == ["sessions/s1.bin"]
    assert store.delete("sessions/s1.bin") is True
    assert store.delete("sessions/s1.bin") is False
    with pytest.raises(LifecertError) as e:
        store.get("sessions/s1.bin")
    assert e.value.code == ErrorCode.FILE_MISSING


@pytest.mark.parametrize("name", ["../etc/passwd", "photos/../../x", "/abs", "other/x.bin", "photos//x", "photos/a b"])
def test_given_a_hostile_blob_name_when_used_then_it_is_refused_before_any_io(tmp_path: Path, name: str) -> None:
    store = LocalBlobStore(tmp_path / "root")
    with pytest.raises(LifecertError) as e:
        store.put(name, b"x")
    assert e.value.code == ErrorCode.BAD_REQUEST
    assert not (tmp_path / "root").exists()


def test_given_a_photo_when_stored_then_the_blob_is_sealed_and_the_local_layout_is_unchanged(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    photos = PhotoStore(store, Cipher(b"k" * 32))
    data = b"\xff\xd8 a jpeg's bytes \xff\xd9"
    sha = photos.put(data)
    path = tmp_path / "photos" / sha[:2] / sha[2:4] / f"{sha}.bin"
    assert path.is_file()
    assert data not in path.read_bytes()
    assert photos.get(sha) == data
    assert photos.delete(sha) and not photos.exists(sha)


def test_given_settings_when_opening_the_blob_store_then_the_backend_follows_them(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'b.sqlite'}")
    assert open_blob_store(Settings(data_dir=tmp_path), db).kind == "local"
    s = Settings(data_dir=tmp_path, blobs={"backend": "database"})  # type: ignore[arg-type]
    assert open_blob_store(s, db).kind == "database"
    db.dispose()
