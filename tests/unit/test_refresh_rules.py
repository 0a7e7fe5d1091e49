"""Template refresh rules on plain data (lifecert/domain/refresh.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lifecert.domain.refresh import (
    LIVENESS,
    LOW_MARGIN,
    NOT_CONFIRMED,
    PAD,
    REVIEW_NOT_APPROVED,
    RefreshEvidence,
    refresh_refusal,
    refresh_to_retire,
)

OK = RefreshEvidence(decision="CONFIRMED", went_to_review=False, caseworker_approved=False, match=0.96,
                     threshold=0.93, challenges_passed=True, pad_attack=False)


def _with(**kw: object) -> RefreshEvidence:
    return RefreshEvidence(**{**{f: getattr(OK, f) for f in OK.__dataclass_fields__}, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(("change", "reason"), [
    ({}, None),
    ({"match": 0.94}, LOW_MARGIN),
    ({"decision": "RETRY"}, NOT_CONFIRMED),
    ({"challenges_passed": False}, LIVENESS),
    ({"liveness_issue": "flat_photo"}, LIVENESS),
    ({"pad_attack": True}, PAD),
    ({"pad_attack": None}, None),
    ({"went_to_review": True, "decision": "REVIEW"}, REVIEW_NOT_APPROVED),
    ({"went_to_review": True, "decision": "REVIEW", "caseworker_approved": True, "match": 0.5}, None),
    ({"went_to_review": True, "caseworker_approved": True, "pad_attack": True}, PAD),
])
def test_given_session_evidence_when_judged_then_refresh_allowed_only_as_the_rules_say(
    change: dict[str, object], reason: str | None
) -> None:
    assert refresh_refusal(_with(**change), min_margin=0.02) == reason


def test_given_refresh_templates_when_one_more_is_added_then_the_oldest_go_first() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    existing = [(7, t0 + timedelta(days=3)), (3, t0 + timedelta(days=1)), (5, t0 + timedelta(days=2))]

    assert refresh_to_retire(existing, 3) == [3]
    assert refresh_to_retire(existing, 2) == [3, 5]
    assert refresh_to_retire(existing, 1) == [3, 5, 7]
    assert refresh_to_retire(existing[:1], 3) == []


def test_given_refresh_template_among_matches_when_threshold_chosen_then_verify_refresh_applies() -> None:
    from lifecert.engine.manifest import ModelInfo, Threshold
    from lifecert.services.refresh import verify_threshold

    both = ModelInfo("dlib", "m", "1", 128, (150, 150), {"verify": Threshold(0.93), "verify_refresh": Threshold(0.94)})
    plain = ModelInfo("dlib", "m", "1", 128, (150, 150), {"verify": Threshold(0.93)})

    assert verify_threshold(both, ["id_photo"]) == 0.93
    assert verify_threshold(both, ["id_photo", "refresh"]) == 0.94
    assert verify_threshold(plain, ["id_photo", "refresh"]) == 0.93
