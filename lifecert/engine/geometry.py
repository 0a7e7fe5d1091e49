"""Landmark geometry: head pose, eye and mouth aspect ratios, quality of an aligned crop.

All functions take landmarks in the iBUG 68-point order, (68, 2) float arrays in
source-image pixels, unless said otherwise.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray


def five_from_68(lm68: NDArray[np.float32]) -> NDArray[np.float32]:
    """ArcFace-order 5 points from 68: eye centres (image-left first), nose tip, mouth corners."""
    return np.array(
        [
            lm68[36:42].mean(axis=0),
            lm68[42:48].mean(axis=0),
            lm68[30],
            lm68[48],
            lm68[54],
        ],
        dtype=np.float32,
    )


def head_pose(lm68: NDArray[np.float32], image_size: tuple[int, int]) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees; signs as documented on :class:`lifecert.domain.quality.Quality`.

    Estimated from 2D landmark ratios, not PnP: with a generic head model and an
    unknown focal length, PnP overestimated yaw by ~30° on frontal LFW faces, while
    the ratios are stable and the same cues drive the liveness challenges.
    ``image_size`` (h, w) is accepted for engines that know their camera.
    """
    return _pose_from_2d(lm68)


def _angle_diff(a: float, b: float) -> float:
    return (a - b + 180.0) % 360.0 - 180.0


def eye_line_roll(lm68: NDArray[np.float32]) -> float:
    """Angle of the line from the image-left eye to the image-right eye (degrees, clockwise > 0)."""
    left_eye = lm68[36:42].mean(axis=0)
    right_eye = lm68[42:48].mean(axis=0)
    return math.degrees(math.atan2(right_eye[1] - left_eye[1], right_eye[0] - left_eye[0]))


PITCH_NEUTRAL = 0.29  # pitch_ratio of a level face (median over 150 frontal LFW photos)


def _pose_from_2d(lm68: NDArray[np.float32]) -> tuple[float, float, float]:
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, yaw_ratio(lm68)))))
    # pitch_ratio is ~0.29 for a level face; it shrinks looking up and grows looking down.
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, (PITCH_NEUTRAL - pitch_ratio(lm68)) / 0.3))))
    return yaw, pitch, eye_line_roll(lm68)


def yaw_ratio(lm68: NDArray[np.float32]) -> float:
    """Nose offset from the face midline, in half face widths (-1..1; > 0: toward image right).

    A cheap 2D cue that needs no camera model; robust for challenge detection.
    """
    left = lm68[0:3].mean(axis=0)
    right = lm68[14:17].mean(axis=0)
    mid = (left + right) / 2
    half = max(float(np.linalg.norm(right - left)) / 2, 1e-6)
    return float((lm68[30][0] - mid[0]) / half)


def pitch_ratio(lm68: NDArray[np.float32]) -> float:
    """Nose tip height between eye line and chin, normalised; grows when looking down."""
    eyes = (lm68[36:42].mean(axis=0) + lm68[42:48].mean(axis=0)) / 2
    chin = lm68[8]
    span = max(float(chin[1] - eyes[1]), 1e-6)
    return float((lm68[30][1] - eyes[1]) / span)


def eye_aspect_ratio(lm68: NDArray[np.float32]) -> float:
    """Mean eye aspect ratio (Soukupová & Čech 2016) of both eyes."""

    def ear(e: NDArray[np.float32]) -> float:
        a = np.linalg.norm(e[1] - e[5])
        b = np.linalg.norm(e[2] - e[4])
        c = max(float(np.linalg.norm(e[0] - e[3])), 1e-6)
        return float((a + b) / (2.0 * c))

    return (ear(lm68[36:42]) + ear(lm68[42:48])) / 2.0


def mouth_aspect_ratio(lm68: NDArray[np.float32]) -> float:
    """Inner-lip opening over mouth width (points 60-67)."""
    m = lm68[60:68]
    opening = (np.linalg.norm(m[1] - m[7]) + np.linalg.norm(m[2] - m[6]) + np.linalg.norm(m[3] - m[5])) / 3
    width = max(float(np.linalg.norm(m[0] - m[4])), 1e-6)
    return float(opening / width)


def crop_stats(aligned_bgr: NDArray[np.uint8]) -> tuple[float, float, float]:
    """(sharpness, brightness, contrast) of an aligned face crop.

    Sharpness is the variance of the Laplacian over the central region (hair and
    background excluded), measured at the fixed crop size so it is comparable
    across source resolutions.
    """
    grey = cv2.cvtColor(aligned_bgr, cv2.COLOR_BGR2GRAY)
    h, w = grey.shape
    core = grey[h // 5 : h - h // 10, w // 6 : w - w // 6]
    sharp = float(cv2.Laplacian(core, cv2.CV_64F).var())
    return sharp, float(core.mean()), float(core.std())


def similarity_transform(src: NDArray[np.floating], dst: NDArray[np.floating]) -> NDArray[np.float64]:
    """Least-squares similarity (rotation, uniform scale, translation) mapping (N, 2)
    ``src`` points onto ``dst`` (Umeyama 1991). Returns the 2x3 affine matrix."""
    s = np.asarray(src, dtype=np.float64)
    d = np.asarray(dst, dtype=np.float64)
    sm, dm = s.mean(axis=0), d.mean(axis=0)
    sc, dc = s - sm, d - dm
    cov = dc.T @ sc / len(s)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(cov) < 0:
        sign[-1] = -1.0
    rot = u @ np.diag(sign) @ vt
    var = float((sc**2).sum() / len(s))
    scale = float((sig * sign).sum() / max(var, 1e-12))
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = dm - scale * rot @ sm
    return m


def face_width(lm: NDArray[np.floating]) -> float:
    """Jaw end to jaw end (68-point landmarks 0 and 16), pixels; never 0 (the scale of motion thresholds)."""
    return max(float(np.linalg.norm(lm[16] - lm[0])), 1e-6)
