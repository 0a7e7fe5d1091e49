"""A request's unit of work is committed before its response starts.

A browser follows a decision's 303 at once: if the POST's transaction commits after the redirect was sent,
the case page it loads can still show the undecided case (the official CI once failed so: the fraud key's
navigation landed on a page without ``#case-decision``). And a commit that fails after a 303 was sent is a
decision lost while the caseworker was shown it as done. FastAPI runs the exit code of a ``yield``
dependency after the response is sent unless it is declared ``scope="function"``; these tests watch the ASGI
messages themselves, so they do not depend on a race being lost."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

from lifecert.services.context import AppContext
from lifecert.storage.models import AuditEvent, ReviewCase
from server.app import create_app
from tests.integration.console_support import case_row, login, make_case, make_pensioner, make_user


class AtResponseStart:
    """An ASGI wrapper: when a response to ``method path`` starts, runs ``look()`` (a fresh database session,
    as the next request would have) and keeps (status, what it saw)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.watch: tuple[str, str, Callable[[], Any]] | None = None
        self.seen: list[tuple[int, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def snoop(message: dict[str, Any]) -> None:
            if (message["type"] == "http.response.start" and self.watch is not None
                    and (scope["method"], scope["path"]) == self.watch[:2]):
                self.seen.append((message["status"], self.watch[2]()))
            await send(message)

        await self.app(scope, receive, snoop if scope["type"] == "http" else send)


@pytest.fixture
def watched(data_ctx: AppContext) -> Iterator[tuple[AtResponseStart, TestClient]]:
    snoop = AtResponseStart(create_app(data_ctx.settings, data_ctx))
    with TestClient(snoop, raise_server_exceptions=False) as client:
        yield snoop, client


def _state(ctx: AppContext, case_id: int) -> tuple[str, str | None]:
    with ctx.db.session() as s:
        c = s.get(ReviewCase, case_id)
        assert c is not None
        return c.status, c.decision


def test_given_a_console_decision_when_its_redirect_starts_then_the_decision_is_already_committed(
    data_ctx: AppContext, watched: tuple[AtResponseStart, TestClient]
) -> None:
    snoop, client = watched
    make_user(data_ctx, "cw_commit", "caseworker")
    cid = make_case(data_ctx, make_pensioner(data_ctx))
    csrf = login(client, "cw_commit")
    snoop.watch = ("POST", f"/console/cases/{cid}/fraud", lambda: _state(data_ctx, cid))
    r = client.post(f"/console/cases/{cid}/fraud", data={"csrf_token": csrf}, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, f"/console/cases/{cid}")
    # before the fix: [(303, ('open', None))] - the redirect went out before the commit
    assert snoop.seen == [(303, ("closed", "suspected_fraud"))]


def test_given_an_audited_case_view_when_its_page_starts_then_the_audit_event_is_already_committed(
    data_ctx: AppContext, watched: tuple[AtResponseStart, TestClient]
) -> None:
    snoop, client = watched
    make_user(data_ctx, "cw_view", "caseworker")
    cid = make_case(data_ctx, make_pensioner(data_ctx))
    login(client, "cw_view")

    def views() -> int:
        with data_ctx.db.session() as s:
            return int(s.scalar(select(func.count()).select_from(AuditEvent).where(
                AuditEvent.action == "case.view", AuditEvent.object_id == str(cid))) or 0)

    snoop.watch = ("GET", f"/console/cases/{cid}", views)
    assert client.get(f"/console/cases/{cid}").status_code == 200
    assert snoop.seen == [(200, 1)]


def test_given_a_commit_that_fails_when_deciding_then_no_redirect_says_it_was_done(
    data_ctx: AppContext, watched: tuple[AtResponseStart, TestClient]
) -> None:
    snoop, client = watched
    make_user(data_ctx, "cw_fail", "caseworker")
    cid = make_case(data_ctx, make_pensioner(data_ctx))
    csrf = login(client, "cw_fail")

    def disk_full(session: Any) -> None:  # the database refusing the commit (disk full, lock timeout, ...)
        raise RuntimeError("commit refused (test)")

    snoop.watch = ("POST", f"/console/cases/{cid}/fraud", lambda: None)
    event.listen(data_ctx.db.sessionmaker, "before_commit", disk_full)
    try:
        r = client.post(f"/console/cases/{cid}/fraud", data={"csrf_token": csrf}, follow_redirects=False)
    finally:
        event.remove(data_ctx.db.sessionmaker, "before_commit", disk_full)
    # before the fix: 303 to the case page (sent before the commit), and the decision rolled back
    assert r.status_code == 500, (r.status_code, r.headers.get("location"))
    assert snoop.seen == [(500, None)], "no other response was started first"
    assert (case_row(data_ctx, cid).status, case_row(data_ctx, cid).decision) == ("open", None)
