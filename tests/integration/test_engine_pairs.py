"""The default engine on real labelled pairs, against the manifest's calibrated threshold."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from lifecert.config import Settings
from lifecert.domain.quality import gate
from lifecert.engine.base import FaceEngine
from lifecert.engine.image import read_image_file
from lifecert.engine.manifest import model_info


def test_given_labelled_pairs_when_compared_then_same_people_score_above_threshold_and_others_below(
    faces_dir: Path, face_engine: FaceEngine
) -> None:
    threshold = model_info("dlib").threshold("verify")
    with (faces_dir / "pairs.csv").open(encoding="utf-8") as fh:
        pairs = list(csv.DictReader(fh))
    # a balanced slice: the first 40 genuine and 40 impostor pairs
    same = [p for p in pairs if p["same"] == "1"][:40]
    diff = [p for p in pairs if p["same"] != "1"][:40]
    cache: dict[str, np.ndarray | None] = {}

    def emb(rel: str) -> np.ndarray | None:
        if rel not in cache:
            img = read_image_file(faces_dir / rel)
            faces = face_engine.analyze(img, max_faces=1)
            cache[rel] = faces[0].embedding if faces else None
        return cache[rel]

    def scores(ps: list[dict[str, str]]) -> list[float]:
        out = []
        for p in ps:
            a, b = emb(p["file_a"]), emb(p["file_b"])
            if a is not None and b is not None:
                out.append(float(np.dot(a, b)))
        return out

    g, i = np.array(scores(same)), np.array(scores(diff))
    assert len(g) >= 36 and len(i) >= 36  # nearly all photos have a detectable face
    assert (g >= threshold).mean() >= 0.9, sorted(g)[:5]
    assert (i < threshold).mean() >= 0.95, sorted(i)[-5:]
    assert g.mean() > threshold > i.mean()


def test_given_enrollment_quality_gates_when_applied_to_frontal_photos_then_most_pass(
    faces_dir: Path, face_engine: FaceEngine
) -> None:
    gates = Settings().quality
    people = sorted((faces_dir / "lfw" / "images").iterdir())[:30]
    passed = 0
    for d in people:
        img = read_image_file(sorted(d.glob("*.jpg"))[0])
        faces = face_engine.analyze(img, embed=False)
        if faces and gate(faces[0].quality, gates) is None:
            passed += 1
    assert passed >= 25  # LFW is uncontrolled press photos; ID photos pass at a higher rate


def test_given_one_engine_shared_by_threads_when_used_concurrently_then_results_equal_serial(
    faces_dir: Path, face_engine: FaceEngine
) -> None:
    import threading

    images = [read_image_file(sorted(d.glob("*.jpg"))[0]) for d in sorted((faces_dir / "lfw" / "images").iterdir())[:6]]
    serial = [face_engine.analyze(img)[0].embedding for img in images]
    mismatches: list[int] = []

    def work() -> None:
        for k, img in enumerate(images):
            got = face_engine.analyze(img)[0].embedding
            if got is None or not np.allclose(got, serial[k], atol=1e-5):
                mismatches.append(k)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert mismatches == []
