"""Presentation-attack detection (lifecert.engine.pad): crop maths with known answers, the
MiniFASNet ONNX models on real frames from ../shared, start-up rules when the pack is absent."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from lifecert.domain.errors import ErrorCode, ModelError
from lifecert.engine.base import FaceEngine
from lifecert.engine.pad import (
    FivePointBox,
    PadModel,
    PadNet,
    box_xyxy_to_xywh,
    context_box,
    crop_context,
    five_point_box,
    fuse_session,
    load_pad,
    load_pad_from,
    pad_dir,
    pad_spec,
    softmax,
    startup_pad,
    to_tensor,
)
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def pack_src(faces_dir: Path) -> Path:
    d = faces_dir.parent / "models" / "minifasnet"
    if not d.is_dir():
        pytest.skip("../shared/models/minifasnet not found")
    return d


@pytest.fixture(scope="session")
def pad_model(pack_src: Path) -> PadModel:
    return load_pad_from(pack_src, pad_spec())


# -- crop maths: known answers worked out by hand from upstream's CropImage._get_new_box ---------


def test_given_centred_box_when_context_crop_then_box_scaled_about_its_centre() -> None:
    # 640x480 image, 100x100 box centred at (320, 240), 2.7x -> 270x270 around the same centre
    assert context_box(640, 480, (270, 190, 100, 100), 2.7) == (185, 105, 455, 375)


def test_given_box_near_top_left_when_context_crop_then_shifted_inside_not_clipped() -> None:
    # centre (60, 60): 270 wide from -75 -> shifted right/down by 75, size kept
    assert context_box(640, 480, (10, 10, 100, 100), 2.7) == (0, 0, 270, 270)


def test_given_box_near_bottom_right_when_context_crop_then_shifted_back_inside() -> None:
    # 60x60 box at (560, 400): 162 wide centred at (590, 430) -> x 509..671 and y 349..511,
    # shifted left by 32 and up by 32 to end on the last pixel (639, 479)
    assert context_box(640, 480, (560, 400, 60, 60), 2.7) == (477, 317, 639, 479)


def test_given_large_box_when_scale_does_not_fit_then_scale_shrinks_to_the_image() -> None:
    # 200x200 box, 4.0x would be 800: the scale becomes min(479/200, 639/200) = 2.395 -> 479 px
    assert context_box(640, 480, (100, 100, 200, 200), 4.0) == (0, 0, 479, 479)


def test_given_empty_box_when_context_crop_then_value_error() -> None:
    with pytest.raises(ValueError):
        context_box(640, 480, (10, 10, 0, 50), 2.7)


def test_given_crop_of_exactly_the_input_size_when_cropped_then_pixels_unchanged_end_pixel_included() -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    # scale 1: centre (49.5, 59.5) of a 79-wide box -> x 10..89, y 20..99 inclusive = 80x80
    out = crop_context(frame, (10, 20, 79, 79), 1.0, (80, 80))
    assert out.shape == (80, 80, 3)
    np.testing.assert_array_equal(out, frame[20:100, 10:90])


def test_given_bgr_crops_when_tensor_then_raw_0_255_channels_first_in_bgr_order() -> None:
    crop = np.zeros((80, 80, 3), np.uint8)
    crop[..., 0], crop[..., 1], crop[..., 2] = 10, 128, 255  # B, G, R
    t = to_tensor([crop, crop])
    assert t.shape == (2, 3, 80, 80) and t.dtype == np.float32
    assert (t[0, 0] == 10).all() and (t[0, 1] == 128).all() and (t[0, 2] == 255).all()


def test_given_logits_when_softmax_then_rows_sum_to_one_and_order_kept() -> None:
    p = softmax(np.array([[0.0, 2.0, 0.0], [1000.0, 0.0, 0.0]]))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert p[0].argmax() == 1 and p[1, 0] == pytest.approx(1.0)


def test_given_frame_scores_with_missing_faces_when_fused_then_nan_ignored() -> None:
    assert fuse_session([0.9, float("nan"), 0.7]) == pytest.approx(0.8)
    assert fuse_session([0.1, 0.2, 0.9, 1.0], "median") == pytest.approx(0.55)
    assert fuse_session([0.0, 1.0, 1.0, 1.0, 1.0], "p25") == pytest.approx(1.0)
    assert math.isnan(fuse_session([float("nan")]))
    with pytest.raises(ValueError):
        fuse_session([0.5], "max")


def test_given_xyxy_box_when_converted_then_xywh() -> None:
    assert box_xyxy_to_xywh(np.array([10.0, 20.0, 110.0, 70.0])) == (10.0, 20.0, 100.0, 50.0)


def test_given_manifest_when_pad_spec_read_then_roles_scales_and_pins_are_the_upstream_ones() -> None:
    spec = pad_spec()
    by_role = {f.role: f for f in spec.files}
    assert by_role["pad_v2"].crop_scale == 2.7 and by_role["pad_v1se"].crop_scale == 4.0
    # upstream parses the scale from the file name's first field ("2.7_...", "4_0_0_...")
    assert by_role["pad_v2"].file.startswith("2.7_80x80") and by_role["pad_v1se"].file.startswith("4_0_0_80x80")
    assert all(len(f.sha256) == 64 for f in spec.files)
    assert 0.0 < spec.threshold.value < 1.0


# -- the ONNX models on real frames ---------------------------------------------------------------


class _CountingSession:
    """Wraps a real session to show that both nets see one batch per call (injected sessions)."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.batches: list[tuple[int, ...]] = []

    def get_inputs(self):  # type: ignore[no-untyped-def]
        return self.inner.get_inputs()  # type: ignore[attr-defined]

    def run(self, names, feed):  # type: ignore[no-untyped-def]
        self.batches.append(next(iter(feed.values())).shape)
        return self.inner.run(names, feed)  # type: ignore[attr-defined]


def _first_face_xywh(engine: FaceEngine, frame: np.ndarray) -> tuple[float, float, float, float]:
    faces = engine.detect(frame)
    assert faces, "the real frame must contain a face"
    return box_xyxy_to_xywh(faces[0].box)


def test_given_upstream_sample_frames_when_scored_then_real_scores_above_the_printed_attacks(
    faces_dir: Path, pad_model: PadModel, face_engine: FaceEngine
) -> None:
    """The upstream project's own 640x480 sample frames: one real, two photo attacks."""
    spoof = faces_dir / "spoof"
    scores = {}
    for name in ("silentface_image_T1_real.jpg", "silentface_image_F1_attack.jpg", "silentface_image_F2_attack.jpg"):
        frame = cv2.imread(str(spoof / name))
        assert frame is not None
        s = pad_model.score(frame, _first_face_xywh(face_engine, frame))
        assert 0.0 <= s <= 1.0
        scores[name] = s
    real = scores.pop("silentface_image_T1_real.jpg")
    assert real > 0.9
    assert all(s < 0.5 for s in scores.values()), scores


def test_given_video_frames_when_scored_in_one_batch_then_equal_to_one_by_one(
    faces_dir: Path, pack_src: Path, face_engine: FaceEngine
) -> None:
    spec = pad_spec()
    from lifecert.engine.pad import make_session

    sessions = [_CountingSession(make_session(pack_src / f.file, threads=1)) for f in spec.files]
    model = PadModel(
        tuple(PadNet(s, f.crop_scale, f.input_size, f.role) for s, f in zip(sessions, spec.files, strict=True)),
        spec.threshold,
    )
    cap = cv2.VideoCapture(str(faces_dir / "video" / "blink_7_times_1080p.mp4"))
    frames = []
    for _ in range(3):
        ok, fr = cap.read()
        assert ok
        frames.append(fr)
    cap.release()
    boxes = [_first_face_xywh(face_engine, f) for f in frames]
    batch = model.score_many(frames, boxes)
    single = [model.score(f, b) for f, b in zip(frames, boxes, strict=True)]
    np.testing.assert_allclose(batch, single, atol=1e-5)
    assert sessions[0].batches[0] == (3, 3, 80, 80)
    assert not model.is_attack(model.fuse(list(batch)))  # a real person in a full 1080p frame


def test_given_tight_print_crop_when_scored_then_low_p_real(
    faces_dir: Path, pad_model: PadModel, face_engine: FaceEngine
) -> None:
    f = sorted((faces_dir / "spoof" / "nuaa" / "attack_print").glob("*/*.jpg"))[0]
    frame = cv2.imread(str(f))
    assert pad_model.score(frame, _first_face_xywh(face_engine, frame)) < 0.5


# -- the crop's face box from five landmarks ---------------------------------------------------------

# eyes at (42, 50) and (58, 50), nose (50, 60), mouth corners (44, 70) and (56, 70): eye-mouth 20, eyes 16
_FIVE = np.array([[42, 50], [58, 50], [50, 60], [44, 70], [56, 70]], np.float32)


def test_given_upright_face_when_five_point_box_then_square_of_the_measured_side_below_the_eyes() -> None:
    # s = max(20, 1.08 * 16 = 17.28) = 20: side 2.22 * 20 = 44.4, centre (50, 50 + 0.44 * 20 = 58.8)
    np.testing.assert_allclose(five_point_box(_FIVE), (50 - 22.2, 58.8 - 22.2, 44.4, 44.4), atol=1e-4)


def test_given_nod_shortening_eye_to_mouth_when_boxed_then_the_eye_distance_keeps_the_size() -> None:
    nod = _FIVE.copy()
    nod[:, 1] = 50 + (nod[:, 1] - 50) * 0.5  # eye-mouth 10, eyes still 16: s = 1.08 * 16
    x, y, w, h = five_point_box(nod)
    assert w == h == pytest.approx(2.22 * 1.08 * 16, abs=1e-3)
    assert (x + w / 2, y + h / 2) == pytest.approx((50.0, 50.0 + 0.44 * 1.08 * 16), abs=1e-3)


def test_given_turn_narrowing_the_eyes_when_boxed_then_the_same_size_as_frontal() -> None:
    turn = _FIVE.copy()
    turn[:, 0] = 50 + (turn[:, 0] - 50) * 0.6  # a ~53 degree turn: eyes 9.6 apart, eye-mouth still 20
    assert five_point_box(turn)[2] == pytest.approx(five_point_box(_FIVE)[2])


def test_given_head_lying_on_its_side_when_boxed_then_centre_moves_towards_the_mouth() -> None:
    rot = np.stack([100 - _FIVE[:, 1], _FIVE[:, 0]], axis=1)  # rotated 90 degrees: the mouth is to the left
    x, y, w, h = five_point_box(rot)
    assert w == pytest.approx(44.4, abs=1e-3)
    assert (x + w / 2, y + h / 2) == pytest.approx((50.0 - 8.8, 50.0), abs=1e-3)


def test_given_points_on_one_spot_when_boxed_then_value_error() -> None:
    with pytest.raises(ValueError):
        five_point_box(np.full((5, 2), 7.0, np.float32))
    with pytest.raises(ValueError):
        FivePointBox().box(np.full((5, 2), np.nan, np.float32))


def test_given_face_box_rule_when_box_for_then_five_points_or_the_detector_box() -> None:
    det = np.array([20, 30, 80, 95], np.float32)
    five_rule = PadModel(nets=(), threshold=pad_spec().threshold, face_box="five_points")
    det_rule = PadModel(nets=(), threshold=pad_spec().threshold, face_box="detector")
    assert five_rule.box_for(det, _FIVE) == five_point_box(_FIVE)
    assert five_rule.box_for(det, None) == (20.0, 30.0, 60.0, 65.0)  # no landmarks: the detector's box
    assert det_rule.box_for(det, _FIVE) == (20.0, 30.0, 60.0, 65.0)
    assert five_rule.box_for(det, np.full((5, 2), 7.0, np.float32)) == (20.0, 30.0, 60.0, 65.0)  # degenerate


def test_given_manifest_face_box_when_read_then_absent_is_detector_and_unknown_refused(tmp_path: Path) -> None:
    src = (ROOT / "models" / "manifest.toml").read_text()
    assert pad_spec().face_box in ("detector", "five_points")
    old = tmp_path / "old.toml"
    old.write_text("\n".join(ln for ln in src.splitlines() if not ln.startswith("face_box")) + "\n")
    assert pad_spec(old).face_box == "detector"  # an older manifest keeps the detector's box
    bad = tmp_path / "bad.toml"
    bad.write_text(old.read_text().replace("[packs.minifasnet]\n", '[packs.minifasnet]\nface_box = "chin"\n', 1))
    with pytest.raises(ModelError) as e:
        pad_spec(bad)
    assert e.value.code == ErrorCode.CONFIG_ERROR


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def test_given_real_photos_when_five_point_box_then_it_matches_dlibs_frontal_detector_box(
    faces_dir: Path, face_engine: FaceEngine
) -> None:
    """The measured constants reproduce the frontal detector's box on real faces (the threshold was calibrated
    on that convention): median IoU over the photos of ../shared/faces/photos."""
    ious = []
    for f in sorted((faces_dir / "photos").glob("*/*")):
        img = cv2.imread(str(f))
        faces = face_engine.detect(img) if img is not None else []
        if faces:
            ious.append(_iou(box_xyxy_to_xywh(faces[0].box), five_point_box(faces[0].landmarks5)))
    assert len(ious) >= 20
    assert float(np.median(ious)) > 0.8, sorted(ious)


# -- pack files and start-up -----------------------------------------------------------------------


def test_given_no_pack_when_loading_then_none_and_development_runs_with_pad_off(tmp_path: Path) -> None:
    s = make_settings(tmp_path)
    assert load_pad(s) is None
    status = startup_pad(s)
    assert not status.on and status.as_dict()["pad"] == "off"
    assert str(tmp_path) not in status.reason  # /readyz is public: no server paths


def test_given_production_without_pack_when_starting_then_refused_unless_explicitly_allowed(tmp_path: Path) -> None:
    real = {"template_key": "a2V5LWtleS1rZXkta2V5LWtleS1rZXkta2V5LWtleTM=", "session_secret": "s" * 40}
    s = make_settings(tmp_path, **real)
    prod = s.model_copy(update={"env": "production"})
    with pytest.raises(ModelError) as e:
        startup_pad(prod)
    assert e.value.code == ErrorCode.CONFIG_ERROR and "ALLOW_NO_PAD" in e.value.message
    allowed = prod.model_copy(update={"liveness": prod.liveness.model_copy(update={"allow_no_pad": True})})
    assert not startup_pad(allowed).on


def test_given_pack_installed_with_the_cli_function_when_starting_then_pad_on(tmp_path: Path, pack_src: Path) -> None:
    from lifecert.cli_models import install_models, verify_models

    s = make_settings(tmp_path)
    record = install_models(s, pack_src, "minifasnet")  # = lifecert models install minifasnet --from DIR
    assert set(record["files"]) == {f.file for f in pad_spec().files}  # the .pth and LICENSE are not copied
    assert len(verify_models(s, "minifasnet")) == 2
    status = startup_pad(s)
    assert status.on and status.as_dict()["pad"] == "on"
    assert status.model is not None and [n.crop_scale for n in status.model.nets] == [2.7, 4.0]
    assert status.model.exposure == pad_spec().exposure  # the installed pack scores with the manifest's correction


def test_given_folder_with_a_file_of_other_bytes_when_installing_then_refused_and_nothing_installed(
    tmp_path: Path, pack_src: Path
) -> None:
    from lifecert.cli_models import install_models

    s = make_settings(tmp_path)
    bad = tmp_path / "minifasnet"
    bad.mkdir()
    files = pad_spec().files
    for f in files:
        shutil.copyfile(pack_src / f.file, bad / f.file)
    with (bad / files[0].file).open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelError, match="sha256"):
        install_models(s, bad, "minifasnet")
    assert load_pad(s) is None


def test_given_installed_pack_tampered_afterwards_when_loading_then_refused_not_silently_off(
    tmp_path: Path, pack_src: Path
) -> None:
    from lifecert.cli_models import install_models

    s = make_settings(tmp_path)
    install_models(s, pack_src, "minifasnet")
    target = pad_dir(s) / pad_spec().files[0].file
    target.chmod(0o600)
    with target.open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelError):
        load_pad(s)
    with pytest.raises(ModelError):
        startup_pad(s)


@pytest.mark.parametrize("tamper", [False, True])
def test_given_mirror_zip_on_local_http_when_pulling_then_installed_only_if_every_pin_matches(
    tmp_path: Path, pack_src: Path, tamper: bool, mirror: tuple[str, Path]
) -> None:
    """`lifecert models pull minifasnet --url URL` (no network here: a local mirror stands in for it)."""
    import zipfile

    from lifecert.cli_models import pull_models

    base, folder = mirror
    with zipfile.ZipFile(folder / "minifasnet.zip", "w") as zf:
        for f in pad_spec().files:
            data = (pack_src / f.file).read_bytes()
            zf.writestr(f"minifasnet/{f.file}", data + (b"\0" if tamper and f.role == "pad_v1se" else b""))
    s = make_settings(tmp_path)
    url = f"{base}/minifasnet.zip"
    if tamper:
        with pytest.raises(ModelError, match="sha256"):
            pull_models(s, "minifasnet", url)
        assert load_pad(s) is None
    else:
        pull_models(s, "minifasnet", url)
        model = load_pad(s)
        assert model is not None and len(model.nets) == 2


def test_given_calibration_when_written_to_a_manifest_copy_then_only_the_threshold_table_changes(
    tmp_path: Path,
) -> None:
    from benchmarks.pad_eval import write_manifest_threshold

    src = ROOT / "models" / "manifest.toml"
    copy = tmp_path / "manifest.toml"
    copy.write_text(src.read_text())
    apcer = {"print": {"rate": 0.0}, "cued_replay": {"rate": 0.04}}
    write_manifest_threshold(copy, 0.4321, "median", apcer, 0.02, "test set", "2026-11-30")
    spec = pad_spec(copy)
    assert spec.threshold.value == 0.4321 and spec.threshold.fusion == "median"
    assert spec.threshold.apcer == 0.04 and spec.threshold.bpcer == 0.02 and spec.threshold.dataset == "test set"
    before, after = src.read_text(), copy.read_text()
    cut = before.index("[packs.minifasnet.threshold]")
    assert after[:cut] == before[:cut]  # everything above the table is untouched
    rest = before[cut:].split("\n\n", 1)[1]
    assert after.endswith(rest)  # ... and everything after it (comments of the next section included)
    assert [f.sha256 for f in spec.files] == [f.sha256 for f in pad_spec(src).files]


@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    [(0, 100, 0.0, 0.0362167), (5, 100, 0.0164319, 0.1128349), (100, 100, 0.9637833, 1.0),
     (1, 10, 0.0025286, 0.4450161)],
)
def test_given_errors_out_of_trials_when_interval_then_exact_clopper_pearson(k: int, n: int, lo: float,
                                                                             hi: float) -> None:
    """Known answers (scipy.stats.beta quantiles / R binom.test) for the benchmark's 95 % intervals."""
    from benchmarks.pad_eval import clopper_pearson

    got = clopper_pearson(k, n)
    assert got == pytest.approx((lo, hi), abs=1e-6)


def test_given_impossible_counts_when_interval_then_value_error() -> None:
    from benchmarks.pad_eval import clopper_pearson

    with pytest.raises(ValueError):
        clopper_pearson(3, 2)


# -- exposure correction (dim rooms) ---------------------------------------------------------------


def _flat_face_frame(luma: int) -> np.ndarray:
    """A grey 480x640 frame whose face box (160, 200, 160, 200) is uniformly ``luma``."""
    frame = np.full((640, 480, 3), 30, np.uint8)
    frame[200:400, 160:320] = luma
    return frame


_FLAT_BOX = (160.0, 200.0, 160.0, 200.0)


@pytest.mark.parametrize(("luma", "gain"), [(20, 2.5), (50, 1.4), (70, 1.0), (100, 1.0), (0, 2.5)])
def test_given_face_luma_when_exposure_gain_then_target_over_luma_clipped_to_one_and_the_cap(
    luma: int, gain: float
) -> None:
    from lifecert.engine.pad import ExposureNorm, face_luma

    frame = _flat_face_frame(luma)
    assert face_luma(frame, _FLAT_BOX) == luma
    assert ExposureNorm(70.0, 2.5).gain(frame, _FLAT_BOX) == pytest.approx(gain)


def test_given_very_dark_frame_when_corrected_then_gain_capped_and_pixels_scaled_by_it() -> None:
    from lifecert.engine.pad import ExposureNorm

    frame = _flat_face_frame(10)
    out = ExposureNorm(70.0, 2.5).apply(frame, _FLAT_BOX)
    assert out.dtype == np.uint8 and out.shape == frame.shape
    assert int(out[300, 240, 0]) == 25 and int(out[10, 10, 0]) == 75  # 10 x 2.5 and 30 x 2.5, not 70


def test_given_bright_frame_when_corrected_then_returned_untouched_even_with_denoise() -> None:
    from lifecert.engine.pad import ExposureNorm

    frame = _flat_face_frame(140)
    assert ExposureNorm(70.0, 2.5, denoise_sigma=0.8).apply(frame, _FLAT_BOX) is frame


def test_given_bad_exposure_values_when_built_then_value_error() -> None:
    from lifecert.engine.pad import ExposureNorm

    for args in ((0.0, 2.5, 0.0), (70.0, 0.5, 0.0), (70.0, 2.5, -1.0), (300.0, 2.5, 0.0)):
        with pytest.raises(ValueError):
            ExposureNorm(*args)


def test_given_manifest_without_exposure_keys_when_read_then_no_correction_and_bad_values_refused(
    tmp_path: Path,
) -> None:
    src = (ROOT / "models" / "manifest.toml").read_text()
    lines = [ln for ln in src.splitlines() if not ln.startswith("exposure_")]
    old = tmp_path / "old.toml"
    old.write_text("\n".join(lines) + "\n")
    assert pad_spec(old).exposure is None  # an older manifest keeps the old behaviour
    bad = tmp_path / "bad.toml"
    bad.write_text(src.replace("[packs.minifasnet]\n", "[packs.minifasnet]\nexposure_target = -5\n", 1)
                   if "exposure_target" not in src else src.replace("exposure_target = ", "exposure_target = -", 1))
    with pytest.raises(ModelError) as e:
        pad_spec(bad)
    assert e.value.code == ErrorCode.CONFIG_ERROR


def test_given_manifest_when_pad_loaded_then_the_exposure_correction_is_on(pack_src: Path) -> None:
    spec = pad_spec()
    assert spec.exposure is not None and spec.exposure.max_gain == 2.5
    assert load_pad_from(pack_src, spec).exposure == spec.exposure


def _dim_pair(faces_dir: Path, name: str, face_engine: FaceEngine) -> tuple[np.ndarray, np.ndarray, tuple]:
    """A REAL apfol live crop placed in a frame, shot by the benchmark camera at gain 1.0 and 0.5."""
    from benchmarks import attacks as atk

    scene = atk.place_crop(cv2.imread(str(faces_dir / "spoof" / "apfol" / "real" / name)))
    normal = atk.Camera(np.random.default_rng(1), gain=1.0).shoot(scene)
    dim = atk.Camera(np.random.default_rng(2), gain=0.5).shoot(scene)
    return normal, dim, _first_face_xywh(face_engine, normal)


@pytest.mark.parametrize("name", ["130.png", "171.png"])
def test_given_real_frame_darkened_by_half_when_scored_with_correction_then_like_the_original(
    faces_dir: Path, pad_model: PadModel, face_engine: FaceEngine, name: str
) -> None:
    """Known answer on real faces: exposure 0.5 (then sensor noise and JPEG, as attacks.Camera does)
    costs 0.2-0.3 of P(real) uncorrected; the manifest's correction brings it back within 0.06."""
    import dataclasses

    spec = pad_spec()
    corrected = dataclasses.replace(pad_model, exposure=spec.exposure)
    plain = dataclasses.replace(pad_model, exposure=None)
    normal, dim, box = _dim_pair(faces_dir, name, face_engine)
    assert spec.exposure is not None and spec.exposure.gain(normal, box) == 1.0  # the original is left as it is
    original = plain.score(normal, box)
    assert corrected.score(normal, box) == original
    assert original - plain.score(dim, box) > 0.15  # the dim frame does lose P(real) without the correction
    assert abs(corrected.score(dim, box) - original) < 0.06
