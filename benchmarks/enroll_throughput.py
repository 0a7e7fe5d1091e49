"""Batch enrollment throughput: the real job (process pool + single writer) vs the raw engine.

    python benchmarks/enroll_throughput.py [--items 2000] [--workers 2] [--raw-sample 600] [--fusion]

Dataset: distinct LFW people (first photo each) from ../shared/faces, under synthetic valid ID
numbers, so every item is a real enrollment (not a skip). Raw engine throughput is decode →
detect → align → quality → embed in one process on one core; the ideal pipeline rate with W
workers is W × raw. Overhead = 1 − pipeline rate / ideal. Peak RSS of the main process and of
the largest worker are reported. ``--fusion``: the EdgeFace + YuNet packs are installed from
../shared/models into the run's data dir, so every accepted photo also gets its EdgeFace template
(flip, on dlib's face) and the duplicate check is fused — what a city batch costs with both engines.
The raw rate is also taken as CPU time (``time.process_time`` of the pinned loop), which other jobs
on a shared machine do not inflate. Results: benchmarks/results/enroll_throughput[_fusion].json and
the README table (one row per file).
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import machine, now, update_readme_section, write_json

CITY = 11_362
SHARED_MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"


def install_fusion(data_dir: Path) -> None:
    from lifecert.cli_models import install_models
    from lifecert.config import Settings

    s = Settings(env="test", data_dir=data_dir)
    for pack in ("edgeface", "yunet"):
        install_models(s, SHARED_MODELS / pack, pack)


def faces_root() -> Path:
    env = os.environ.get("LIFECERT_SHARED_FACES")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "faces"


def build_dataset(n: int, folder: Path) -> Path:
    from lifecert.domain.idnumber import make_id_number

    people = sorted((faces_root() / "lfw" / "images").iterdir())
    if len(people) < n:
        raise SystemExit(f"only {len(people)} LFW people available; ask for fewer items")
    folder.mkdir(parents=True)
    rows = []
    for i, d in enumerate(people[:n]):
        src = sorted(d.glob("*.jpg"))[0]
        dst = folder / f"{i:05d}.jpg"
        os.link(src, dst) if os.stat(src).st_dev == os.stat(folder).st_dev else shutil.copy(src, dst)
        born = date(1940, 1, 1) + timedelta(days=i % 9000)
        rows.append([make_id_number("220202", born, (i // 9000) * 2 + 1 + (i % 400) * 2 % 998), d.name, dst.name])
    seen: set[str] = set()
    uniq = []
    for r in rows:
        if r[0] not in seen:
            seen.add(r[0])
            uniq.append(r)
    man = folder / "manifest.csv"
    with man.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id_number", "name", "photo"])
        w.writerows(uniq)
    return man


def raw_engine_rate(folder: Path, sample: int, start: int = 0, data_dir: Path | None = None) -> tuple[float, float]:
    """(photos/s, CPU ms/photo) of the workers' assess call in one process pinned to one CPU;
    ``data_dir``: where packs are installed (the fusion's second engine is used when it is)."""
    from lifecert.config import Settings
    from lifecert.engine.dlib_engine import set_thread_count
    from lifecert.engine.fusion import make_second_embedder
    from lifecert.engine.loader import load_engine
    from lifecert.services.enrollment import assess_bytes

    set_thread_count(1)  # one core, as each batch worker is configured (OpenCV would otherwise add threads)
    s = Settings(env="test", data_dir=data_dir, inference_threads=1) if data_dir else Settings()
    engine = load_engine(s)
    second = make_second_embedder(s)
    # Spread over the whole batch: the reject rate (rejects skip the embedding) varies along it.
    every = sorted(folder.glob("*.jpg"))
    files = every[start :: max(1, len(every) // sample)][:sample]
    datas = [f.read_bytes() for f in files]
    limits = {"max_bytes": s.images.max_bytes, "max_pixels": s.images.max_pixels,
              "profile": s.embedding.enroll_profile, "second": second}  # what the batch job's workers do
    assess_bytes(engine, datas[0], s.quality, **limits)  # type: ignore[arg-type]
    # Pin to one CPU: helper threads (OpenBLAS, ORT, OpenCV) would otherwise borrow a second
    # core and make "one core" look faster than it is.
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})
    try:
        t, c = time.perf_counter(), time.process_time()
        for d in datas:
            assess_bytes(engine, d, s.quality, **limits)  # type: ignore[arg-type]
        return len(datas) / (time.perf_counter() - t), 1000 * (time.process_time() - c) / len(datas)
    finally:
        os.sched_setaffinity(0, cpus)


def _pinned_rate(args: tuple[Path, int, int, int, Path | None]) -> float:
    folder, start, sample, cpu, data_dir = args
    os.sched_setaffinity(0, {cpu})
    return raw_engine_rate(folder, sample, start=start, data_dir=data_dir)[0]


def concurrent_raw_rate(folder: Path, sample: int, workers: int, data_dir: Path | None = None) -> float:
    """W raw engines side by side, each pinned to its own CPU on its own photos: what W
    cores deliver with no pipeline at all (two busy cores run slower than one: shared cache,
    memory bandwidth, clock). The sum of their rates."""
    import multiprocessing as mp

    cpus = sorted(os.sched_getaffinity(0))
    jobs = [(folder, i, sample, cpus[i % len(cpus)], data_dir) for i in range(workers)]  # offsets i: disjoint photos
    with mp.get_context("spawn").Pool(workers) as pool:
        return float(sum(pool.map(_pinned_rate, jobs)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--raw-sample", type=int, default=600)
    ap.add_argument("--no-readme", action="store_true")
    ap.add_argument("--fusion", action="store_true",
                    help="install EdgeFace + YuNet from ../shared/models: both engines' templates per photo")
    args = ap.parse_args()

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    load_start = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="lifecert-bench-"))
    try:
        man = build_dataset(args.items, tmp / "photos")
        if args.fusion:
            install_fusion(tmp / "data")
        packs_dir = (tmp / "data") if args.fusion else None
        raw, raw_cpu_ms = raw_engine_rate(tmp / "photos", args.raw_sample, data_dir=packs_dir)
        raw_side_by_side = concurrent_raw_rate(tmp / "photos", args.raw_sample, args.workers, packs_dir)

        from enrollment.job import JobOptions, run_job
        from lifecert.config import Settings
        from lifecert.services.context import AppContext

        ctx = AppContext(Settings(env="test", data_dir=tmp / "data"))
        from lifecert.engine.fusion import fusion_spec

        spec = fusion_spec(ctx.settings)
        if args.fusion and spec is None:
            raise SystemExit("--fusion: the EdgeFace/YuNet packs did not install")
        marks: list[tuple[float, int]] = []
        t = time.perf_counter()
        res = run_job(
            ctx, tmp / "photos", man,
            JobOptions(workers=args.workers, report_dir=tmp / "reports",
                       on_progress=lambda done, _total, _assessed: marks.append((time.perf_counter(), done))),
        )
        wall = time.perf_counter() - t
        from sqlalchemy import func, select

        from lifecert.storage.models import FaceTemplate

        with ctx.db.session() as s:
            per_model = dict(s.execute(select(FaceTemplate.model_key, func.count()).where(
                FaceTemplate.active.is_(True)).group_by(FaceTemplate.model_key)).all())
        ctx.close()
        n = res.total
        rate = n / wall
        # Steady state: items per second between 10% and 90% progress; the rest of the wall time
        # is fixed cost (worker start-up and model loading, row checks, index rebuild, report).
        lo = next(m for m in marks if m[1] >= 0.1 * n)
        hi = next(m for m in marks if m[1] >= 0.9 * n)
        steady = (hi[1] - lo[1]) / (hi[0] - lo[0])
        fixed = max(0.0, wall - n / steady)
        city_s = fixed + CITY / steady
        ideal = raw * args.workers
        rss_main = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        rss_child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        result = {
            "benchmark": "enroll_throughput",
            "date": now(),
            "machine": machine(),
            "dataset": f"LFW deep-funneled, first photo of {n} distinct people (250x250 JPEG)",
            "items": n,
            "workers": args.workers,
            "enroll_profile": ctx.settings.embedding.enroll_profile,
            "recognizer": ctx.settings.dlib_recognizer if ctx.settings.engine == "dlib" else ctx.settings.engine,
            "fusion": None if spec is None else {"second": spec.second, "enroll_profile": spec.enroll_profile},
            "templates_per_model": per_model,
            "raw_cpu_ms_per_photo_one_core": round(raw_cpu_ms, 1),
            # CPU-time projection: the city batch's photos × CPU per photo ÷ W fully busy cores (no
            # pipeline overhead, no load from others): what an idle machine can at best do
            "city_minutes_cpu_projection": round(CITY * raw_cpu_ms / 1000 / args.workers / 60, 2),
            "counts": dict(res.counts),
            "wall_s": round(wall, 2),
            "pipeline_photos_per_s": round(rate, 2),
            "raw_engine_photos_per_s_one_core": round(raw, 2),
            "ideal_photos_per_s": round(ideal, 2),
            "pipeline_overhead": round(1 - rate / ideal, 4),
            "steady_photos_per_s": round(steady, 2),
            "steady_overhead": round(1 - steady / ideal, 4),
            "raw_engines_side_by_side_photos_per_s": round(raw_side_by_side, 2),
            "steady_overhead_vs_side_by_side": round(1 - steady / raw_side_by_side, 4),
            "fixed_cost_s": round(fixed, 2),
            "extrapolated_city_minutes": round(city_s / 60, 2),
            "peak_rss_main_mb": round(rss_main, 1),
            "peak_rss_largest_worker_mb": round(rss_child, 1),
            "load_average_at_start": load_start,
            "load_average_at_end": os.getloadavg(),
        }
        write_json("enroll_throughput_fusion" if args.fusion else "enroll_throughput", result)
        print(result)
        if not args.no_readme:
            readme_section()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _row(r: dict[str, object]) -> str:
    g = r.get
    fz = g("fusion")
    models = "dlib" + (f" + {fz['second']} ({fz['enroll_profile']})" if isinstance(fz, dict) else "")
    cpu = g("raw_cpu_ms_per_photo_one_core")
    proj = g("city_minutes_cpu_projection")
    la, lb = g("load_average_at_start"), g("load_average_at_end")
    return (f"| {models} | {g('items')} | {g('workers')} | {g('pipeline_photos_per_s')} ({g('steady_photos_per_s')}) "
            f"| {g('raw_engine_photos_per_s_one_core')} | {cpu if cpu is not None else '—'} "
            f"| {100 * float(g('pipeline_overhead')):.1f}% ({100 * float(g('steady_overhead')):.1f}%) "  # type: ignore[arg-type]
            f"| {g('fixed_cost_s')} s | {g('extrapolated_city_minutes')} min | {proj if proj is not None else '—'} min "
            f"| {g('peak_rss_main_mb')} / {g('peak_rss_largest_worker_mb')} MB "
            f"| {la[0]:.1f} / {lb[0]:.1f} | {str(g('date'))[:16]} |")  # type: ignore[index]


def readme_section() -> None:
    import json

    results = Path(__file__).resolve().parent / "results"
    rows = [json.loads((results / f"{n}.json").read_text()) for n in ("enroll_throughput", "enroll_throughput_fusion")
            if (results / f"{n}.json").is_file()]
    if not rows:
        return
    m = rows[-1]["machine"]
    update_readme_section(
        "enroll",
        "## Batch enrollment throughput (`benchmarks/enroll_throughput.py [--fusion]`)\n\n"
        f"Machine: {m['nproc']} × {m['cpu']}. Dataset: LFW deep-funneled, first photo of distinct people (250x250 "
        "JPEG) under synthetic valid ID numbers. dlib templates under 'jitter' (8 passes); with `--fusion` the "
        "EdgeFace + YuNet packs are installed and every accepted photo also gets its EdgeFace template ('flip', 2 "
        "passes, on dlib's face: no second detector) and the duplicate check is fused. Raw engine = the workers' "
        "assess call in one process pinned to one CPU on `--raw-sample` photos spread over the batch (photos/s wall, "
        "and CPU ms/photo from process time, which other jobs do not inflate). Whole run (steady 10–90%); "
        "11,362 photos = fixed cost + N / steady rate (wall, as loaded as the machine was); CPU projection = "
        "11,362 × CPU ms ÷ W cores (idle machine, no pipeline overhead: the best case). Floors: pipeline overhead "
        "≤ 10% of raw engine time; 11,362 photos in < 8 min on 2 cores. A load average above 2 means other work "
        "shared the cores (the wall-clock columns then measure the crowd).\n\n"
        "| face models | items | workers | photos/s whole run (steady) | raw photos/s (1 core) | raw CPU ms/photo "
        "| overhead whole run (steady) | fixed cost | 11,362 photos wall | 11,362 photos CPU projection "
        "| peak RSS main / worker | load avg start / end | date |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n" + "\n".join(_row(r) for r in rows) + "\n\n"
        + "\n".join(f"Outcome counts ({'dlib + EdgeFace' if r.get('fusion') else 'dlib'}): "
                    + ", ".join(f"{k} {v}" for k, v in sorted(r["counts"].items())) + "." for r in rows)
        + "\n\nReference: the last idle-machine run (2026-11-25, before the enrollment writer moved to "
        "lifecert/services/enrollment_writer.py; dlib only, 3,000 items, load 1.99 at the end) gave 33.05 photos/s "
        "(steady 32.87), raw engine 18.18 photos/s on one core, overhead 9.1% (steady 9.6%), 11,362 photos ≈ 5.8 "
        "min. Runs with a load average far above 2 cannot judge the 10% / 8-minute floors: rerun on an idle machine.",
    )


if __name__ == "__main__":
    main()
