"""Pensioners and their face templates: register, add, read back, search 1:N."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from lifecert.domain.errors import ErrorCode, LifecertError, NotFound
from lifecert.domain.idnumber import parse_id_number
from lifecert.domain.quality import Quality
from lifecert.services.context import AppContext
from lifecert.storage.models import FaceTemplate, Pensioner, Photo, TemplateKind, template_aad, utcnow
from lifecert.storage.vector_index import Hit


def normalize_name(name: str) -> str:
    """Compare-ready Chinese name: NFKC (full→half width), no spaces, unified middle dots."""
    import unicodedata

    s = unicodedata.normalize("NFKC", name)
    for dot in ("·", "•", "‧", "∙", "・", "．", "."):
        s = s.replace(dot, "·")
    return "".join(s.split())


def get_pensioner(session: Session, id_number: str) -> Pensioner | None:
    return session.scalars(select(Pensioner).where(Pensioner.id_number == id_number)).first()


def upsert_pensioner(
    session: Session, id_number: str, name: str, *, region_code: str | None = None,
    address: str | None = None, phone: str | None = None,
) -> Pensioner:
    """Create or update a pensioner from a validated ID number (raises BadIdNumber)."""
    idn = parse_id_number(id_number)
    p = get_pensioner(session, idn.value)
    if p is None:
        p = new_pensioner(idn.value, name, region_code=region_code, address=address, phone=phone)
        session.add(p)
        session.flush()
    else:
        update_pensioner(p, name, address=address, phone=phone)
    return p


def new_pensioner(
    id_number: str, name: str, *, region_code: str | None = None, address: str | None = None,
    phone: str | None = None,
) -> Pensioner:
    """A new, not yet added Pensioner row with sex, birth date and region derived from the
    ID number (raises BadIdNumber). Callers that know the number is not stored yet (the batch
    writer, after one lookup for the whole batch) add it themselves."""
    idn = parse_id_number(id_number)
    return Pensioner(
        id_number=idn.value, name=name.strip(), sex=idn.sex, birth_date=idn.birth_date,
        region_code=region_code or idn.region_code, address=address, phone=phone,
    )


def update_pensioner(p: Pensioner, name: str, *, address: str | None = None, phone: str | None = None) -> None:
    """Take a newer name (when it differs beyond spacing/dots), address or phone."""
    if name.strip() and normalize_name(p.name) != normalize_name(name):
        p.name = name.strip()
    if address:
        p.address = address
    if phone:
        p.phone = phone


def store_photo(ctx: AppContext, session: Session, data: bytes, sha: str, width: int, height: int,
                original_name: str | None = None) -> Photo:
    ctx.photos.put(data, sha)
    photo = session.get(Photo, sha)
    if photo is None:
        photo = Photo(sha256=sha, size=len(data), width=width, height=height, original_name=original_name)
        session.add(photo)
        session.flush()
    return photo


def add_template(
    ctx: AppContext,
    session: Session,
    pensioner: Pensioner,
    embedding: NDArray[np.float32],
    *,
    photo_sha256: str,
    quality: Quality | dict[str, object],
    kind: str = TemplateKind.ID_PHOTO,
    model_key: str | None = None,
    engine: str | None = None,
    run_id: int | None = None,
    flush: bool = True,
    profile: str | None = None,
) -> FaceTemplate:
    """Seal and add a template. ``profile``: the embedding views that made ``embedding``
    (default: the configured enroll profile). ``flush=False`` leaves the INSERT to the caller's
    next flush (batch writers flush once for many templates; ``tpl.id`` is unset until then)."""
    key = model_key or ctx.model.key
    expected = ctx.model.embedding_size if key == ctx.model.key else embedding.shape[0]
    if embedding.shape != (expected,):
        raise LifecertError(
            f"embedding has shape {embedding.shape}, model {key} makes ({expected},)", code=ErrorCode.MODEL_MISMATCH
        )
    tpl = FaceTemplate(
        pensioner_id=pensioner.id,
        engine=engine or ctx.model.engine,
        model_key=key,
        kind=kind,
        embedding_enc=ctx.cipher.seal_embedding(embedding, template_aad(pensioner.id, key, photo_sha256)),
        embedding_profile=profile or ctx.settings.embedding.enroll_profile,
        photo_sha256=photo_sha256,
        quality=quality.as_dict() if isinstance(quality, Quality) else dict(quality),
        enrollment_run_id=run_id,
    )
    session.add(tpl)
    if flush:
        session.flush()
    return tpl


def retire_template(tpl: FaceTemplate) -> None:
    tpl.active = False
    tpl.replaced_at = utcnow()


def active_templates(session: Session, pensioner_id: int, model_key: str) -> list[FaceTemplate]:
    """Active templates of one pensioner and model; refresh templates past ``expires_at`` no longer
    count even before ``refresh.expire_due`` retires them."""
    return list(
        session.scalars(
            select(FaceTemplate)
            .where(
                FaceTemplate.pensioner_id == pensioner_id,
                FaceTemplate.model_key == model_key,
                FaceTemplate.active.is_(True),
                or_(FaceTemplate.expires_at.is_(None), FaceTemplate.expires_at > utcnow()),
            )
            .order_by(FaceTemplate.id)
        )
    )


def template_vector(ctx: AppContext, tpl: FaceTemplate) -> NDArray[np.float32]:
    return ctx.cipher.open_embedding(tpl.embedding_enc, tpl.aad())


@dataclass(frozen=True)
class Match:
    template_id: int
    kind: str
    score: float


def match_pensioner(
    ctx: AppContext, session: Session, pensioner_id: int, probe: NDArray[np.float32], model_key: str | None = None
) -> list[Match]:
    """1:1 — cosine similarity of ``probe`` to each active template of the pensioner, best first."""
    key = model_key or ctx.model.key
    tpls = active_templates(session, pensioner_id, key)
    if not tpls:
        raise NotFound("pensioner has no face template for this model", code=ErrorCode.NO_TEMPLATE)
    out = [Match(t.id, t.kind, float(np.dot(template_vector(ctx, t), probe))) for t in tpls]
    return sorted(out, key=lambda m: m.score, reverse=True)


def search(
    ctx: AppContext, session: Session, probe: NDArray[np.float32], k: int = 5, model_key: str | None = None
) -> list[Hit]:
    """1:N — nearest active templates of all pensioners."""
    return ctx.index.get(session, model_key or ctx.model.key).search(probe, k)
