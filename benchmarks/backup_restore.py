"""``lifecert backup`` / ``lifecert restore``: time and size (issue 14).

Two deployments, each backed up, destroyed and restored into an empty one:

1. the shared photos (``../shared/faces/photos``, synthetic manifest) enrolled into SQLite with
   the local blob store (online backup API + sealed photos);
2. a synthetic 1M-pensioner register (no photos) on a private PostgreSQL on 127.0.0.1
   (``pg_dump`` of one exported snapshot, ``pg_restore --single-transaction``).

Writes benchmarks/results/backup_restore.json and the ``backup_restore`` README section.
Run: ``.venv/bin/python benchmarks/backup_restore.py [--pensioners 1000000]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import machine, now, update_readme_section, write_json  # noqa: E402
from benchmarks.cluster_load import start_postgres  # noqa: E402
from benchmarks.data_match import person  # noqa: E402

FACES = Path(os.environ.get("LIFECERT_SHARED_FACES", ROOT.parent / "shared" / "faces"))
BIN = Path(sys.executable).parent


def drill(settings: Any, restored: Any, out: Path, destroy: Any) -> dict[str, Any]:
    from lifecert.services.backup import create_backup, restore_backup
    from lifecert.services.context import AppContext

    ctx = AppContext(settings)
    t0 = time.perf_counter()
    rep = create_backup(ctx, out)
    backup_s = time.perf_counter() - t0
    ctx.close()
    destroy()
    t0 = time.perf_counter()
    rr = restore_backup(restored, out)
    restore_s = time.perf_counter() - t0
    return {"rows": sum(rep.rows.values()), "pensioners": rep.rows.get("pensioner"), "blobs": rep.blobs,
            "blob_mb": round(rep.blob_bytes / 1e6, 2), "backup_mb": round(rep.bytes / 1e6, 2),
            "backup_s": round(backup_s, 1), "restore_s": round(restore_s, 1), "audit_events": rr.audit_rows}


def shared_photos(tmp: Path) -> dict[str, Any]:
    from lifecert.config import Settings

    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFECERT_")}
    env.update(LIFECERT_ENV="test", LIFECERT_DATA_DIR=str(tmp / "photos-live"))
    lc = str(BIN / "lifecert")
    subprocess.run([lc, "manifest", "synth", str(FACES / "photos"), "--out", str(tmp / "m.csv")], env=env, check=True,
                   stdout=subprocess.DEVNULL, timeout=300)
    subprocess.run([lc, "enroll", str(FACES / "photos"), "--manifest", str(tmp / "m.csv"), "--no-progress",
                    "--report-dir", str(tmp / "rep")], env=env, check=True, stdout=subprocess.DEVNULL, timeout=1800)
    live = Settings(env="test", data_dir=tmp / "photos-live")
    restored = Settings(env="test", data_dir=tmp / "photos-restored")
    return drill(live, restored, tmp / "photos.lcbk", lambda: shutil.rmtree(tmp / "photos-live"))


def register(tmp: Path, n: int) -> dict[str, Any]:
    from sqlalchemy import insert

    from lifecert.config import Settings
    from lifecert.services.context import AppContext
    from lifecert.storage.models import Pensioner, utcnow

    url, stop_pg = start_postgres(tmp / "pg")
    try:
        live = Settings(env="test", data_dir=tmp / "reg-live", database_url=url)
        ctx = AppContext(live)
        t0 = time.perf_counter()
        stamp = utcnow()
        batch: list[dict[str, Any]] = []
        with ctx.db.engine.begin() as conn:
            for i in range(n):
                idn, name = person(i)
                batch.append({"id_number": idn, "name": name, "sex": "M" if int(idn[16]) % 2 else "F",
                              "birth_date": date(int(idn[6:10]), int(idn[10:12]), int(idn[12:14])),
                              "region_code": idn[:6], "status": "active", "fraud_flag": False,
                              "created_at": stamp, "updated_at": stamp})
                if len(batch) == 20_000:
                    conn.execute(insert(Pensioner), batch)
                    batch = []
            if batch:
                conn.execute(insert(Pensioner), batch)
        build_s = time.perf_counter() - t0
        ctx.close()

        def destroy() -> None:
            from lifecert.storage.db import drop_schema

            drop_schema(url)
            shutil.rmtree(tmp / "reg-live", ignore_errors=True)

        restored = Settings(env="test", data_dir=tmp / "reg-restored", database_url=url)
        return {"build_s": round(build_s, 1)} | drill(live, restored, tmp / "register.lcbk", destroy)
    finally:
        stop_pg()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pensioners", type=int, default=1_000_000)
    args = ap.parse_args()
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="lifecert-backup-bench-"))
    os.chmod(tmp, 0o711)  # the postgres user must reach its data folder inside
    try:
        photos = shared_photos(tmp)
        reg = register(tmp, args.pensioners)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = {"benchmark": "backup_restore", "date": now(), "machine": machine(), "load_before": load_before,
           "load_after": os.getloadavg(), "shared_photos_sqlite": photos, "register_postgres": reg}
    write_json("backup_restore", out)
    p, r = photos, reg
    p_row = (f"| shared photos ({p['pensioners']} pensioners enrolled), SQLite + local blobs | {p['rows']} | "
             f"{p['blobs']} ({p['blob_mb']}) | {p['backup_s']} | {p['backup_mb']} | {p['restore_s']} |")
    r_row = (f"| synthetic register, {r['pensioners']:,} pensioners, PostgreSQL (pg_dump) | {r['rows']:,} | "
             f"{r['blobs']} | {r['backup_s']} | {r['backup_mb']} | {r['restore_s']} |")
    update_readme_section("backup_restore", f"""## Backup and restore (`benchmarks/backup_restore.py`)

{out['date']}, {out['machine'].get('cpu', '')} ({out['machine'].get('nproc', '')} cores), **shared with other
engineers' jobs** (load average {load_before[0]:.1f} before, {out['load_after'][0]:.1f} after). Backup while nothing
else writes; restore into an empty deployment includes checking every sha256, the row counts and the audit chain.

| deployment | rows | blobs (MB) | backup s | backup file MB | restore s |
|---|---|---|---|---|---|
{p_row}
{r_row}

The synthetic register (generated names, no addresses or phone numbers) compresses far better than a real one
will; expect a real register's file to be several times larger. Building the synthetic register took
{reg['build_s']} s (not part of the figures).
""")
    print({k: v for k, v in out.items() if k != "machine"})


if __name__ == "__main__":
    main()
