"""Fused 1:N on plain vectors: candidates from either engine's nearest, exact scores fetched for
the other engine, primary-only fallback for pensioners without a second-model template, and the
verification rule that judges other pensioners by their fused scores."""

from __future__ import annotations

import numpy as np

from lifecert.domain.errors import ErrorCode
from lifecert.domain.fusion import FusionModel
from lifecert.services.fusion import FusionSpec, fused_others
from lifecert.services.verification import rules
from lifecert.storage.vector_index import OverlayIndex, VectorIndex

SPEC = FusionSpec("a_b", "b", "B", "A", "flip", FusionModel(
    "a_b", ("A", "B"), bias=-10.0, weights=(5.0, 5.0), thresholds={"duplicate": 2.0, "verify": 1.0}))


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def _index(vectors: list[np.ndarray], owners: list[int]) -> OverlayIndex:
    return OverlayIndex(VectorIndex.build(np.stack(vectors), np.arange(len(owners), dtype=np.int64) + 100,
                                          np.asarray(owners, dtype=np.int64)))


def test_given_a_candidate_near_in_one_engine_only_when_fused_then_its_other_score_is_exact() -> None:
    rng = np.random.default_rng(0)
    probe_a, probe_b = _unit(rng.normal(size=8)), _unit(rng.normal(size=16))
    a_vecs = [_unit(probe_a + 0.1 * rng.normal(size=8))] + [_unit(rng.normal(size=8)) for _ in range(30)]
    b_vecs = [_unit(rng.normal(size=16)) for _ in range(31)]
    owners = list(range(1, 32))
    a_idx, b_idx = _index(a_vecs, owners), _index(b_vecs, owners)

    found = fused_others(SPEC, a_idx, b_idx, probe_a, probe_b, owner=None, threshold="duplicate",
                         primary_threshold=0.9, k=3)

    one = next(m for m in found if m.owner == 1)
    exact = SPEC.fused(float(a_vecs[0] @ probe_a), float(b_vecs[0] @ probe_b))
    assert one.fused and one.threshold == 2.0
    assert abs(one.score - exact) < 1e-4, "pensioner 1 is far in engine B: its B score is read back, not guessed"
    assert all(m.owner != 1 or m is one for m in found)


def test_given_a_pensioner_without_a_second_template_when_fused_then_primary_score_and_threshold() -> None:
    rng = np.random.default_rng(1)
    probe_a, probe_b = _unit(rng.normal(size=8)), _unit(rng.normal(size=16))
    a_idx = _index([probe_a, _unit(rng.normal(size=8))], [7, 8])
    b_idx = _index([_unit(rng.normal(size=16))], [8])  # 7 was enrolled before the second engine

    found = {m.owner: m for m in fused_others(SPEC, a_idx, b_idx, probe_a, probe_b, owner=None,
                                               threshold="duplicate", primary_threshold=0.9)}

    assert not found[7].fused and found[7].threshold == 0.9 and abs(found[7].score - 1.0) < 1e-5
    assert found[8].fused and found[8].threshold == 2.0
    assert list(found) == [7, 8], "best first by margin over its own threshold"


def test_given_the_owner_and_this_runs_faces_when_fused_then_owner_left_out_and_new_faces_found() -> None:
    rng = np.random.default_rng(2)
    probe_a, probe_b = _unit(rng.normal(size=8)), _unit(rng.normal(size=16))
    a_idx = _index([probe_a], [5])
    b_idx = _index([probe_b], [5])
    a_idx.add(probe_a, -3)  # row 3 of this run, not stored yet
    b_idx.add(probe_b, -3)

    found = fused_others(SPEC, a_idx, b_idx, probe_a, probe_b, owner=5, threshold="duplicate", primary_threshold=0.9)

    assert [m.owner for m in found] == [-3]
    assert found[0].fused and abs(found[0].score - SPEC.fused(1.0, 1.0)) < 1e-4


def _evidence(**kw: object) -> rules.Evidence:
    return rules.Evidence(threshold=0.9, own_match=0.95, one_person_min=1.0, **kw)  # type: ignore[arg-type]


def test_given_fusion_when_another_pensioner_fuses_higher_than_own_then_review_matches_other() -> None:
    fz = {"score": 3.0, "threshold": 2.7, "other_fused": [3.5], "other_primary": []}
    hits = [{"score": 0.80}]  # the primary engine alone would not have flagged it
    v = rules.decide(_evidence(**rules.match_evidence(fz, hits)))
    assert (v.decision, v.reason) == ("REVIEW", ErrorCode.MATCHES_OTHER_PENSIONER)


def test_given_fusion_when_a_primary_only_look_alike_is_fused_lower_then_confirmed() -> None:
    fz = {"score": 3.0, "threshold": 2.7, "other_fused": [1.2], "other_primary": []}
    hits = [{"score": 0.97}]  # primary alone: above own 0.95 and the threshold → would be REVIEW
    assert rules.decide(_evidence(**rules.match_evidence(None, hits))).reason == ErrorCode.MATCHES_OTHER_PENSIONER
    assert rules.decide(_evidence(**rules.match_evidence(fz, hits))).decision == "CONFIRMED"


def test_given_fusion_when_another_without_second_template_matches_then_judged_by_primary() -> None:
    fz = {"score": 3.0, "threshold": 2.7, "other_fused": [], "other_primary": [0.97]}
    v = rules.decide(_evidence(**rules.match_evidence(fz, [])))
    assert v.reason == ErrorCode.MATCHES_OTHER_PENSIONER


def test_given_an_ivf_index_when_scores_are_read_back_then_they_equal_the_exact_cosines() -> None:
    rng = np.random.default_rng(3)
    vecs = np.stack([_unit(rng.normal(size=16)) for _ in range(400)])
    owners = np.arange(400, dtype=np.int64) // 2  # two templates per pensioner
    idx = VectorIndex.build(vecs, np.arange(400, dtype=np.int64), owners, exact_max=100)
    assert "IVF" in type(idx.index).__name__, "past exact_max the index is approximate"
    q = _unit(rng.normal(size=16))

    got = idx.scores_of(q, {3, 77, 199, 999})

    assert set(got) == {3, 77, 199}, "a pensioner without templates here is absent"
    for pid, s in got.items():
        assert abs(s - float(max(vecs[2 * pid] @ q, vecs[2 * pid + 1] @ q))) < 1e-5
