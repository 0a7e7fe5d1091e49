"""Typed review-case payloads: round trips, unreadable rows, the decisions per type, and the 0003
migration's conversion of the payload shapes the producers wrote before it (plain data, no database)."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from datetime import date
from pathlib import Path
from types import ModuleType

import pytest

from lifecert.domain.cases import (
    AliveAfterDeath,
    CasePayload,
    ChallengeOutcome,
    ConfirmationRef,
    DeathAfterConfirmation,
    Decision,
    DepartmentRecord,
    DrawnSession,
    DuplicateFace,
    EnrollmentReject,
    FaceHit,
    FrameRef,
    IdCollision,
    NameMismatch,
    RecordedDeath,
    SpotCheck,
    TipOffReport,
    UnreadablePayload,
    VerificationReview,
    decisions_for,
    dump_payload,
    kind_of,
    load_payload,
    other_pensioner_ids,
    photo_shas,
)
from lifecert.services.cases import verification_review

SHA_A, SHA_B = "a" * 64, "b" * 64
RECORD = DepartmentRecord(department="civil_affairs_cremation", import_id=7, row_no=12, id_number="220202195003070015",
                          name="周明", record_kind="death", event_date=date(2026, 2, 14), detail="火化")

EXAMPLES: list[CasePayload] = [
    VerificationReview(session_id="s1", reason="LOW_MATCH", match=0.41, threshold=0.5,
                       best_frames=(FrameRef(sha256=SHA_A, index=3, t_ms=375, quality=0.8),),
                       challenges=(ChallengeOutcome(name="blink", passed=True, peak_value=0.12),),
                       one_to_n=(FaceHit(pensioner_id=9, score=0.3),)),
    EnrollmentReject(run_id=1, row_no=4, photo_name="x.jpg", photo_sha256=SHA_B, detail="too dark",
                     quality={"brightness": 31.0}),
    DuplicateFace(photo_sha256=SHA_B, duplicate_of_pensioner_id=5, similarity=0.93, threshold=0.6),
    IdCollision(id_number="220202195003070015", manifest_name="李四", enrolled_name="张三"),
    NameMismatch(record=RECORD, pensioner_name="周敏"),
    AliveAfterDeath(death=RecordedDeath(death_date=date(2026, 1, 10), department="police"), alive_evidence=RECORD),
    DeathAfterConfirmation(death=RECORD, confirmation=ConfirmationRef(method="face_self_service",
                                                                      evidence_date=date(2026, 3, 1))),
    TipOffReport(description="他去年已经去世了，家属还在领", name="孙某某", contact="13800000000"),
]


@pytest.mark.parametrize("payload", EXAMPLES, ids=lambda p: p.type)
def test_given_each_payload_type_when_dumped_and_loaded_then_equal_and_json_ready(payload: CasePayload) -> None:
    stored = dump_payload(payload)
    assert stored["type"] == payload.type and stored["v"] == 1
    assert load_payload(stored) == payload
    import json

    json.dumps(stored)  # dates as ISO strings: storable in a JSON column


def test_given_payloads_when_asking_kind_then_each_sits_in_its_queue() -> None:
    assert [str(kind_of(p)) for p in EXAMPLES] == [
        "verification", "enrollment", "enrollment", "enrollment", "name_mismatch", "data_conflict", "data_conflict",
        "tip_off"]


@pytest.mark.parametrize("raw", [
    None, [], "text", {"score": 0.4},  # the hand-built shapes tests used to write
    {"type": "verification", "v": 1},  # required fields missing
    {"type": "verification", "v": 99, "session_id": "s", "reason": "x"},  # a future version
    {"type": "nonsense", "v": 1},
    {**dump_payload(EXAMPLES[0]), "best_frames": [{"sha256": "../../etc/passwd"}]},
])
def test_given_bad_stored_payload_when_loaded_then_unreadable_not_guessed(raw: object) -> None:
    got = load_payload(raw)
    assert isinstance(got, UnreadablePayload) and got.error
    assert photo_shas(got) == [] and other_pensioner_ids(got) == []
    assert Decision.APPROVED not in decisions_for(got, "LOW_MATCH")


def test_given_payloads_when_listing_photos_then_frames_and_enrollment_photo_and_other_pensioners() -> None:
    assert photo_shas(EXAMPLES[0]) == [SHA_A] and other_pensioner_ids(EXAMPLES[0]) == [9]
    assert photo_shas(EXAMPLES[2]) == [SHA_B] and other_pensioner_ids(EXAMPLES[2]) == [5]
    assert photo_shas(EXAMPLES[7]) == [] and other_pensioner_ids(EXAMPLES[4]) == []


def test_given_a_spot_check_with_a_later_session_when_stored_then_every_session_and_its_frames_are_kept() -> None:
    """One spot check per pensioner: a later drawn session rides in ``later``; a row stored before that
    field existed still loads (no ``later`` key: none)."""
    first = SpotCheck(session_id="s1", reasons=("RANDOM_SAMPLE",), confirmation_id=11, method="face_self_service",
                      best_frames=(FrameRef(sha256=SHA_A, index=2),), sample_rate=0.02)
    both = replace(first, later=(DrawnSession(session_id="s2", reasons=("PAD_GREY_BAND",), confirmation_id=12,
                                              method="assisted", best_frames=(FrameRef(sha256=SHA_B, index=5),),
                                              pad_score=0.75, pad_band=(0.7325, 0.94)),))
    stored = dump_payload(both)
    assert load_payload(stored) == both and stored["later"][0]["confirmation_id"] == 12
    assert [d.session_id for d in both.sessions] == ["s1", "s2"] and both.confirmation_ids == (11, 12)
    assert photo_shas(both) == [SHA_A, SHA_B], "the case page may show the later session's frames too"
    old = {k: v for k, v in dump_payload(first).items() if k != "later"}
    assert load_payload(old) == first and first.sessions == (first,)


def test_given_tip_off_when_listing_decisions_then_no_survival_confirmation_possible() -> None:
    tip = decisions_for(EXAMPLES[7], "TIP_OFF")
    assert Decision.APPROVED not in tip and tip[0] == Decision.HOME_VISIT
    assert Decision.UNFOUNDED in tip


@pytest.mark.parametrize("payload", [EXAMPLES[5], EXAMPLES[6]], ids=lambda p: p.type)
def test_given_death_record_case_when_listing_decisions_then_survival_not_first(payload: CasePayload) -> None:
    ds = decisions_for(payload, "X")
    assert ds[0] == Decision.HOME_VISIT and Decision.APPROVED in ds[1:]


def test_given_low_match_verification_when_listing_decisions_then_approve_first_but_not_for_another_face() -> None:
    assert decisions_for(EXAMPLES[0], "LOW_MATCH")[0] == Decision.APPROVED
    assert decisions_for(EXAMPLES[0], "DIFFERENT_PERSONS")[0] == Decision.HOME_VISIT
    assert Decision.APPROVED not in decisions_for(EXAMPLES[1], "NO_FACE")


def test_given_verification_analysis_record_when_building_review_then_frames_carry_their_metadata() -> None:
    scores = {"match": 0.4123, "threshold": 0.5, "one_person_min_similarity": 0.7, "liveness_issue": "flat_photo",
              "best_frames": [{"index": 4, "t_ms": 500, "quality": 0.9}, {"index": 11, "t_ms": 1375, "quality": 0.7},
                              {"index": 20, "t_ms": 2500, "quality": 0.2, "track_break": True}],
              "one_to_n": [{"pensioner_id": 3, "template_id": 8, "score": 0.21}],
              "pad": {"frames": 30, "score": 0.31, "min": 0.02, "threshold": 0.5, "fusion": "mean", "spoof": True}}
    challenges = [{"name": "blink", "passed": True, "window_ms": [1500, 4500], "frames": 20, "peak_value": 0.11,
                   "baseline": 0.3, "threshold": 0.2, "note": ""},
                  {"name": "nod", "passed": False, "note": "not evaluated"}]
    r = verification_review("sess", "LOW_MATCH", None, 0, scores, challenges, [SHA_A, SHA_B], [11, 4], "m1")
    assert (r.match, r.threshold, r.liveness_issue, r.model_key) == (0.4123, 0.5, "flat_photo", "m1")
    assert [(f.sha256, f.index, f.t_ms) for f in r.best_frames] == [(SHA_A, 11, 1375), (SHA_B, 4, 500)]
    assert [(c.name, c.passed) for c in r.challenges] == [("blink", True), ("nod", False)]
    assert r.one_to_n == (FaceHit(pensioner_id=3, score=0.21, template_id=8),)
    assert (r.pad_score, r.pad_threshold) == (0.31, 0.5)  # rules.pad_evidence's keys
    assert load_payload(dump_payload(r)) == r


def _migration() -> ModuleType:
    path = (Path(__file__).resolve().parents[2] / "lifecert/storage/migrations/versions"
            / "0003_typed_case_payloads.py")
    spec = importlib.util.spec_from_file_location("m0003", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# The shapes the four producers wrote before 0003 (copied from the code at 495f35a).
LEGACY = [
    ("verification", "LOW_MATCH", {
        "session_id": "s9", "reason": "LOW_MATCH", "underlying_reason": None, "retry_count": 0,
        "scores": {"match": 0.43, "threshold": 0.5, "best_frames": [{"index": 2, "t_ms": 250, "quality": 0.8}],
                   "one_to_n": []},
        "challenges": [{"name": "blink", "passed": True, "window_ms": [1500, 4500], "frames": 22}],
        "best_frame_shas": [SHA_A], "one_to_n": [{"pensioner_id": 4, "template_id": 1, "score": 0.2}],
        "model_key": "m1"}),
    ("enrollment", "DUPLICATE_FACE", {
        "run_id": 5, "row_no": 3, "photo_name": "a.jpg", "photo_sha256": SHA_B, "detail": "matches #2",
        "quality": {"sharpness": 80.0}, "duplicate_of_pensioner_id": 2, "similarity": 0.91}),
    ("enrollment", "NO_FACE", {
        "run_id": 5, "row_no": 4, "photo_name": "b.jpg", "photo_sha256": None, "detail": "no face",
        "quality": {}, "duplicate_of_pensioner_id": None, "similarity": None}),
    ("name_mismatch", "NAME_MISMATCH", {
        "record": {"department": "cremation", "import_id": 1, "row_no": 5, "id_number": "x", "name": "周明",
                   "kind": "death", "event_date": "2026-02-14", "end_date": None, "detail": ""},
        "pensioner": {"id": 1, "id_number": "x", "name": "周敏"}, "note": "differs"}),
    ("data_conflict", "ALIVE_AFTER_DEATH", {
        "conflict": "alive evidence dated after a recorded death",
        "death": {"death_date": "2026-01-10", "department": "police", "import_id": 2, "row_no": 3},
        "alive_evidence": {"department": "medical", "import_id": 3, "row_no": 9, "id_number": "x", "name": "周敏",
                           "evidence_date": "2026-03-02", "detail": "住院结算"}}),
    ("data_conflict", "DEATH_AFTER_CONFIRMATION", {
        "conflict": "death record for a pensioner confirmed alive after the date of death",
        "death": {"department": "cremation", "import_id": 4, "row_no": 1, "id_number": "x", "name": "周敏",
                  "death_date": "2026-02-14", "detail": ""},
        "confirmation": {"id": 17, "method": "face_self_service", "evidence_date": "2026-03-01", "source": "vs"}}),
    ("tip_off", "TIP_OFF", {"description": "已去世两年", "name": "孙某某", "id_number": None, "contact": "138",
                            "client_addr": "127.0.0.1"}),
]


@pytest.mark.parametrize(("kind", "reason", "legacy"), LEGACY, ids=lambda x: x if isinstance(x, str) else "")
def test_given_legacy_payload_when_migration_converts_then_it_loads_as_the_typed_payload(
    kind: str, reason: str, legacy: dict[str, object]
) -> None:
    m = _migration()
    new = m.convert(kind, reason, legacy)
    got = load_payload(new)
    assert not isinstance(got, UnreadablePayload), got
    assert str(kind_of(got)) == kind
    if isinstance(got, VerificationReview):  # the keys the old reader missed are now read
        assert got.match == 0.43 and [f.sha256 for f in got.best_frames] == [SHA_A]
        assert got.best_frames[0].t_ms == 250 and got.one_to_n[0].pensioner_id == 4
    if isinstance(got, DuplicateFace):
        assert (got.duplicate_of_pensioner_id, got.photo_sha256) == (2, SHA_B)
    if isinstance(got, NameMismatch):
        assert (got.record.name, got.pensioner_name, got.record.event_date) == ("周明", "周敏", date(2026, 2, 14))
    if isinstance(got, AliveAfterDeath):
        assert got.alive_evidence.event_date == date(2026, 3, 2) and got.death.death_date == date(2026, 1, 10)
    if isinstance(got, DeathAfterConfirmation):
        assert got.death.event_date == date(2026, 2, 14) and got.confirmation.confirmation_id == 17
    back = m._legacy(new)  # the downgrade restores the keys the old code read
    assert back is not None and set(legacy) <= set(back) | {"conflict"}


def test_given_payload_in_no_known_shape_when_migrating_then_left_alone() -> None:
    m = _migration()
    assert m.convert("verification", "LOW_MATCH", {"score": 0.4}) is None
    assert m.convert("something_new", "X", {"a": 1}) is None
