"""The accuracy harness on real faces through the real engine (a small slice of pairs.csv)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from lifecert.config import Settings
from lifecert.engine.base import FaceEngine
from lifecert.services import evaluation as ev


def _balanced_slice(faces_dir: Path, out: Path, n_each: int = 20) -> Path:
    """The first ``n_each`` genuine and ``n_each`` impostor rows of pairs.csv (the file lists
    its 38 genuine pairs first, so its first 40 rows alone would be almost all genuine)."""
    with (faces_dir / "pairs.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    same = [r for r in rows if r["same"] == "1"][:n_each]
    diff = [r for r in rows if r["same"] == "0"][::7][:n_each]
    with out.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["file_a", "file_b", "same"])
        w.writeheader()
        for a, b in zip(same, diff, strict=True):
            w.writerow(a)
            w.writerow(b)
    return out


def test_given_real_face_pairs_when_harness_runs_then_accuracy_far_above_chance(
    faces_dir: Path, face_engine: FaceEngine, tmp_path: Path
):
    pairs_file = _balanced_slice(faces_dir, tmp_path / "pairs.csv")
    run = ev.run_protocol(pairs_file, Settings(), root=faces_dir, engine=face_engine, workers=1, folds=5)
    r = run.report

    assert r["pairs"] == 40
    detected = r["headline"]["views"]["detected"]
    assert detected["genuine"] + detected["impostor"] + detected["pairs_forced_wrong"] == 40
    assert detected["accuracy_mean"] >= 0.85  # chance is 0.5 on this balanced slice
    assert detected["eer"] < 0.15
    # 20 impostor pairs cannot express FAR 1e-2 and below: said explicitly, no number invented
    assert all(t["tar"] is None and ev.NOT_ENOUGH in t["note"] for t in detected["tar_at_far"])
    assert 0 <= r["fte"]["fte"] <= r["fte"]["images"]
    assert r["fte"]["fte"] == r["fte"]["undetected"] + r["fte"]["quality_gate_failures"]
    assert len(r["manifest_sha256"]) == 64
    assert r["machine"]["nproc"] >= 1


def test_given_one_image_when_processed_twice_then_identical_embeddings(faces_dir: Path, face_engine: FaceEngine):
    img = next(iter(sorted((faces_dir / "photos").glob("deepface_p03/*.jpg"))))
    a = ev.process_image(face_engine, img, Settings())
    b = ev.process_image(face_engine, img, Settings())
    assert a.detected and b.detected
    assert a.embedding is not None and b.embedding is not None
    assert (a.embedding == b.embedding).all()
    assert a.views is not None and (a.views == b.views).all()
    # default settings: the enrolled and probe profiles' views, the plain crop first
    assert a.view_names[:2] == ("id", "mirror") and len(a.view_names) == a.views.shape[0]
    mirror = a.views[a.view_names.index("mirror")]
    # the mirrored crop is the same person: high but not identical similarity
    assert 0.8 < float(a.embedding @ mirror) < 1.0
    # a profile's vector is the normalised mean of its views, as the engine computes it in production
    from lifecert.engine.image import read_image_file

    image = read_image_file(img)
    face = face_engine.detect(image)[0]
    for profile in ("single", "flip", "jitter"):
        assert np.allclose(a.vector(profile), face_engine.embed(image, face, profile=profile), atol=1e-5)


def test_given_missing_image_when_processed_then_failure_to_enrol_not_crash(face_engine: FaceEngine, tmp_path: Path):
    r = ev.process_image(face_engine, tmp_path / "nope.jpg", Settings())
    assert r.error == "FILE_MISSING"
    assert not r.detected and not r.enrolled
