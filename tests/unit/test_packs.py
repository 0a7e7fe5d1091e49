"""Pack management shared by every pack (lifecert/engine/packs.py): installing the real
EdgeFace and YuNet files from ../shared/models as folders, pins, pull per file, refusals."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from lifecert import cli_models
from lifecert.config import Settings
from lifecert.domain.errors import ErrorCode, ModelError
from lifecert.engine import packs
from lifecert.engine.manifest import REPO_MANIFEST
from tests.conftest import make_settings

YUNET = "face_detection_yunet_2023mar.onnx"
EDGEFACE = "edgeface_xs_q_dequant_fp32.onnx"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, inference_threads=1)


def _manifest_with(tmp_path: Path, extra: str) -> Path:
    p = tmp_path / "manifest.toml"
    p.write_text(REPO_MANIFEST.read_text(encoding="utf-8") + "\n" + extra, encoding="utf-8")
    return p


def test_given_shared_edgeface_folder_when_installed_by_name_then_only_manifest_files_are_copied_and_pinned(
    settings: Settings, shared_models_dir: Path
) -> None:
    record = cli_models.install_models(settings, shared_models_dir / "edgeface", "edgeface")

    d = settings.resolved_models_dir / "edgeface"
    assert sorted(record["files"]) == ["LICENSE", EDGEFACE], "the .pt and the XXS model are not pack files"
    spec = packs.pack_spec("edgeface")
    pin = spec.file("recognition").sha256
    assert record["files"][EDGEFACE]["sha256"] == pin
    assert hashlib.sha256((d / EDGEFACE).read_bytes()).hexdigest() == pin
    assert record["licence"] is not None and "WebFace12M" in record["licence"]
    assert [c.status for c in cli_models.verify_models(settings, "edgeface")] == ["ok", "ok"]
    assert packs.require(settings, "edgeface").path("recognition") == d / EDGEFACE


def test_given_folder_whose_file_differs_from_the_pin_when_installed_then_refused_and_nothing_left(
    settings: Settings, shared_models_dir: Path, tmp_path: Path
) -> None:
    src = tmp_path / "yunet"
    src.mkdir()
    data = bytearray((shared_models_dir / "yunet" / YUNET).read_bytes())
    data[1000] ^= 0xFF
    (src / YUNET).write_bytes(bytes(data))

    with pytest.raises(ModelError) as err:
        cli_models.install_models(settings, src)

    assert err.value.code == ErrorCode.MODEL_MISSING and "the manifest pins 8f2383e4dd3c" in err.value.message
    assert not settings.resolved_models_dir.exists() or os.listdir(settings.resolved_models_dir) == []


def test_given_folder_with_a_symlinked_model_when_installed_then_refused(
    settings: Settings, shared_models_dir: Path, tmp_path: Path
) -> None:
    src = tmp_path / "yunet"
    src.mkdir()
    (src / YUNET).symlink_to(shared_models_dir / "yunet" / YUNET)

    with pytest.raises(ModelError) as err:
        cli_models.install_models(settings, src)

    assert err.value.code == ErrorCode.BAD_REQUEST and "not a regular file" in err.value.message


def test_given_folder_missing_the_required_file_when_installed_then_model_missing_names_it(
    settings: Settings, tmp_path: Path
) -> None:
    src = tmp_path / "edgeface"
    src.mkdir()
    (src / "LICENSE").write_text("BSD")

    with pytest.raises(ModelError) as err:
        cli_models.install_models(settings, src)

    assert err.value.code == ErrorCode.MODEL_MISSING and f"{EDGEFACE} (recognition)" in err.value.message


def test_given_pack_without_download_source_when_pulled_then_error_says_install_from_folder(
    settings: Settings,
) -> None:
    with pytest.raises(ModelError) as err:
        cli_models.pull_models(settings, "edgeface")

    assert err.value.code == ErrorCode.MODEL_MISSING
    assert "lifecert models install edgeface --from DIR" in err.value.message


def _pinned_pack(tmp_path: Path, url: str, sha: str) -> Path:
    return _manifest_with(tmp_path, f'''
[packs.tinydet]
engine = "test"
[packs.tinydet.files."det.onnx"]
role = "detection"
sha256 = "{sha}"
url = "{url}"
''')


def test_given_per_file_url_with_pin_when_pulled_then_file_is_downloaded_verified_and_recorded(
    tmp_path: Path, mirror: tuple[str, Path], shared_models_dir: Path
) -> None:
    base, root = mirror
    shutil.copy(shared_models_dir / "yunet" / YUNET, root / "det.onnx")
    sha = hashlib.sha256((root / "det.onnx").read_bytes()).hexdigest()
    s = make_settings(tmp_path, manifest_path=_pinned_pack(tmp_path, f"{base}/det.onnx", sha))

    record = cli_models.pull_models(s, "tinydet")

    assert record["files"]["det.onnx"]["sha256"] == sha and record["source"] == f"{base}/det.onnx"
    assert [c.status for c in cli_models.verify_models(s, "tinydet")] == ["ok"]


def test_given_per_file_url_when_mirror_serves_other_bytes_then_pull_refuses_and_installs_nothing(
    tmp_path: Path, mirror: tuple[str, Path]
) -> None:
    base, root = mirror
    (root / "det.onnx").write_bytes(b"tampered" * 100)
    s = make_settings(tmp_path, manifest_path=_pinned_pack(tmp_path, f"{base}/det.onnx", "a" * 64))

    with pytest.raises(ModelError) as err:
        cli_models.pull_models(s, "tinydet")

    assert err.value.code == ErrorCode.MODEL_MISSING and "the manifest pins aaaaaaaaaaaa" in err.value.message
    assert not (s.resolved_models_dir / "tinydet").exists()


def test_given_malformed_pin_in_manifest_when_pack_is_read_then_config_error(tmp_path: Path) -> None:
    m = _pinned_pack(tmp_path, "http://127.0.0.1:9/det.onnx", "xyz")

    with pytest.raises(ModelError) as err:
        packs.pack_spec("tinydet", m)

    assert err.value.code == ErrorCode.CONFIG_ERROR and "64 hex digits" in err.value.message


def test_given_repository_manifest_when_packs_listed_then_each_names_its_engine_and_licence(tmp_path: Path) -> None:
    listed = {p["pack"]: p for p in packs.list_packs(tmp_path)}

    assert {"buffalo_l", "edgeface", "yunet"} <= set(listed)
    assert listed["edgeface"]["engine"] == "edgeface" and "non-commercial" in listed["edgeface"]["licence"]
    assert "MIT" in listed["yunet"]["licence"]
    assert not any(p["installed"] for p in listed.values())
