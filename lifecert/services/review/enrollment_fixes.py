"""Enrollment rejects: fix the photo, confirm a duplicate, or enroll after all (not a duplicate).
Enrolling goes through :class:`lifecert.services.enrollment_writer.EnrollmentWriter`."""

from __future__ import annotations

from sqlalchemy.orm import Session

from lifecert.domain.cases import (
    Decision,
    DuplicateFace,
    load_payload,
)
from lifecert.domain.enrollment import is_success
from lifecert.domain.errors import (
    Conflict,
    ErrorCode,
    FaceQualityError,
    ImageError,
)
from lifecert.services.context import AppContext
from lifecert.services.review.access import close, open_for_decision, pensioner_of
from lifecert.services.staff import Principal
from lifecert.storage.models import (
    EnrollmentItem,
    FaceTemplate,
    Pensioner,
    ReviewCase,
    ReviewKind,
)


def _enrollment_case(session: Session, case_id: int, who: Principal, decision: Decision,
                     client_addr: str, note: str = "") -> ReviewCase:
    case = open_for_decision(session, case_id, who, decision, client_addr=client_addr, note=note)
    if case.kind != ReviewKind.ENROLLMENT:
        raise Conflict(f"case {case_id} is not an enrollment case")
    return case


def _enroll_bytes(
    ctx: AppContext, session: Session, p: Pensioner, data: bytes, name: str | None, *, accept_duplicate: bool = False,
    accept_new_face: bool = True,
) -> FaceTemplate:
    """Enroll ``data`` for ``p`` through the face pipeline (one decode, one embedding under the
    enroll profile) and the enrolling rules; a reject is its typed error and writes nothing.
    A staff member chose this photo for this pensioner, so a new face is accepted by default."""
    from lifecert.services.enrollment import assess_bytes
    from lifecert.services.enrollment_writer import Candidate, EnrollmentWriter
    from lifecert.storage.photos import sha256_bytes

    st = ctx.settings
    a = assess_bytes(ctx.engine, data, st.quality, max_bytes=st.images.max_bytes, max_pixels=st.images.max_pixels,
                     profile=st.embedding.enroll_profile, second=ctx.second_embedder())
    if not is_success(a.reason):
        err = ErrorCode(a.reason)
        if err in (ErrorCode.UNREADABLE_IMAGE, ErrorCode.UNSUPPORTED_FORMAT, ErrorCode.IMAGE_TOO_LARGE):
            raise ImageError(a.detail or "the photo cannot be read", code=err)
        raise FaceQualityError(f"photo fails the quality gate: {err}" + (f" ({a.detail})" if a.detail else ""),
                               code=err, quality=a.quality)
    c = Candidate(id_number=p.id_number, name="", photo_name=(name or "")[:255], photo_sha256=sha256_bytes(data),
                  photo_size=len(data), assessment=a, photo_data=data)
    v = EnrollmentWriter(ctx, session=session).enroll_for(session, p, c, accept_duplicate=accept_duplicate,
                                                          accept_new_face=accept_new_face)
    if v.reason == ErrorCode.DUPLICATE_FACE:
        raise Conflict(f"this face matches pensioner #{v.duplicate_of} (similarity {v.similarity or 0:.3f})",
                       pensioner_id=v.duplicate_of, similarity=round(v.similarity or 0.0, 4))
    if v.template is None:
        raise Conflict(f"the photo was not enrolled: {v.reason} {v.detail}".strip())
    return v.template


def fix_photo(
    ctx: AppContext, session: Session, case_id: int, who: Principal, data: bytes, *, filename: str | None = None,
    client_addr: str = "",
) -> FaceTemplate:
    """Enroll a corrected ID photo for the case's pensioner (same pipeline and rules as the batch
    job) and close the case. A photo whose face is another pensioner's (≥ duplicate threshold)
    is refused."""
    case = _enrollment_case(session, case_id, who, Decision.PHOTO_FIXED, client_addr)
    p = pensioner_of(session, case)
    tpl = _enroll_bytes(ctx, session, p, data, filename)
    close(session, case, who, Decision.PHOTO_FIXED, None, action="enrollment.fix_photo", client_addr=client_addr,
          template_id=tpl.id, photo_sha256=tpl.photo_sha256)
    return tpl


def confirm_duplicate(session: Session, case_id: int, who: Principal, *, note: str = "",
                      client_addr: str = "") -> ReviewCase:
    """The two records are the same face: flag the newly enrolled pensioner and open a fraud suspension
    case; the payment stops only when two caseworkers have signed it (lifecert.services.suspensions)."""
    from lifecert.services.suspensions import open_fraud

    case = _enrollment_case(session, case_id, who, Decision.DUPLICATE_CONFIRMED, client_addr, note)
    p = pensioner_of(session, case)
    payload = load_payload(case.payload)
    other = payload.duplicate_of_pensioner_id if isinstance(payload, DuplicateFace) else None
    p.fraud_flag = True
    open_fraud(session, p, case.id, who, client_addr=client_addr, duplicate_of_pensioner_id=other)
    close(session, case, who, Decision.DUPLICATE_CONFIRMED, note, action="enrollment.confirm_duplicate",
          client_addr=client_addr, other_pensioner_id=other)
    return case


def not_duplicate(ctx: AppContext, session: Session, case_id: int, who: Principal, *, note: str = "",
                  client_addr: str = "") -> FaceTemplate:
    """Different people who look alike (e.g. twins): enroll the item's photo after all."""
    case = _enrollment_case(session, case_id, who, Decision.NOT_DUPLICATE, client_addr, note)
    p = pensioner_of(session, case)
    item = session.get(EnrollmentItem, case.enrollment_item_id) if case.enrollment_item_id else None
    payload = load_payload(case.payload)
    sha = (payload.photo_sha256 if isinstance(payload, DuplicateFace) else None) or (
        item.photo_sha256 if item else None)
    if not sha:
        raise Conflict("this case has no stored photo to enroll; use fix photo")
    tpl = _enroll_bytes(ctx, session, p, ctx.photos.get(sha), None, accept_duplicate=True)
    other = payload.duplicate_of_pensioner_id if isinstance(payload, DuplicateFace) else None
    close(session, case, who, Decision.NOT_DUPLICATE, note, action="enrollment.not_duplicate",
          client_addr=client_addr, template_id=tpl.id, other_pensioner_id=other)
    return tpl


