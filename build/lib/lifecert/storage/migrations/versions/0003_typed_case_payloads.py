"""review_case.payload: untyped producer dicts → typed, versioned payloads (version 1)

Revision ID: 0003_typed_case_payloads
Revises: 0002_template_profile
Create Date: 2026-11-30 11:00:00

Before this revision each service wrote its own dict shape and the case page guessed among key
names (and missed verification's ``scores.match`` / ``best_frame_shas``). From here on the payload
is ``{"type": ..., "v": 1, ...}`` as defined in ``lifecert/domain/cases.py``. The conversion is
written out here (a migration must not change when the application code does). Rows already typed
are left alone; a row in no shape any producer wrote is left as it was (the case page then shows
it as unreadable rather than guessing). The downgrade writes the old shapes back.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003_typed_case_payloads"
down_revision = "0002_template_profile"
branch_labels = None
depends_on = None

_cases = sa.table(
    "review_case",
    sa.column("id", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("reason", sa.String),
    sa.column("payload", sa.JSON),
)


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _int(v: Any) -> int | None:
    return int(v) if isinstance(v, int) and not isinstance(v, bool) else None


def _sha(v: Any) -> str | None:
    return v if isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v) else None


def _str(v: Any) -> str | None:
    return str(v) if v is not None else None


def _dept_record(r: dict[str, Any], record_kind: str | None, date_key: str) -> dict[str, Any]:
    return {
        "department": str(r.get("department") or ""),
        "import_id": _int(r.get("import_id")),
        "row_no": _int(r.get("row_no")),
        "id_number": _str(r.get("id_number")),
        "name": _str(r.get("name")),
        "record_kind": record_kind or _str(r.get("kind")),
        "event_date": r.get(date_key) or r.get("event_date"),
        "end_date": r.get("end_date"),
        "detail": str(r.get("detail") or ""),
    }


def _verification(p: dict[str, Any], reason: str) -> dict[str, Any] | None:
    if "session_id" not in p:
        return None
    scores: dict[str, Any] = p["scores"] if isinstance(p.get("scores"), dict) else {}
    meta = [f for f in scores.get("best_frames", []) if isinstance(f, dict)]
    frames = []
    for i, sha in enumerate(s for s in (_sha(x) for x in p.get("best_frame_shas") or []) if s):
        m = meta[i] if i < len(meta) else {}
        frames.append({"sha256": sha, "index": _int(m.get("index")), "t_ms": _int(m.get("t_ms")),
                       "quality": _num(m.get("quality")), "track_break": bool(m.get("track_break", False))})
    challenges = []
    for c in p.get("challenges") or []:
        if isinstance(c, dict):
            challenges.append({
                "name": str(c.get("name", "?")), "passed": c.get("passed") if isinstance(c.get("passed"), bool)
                else None, "note": str(c.get("note") or ""), "peak_value": _num(c.get("peak_value")),
                "baseline": _num(c.get("baseline")), "threshold": _num(c.get("threshold")),
                "peak_t_ms": _int(c.get("peak_t_ms")), "frames": _int(c.get("frames")),
            })
    hits = [{"pensioner_id": int(h["pensioner_id"]), "score": float(h.get("score") or 0.0),
             "template_id": _int(h.get("template_id"))}
            for h in p.get("one_to_n") or [] if isinstance(h, dict) and _int(h.get("pensioner_id")) is not None]
    pad: dict[str, Any] = scores["pad"] if isinstance(scores.get("pad"), dict) else {}
    return {
        "type": "verification", "v": 1, "session_id": str(p["session_id"]), "reason": str(p.get("reason") or reason),
        "underlying_reason": _str(p.get("underlying_reason")), "retry_count": _int(p.get("retry_count")) or 0,
        "match": _num(scores.get("match")), "threshold": _num(scores.get("threshold")),
        "model_key": _str(p.get("model_key")), "best_frames": frames, "challenges": challenges, "one_to_n": hits,
        "one_person_min_similarity": _num(scores.get("one_person_min_similarity")),
        "liveness_issue": _str(scores.get("liveness_issue")),
        "pad_score": _num(pad.get("score")), "pad_threshold": _num(pad.get("threshold")), "analysis": scores,
    }


def _enrollment(p: dict[str, Any], reason: str) -> dict[str, Any] | None:
    if "run_id" not in p and "photo_sha256" not in p:
        return None
    base: dict[str, Any] = {"v": 1, "run_id": _int(p.get("run_id")), "row_no": _int(p.get("row_no")),
            "photo_name": _str(p.get("photo_name")), "photo_sha256": _sha(p.get("photo_sha256")),
            "detail": str(p.get("detail") or ""),
            "quality": p.get("quality") if isinstance(p.get("quality"), dict) else {}}
    dup = _int(p.get("duplicate_of_pensioner_id"))
    if reason == "DUPLICATE_FACE" and dup is not None:
        return {"type": "duplicate_face", **base, "duplicate_of_pensioner_id": dup,
                "similarity": _num(p.get("similarity")) or 0.0, "threshold": None}
    return {"type": "enrollment_reject", **base}


def _name_mismatch(p: dict[str, Any]) -> dict[str, Any] | None:
    rec, pen = p.get("record"), p.get("pensioner")
    if not isinstance(rec, dict) or not isinstance(pen, dict):
        return None
    return {"type": "name_mismatch", "v": 1, "record": _dept_record(rec, None, "event_date"),
            "pensioner_name": str(pen.get("name") or ""), "note": str(p.get("note") or "")}


def _data_conflict(p: dict[str, Any], reason: str) -> dict[str, Any] | None:
    death = p.get("death")
    if not isinstance(death, dict):
        return None
    if reason == "ALIVE_AFTER_DEATH" and isinstance(p.get("alive_evidence"), dict):
        return {"type": "alive_after_death", "v": 1,
                "death": {"death_date": death.get("death_date"), "department": _str(death.get("department")),
                          "import_id": _int(death.get("import_id")), "row_no": _int(death.get("row_no")),
                          "note": str(death.get("note") or "")},
                "alive_evidence": _dept_record(p["alive_evidence"], "alive_evidence", "evidence_date")}
    conf = p.get("confirmation")
    if reason == "DEATH_AFTER_CONFIRMATION" and isinstance(conf, dict) and conf.get("evidence_date"):
        return {"type": "death_after_confirmation", "v": 1, "death": _dept_record(death, "death", "death_date"),
                "confirmation": {"confirmation_id": _int(conf.get("id")), "method": str(conf.get("method") or ""),
                                 "evidence_date": conf["evidence_date"], "source": str(conf.get("source") or "")}}
    return None


def _tip_off(p: dict[str, Any]) -> dict[str, Any] | None:
    if not isinstance(p.get("description"), str):
        return None
    return {"type": "tip_off", "v": 1, "description": p["description"], "name": _str(p.get("name")),
            "id_number": _str(p.get("id_number")), "contact": _str(p.get("contact")),
            "client_addr": str(p.get("client_addr") or "")}


def convert(kind: str, reason: str, p: dict[str, Any]) -> dict[str, Any] | None:
    """The typed version-1 payload for a legacy payload, or None when it is in no known shape."""
    if kind == "verification":
        return _verification(p, reason)
    if kind == "enrollment":
        return _enrollment(p, reason)
    if kind == "name_mismatch":
        return _name_mismatch(p)
    if kind == "data_conflict":
        return _data_conflict(p, reason)
    if kind == "tip_off":
        return _tip_off(p)
    return None


def _legacy(p: dict[str, Any]) -> dict[str, Any] | None:
    """The shape the producers wrote before this revision (for the downgrade)."""
    t = p.get("type")
    rest = {k: v for k, v in p.items() if k not in ("type", "v")}
    if t == "verification":
        return {"session_id": p.get("session_id"), "reason": p.get("reason"),
                "underlying_reason": p.get("underlying_reason"), "retry_count": p.get("retry_count"),
                "scores": p.get("analysis") or {"match": p.get("match"), "threshold": p.get("threshold")},
                "challenges": p.get("challenges") or [],
                "best_frame_shas": [f.get("sha256") for f in p.get("best_frames") or []],
                "one_to_n": p.get("one_to_n") or [], "model_key": p.get("model_key")}
    if t in ("enrollment_reject", "duplicate_face", "id_collision"):
        rest.setdefault("duplicate_of_pensioner_id", None)
        rest.setdefault("similarity", None)
        return rest
    if t == "name_mismatch":
        rec = dict(p.get("record") or {})
        rec["kind"] = rec.pop("record_kind", None)
        return {"record": rec, "pensioner": {"name": p.get("pensioner_name")}, "note": p.get("note")}
    if t == "alive_after_death":
        ev = dict(p.get("alive_evidence") or {})
        ev["evidence_date"] = ev.pop("event_date", None)
        return {"conflict": "alive evidence dated after a recorded death", "death": p.get("death"),
                "alive_evidence": ev}
    if t == "death_after_confirmation":
        d = dict(p.get("death") or {})
        d["death_date"] = d.pop("event_date", None)
        c = dict(p.get("confirmation") or {})
        c["id"] = c.pop("confirmation_id", None)
        return {"conflict": "death record for a pensioner confirmed alive after the date of death", "death": d,
                "confirmation": c}
    if t == "tip_off":
        return rest
    return None


def _rewrite(fn: Any) -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.select(_cases.c.id, _cases.c.kind, _cases.c.reason, _cases.c.payload)).all()
    for cid, kind, reason, payload in rows:
        new = fn(kind, reason, payload if isinstance(payload, dict) else {})
        if new is not None:
            conn.execute(_cases.update().where(_cases.c.id == cid).values(payload=new))


def upgrade() -> None:
    _rewrite(lambda kind, reason, p: None if "type" in p and "v" in p else convert(kind, reason, p))


def downgrade() -> None:
    _rewrite(lambda kind, reason, p: _legacy(p) if "type" in p and "v" in p else None)
