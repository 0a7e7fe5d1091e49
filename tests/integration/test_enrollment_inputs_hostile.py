"""Hostile enrollment inputs: refused by size before anything is read whole (issue 11, M5)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from enrollment import manifest as mf
from enrollment.manifest import ManifestError, load_inputs
from lifecert.domain.errors import ErrorCode
from lifecert.services.context import AppContext
from tests.integration.test_enrollment_job import ids, lfw_people, reasons, run, write_manifest


def test_given_a_zip_whose_manifest_is_a_bomb_when_loaded_then_refused_before_decompressing(tmp_path: Path) -> None:
    z = tmp_path / "bomb.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("list.csv", b"," * (300 << 20))  # 300 MB of commas deflate to ~300 KB
        zf.writestr("a.jpg", b"1")
    assert z.stat().st_size < 2 << 20
    with pytest.raises(ManifestError) as e:
        load_inputs(z)
    assert e.value.code == ErrorCode.PAYLOAD_TOO_LARGE and "zip bomb" in e.value.message


def test_given_a_zip_with_an_escaping_member_when_loaded_then_refused(tmp_path: Path) -> None:
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("../../etc/x.jpg", b"1")
    with pytest.raises(ManifestError) as e:
        load_inputs(z)
    assert e.value.code == ErrorCode.BAD_REQUEST and "unsafe zip" in e.value.message


def test_given_an_oversized_manifest_when_loaded_then_refused_by_its_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mf, "MAX_MANIFEST_BYTES", 1000)
    (tmp_path / "a.jpg").write_bytes(b"1")
    man = write_manifest(tmp_path, [(ids(1)[0], "x" * 2000, "a.jpg")])
    with pytest.raises(ManifestError) as e:
        load_inputs(tmp_path, man)
    assert e.value.code == ErrorCode.PAYLOAD_TOO_LARGE


def test_given_a_symlink_out_of_the_photo_folder_when_loaded_then_it_is_not_a_photo(tmp_path: Path) -> None:
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"not yours")
    photos = tmp_path / "photos"
    photos.mkdir()
    idn = ids(1)[0]
    os.symlink(secret, photos / f"{idn}.jpg")
    with pytest.raises(ManifestError, match="no photos"):
        load_inputs(photos)


def test_given_a_photo_over_the_byte_limit_when_enrolled_then_image_too_large_unread_and_queued(
    ctx: AppContext, faces_dir: Path, tmp_path: Path
) -> None:
    good = lfw_people(faces_dir, 1)[0][0]
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "big.jpg").write_bytes(good.read_bytes() + bytes(ctx.settings.images.max_bytes))
    (photos / "ok.jpg").write_bytes(good.read_bytes())
    res = run(ctx, photos, write_manifest(photos, [(ids(2)[0], "甲", "big.jpg"), (ids(2)[1], "乙", "ok.jpg")]))
    assert reasons(res) == {1: "IMAGE_TOO_LARGE", 2: "ENROLLED"}
    assert "limit" in res.rows[0]["detail"]
