"""A fake camera for Chromium that acts out whichever challenge the page shows, from real face frames.

The page's ``getUserMedia`` is replaced (an init script, :func:`actor_init_script`) by a 480x640 (portrait)
``canvas.captureStream()`` the test paints: a looping *neutral* clip until the page shows a challenge
prompt (``#challenge[data-challenge]``), then — ``reaction_ms`` later, like a person who needs time to
understand — the clip that acts that challenge, then neutral again. The face can also enter the frame
late (an empty scene first, then the face slides in). Clips are JPEG frames the test serves through
Playwright routing (``/__fakecam/<clip>/<i>.jpg``, never the network).

Where the frames come from (all real, from ``../shared/faces/video/talking_head_a.mp4``), chosen by what
the engine measures on them (eye/mouth aspect ratio), never by hard-coded frame numbers:

* neutral — the longest run of eyes-open, mouth-closed frames, played back and forth;
* blink — the video's deepest blink, the closed eyes held ``BLINK_HOLD_MS``;
* open_mouth — the widest mouth opening with the eyes open, held ``MOUTH_HOLD_MS``;
* turn_left / turn_right / nod — the video has no head turn or nod, so neutral frames are warped with a
  piecewise-linear map driven by the 68 landmarks (:func:`warp_pose`): the nose moves most, eyes and
  mouth less, the jaw outline barely, as a head turning about its vertical (or nodding about its
  horizontal) axis looks in 2D. The identity stays that of the video (``pose/`` stills are other people).

Scenes (:func:`genuine_scene`, :func:`screen_replay_scene`) put the face frame into a 480x640 camera
picture: the genuine one is the video frame itself (portrait crop, hand shake); the replay one shows the
same clips on a phone screen held in front of the camera (pad's synthesis in ``benchmarks/attacks.py``:
bezel, display tone, moiré, glare, tilt, hand tremor) — the attack of issue 12.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy.interpolate import griddata

from lifecert.engine import geometry
from lifecert.engine.base import FaceEngine

Image = NDArray[np.uint8]
ACTIONS = ("blink", "turn_left", "turn_right", "open_mouth", "nod")
CLIP_FPS = 15
CAMERA_SIZE = (480, 640)  # (W, H): a phone held upright gives the page a portrait stream
NEUTRAL_MIN_EAR = 0.33
NEUTRAL_MAX_MAR = 0.13
CLOSED_MAX_EAR = 0.20
OPEN_MIN_EAR = 0.30  # eyes open while the mouth opens
BLINK_HOLD_MS = 450  # closed eyes held this long (a capture at 8 fps sees 3-4 frames)
MOUTH_HOLD_MS = 1100
TURN_YAW = 0.5  # landmark shift of the nose, in half face widths, at the turn's peak (yaw_ratio moves ~0.4)
NOD_DOWN = 0.16  # nose shift down, in eye-to-chin spans, at the nod's peak (pitch_ratio grows ~0.15)
POSE_RAMP_MS = 600  # a slow elderly turn: 0.6 s out, held 0.6 s, 0.6 s back
POSE_HOLD_MS = 600
# A first try too small (ActorPlan.weak_first): this share of the full turn/nod. Measured with the engine on
# the 23 neutral frames (yaw/pitch change from their median): turns at 0.375 move the yaw ratio 0.13-0.19
# (at rest < 0.11, counted > 0.22: steps.action_hint's TURN_MORE), nods at 0.2 the pitch 0.01-0.03 (< 0.04).
SMALL_TURN = 0.375
SMALL_NOD = 0.2
NOISE_SIGMA = 1.5  # grey levels; real sensors never deliver two identical frames


@dataclass(frozen=True, slots=True)
class FrameScore:
    """Measurements of one source frame (``index`` in the source video; ratios from the 68 landmarks)."""

    index: int
    ear: float
    mar: float
    yaw: float


def read_frames(video: Path) -> list[Image]:
    """All frames of ``video`` as (H, W, 3) uint8 BGR."""
    cap = cv2.VideoCapture(str(video))
    frames = []
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(np.asarray(frame, dtype=np.uint8))
    finally:
        cap.release()
    if not frames:
        raise ValueError(f"no frames could be read from {video}")
    return frames


@dataclass(frozen=True)
class SourceVideo:
    """A decoded video with per-frame measurements and landmarks (scored once per test session)."""

    frames: list[Image]
    scores: list[FrameScore | None]
    landmarks: list[NDArray[np.float32] | None]

    @classmethod
    def load(cls, engine: FaceEngine, video: Path) -> SourceVideo:
        frames = read_frames(video)
        scores: list[FrameScore | None] = []
        lms: list[NDArray[np.float32] | None] = []
        for i, frame in enumerate(frames):
            faces = engine.detect(frame)
            lm = faces[0].landmarks68 if faces else None
            lms.append(lm)
            scores.append(
                None if lm is None
                else FrameScore(i, geometry.eye_aspect_ratio(lm), geometry.mouth_aspect_ratio(lm),
                                geometry.yaw_ratio(lm))
            )
        return cls(frames, scores, lms)


def _is_neutral(s: FrameScore | None) -> bool:
    return s is not None and s.ear >= NEUTRAL_MIN_EAR and s.mar <= NEUTRAL_MAX_MAR


def neutral_run(scores: Sequence[FrameScore | None]) -> list[int]:
    """The longest run of consecutive neutral frames (eyes open, mouth closed)."""
    best: list[int] = []
    run: list[int] = []
    for s in scores:
        if s is not None and _is_neutral(s):
            run.append(s.index)
            if len(run) > len(best):
                best = list(run)
        else:
            run = []
    if len(best) < 4:
        raise ValueError("the video has no run of at least 4 neutral frames")
    return best


def blink_frames(scores: Sequence[FrameScore | None]) -> tuple[list[int], list[int], list[int]]:
    """(closing, closed, opening) source indices of the deepest blink."""
    valid = [s for s in scores if s is not None]
    closed_all = [s for s in valid if s.ear < CLOSED_MAX_EAR]
    if not closed_all:
        raise ValueError("the video has no frame with closed eyes")
    deepest = min(closed_all, key=lambda s: s.ear)
    closed = [deepest.index]
    i = deepest.index - 1
    while i >= 0 and scores[i] is not None and scores[i].ear < CLOSED_MAX_EAR:  # type: ignore[union-attr]
        closed.insert(0, i)
        i -= 1
    closing = [j for j in range(max(0, i - 1), i + 1) if scores[j] is not None]
    j = deepest.index + 1
    while j < len(scores) and scores[j] is not None and scores[j].ear < CLOSED_MAX_EAR:  # type: ignore[union-attr]
        closed.append(j)
        j += 1
    opening = [k for k in range(j, min(len(scores), j + 2)) if scores[k] is not None]
    return closing, closed, opening


def mouth_frames(scores: Sequence[FrameScore | None]) -> tuple[list[int], list[int], list[int]]:
    """(opening, open, closing) source indices around the widest mouth opening with the eyes open."""
    valid = [s for s in scores if s is not None and s.ear >= OPEN_MIN_EAR]
    peak = max(valid, key=lambda s: s.mar)
    # Frames near the peak that are also clearly open (at least 70 % of the peak) form the held phase.
    near = [s.index for s in valid if abs(s.index - peak.index) <= 2 and s.mar >= 0.7 * peak.mar]
    lo, hi = min(near), max(near)
    opening = [k for k in range(max(0, lo - 2), lo) if scores[k] is not None]
    closing = [k for k in range(hi + 1, min(len(scores), hi + 3)) if scores[k] is not None]
    return opening, near, closing


def used_frames(scores: Sequence[FrameScore | None]) -> set[int]:
    """Every source frame the fake camera may show (to keep the enrollment photo out of it)."""
    used = set(neutral_run(scores))
    for part in (*blink_frames(scores), *mouth_frames(scores)):
        used.update(part)
    return used


def enrollment_frame(source: SourceVideo, avoid: Sequence[int]) -> Image:
    """The most open-eyed neutral frame that the fake camera does not show (the 'ID photo' stand-in), BGR."""
    used = set(avoid)
    candidates = [s for s in source.scores if s is not None and _is_neutral(s) and s.index not in used]
    if not candidates:
        raise ValueError("no unused neutral frame for enrollment")
    return source.frames[max(candidates, key=lambda s: s.ear).index]


def _hold(indices: list[int], n: int) -> list[int]:
    """``n`` indices cycling back and forth through ``indices`` (a held pose that still moves a little)."""
    if len(indices) == 1:
        return indices * n
    cycle = indices + indices[-2:0:-1]
    return [cycle[k % len(cycle)] for k in range(n)]


# -- synthetic head pose -------------------------------------------------------------------------

# Per-landmark share of the shift (68-point scheme): how far each part moves when the head turns/nods.
_YAW_W = np.zeros(68)
_YAW_W[0:17] = 0.1  # jaw outline
_YAW_W[17:27] = 0.45  # brows
_YAW_W[27:31] = (0.6, 0.75, 0.9, 1.0)  # nose bridge to tip
_YAW_W[31:36] = 0.8  # nostrils
_YAW_W[36:48] = 0.5  # eyes
_YAW_W[48:68] = 0.55  # mouth
_NOD_W = np.zeros(68)
_NOD_W[5:12] = -0.15  # the chin comes up a little (foreshortened)
_NOD_W[17:27] = 0.2
_NOD_W[27:31] = (0.4, 0.6, 0.8, 1.0)
_NOD_W[31:36] = 0.8
_NOD_W[36:48] = 0.3
_NOD_W[48:68] = 0.45


def warp_pose(image: Image, lm68: NDArray[np.float32], yaw: float = 0.0, nod: float = 0.0) -> Image:
    """``image`` with the face turned by ``yaw`` (half face widths of nose shift; > 0: toward image right,
    i.e. the person's own left) and nodded down by ``nod`` (eye-to-chin spans), BGR in, BGR out.

    A piecewise-linear backward map: landmark displacements interpolated over their Delaunay
    triangulation, anchored at the image border and the forehead so the background does not move.
    """
    h, w = image.shape[:2]
    lm = lm68.astype(np.float64)
    half = float(np.linalg.norm(lm[16] - lm[0])) / 2
    span = float(lm[8, 1] - lm[36:48, 1].mean())
    dst = lm.copy()
    dst[:, 0] += _YAW_W * yaw * half
    dst[:, 1] += _NOD_W * nod * span
    border = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1],
                       [w / 2, 0], [w / 2, h - 1], [0, h / 2], [w - 1, h / 2]], dtype=np.float64)
    top = lm[19, 1] - 0.6 * half
    fore = np.array([[lm[27, 0] + dx * half, top] for dx in (-0.8, 0.0, 0.8)])
    src_pts = np.vstack([lm, border, fore])
    dst_pts = np.vstack([dst, border, fore])
    # The displacement field is smooth: interpolate it on a 4x coarser grid, then upsample (16x faster).
    step = 4
    cy, cx = np.mgrid[0:h:step, 0:w:step]
    disp = src_pts - dst_pts
    mx = griddata(dst_pts, disp[:, 0], (cx, cy), method="linear", fill_value=0.0).astype(np.float32)
    my = griddata(dst_pts, disp[:, 1], (cx, cy), method="linear", fill_value=0.0).astype(np.float32)
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    map_x = gx + cv2.resize(mx, (w, h), interpolation=cv2.INTER_LINEAR)
    map_y = gy + cv2.resize(my, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.asarray(cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), np.uint8)


def _pose_curve(n_ramp: int, n_hold: int) -> list[float]:
    """0 -> 1 -> 0 with eased ramps (a slow turn that stops and comes back)."""
    up = [0.5 - 0.5 * math.cos(math.pi * (k + 1) / n_ramp) for k in range(n_ramp)]
    return up + [1.0] * n_hold + up[::-1][1:] + [0.0]


# -- clips ---------------------------------------------------------------------------------------


@dataclass
class Clips:
    """Face frames (source size, BGR) per clip name: ``neutral`` (loops) and one per action."""

    frames: dict[str, list[Image]] = field(default_factory=dict)
    fps: int = CLIP_FPS


def build_clips(source: SourceVideo, fps: int = CLIP_FPS) -> Clips:
    """The neutral loop and one clip per challenge, from the real video (see the module docstring)."""
    ms = 1000.0 / fps
    neutral = neutral_run(source.scores)
    out = Clips(fps=fps)
    out.frames["neutral"] = [source.frames[i] for i in neutral + neutral[-2:0:-1]]
    before, held, after = blink_frames(source.scores)
    out.frames["blink"] = [source.frames[i] for i in before + _hold(held, max(1, round(BLINK_HOLD_MS / ms))) + after]
    before, held, after = mouth_frames(source.scores)
    mouth = before + _hold(held, max(1, round(MOUTH_HOLD_MS / ms))) + after
    out.frames["open_mouth"] = [source.frames[i] for i in mouth]
    curve = _pose_curve(max(2, round(POSE_RAMP_MS / ms)), max(1, round(POSE_HOLD_MS / ms)))
    base = _hold(neutral, len(curve))
    poses = [("turn_left", TURN_YAW, 0.0), ("turn_right", -TURN_YAW, 0.0), ("nod", 0.0, NOD_DOWN)]
    poses += [(f"{n}_small", y * SMALL_TURN, d * SMALL_NOD) for n, y, d in poses]
    for name, yaw, nod in poses:
        frames = []
        for c, i in zip(curve, base, strict=True):
            lm = source.landmarks[i]
            if lm is None:
                raise ValueError(f"neutral frame {i} has no landmarks")
            frames.append(warp_pose(source.frames[i], lm, yaw * c, nod * c) if c > 0 else source.frames[i])
        out.frames[name] = frames
    return out


# -- scenes: the face frame inside a 640x480 camera picture ----------------------------------------

Scene = Callable[[Image | None, int], Image]


def _room(rng: np.random.Generator) -> Image:
    """A plain indoor background: a warm wall with a soft light fall-off and a door-frame edge."""
    w, h = CAMERA_SIZE
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    light = 1.0 - 0.35 * ((xx - 0.3 * w) ** 2 + (yy - 0.2 * h) ** 2) / (w * w)
    wall = np.stack([150 * light, 170 * light, 185 * light], axis=-1)
    wall[:, int(0.82 * w):int(0.86 * w)] *= 0.7
    wall += rng.normal(0, 2.0, wall.shape)
    return np.clip(wall, 0, 255).astype(np.uint8)


def genuine_scene(seed: int = 3, gain: float = 1.0) -> Scene:
    """The person in front of the phone: the real video frame as the camera's picture (centre-cropped to
    3:4 portrait by ``benchmarks.attacks.genuine_frame`` at zoom 1), nothing pasted. The clip as filmed puts the
    face at ~0.80 of the width, over steps.TOO_CLOSE_FRACTION: the settle step's framing wait runs out before the
    first prompt, as for a user who does not step back (pad_eval's genuine users step back instead).

    ``t`` (frame counter) adds a slight hand shake (a few pixels); ``face is None`` gives an empty room (the
    phone not yet pointed at the face); ``gain`` below 1 is a dim room (every pixel scaled before the
    sensor noise). Pasting the face onto a synthetic room was tried first: MiniFASNet scored those
    composites as screens (the pasted frame's edges in its context crop), which is right, and they are not
    what a genuine camera sees.
    """
    from benchmarks.attacks import genuine_frame

    rng = np.random.default_rng(seed)
    room = _room(rng)

    def render(face: Image | None, t: int) -> Image:
        if face is None:
            out = room.astype(np.float32)
        else:
            frame = genuine_frame(face, CAMERA_SIZE)
            shake = np.float32([[1, 0, 3 * math.sin(t / 4.0)], [0, 1, 2 * math.cos(t / 5.0)]])
            out = cv2.warpAffine(frame, shake, CAMERA_SIZE, borderMode=cv2.BORDER_REFLECT).astype(np.float32)
        noise = rng.normal(0, NOISE_SIGMA, out.shape)
        return np.clip(out * gain + noise, 0, 255).astype(np.uint8)

    return render


def screen_replay_scene(seed: int = 5) -> Scene:
    """The same frames replayed on a phone screen held close to the camera (issue 12's attack).

    The synthesis is pad's, shared with ``benchmarks/pad_eval.py`` (:mod:`benchmarks.attacks`): a phone
    (bezel, rounded body, display tone curve and blue tint, sub-pixel stripes that the camera turns into
    moiré, a drifting specular glare) perspective-tilted in front of a room, moving with a hand tremor,
    then the phone camera's defocus, noise and JPEG. Held close: the phone is 75 % of the picture width
    (its top and bottom leave the picture), so the face on it is about as large as a genuine face.
    """
    from benchmarks.attacks import Camera as CameraSim
    from benchmarks.attacks import PhoneScreen

    rng = np.random.default_rng(seed)
    phone = PhoneScreen(rng, size=CAMERA_SIZE, width_frac=0.75)
    camera = CameraSim(rng)
    blank = np.zeros((64, 64, 3), np.uint8)  # the player before the clip starts: a black screen

    def render(face: Image | None, t: int) -> Image:
        return camera.shoot(phone.render(face if face is not None else blank))

    return render


def enter_clip(clips: Clips, scene: Scene, n: int = 12) -> list[Image]:
    """The face sliding into the picture from the right over ``n`` frames, then centred."""
    first = clips.frames["neutral"][0]
    out = []
    for k in range(n):
        frac = 1.0 - (k + 1) / n
        shift = round(frac * CAMERA_SIZE[0] * 0.7)
        pic = scene(first, k)
        empty = scene(None, k)
        moved = np.roll(pic, shift, axis=1)
        moved[:, :shift] = empty[:, :shift]
        out.append(moved)
    return out


def render_camera(clips: Clips, scene: Scene, quality: int = 90) -> dict[str, list[bytes]]:
    """Every clip rendered through ``scene`` as JPEG bytes (``empty`` and ``enter`` added)."""
    out: dict[str, list[bytes]] = {}
    t = 0

    def jpeg(img: Image) -> bytes:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        return buf.tobytes()

    for name, frames in clips.frames.items():
        rendered = []
        for f in frames:
            rendered.append(jpeg(scene(f, t)))
            t += 1
        out[name] = rendered
    out["empty"] = [jpeg(scene(None, k)) for k in range(4)]
    out["enter"] = [jpeg(img) for img in enter_clip(clips, scene)]
    return out


@dataclass(frozen=True)
class ActorPlan:
    """How the fake person behaves: reaction time to each prompt, when the face enters the picture."""

    reaction_ms: int = 2500
    face_enters_ms: int = 0  # ms after the camera opens; before that the scene is empty
    deny_camera_times: int = 0  # the first N getUserMedia calls fail with NotAllowedError
    acts: bool = True  # False: a person who does not follow the prompts (stays neutral)
    # True: each head motion is first done too small (the ``*_small`` clip), then in full ``hint_reaction_ms``
    # after the page shows an action hint for it (window.__actor.hints logs [ms, code, step] of every hint).
    weak_first: bool = False
    hint_reaction_ms: int = 1000
    # > 0: the page's voice is a stub (window.speechSynthesis replaced) whose every utterance takes this long, one
    # at a time, and ends with an "end" event (window.__actor.speech_ends logs [ms, text]); 0: the browser's own.
    speech_ms: int = 0
    # With weak_first and a stubbed voice: the full action comes hint_reaction_ms after the action hint's speech
    # ENDED (a person who needs to hear it), not after it was shown.
    hint_after_speech: bool = False
    # > 0 (with speech_ms): the stubbed getVoices() lists no voice until this long after the page's first action
    # hint is spoken, then lists one and fires "voiceschanged" (Android Chrome loads its list late and speaks
    # with its default voice meanwhile; so does the stub). Counted from that utterance so that, whatever the
    # machine's speed, the first hint meets an empty list (window.__actor.voices_listed: ms it filled).
    voices_late_ms: int = 0
    # With a stubbed voice (speech_ms > 0): how long the stub says these texts, (text, ms) pairs; other texts take
    # speech_ms (a slow voice says a long text for longer: e.g. espeak-ng's measured times, README hint_speech).
    speech_ms_by_text: tuple[tuple[str, int], ...] = ()
    # True (with a stubbed voice): the slow LISTENER (issue 12). Her first try at each prompt comes reaction_ms after
    # the prompt's speech ENDED, not after it appeared (she waits until the phone has said it); with weak_first her
    # full head motion comes hint_reaction_ms after the end of the first action hint's speech that the page queued
    # after her first try began (a hint shown or said before she tried is not about her try; she ignores it).
    # window.__actor logs on the camera's clock: prompt_ends [ms, step key, ms it appeared] (the prompt she heard
    # said), first_tries /
    # full_tries [ms, clip, step key(, the hint code she reacted to)], and (any stubbed voice) hint_ends [end ms, code,
    # step key, queued ms] of every hint said to its end. Default off: the other modes are unchanged.
    first_after_prompt_speech: bool = False
    # True (with a stubbed voice): cancel() fires its "error" events as Chrome does, after cancel() returned (in a
    # later task, so possibly after the page's next utterance began), with ``error`` "interrupted" for the utterance
    # being said and "canceled" for queued ones. Default off: synchronously, inside cancel(), as before.
    # Every stubbed voice logs window.__actor.utterances [began, ended, "end" | "cancel", text, hint code, step key]
    # on the camera's clock (ended: when it was said to its end or cancelled) and window.__actor.answers the camera
    # ms at which each chunk's answer (POST .../frames) reached the page.
    cancel_events_late: bool = False


ROUTE_PREFIX = "/__fakecam/"


def actor_init_script(clip_lengths: dict[str, int], fps: int, plan: ActorPlan) -> str:
    """JavaScript run before the page: replaces getUserMedia with the acting canvas stream.

    ``window.__actor.log`` records what was played when ([ms since camera open, clip, prompt]).
    """
    cfg = json.dumps({"clips": clip_lengths, "fps": fps, "reaction_ms": plan.reaction_ms,
                      "enter_ms": plan.face_enters_ms, "deny": plan.deny_camera_times,
                      "prefix": ROUTE_PREFIX, "actions": list(ACTIONS), "acts": plan.acts,
                      "weak": plan.weak_first, "hint_reaction_ms": plan.hint_reaction_ms,
                      "speech_ms": plan.speech_ms, "after_speech": plan.hint_after_speech,
                      "voices_late_ms": plan.voices_late_ms,
                      "speech_by_text": dict(plan.speech_ms_by_text),
                      "listener": plan.first_after_prompt_speech and plan.speech_ms > 0,
                      "cancel_late": plan.cancel_events_late})
    return _ACTOR_JS.replace("__CFG__", cfg)


_ACTOR_JS = r"""
(() => {
  const CFG = __CFG__;
  const actor = { log: [], calls: 0, opened: null, prompts: [], hints: [], spoken: [], speech_ends: [],
    voices_listed: null, first_tries: [], full_tries: [], prompt_ends: [], hint_ends: [], utterances: [],
    answers: [] };
  window.__actor = actor;
  let bitmaps = null;
  async function load() {
    const out = {};
    for (const [name, n] of Object.entries(CFG.clips)) {
      out[name] = [];
      for (let i = 0; i < n; i += 1) {
        const res = await fetch(`${CFG.prefix}${name}/${i}.jpg`);
        out[name].push(await createImageBitmap(await res.blob()));
      }
    }
    return out;
  }
  function startStream() {
    const canvas = document.createElement("canvas");
    canvas.width = bitmaps.empty[0].width;
    canvas.height = bitmaps.empty[0].height;
    const ctx = canvas.getContext("2d");
    const t0 = performance.now();
    actor.t0 = Math.round(t0);
    actor.opened = Date.now();
    let clip = CFG.enter_ms > 0 ? "empty" : "neutral";
    let k = 0;
    let queue = [];
    const play = (name) => { clip = name; k = 0; actor.log.push([Math.round(performance.now() - t0), name]); };
    if (CFG.enter_ms > 0) setTimeout(() => play("enter"), CFG.enter_ms);
    // React to each new prompt, reaction_ms after it appears.
    let seen = "";
    const watch = () => {
      const el = document.getElementById("challenge");
      if (!el) return;
      const name = el.dataset.challenge || "";
      const key = `${el.dataset.step || ""}:${name}`;
      if (key === seen) return;
      seen = key;
      if (!CFG.actions.includes(name)) return;
      actor.prompts.push([Math.round(performance.now() - t0), name]);
      const weak = CFG.weak && CFG.clips[`${name}_small`] !== undefined;
      retried = weak ? "" : key;
      if (CFG.listener) {
        // the slow listener: she tries only once the prompt's own utterance (queued as it appeared) has ended
        const text = (document.getElementById("challenge-text") || el).textContent;
        awaitingPrompt = { key, name, weak, text, since: performance.now() };
        tried = null;
        return;
      }
      if (CFG.acts) setTimeout(() => queue.push(weak ? `${name}_small` : name), CFG.reaction_ms);
    };
    // The slow listener's state: the prompt she waits to hear, and her first try (camera ms when it was queued).
    let awaitingPrompt = null;
    let tried = null; // {key, name, weak, at: performance.now() when the first try was queued}
    const listen = (u) => {
      const w = awaitingPrompt;
      if (w && u.text === w.text && u.__queued >= w.since - 100) {
        awaitingPrompt = null;
        actor.prompt_ends.push([Math.round(performance.now() - t0), w.key, Math.round(w.since - t0)]);
        setTimeout(() => {
          if (seen !== w.key || !CFG.acts) return;
          const clip = w.weak ? `${w.name}_small` : w.name;
          tried = { key: w.key, name: w.name, weak: w.weak, at: performance.now() };
          actor.first_tries.push([Math.round(tried.at - t0), clip, w.key]);
          queue.push(clip);
        }, CFG.reaction_ms);
        return;
      }
      const tr = tried;
      if (!CFG.weak || !tr || !tr.weak || retried === tr.key || seen !== tr.key || u.__key !== tr.key) return;
      if (!ACTION_HINTS.includes(u.__hint || "") || u.__queued < tr.at) return;
      retried = tr.key;
      setTimeout(() => {
        if (seen !== tr.key) return;
        actor.full_tries.push([Math.round(performance.now() - t0), tr.name, tr.key, u.__hint]);
        queue.push(tr.name);
      }, CFG.hint_reaction_ms);
    };
    // A first try too small: the full action once the page shows an action hint for this step.
    let retried = "";
    let lastHint = "";
    const watchHint = () => {
      const el = document.getElementById("hint");
      const ch = document.getElementById("challenge");
      if (!el || !ch) return;
      const code = el.dataset.hint || "";
      const key = `${ch.dataset.step || ""}:${ch.dataset.challenge || ""}`;
      const at = Math.round(performance.now() - t0);
      if (code && code !== lastHint) actor.hints.push([at, code, ch.dataset.step || ""]);
      lastHint = code;
      if (!CFG.weak || !CFG.acts || CFG.listener || retried === key || !ACTION_HINTS.includes(code)) return;
      retried = key;
      const name = ch.dataset.challenge;
      if (CFG.after_speech && CFG.speech_ms > 0) {
        // wait until the hint's own utterance (begun after it was shown) has been said to its end
        awaitingSpeech = { name, text: el.textContent, since: performance.now() };
        return;
      }
      setTimeout(() => queue.push(name), CFG.hint_reaction_ms);
    };
    let awaitingSpeech = null;
    actor.onSpeechEnd = (u) => {
      if (CFG.listener) return listen(u);
      const w = awaitingSpeech;
      // the hint's own utterance: queued when it was shown (the page speaks it in the same task), not before
      if (!w || u.__queued < w.since - 100 || u.text !== w.text) return;
      awaitingSpeech = null;
      setTimeout(() => queue.push(w.name), CFG.hint_reaction_ms);
    };
    const ACTION_HINTS = ["TURN_MORE", "DO_ACTION", "NOD_MORE", "BLINK_FIRMLY", "OPEN_WIDER"]; // too small
    new MutationObserver(() => { watch(); watchHint(); }).observe(document.documentElement,
      { subtree: true, attributes: true, attributeFilter: ["data-challenge", "data-step", "data-hint"] });
    const tick = () => {
      const frames = bitmaps[clip];
      if (k >= frames.length) {
        if (clip === "neutral" || clip === "empty") k = 0;
        else play("neutral");
      }
      if ((clip === "neutral" || clip === "empty") && queue.length && clip !== "empty") play(queue.shift());
      ctx.drawImage(bitmaps[clip][k], 0, 0);
      k += 1;
    };
    setInterval(tick, 1000 / CFG.fps);
    tick();
    return canvas.captureStream(CFG.fps);
  }
  // What the page says aloud ([ms since the page loaded, text]: minus actor.t0 for the camera's clock).
  if (CFG.speech_ms > 0) {
    // A slow voice: utterances queue and each ends CFG.speech_ms (or its text's CFG.speech_by_text) after it began;
    // cancel() ends them with "error".
    class Utterance extends EventTarget {
      constructor(text) {
        super();
        Object.assign(this, { text: String(text), lang: "", rate: 1, pitch: 1, volume: 1, voice: null });
      }
    }
    const queued = [];
    let current = null;
    const cam = (ms) => Math.round(ms - (actor.t0 || 0));
    const logUtterance = (u, how) => actor.utterances.push([u.__began === undefined ? null : cam(u.__began),
      cam(performance.now()), how, u.text, u.__hint, u.__key]);
    const next = () => {
      if (current || !queued.length) return;
      const u = queued.shift();
      current = u;
      u.__began = performance.now();
      u.__timer = setTimeout(() => {
        current = null;
        actor.speech_ends.push([Math.round(performance.now()), u.text]);
        logUtterance(u, "end");
        if (u.__hint) {  // an action hint said to its end: [end, code, step key, queued] on the camera's clock
          const c = (ms) => Math.round(ms - (actor.t0 || 0));
          actor.hint_ends.push([c(performance.now()), u.__hint, u.__key, c(u.__queued)]);
        }
        u.dispatchEvent(new Event("end"));
        if (actor.onSpeechEnd) actor.onSpeechEnd(u);
        next();
      }, CFG.speech_by_text[u.text] !== undefined ? CFG.speech_by_text[u.text] : CFG.speech_ms);
    };
    // Voices listed late (CFG.voices_late_ms): none until that long after the first action hint is spoken.
    const ACTION_HINT_CODES = ["TURN_MORE", "LOOK_BACK", "DO_ACTION", "BLINK_FIRMLY", "OPEN_WIDER", "NOD_MORE",
      "LOOK_UP"];
    const events = new EventTarget();
    let voices = [{ lang: "zh-CN", name: "slow test voice", voiceURI: "slow", default: true }];
    if (CFG.voices_late_ms > 0) {
      const listed = voices;
      voices = [];
      actor.onActionHint = () => {
        actor.onActionHint = null;
        setTimeout(() => {
          voices = listed;
          actor.voices_listed = Math.round(performance.now());
          const ev = new Event("voiceschanged");
          events.dispatchEvent(ev);
          if (typeof synth.onvoiceschanged === "function") synth.onvoiceschanged(ev);
        }, CFG.voices_late_ms);
      };
    }
    const synth = {
      get speaking() { return current !== null; },
      get pending() { return queued.length > 0; },
      paused: false,
      onvoiceschanged: null,
      getVoices: () => voices.slice(),
      speak(u) {
        const hint = document.getElementById("hint");
        if (actor.onActionHint && hint && ACTION_HINT_CODES.includes(hint.dataset.hint || "")
            && u.text === hint.textContent) actor.onActionHint();
        u.__queued = performance.now();
        // which action hint (if any) this is, and in which step (the slow listener reacts to what she hears)
        const ch = document.getElementById("challenge");
        u.__hint = hint && u.text === hint.textContent ? hint.dataset.hint || "" : "";
        u.__key = ch ? `${ch.dataset.step || ""}:${ch.dataset.challenge || ""}` : "";
        actor.spoken.push([Math.round(u.__queued), u.text]);
        queued.push(u);
        next();
      },
      cancel() {
        const gone = (current ? [current] : []).concat(queued.splice(0));
        if (current) clearTimeout(current.__timer);
        const was = current;
        current = null;
        for (const u of gone) {
          logUtterance(u, "cancel");
          const ev = new Event("error");
          ev.error = u === was ? "interrupted" : "canceled";
          if (CFG.cancel_late) setTimeout(() => u.dispatchEvent(ev), 0);
          else u.dispatchEvent(ev);
        }
      },
      pause() {},
      resume() {},
      addEventListener: (...a) => events.addEventListener(...a),
      removeEventListener: (...a) => events.removeEventListener(...a),
    };
    Object.defineProperty(window, "speechSynthesis", { configurable: true, get: () => synth });
    window.SpeechSynthesisUtterance = Utterance;
    // when each chunk's answer reached the page (the page then reads it and shows its hints)
    const fetch0 = window.fetch.bind(window);
    window.fetch = async (input, init) => {
      const res = await fetch0(input, init);
      const url = typeof input === "string" ? input : input.url;
      const chunk = /\/steps\/\d+\/frames$/.test(url) && init && init.method === "POST";
      if (chunk) actor.answers.push(cam(performance.now()));
      return res;
    };
  } else if (window.speechSynthesis && typeof window.speechSynthesis.speak === "function") {
    const synth = window.speechSynthesis;
    const speak = synth.speak.bind(synth);
    synth.speak = (u) => { actor.spoken.push([Math.round(performance.now()), u.text]); return speak(u); };
  }
  const md = navigator.mediaDevices;
  md.getUserMedia = async (constraints) => {
    actor.calls += 1;
    if (actor.calls <= CFG.deny) throw new DOMException("Permission denied", "NotAllowedError");
    if (!bitmaps) bitmaps = await load();
    return startStream();
  };
})();
"""
