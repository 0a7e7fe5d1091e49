"""Reading pair protocols: LFW ``pairs.txt`` and CSV (file_a,file_b,same)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from lifecert.domain.errors import ErrorCode, LifecertError


@dataclass(frozen=True, slots=True)
class Pair:
    """Two image paths, whether they show the same person, and the fold the pair belongs to."""

    a: Path
    b: Path
    same: bool
    fold: int


def _lfw_path(root: Path, name: str, idx: str) -> Path:
    return root / "images" / name / f"{name}_{int(idx):04d}.jpg"


def read_lfw_pairs(path: Path, root: Path | None = None) -> list[Pair]:
    """LFW View-2 ``pairs.txt``: header ``<folds>\\t<n>``, then per fold ``n`` same-person
    lines ``name i j`` and ``n`` different-person lines ``name1 i name2 j``.
    Images are ``<root>/images/<name>/<name>_<iiii>.jpg`` (root defaults to the file's folder)."""
    root = root or path.parent
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    if not lines or len(lines[0]) != 2:
        raise LifecertError(
            f"{path.name}: first line must be '<folds> <pairs per half-fold>'", code=ErrorCode.BAD_REQUEST
        )
    folds, n = int(lines[0][0]), int(lines[0][1])
    body = lines[1:]
    if len(body) != folds * 2 * n:
        raise LifecertError(
            f"{path.name}: expected {folds * 2 * n} pair lines, found {len(body)}", code=ErrorCode.BAD_REQUEST
        )
    pairs: list[Pair] = []
    for i, parts in enumerate(body):
        fold = i // (2 * n)
        if len(parts) == 3:
            pairs.append(Pair(_lfw_path(root, parts[0], parts[1]), _lfw_path(root, parts[0], parts[2]), True, fold))
        elif len(parts) == 4:
            pairs.append(Pair(_lfw_path(root, parts[0], parts[1]), _lfw_path(root, parts[2], parts[3]), False, fold))
        else:
            raise LifecertError(
                f"{path.name}: line {i + 2} has {len(parts)} fields (3 or 4 expected)", code=ErrorCode.BAD_REQUEST
            )
    return pairs


def read_csv_pairs(path: Path, root: Path | None = None, folds: int = 10) -> list[Pair]:
    """CSV with header ``file_a,file_b,same`` (paths relative to ``root``, default the CSV's
    folder; ``same`` is 1/0 or true/false). Pair ``i`` goes to fold ``i % folds``."""
    root = root or path.parent
    pairs: list[Pair] = []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"file_a", "file_b", "same"} - set(reader.fieldnames or [])
        if missing:
            raise LifecertError(f"{path.name}: missing column(s) {sorted(missing)}", code=ErrorCode.BAD_REQUEST)
        for i, row in enumerate(reader):
            same = row["same"].strip().lower() in ("1", "true", "yes", "same")
            pairs.append(Pair(root / row["file_a"].strip(), root / row["file_b"].strip(), same, i % folds))
    return pairs


def read_pairs(path: Path, root: Path | None = None, folds: int = 10) -> list[Pair]:
    """Pick the reader by extension: ``.csv`` → CSV, anything else → LFW ``pairs.txt``."""
    if not path.is_file():
        raise LifecertError(f"pairs file not found: {path}", code=ErrorCode.FILE_MISSING)
    if path.suffix.lower() == ".csv":
        return read_csv_pairs(path, root, folds)
    return read_lfw_pairs(path, root)

