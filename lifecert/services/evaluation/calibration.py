"""Calibrating thresholds at a target FAR from impostor scores, and writing them into the
model manifest."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lifecert.services.evaluation.metrics import min_impostors_for, rule_of_three_upper, threshold_at_far


def calibrate_thresholds(
    imp_protocol: NDArray[np.floating],
    gen_protocol: NDArray[np.floating],
    gen_all: NDArray[np.floating],
    imp_all: NDArray[np.floating],
    dup_all: NDArray[np.floating],
    *,
    enroll: str,
    probe: str,
    target_far: float,
    duplicate_far: float,
) -> dict[str, dict[str, Any]]:
    """The ``verify`` threshold at ``target_far`` (enrolled vs probe profile) and the ``duplicate``
    threshold at ``duplicate_far`` (enrolled vs enrolled), each from the protocol's impostor pairs
    when they are enough for that FAR, else from all cross-identity pairs among the protocol's
    images; with the TAR it gives and a rule-of-three upper bound on the FAR it may hide."""
    calib: dict[str, dict[str, Any]] = {}
    for key, far, sides, imp_pool in (("verify", target_far, (enroll, probe), imp_all),
                                      ("duplicate", duplicate_far, (enroll, enroll), dup_all)):
        use_protocol = sides == (enroll, probe) and len(imp_protocol) >= 10 * min_impostors_for(far)
        imp = imp_protocol if use_protocol else imp_pool
        t = threshold_at_far(imp, far)
        entry: dict[str, Any] = {
            "far": far,
            "enroll_profile": sides[0],
            "probe_profile": sides[1],
            "similarity": None if t is None else round(t, 4),
            "impostor_pairs": len(imp),
            "impostor_source": "protocol impostor pairs"
            if use_protocol
            else "all cross-identity pairs among the protocol's detected images",
            "protocol_impostor_pairs": len(imp_protocol),
            "protocol_threshold": threshold_at_far(imp_protocol, far),
        }
        if t is not None:
            entry["tar_protocol_genuine"] = float((gen_protocol >= t).mean()) if len(gen_protocol) else None
            entry["tar_all_genuine"] = float((gen_all >= t).mean()) if len(gen_all) else None
            entry["far_protocol_impostors"] = float((imp_protocol >= t).mean()) if len(imp_protocol) else None
            entry["false_accepts_allowed"] = math.floor(far * len(imp) + 1e-9)
            entry["far_upper_95"] = rule_of_three_upper(len(imp), entry["false_accepts_allowed"])
        calib[key] = entry
    return calib


def write_manifest_thresholds(
    manifest: Path, engine: str, thresholds: dict[str, dict[str, Any]], dataset: str, date: str
) -> None:
    """Rewrite ``[engines.<engine>.thresholds.<name>]`` tables in place (other text kept).
    ``thresholds``: name → {"similarity": float, "far": float, "note": optional str,
    "enroll_profile"/"probe_profile": optional str}."""
    lines = manifest.read_text().splitlines()
    for name, t in thresholds.items():
        header = f"[engines.{engine}.thresholds.{name}]"
        body = []
        if t.get("note"):
            body.append(f"# {t['note']}")
        body += [
            f"similarity = {t['similarity']:.4f}",
            f"far = {t['far']:g}",
            f'dataset = "{dataset}"',
            f'date = "{date}"',
        ]
        body += [f'{k} = "{t[k]}"' for k in ("enroll_profile", "probe_profile") if t.get(k)]
        set_table(lines, header, body)
    manifest.write_text("\n".join(lines) + "\n")


def set_table(lines: list[str], header: str, body: list[str], *, after: str | None = None) -> None:
    """Put ``body`` under the TOML table ``header`` in ``lines`` (a manifest's text, changed in place,
    other text kept): replace the table's lines if it exists, else add it after the table ``after``
    (when given and present) or at the end."""
    if header in lines:
        i = lines.index(header)
        j = i + 1
        while j < len(lines) and not lines[j].startswith("["):
            j += 1
        while j > i + 1 and not lines[j - 1].strip():
            j -= 1  # keep the blank line(s) before the next table
        lines[i + 1 : j] = body
    elif after is not None and after in lines:
        i = lines.index(after) + 1
        while i < len(lines) and not lines[i].startswith("["):
            i += 1
        lines[i:i] = [header, *body, ""]
    else:
        lines += ["", header, *body]

