"""The enrolling rules, in one place: what happens when a photo is offered for an ID number.

Used by the batch job (``enrollment/job.py``: manifest, worker pool, progress and report stay
there) and by the console's photo fix (:mod:`lifecert.services.review`). The rules
(:func:`decide`) are a pure function over plain data; :class:`EnrollmentWriter` gathers that
data from the database, applies the verdicts and records rows and review cases.

For a photo that passed the face pipeline:

* the face matches **another** pensioner's template (≥ the duplicate threshold) →
  ``DUPLICATE_FACE``: queued for review, never merged;
* the ID number is **new** → ``ENROLLED`` (the pensioner is created);
* the ID number is on file with **the same face** (≥ the verify threshold against one of its
  active ID-photo templates) → ``REPLACED`` (older templates retired; a corrected name is
  taken), or ``ENROLLED`` if it had no template yet and the name agrees;
* the ID number is on file with **another face**, or with another name and no face to
  compare → ``ID_COLLISION``: queued for review; the person on file is left as it was
  (a typo in an ID number must not overwrite somebody else).

A photo that failed the pipeline keeps its reason and is queued for review (with a
thumbnail-sized record of why) when the ID number is valid. A dry run judges every row with
the same rules and the same database reads, and writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from lifecert.domain.cases import CasePayload, DuplicateFace, EnrollmentReject, IdCollision
from lifecert.domain.enrollment import REVIEWABLE, ItemOutcome, ItemReason, is_success
from lifecert.domain.errors import ErrorCode
from lifecert.services import templates
from lifecert.services.cases import open_case
from lifecert.services.context import AppContext
from lifecert.services.enrollment import Assessment
from lifecert.services.fusion import FusionSpec, OtherMatch, fused_others, fusion_spec
from lifecert.storage.models import (
    EnrollmentItem,
    FaceTemplate,
    Pensioner,
    Photo,
    ReviewCase,
    ReviewKind,
    TemplateKind,
)
from lifecert.storage.vector_index import OverlayIndex

# --- the rules --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OnFile:
    """What is on file for the candidate's ID number: the registered name and the best cosine
    similarity of the candidate's face to the person's active ID-photo templates (None: no
    template of this model to compare with)."""

    name: str
    face_similarity: float | None


@dataclass(frozen=True, slots=True)
class Thresholds:
    same_face: float  # the model's 1:1 verify threshold: the same person
    duplicate: float  # the model's duplicate threshold: another pensioner's face


def decide(
    assessed: ItemReason,
    name: str,
    on_file: OnFile | None,
    other: tuple[int | None, float],
    t: Thresholds,
    *,
    accept_duplicate: bool = False,
    accept_new_face: bool = False,
) -> tuple[ItemReason, str]:
    """The verdict for one photo: (reason, detail for people).

    ``assessed``: the face pipeline's reason (``ENROLLED`` when the photo passed);
    ``name``: the name given with the photo ("" when none was given);
    ``other``: the best match among other pensioners, (pensioner id or None, cosine);
    ``accept_duplicate`` / ``accept_new_face``: a staff decision on a review case overrides
    that rule (and is audited by the caller)."""
    if not is_success(assessed):
        return assessed, ""
    owner, score = other
    if owner is not None and score >= t.duplicate and not accept_duplicate:
        return ErrorCode.DUPLICATE_FACE, f"matches {_who(owner)} (similarity {score:.3f} ≥ {t.duplicate:.3f})"
    if on_file is None:
        return ItemOutcome.ENROLLED, ""
    name_differs = bool(name.strip()) and templates.normalize_name(name) != templates.normalize_name(on_file.name)
    sim = on_file.face_similarity
    if not accept_new_face:
        if sim is not None and sim < t.same_face:
            also = f"; the manifest names {name.strip()!r}" if name_differs else ""
            return ErrorCode.ID_COLLISION, (
                f"this ID number is enrolled as {on_file.name!r} with another face "
                f"(similarity {sim:.3f} < {t.same_face:.3f}){also}"
            )
        if sim is None and name_differs:
            return ErrorCode.ID_COLLISION, (
                f"this ID number is registered to {on_file.name!r}, not {name.strip()!r}, and has no face to compare"
            )
    renamed = f"; name {on_file.name!r} → {name.strip()!r}" if name_differs else ""
    if sim is None:
        return ItemOutcome.ENROLLED, renamed.lstrip("; ")
    return ItemOutcome.REPLACED, f"same face as the enrolled template (similarity {sim:.3f}){renamed}"


def _who(owner: int) -> str:
    return f"pensioner #{owner}" if owner > 0 else f"row {-owner} of this run"


# --- candidates and verdicts --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candidate:
    """One photo offered for an ID number, from any source (a manifest row, a console upload).

    ``id_number`` is normalised and valid, or None (``raw_id_number`` keeps what was given).
    ``assessment`` is the face pipeline's result, or None when the photo never reached it;
    then ``reason``/``detail`` say why (BAD_ID_NUMBER, FILE_MISSING, DUPLICATE_ROW,
    ALREADY_ENROLLED). ``photo_data``: bytes for the writer to store (the batch workers store
    their own photos before the writer sees them)."""

    id_number: str | None
    name: str
    photo_name: str = ""
    photo_sha256: str | None = None
    photo_size: int = 0
    assessment: Assessment | None = None
    reason: ItemReason | None = None
    detail: str = ""
    row_no: int = 0
    raw_id_number: str = ""
    photo_data: bytes | None = None

    @property
    def wants_person(self) -> bool:
        """Rows with a valid ID number get a pensioner record (so a reject can be reviewed);
        a repeated row does not."""
        return self.id_number is not None and self.reason != ErrorCode.DUPLICATE_ROW


@dataclass
class Verdict:
    reason: ItemReason
    detail: str = ""
    pensioner_id: int | None = None
    template: FaceTemplate | None = None
    duplicate_of: int | None = None
    similarity: float | None = None
    retired: list[int] = field(default_factory=list)
    case_id: int | None = None
    duplicate_threshold: float | None = None  # what ``similarity`` was judged by (fused or primary)
    second_template: FaceTemplate | None = None  # the fusion's second model's template of the same photo


# --- the writer ---------------------------------------------------------------------------------


class EnrollmentWriter:
    """Applies :func:`decide` to candidates against the database of ``ctx`` (model ``ctx.model``).

    ``run_id``: the enrollment run whose rows (``EnrollmentItem``) are recorded; None records
    none (console). ``dry_run``: judge only, write nothing. Keeps an overlay of the 1:N index
    with the faces enrolled by this writer, so later photos of the same run are compared with
    earlier ones.

    With fusion on (:func:`lifecert.services.fusion.fusion_spec`) every accepted photo also gets a
    template of the second model (its embedding comes with the assessment), and the duplicate
    check scores other pensioners with the fused score against the fusion's duplicate threshold
    (the primary cosine and threshold for anyone without a second-model template)."""

    def __init__(self, ctx: AppContext, *, run_id: int | None = None, dry_run: bool = False,
                 session: Session | None = None) -> None:
        self.ctx = ctx
        self.key = ctx.model.key
        self.run_id = run_id
        self.dry_run = dry_run
        self.thresholds = Thresholds(ctx.model.threshold("verify"), ctx.model.threshold("duplicate"))
        self.fusion = fusion_spec(ctx.settings)
        self.index2: OverlayIndex | None = None
        if session is not None:
            self._open_indexes(session)
        else:
            with ctx.db.session() as s:
                self._open_indexes(s)

    def _open_indexes(self, s: Session) -> None:
        self.index = OverlayIndex(self.ctx.index.get(s, self.key))
        if self.fusion is not None:
            self.index2 = OverlayIndex(self.ctx.index.get(s, self.fusion.second_key))

    def enrolled_photos(self, session: Session) -> set[tuple[str, str]]:
        """(ID number, photo sha256) pairs with a template of this model: offering one again is
        ALREADY_ENROLLED (the batch job skips those before running the pipeline)."""
        return {
            (i, sha)
            for i, sha in session.execute(
                select(Pensioner.id_number, FaceTemplate.photo_sha256)
                .join(FaceTemplate, FaceTemplate.pensioner_id == Pensioner.id)
                .where(FaceTemplate.model_key == self.key)
            )
        }

    def write_batch(self, batch: Sequence[Candidate]) -> list[Verdict]:
        """Judge and (unless a dry run) apply a batch in one transaction: one query each for
        the batch's pensioners, photos and active templates, one flush for new rows."""
        with self.ctx.db.session() as s, s.no_autoflush:
            people = {p.id_number: p for p in s.scalars(
                select(Pensioner).where(Pensioner.id_number.in_([c.id_number for c in batch if c.id_number])))}
            on_file = set(people)
            active = self._active(s, [p.id for p in people.values()])
            if not self.dry_run:
                shas = [c.photo_sha256 for c in batch if c.photo_sha256]
                photos = set(s.scalars(select(Photo.sha256).where(Photo.sha256.in_(shas))))
                for c in batch:
                    if c.wants_person and c.id_number not in people:
                        new = templates.new_pensioner(c.id_number, c.name)  # type: ignore[arg-type]
                        s.add(new)
                        people[c.id_number] = new  # type: ignore[index]
                    self._add_photo(s, c, photos)
                s.flush()  # new pensioners and photos of the whole batch in one go
            verdicts = []
            items: list[tuple[EnrollmentItem, Verdict]] = []
            for c in batch:
                person = people.get(c.id_number) if c.wants_person and c.id_number else None
                v = self._judge(c, person, c.id_number in on_file,
                                active.get(person.id, []) if person is not None else [],
                                owner=person.id if person is not None else -c.row_no)
                if not self.dry_run:
                    self._apply(s, c, person, v, active)
                    if self.run_id is not None:
                        items.append((self._item(c, v, person), v))
                verdicts.append(v)
            if self.dry_run:
                s.rollback()
                return verdicts
            s.flush()  # the batch's templates; rows and cases that point at them follow
            for item, v in items:
                item.template_id = v.template.id if v.template is not None else None
                s.add(item)
            cases = [(item, v, c) for (item, v), c in zip(items, batch, strict=False) if self._wants_case(v, c)]
            if cases:
                s.flush()  # cases refer to their rows' ids
            for item, v, c in cases:
                v.case_id = self._open_case(s, c, v, item.id)
        return verdicts

    def enroll_for(
        self, session: Session, pensioner: Pensioner, c: Candidate, *, accept_duplicate: bool = False,
        accept_new_face: bool = False,
    ) -> Verdict:
        """One photo for a known pensioner, in the caller's transaction (the console's photo
        fix and its review decisions). The caller turns a non-success verdict into its error;
        nothing is written then."""
        active = self._active(session, [pensioner.id])
        v = self._judge(c, pensioner, True, active.get(pensioner.id, []), owner=pensioner.id,
                        accept_duplicate=accept_duplicate, accept_new_face=accept_new_face)
        if is_success(v.reason) and not self.dry_run:
            if c.photo_data is not None and c.photo_sha256 and c.assessment is not None:
                templates.store_photo(self.ctx, session, c.photo_data, c.photo_sha256, c.assessment.width,
                                      c.assessment.height, c.photo_name or None)
            self._apply(session, c, pensioner, v, active, reuse_photo_template=True)
            session.flush()
        return v

    # -- steps -------------------------------------------------------------------------------

    def _active(self, s: Session, pensioner_ids: list[int]) -> dict[int, list[FaceTemplate]]:
        out: dict[int, list[FaceTemplate]] = {}
        if not pensioner_ids:
            return out
        for t in s.scalars(select(FaceTemplate).where(
            FaceTemplate.pensioner_id.in_(pensioner_ids), FaceTemplate.model_key == self.key,
            FaceTemplate.active.is_(True), FaceTemplate.kind == TemplateKind.ID_PHOTO,
        ).order_by(FaceTemplate.id)):
            out.setdefault(t.pensioner_id, []).append(t)
        return out

    def _judge(self, c: Candidate, person: Pensioner | None, on_file: bool, active: list[FaceTemplate], *,
               owner: int, accept_duplicate: bool = False, accept_new_face: bool = False) -> Verdict:
        """``person``: the pensioner row (None in a dry run for a new ID number); ``on_file``:
        it existed before this batch; ``owner``: its id in the overlay index."""
        a = c.assessment
        pid = person.id if person is not None else None
        if a is None:
            return Verdict(c.reason or ErrorCode.FILE_MISSING, c.detail, pensioner_id=pid)
        if not is_success(a.reason) or a.embedding is None:
            return Verdict(a.reason, a.detail, pensioner_id=pid)
        v2 = a.second.get(self.fusion.second_key) if self.fusion is not None else None
        dup = self._best_other(a.embedding, v2, owner)
        other = (dup.owner, dup.score)
        known = None
        if person is not None and on_file:
            sims = [float(np.dot(templates.template_vector(self.ctx, t), a.embedding)) for t in active]
            known = OnFile(person.name, max(sims) if sims else None)
        t = Thresholds(self.thresholds.same_face, dup.threshold)
        reason, detail = decide(ItemOutcome.ENROLLED, c.name, known, other, t,
                                accept_duplicate=accept_duplicate, accept_new_face=accept_new_face)
        v = Verdict(reason, detail, pensioner_id=pid)
        if reason == ErrorCode.DUPLICATE_FACE:
            v.duplicate_of, v.similarity, v.duplicate_threshold = dup.owner, dup.score, dup.threshold
            if dup.fused and self.fusion is not None:
                v.detail = detail.replace("(similarity", f"(fused {self.fusion.name} score", 1)
        if is_success(reason):
            self.index.add(a.embedding, owner)
            if self.index2 is not None and v2 is not None:
                self.index2.add(v2, owner)
        return v

    def _best_other(self, v1: NDArray[np.float32], v2: NDArray[np.float32] | None, owner: int) -> OtherMatch:
        """The other pensioner most over its duplicate threshold (fused where both have it)."""
        if self.fusion is None or self.index2 is None:
            who, score = self.index.best_other(v1, owner)
            return OtherMatch(who, score, self.thresholds.duplicate, False)
        found = fused_others(self.fusion, self.index, self.index2, v1, v2, owner, threshold="duplicate",
                             primary_threshold=self.thresholds.duplicate)
        return found[0] if found else OtherMatch(None, -1.0, self.thresholds.duplicate, False)

    def _apply(self, s: Session, c: Candidate, person: Pensioner | None, v: Verdict,
               active: dict[int, list[FaceTemplate]], *, reuse_photo_template: bool = False) -> None:
        a = c.assessment
        if person is None or a is None or a.embedding is None or not is_success(v.reason) or not c.photo_sha256:
            return
        if c.name.strip():
            templates.update_pensioner(person, c.name)  # the rules allow it: a new person or the same face
        old = active.pop(person.id, [])
        keep = [t for t in old if t.photo_sha256 == c.photo_sha256] if reuse_photo_template else []
        for t in old:
            if t not in keep:
                templates.retire_template(t)
        v.retired = [t.id for t in old if t not in keep]
        tpl = keep[0] if keep else None
        if tpl is None and reuse_photo_template:
            tpl = s.scalars(select(FaceTemplate).where(
                FaceTemplate.pensioner_id == person.id, FaceTemplate.photo_sha256 == c.photo_sha256,
                FaceTemplate.model_key == self.key)).first()
            if tpl is not None:
                tpl.active, tpl.replaced_at = True, None
        if tpl is None:
            tpl = templates.add_template(self.ctx, s, person, a.embedding, photo_sha256=c.photo_sha256,
                                         quality=a.quality, run_id=self.run_id, flush=False)
        active[person.id] = [tpl]
        v.template = tpl
        if self.fusion is not None and self.fusion.second_key in a.second:
            v.second_template = self._apply_second(s, self.fusion, c, person, a.second[self.fusion.second_key],
                                                   a.quality, look_up=bool(old) or reuse_photo_template)

    def _apply_second(self, s: Session, spec: FusionSpec, c: Candidate, person: Pensioner,
                      emb: NDArray[np.float32], quality: dict[str, Any], *, look_up: bool) -> FaceTemplate:
        """The second model's template of the photo beside the primary's: other active ID-photo
        templates of that model retire with the primary's; the same photo's is reused.
        ``look_up``: the person may have templates already (no query for a new pensioner)."""
        key = spec.second_key
        same: FaceTemplate | None = None
        if look_up:
            for t in s.scalars(select(FaceTemplate).where(
                FaceTemplate.pensioner_id == person.id, FaceTemplate.model_key == key,
                FaceTemplate.kind == TemplateKind.ID_PHOTO,
            )):
                if t.photo_sha256 == c.photo_sha256 and t.embedding_profile == spec.enroll_profile:
                    t.active, t.replaced_at = True, None
                    same = t
                elif t.active:
                    templates.retire_template(t)
        if same is not None:
            return same
        return templates.add_template(self.ctx, s, person, emb, photo_sha256=c.photo_sha256 or "", quality=quality,
                                      model_key=key, engine=spec.second, run_id=self.run_id, flush=False,
                                      profile=spec.enroll_profile)

    def _add_photo(self, s: Session, c: Candidate, photos: set[str]) -> None:
        a = c.assessment
        if a is not None and a.width and c.photo_sha256 and c.photo_sha256 not in photos:
            s.add(Photo(sha256=c.photo_sha256, size=c.photo_size, width=a.width, height=a.height,
                        original_name=c.photo_name[:255]))
            photos.add(c.photo_sha256)

    def _item(self, c: Candidate, v: Verdict, person: Pensioner | None) -> EnrollmentItem:
        a = c.assessment
        return EnrollmentItem(
            run_id=self.run_id, row_no=c.row_no, id_number=(c.id_number or c.raw_id_number)[:32],
            name=c.name[:64], photo_name=c.photo_name[:512], photo_sha256=c.photo_sha256 if a else None,
            reason=str(v.reason), detail=v.detail, pensioner_id=person.id if person is not None else None,
            duplicate_of_pensioner_id=v.duplicate_of, similarity=v.similarity, quality=a.quality if a else {},
        )

    @staticmethod
    def _wants_case(v: Verdict, c: Candidate) -> bool:
        return c.assessment is not None and v.pensioner_id is not None and v.reason in REVIEWABLE

    def _open_case(self, s: Session, c: Candidate, v: Verdict, item_id: int) -> int | None:
        """A review case for a reject, unless the same person, reason and photo already has an
        open one (a rerun must not queue it twice)."""
        a = c.assessment
        stored = c.photo_sha256 if a is not None and a.width else None
        for case in s.scalars(select(ReviewCase).where(
            ReviewCase.pensioner_id == v.pensioner_id, ReviewCase.kind == ReviewKind.ENROLLMENT,
            ReviewCase.reason == str(v.reason), ReviewCase.status != "closed",
        )):
            if case.payload.get("photo_sha256") == stored:
                return None
        person = s.get(Pensioner, v.pensioner_id)
        quality = a.quality if a else {}
        payload: CasePayload
        if v.reason == ErrorCode.ID_COLLISION and person is not None:
            payload = IdCollision(run_id=self.run_id, row_no=c.row_no, photo_name=c.photo_name, photo_sha256=stored,
                                  id_number=person.id_number, manifest_name=c.name, enrolled_name=person.name,
                                  similarity=v.similarity, detail=v.detail)
        elif v.reason == ErrorCode.DUPLICATE_FACE and v.duplicate_of is not None:
            payload = DuplicateFace(run_id=self.run_id, row_no=c.row_no, photo_name=c.photo_name,
                                    photo_sha256=stored, duplicate_of_pensioner_id=v.duplicate_of,
                                    similarity=float(v.similarity or 0.0),
                                    threshold=v.duplicate_threshold or self.thresholds.duplicate,
                                    detail=v.detail, quality=quality)
        else:
            payload = EnrollmentReject(run_id=self.run_id, row_no=c.row_no, photo_name=c.photo_name,
                                       photo_sha256=stored, detail=v.detail, quality=quality)
        return open_case(s, payload, reason=str(v.reason), pensioner=person, enrollment_item_id=item_id).id

