"""Helpers shared by the benchmark scripts: machine description and README section updates."""

from __future__ import annotations

import json
import platform
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"


def int_list(text: str) -> list[int]:
    """An argparse ``type``: "1000,2700" -> [1000, 2700] (string defaults are parsed too)."""
    return [int(x) for x in text.split(",")]


def machine() -> dict[str, Any]:
    """The core's machine description (CPU model, cores) plus the Python and OS versions."""
    from lifecert.services.evaluation import machine_info

    return machine_info() | {"python": platform.python_version(), "system": platform.platform()}


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def write_json(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    p = RESULTS / f"{name}.json"
    p.write_text(json.dumps(data, indent=1, ensure_ascii=False))
    return p


def update_readme_section(name: str, body: str) -> None:
    """Replace (or append) the section between <!-- name:start --> and <!-- name:end -->."""
    readme = BENCH / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.exists() else "# Benchmarks\n"
    block = f"<!-- {name}:start -->\n{body.rstrip()}\n<!-- {name}:end -->"
    pattern = re.compile(rf"<!-- {re.escape(name)}:start -->.*?<!-- {re.escape(name)}:end -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    readme.write_text(text, encoding="utf-8")


def publish(name: str, section: str, data: dict[str, Any], text: str, *, readme: bool = True) -> Path:
    """What every benchmark does at the end: ``results/<name>.json``, the README section
    ``section`` (unless ``readme`` is False) and the same text on stdout."""
    path = write_json(name, data)
    if readme:
        update_readme_section(section, text)
    print(text)
    return path
