"""The insightface engine and `lifecert models` without the real weights: tiny ONNX
models with buffalo_l's file names, tensor names and shapes (tests/unit/onnx_fixtures.py)
are zipped as a pack, installed through the CLI functions and loaded like the real one."""

from __future__ import annotations

import hashlib
import io
import re
import socket
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from lifecert import cli_models
from lifecert.config import Settings, get_settings
from lifecert.domain.errors import ErrorCode, ModelError
from lifecert.engine import insightface_engine as ie
from lifecert.engine import packs
from lifecert.engine.base import FaceEngine
from lifecert.engine.image import read_image_file
from lifecert.engine.loader import load_engine
from lifecert.engine.manifest import REPO_MANIFEST
from lifecert.engine.types import Face
from tests.conftest import make_settings
from tests.unit import onnx_fixtures as fx

PACK = "buffalo_l"
PHOTO = "photos/deepface_p01/img1.jpg"
HINT_PULL = f"lifecert models pull {PACK}"
HINT_INSTALL = f"lifecert models install --from {PACK}.zip"


# -- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_files() -> dict[str, bytes]:
    return fx.buffalo_files()


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    """The repository manifest without sha256 pins (the tiny models cannot match real pins)."""
    text = re.sub(r'(?m)^sha256 = ".*"\n', "", REPO_MANIFEST.read_text(encoding="utf-8"))
    p = tmp_path / "manifest.toml"
    p.write_text(text, encoding="utf-8")
    return p


@pytest.fixture
def isettings(tmp_path: Path, manifest: Path) -> Settings:
    return make_settings(tmp_path, engine="insightface", manifest_path=manifest, inference_threads=1)


@pytest.fixture
def pack_zip(tmp_path: Path, tiny_files: dict[str, bytes]) -> Path:
    return fx.write_zip(tmp_path / f"{PACK}.zip", tiny_files)


@pytest.fixture
def installed(isettings: Settings, pack_zip: Path) -> Settings:
    cli_models.install_models(isettings, pack_zip)
    return isettings


@pytest.fixture(scope="module")
def photo(faces_dir: Path) -> np.ndarray:
    return read_image_file(faces_dir / PHOTO)


@pytest.fixture
def cli(isettings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[CliRunner, typer.Typer]]:
    """A root app with only the models area, reading settings from the environment."""
    monkeypatch.setenv("LIFECERT_ENV", "test")
    monkeypatch.setenv("LIFECERT_DATA_DIR", str(isettings.data_dir))
    monkeypatch.setenv("LIFECERT_MANIFEST_PATH", str(isettings.manifest_path))
    get_settings.cache_clear()
    app = typer.Typer()
    cli_models.register(app)
    yield CliRunner(), app
    get_settings.cache_clear()


def _zip_bytes(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for info, data in entries:
            zf.writestr(info, data)
    return buf.getvalue()


def _no_leftovers(models_dir: Path) -> list[str]:
    return sorted(p.name for p in models_dir.iterdir()) if models_dir.exists() else []


# -- installing ------------------------------------------------------------------------------------
def test_given_tiny_pack_zip_when_installed_then_pack_json_records_sha256_and_role_of_every_file(
    isettings: Settings, pack_zip: Path, tiny_files: dict[str, bytes]
) -> None:
    record = cli_models.install_models(isettings, pack_zip)

    d = isettings.resolved_models_dir / PACK
    assert set(record["files"]) == set(tiny_files)
    for name, data in tiny_files.items():
        assert record["files"][name]["sha256"] == hashlib.sha256(data).hexdigest()
        assert (d / name).read_bytes() == data
    assert record["files"]["det_10g.onnx"]["role"] == ie.ROLE_DETECTION
    assert record["files"]["w600k_r50.onnx"]["role"] == ie.ROLE_RECOGNITION
    assert record["files"]["1k3d68.onnx"]["role"] == ie.ROLE_LANDMARK68
    assert ie.read_pack_record(d) == record
    assert _no_leftovers(isettings.resolved_models_dir) == [PACK]


def test_given_pack_zipped_inside_a_folder_when_installed_then_folder_is_stripped(
    isettings: Settings, tmp_path: Path, tiny_files: dict[str, bytes]
) -> None:
    z = fx.write_zip(tmp_path / "other-name.zip", tiny_files, folder=PACK)

    record = cli_models.install_models(isettings, z, name=PACK)

    assert sorted(record["files"]) == sorted(tiny_files)
    assert (isettings.resolved_models_dir / PACK / "w600k_r50.onnx").is_file()


def test_given_corrupt_zip_when_installed_then_model_missing_and_nothing_installed(
    isettings: Settings, tmp_path: Path, pack_zip: Path
) -> None:
    truncated = tmp_path / "trunc" / f"{PACK}.zip"
    truncated.parent.mkdir()
    truncated.write_bytes(pack_zip.read_bytes()[: pack_zip.stat().st_size // 2])
    garbage = tmp_path / f"garbage-{PACK}.zip"
    garbage.write_bytes(b"this is not a zip file at all" * 100)

    for bad in (truncated, garbage):
        with pytest.raises(ModelError) as err:
            cli_models.install_models(isettings, bad, name=PACK)
        assert err.value.code == ErrorCode.MODEL_MISSING
        assert "not a readable zip" in err.value.message
    assert _no_leftovers(isettings.resolved_models_dir) == []


@pytest.mark.parametrize(
    "member",
    ["../evil.onnx", "buffalo_l/../../evil.onnx", "/tmp/evil.onnx", "..\\evil.onnx", "C:/evil.onnx"],
)
def test_given_zip_with_escaping_path_when_installed_then_refused_and_nothing_written(
    isettings: Settings, tmp_path: Path, tiny_files: dict[str, bytes], member: str
) -> None:
    z = tmp_path / f"{PACK}.zip"
    z.write_bytes(_zip_bytes([*tiny_files.items(), (member, b"payload")]))

    with pytest.raises(ModelError) as err:
        cli_models.install_models(isettings, z)

    assert err.value.code == ErrorCode.BAD_REQUEST
    assert "unsafe zip" in err.value.message
    assert not (tmp_path / "evil.onnx").exists() and not (isettings.data_dir / "evil.onnx").exists()
    assert _no_leftovers(isettings.resolved_models_dir) == []


def test_given_zip_with_symlink_member_when_installed_then_refused(
    isettings: Settings, tmp_path: Path, tiny_files: dict[str, bytes]
) -> None:
    link = zipfile.ZipInfo("w600k_r50.onnx")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    z = tmp_path / f"{PACK}.zip"
    z.write_bytes(_zip_bytes([("det_10g.onnx", tiny_files["det_10g.onnx"]), (link, b"/etc/passwd")]))

    with pytest.raises(ModelError) as err:
        cli_models.install_models(isettings, z)

    assert err.value.code == ErrorCode.BAD_REQUEST and "symbolic link" in err.value.message


def test_given_zip_bomb_member_when_installed_then_refused_before_extraction(
    isettings: Settings, tmp_path: Path, tiny_files: dict[str, bytes]
) -> None:
    z = tmp_path / f"{PACK}.zip"
    z.write_bytes(_zip_bytes([*tiny_files.items(), ("padding.bin", bytes(8 << 20))]))

    with pytest.raises(ModelError) as err:
        cli_models.install_models(isettings, z)

    assert err.value.code == ErrorCode.PAYLOAD_TOO_LARGE and "zip bomb" in err.value.message
    assert _no_leftovers(isettings.resolved_models_dir) == []


def test_given_zip_over_the_total_size_limit_when_installed_then_refused(
    isettings: Settings, pack_zip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(packs, "MAX_TOTAL_BYTES", 1_000_000)  # the tiny pack unpacks to ~7 MB

    with pytest.raises(ModelError) as err:
        cli_models.install_models(isettings, pack_zip)

    assert err.value.code == ErrorCode.PAYLOAD_TOO_LARGE


def test_given_zip_without_the_recognition_model_when_installed_then_missing_role_is_named(
    isettings: Settings, tmp_path: Path, tiny_files: dict[str, bytes]
) -> None:
    z = fx.write_zip(tmp_path / f"{PACK}.zip", {"det_10g.onnx": tiny_files["det_10g.onnx"]})

    with pytest.raises(ModelError) as err:
        cli_models.install_models(isettings, z)

    assert err.value.code == ErrorCode.MODEL_MISSING
    assert "w600k_r50.onnx (recognition)" in err.value.message
    assert _no_leftovers(isettings.resolved_models_dir) == []


def test_given_manifest_pin_when_zip_file_differs_then_install_refuses(
    isettings: Settings, manifest: Path, pack_zip: Path
) -> None:
    text = manifest.read_text(encoding="utf-8").replace(
        'role = "recognition"\n', 'role = "recognition"\nsha256 = "' + "0" * 64 + '"\n'
    )
    manifest.write_text(text, encoding="utf-8")

    with pytest.raises(ModelError) as err:
        cli_models.install_models(isettings, pack_zip)

    assert err.value.code == ErrorCode.MODEL_MISSING and "manifest pins" in err.value.message


def test_given_pack_unknown_to_manifest_when_installed_then_config_error(
    isettings: Settings, tmp_path: Path, tiny_files: dict[str, bytes]
) -> None:
    z = fx.write_zip(tmp_path / "mystery.zip", tiny_files)

    with pytest.raises(ModelError) as err:
        cli_models.install_models(isettings, z)

    assert err.value.code == ErrorCode.CONFIG_ERROR and "mystery" in err.value.message


def test_given_installed_pack_when_a_bad_reinstall_fails_then_previous_install_still_verifies(
    installed: Settings, tmp_path: Path
) -> None:
    bad = tmp_path / "broken" / f"{PACK}.zip"
    bad.parent.mkdir()
    bad.write_bytes(b"PK\x03\x04 broken")

    with pytest.raises(ModelError):
        cli_models.install_models(installed, bad)

    assert all(c.status == "ok" for c in cli_models.verify_models(installed, PACK))
    assert _no_leftovers(installed.resolved_models_dir) == [PACK]


# -- verify, list, pull through the command line -----------------------------------------------------
def test_given_installed_pack_when_a_file_changes_then_verify_names_it_and_exits_2(
    installed: Settings, cli: tuple[CliRunner, typer.Typer]
) -> None:
    runner, app = cli
    ok = runner.invoke(app, ["models", "verify", PACK])
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.count("ok  ") == 3

    target = installed.resolved_models_dir / PACK / "w600k_r50.onnx"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    bad = runner.invoke(app, ["models", "verify", PACK])

    assert bad.exit_code == 2
    assert "MODEL_MISSING" in bad.stderr and "w600k_r50.onnx" in bad.stderr and "!= recorded" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    assert "Traceback" not in bad.output


def test_given_installed_pack_when_listed_then_every_file_shows_its_full_sha256(
    installed: Settings, cli: tuple[CliRunner, typer.Typer]
) -> None:
    runner, app = cli
    result = runner.invoke(app, ["models", "list"])

    assert result.exit_code == 0, result.output
    record = ie.read_pack_record(installed.resolved_models_dir / PACK)
    assert record is not None
    for name, entry in record["files"].items():
        assert f"{name}  role={entry['role']}  sha256={entry['sha256']}" in result.stdout
    assert "insightface:buffalo_l:1" in result.stdout and "dlib:" in result.stdout


def test_given_zip_path_when_installed_through_the_command_then_pack_loads(
    isettings: Settings, pack_zip: Path, cli: tuple[CliRunner, typer.Typer]
) -> None:
    runner, app = cli
    result = runner.invoke(app, ["models", "install", "--from", str(pack_zip)])

    assert result.exit_code == 0, result.output
    assert "w600k_r50.onnx  role=recognition" in result.stdout
    assert isinstance(load_engine(isettings), ie.InsightFaceEngine)


def test_given_mirror_url_when_pulled_then_insightface_downloader_fetches_and_installs(
    isettings: Settings, mirror: tuple[str, Path], tiny_files: dict[str, bytes],
    cli: tuple[CliRunner, typer.Typer]
) -> None:
    base, root = mirror
    fx.write_zip(root / f"{PACK}.zip", tiny_files)
    runner, app = cli

    result = runner.invoke(app, ["models", "pull", PACK, "--url", f"{base}/{PACK}.zip"])

    assert result.exit_code == 0, result.output
    record = ie.read_pack_record(isettings.resolved_models_dir / PACK)
    assert record is not None and record["source"] == f"{base}/{PACK}.zip"
    assert all(c.status == "ok" for c in cli_models.verify_models(isettings, PACK))


def test_given_unreachable_host_when_pulled_then_one_line_error_says_how_to_install_offline(
    isettings: Settings, cli: tuple[CliRunner, typer.Typer]
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    runner, app = cli

    result = runner.invoke(app, ["models", "pull", PACK, "--url", f"http://127.0.0.1:{port}/{PACK}.zip"])

    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "MODEL_MISSING" in lines[0] and HINT_INSTALL in lines[0]
    assert not (isettings.resolved_models_dir / PACK).exists()


# -- loading the engine ------------------------------------------------------------------------------
def test_given_no_pack_when_engine_loads_then_model_missing_says_what_to_run(isettings: Settings) -> None:
    with pytest.raises(ModelError) as err:
        load_engine(isettings)

    assert err.value.code == ErrorCode.MODEL_MISSING
    assert HINT_PULL in err.value.message and HINT_INSTALL in err.value.message


def test_given_changed_model_file_when_engine_loads_then_model_missing_names_the_file(installed: Settings) -> None:
    target = installed.resolved_models_dir / PACK / "det_10g.onnx"
    target.write_bytes(target.read_bytes() + b"\0")

    with pytest.raises(ModelError) as err:
        load_engine(installed)

    assert err.value.code == ErrorCode.MODEL_MISSING
    assert "det_10g.onnx" in err.value.message and HINT_INSTALL in err.value.message


def test_given_deleted_model_file_when_engine_loads_then_model_missing(installed: Settings) -> None:
    (installed.resolved_models_dir / PACK / "w600k_r50.onnx").unlink()

    with pytest.raises(ModelError) as err:
        load_engine(installed)

    assert err.value.code == ErrorCode.MODEL_MISSING and "w600k_r50.onnx: file not present" in err.value.message


def test_given_pack_with_non_onnx_file_when_engine_loads_then_model_missing_not_a_traceback(
    isettings: Settings, tmp_path: Path, tiny_files: dict[str, bytes]
) -> None:
    z = fx.write_zip(tmp_path / f"{PACK}.zip", {**tiny_files, "w600k_r50.onnx": b"not a protobuf" * 50})
    cli_models.install_models(isettings, z)

    with pytest.raises(ModelError) as err:
        load_engine(isettings)

    assert err.value.code == ErrorCode.MODEL_MISSING and "w600k_r50.onnx (recognition) in" in err.value.message


def test_given_recogniser_with_wrong_embedding_size_when_engine_loads_then_model_missing(
    isettings: Settings, tmp_path: Path, tiny_files: dict[str, bytes]
) -> None:
    z = fx.write_zip(tmp_path / f"{PACK}.zip", {**tiny_files, "w600k_r50.onnx": fx.recognizer(dim=256)})
    cli_models.install_models(isettings, z)

    with pytest.raises(ModelError) as err:
        load_engine(isettings)

    assert err.value.code == ErrorCode.MODEL_MISSING and "256-d" in err.value.message


# -- inference -------------------------------------------------------------------------------------------
@pytest.fixture
def engine(installed: Settings) -> ie.InsightFaceEngine:
    e = load_engine(installed)
    assert isinstance(e, ie.InsightFaceEngine)
    return e


def test_given_real_photo_when_detected_then_faces_carry_arcface_points_and_68_landmarks(
    engine: ie.InsightFaceEngine, photo: np.ndarray
) -> None:
    faces = engine.detect(photo)

    assert faces, "the tiny detector's stride-32 head fires at every anchor"
    areas = [f.area for f in faces]
    assert areas == sorted(areas, reverse=True)
    for f in faces:
        assert f.box.dtype == np.float32 and f.box.shape == (4,)
        assert f.landmarks5.dtype == np.float32 and f.landmarks5.shape == (5, 2)
        assert f.box[2] > f.box[0] and f.box[3] > f.box[1]
        assert 0.5 <= f.score <= 1.0
    with_68 = [f for f in faces if f.landmarks68 is not None]
    assert 1 <= len(with_68) <= ie.MAX_LANDMARK_FACES
    first = faces[0].landmarks68
    assert first is not None and first.dtype == np.float32 and first.shape == (68, 2)
    # The landmark model's points are mapped back from its 192x192 crop around the box.
    cx, cy = (faces[0].box[:2] + faces[0].box[2:]) / 2
    assert np.all(np.abs(first - [cx, cy]) <= 1.5 * faces[0].width)


def test_given_detector_that_sees_nothing_when_photo_analysed_then_no_faces(
    isettings: Settings, tmp_path: Path, photo: np.ndarray
) -> None:
    z = fx.write_zip(tmp_path / f"{PACK}.zip", fx.buffalo_files(faces=False, landmarks=False))
    cli_models.install_models(isettings, z)
    e = load_engine(isettings)

    assert e.detect(photo) == []
    assert e.analyze(photo) == []


@pytest.mark.parametrize("rec_batch", ["None", 1], ids=["dynamic-batch", "batch-1"])
def test_given_dlib_face_when_embedded_then_512_float32_unit_vector_and_batching_agrees(
    isettings: Settings, tmp_path: Path, photo: np.ndarray, face_engine: FaceEngine, rec_batch: int | str
) -> None:
    z = fx.write_zip(tmp_path / f"{PACK}.zip", fx.buffalo_files(rec_batch=rec_batch, landmarks=False))
    cli_models.install_models(isettings, z)
    e = load_engine(isettings)
    found = face_engine.detect(photo)
    assert len(found) == 1
    face = Face(box=found[0].box, score=found[0].score, landmarks5=found[0].landmarks5)

    crop = e.align(photo, face)
    emb = e.embed(photo, face)
    flipped = e.embed(photo, face, profile="flip")
    batch = e.embed_aligned([crop, np.ascontiguousarray(crop[:, ::-1])])

    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    assert emb.shape == (512,) and emb.dtype == np.float32
    assert abs(float(np.linalg.norm(emb)) - 1.0) < 1e-5
    assert abs(float(np.linalg.norm(flipped)) - 1.0) < 1e-5
    assert np.allclose(batch[0], emb, atol=1e-5)
    assert not np.allclose(batch[1], emb, atol=1e-3), "the mirrored crop is a different input"
    mean = batch[0] + batch[1]
    assert np.allclose(flipped, mean / np.linalg.norm(mean), atol=1e-5), "flip profile = mean of crop and mirror"
    assert np.allclose(e.embed(photo, face), emb), "inference is deterministic"
    assert e.info.key == "insightface:buffalo_l:1" and e.info.embedding_size == 512


def test_given_dlib_face_when_aligned_then_its_five_points_land_on_the_arcface_template(
    engine: ie.InsightFaceEngine, photo: np.ndarray, face_engine: FaceEngine
) -> None:
    face = face_engine.detect(photo)[0]

    m = ie.similarity_transform(face.landmarks5, ie.ARCFACE_DST)
    mapped = face.landmarks5 @ m[:, :2].T + m[:, 2]
    crop = engine.align(photo, face)

    # A similarity fit of five real landmarks: a few pixels from the template at most.
    assert float(np.abs(mapped - ie.ARCFACE_DST).max()) < 6.0
    assert float(crop.mean()) > 20, "the crop holds the face, not the black border"


def test_given_known_similarity_when_estimated_then_it_is_recovered() -> None:
    rng = np.random.default_rng(7)
    angle, scale, shift = 0.3, 2.5, np.array([40.0, -12.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = rng.uniform(0, 200, size=(5, 2))
    dst = scale * src @ rot.T + shift

    m = ie.similarity_transform(src, dst)

    assert np.allclose(m[:, :2], scale * rot, atol=1e-9) and np.allclose(m[:, 2], shift, atol=1e-7)


def test_given_real_photo_when_analysed_then_quality_and_embedding_are_filled(
    engine: ie.InsightFaceEngine, photo: np.ndarray
) -> None:
    analysed = engine.analyze(photo)

    assert len(analysed) == 1
    a = analysed[0]
    assert a.embedding is not None and a.embedding.shape == (512,)
    assert abs(float(np.linalg.norm(a.embedding)) - 1.0) < 1e-5
    assert a.quality.face_px == pytest.approx(a.face.width)
    assert a.quality.num_faces >= 1
