"""Console pages of issue 15 (exchange): a home visit requested on a case, assigned by the caseworker,
closed on site by the community worker with a real photo; an extract uploaded by staff and its history."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from lifecert.engine.image import read_image_file
from lifecert.services.context import AppContext
from lifecert.storage.models import Pensioner, PensionerStatus, SurvivalConfirmation
from lifecert.storage.models_data import DataImport
from lifecert.storage.models_staff import HomeVisitStatus, HomeVisitTask
from server.app import create_app
from tests.integration.console_support import login, make_case, make_user
from tests.integration.test_data_support import DEATH_HEADER, idn
from tests.integration.verification_support import enroll


@pytest.fixture
def app_ctx(ctx: AppContext) -> Iterator[tuple[AppContext, object]]:
    yield ctx, create_app(ctx.settings, ctx)


def test_given_visit_requested_on_case_when_assigned_and_closed_on_site_then_home_visit_confirmation(
        app_ctx: tuple[AppContext, object], faces_dir: Path) -> None:
    ctx, app = app_ctx
    p = enroll(ctx, read_image_file(faces_dir / "lfw/images/Tony_Blair/Tony_Blair_0001.jpg"), seq=81)
    case_id = make_case(ctx, p.id)
    make_user(ctx, "wang", "caseworker")
    make_user(ctx, "li", "community_worker")
    with TestClient(app) as cw:  # type: ignore[arg-type]
        csrf = login(cw, "wang")
        r = cw.post(f"/console/cases/{case_id}/visit", data={"csrf_token": csrf, "note": "卧床"},
                    follow_redirects=False)
        assert r.status_code == 303, r.text
        with ctx.db.session() as s:
            task = s.scalars(select(HomeVisitTask)).one()
            task_id = task.id
        page = cw.get("/console/visits")
        assert f"/console/visits/{task_id}/assign" in page.text
        r = cw.post(f"/console/visits/{task_id}/assign", data={"csrf_token": csrf, "worker": "li"},
                    follow_redirects=False)
        assert r.status_code == 303 and "error" not in r.headers["location"], r.headers["location"]
    with TestClient(app) as w:  # type: ignore[arg-type]
        csrf = login(w, "li")
        mine = w.get("/console/my-visits")
        assert mine.status_code == 200 and f"/console/visits/{task_id}/close" in mine.text
        assert "今日已协助 0 / 20 次" in mine.text
        photo = (faces_dir / "lfw/images/Tony_Blair/Tony_Blair_0002.jpg").read_bytes()
        r = w.post(f"/console/visits/{task_id}/close", data={"csrf_token": csrf, "note": "见到本人"},
                   files={"photo": ("onsite.jpg", photo, "image/jpeg")}, follow_redirects=False)
        assert r.status_code == 303 and "visit_CONFIRMED" in r.headers["location"], r.headers["location"]
        no_csrf = w.post(f"/console/visits/{task_id}/close", data={"note": "x"},
                         files={"photo": ("onsite.jpg", photo, "image/jpeg")}, follow_redirects=False)
        assert no_csrf.status_code == 403
    with ctx.db.session() as s:
        t = s.get(HomeVisitTask, task_id)
        assert t is not None and t.status == HomeVisitStatus.DONE
        conf = s.scalars(select(SurvivalConfirmation)).one()
        assert conf.method == "home_visit" and conf.pensioner_id == p.id


def test_given_staff_when_uploading_extract_in_console_then_imported_like_cli_and_listed(
        app_ctx: tuple[AppContext, object]) -> None:
    ctx, app = app_ctx
    make_user(ctx, "admin1", "admin")
    make_user(ctx, "aud", "auditor")
    with ctx.db.session() as s:
        from lifecert.services.templates import upsert_pensioner

        upsert_pensioner(s, idn(5), "测试五")
    body = (",".join(DEATH_HEADER) + f"\n{idn(5)},测试五,2026-10-02,死亡\n"
            "110101195006010000,坏号,2026-10-02,\n").encode()
    with TestClient(app) as c:  # type: ignore[arg-type]
        csrf = login(c, "admin1")
        r = c.post("/console/imports/upload", data={"csrf_token": csrf, "department": "police_deregistration",
                                                    "period": "2026-10"},
                   files={"extract": ("死亡名单.csv", body, "text/csv")}, follow_redirects=False)
        assert r.status_code == 303 and "import_done" in r.headers["location"], r.headers["location"]
        again = c.post("/console/imports/upload", data={"csrf_token": csrf, "department": "police_deregistration",
                                                        "period": "2026-10"},
                       files={"extract": ("again.csv", body, "text/csv")}, follow_redirects=False)
        assert "import_repeat" in again.headers["location"]
        listing = c.get("/console/imports")
        assert listing.status_code == 200 and "police_deregistration" in listing.text and "admin1" in listing.text
        with ctx.db.session() as s:
            import_id = s.scalars(select(DataImport)).one().id
        detail = c.get(f"/console/imports/{import_id}")
        assert detail.status_code == 200 and "BAD_ID_NUMBER" in detail.text
        assert "110101195006010000" not in detail.text and "坏号" not in detail.text  # row numbers, never content
        assert c.get("/console/imports/999999").status_code == 404
    with TestClient(app) as a:  # type: ignore[arg-type]
        login(a, "aud")
        assert a.get("/console/imports").status_code == 403
    with ctx.db.session() as s:
        imp = s.scalars(select(DataImport)).one()
        assert (imp.actor, imp.rows_total, imp.rows_rejected, imp.period) == ("admin1", 2, 1, "2026-10")
        assert s.scalars(select(Pensioner)).one().status == PensionerStatus.DECEASED


def test_given_onsite_photo_of_someone_else_when_closed_then_caseworker_opens_the_review_case_with_the_photo(
        app_ctx: tuple[AppContext, object], faces_dir: Path) -> None:
    from lifecert.services import staff
    from lifecert.services.review import visits
    from lifecert.storage.models import ReviewCase

    ctx, app = app_ctx
    p = enroll(ctx, read_image_file(faces_dir / "lfw/images/Tony_Blair/Tony_Blair_0001.jpg"), seq=82)
    make_user(ctx, "wang", "caseworker")
    make_user(ctx, "li", "community_worker")
    with ctx.db.session() as s:
        task = HomeVisitTask(pensioner_id=p.id, region_code=p.region_code, address="x")
        s.add(task)
        s.flush()
        task_id = task.id
        cw = staff.principal_for(staff.get_user(s, "wang"), "token")
        visits.assign_visit(s, cw, task_id, "li")
    with TestClient(app) as w:  # type: ignore[arg-type]
        csrf = login(w, "li")
        other = (faces_dir / "lfw/images/Colin_Powell/Colin_Powell_0001.jpg").read_bytes()
        r = w.post(f"/console/visits/{task_id}/close", data={"csrf_token": csrf, "note": "开门的人不像本人"},
                   files={"photo": ("onsite.jpg", other, "image/jpeg")}, follow_redirects=False)
        assert "visit_LOW_MATCH" in r.headers["location"], r.headers["location"]
    with ctx.db.session() as s:
        case = s.scalars(select(ReviewCase)).one()
        sha = case.payload["best_frames"][0]["sha256"]
    with TestClient(app) as c:  # type: ignore[arg-type]
        login(c, "wang")
        page = c.get(f"/console/cases/{case.id}")
        assert page.status_code == 200 and "LOW_MATCH" in page.text
        photo = c.get(f"/console/cases/{case.id}/photos/{sha}")
        assert photo.status_code == 200 and photo.content == other
        visits_page = c.get("/console/visits?status=review")
        assert visits_page.status_code == 200 and "LOW_MATCH" in visits_page.text
