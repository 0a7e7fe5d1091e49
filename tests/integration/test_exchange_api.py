"""Department exchange API over real TLS: uvicorn on 127.0.0.1 verifying client certificates made in the
test, HMAC-signed uploads with department API keys, receipts, idempotence, replay and refusals."""

from __future__ import annotations

import hashlib
import io
import ssl
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from lifecert.config import Settings
from lifecert.services import exchange
from lifecert.services.context import AppContext
from lifecert.storage.models import Pensioner, PensionerStatus
from lifecert.storage.models_data import DataImport, DataRecord
from tests.integration.exchange_support import TestCA, tls_server
from tests.integration.test_data_support import DEATH_HEADER, add_pensioners, idn, open_ctx

DEPT = "police_deregistration"
URL = f"/api/v1/exchange/extracts?department={DEPT}&period=2026-10&file_name=deaths.csv"


@pytest.fixture
def data_ctx(settings: Settings) -> Iterator[AppContext]:
    yield from open_ctx(settings)


def death_csv(rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    buf.write(",".join(DEATH_HEADER) + "\n")
    for r in rows:
        buf.write(",".join(r) + "\n")
    return buf.getvalue().encode()


def people(ctx: AppContext, n: int = 3) -> list[tuple[str, str]]:
    ps = [(idn(i), f"测试{i}") for i in range(1, n + 1)]
    add_pensioners(ctx, ps)
    return ps


def signed(key: exchange.NewKey, body: bytes, url: str = URL, method: str = "POST",
           now: datetime | None = None) -> dict[str, str]:
    return exchange.signed_headers(key.key_id, key.secret, method, url, hashlib.sha256(body).hexdigest(), now)


def new_key(ctx: AppContext, department: str = DEPT) -> exchange.NewKey:
    with ctx.db.session() as s:
        return exchange.create_api_key(s, ctx.cipher, department, actor="cli:test")


def map_cert(ctx: AppContext, subject: str, department: str = DEPT) -> str:
    with ctx.db.session() as s:
        return exchange.add_certificate(s, department, subject=subject, actor="cli:test").key_id


def test_given_mapped_client_cert_when_extract_uploaded_over_mtls_then_imported_with_receipt(
        data_ctx: AppContext, tmp_path: Path) -> None:
    ps = people(data_ctx)
    body = death_csv([[ps[0][0], ps[0][1], "2026-10-03", "死亡注销"],
                      ["110101195006010000", "坏号码", "2026-10-04", ""],  # bad check digit
                      [ps[1][0], ps[1][1], "2026-13-40", ""]])  # bad date
    ca = TestCA(tmp_path / "pki", "agency-ca")
    dept = ca.issue("police", "police-exchange")
    map_cert(data_ctx, dept.subject)
    with tls_server(data_ctx, ca) as srv, srv.client(dept) as c:
        r = c.post(URL, content=body)
        again = c.post(URL, content=body)
    assert r.status_code == 201, r.text
    got = r.json()
    assert (got["department"], got["rows_total"], got["rows_valid"], got["rows_rejected"]) == (DEPT, 3, 1, 2)
    assert got["outcomes"] == {"deceased": 1}
    assert got["rejects"] == [{"row": 3, "reason": "BAD_ID_NUMBER"}, {"row": 4, "reason": "BAD_DATE"}]
    assert got["rejects_by_reason"] == {"BAD_ID_NUMBER": 1, "BAD_DATE": 1}
    for secret in (ps[0][0], ps[0][1], ps[1][0], "110101195006010000", "坏号码", "2026-13-40"):
        assert secret not in r.text  # no personal data (or row content) echoed
    # the same bytes again: no-op, the first import's receipt
    assert again.status_code == 200 and again.json()["already_imported"] is True
    assert again.json()["import_id"] == got["import_id"]
    with data_ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(DataImport)) == 1
        assert s.scalar(select(func.count()).select_from(DataRecord)) == 1
        dead = s.scalars(select(Pensioner).where(Pensioner.id_number == ps[0][0])).one()
        assert dead.status == PensionerStatus.DECEASED
        imp = s.scalars(select(DataImport)).one()
        assert imp.actor == f"dept:{DEPT}" and imp.file_name == "deaths.csv"
    assert not any((data_ctx.settings.data_dir / "incoming").iterdir())  # temporary files removed


def test_given_cert_required_when_client_has_no_cert_or_other_ca_then_handshake_refused(
        data_ctx: AppContext, tmp_path: Path) -> None:
    ca = TestCA(tmp_path / "pki", "agency-ca")
    rogue_ca = TestCA(tmp_path / "rogue", "rogue-ca")
    rogue = rogue_ca.issue("rogue", "police-exchange")  # same subject, wrong issuer
    map_cert(data_ctx, rogue.subject)
    body = death_csv([])
    with tls_server(data_ctx, ca, require_cert=True) as srv:
        for cert in (None, rogue):
            with srv.client(cert) as c, pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError,
                                                       ssl.SSLError)):
                c.post(URL, content=body)
    with data_ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(DataImport)) == 0


def test_given_unmapped_or_revoked_cert_when_uploading_then_401_and_nothing_imported(
        data_ctx: AppContext, tmp_path: Path) -> None:
    ps = people(data_ctx, 1)
    body = death_csv([[ps[0][0], ps[0][1], "2026-10-03", ""]])
    ca = TestCA(tmp_path / "pki", "agency-ca")
    unmapped = ca.issue("stranger", "some-other-office")
    revoked = ca.issue("old", "police-exchange-2025")
    kid = map_cert(data_ctx, revoked.subject)
    with data_ctx.db.session() as s:
        exchange.revoke(s, kid, actor="cli:test")
    with tls_server(data_ctx, ca, require_cert=False) as srv:
        for cert in (unmapped, revoked, None):
            with srv.client(cert) as c:
                r = c.post(URL, content=body)
            assert r.status_code == 401, r.text
            assert r.json()["error"]["code"] == "UNAUTHENTICATED"
    with data_ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(DataImport)) == 0
        assert s.scalars(select(Pensioner)).one().status == PensionerStatus.ACTIVE


def test_given_api_key_when_signed_upload_then_imported_and_bad_stale_or_replayed_refused(
        data_ctx: AppContext, tmp_path: Path) -> None:
    ps = people(data_ctx, 2)
    body = death_csv([[ps[0][0], ps[0][1], "2026-10-03", ""]])
    other = death_csv([[ps[1][0], ps[1][1], "2026-10-05", ""]])
    key = new_key(data_ctx)
    other_dept_key = new_key(data_ctx, "civil_affairs_cremation")
    ca = TestCA(tmp_path / "pki", "agency-ca")
    with tls_server(data_ctx, ca, require_cert=False) as srv, srv.client(None) as c:
        good = signed(key, body)
        # tampered body: the signed hash no longer matches
        r_body = c.post(URL, content=other, headers=good)
        # wrong secret
        forged = dict(signed(exchange.NewKey(key.key_id, other_dept_key.secret), body))
        r_forged = c.post(URL, content=body, headers=forged)
        # stale timestamp (ten minutes old, window five)
        r_stale = c.post(URL, content=body, headers=signed(key, body, now=datetime.now(UTC) - timedelta(minutes=10)))
        # another department's key may not deliver as this department
        r_other = c.post(URL, content=body, headers=signed(other_dept_key, body))
        # `good` was spent by the tampered-body attempt (its signature verified; the body did not): sign anew
        fresh = signed(key, body, now=datetime.now(UTC) + timedelta(seconds=2))
        r_ok = c.post(URL, content=body, headers=fresh)
        r_replay = c.post(URL, content=body, headers=fresh)
        r_receipt_headers = signed(key, b"", url=f"/api/v1/exchange/extracts/{r_ok.json().get('import_id', 0)}",
                                   method="GET")
        r_receipt = c.get(f"/api/v1/exchange/extracts/{r_ok.json().get('import_id', 0)}", headers=r_receipt_headers)
        r_mine = c.get("/api/v1/exchange/extracts", headers=signed(key, b"", url="/api/v1/exchange/extracts",
                                                                  method="GET"))
        r_theirs = c.get("/api/v1/exchange/extracts", headers=signed(other_dept_key, b"",
                                                                    url="/api/v1/exchange/extracts", method="GET"))
    assert r_body.status_code == 401 and r_body.json()["error"]["code"] == "UNAUTHENTICATED"
    assert r_forged.status_code == 401
    assert r_stale.status_code == 401 and r_stale.json()["error"]["details"]["reason"] == "stale_timestamp"
    assert r_other.status_code == 403 and r_other.json()["error"]["code"] == "FORBIDDEN"
    assert r_ok.status_code == 201, r_ok.text
    assert r_ok.json()["outcomes"] == {"deceased": 1}
    assert r_replay.status_code == 409 and r_replay.json()["error"]["code"] == "NONCE_USED"
    assert r_receipt.status_code == 200 and r_receipt.json()["import_id"] == r_ok.json()["import_id"]
    assert [i["import_id"] for i in r_mine.json()["imports"]] == [r_ok.json()["import_id"]]
    assert r_theirs.status_code == 200 and r_theirs.json() == {"department": "civil_affairs_cremation", "imports": []}
    with data_ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(DataImport)) == 1
        statuses = {p.id_number: p.status for p in s.scalars(select(Pensioner))}
    assert statuses == {ps[0][0]: PensionerStatus.DECEASED, ps[1][0]: PensionerStatus.ACTIVE}


def test_given_bad_extract_when_uploaded_then_typed_error_and_nothing_written(
        data_ctx: AppContext, tmp_path: Path) -> None:
    key = new_key(data_ctx)
    wrong_header = "身份证,名字\n110101195006011234,某某\n".encode()
    ca = TestCA(tmp_path / "pki", "agency-ca")
    with tls_server(data_ctx, ca, require_cert=False) as srv, srv.client(None) as c:
        r = c.post(URL, content=wrong_header, headers=signed(key, wrong_header))
        empty = c.post(URL, content=b"", headers=signed(key, b""))
    assert r.status_code == 422 and r.json()["error"]["code"] == "BAD_MAPPING", r.text
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "BAD_EXTRACT"
    with data_ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(DataImport)) == 0


def test_given_trusted_proxy_forwarding_verified_subject_then_department_mapped_and_untrusted_peer_ignored(
        tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from server.app import create_app
    from tests.conftest import make_settings

    for trusted, expected in (("127.0.0.0/8", 201), ("", 401)):
        settings = make_settings(tmp_path / (trusted.replace("/", "_") or "none"), trusted_proxies=trusted)
        with AppContext(settings) as ctx:
            ps = people(ctx, 1)
            map_cert(ctx, "CN=police-exchange,O=Department,C=CN")
            body = death_csv([[ps[0][0], ps[0][1], date(2026, 10, 3).isoformat(), ""]])
            app = create_app(settings, ctx)
            app.state.startup_hooks.append(_no_warmup)
            with TestClient(app, client=("127.0.0.1", 40000)) as c:
                r = c.post(URL, content=body, headers={"X-SSL-Client-Verify": "SUCCESS",
                                                       "X-SSL-Client-S-DN": "CN=police-exchange,O=Department,C=CN"})
            assert r.status_code == expected, (trusted, r.text)


async def _no_warmup(app: object) -> None:
    app.state.warmups.clear()  # type: ignore[attr-defined]


def test_given_xlsx_and_oversize_bodies_when_uploaded_then_xlsx_imported_and_oversize_413_without_leftovers(
        tmp_path: Path) -> None:
    from tests.conftest import make_settings
    from tests.integration.test_data_support import write_xlsx

    settings = make_settings(tmp_path, exchange={"max_upload_bytes": 64 * 1024})
    with AppContext(settings) as ctx:
        ps = people(ctx, 1)
        key = new_key(ctx)
        xlsx = write_xlsx(tmp_path / "deaths.xlsx", DEATH_HEADER, [[ps[0][0], ps[0][1], "2026-10-03", "死亡"]])
        body = xlsx.read_bytes()
        url = f"/api/v1/exchange/extracts?department={DEPT}&period=2026-10&file_name=deaths.csv"  # misnamed
        big = death_csv([[ps[0][0], ps[0][1], "2026-10-03", "x" * 200]] * 2000)  # ~0.5 MB > 64 KiB + form overhead
        assert len(big) > settings.exchange.max_upload_bytes + 64 * 1024
        ca = TestCA(tmp_path / "pki", "agency-ca")
        with tls_server(ctx, ca, require_cert=False) as srv, srv.client(None) as c:
            r = c.post(url, content=body, headers=signed(key, body, url=url))
            r_big = c.post(URL, content=big, headers=signed(key, big))
        assert r.status_code == 201, r.text
        assert r.json()["file_format"] == "xlsx" and r.json()["outcomes"] == {"deceased": 1}
        assert r_big.status_code == 413 and r_big.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
        with ctx.db.session() as s:
            assert s.scalar(select(func.count()).select_from(DataImport)) == 1
        assert not any((settings.data_dir / "incoming").iterdir())


def test_given_postgres_when_department_uploads_over_mtls_and_signed_then_imported_once(
        postgres_url: str, tmp_path: Path) -> None:
    from tests.conftest import empty_postgres, make_settings

    empty_postgres(postgres_url)
    settings = make_settings(tmp_path)
    settings = settings.model_copy(update={"database_url": postgres_url})
    with AppContext(settings) as ctx:
        ps = people(ctx, 2)
        ca = TestCA(tmp_path / "pki", "agency-ca")
        dept = ca.issue("police", "police-exchange")
        map_cert(ctx, dept.subject)
        key = new_key(ctx)
        body = death_csv([[ps[0][0], ps[0][1], "2026-10-03", ""], [ps[1][0], ps[1][1], "2026-13-01", ""]])
        headers = signed(key, body)
        with tls_server(ctx, ca) as srv, srv.client(dept) as c:
            r = c.post(URL, content=body, headers=headers)
            replay = c.post(URL, content=body, headers=headers)
            again = c.post(URL, content=body)  # certificate only: idempotent by content
        assert r.status_code == 201, r.text
        assert (r.json()["rows_valid"], r.json()["rejects"]) == (1, [{"row": 3, "reason": "BAD_DATE"}])
        assert replay.status_code == 409 and replay.json()["error"]["code"] == "NONCE_USED"
        assert again.status_code == 200 and again.json()["import_id"] == r.json()["import_id"]
        with ctx.db.session() as s:
            assert s.scalar(select(func.count()).select_from(DataImport)) == 1
            assert s.scalar(select(func.count()).select_from(DataRecord)) == 1


def test_given_reference_client_cli_when_department_uploads_with_cert_and_key_then_receipt_printed(
        data_ctx: AppContext, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from lifecert.cli import app as cli_app

    ps = people(data_ctx, 1)
    extract = tmp_path / "deaths.csv"
    extract.write_bytes(death_csv([[ps[0][0], ps[0][1], "2026-10-03", ""]]))
    ca = TestCA(tmp_path / "pki", "agency-ca")
    dept = ca.issue("police", "police-exchange")
    map_cert(data_ctx, dept.subject)
    key = new_key(data_ctx)
    with tls_server(data_ctx, ca) as srv:
        args = ["exchange", "upload", str(extract), "--url", srv.base_url, "--department", DEPT, "--period",
                "2026-10", "--cert", str(dept.cert), "--key", str(dept.key), "--ca", str(ca.pem)]
        ok = CliRunner().invoke(cli_app, [*args, "--key-id", key.key_id], env={"LIFECERT_EXCHANGE_SECRET": key.secret})
        wrong = CliRunner().invoke(cli_app, [*args, "--key-id", key.key_id], env={"LIFECERT_EXCHANGE_SECRET": "AAAA"})
    assert ok.exit_code == 0, ok.output
    receipt = json.loads(ok.output)
    assert (receipt["department"], receipt["rows_valid"], receipt["file_format"]) == (DEPT, 1, "csv")
    assert wrong.exit_code == 2 and "UNAUTHENTICATED" in wrong.output
    with data_ctx.db.session() as s:
        assert s.scalars(select(DataImport)).one().file_name == "deaths.csv"


def test_given_upload_folder_left_by_a_killed_process_when_next_upload_starts_then_it_is_removed(
        data_ctx: AppContext) -> None:
    import os
    import time

    from server.routes.exchange import STALE_UPLOAD_S, new_upload_folder

    incoming = data_ctx.settings.data_dir / "incoming"
    old = incoming / "extract-killed"
    old.mkdir(parents=True)
    (old / "deaths.csv").write_bytes(b"partial")
    past = time.time() - STALE_UPLOAD_S - 60
    os.utime(old, (past, past))
    recent = incoming / "extract-running"
    recent.mkdir()
    fresh = new_upload_folder(data_ctx, "extract-")
    assert fresh.is_dir() and fresh.parent == incoming and (fresh.stat().st_mode & 0o777) == 0o700
    assert not old.exists() and recent.exists()  # an upload still in progress is left alone
