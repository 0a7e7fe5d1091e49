"""Batch enrollment on real faces: every reason code, inputs, idempotence and reports."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from enrollment.job import JobOptions, JobResult, run_job
from enrollment.manifest import ManifestError, load_inputs
from lifecert.domain.errors import ErrorCode
from lifecert.domain.idnumber import make_id_number
from lifecert.services.context import AppContext
from lifecert.storage.models import EnrollmentItem, EnrollmentRun, FaceTemplate, Pensioner, ReviewCase
from tests.unit.test_image_decode import png_header_only


def ids(n: int, start: int = 0) -> list[str]:
    return [make_id_number("220202", date(1950, 1, 1 + (i % 28)), 2 * i + 1) for i in range(start, start + n)]


def lfw_people(faces: Path, n: int, min_photos: int = 1) -> list[list[Path]]:
    out = []
    for d in sorted((faces / "lfw" / "images").iterdir()):
        photos = sorted(d.glob("*.jpg"))
        if len(photos) >= min_photos:
            out.append(photos)
        if len(out) == n:
            break
    return out


def write_manifest(folder: Path, rows: list[tuple[str, str, str]], encoding: str = "utf-8") -> Path:
    p = folder / "manifest.csv"
    with p.open("w", encoding=encoding, newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["身份证号", "姓名", "照片"])
        w.writerows(rows)
    return p


def run(ctx: AppContext, folder: Path, manifest: Path | None, **kw: object) -> JobResult:
    return run_job(ctx, folder, manifest, JobOptions(workers=0, **kw))  # type: ignore[arg-type]


def reasons(result: JobResult) -> dict[int, str]:
    return {r["row_no"]: r["reason"] for r in result.rows}


def stage_photos(folder: Path, srcs: Sequence[Path], id_numbers: Sequence[str],
                 name: str) -> list[tuple[str, str, str]]:
    """Copy ``srcs`` into ``folder`` (made if missing) as 0.jpg, 1.jpg, ... and return the manifest
    rows ``(ID number, name + index, file name)``."""
    folder.mkdir(exist_ok=True)
    rows = []
    for i, (src, idn) in enumerate(zip(srcs, id_numbers, strict=True)):
        (folder / f"{i}.jpg").write_bytes(src.read_bytes())
        rows.append((idn, f"{name}{i}", f"{i}.jpg"))
    return rows


def frontal_lfw(faces: Path, n: int) -> list[Path]:
    """LFW first photos that pass the default quality gates (chosen by name, checked by the tests)."""
    return [p[0] for p in lfw_people(faces, n)]


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    d = tmp_path / "photos"
    d.mkdir()
    return d


def test_given_good_photos_when_enrolled_then_templates_are_encrypted_and_indexed(
    ctx: AppContext, faces_dir: Path, photos: Path
) -> None:
    rows = stage_photos(photos, frontal_lfw(faces_dir, 6), ids(6), "测试")
    res = run(ctx, photos, write_manifest(photos, rows))
    enrolled = [r for r in res.rows if r["reason"] == "ENROLLED"]
    assert len(enrolled) >= 5, res.rows  # LFW is not ID photos: allow one pose/quality reject
    with ctx.db.session() as s:
        tpls = s.scalars(select(FaceTemplate)).all()
        assert len(tpls) == len(enrolled)
        for t in tpls:
            assert t.model_key == ctx.model.key
            # at rest the embedding is AES-GCM ciphertext, not 512 bytes of float32
            assert len(t.embedding_enc) == 1 + 8 + 12 + 128 * 4 + 16  # version, key id, nonce, data, tag
            assert ctx.cipher.key_id_of(t.embedding_enc) == ctx.cipher.current_key_id
            assert ctx.photos.exists(t.photo_sha256)
        assert s.scalar(select(func.count(Pensioner.id))) == 6
        idx = ctx.index.get(s, ctx.model.key)
        assert idx.size == len(enrolled)
        # the enrolled photo finds its own template first
        p = s.scalars(select(Pensioner).where(Pensioner.id_number == enrolled[0]["id_number"])).one()
        hits = idx.search(ctx.cipher.open_embedding(tpls[0].embedding_enc, tpls[0].aad()), 1)
        assert hits[0].template_id == tpls[0].id and hits[0].score > 0.99
        assert p.name == "测试0" and p.sex in "MF"
    assert {"csv", "json", "html"} <= set(res.reports)
    for path in res.reports.values():
        assert path.stat().st_mode & 0o077 == 0  # reports hold personal data: owner-only


def test_given_a_rerun_when_enrolled_again_then_nothing_is_duplicated(
    ctx: AppContext, faces_dir: Path, photos: Path
) -> None:
    rows = stage_photos(photos, frontal_lfw(faces_dir, 3), ids(3), "人")
    man = write_manifest(photos, rows)
    first = run(ctx, photos, man)
    second = run(ctx, photos, man)
    ok_first = sum(1 for r in first.rows if r["reason"] == "ENROLLED")
    assert second.counts["ALREADY_ENROLLED"] == ok_first
    with ctx.db.session() as s:
        assert s.scalar(select(func.count(FaceTemplate.id))) == ok_first


def test_given_a_newer_photo_when_enrolled_then_replaced_and_old_template_retired(
    ctx: AppContext, faces_dir: Path, photos: Path
) -> None:
    person = lfw_people(faces_dir, 200, min_photos=4)[0]
    idn = ids(1)[0]
    (photos / "old.jpg").write_bytes(person[0].read_bytes())
    run(ctx, photos, write_manifest(photos, [(idn, "王五", "old.jpg")]))
    newer = photos / "new"
    newer.mkdir()
    (newer / "new.jpg").write_bytes(person[1].read_bytes())
    res = run(ctx, newer, write_manifest(newer, [(idn, "王五", "new.jpg")]))
    assert reasons(res)[1] == "REPLACED"
    with ctx.db.session() as s:
        tpls = s.scalars(select(FaceTemplate).order_by(FaceTemplate.id)).all()
        assert [t.active for t in tpls] == [False, True]
        assert tpls[0].replaced_at is not None


def _blur(img: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), 6)


def _dark(img: np.ndarray) -> np.ndarray:
    return (img.astype(np.float32) * 0.12).astype(np.uint8)


def _tiny(img: np.ndarray) -> np.ndarray:
    # detectable (the detector upsamples small images) but under the 60 px minimum face size
    small = cv2.resize(img, (110, 110), interpolation=cv2.INTER_AREA)
    canvas = np.full((300, 300, 3), 128, np.uint8)
    canvas[95:205, 95:205] = small
    return canvas


def test_given_every_bad_input_when_enrolled_then_each_gets_its_reason_code(
    ctx: AppContext, faces_dir: Path, photos: Path
) -> None:
    good = frontal_lfw(faces_dir, 3)
    base = cv2.imread(str(good[0]))
    idn = ids(40)
    rows: list[tuple[str, str, str]] = []
    expect: dict[int, str] = {}

    def add(fname: str, expected: str, data: bytes | None = None, id_number: str | None = None) -> None:
        if data is not None:
            (photos / fname).write_bytes(data)
        rows.append((id_number or idn[len(rows)], f"人{len(rows)}", fname))
        expect[len(rows)] = expected

    enc = lambda im: cv2.imencode(".jpg", im)[1].tobytes()  # noqa: E731
    add("good.jpg", "ENROLLED", good[0].read_bytes())
    add("blur.jpg", "BLURRY", enc(_blur(base)))
    add("dark.jpg", "TOO_DARK", enc(_dark(base)))
    add("tiny.jpg", "FACE_TOO_SMALL", enc(_tiny(base)))
    add("two.jpg", "MULTIPLE_FACES", (faces_dir / "multi" / "two_people.jpg").read_bytes())
    gradient = np.tile(np.linspace(0, 255, 300, dtype=np.uint8), (300, 1))[..., None].repeat(3, 2)
    add("noface.jpg", "NO_FACE", enc(gradient))
    add("turned.jpg", "POSE_TOO_LARGE", (faces_dir / "pose" / "left_face.jpeg").read_bytes())
    add("closed.jpg", "EYES_CLOSED", (faces_dir / "eyes" / "close_eyes.jpeg").read_bytes())
    wrong_check = idn[30][:17] + ("0" if idn[30][17] != "0" else "1")
    add("bad-id.jpg", "BAD_ID_NUMBER", good[1].read_bytes(), id_number=wrong_check)
    add("trunc.jpg", "UNREADABLE_IMAGE", good[2].read_bytes()[:3000])
    add("photo.heic", "UNSUPPORTED_FORMAT", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64)
    add("bomb.png", "IMAGE_TOO_LARGE", png_header_only(10_000, 10_000))
    add("absent.jpg", "FILE_MISSING")
    add("good.jpg", "DUPLICATE_ROW", id_number=idn[0])
    # the same face re-encoded under another ID number: flagged, never merged
    add("again.jpg", "DUPLICATE_FACE", enc(cv2.resize(base, (240, 240))))

    res = run(ctx, photos, write_manifest(photos, rows))
    got = reasons(res)
    assert got == expect
    with ctx.db.session() as s:
        dup = s.scalars(select(EnrollmentItem).where(EnrollmentItem.reason == "DUPLICATE_FACE")).one()
        assert dup.duplicate_of_pensioner_id is not None and dup.similarity is not None
        assert dup.template_id is None  # not merged
        cases = s.scalars(select(ReviewCase).where(ReviewCase.kind == "enrollment")).all()
        queued = {c.reason for c in cases}
        assert {"DUPLICATE_FACE", "NO_FACE", "BLURRY", "MULTIPLE_FACES"} <= queued
        assert "DUPLICATE_ROW" not in queued
        assert s.scalar(select(func.count(FaceTemplate.id))) == 1
    html = res.reports["html"].read_text(encoding="utf-8")
    assert "DUPLICATE_FACE" in html and "data:image/jpeg;base64," in html


def test_given_alpha_cmyk_grey_and_exif_rotated_photos_when_enrolled_then_all_enrol(
    ctx: AppContext, faces_dir: Path, photos: Path
) -> None:
    srcs = frontal_lfw(faces_dir, 4)
    idn = ids(4, start=50)
    pil = [Image.open(p).convert("RGB").resize((500, 500)) for p in srcs]

    def save(img: Image.Image, name: str, fmt: str, **kw: object) -> None:
        buf = io.BytesIO()
        img.save(buf, fmt, **kw)
        (photos / name).write_bytes(buf.getvalue())

    save(pil[0].convert("RGBA"), "alpha.png", "PNG")
    save(pil[1].convert("CMYK"), "cmyk.jpg", "JPEG")
    save(pil[2].convert("L"), "grey.jpg", "JPEG")
    exif = Image.Exif()
    exif[0x0112] = 8  # display = rotate 90° CCW... the stored pixels are rotated the other way
    save(pil[3].transpose(Image.Transpose.ROTATE_270), "rotated.jpg", "JPEG", exif=exif.tobytes())
    names = ["alpha.png", "cmyk.jpg", "grey.jpg", "rotated.jpg"]
    res = run(ctx, photos, write_manifest(photos, [(i, "张", n) for i, n in zip(idn, names, strict=True)]))
    assert [r["reason"] for r in sorted(res.rows, key=lambda r: r["row_no"])] == ["ENROLLED"] * 4, res.rows


def test_given_gbk_bom_and_xlsx_manifests_when_read_then_chinese_names_survive(photos: Path) -> None:
    (photos / "a.jpg").write_bytes(b"x")
    rows = [(ids(1)[0], "欧阳·娜娜", "a.jpg")]
    for enc in ("gbk", "utf-8-sig", "utf-8"):
        inputs = load_inputs(photos, write_manifest(photos, rows, encoding=enc))
        assert inputs.rows[0].name == "欧阳·娜娜", enc
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["id_number", "name", "photo"])
    ws.append(list(rows[0]))
    wb.save(photos / "m.xlsx")
    assert load_inputs(photos, photos / "m.xlsx").rows[0].name == "欧阳·娜娜"


def test_given_a_zip_with_manifest_or_id_named_files_when_read_then_rows_resolve(tmp_path: Path) -> None:
    z1 = tmp_path / "with-manifest.zip"
    idn = ids(2)
    with zipfile.ZipFile(z1, "w") as zf:
        zf.writestr("photos/p1.jpg", b"1")
        zf.writestr("list.csv", f"身份证号,姓名,照片\n{idn[0]},李四,p1.jpg\n".encode("gbk"))
    rows = load_inputs(z1).rows
    assert rows[0].source is not None and rows[0].source.read(10) == b"1" and rows[0].name == "李四"
    z2 = tmp_path / "by-name.zip"
    with zipfile.ZipFile(z2, "w") as zf:
        zf.writestr(f"{idn[1]}.jpg", b"2")
    rows = load_inputs(z2).rows
    assert rows[0].id_number == idn[1]


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "empty"), ("身份证号,姓名\n", "no rows"), ("姓名,照片\n张三,a.jpg\n", "id_number")],
)
def test_given_a_broken_manifest_when_enrolled_then_bad_manifest_and_nothing_written(
    ctx: AppContext, photos: Path, content: str, message: str
) -> None:
    man = photos / "m.csv"
    man.write_text(content, encoding="utf-8")
    with pytest.raises(ManifestError) as ei:
        run(ctx, photos, man)
    assert ei.value.code == ErrorCode.BAD_MANIFEST and message in ei.value.message
    with ctx.db.session() as s:
        assert s.scalar(select(func.count(EnrollmentRun.id))) == 0


def test_given_dry_run_when_enrolled_then_report_written_and_database_untouched(
    ctx: AppContext, faces_dir: Path, photos: Path
) -> None:
    src = frontal_lfw(faces_dir, 1)[0]
    (photos / "a.jpg").write_bytes(src.read_bytes())
    res = run(ctx, photos, write_manifest(photos, [(ids(1)[0], "赵六", "a.jpg")]), dry_run=True)
    assert res.run_id is None and res.rows[0]["reason"] == "ENROLLED"
    meta = json.loads(res.reports["json"].read_text(encoding="utf-8"))
    assert meta["dry_run"] is True
    with ctx.db.session() as s:
        assert s.scalar(select(func.count(Pensioner.id))) == 0
        assert s.scalar(select(func.count(EnrollmentRun.id))) == 0
    assert not any(ctx.settings.photos_dir.rglob("*.bin"))
