"""Caseworker spot checks of CONFIRMED sessions: the rule (lifecert.domain.spotcheck), where its band
comes from (settings override, the PAD pack's `audit_below` in the manifest, PAD off), and the
settings and manifest values that are refused."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from pydantic import ValidationError

from lifecert.config import Settings
from lifecert.domain.errors import ErrorCode, LifecertError, ModelError
from lifecert.domain.spotcheck import SpotCheckPolicy, SpotCheckReason, jaw_unread_of, still_chin_of
from lifecert.engine.pad import PadModel, PadThreshold, pad_spec
from lifecert.services.verification.spotcheck import pad_score_of, policy_from

ROOT = Path(__file__).resolve().parents[2]
BAND = SpotCheckPolicy(sample_rate=0.0, pad_threshold=0.7325, pad_below=0.94, band_source="test")


def test_given_a_band_when_scores_fall_around_it_then_only_those_in_threshold_to_below_are_checked() -> None:
    assert BAND.band == (0.7325, 0.94)
    assert BAND.reasons(0.7325, 0.5) == (SpotCheckReason.PAD_GREY_BAND,)  # the threshold itself is in the band
    assert BAND.reasons(0.9399, 0.5) == (SpotCheckReason.PAD_GREY_BAND,)
    assert BAND.reasons(0.94, 0.5) == ()  # the upper end is out
    assert BAND.reasons(0.99, 0.0) == ()  # rate 0: no draw is low enough
    assert BAND.reasons(None, 0.5) == ()  # PAD did not score the session: no band reason


def test_given_a_sample_rate_when_drawing_then_a_draw_below_the_rate_is_sampled() -> None:
    p = SpotCheckPolicy(sample_rate=0.02)
    assert p.band is None
    assert p.reasons(0.75, 0.0199) == (SpotCheckReason.RANDOM_SAMPLE,)  # no band: a low score alone is nothing
    assert p.reasons(0.75, 0.02) == ()
    both = SpotCheckPolicy(sample_rate=0.5, pad_threshold=0.7, pad_below=0.9)
    assert both.reasons(0.8, 0.1) == (SpotCheckReason.PAD_GREY_BAND, SpotCheckReason.RANDOM_SAMPLE)
    assert SpotCheckPolicy(sample_rate=1.0).reasons(None, 0.999999) == (SpotCheckReason.RANDOM_SAMPLE,)
    with pytest.raises(ValueError):
        p.reasons(0.8, 1.0)  # not a draw in [0, 1)


def test_given_a_pinned_rng_when_sampling_many_sessions_then_the_sampled_share_is_the_rate() -> None:
    """A pinned stream of draws (random.Random(2026)): at rate 0.02, 1000 sessions give exactly the
    sessions whose draw is below 0.02 — 19 of them for this seed (2 % of 1000 is 20)."""
    rng = random.Random(2026)
    p = SpotCheckPolicy(sample_rate=0.02)
    picked = [i for i in range(1000) if p.reasons(0.99, rng.random())]
    assert len(picked) == 19
    rng = random.Random(2026)
    assert picked == [i for i in range(1000) if rng.random() < 0.02]


@pytest.mark.parametrize(("rate", "threshold", "below"), [
    (-0.01, None, None), (1.01, None, None), (float("nan"), None, None),
    (0.02, 0.7325, 0.7325),  # an empty band
    (0.02, 0.7325, 0.5),  # below the threshold
    (0.02, 0.7325, 1.2),  # above 1
    (0.02, 0.7325, float("nan")),
    (0.02, None, 0.9),  # a band without PAD
])
def test_given_bad_values_when_making_a_policy_then_config_error(rate: float, threshold: float | None,
                                                                  below: float | None) -> None:
    with pytest.raises(LifecertError) as e:
        SpotCheckPolicy(sample_rate=rate, pad_threshold=threshold, pad_below=below)
    assert e.value.code == ErrorCode.CONFIG_ERROR


def _pad(audit_below: float | None) -> PadModel:
    return PadModel(nets=(), threshold=PadThreshold(value=0.7325, fusion="median", audit_below=audit_below))


def _settings(tmp_path: Path, **verification: object) -> Settings:
    return Settings(env="test", data_dir=tmp_path, verification=verification)  # type: ignore[arg-type]


def test_given_manifest_band_and_override_when_the_service_policy_is_made_then_the_override_wins(
    tmp_path: Path,
) -> None:
    s = _settings(tmp_path)
    assert s.verification.audit_sample_rate == 0.02 and s.verification.audit_pad_below is None
    from_manifest = policy_from(s, _pad(0.94))
    assert from_manifest.band == (0.7325, 0.94) and "manifest" in from_manifest.band_source
    over = policy_from(_settings(tmp_path, audit_pad_below=0.9), _pad(0.94))
    assert over.band == (0.7325, 0.9) and over.band_source == "LIFECERT_VERIFICATION__AUDIT_PAD_BELOW"
    none = policy_from(s, _pad(None))  # no audit_below in the manifest: random sample only
    assert none.band is None and none.sample_rate == 0.02 and "no audit_below" in none.describe()
    off = policy_from(_settings(tmp_path, audit_pad_below=0.9), None)  # PAD off: no band whatever is set
    assert off.band is None and "PAD is off" in off.describe()
    assert policy_from(_settings(tmp_path, audit_sample_rate=0), None).reasons(None, 0.0) == ()


@pytest.mark.parametrize("below", [0.7325, 0.5])
def test_given_an_override_not_above_the_pad_threshold_when_the_policy_is_made_then_refused_naming_it(
    tmp_path: Path, below: float
) -> None:
    with pytest.raises(LifecertError) as e:
        policy_from(_settings(tmp_path, audit_pad_below=below), _pad(None))
    assert e.value.code == ErrorCode.CONFIG_ERROR and "AUDIT_PAD_BELOW" in str(e.value)


@pytest.mark.parametrize("bad", [{"audit_sample_rate": 1.5}, {"audit_sample_rate": -0.1},
                                 {"audit_pad_below": 0}, {"audit_pad_below": 1.01}, {"audit_sample_rate": "half"}])
def test_given_out_of_range_settings_when_loaded_then_refused(tmp_path: Path, bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError) as e:
        _settings(tmp_path, **bad)
    assert next(iter(bad)) in str(e.value)


def test_given_the_environment_when_settings_load_then_the_spot_check_variables_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIFECERT_VERIFICATION__AUDIT_PAD_BELOW", "0.93")
    monkeypatch.setenv("LIFECERT_VERIFICATION__AUDIT_SAMPLE_RATE", "0")
    s = Settings(env="test", data_dir=tmp_path)
    assert (s.verification.audit_pad_below, s.verification.audit_sample_rate) == (0.93, 0.0)
    monkeypatch.setenv("LIFECERT_VERIFICATION__AUDIT_SAMPLE_RATE", "2")
    with pytest.raises(ValidationError):
        Settings(env="test", data_dir=tmp_path)


def _manifest(tmp_path: Path, pack_line: str = "", threshold_line: str = "") -> Path:
    src = (ROOT / "models" / "manifest.toml").read_text()
    src = "\n".join(ln for ln in src.splitlines() if not ln.startswith("audit_below")) + "\n"
    if pack_line:
        src = src.replace("[packs.minifasnet]\n", f"[packs.minifasnet]\n{pack_line}\n", 1)
    if threshold_line:
        src = src.replace("[packs.minifasnet.threshold]\n", f"[packs.minifasnet.threshold]\n{threshold_line}\n", 1)
    out = tmp_path / "manifest.toml"
    out.write_text(src)
    return out


def test_given_audit_below_in_the_pad_pack_entry_when_read_then_the_band_end_else_none(tmp_path: Path) -> None:
    assert pad_spec(_manifest(tmp_path)).threshold.audit_below is None
    assert pad_spec(_manifest(tmp_path, pack_line="audit_below = 0.9421")).threshold.audit_below == 0.9421
    assert pad_spec(_manifest(tmp_path, threshold_line="audit_below = 0.95")).threshold.audit_below == 0.95
    for bad in ({"pack_line": "audit_below = 0.9", "threshold_line": "audit_below = 0.9"},
                {"pack_line": 'audit_below = "high"'}, {"pack_line": "audit_below = true"}):
        with pytest.raises(ModelError) as e:
            pad_spec(_manifest(tmp_path, **bad))
        assert e.value.code == ErrorCode.CONFIG_ERROR and "audit_below" in str(e.value)


def test_given_an_analysis_record_when_reading_the_pad_score_then_only_a_number_counts() -> None:
    assert pad_score_of({"pad": {"score": 0.81, "threshold": 0.7325}}) == 0.81
    assert pad_score_of({"pad": {"score": None}}) is None
    assert pad_score_of({"pad": None}) is None and pad_score_of({}) is None
    assert pad_score_of({"pad": {"score": True}}) is None
    assert pad_score_of({"pad": {"score": float("nan")}}) is None
    assert pad_score_of({"pad": 0.9}) is None  # a bare number is not the PAD record the rules write


def test_given_a_still_chin_when_a_confirmed_session_is_considered_then_it_is_checked_first_whatever_else() -> None:
    p = SpotCheckPolicy(sample_rate=0.02, pad_threshold=0.7325, pad_below=0.94, band_source="test")
    assert p.reasons(0.99, 0.5, still_chin=True) == (SpotCheckReason.STILL_CHIN,)
    assert p.reasons(0.80, 0.01, still_chin=True) == (
        SpotCheckReason.STILL_CHIN, SpotCheckReason.PAD_GREY_BAND, SpotCheckReason.RANDOM_SAMPLE)
    assert p.reasons(0.99, 0.5) == ()  # the jaw test did not see a still chin: nothing


def test_given_an_analysis_record_when_reading_the_jaw_verdict_then_only_a_true_still_chin_counts() -> None:
    assert still_chin_of({"liveness": {"jaw": {"decided": True, "still_chin": True}}})
    assert not still_chin_of({"liveness": {"jaw": {"decided": True, "still_chin": False}}})
    assert not still_chin_of({"liveness": {"jaw": {"still_chin": "yes"}}})  # only the boolean
    assert not still_chin_of({"liveness": {"jaw": None}}) and not still_chin_of({"liveness": {}})
    assert not still_chin_of({}) and not still_chin_of({"liveness": "x"})


def test_given_a_seen_opening_the_jaw_test_could_not_read_when_considered_then_checked_after_a_still_chin() -> None:
    p = SpotCheckPolicy(sample_rate=0.0)
    assert p.reasons(0.99, 0.5, jaw_unread=True) == (SpotCheckReason.JAW_UNREAD,)
    assert p.reasons(0.99, 0.5, still_chin=False, jaw_unread=False) == ()
    unread = {"liveness": {"jaw": {"decided": False, "still_chin": False, "step_seen": True}}}
    assert jaw_unread_of(unread) and not still_chin_of(unread)
    # a step that timed out, a decided test, a record before the field: not unread
    assert not jaw_unread_of({"liveness": {"jaw": {"decided": False, "step_seen": False}}})
    assert not jaw_unread_of({"liveness": {"jaw": {"decided": True, "step_seen": True}}})
    assert not jaw_unread_of({"liveness": {"jaw": {"decided": False}}}) and not jaw_unread_of({})
