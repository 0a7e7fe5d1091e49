"""What a batch job is asked to do and what it returns (shared by the job and its report)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class JobOptions:
    workers: int = 2  # 0: run in this process with the context's engine; with ray_address: Ray actors
    ray_address: str | None = None  # run the face pipeline on this Ray cluster (enrollment/ray_pool.py)
    dry_run: bool = False
    report_dir: Path | None = None
    batch_size: int = 32
    actor: str = "cli"
    # (rows done, total rows, photos assessed in this invocation: skipped and resumed rows are
    # done at once, so a rate counts only the assessed ones)
    on_progress: Callable[[int, int, int], None] | None = None


@dataclass
class JobResult:
    run_id: int | None
    counts: Counter[str]
    total: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    reports: dict[str, Path] = field(default_factory=dict)
    resumed: bool = False
