"""Cut-out prints (ISO/IEC 30107 "cut photo" / paper mask) against production's paced service.

    LIFECERT_SHARED_FACES=/work/shared/faces LIFECERT_SHARED_MODELS=/work/shared/models \\
        nice -n 10 .venv/bin/python benchmarks/cutout.py --per-variant 30 --budget-min 40
    .venv/bin/python benchmarks/cutout.py --rescore RESULTS_JSON     # kept sessions: today's flat + jaw tests
    .venv/bin/python benchmarks/cutout.py --refinalize RESULTS_JSON  # kept sessions decided again by _finalize

Every drawn challenge set holds open_mouth and a head turn or nod (lifecert.domain.challenges.draw), so a plain
print fails: paper cannot open its mouth. A CUT-OUT print can: the pensioner's printed photo with the mouth (variant:
mouth and eyes) cut out, held over the attacker's face, his own mouth (eyes) behind the holes; he opens his mouth
when asked (blinks when asked, through eye holes) and turns or tilts the paper to act a turn or nod. What still
stands in the way: the flat-photo test (the printed nose stays in the paper's plane), PAD (MiniFASNet on the full
frames) and the 1:1 match (the print is of the pensioner).

How (attack: benchmarks.attacks.CutoutPrint; sessions: benchmarks.verify_latency.run_sessions):

* victim = one LFW person per session number (people with two photos without LFW's black alignment fill, drawn
  once with SEED): her FIRST photo is enrolled as her template (the ID photo), her SECOND is printed (a photo the
  attacker found): the 1:1 match is against another photo of the same person, as it would be;
* attacker = talking_head_a (REAL video, ~8 fps): his calm frames behind the holes while nothing is asked, his
  real mouth opening (the clip's first wide opening, 7 frames) on open_mouth, his real blink (5 frames) on blink
  in the eye-hole variants (through a mouth-only print the printed eyes cannot blink: nothing is acted);
* a turn or nod = the paper turned as a PLANE by a peak drawn in TURN_DEG (15-35 degrees) about an axis behind it,
  out / hold / back in OUT_MS / HOLD_MS / OUT_MS (slow_move.pose_curve: a person's pace), plus hand tremor;
* each session's paper, room, camera (attacks.Camera.random) and motion are drawn from the session number, the
  SAME in every variant (paired); variants: mouth or mouth + eyes, held close (the print larger than the view, its
  edges out of the picture, face 0.52-0.66 of the width) or with its four edges in view (face 0.42-0.52); an
  attacker who turns the paper farther (35-55 degrees, ``mouth_close_wide``: a plane turned 15-35 degrees barely
  moves the nose against the outline, see the README reading); a photo-quality print (``*_photo``: no contrast
  loss, no grain; what PAD keys on in attacks.print_look's print is then gone); the ADAPTIVE attacker who knows
  the jaw test (lifecert/engine/jaw.py: the chin must drop when the lips part; session 14) and cuts so that his own
  chin shows: ``lower_face`` (everything below the printed nose, past the printed chin) and ``mouth_chin`` (the
  mouth hole plus a slot over the printed chin), his lower face lined up with the print's (attacks.CUT_LOWER_*,
  CUT_CHIN_*, LOWER_ANCHOR_68), on a print-look or (``*_photo``) a photo-quality print;
* production's service in-process (VerificationService: paced capture, frame engine, steps, passive liveness,
  MiniFASNet PAD pack installed from ../shared/models/minifasnet, rules.decide), on a virtual clock; the phone is
  tests.paced_client.Phone (the page's capture rates, chunks, prompt delays; acts each revealed challenge
  REACTION_MS after its prompt, once; no hint is acted on); the challenges drawn by production's draw, fresh per
  session (benchmarks/draw_hook.py), the same draw for session k in every variant (the service's rng seeded by k);
* genuine control through the same harness: talking_head_a itself (verify_latency.load_clip: its real blink and
  mouth opening, turns and nods SYNTHETIC: attacks.turn_head's cylinder warp of its calm frames), enrolled with its
  frame 100, n sessions with production's draw.

Per session the stored record gives each defence's verdict apart (the final decision is computed with all the
evidence even when a challenge was missed): *active* = every revealed challenge step seen (settle included);
*pad* = the session's PAD evidence not spoof; *flat* = steps.passive_liveness's flat_photo not set (homography
residual or nose parallax) and not still; *match* = 1:1 score over its threshold; *jaw* = the jaw test's still_chin
not set (paced.open_mouth_jaw, as _finalize runs it; abstaining or no open_mouth step lets through); *all* =
CONFIRMED; *all_no_jaw* = rules.decide on the same evidence with still_chin False. APCER of a defence = attack
sessions it lets through; 95 % Clopper-Pearson intervals.

Synthetic: the print (lfw photo on a larger picture whose surroundings are the photo's border stretched and
blurred, printed by attacks.print_look, flat, no curl, no glare), the holes' sizes, the attacker lying in the
paper's plane (no parallax between the paper and his face behind it), the room, the camera, the tremor, the turn
angles and pace. Real: the victims' photos, the attacker's face, mouth opening and blink, production's code.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import attacks as atk  # noqa: E402
from benchmarks import verify_latency as vl  # noqa: E402
from benchmarks._common import machine, now, publish  # noqa: E402
from tests.paced_client import Clip, ClipPicks, VirtualTime  # noqa: E402

SEED = 13
REACTION_MS = 800
TURN_DEG = (15.0, 35.0)  # how far the attacker turns / tilts the paper (the brief's range; an assumption)
TURN_WIDE_DEG = (35.0, 55.0)
OUT_MS = (500, 900)  # turning out and back
HOLD_MS = (300, 700)
NEUTRAL_FRAMES = 24  # the idle loop (played forth and back)
MOUTH_SPAN = (3, 4)  # frames before / after the clip's widest opening acted on open_mouth
BLINK_SPAN = (2, 3)


@dataclass(frozen=True)
class Variant:
    name: str
    eyes: bool = False
    close: bool = True
    genuine: bool = False
    what: str = ""
    turn_deg: tuple[float, float] = TURN_DEG
    look: bool = True  # attacks.print_look (False: a photo-quality print)
    cut: str = "mouth"  # attacks.CutoutPrint's cut: "lower_face" / "mouth_chin" = the attacker who knows the jaw test


VARIANTS = {
    v.name: v
    for v in (
        Variant("mouth_close", False, True, what="mouth cut out, held close (paper edges out of view)"),
        Variant("mouth_edge", False, False, what="mouth cut out, paper edges in view"),
        Variant("eyes_close", True, True, what="mouth and eyes cut out, held close"),
        Variant("eyes_edge", True, False, what="mouth and eyes cut out, paper edges in view"),
        Variant("mouth_close_wide", False, True, what="mouth cut out, held close, the paper turned 35-55 degrees (an "
                "attacker who found 15-35 too little for a turn)", turn_deg=TURN_WIDE_DEG),
        Variant("mouth_close_photo", False, True, what="mouth cut out, held close, a PHOTO-QUALITY print (no "
                "contrast loss or grain)", look=False),
        Variant("eyes_close_photo", True, True, what="mouth and eyes cut out, held close, a photo-quality print",
                look=False),
        Variant("mouth_close_wide_photo", False, True, what="mouth cut out, held close, a photo-quality print turned "
                "35-55 degrees (the naive twin of the *_wide_photo adaptive rows)", turn_deg=TURN_WIDE_DEG, look=False),
        Variant("lower_face", False, True, what="ADAPTIVE (knows the jaw test): everything below the printed nose "
                "cut out, past the printed chin, his own mouth, chin and jaw line behind it, held close",
                cut="lower_face"),
        Variant("mouth_chin", False, True, what="ADAPTIVE: the mouth hole plus a slot over the printed chin, his own "
                "chin behind it, held close", cut="mouth_chin"),
        Variant("lower_face_photo", False, True, what="ADAPTIVE: lower_face on a photo-quality print", look=False,
                cut="lower_face"),
        Variant("mouth_chin_photo", False, True, what="ADAPTIVE: mouth_chin on a photo-quality print", look=False,
                cut="mouth_chin"),
        Variant("lower_face_wide_photo", False, True, what="ADAPTIVE: lower_face on a photo-quality print, the paper "
                "turned 35-55 degrees", look=False, cut="lower_face", turn_deg=TURN_WIDE_DEG),
        Variant("mouth_chin_wide_photo", False, True, what="ADAPTIVE: mouth_chin on a photo-quality print, the paper "
                "turned 35-55 degrees", look=False, cut="mouth_chin", turn_deg=TURN_WIDE_DEG),
        Variant("genuine", genuine=True, what="GENUINE: talking_head_a acting the draw (turns/nods: cylinder warp)"),
        Variant("genuine_3d", genuine=True, what="GENUINE: talking_head_a acting the draw, turns/nods by the "
                "depth-aware attacks.turn_head_3d (GENUINE_3D_DEG)"),
    )
}


def clopper_pearson(k: int, n: int) -> tuple[float, float]:
    """Exact 95 % interval of a rate k/n (percent)."""
    from scipy.stats import beta

    if n == 0:
        return (0.0, 100.0)
    lo = 0.0 if k == 0 else float(beta.ppf(0.025, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(0.975, k + 1, n - k))
    return (round(100 * lo, 1), round(100 * hi, 1))


def rate(k: int, n: int) -> dict[str, Any]:
    lo, hi = clopper_pearson(k, n)
    return {"k": k, "n": n, "pct": round(100 * k / n, 1) if n else None, "ci95": [lo, hi]}


def cell(r: dict[str, Any]) -> str:
    return f"{r['k']}/{r['n']} = {r['pct']:.0f} % [{r['ci95'][0]:.0f}–{r['ci95'][1]:.0f}]" if r["n"] else "–"


# -- victims and the attacker ------------------------------------------------------------------------


PHOTO_CROP = 0.16  # each side of an LFW photo cut off before printing: its rotated black alignment fill lies there


def black_fill(img: np.ndarray) -> bool:
    """A dark corner (LFW deep-funneled's rotated black border reaching into the crop): not a photo to print."""
    h, w = img.shape[:2]
    c = 8
    corners = [img[:c, :c], img[:c, w - c:], img[h - c:, :c], img[h - c:, w - c:]]
    return any(float(x.mean()) < 20 for x in corners)


def pick_victims(engine: Any, n: int) -> list[dict[str, Any]]:
    """``n`` LFW people with two photos, in an order drawn with SEED: the first photo is enrolled as it is; the second,
    cut to its middle (PHOTO_CROP off each side: LFW's alignment fill), is printed; kept when that crop has no dark
    corner and the frame engine finds one face in both (its 68 landmarks on the printed one)."""
    from lifecert.engine.image import read_image_file

    people = [p for p in sorted((vl.FACES / "lfw" / "images").iterdir()) if len(list(p.iterdir())) >= 2]
    order = np.random.default_rng(SEED).permutation(len(people))
    out: list[dict[str, Any]] = []
    for i in order:
        files = sorted(people[i].iterdir())[:2]
        enrolled, photo = (read_image_file(f) for f in files)
        h, w = photo.shape[:2]
        my, mx = round(PHOTO_CROP * h), round(PHOTO_CROP * w)
        printed = np.ascontiguousarray(photo[my : h - my, mx : w - mx])
        if black_fill(printed):
            continue
        faces = [engine.detect(x) for x in (enrolled, printed)]
        if any(len(f) != 1 or f[0].landmarks68 is None for f in faces):
            continue
        out.append({"name": people[i].name, "enrolled": files[0].name, "printed": files[1].name,
                    "enrolled_img": enrolled, "printed_img": printed,
                    "printed_lm": np.asarray(faces[1][0].landmarks68, np.float64)})
        if len(out) == n:
            break
    if len(out) < n:
        raise SystemExit(f"only {len(out)} victims found, {n} asked")
    return out


def attacker_picks(engine: Any) -> ClipPicks:
    from tests.integration.verification_support import read_video
    from tests.paced_client import clip_picks

    return clip_picks(engine, read_video(vl.VIDEO))


GENUINE_3D_DEG = {"turn_left": 30.0, "turn_right": 30.0, "nod": 20.0}  # a person's turn / nod (assumed)


def genuine_clip_3d(att: ClipPicks, video_frame_100: np.ndarray) -> Clip:
    """talking_head_a as tests.paced_client.talking_head_clip shows it (calm run forth and back, its real blink and
    mouth opening, JPEG 85), its turns and nods its calm frames turned by the depth-aware attacks.turn_head_3d to
    GENUINE_3D_DEG along verify_latency.MOVE_MS (SYNTHETIC): the genuine control for a flat test that the 2D
    cylinder warp (verify_latency.with_head_moves) no longer passes."""
    from benchmarks.slow_move import pose_curve
    from lifecert.engine.image import encode_jpeg

    jpeg = [encode_jpeg(f, 85) for f in att.frames]
    calm = att.calm + att.calm[-2:0:-1]
    curve = pose_curve(*vl.MOVE_MS)
    actions = {"blink": [jpeg[i] for i in range(att.blink - 2, att.blink + 3)],
               "open_mouth": [jpeg[i] for i in range(att.mouth - 2, min(len(jpeg), att.mouth + 3))]}
    for c, peak in GENUINE_3D_DEG.items():
        sign = -1.0 if c == "turn_right" else 1.0
        actions[c] = [encode_jpeg(atk.turn_head_3d(att.frames[calm[i % len(calm)]], att.landmarks[calm[i % len(calm)]],
                                                   yaw_deg=0.0 if c == "nod" else sign * peak * f,
                                                   pitch_deg=peak * f if c == "nod" else 0.0), 85)
                      for i, f in enumerate(curve)]
    return Clip([jpeg[i] for i in calm], actions, template=video_frame_100)


def cutout_clip(v: Variant, k: int, victim: dict[str, Any], att: ClipPicks) -> Clip:
    """Session ``k``'s cut-out print of ``victim`` over the attacker's footage as a phone clip: an idle loop and one
    acted run per challenge the attack can act (see the module docstring)."""
    from benchmarks.slow_move import pose_curve
    from lifecert.engine.image import encode_jpeg

    ref = att.calm[0]
    paper = atk.CutoutPrint(np.random.default_rng([SEED, k, 1]), victim["printed_img"], victim["printed_lm"],
                            att.landmarks[ref], eyes=v.eyes, close=v.close, look=v.look, cut=v.cut)
    cam = atk.Camera.random(np.random.default_rng([SEED, k, 2]))
    motion = np.random.default_rng([SEED, k, 3])
    calm = att.calm + att.calm[-2:0:-1]
    start = int(motion.integers(0, len(calm)))
    n = 0

    def shoot(src: int, yaw: float = 0.0, pitch: float = 0.0) -> bytes:
        lm = att.landmarks[src]
        if np.isnan(lm).any():
            lm = att.landmarks[ref]
        return encode_jpeg(cam.shoot(paper.render(att.frames[src], lm, yaw, pitch)), 95)

    def idle() -> int:
        nonlocal n
        n += 1
        return calm[(start + n) % len(calm)]

    neutral = [shoot(idle()) for _ in range(NEUTRAL_FRAMES)]
    actions: dict[str, list[bytes]] = {}
    for c in ("turn_left", "turn_right", "nod"):
        peak = float(motion.uniform(*v.turn_deg))
        out = int(motion.integers(OUT_MS[0], OUT_MS[1] + 1))
        curve = pose_curve(out, int(motion.integers(HOLD_MS[0], HOLD_MS[1] + 1)),
                           int(motion.integers(OUT_MS[0], OUT_MS[1] + 1)))
        sign = -1.0 if c == "turn_right" else 1.0
        actions[c] = [shoot(idle(), yaw=sign * peak * f if c != "nod" else 0.0,
                            pitch=peak * f if c == "nod" else 0.0) for f in curve]
    last = len(att.frames) - 1
    m, b = att.mouth, att.blink
    actions["open_mouth"] = [shoot(i) for i in range(max(0, m - MOUTH_SPAN[0]), min(last, m + MOUTH_SPAN[1]) + 1)]
    if v.eyes:
        actions["blink"] = [shoot(i) for i in range(max(0, b - BLINK_SPAN[0]), min(last, b + BLINK_SPAN[1]) + 1)]
    return Clip(neutral + neutral[-2:0:-1], actions)


# -- the service, one session at a time ---------------------------------------------------------------


def make_service(data_dir: Path) -> tuple[Any, Any, VirtualTime]:
    from benchmarks.draw_hook import install
    from lifecert.config import RefreshSettings, Settings, VerificationSettings
    from lifecert.engine.pad import load_pad
    from lifecert.services.context import AppContext
    from lifecert.services.verification import VerificationService

    settings = Settings(
        data_dir=data_dir,
        fixed_challenges=None,
        # every victim has several sessions (one per variant): no rate limit, no escalation of RETRYs to REVIEW,
        # no template refresh from a CONFIRMED attack (it would change the later sessions' 1:1 match)
        verification=VerificationSettings(rate_limit_per_id_per_hour=10**7, rate_limit_per_client_per_hour=10**7,
                                          max_retries_before_review=10**6),
        refresh=RefreshSettings(enabled=False),
    )
    ctx = AppContext(settings)
    clock = VirtualTime()
    pad = load_pad(settings)
    if pad is None:
        raise SystemExit("the MiniFASNet pack is not installed: set LIFECERT_SHARED_MODELS")
    install()
    svc = VerificationService(ctx, pad=pad, clock=clock)
    svc.warm_up()
    return ctx, svc, clock


def outcome(decision: str | None, reason: str | None, scores: dict[str, Any], issue: str | None) -> str:
    """CONFIRMED / REVIEW <issue or reason> / RETRY <missed step or reason>."""
    if decision == "CONFIRMED":
        return "CONFIRMED"
    if decision == "RETRY":
        missed = scores.get("missed_challenge")
        return f"RETRY {missed}" if missed else f"RETRY {reason}"
    return f"{decision} {issue or reason}"


def record(ctx: Any, session_id: str, params: Any = None) -> dict[str, Any]:
    """One session's verdicts per defence from its stored record; with ``params`` the flat test recomputed from its
    stored per-frame observations by today's steps.passive_liveness (the rescore)."""
    from lifecert.services.verification import steps
    from lifecert.storage.models_verification import VerificationSession

    with ctx.db.session() as db:
        vs = db.get(VerificationSession, session_id)
        assert vs is not None
        scores = dict(vs.scores or {})
        states = [s["state"] for s in vs.steps]
        drawn = [s["challenge"] for s in vs.steps if s["kind"] == "challenge"]
        decision, reason, detail = vs.decision, vs.reason_code, vs.detail_reason
        flat_now = None
        if params is not None:
            from sqlalchemy import select

            from lifecert.services.verification.paced import (
                _baseline,
                frame_loader,
                open_mouth_jaw,
                upper_face_pixels,
            )
            from lifecert.storage.models_verification import VerificationChunk

            offset = vs.clock_offset_ms or 0
            chunks = db.execute(select(VerificationChunk.id, VerificationChunk.step, VerificationChunk.observations)
                                .where(VerificationChunk.session_id == vs.id).order_by(VerificationChunk.seq)).all()
            frame_steps = [step for _cid, step, ds in chunks for _d in ds]
            fobs = [steps.Obs.from_json(d).frame_obs(offset) for _cid, _step, ds in chunks for d in ds]
            keys = [(cid, i) for cid, _step, ds in chunks for i in range(len(ds))]
            live = steps.passive_liveness(fobs, params)
            # the jaw test as production's _finalize runs it (paced.open_mouth_jaw on the same inputs)
            loader = frame_loader(ctx, db, vs.id, keys)
            jc = open_mouth_jaw(vs.steps or [], frame_steps, fobs, _baseline(vs.baseline), params, loader)
            still_chin = jc is not None and jc.still_chin
            # the pixel flat test as _finalize runs it (paced.upper_face_pixels), since session 15
            px = upper_face_pixels(fobs, loader, bool(live.flat_photo))
            pixel_flat = px is not None and px.flat
            flat_now = {"flat_photo": bool(live.flat_photo), "still": bool(live.still),
                        "parallax": live.planar.parallax, "pairs": live.planar.pairs,
                        "planar_motion": live.planar.motion,
                        "jaw": None if jc is None else jc.as_dict(), "still_chin": still_chin,
                        "pixel_flat": pixel_flat, "pixel_value": None if px is None else px.value,
                        "decision": (redecide(scores, states, live, still_chin, pixel_flat) if "match" in scores
                                     else decision),
                        "decision_no_jaw": redecide(scores, states, live, False, pixel_flat) if "match" in scores
                        else decision,
                        "decision_no_pixels": redecide(scores, states, live) if "match" in scores else decision}
    liv = scores.get("liveness") or {}
    pad = scores.get("pad") or {}
    planar = liv.get("planarity") or {}
    flat = liv.get("flat") or {}
    evidence = "match" in scores
    issue = scores.get("liveness_issue")
    jaw = liv.get("jaw") or {}
    pixels = liv.get("pixel_planarity") or {}
    out = {
        "session_id": session_id,
        "drawn": drawn,
        "decision": decision,
        "reason": reason,
        "detail_reason": detail,
        "outcome": outcome(decision, reason, scores, issue),
        "steps": states,
        "evidence": evidence,
        "active": all(s == "seen" for s in states),
        "pad_score": pad.get("score"),
        "pad_pass": bool(pad) and pad.get("score") is not None and not pad.get("spoof"),
        "still": bool(liv.get("still")),
        "flat_photo": bool(flat.get("flat")) or bool(planar.get("flat")) or bool(pixels.get("flat")),
        "pixel_flat": bool(pixels.get("flat")),  # the pixel flat test (since session 15; absent before)
        "pixel_value": pixels.get("value"),
        "parallax": planar.get("parallax"),
        "parallax_pairs": planar.get("pairs"),
        "residual": flat.get("residual"),
        "motion": liv.get("motion"),
        "jaw_ratio": jaw.get("ratio"),  # engine/jaw.py: chin drop / lip-gap growth on the open_mouth step
        "jaw_decided": bool(jaw.get("decided")),
        "jaw_pixel_ratio": jaw.get("pixel_ratio"),  # the chin's shift read from the frames (decides where it can)
        "jaw_signal": jaw.get("signal"),
        "still_chin": bool(jaw.get("still_chin")),
        "match": scores.get("match"),
        "threshold": scores.get("threshold"),
        "match_pass": evidence and scores["match"] >= scores["threshold"],
        "confirmed": decision == "CONFIRMED",
    }
    out["flat_pass"] = evidence and not out["flat_photo"] and not out["still"]
    out["jaw_pass"] = evidence and not out["still_chin"]  # an abstaining jaw test lets the session through
    # since f48fabf a still_chin CONFIRMED session gets a STILL_CHIN spot check (a person looks): CONFIRMED unflagged
    # = through with no jaw-triggered look
    out["confirmed_unflagged"] = out["confirmed"] and not out["still_chin"]
    if flat_now is not None:
        out["rescored"] = flat_now
        out["confirmed_no_jaw"] = flat_now["decision_no_jaw"] == "CONFIRMED"
        out["confirmed_no_pixels"] = flat_now["decision_no_pixels"] == "CONFIRMED"
    return out


def redecide(scores: dict[str, Any], states: Sequence[str], live: Any, still_chin: bool = False,
             pixel_flat: bool = False) -> str:
    """The decision of a session with evidence, recomputed by rules.decide from its stored scores, a recomputed
    passive liveness ``live`` (steps.PassiveLiveness): what today's flat test would decide. ``still_chin`` no longer
    changes the decision (since session 14 the jaw test opens a STILL_CHIN spot check of a CONFIRMED session instead
    of refusing it: it refused genuine speech-like openings); the parameter stays for the callers' rows.
    ``pixel_flat``: the pixel flat test's verdict (paced.upper_face_pixels, since session 15), which counts like
    the landmark tests'."""
    from lifecert.services.verification import rules

    pad = scores.get("pad") or {}
    v = rules.decide(rules.Evidence(
        **rules.match_evidence(scores.get("fusion"), scores.get("one_to_n") or []),
        threshold=scores["threshold"], own_match=scores["match"],
        one_person_min=scores.get("one_person_min_similarity", 1.0), still=live.still,
        flat=live.flat_photo or pixel_flat,
        challenges_passed=all(s == "seen" for s in states), pad_spoof=bool(pad.get("spoof"))))
    return str(v.decision)


def victim_photo_match(ctx: Any, victims: Sequence[dict[str, Any]], pensioner_ids: Sequence[int | None]
                       ) -> list[float | None]:
    """Each victim's PRINTED photo itself (no print, no camera, no holes) against her enrolled template, embedded as
    a verification frame is (the frame engine, the probe profile) and scored by production's match_pensioner: how
    far the 1:1 match alone would let her photo through."""
    from lifecert.services.templates import match_pensioner
    from lifecert.services.verification import load_frame_engine

    fe = load_frame_engine(ctx.settings)
    out: list[float | None] = []
    with ctx.db.session() as db:
        for v, pid in zip(victims, pensioner_ids, strict=True):
            faces = fe.detect(v["printed_img"])
            if not faces or pid is None:
                out.append(None)
                continue
            emb = fe.embed_faces([(v["printed_img"], faces[0])], ctx.settings.embedding.probe_profile)[0]
            out.append(round(match_pensioner(ctx, db, pid, emb)[0].score, 4))
    return out


def pensioner_of(ctx: Any, session_id: str) -> int:
    from lifecert.storage.models_verification import VerificationSession

    with ctx.db.session() as db:
        vs = db.get(VerificationSession, session_id)
        assert vs is not None
        return int(vs.pensioner_id)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from lifecert.config import Settings
    from lifecert.services.verification import load_frame_engine

    t_start = time.time()
    deadline = t_start + args.budget_min * 60
    data_dir = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="lifecert-cutout-")) / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    engine = load_frame_engine(Settings(), name="dlib")
    att = attacker_picks(engine)
    victims = pick_victims(engine, args.start + args.per_variant)  # the same order: session k's victim is the same
    genuine_clip = vl.load_clip()
    if not vl.install_pad(data_dir):
        raise SystemExit(f"could not install the MiniFASNet pack from {vl.PAD_DIR}")
    assert genuine_clip.template is not None
    genuine_3d = genuine_clip_3d(att, genuine_clip.template) if "genuine_3d" in args.variants else None
    items = [("王秀英", genuine_clip.template)] + [(v["name"][:60], v["enrolled_img"]) for v in victims]
    who = vl.enroll_people(data_dir, items)
    ctx, svc, clock = make_service(data_dir)
    variants = [VARIANTS[n] for n in args.variants.split(",")]
    rows: list[dict[str, Any]] = []
    stopped = None
    cpu0 = time.process_time()
    for k in range(args.start, args.start + args.per_variant):  # session k of every variant, then k + 1: a time
        # box cuts all alike
        for v in variants:
            if time.time() > deadline:
                stopped = f"budget reached at session {k} of {args.per_variant}"
                break
            target = who[0] if v.genuine else who[1 + k]
            if target is None:
                continue
            clip = (genuine_3d if v.name == "genuine_3d" else genuine_clip) if v.genuine else \
                cutout_clip(v, k, victims[k], att)
            svc.rng = random.Random(f"{SEED}-{k}")  # session k draws the same challenges in every variant
            t0 = time.process_time()
            (r,) = vl.run_sessions(svc, clock, target, clip, 1, REACTION_MS, None, warm=False)
            row = record(ctx, r.session_id, svc.paced.params) | {
                "variant": v.name, "k": k, "cpu_s": round(time.process_time() - t0, 2),
                "victim": None if v.genuine else victims[k]["name"]}
            rows.append(row)
            with open(data_dir.parent / "rows.jsonl", "a", encoding="utf-8") as fh:  # kept if the run dies
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            print(f"{v.name:12s} {k:3d} {row['outcome']:40s} drawn={','.join(row['drawn'])} "
                  f"pad={row['pad_score']} par={row['parallax']} match={row['match']} "
                  f"jaw={row['jaw_ratio']}", flush=True)
        if stopped:
            break
    first = {r["k"]: r["session_id"] for r in reversed(rows) if not VARIANTS[r["variant"]].genuine}
    photo_match = victim_photo_match(ctx, victims, [pensioner_of(ctx, first[k]) if k in first else None
                                                    for k in range(len(victims))])
    ctx.close()
    return {"rows": rows, "data_dir": str(data_dir), "stopped": stopped, "victim_photo_match": photo_match,
            "cpu_s": round(time.process_time() - cpu0),
            "wall_s": round(time.time() - t_start), "victims": [{k: v[k] for k in ("name", "enrolled", "printed")}
                                                                 for v in victims]}


# -- summary ---------------------------------------------------------------------------------------------


DEFENCES = (("active", "active"), ("pad", "pad_pass"), ("flat", "flat_pass"), ("match", "match_pass"),
            ("jaw", "jaw_pass"), ("all", "confirmed"), ("all_no_jaw", "confirmed_no_jaw"),
            ("unflagged", "confirmed_unflagged"))


def summarize(rows: Sequence[dict[str, Any]], flat_key: str = "flat_pass", all_key: str = "confirmed",
              suffix: str = "") -> dict[str, Any]:
    """Per variant: each defence's APCER (attacks) / BPCER (genuine). ``suffix``: the row keys of a re-decision
    (``_final``: --refinalize's). A defence missing from some row (a run before the jaw test) is left out;
    *all_no_jaw* = CONFIRMED with the jaw test left out (rules.decide on the same evidence, still_chin False)."""
    out: dict[str, Any] = {}
    for name in dict.fromkeys(r["variant"] for r in rows):
        rs = [r for r in rows if r["variant"] == name]
        n = len(rs)
        genuine = VARIANTS[name].genuine
        cells = {}
        for label, key in DEFENCES:
            if key == "flat_pass":
                key = flat_key
            elif key == "confirmed":
                key = all_key
            elif key in ("match_pass", "jaw_pass", "confirmed_no_jaw", "confirmed_unflagged"):
                key += suffix
            if not all(key in r for r in rs):
                continue
            passed = sum(1 for r in rs if r[key])
            cells[label] = rate(n - passed if genuine else passed, n)  # attacks: passed (APCER); genuine: refused
        cells["pad_and_flat"] = rate(sum(1 for r in rs if (r["pad_pass"] and r[flat_key]) != genuine), n)
        cells["pad_flat_match"] = rate(sum(1 for r in rs if (r["pad_pass"] and r[flat_key] and r["match_pass" + suffix])
                                           != genuine), n)
        out[name] = {
            "n": n,
            "genuine": genuine,
            "what": VARIANTS[name].what,
            "rates": cells,
            "outcomes": dict(Counter(r["outcome"] for r in rs).most_common()),
            "drawn_with": dict(Counter(c for r in rs for c in r["drawn"]).most_common()),
            "steps_missed": dict(Counter(r["outcome"].split(" ", 1)[1] for r in rs
                                         if r["outcome"].startswith("RETRY")).most_common()),
            "pad_median": _median([r["pad_score"] for r in rs]),
            "parallax_median": _median([r["parallax"] for r in rs]),
            "match_median": _median([r["match"] for r in rs]),
            "jaw_ratio_median": _median([r.get("jaw_ratio" + suffix) for r in rs]),
            "jaw_pixel_median": _median([r.get("jaw_pixel_ratio" + suffix) for r in rs]),
            "jaw_decided": sum(1 for r in rs if r.get("jaw_decided" + suffix)),
        }
    return out


def _median(xs: Sequence[float | None]) -> float | None:
    v = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return round(float(np.median(v)), 3) if v else None


def first_missed(rows: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Per challenge: missed / prompted (a session ends at its first missed step: later ones are never prompted)."""
    miss: Counter[str] = Counter()
    prompted: Counter[str] = Counter()
    for r in rows:
        for c, st in zip(r["drawn"], r["steps"][1:], strict=False):
            if st in ("seen", "timed_out"):
                prompted[c] += 1
                miss[c] += st == "timed_out"
    return {c: f"{miss[c]}/{prompted[c]}" for c in sorted(prompted)}


def readme(res: dict[str, Any]) -> str:
    s = res["summary"]
    re_ = res.get("summary_rescored")
    title = "Cut-out prints" if res.get("name", "cutout") == "cutout" else f"Cut-out prints: {res['name']}"
    lines = [
        f"## {title} (`benchmarks/cutout.py`)",
        "",
        f"{res['date']}, {res['machine'].get('cpu', '')} ({res['machine'].get('nproc', '')} cores, shared, niced); "
        f"code: {res['code']}. {res['per_variant']} session numbers per variant asked"
        + (f" ({res['stopped']})" if res.get("stopped") else "")
        + f"; {res['wall_s']} s wall, {res['cpu_s']} s CPU. Production's paced service in-process (frame engine, "
        "steps, passive liveness, MiniFASNet PAD pack, 1:1 match, rules.decide; dlib alone: no fusion packs; "
        "template refresh and RETRY escalation off, each victim having a session per variant) on a virtual clock, "
        "production's draw per session (the same draw for session k in every variant). Attack rows: sessions each "
        "defence LETS THROUGH (APCER); genuine row: sessions it REFUSES (BPCER). *active* = every step seen; *flat "
        "test* = steps.passive_liveness's flat_photo (homography residual or nose parallax) and still not set; "
        "*jaw test* = engine/jaw.py's still_chin not set (an abstaining test lets through); *all* = CONFIRMED; "
        "*all but jaw* = CONFIRMED with the jaw test left out (rules.decide on the same evidence). Exact 95 % "
        "Clopper-Pearson intervals.",
        "",
        "| variant | n | active | PAD | flat test | 1:1 match | jaw test | PAD + flat + match | all but jaw | "
        "all (CONFIRMED) | outcomes |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, c in s.items():
        r = c["rates"]
        outs = ", ".join(f"{k} {v}" for k, v in c["outcomes"].items())
        opt = {k: cell(r[k]) if k in r else "–" for k in ("jaw", "all_no_jaw", "pad_flat_match")}
        lines.append(f"| `{name}` | {c['n']} | {cell(r['active'])} | {cell(r['pad'])} | {cell(r['flat'])} | "
                     f"{cell(r['match'])} | {opt['jaw']} | {opt['pad_flat_match']} | {opt['all_no_jaw']} | "
                     f"{cell(r['all'])} | {outs} |")
    by: dict[str, list[dict[str, Any]]] = {}
    for row in res["rows"]:
        by.setdefault(row["variant"], []).append(row)
    lines += ["", "Variants: " + "; ".join(f"`{k}`: {VARIANTS[k].what}" for k in s) + ".",
              "", "Challenge steps missed / prompted: " + "; ".join(
                  f"`{k}` " + ", ".join(f"{c} {m}" for c, m in first_missed(by[k]).items()) for k in s) + ".",
              "", "Medians (PAD session score, nose parallax, 1:1 score, jaw ratio): " + "; ".join(
                  f"`{k}` {c['pad_median']} / {c['parallax_median']} / {c['match_median']} / "
                  f"{c.get('jaw_ratio_median')}" for k, c in s.items())
              + f" (the 1:1 threshold {sorted({r['threshold'] for r in res['rows'] if r['threshold']})})."]
    pm = [x for x in res.get("victim_photo_match") or [] if x is not None]
    if pm:
        thr = max(r["threshold"] for r in res["rows"] if r["threshold"])
        lines += ["", f"The victims' printed photos THEMSELVES (no print, camera or holes) against their templates, "
                  f"production's probe path: {sum(1 for x in pm if x >= thr)}/{len(pm)} over the threshold, median "
                  f"{float(np.median(pm)):.3f}: the 1:1 losses above are the attack's (print, camera, the attacker's "
                  "own mouth / eyes in the holes), not the choice of photos."]
    if re_:
        changed = sum(1 for r in res["rows"] if r.get("flat_pass_now") != r["flat_pass"]
                      or r.get("confirmed_now") != r["confirmed"])
        lines += ["", f"Rescored {res.get('rescored_at')} with the flat test of code {res.get('code_rescored')} "
                  f"(recomputed from each session's stored per-frame observations, decision by rules.decide): "
                  f"{changed} of {len(res['rows'])} sessions change. " + "; ".join(
                      f"`{k}` flat {cell(c['rates']['flat'])}, all {cell(c['rates']['all'])}" for k, c in re_.items())
                  + "."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-variant", type=int, default=30)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--start", type=int, default=0, help="the first session number (more sessions after a run)")
    ap.add_argument("--budget-min", type=float, default=40.0)
    ap.add_argument("--data-dir", default="")
    ap.add_argument("--name", default="cutout")
    ap.add_argument("--no-readme", action="store_true")
    ap.add_argument("--rescore", default="", help="a kept run's results JSON: its sessions' flat test recomputed")
    ap.add_argument("--refinalize", default="", help="a kept run's results JSON: its sessions decided again")
    ap.add_argument("--pool", nargs="+", default=None, help="results JSONs: their sessions pooled per variant "
                    "(a --refinalize'd run by its re-decision) into results/<--name>.json")
    args = ap.parse_args(argv)
    if args.pool:
        return pool([Path(p) for p in args.pool], args)
    if args.rescore:
        return rescore(Path(args.rescore), args)
    if args.refinalize:
        return refinalize(Path(args.refinalize), args)
    res = run(args)
    out = res | {"name": args.name, "date": now(), "machine": machine(), "code": code_version(),
                 "per_variant": args.per_variant, "start": args.start,
                 "seed": SEED, "summary": summarize(res["rows"])}
    publish(args.name, args.name, out, readme(out), readme=not args.no_readme)
    print(json.dumps(out["summary"], indent=1, ensure_ascii=False))
    return 0


def rescore(path: Path, args: argparse.Namespace) -> int:
    """A kept run (its results JSON and data dir): every session's flat test recomputed from its stored per-frame
    observations with the code checked out now and its decision recomputed (:func:`redecide`), the victims' photo
    match added when missing; the JSON rewritten (and the README section unless --no-readme)."""
    from lifecert.config import Settings
    from lifecert.engine.liveness import LivenessParams
    from lifecert.services.context import AppContext

    res = json.loads(path.read_text(encoding="utf-8"))
    ctx = AppContext(Settings(data_dir=Path(res["data_dir"])))
    rows = []
    for r in res["rows"]:
        now_ = record(ctx, r["session_id"], LivenessParams())["rescored"]
        rows.append(r | {"rescored": now_, "flat_pass_now": r["evidence"] and not now_["flat_photo"]
                         and not now_["still"], "confirmed_now": now_["decision"] == "CONFIRMED"})
    if "victim_photo_match" not in res:
        from lifecert.services.verification import load_frame_engine

        victims = pick_victims(load_frame_engine(ctx.settings, name="dlib"), len(res["victims"]))
        assert [v["name"] for v in victims] == [v["name"] for v in res["victims"]], "the victims drawn differ"
        first = {r["k"]: r["session_id"] for r in reversed(rows) if not VARIANTS[r["variant"]].genuine}
        res["victim_photo_match"] = victim_photo_match(
            ctx, victims, [pensioner_of(ctx, first[k]) if k in first else None for k in range(len(victims))])
    ctx.close()
    changed = [r for r in rows if r["flat_pass_now"] != r["flat_pass"] or r["confirmed_now"] != r["confirmed"]]
    print(f"{len(changed)} of {len(rows)} sessions change their flat verdict or decision")
    for r in changed:
        print(r["variant"], r["k"], r["outcome"], r["parallax"], "->", r["rescored"])
    res["rows"] = rows
    res["code_rescored"] = code_version()
    res["rescored_at"] = now()
    res["summary_rescored"] = summarize(rows, "flat_pass_now", "confirmed_now")
    publish(args.name, args.name, res, readme(res), readme=not args.no_readme)
    print(json.dumps({k: {d: cell(c) for d, c in v["rates"].items()} for k, v in res["summary_rescored"].items()},
                     indent=1, ensure_ascii=False))
    return 0


def refinalize(path: Path, args: argparse.Namespace) -> int:
    """A kept run's sessions DECIDED AGAIN by the code checked out now: a copy of its data dir, each session's final
    decision recomputed by production's PacedCapture._finalize from its stored chunks (observations and sealed
    frames: passive liveness, PAD verdict, best frames, embedding, 1:1 / 1:N, rules.decide); the capture (step
    judgement, PAD scores per frame) is the run's. Adds ``final`` per row and ``summary_final``; rewrites the JSON."""
    import shutil

    res = json.loads(path.read_text(encoding="utf-8"))
    src = Path(res["data_dir"])
    copy = Path(tempfile.mkdtemp(prefix="lifecert-cutout-final-")) / "data"
    shutil.copytree(src, copy)
    ctx, svc, _clock = make_service(copy)
    from lifecert.storage.models_verification import VerificationSession

    for r in res["rows"]:
        with ctx.db.session() as db:
            vs = db.get(VerificationSession, r["session_id"])
            assert vs is not None
            missed = (vs.scores or {}).get("missed_challenge")
            fail = vs.reason_code if vs.steps and vs.steps[0]["state"] != "seen" else None
            svc.paced._finalize(db, vs, fail, missed, "bench")
        now_ = record(ctx, r["session_id"], svc.paced.params)
        if now_["evidence"]:  # the rescore path (rules.decide from stored scores) must agree with _finalize
            assert now_["rescored"]["decision"] == now_["decision"], (r["session_id"], now_["rescored"], now_)
        r["final"] = {k: now_.get(k) for k in ("outcome", "pad_pass", "flat_pass", "match_pass", "confirmed", "match",
                                               "parallax", "jaw_ratio", "jaw_decided", "still_chin", "jaw_pass",
                                               "confirmed_no_jaw", "jaw_pixel_ratio", "jaw_signal",
                                               "confirmed_unflagged", "pixel_flat", "pixel_value",
                                               "confirmed_no_pixels")}
        for k in ("confirmed", "flat_pass", "match_pass", "jaw_pass", "jaw_ratio", "jaw_decided", "confirmed_no_jaw",
                  "jaw_pixel_ratio", "confirmed_unflagged", "pixel_flat", "confirmed_no_pixels"):
            r[k + "_final"] = now_.get(k)
    ctx.close()
    changed = [r for r in res["rows"] if r["final"]["outcome"] != r["outcome"]]
    print(f"{len(changed)} of {len(res['rows'])} sessions decide differently")
    for r in changed:
        print(r["variant"], r["k"], r["outcome"], "->", r["final"]["outcome"], r["match"], "->", r["final"]["match"])
    res["code_final"] = code_version()
    res["final_at"] = now()
    res["summary_final"] = summarize(res["rows"], "flat_pass_final", "confirmed_final", suffix="_final")
    path.write_text(json.dumps(res, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    print(json.dumps({k: {d: cell(c) for d, c in v["rates"].items()} for k, v in res["summary_final"].items()},
                     indent=1, ensure_ascii=False))
    return 0


FINAL_KEYS = ("pad_pass", "flat_pass", "match_pass", "jaw_pass", "jaw_ratio", "jaw_decided", "confirmed",
              "confirmed_no_jaw", "outcome", "match", "jaw_pixel_ratio", "jaw_signal", "confirmed_unflagged",
              "pixel_flat", "confirmed_no_pixels")


def pooled_rows(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """The sessions of several runs, each as decided by the newest code that decided it: a --refinalize'd run's
    rows by their ``final`` record (PacedCapture._finalize again), the others as run. ``source`` names the run."""
    out = []
    for path in paths:
        res = json.loads(path.read_text(encoding="utf-8"))
        code = res.get("code_final") or res.get("code")
        for r in res["rows"]:
            f = r.get("final") if "final" in r else None
            row = {k: r[k] for k in ("variant", "k", "session_id", "drawn", "steps", "active", "victim", "parallax",
                                     "pad_score") if k in r}
            row |= {k: (f if f is not None else r).get(k) for k in FINAL_KEYS}
            row["evidence"] = r.get("evidence")
            out.append(row | {"source": path.name, "code": code})
    return out


def cell1(r: dict[str, Any]) -> str:
    """A rate with one decimal (the pooled table)."""
    return f"{r['k']}/{r['n']} = {r['pct']:.1f} % [{r['ci95'][0]:.1f}–{r['ci95'][1]:.1f}]" if r["n"] else "–"


def pool(paths: Sequence[Path], args: argparse.Namespace) -> int:
    """Sessions of several runs pooled per variant (:func:`pooled_rows`), plus ALL rows for the session-13 holes
    (mouth / mouth + eyes) and for the adaptive cuts; results/<--name>.json and a Markdown table on stdout."""
    rows = pooled_rows(paths)
    for r in rows:
        r["flat_pass"] = bool(r["flat_pass"])
    summary = summarize(rows)
    groups = {"ALL mouth / eyes holes": [r for r in rows if not VARIANTS[r["variant"]].genuine
                                         and VARIANTS[r["variant"]].cut == "mouth"],
              "ALL adaptive cuts": [r for r in rows if VARIANTS[r["variant"]].cut != "mouth"]}
    for name, rs in groups.items():
        if rs:
            c = summarize([r | {"variant": rs[0]["variant"]} for r in rs])[rs[0]["variant"]]
            summary[name] = c | {"n": len(rs), "genuine": False, "what": name}
    for name, c in summary.items():
        rs = groups.get(name) or [r for r in rows if r["variant"] == name]
        ks = sorted({r["k"] for r in rs})
        c["sessions"] = f"{ks[0]}-{ks[-1]}" if ks == list(range(ks[0], ks[-1] + 1)) else ",".join(map(str, ks))
        c["jaw_let_through_of_decided"] = rate(sum(1 for r in rs if r["jaw_decided"] and r["jaw_pass"] !=
                                                   VARIANTS[r["variant"]].genuine),
                                               sum(1 for r in rs if r["jaw_decided"]))
    lines = ["| variant | n (sessions) | active | PAD | flat test | 1:1 match | jaw test | jaw decided: let through | "
             "jaw median (landmarks / pixels) | PAD + flat + match | CONFIRMED | CONFIRMED, jaw not flagged |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, c in summary.items():
        r = c["rates"]
        lines.append(f"| `{name}` | {c['n']} ({c['sessions']}) | {cell1(r['active'])} | {cell1(r['pad'])} | "
                     f"{cell1(r['flat'])} | {cell1(r['match'])} | {cell1(r['jaw'])} | "
                     f"{cell1(c['jaw_let_through_of_decided'])} | {c['jaw_ratio_median']} / {c['jaw_pixel_median']} | "
                     f"{cell1(r['pad_flat_match'])} | {cell1(r['all'])} | **{cell1(r['unflagged'])}** |")
    text = "\n".join(lines)
    out = {"name": args.name, "date": now(), "machine": machine(), "code_now": code_version(),
           "sources": [{"file": p.name, "code": json.loads(p.read_text(encoding="utf-8")).get("code_final")
                        or json.loads(p.read_text(encoding="utf-8")).get("code")} for p in paths],
           "summary": summary, "rows": rows}
    publish(args.name, args.name, out, text, readme=False)
    return 0


def code_version() -> str:
    """The checked-out commit, marked when lifecert/ or benchmarks/ have uncommitted changes."""
    import subprocess

    code = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "lifecert"], capture_output=True,
                           text=True).stdout.strip()
    return code + (" + uncommitted lifecert changes" if dirty else "")


if __name__ == "__main__":
    raise SystemExit(main())
