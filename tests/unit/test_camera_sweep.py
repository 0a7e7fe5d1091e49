"""benchmarks/camera_sweep.py: the synthetic camera's framing, frame delivery and page encoding (plain data)."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from benchmarks import camera_sweep as cs
from tests.paced_client import Answer, Step


def test_given_a_landscape_frame_when_the_page_previews_it_then_only_its_central_three_quarter_box_shows() -> None:
    assert cs.visible_box((640, 480)) == (140.0, 0.0, 360.0, 480.0)
    assert cs.visible_box((480, 640)) == (0.0, 0.0, 480.0, 640.0)
    assert cs.visible_box((720, 1280)) == (0.0, 160.0, 720.0, 960.0)


@pytest.mark.parametrize("size", [(320, 240), (480, 640), (720, 1280)])
def test_given_a_face_share_when_framed_then_the_box_has_that_share_of_the_visible_width_at_the_oval(
        size: tuple[int, int]) -> None:
    box = np.array([100.0, 50.0, 300.0, 290.0])
    fr = cs.Framing.place(size, box, 0.6, (0.0, 0.0))
    out = fr.box(box)
    x0, y0, vw, vh = cs.visible_box(size)
    assert (out[2] - out[0]) / vw == pytest.approx(0.6)
    assert (out[0] + out[2]) / 2 == pytest.approx(x0 + vw / 2)
    assert (out[1] + out[3]) / 2 == pytest.approx(y0 + vh * cs.OVAL_CY)


def test_given_a_small_clip_frame_when_framed_then_the_frame_has_the_size_and_the_clip_inside_unchanged() -> None:
    rng = np.random.default_rng(0)
    src = np.asarray(cv2.GaussianBlur((rng.random((200, 200, 3)) * 255).astype(np.uint8), (0, 0), 3), np.uint8)
    fr = cs.Framing(size=(480, 640), scale=1.0, dx=140.0, dy=200.0)
    img = fr.frame(src)
    assert img.shape == (640, 480, 3)
    centre = img[260:340, 200:280].astype(int) - src[60:140, 60:140].astype(int)
    assert np.abs(centre).max() <= 1  # the seam's feathering reaches only the clip frame's edge


def test_given_a_camera_at_5_fps_when_the_page_grabs_at_8_then_it_gets_the_newest_delivered_frame() -> None:
    grabs = [cs.delivered_at(t, 5.0, 0.0) for t in range(0, 1000, 125)]
    assert grabs == [0.0, 0.0, 200.0, 200.0, 400.0, 600.0, 600.0, 800.0]


def test_given_a_pinned_draw_when_grabs_are_lost_in_bursts_then_about_the_share_is_lost_in_runs() -> None:
    lost = cs.lost_grabs(np.random.default_rng(5), 20_000)
    assert 0.27 < sum(lost) / len(lost) < 0.33
    runs, run = [], 0
    for x in lost:
        if x:
            run += 1
        elif run:
            runs.append(run)
            run = 0
    assert 2.6 < float(np.mean(runs)) < 3.4


def test_given_a_720x1280_frame_when_the_page_encodes_it_then_its_long_side_is_640() -> None:
    data = cs.page_jpeg(np.zeros((1280, 720, 3), np.uint8))
    img = np.asarray(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))
    assert img.shape[:2] == (640, 360)
    small = np.asarray(cv2.imdecode(np.frombuffer(cs.page_jpeg(np.zeros((240, 320, 3), np.uint8)), np.uint8),
                                    cv2.IMREAD_COLOR))
    assert small.shape[:2] == (240, 320)


class _Actor:
    def __init__(self) -> None:
        self.prompts: list[int] = []

    def shot(self, t: int) -> int:
        return t


def _phone(cond: cs.Cond, sent: list[tuple[list[int], list[bytes]]]) -> cs.CameraPhone:
    def send(step: int, nonce: str, ts: list[int], frames: list[bytes], sent_ms: int) -> Answer:
        sent.append((ts, frames))
        return Answer("capturing", "pending", [], None, None)

    first = Step(0, "settle", None, "n0")
    clock = type("C", (), {"wait_until": lambda s, t: None, "before_send": lambda s, t: None,
                           "sent_ms": lambda s, t: t, "answer_at": lambda s, t: t, "instant": True})()
    return cs.CameraPhone(send, first, clock, _Actor(), lambda shot, when: str(shot).encode(),  # type: ignore[arg-type]
                          cond, np.random.default_rng(2), "s")


def test_given_a_5_fps_camera_when_the_phone_captures_at_8_then_frames_repeat_and_times_do_not() -> None:
    sent: list[tuple[list[int], list[bytes]]] = []
    phone = _phone(cs.COND_BY_NAME["camera5"], sent)
    for _ in range(40):
        phone.tick()
    ts = [t for s, _ in sent for t in s]
    frames = [f for _, fs in sent for f in fs]
    assert ts == sorted(set(ts)) and len(ts) >= 24
    assert len(set(frames)) < len(frames)  # the page sent some delivered frames twice
    shown = sorted({int(f) for f in frames})
    assert all(b - a >= 199 for a, b in itertools.pairwise(shown))  # 5 fps apart


def test_given_lost_grabs_when_the_phone_captures_then_fewer_frames_go_out_at_irregular_times() -> None:
    sent: list[tuple[list[int], list[bytes]]] = []
    phone = _phone(cs.COND_BY_NAME["lost30"], sent)
    for _ in range(80):
        phone.tick()
    ts = [t for s, _ in sent for t in s]
    assert phone.lost_count > 0 and phone.captured + phone.lost_count == 80
    assert len({b - a for a, b in itertools.pairwise(ts)}) > 1
