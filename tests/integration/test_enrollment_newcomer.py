"""What a newcomer meets first: demo manifests, small batches, progress rates."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from enrollment.job import JobOptions, run_job
from enrollment.manifest import synth_manifest
from lifecert.domain.idnumber import parse_id_number
from lifecert.services.context import AppContext
from tests.integration.test_enrollment_job import ids, write_manifest


def _people(root: Path, names: list[str], photo: Path) -> Path:
    for n in names:
        (root / n).mkdir(parents=True)
        (root / n / "1.jpg").write_bytes(photo.read_bytes())
    return root


def _ids(path: Path) -> dict[str, str]:
    with path.open(encoding="utf-8-sig") as fh:
        return {r["name"]: r["id_number"] for r in csv.DictReader(fh)}


def test_given_two_folders_when_manifests_are_synthesised_then_ids_are_valid_stable_and_do_not_collide(
    faces_dir: Path, tmp_path: Path
) -> None:
    photo = sorted(sorted((faces_dir / "lfw" / "images").iterdir())[0].glob("*.jpg"))[0]
    names = [f"p{i}" for i in range(60)]
    a = _people(tmp_path / "demo-a", names, photo)
    b = _people(tmp_path / "demo-b", names, photo)
    n, seed = synth_manifest(a, tmp_path / "a.csv")
    assert (n, seed) == (60, "demo-a")
    synth_manifest(b, tmp_path / "b.csv")
    ida, idb = _ids(tmp_path / "a.csv"), _ids(tmp_path / "b.csv")
    assert len(set(ida.values())) == 60 and all(parse_id_number(v).value == v for v in ida.values())
    assert not set(ida.values()) & set(idb.values())
    synth_manifest(a, tmp_path / "a2.csv")
    assert _ids(tmp_path / "a2.csv") == ida  # the same folder, the same manifest
    synth_manifest(b, tmp_path / "b2.csv", seed="demo-a")
    assert _ids(tmp_path / "b2.csv") == ida  # the seed, not the path, decides


def test_given_a_small_batch_and_a_rerun_when_enrolled_then_in_process_and_rate_counts_only_assessed_photos(
    ctx: AppContext, faces_dir: Path, tmp_path: Path
) -> None:
    people = sorted((faces_dir / "lfw" / "images").iterdir())[:3]
    folder = tmp_path / "photos"
    folder.mkdir()
    rows = []
    for i, (d, idn) in enumerate(zip(people, ids(3), strict=True)):
        (folder / f"{i}.jpg").write_bytes(sorted(d.glob("*.jpg"))[0].read_bytes())
        rows.append((idn, f"人{i}", f"{i}.jpg"))
    man = write_manifest(folder, rows)
    calls: list[tuple[int, int, int]] = []
    first = run_job(ctx, folder, man, JobOptions(workers=2, on_progress=lambda *a: calls.append(a)))
    assert json.loads(first.reports["json"].read_text(encoding="utf-8"))["workers"] == 0  # no pool for 3 rows
    assert calls[-1] == (3, 3, 3)
    calls.clear()
    second = run_job(ctx, folder, man, JobOptions(workers=2, on_progress=lambda *a: calls.append(a)))
    assert second.counts["ALREADY_ENROLLED"] == first.counts["ENROLLED"]
    assert calls[-1][2] == 3 - first.counts["ENROLLED"]  # skipped rows are done, not assessed
