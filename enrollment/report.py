"""Run reports: CSV (every row), JSON (counts, settings, rows) and a one-page HTML summary.

Reports hold personal data: files are created with mode 0600 and the HTML masks ID numbers.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, select_autoescape

from lifecert.domain.cells import spreadsheet_safe
from lifecert.domain.idnumber import mask_id_number
from lifecert.engine.manifest import manifest_sha256

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from enrollment.manifest import Inputs
    from enrollment.types import JobOptions, JobResult
    from lifecert.services.context import AppContext


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)


# Chinese fonts a Debian/Ubuntu machine may have (fonts-noto-cjk, fonts-wqy-microhei, fonts-wqy-zenhei).
CJK_FONTS = (
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
)


def cjk_font_subset(text: str, fonts: tuple[Path, ...] = CJK_FONTS) -> str | None:
    """Base64 of a TrueType/OpenType font holding just the non-ASCII characters of ``text``,
    cut from the first Chinese font installed here; None when there is none (or nothing to
    cover). Embedded in the HTML report, names stay readable on a computer without a Chinese
    font. A few hundred names cost some tens of KB."""
    chars = {c for c in text if ord(c) > 0x7F}
    font_path = next((f for f in fonts if f.is_file()), None)
    if not chars or font_path is None:
        return None
    from fontTools import subset
    from fontTools.ttLib import TTFont

    ft_log = logging.getLogger("fontTools")  # it reports every table it drops as a warning
    level = ft_log.level
    ft_log.setLevel(logging.ERROR)
    try:
        with TTFont(str(font_path), fontNumber=0, lazy=True) as font:
            opts = subset.Options()
            opts.hinting = False
            opts.layout_features = []
            opts.name_IDs = ["*"]
            sub = subset.Subsetter(opts)
            sub.populate(text="".join(sorted(chars)))
            sub.subset(font)
            buf = io.BytesIO()
            font.save(buf)
    except Exception:  # a damaged system font must not cost the report: the fallback note stays
        log.warning("could not embed a subset of %s in the report", font_path, exc_info=True)
        return None
    finally:
        ft_log.setLevel(level)
    return base64.b64encode(buf.getvalue()).decode()


def write_reports(ctx: AppContext, result: JobResult, inputs: Inputs, opts: JobOptions) -> dict[str, Path]:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"run-{result.run_id}-{stamp}" if result.run_id else f"dry-run-{stamp}"
    out = (opts.report_dir or ctx.settings.data_dir / "reports") / name
    rows = sorted(result.rows, key=lambda r: r["row_no"])
    meta: dict[str, Any] = {
        "run_id": result.run_id,
        "dry_run": opts.dry_run,
        "resumed": result.resumed,
        "source": inputs.description,
        "model": ctx.model.key,
        "manifest_sha256": manifest_sha256(ctx.settings.manifest_path),
        "thresholds": {k: v.similarity for k, v in ctx.model.thresholds.items()},
        "quality_gates": ctx.settings.quality.model_dump(),
        "workers": opts.workers,
        "total_rows": result.total,
        "rows_this_invocation": len(rows),
        "counts": dict(sorted(result.counts.items())),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["row_no", "id_number", "name", "photo_name", "reason", "detail"])
    for r in rows:
        w.writerow([spreadsheet_safe(r[k]) for k in ("row_no", "id_number", "name", "photo_name", "reason", "detail")])
    _write_private(out.with_suffix(".csv"), "\ufeff" + buf.getvalue())  # BOM: Excel opens Chinese correctly

    json_rows = [{k: v for k, v in r.items() if k != "thumbnail"} for r in rows]
    _write_private(out.with_suffix(".json"), json.dumps(meta | {"rows": json_rows}, ensure_ascii=False, indent=1))

    env = Environment(loader=PackageLoader("enrollment", "templates"), autoescape=select_autoescape(["html"]))
    rejects = [
        r | {"masked": mask_id_number(r["id_number"]),
             "thumb": base64.b64encode(r["thumbnail"]).decode() if r.get("thumbnail") else None}
        for r in rows
        if r["reason"] not in ("ENROLLED", "REPLACED", "ALREADY_ENROLLED")
    ]
    shown = rejects[:500]
    page = env.get_template("report.html")
    html = page.render(meta=meta, rejects=shown, more=max(0, len(rejects) - 500), cjk_font=None)
    html = page.render(meta=meta, rejects=shown, more=max(0, len(rejects) - 500), cjk_font=cjk_font_subset(html))
    _write_private(out.with_suffix(".html"), html)
    return {"csv": out.with_suffix(".csv"), "json": out.with_suffix(".json"), "html": out.with_suffix(".html")}
