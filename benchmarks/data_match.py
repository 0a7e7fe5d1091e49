"""Benchmark: import + match of a department extract against the pensioner register.

Default is small (100,000 pensioners, 100,000 rows) so it runs in seconds; ``--full``
runs the issue's size (1,000,000-row extract against 1,000,000 pensioners). Each import
runs in a fresh subprocess on its own copy of the database so its peak RSS is the
import's alone; running two extract sizes against the same register shows whether memory
grows with the file (it should not: rows are streamed in chunks).

    .venv/bin/python benchmarks/data_match.py                  # quick
    .venv/bin/python benchmarks/data_match.py --full           # 1M x 1M, writes results + README section

The extract is an alive-evidence file (the kind that creates a row per match: a data
record and a survival confirmation), with ~1% unknown IDs, ~0.02% name mismatches
(review cases), ~0.5% invalid rows and ~0.5% duplicate rows.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NAME = "data_match"
RECEIVED = datetime(2026, 4, 8, 9, 0, tzinfo=UTC)
FIRST = "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许何吕施张孔曹严华金魏陶姜"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂"


def person(n: int) -> tuple[str, str]:
    """Synthetic pensioner number ``n``: a valid GB 11643 ID and a two/three-character name."""
    from lifecert.domain.idnumber import make_id_number

    born = date(1940, 1, 1) + timedelta(days=n % 9000)
    region = f"{110101 + (n // 9000) % 400 * 100:06d}"[:6]
    seq = (n // 9000 // 400) % 1000
    name = FIRST[n % len(FIRST)] + GIVEN[(n // 7) % len(GIVEN)] + GIVEN[(n // 131) % len(GIVEN)]
    return make_id_number(region, born, seq), name


def build_register(db_path: Path, n: int) -> float:
    from sqlalchemy import insert

    from lifecert.config import Settings
    from lifecert.storage.db import Database
    from lifecert.storage.models import Pensioner, utcnow

    t0 = time.perf_counter()
    db = Database(f"sqlite:///{db_path}", audit_key=Settings(env="test").audit_key_bytes())
    now = utcnow()
    batch = []
    with db.engine.begin() as conn:
        for i in range(n):
            idn, name = person(i)
            batch.append({"id_number": idn, "name": name, "sex": "M" if int(idn[16]) % 2 else "F",
                          "birth_date": date(int(idn[6:10]), int(idn[10:12]), int(idn[12:14])),
                          "region_code": idn[:6], "status": "active", "fraud_flag": False,
                          "created_at": now, "updated_at": now})
            if len(batch) == 50_000:
                conn.execute(insert(Pensioner), batch)
                batch = []
        if batch:
            conn.execute(insert(Pensioner), batch)
    db.dispose()
    return time.perf_counter() - t0


def write_extract(path: Path, rows: int, pensioners: int) -> dict[str, int]:
    counts = {"unknown": 0, "mismatch": 0, "invalid": 0, "duplicate": 0}
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["参保人身份证号", "参保人姓名", "结算日期", "就诊机构"])
        prev: list[str] | None = None
        for i in range(rows):
            k = i % 10_000
            if k < 50 and prev is not None:
                w.writerow(prev)
                counts["duplicate"] += 1
                continue
            idn, name = person((i * 7919) % pensioners)
            if 50 <= k < 150:
                idn, name = person(pensioners + i)  # valid ID, not a pensioner
                counts["unknown"] += 1
            elif 150 <= k < 152:
                name = name + "某"
                counts["mismatch"] += 1
            elif 152 <= k < 202:
                idn = idn[:-1] + ("0" if idn[-1] != "0" else "1")
                counts["invalid"] += 1
            day = date(2026, 3, 1) + timedelta(days=i % 31)
            prev = [idn, name, day.isoformat(), "社区卫生服务中心"]
            w.writerow(prev)
    return counts


def child(db_path: Path, file: Path, chunk: int) -> None:
    """Run one import in this fresh process and print timing and peak RSS as JSON."""
    from lifecert.config import Settings
    from lifecert.services.datamatch import run_import
    from lifecert.storage.db import Database

    settings = Settings(env="test", data_dir=db_path.parent / "data", database_url=f"sqlite:///{db_path}")
    db = Database(settings.resolved_database_url, audit_key=settings.audit_key_bytes())
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0, c0 = time.perf_counter(), time.process_time()
    s = run_import(settings, db, "medical_settlement", file, received_at=RECEIVED, actor="bench", chunk_size=chunk)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    load = os.getloadavg()[0]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": round(dt, 2), "cpu_seconds": round(cpu, 2),
                      "loadavg_1min_after": round(load, 1), "peak_rss_mb": round(rss, 1),
                      "rss_before_import_mb": round(rss_before, 1), "rows": s.rows_total, "valid": s.rows_valid,
                      "rejected": s.rows_rejected,
                      "duplicates": s.rows_duplicate, "matches": s.matches, "outcomes": s.outcomes,
                      "confirmations": s.confirmations, "review_cases": s.review_cases}))


def machine() -> dict[str, object]:
    from benchmarks._common import machine as describe

    return describe() | {"db": "SQLite (WAL) file"}


def update_readme(result: dict[str, object]) -> None:
    readme = ROOT / "benchmarks" / "README.md"
    start, end = f"<!-- {NAME}:start -->", f"<!-- {NAME}:end -->"
    m = result["machine"]
    lines = [start, "## Data comparison import + match (`benchmarks/data_match.py`)", "",
             f"Machine: {m['nproc']} cores, {m['cpu']}, Python {m['python']}, {m['db']}. "  # type: ignore[index]
             f"Date: {result['date']}. Dataset: synthetic alive-evidence CSV (valid GB 11643 IDs, ~1% unknown, "
             f"~0.5% invalid, ~0.5% duplicate rows) against {result['pensioners']:,} synthetic pensioners.", "",
             "| extract rows | import+match s (wall) | CPU s | load avg | rows/s (wall) | peak RSS MB "
             "| RSS before import MB | matches | confirmations |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["runs"]:  # type: ignore[attr-defined]
        lines.append(f"| {r['rows']:,} | {r['seconds']} | {r['cpu_seconds']} | {r['loadavg_1min_after']} | "
                     f"{int(r['rows'] / r['seconds']):,} | {r['peak_rss_mb']} | {r['rss_before_import_mb']} | "
                     f"{r['matches']:,} | {r['confirmations']:,} |")
    lines += ["", f"Floor: the 1,000,000-row import+match under 60 s. Peak memory should not grow with the extract "
              f"size (rows are streamed in chunks of {result['chunk']}; SQLite page cache capped at 64 MiB). "
              "Each import runs in a fresh process on its own copy of the register; \"CPU s\" is that process's "
              "CPU time, \"load avg\" the 1-minute load when it finished (other sessions share these 2 cores, so "
              "wall time varies with their load). Every valid, new row is written as a data record and, when "
              "matched, a survival confirmation (`method=data_comparison`); name mismatches open review cases. "
              "Building the register itself (Core bulk insert of 1M pensioners) took "
              f"{result['register_build_s']} s and is not counted.", end]
    section = "\n".join(lines)
    text = readme.read_text(encoding="utf-8") if readme.exists() else "# Benchmarks\n\nEach script writes " \
        "`benchmarks/results/<name>.json` and updates its own section below.\n"
    if start in text and end in text:
        text = text[:text.index(start)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    readme.write_text(text, encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pensioners", type=int, default=100_000)
    ap.add_argument("--rows", default="50000,100000", help="comma-separated extract sizes (each a separate run)")
    ap.add_argument("--full", action="store_true", help="1,000,000 pensioners; extracts of 250,000 and 1,000,000")
    ap.add_argument("--chunk", type=int, default=5000)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--no-readme", action="store_true", help="do not update benchmarks/README.md")
    ap.add_argument("--readme-only", action="store_true", help="rewrite the README section from the results JSON")
    ap.add_argument("--child", nargs=2, metavar=("DB", "FILE"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(Path(a.child[0]), Path(a.child[1]), a.chunk)
        return
    if a.readme_only:
        update_readme(json.loads((ROOT / "benchmarks" / "results" / f"{NAME}.json").read_text(encoding="utf-8")))
        return
    if a.full:
        a.pensioners, a.rows = 1_000_000, "250000,1000000"
    sizes = [int(x) for x in a.rows.split(",")]
    work = a.workdir or Path(tempfile.mkdtemp(prefix="lifecert-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    base = work / "register.sqlite"
    print(f"building register of {a.pensioners:,} pensioners in {base} ...", flush=True)
    build_s = build_register(base, a.pensioners)
    print(f"  {build_s:.1f} s", flush=True)
    runs = []
    for n in sizes:
        f = work / f"extract_{n}.csv"
        mix = write_extract(f, n, a.pensioners)
        run_dir = work / f"run_{n}"
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir()
        db_copy = run_dir / "lifecert.sqlite"
        shutil.copyfile(base, db_copy)
        print(f"importing {n:,} rows ({f.stat().st_size / 1e6:.0f} MB) ...", flush=True)
        out = subprocess.run([sys.executable, __file__, "--chunk", str(a.chunk), "--child", str(db_copy), str(f)],
                             check=True, capture_output=True, text=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        r["file_mb"] = round(f.stat().st_size / 1e6, 1)
        r["mix"] = mix
        runs.append(r)
        print(f"  {r['seconds']} s, peak RSS {r['peak_rss_mb']} MB, matches {r['matches']:,}", flush=True)
        shutil.rmtree(run_dir, ignore_errors=True)
    result = {"name": NAME, "date": datetime.now(UTC).strftime("%Y-%m-%d"), "machine": machine(),
              "pensioners": a.pensioners, "register_build_s": round(build_s, 1), "chunk": a.chunk, "runs": runs}
    out_path = ROOT / "benchmarks" / "results" / f"{NAME}.json"
    out_path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out_path}")
    if not a.no_readme:
        update_readme(result)
    if a.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
