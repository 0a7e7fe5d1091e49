"""The auditor's page and CSV export over HTTP; concurrent writers do not fork the chain."""

from __future__ import annotations

import threading

from fastapi.testclient import TestClient
from sqlalchemy import select

from lifecert.services import audit
from lifecert.services.context import AppContext
from lifecert.storage.models import AuditEvent
from server.app import create_app
from tests.integration.console_support import login, make_user


def test_given_auditor_when_exporting_csv_then_rows_streamed_and_export_audited(ctx: AppContext) -> None:
    make_user(ctx, "aud", "auditor")
    with TestClient(create_app(ctx.settings, ctx)) as c:
        login(c, "aud")
        page = c.get("/console/audit?action=login.success&verify=1")
        assert page.status_code == 200 and 'id="chain-report"' in page.text
        r = c.get("/console/audit/export.csv?action=login.")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert "no-store" in r.headers["cache-control"]
        lines = r.content.decode("utf-8-sig").strip().splitlines()
        assert lines[0].startswith("id,at,actor") and len(lines) == 2 and ",login.success," in lines[1]
    with ctx.db.session() as s:
        ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "audit.export")).one()
        assert (ev.actor, ev.role, ev.client_addr, ev.detail["rows"]) == ("aud", "auditor", "testclient", 1)
        assert audit.verify_chain(s).ok


def test_given_many_threads_writing_audit_events_then_chain_stays_linear(ctx: AppContext) -> None:
    def work(n: int) -> None:
        for i in range(10):
            with ctx.db.session() as s:
                audit.record(s, actor=f"t{n}", role="caseworker", action="photo.view", object_type="photo",
                             object_id=i)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with ctx.db.session() as s:
        rep = audit.verify_chain(s)
    assert rep.ok and rep.rows == 60
