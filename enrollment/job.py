"""The batch job: rows → (pre-checks in the main process) → worker pool → single writer.

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
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from enrollment.manifest import Inputs, Row, load_inputs
from enrollment.worker import Outcome, Task, Worker, init_process, run_in_process
from lifecert.domain.enrollment import REVIEWABLE, ItemReason
from lifecert.domain.errors import BadIdNumber, NotFound
from lifecert.domain.idnumber import parse_id_number
from lifecert.services import review, templates
from lifecert.services.audit import record
from lifecert.services.context import AppContext
from lifecert.services.enrollment import Assessment
from lifecert.storage.models import (
    EnrollmentItem,
    EnrollmentRun,
    FaceTemplate,
    Pensioner,
    Photo,
    ReviewKind,
    TemplateKind,
    utcnow,
)


@dataclass
class JobOptions:
    workers: int = 2  # 0: run in this process with the context's engine
    dry_run: bool = False
    report_dir: Path | None = None
    batch_size: int = 32
    actor: str = "cli"
    on_progress: Callable[[int, int], None] | None = None  # (done, total)


@dataclass
class JobResult:
    run_id: int | None
    counts: Counter[str]
    total: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    reports: dict[str, Path] = field(default_factory=dict)
    resumed: bool = False


@dataclass
class _Pending:
    row: Row
    id_number: str | None  # normalised, valid
    outcome: Outcome | None = None
    pre_reason: ItemReason | None = None
    pre_detail: str = ""
    size: int = 0
    final_reason: str = ""  # set by the writer (DUPLICATE_FACE / REPLACED are decided there)
    final_detail: str = ""

    def settle(self) -> None:
        """Outcome without database knowledge (dry run, or before the writer refines it)."""
        a = self.outcome.assessment if self.outcome else None
        self.final_reason = str(a.reason if a else self.pre_reason)
        self.final_detail = a.detail if a else self.pre_detail


class _RunIndex:
    """Existing templates (faiss cache of the database) plus those enrolled during this run."""

    def __init__(self, ctx: AppContext, session: Session, model_key: str, dim: int) -> None:
        self.base = ctx.index.get(session, model_key)
        self.new = faiss.IndexFlatIP(dim)
        self.new_owners: list[int] = []

    def best_other(self, vec: np.ndarray, pensioner_id: int) -> tuple[int | None, float]:
        best: tuple[int | None, float] = (None, -1.0)
        for hit in self.base.search(vec, 5):
            if hit.pensioner_id != pensioner_id and hit.score > best[1]:
                best = (hit.pensioner_id, hit.score)
        if self.new.ntotal:
            scores, idx = self.new.search(vec.reshape(1, -1).astype(np.float32), min(5, self.new.ntotal))
            for s, i in zip(scores[0], idx[0], strict=True):
                if i < 0:
                    continue
                owner = self.new_owners[i]
                if owner != pensioner_id and s > best[1]:
                    best = (owner, float(s))
        return best

    def add(self, vec: np.ndarray, pensioner_id: int) -> None:
        self.new.add(vec.reshape(1, -1).astype(np.float32))
        self.new_owners.append(pensioner_id)


def _prepare(inputs: Inputs) -> tuple[list[_Pending], dict[int, bytes]]:
    """Main-process checks: file present, ID number valid, duplicate rows; sha256 of each photo."""
    seen: dict[str, int] = {}
    pending: list[_Pending] = []
    shas: dict[int, bytes] = {}
    for row in inputs.rows:
        p = _Pending(row=row, id_number=None)
        try:
            p.id_number = parse_id_number(row.id_number).value
        except BadIdNumber as exc:
            p.pre_reason, p.pre_detail = ItemReason.BAD_ID_NUMBER, exc.message
        if p.pre_reason is None and p.id_number in seen:
            p.pre_reason = ItemReason.DUPLICATE_ROW
            p.pre_detail = f"same ID number as row {seen[p.id_number]}"
        if p.pre_reason is None and (row.source is None or not row.source.exists()):
            p.pre_reason, p.pre_detail = ItemReason.FILE_MISSING, f"photo file not found: {row.photo_name}"
        if p.pre_reason is None and p.id_number is not None:
            seen[p.id_number] = row.row_no
            data = row.source.read() if row.source else b""
            p.size = len(data)
            shas[row.row_no] = hashlib.sha256(data).digest()
        pending.append(p)
    return pending, shas


def run_job(ctx: AppContext, source: Path, manifest: Path | None, opts: JobOptions) -> JobResult:
    inputs = load_inputs(source, manifest)  # BAD_MANIFEST / FILE_MISSING raise before anything is written
    # Workers load their models while this process checks rows and hashes photos.
    pool = _start_pool(ctx, opts.workers) if opts.workers > 0 else None
    try:
        return _run(ctx, inputs, opts, pool)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()


def _start_pool(ctx: AppContext, workers: int) -> Pool:
    return mp.get_context("spawn").Pool(workers, initializer=init_process, initargs=(ctx.settings, 1))


def _run(ctx: AppContext, inputs: Inputs, opts: JobOptions, pool: Pool | None) -> JobResult:
    pending, shas = _prepare(inputs)
    key = ctx.model.key
    result = JobResult(run_id=None, counts=Counter(), total=len(pending))

    run: EnrollmentRun | None = None
    done_rows: set[int] = set()
    enrolled: set[tuple[str, str]] = set()
    if not opts.dry_run:
        with ctx.db.session() as s:
            run, result.resumed = _open_run(s, inputs, key, opts, ctx)
            done_rows = set(s.scalars(select(EnrollmentItem.row_no).where(EnrollmentItem.run_id == run.id)))
            enrolled = {
                (i, sha)
                for i, sha in s.execute(
                    select(Pensioner.id_number, FaceTemplate.photo_sha256)
                    .join(FaceTemplate, FaceTemplate.pensioner_id == Pensioner.id)
                    .where(FaceTemplate.model_key == key)
                )
            }
        result.run_id = run.id

    todo: list[_Pending] = []
    tasks: list[Task] = []
    for p in pending:
        if p.row.row_no in done_rows:
            continue
        todo.append(p)
        if p.pre_reason is None and p.row.source is not None:
            sha = shas[p.row.row_no].hex()
            if p.id_number and (p.id_number, sha) in enrolled:
                p.pre_reason, p.pre_detail = ItemReason.ALREADY_ENROLLED, "same photo already enrolled for this model"
            else:
                tasks.append(Task(p.row.row_no, p.row.source, sha, store_photo=not opts.dry_run))
    by_row = {p.row.row_no: p for p in todo}
    already = len(pending) - len(todo)
    done = already

    writer = None if opts.dry_run else _Writer(ctx, run.id if run else 0, key, opts)  # type: ignore[arg-type]
    batch: list[_Pending] = []

    def emit(p: _Pending) -> None:
        nonlocal done
        batch.append(p)
        done += 1
        if opts.on_progress:
            opts.on_progress(done, len(pending))
        if len(batch) >= opts.batch_size:
            flush()

    def flush() -> None:
        if not batch:
            return
        for p in batch:
            p.settle()
        if writer is not None:
            writer.write(batch)
        result.rows.extend(_row_dict(p) for p in batch)
        batch.clear()

    if opts.on_progress:
        opts.on_progress(done, len(pending))
    for p in todo:
        if p.pre_reason is not None:
            emit(p)
    for outcome in _outcomes(ctx, tasks, pool):
        p = by_row[outcome.row_no]
        p.outcome = outcome
        emit(p)
    flush()

    for r in result.rows:
        result.counts[r["reason"]] += 1
    if writer is not None and run is not None:
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
        result.counts = counts
    from enrollment.report import write_reports

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


def _outcomes(ctx: AppContext, tasks: list[Task], pool: Pool | None) -> Iterator[Outcome]:
    if not tasks:
        return
    if pool is None:
        w = Worker(ctx.settings, ctx.engine)
        for t in tasks:
            yield w.run(t)
        return
    yield from pool.imap_unordered(run_in_process, tasks, chunksize=8)


class _Writer:
    """The single database writer: one transaction per batch."""

    def __init__(self, ctx: AppContext, run_id: int, key: str, opts: JobOptions) -> None:
        self.ctx = ctx
        self.run_id = run_id
        self.key = key
        self.opts = opts
        self.dup_threshold = ctx.model.threshold("duplicate")
        with ctx.db.session() as s:
            self.index = _RunIndex(ctx, s, key, ctx.model.embedding_size)
        self._people: dict[str, Pensioner] = {}
        self._photos: set[str] = set()
        self._active: dict[int, list[FaceTemplate]] = {}

    def write(self, batch: list[_Pending]) -> None:
        os.sync()  # photos written by the workers reach the disk before rows refer to them
        with self.ctx.db.session() as s, s.no_autoflush:
            # One query each for the batch's pensioners, photos and active templates, not one per row.
            ids = [p.id_number for p in batch if p.id_number]
            self._people = {
                x.id_number: x for x in s.scalars(select(Pensioner).where(Pensioner.id_number.in_(ids)))
            }
            shas = [p.outcome.sha256 for p in batch if p.outcome]
            self._photos = set(s.scalars(select(Photo.sha256).where(Photo.sha256.in_(shas))))
            self._active = {}
            for t in s.scalars(
                select(FaceTemplate).where(
                    FaceTemplate.pensioner_id.in_([x.id for x in self._people.values()]),
                    FaceTemplate.model_key == self.key, FaceTemplate.active.is_(True),
                    FaceTemplate.kind == TemplateKind.ID_PHOTO,
                )
            ):
                self._active.setdefault(t.pensioner_id, []).append(t)
            # New pensioners and photos of the whole batch go in with one flush (executemany),
            # before any template refers to them.
            for p in batch:
                if self._person_wanted(p) and p.id_number not in self._people:
                    person = templates.new_pensioner(p.id_number, p.row.name)  # type: ignore[arg-type]
                    s.add(person)
                    self._people[p.id_number] = person  # type: ignore[index]
                a = p.outcome.assessment if p.outcome else None
                sha = p.outcome.sha256 if p.outcome else None
                if a is not None and a.width and sha is not None and sha not in self._photos:
                    s.add(Photo(sha256=sha, size=p.size, width=a.width, height=a.height,
                                original_name=p.row.photo_name[:255]))
                    self._photos.add(sha)
            s.flush()
            linked: list[tuple[EnrollmentItem, FaceTemplate]] = []
            for p in batch:
                self._one(s, p, linked)
            s.flush()  # all templates of the batch in one go; items that point at them follow
            for item, tpl in linked:
                item.template_id = tpl.id
                s.add(item)

    @staticmethod
    def _person_wanted(p: _Pending) -> bool:
        return bool(p.id_number) and p.pre_reason != ItemReason.DUPLICATE_ROW

    def _one(self, s: Session, p: _Pending, linked: list[tuple[EnrollmentItem, FaceTemplate]]) -> None:
        row = p.row
        a: Assessment | None = p.outcome.assessment if p.outcome else None
        sha = p.outcome.sha256 if p.outcome else None
        item = EnrollmentItem(
            run_id=self.run_id, row_no=row.row_no, id_number=p.id_number or row.id_number[:32],
            name=row.name[:64], photo_name=row.photo_name[:512], photo_sha256=sha,
        )
        pensioner = None
        if self._person_wanted(p):
            pensioner = self._people[p.id_number]  # type: ignore[index]
            if row.name and pensioner.name != row.name.strip():
                templates.update_pensioner(pensioner, row.name)
            item.pensioner_id = pensioner.id
        if a is None:
            item.reason = p.final_reason
            item.detail = p.final_detail
            s.add(item)
            return
        item.quality = a.quality
        stored = bool(a.width)
        new_template: FaceTemplate | None = None
        reason, detail = a.reason, a.detail
        if reason.is_success and a.embedding is not None and pensioner is not None and sha is not None:
            other, score = self.index.best_other(a.embedding, pensioner.id)
            if other is not None and score >= self.dup_threshold:
                reason = ItemReason.DUPLICATE_FACE
                item.duplicate_of_pensioner_id = other
                item.similarity = score
                detail = f"matches pensioner #{other} (similarity {score:.3f} ≥ {self.dup_threshold:.3f})"
            else:
                old = self._active.pop(pensioner.id, [])
                if any(t.id is None for t in old):
                    s.flush()  # the detail below names them
                for t in old:
                    templates.retire_template(t)
                tpl = new_template = templates.add_template(
                    self.ctx, s, pensioner, a.embedding, photo_sha256=sha, quality=a.quality, run_id=self.run_id,
                    flush=False,
                )
                self._active[pensioner.id] = [tpl]
                self.index.add(a.embedding, pensioner.id)
                if old:
                    reason = ItemReason.REPLACED
                    detail = f"supersedes template(s) {', '.join(str(t.id) for t in old)}"
        item.reason = p.final_reason = str(reason)
        item.detail = p.final_detail = detail
        if new_template is not None:  # a success: never a review case; added once the template has its id
            linked.append((item, new_template))
            return
        s.add(item)
        if reason in REVIEWABLE and pensioner is not None and not _case_open(s, pensioner.id, str(reason), sha):
            s.flush()  # the case refers to the item's id
            review.open_case(
                s, kind=ReviewKind.ENROLLMENT, reason=str(reason), pensioner=pensioner,
                enrollment_item_id=item.id,
                payload={
                    "run_id": self.run_id, "row_no": row.row_no, "photo_name": row.photo_name,
                    "photo_sha256": sha if stored else None, "detail": detail, "quality": a.quality,
                    "duplicate_of_pensioner_id": item.duplicate_of_pensioner_id, "similarity": item.similarity,
                },
            )


def _case_open(s: Session, pensioner_id: int, reason: str, sha: str | None) -> bool:
    """An open enrollment case for the same person, reason and photo (a rerun must not queue it twice)."""
    from lifecert.storage.models import ReviewCase

    cases = s.scalars(
        select(ReviewCase).where(
            ReviewCase.pensioner_id == pensioner_id, ReviewCase.kind == ReviewKind.ENROLLMENT,
            ReviewCase.reason == reason, ReviewCase.status != "closed",
        )
    )
    return any(c.payload.get("photo_sha256") == sha for c in cases)


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
