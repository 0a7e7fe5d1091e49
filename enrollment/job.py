"""The batch job: rows → (pre-checks in the main process) → worker pool → single writer.

Orchestration only: the manifest, the worker pool, batching, progress and the report. What
enrolling a photo means (new, replaced, duplicate face, ID collision, review cases) is
:mod:`lifecert.services.enrollment_writer`'s; the face pipeline runs in the workers.

Resumable and idempotent:
- a rerun of the same inputs resumes the unfinished run with the same fingerprint and
  skips rows that already have a result row;
- a photo already enrolled for the same person and model is skipped (ALREADY_ENROLLED);
- results are committed in small batches, each batch one transaction, so ``kill -9``
  loses at most the uncommitted batch, which the rerun redoes.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from enrollment.manifest import Inputs, Row, load_inputs
from enrollment.report import write_reports
from enrollment.types import JobOptions, JobResult
from enrollment.worker import Outcome, Task, Worker, init_process, run_in_process
from lifecert.domain.enrollment import ItemOutcome, ItemReason
from lifecert.domain.errors import BadIdNumber, ErrorCode, ImageError, LifecertError, NotFound
from lifecert.domain.idnumber import parse_id_number
from lifecert.services.audit import record
from lifecert.services.context import AppContext
from lifecert.services.enrollment import Assessment
from lifecert.services.enrollment_writer import Candidate, EnrollmentWriter
from lifecert.storage.models import EnrollmentItem, EnrollmentRun, utcnow

__all__ = ["JobOptions", "JobResult", "run_job"]


@dataclass
class _Pending:
    row: Row
    id_number: str | None  # normalised, valid
    outcome: Outcome | None = None
    pre_reason: ItemReason | None = None
    pre_detail: str = ""
    size: int = 0
    final_reason: str = ""  # the writer's verdict
    final_detail: str = ""

    def candidate(self) -> Candidate:
        return Candidate(
            id_number=self.id_number, name=self.row.name, photo_name=self.row.photo_name,
            photo_sha256=self.outcome.sha256 or None if self.outcome else None, photo_size=self.size,
            assessment=self.outcome.assessment if self.outcome else None, reason=self.pre_reason,
            detail=self.pre_detail, row_no=self.row.row_no, raw_id_number=self.row.id_number,
        )


def _prepare(inputs: Inputs, max_bytes: int) -> tuple[list[_Pending], dict[int, bytes]]:
    """Main-process checks: file present, ID number valid, duplicate rows; sha256 of each photo
    (streamed, at most ``max_bytes`` read: a larger photo is IMAGE_TOO_LARGE without reading it)."""
    seen: dict[str, int] = {}
    pending: list[_Pending] = []
    shas: dict[int, bytes] = {}
    for row in inputs.rows:
        p = _Pending(row=row, id_number=None)
        try:
            p.id_number = parse_id_number(row.id_number).value
        except BadIdNumber as exc:
            p.pre_reason, p.pre_detail = ErrorCode.BAD_ID_NUMBER, exc.message
        if p.pre_reason is None and p.id_number in seen:
            p.pre_reason = ErrorCode.DUPLICATE_ROW
            p.pre_detail = f"same ID number as row {seen[p.id_number]}"
        if p.pre_reason is None and (row.source is None or not row.source.exists()):
            p.pre_reason, p.pre_detail = ErrorCode.FILE_MISSING, f"photo file not found: {row.photo_name}"
        if p.pre_reason is None and p.id_number is not None and row.source is not None:
            seen[p.id_number] = row.row_no
            try:
                if row.source.size() > max_bytes:
                    raise ImageError(f"photo is {row.source.size()} bytes; the limit is {max_bytes}")
                data = row.source.read(max_bytes)
            except LifecertError as exc:
                # Rejected like the face pipeline rejects it (so it is queued for review), unread.
                too_large = Assessment(ErrorCode.IMAGE_TOO_LARGE, exc.message)
                p.outcome = Outcome(row.row_no, "", too_large)
            else:
                p.size = len(data)
                shas[row.row_no] = hashlib.sha256(data).digest()
        pending.append(p)
    return pending, shas


# Below this many rows the photos are assessed in this process: starting worker processes (each
# loads the engine) costs more than it saves (13 photos ran at ~1 photo/s through a 2-worker pool).
IN_PROCESS_BELOW = 64


def run_job(ctx: AppContext, source: Path, manifest: Path | None, opts: JobOptions) -> JobResult:
    inputs = load_inputs(source, manifest)  # BAD_MANIFEST / FILE_MISSING raise before anything is written
    if opts.ray_address is None and opts.workers > 0 and len(inputs.rows) < IN_PROCESS_BELOW:
        opts = replace(opts, workers=0)
    # Workers load their models while this process checks rows and hashes photos.
    pool = _start_pool(ctx, opts.workers) if opts.workers > 0 and opts.ray_address is None else None
    try:
        return _run(ctx, inputs, opts, pool)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()


def _start_pool(ctx: AppContext, workers: int) -> Pool:
    return mp.get_context("spawn").Pool(workers, initializer=init_process, initargs=(ctx.settings, 1))


def _run(ctx: AppContext, inputs: Inputs, opts: JobOptions, pool: Pool | None) -> JobResult:
    pending, shas = _prepare(inputs, ctx.settings.images.max_bytes)
    key = ctx.model.key
    result = JobResult(run_id=None, counts=Counter(), total=len(pending))

    run: EnrollmentRun | None = None
    done_rows: set[int] = set()
    with ctx.db.session() as s:
        if not opts.dry_run:
            run, result.resumed = _open_run(s, inputs, key, opts, ctx)
            done_rows = set(s.scalars(select(EnrollmentItem.row_no).where(EnrollmentItem.run_id == run.id)))
            result.run_id = run.id
        writer = EnrollmentWriter(ctx, run_id=result.run_id, dry_run=opts.dry_run, session=s)
        enrolled = writer.enrolled_photos(s)

    todo: list[_Pending] = []
    tasks: list[Task] = []
    for p in pending:
        if p.row.row_no in done_rows:
            continue
        todo.append(p)
        if p.pre_reason is None and p.outcome is None and p.row.source is not None:
            sha = shas[p.row.row_no].hex()
            if p.id_number and (p.id_number, sha) in enrolled:
                p.pre_reason, p.pre_detail = ItemOutcome.ALREADY_ENROLLED, "same photo already enrolled for this model"
            else:
                tasks.append(Task(p.row.row_no, p.row.source, sha, store_photo=not opts.dry_run))
    by_row = {p.row.row_no: p for p in todo}
    already = len(pending) - len(todo)
    done = already

    batch: list[_Pending] = []
    assessed = 0  # photos the face pipeline finished in this invocation (what a rate may count)

    def emit(p: _Pending) -> None:
        nonlocal done
        batch.append(p)
        done += 1
        if opts.on_progress:
            opts.on_progress(done, len(pending), assessed)
        if len(batch) >= opts.batch_size:
            flush()

    def flush() -> None:
        if not batch:
            return
        if not opts.dry_run:
            ctx.photos.sync()  # photos written by the workers are durable before rows refer to them
        for p, v in zip(batch, writer.write_batch([p.candidate() for p in batch]), strict=True):
            p.final_reason, p.final_detail = str(v.reason), v.detail
        result.rows.extend(_row_dict(p) for p in batch)
        batch.clear()

    if opts.on_progress:
        opts.on_progress(done, len(pending), assessed)
    for p in todo:
        if p.pre_reason is not None or p.outcome is not None:
            emit(p)
    for outcome in _outcomes(ctx, tasks, pool, opts):
        p = by_row[outcome.row_no]
        p.outcome = outcome
        assessed += 1
        emit(p)
    flush()

    for r in result.rows:
        result.counts[r["reason"]] += 1
    if run is not None:
        with ctx.db.session() as s:
            counts = Counter(
                r for (r,) in s.execute(select(EnrollmentItem.reason).where(EnrollmentItem.run_id == run.id))
            )
            db_run = s.get(EnrollmentRun, run.id)
            if db_run is None:  # deleted under us: nothing sensible to finish
                raise NotFound("enrollment run vanished during the job")
            db_run.status = "finished"
            db_run.finished_at = utcnow()
            db_run.counts = dict(counts)
            record(s, actor=opts.actor, role="enrollment_staff", action="enrollment.finish",
                   object_type="enrollment_run", object_id=run.id, detail=dict(counts))
            ctx.index.rebuild(s, key)
            if writer.fusion is not None:
                ctx.index.rebuild(s, writer.fusion.second_key)
        result.counts = counts
    result.reports = write_reports(ctx, result, inputs, opts)
    return result


def _open_run(s: Session, inputs: Inputs, key: str, opts: JobOptions, ctx: AppContext) -> tuple[EnrollmentRun, bool]:
    fp = inputs.fingerprint()
    run = s.scalars(
        select(EnrollmentRun)
        .where(EnrollmentRun.source_fingerprint == fp, EnrollmentRun.model_key == key,
               EnrollmentRun.status == "running", EnrollmentRun.dry_run.is_(False))
        .order_by(EnrollmentRun.id.desc())
    ).first()
    if run is not None:
        record(s, actor=opts.actor, role="enrollment_staff", action="enrollment.resume",
               object_type="enrollment_run", object_id=run.id)
        return run, True
    run = EnrollmentRun(
        source=inputs.description[:1024],
        source_fingerprint=fp,
        model_key=key,
        total_items=len(inputs.rows),
        settings={
            "engine": ctx.settings.engine,
            "enroll_profile": ctx.settings.embedding.enroll_profile,
            "quality": ctx.settings.quality.model_dump(),
            "duplicate_threshold": ctx.model.threshold("duplicate"),
            "workers": opts.workers,
        },
    )
    s.add(run)
    s.flush()
    record(s, actor=opts.actor, role="enrollment_staff", action="enrollment.start",
           object_type="enrollment_run", object_id=run.id, detail={"rows": len(inputs.rows)})
    return run, False


def _outcomes(ctx: AppContext, tasks: list[Task], pool: Pool | None, opts: JobOptions) -> Iterator[Outcome]:
    if not tasks:
        return
    if opts.ray_address is not None:
        from enrollment.ray_pool import ray_outcomes

        yield from ray_outcomes(ctx, tasks, address=opts.ray_address, actors=max(1, opts.workers))
        return
    if pool is None:
        w = Worker(ctx.settings, ctx.engine, ctx.second_embedder())
        for t in tasks:
            yield w.run(t)
        return
    yield from pool.imap_unordered(run_in_process, tasks, chunksize=8)


def _row_dict(p: _Pending) -> dict[str, Any]:
    a = p.outcome.assessment if p.outcome else None
    return {
        "row_no": p.row.row_no,
        "id_number": p.id_number or p.row.id_number,
        "name": p.row.name,
        "photo_name": p.row.photo_name,
        "reason": p.final_reason,
        "detail": p.final_detail,
        "quality": a.quality if a else {},
        "thumbnail": a.thumbnail if a else None,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
