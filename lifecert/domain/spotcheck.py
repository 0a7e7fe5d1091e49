"""Caseworker spot checks (抽查) of CONFIRMED face verifications: whether a confirmed session is
also put in front of a person, and why. Plain data, no I/O.

The confirmation stands either way (the pensioner is told nothing); a spot check only opens a case
of its own queue (:class:`lifecert.domain.cases.SpotCheck`). Two reasons today:

- ``PAD_GREY_BAND``: PAD ran and the session's fused P(real) lies in [PAD threshold, ``pad_below``):
  high enough to pass, low enough that the replays PAD lets through mostly sit there
  (benchmarks/README.md "PAD audit band" measures the band and what it costs);
- ``RANDOM_SAMPLE``: a uniform draw in [0, 1) below ``sample_rate``, which catches what no model
  scores low;
- ``STILL_CHIN``: the open_mouth step's lips parted while the chin stayed put (lifecert/engine/jaw.py),
  what a printed photo with the mouth cut out shows. Not a refusal: real people who part their lips
  without dropping the jaw (small speech-like openings) read the same (benchmarks/README.md ``jaw``);
- ``JAW_UNREAD``: the open_mouth step was seen but the jaw test could not read it (the lips parted too little
  for it, or no closed-mouth frame to compare with): otherwise a cut-out print opened just enough would pass
  unlooked-at (1 of 600 synthetic cut-out sessions did); no genuine session kept on this machine (484 with a
  seen open_mouth step) was left unread.

A later reason (e.g. the first confirmation after enrollment) is one more member of
:class:`SpotCheckReason` and one more test in :meth:`SpotCheckPolicy.reasons`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lifecert.domain.errors import ErrorCode, LifecertError


class SpotCheckReason(StrEnum):
    """Why a confirmed session was spot-checked (``review_case.reason`` holds the first)."""

    PAD_GREY_BAND = "PAD_GREY_BAND"
    RANDOM_SAMPLE = "RANDOM_SAMPLE"
    STILL_CHIN = "STILL_CHIN"
    JAW_UNREAD = "JAW_UNREAD"


def pad_score_of(scores: Mapping[str, Any]) -> float | None:
    """The session's fused PAD P(real) from its analysis record (``scores["pad"]["score"]``, the dict
    the verification rules write); None when PAD did not score the session."""
    pad = scores.get("pad")
    value = pad.get("score") if isinstance(pad, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _jaw_of(scores: Mapping[str, Any]) -> Mapping[str, Any]:
    liveness = scores.get("liveness")
    jaw = liveness.get("jaw") if isinstance(liveness, Mapping) else None
    return jaw if isinstance(jaw, Mapping) else {}


def still_chin_of(scores: Mapping[str, Any]) -> bool:
    """Whether the session's jaw test (``scores["liveness"]["jaw"]``, engine/jaw.py) saw the lips part over a
    still chin; False where it abstained or did not run."""
    return _jaw_of(scores).get("still_chin") is True


def jaw_unread_of(scores: Mapping[str, Any]) -> bool:
    """Whether the session's open_mouth step was seen but its jaw test abstained (``decided`` False)."""
    jaw = _jaw_of(scores)
    return jaw.get("step_seen") is True and jaw.get("decided") is False


def _bad(message: str) -> LifecertError:
    return LifecertError(message, code=ErrorCode.CONFIG_ERROR)


@dataclass(frozen=True, slots=True)
class SpotCheckPolicy:
    """``sample_rate``: share of confirmations drawn at random (0 disables, 1 checks all).
    ``pad_threshold``: PAD's calibrated session threshold, None when PAD is off.
    ``pad_below``: upper end of the grey band (exclusive), None for no band; it must lie in
    (``pad_threshold``, 1]. ``band_source`` says where ``pad_below`` came from (for logs)."""

    sample_rate: float = 0.02
    pad_threshold: float | None = None
    pad_below: float | None = None
    band_source: str = ""

    def __post_init__(self) -> None:
        if not (isinstance(self.sample_rate, int | float) and 0.0 <= self.sample_rate <= 1.0):
            raise _bad(f"the spot-check sample rate must lie in [0, 1], not {self.sample_rate!r}")
        if self.pad_below is None:
            return
        where = f" ({self.band_source})" if self.band_source else ""
        if self.pad_threshold is None:
            raise _bad(f"a PAD grey band{where} needs PAD: no PAD threshold is in force")
        if not (math.isfinite(self.pad_below) and self.pad_threshold < self.pad_below <= 1.0):
            raise _bad(f"the PAD grey band's upper end{where} must lie above the PAD threshold "
                       f"{self.pad_threshold} and at most 1, not {self.pad_below!r}")

    @property
    def band(self) -> tuple[float, float] | None:
        """The grey band [low, high) of fused PAD scores, or None when there is none."""
        if self.pad_below is None or self.pad_threshold is None:
            return None
        return (self.pad_threshold, self.pad_below)

    def reasons(self, pad_score: float | None, draw: float, still_chin: bool = False, jaw_unread: bool = False
                ) -> tuple[SpotCheckReason, ...]:
        """Why a CONFIRMED session is spot-checked ((): it is not), most telling first.

        ``pad_score``: the session's fused PAD P(real), None when PAD did not score it.
        ``still_chin``: the jaw test's verdict (:func:`still_chin_of`); ``jaw_unread``: it could not read a seen
        opening (:func:`jaw_unread_of`).
        ``draw``: one uniform draw in [0, 1), made for every confirmed session whatever the result
        (so the work done does not depend on the score)."""
        if not 0.0 <= draw < 1.0:
            raise ValueError(f"draw must lie in [0, 1), not {draw!r}")
        out: list[SpotCheckReason] = [SpotCheckReason.STILL_CHIN] if still_chin else []
        if jaw_unread:
            out.append(SpotCheckReason.JAW_UNREAD)
        band = self.band
        if band is not None and pad_score is not None and band[0] <= pad_score < band[1]:
            out.append(SpotCheckReason.PAD_GREY_BAND)
        if draw < self.sample_rate:
            out.append(SpotCheckReason.RANDOM_SAMPLE)
        return tuple(out)

    def describe(self) -> str:
        """One line for the start-up log."""
        sample = f"random sample {self.sample_rate:.1%}" if self.sample_rate > 0 else "no random sample"
        band = self.band
        if band is None:
            why = "PAD is off" if self.pad_threshold is None else "no audit_below for the PAD pack"
            return f"spot checks: {sample}; no PAD grey band ({why})"
        return f"spot checks: {sample}; PAD grey band [{band[0]:.4f}, {band[1]:.4f}) from {self.band_source}"
