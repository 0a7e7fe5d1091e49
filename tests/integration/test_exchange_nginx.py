"""Mutual TLS at a real nginx (Debian's) in front of lifecert: nginx verifies the department's client
certificate and forwards it in headers; lifecert believes those headers only from a trusted proxy."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from lifecert.services import exchange
from lifecert.services.context import AppContext
from lifecert.storage.models import AuditEvent
from lifecert.storage.models_data import DataImport
from tests.conftest import REQUIRE_SERVICES, make_settings
from tests.integration.exchange_support import TestCA, TLSServer, plain_server
from tests.integration.live_server import free_port
from tests.integration.test_data_support import DEATH_HEADER, add_pensioners, idn

DEPT = "police_deregistration"
URL = f"/api/v1/exchange/extracts?department={DEPT}&period=2026-10&file_name=deaths.csv"

NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_client_certificate {ca};
        ssl_verify_client optional;
        client_max_body_size 64m;
        location / {{
            proxy_pass {upstream};
            proxy_request_buffering off;
            proxy_set_header X-SSL-Client-Verify $ssl_client_verify;
            proxy_set_header X-SSL-Client-S-DN $ssl_client_s_dn;
            proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"""


def _nginx() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        if REQUIRE_SERVICES:
            pytest.fail("nginx is required in CI (.ci/run installs nginx-light)")
        pytest.skip("nginx not installed (.ci/run installs nginx-light)")
    return found


@contextmanager
def nginx_in_front(tmp: Path, ca: TestCA, upstream: str, timeout_s: float = 30.0) -> Iterator[TLSServer]:
    binary = _nginx()
    server_cert = ca.issue("nginx", "127.0.0.1", server=True, org="agency proxy")
    port = free_port()
    conf = tmp / "nginx.conf"
    (tmp / "logs").mkdir(parents=True, exist_ok=True)
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, cert=server_cert.cert, key=server_cert.key, ca=ca.pem,
                                      upstream=upstream))
    proc = subprocess.Popen([binary, "-p", str(tmp), "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    srv = TLSServer(f"https://127.0.0.1:{port}", ca)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            try:
                with srv.client(None, timeout=2.0) as c:
                    c.get("/healthz")
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError("nginx did not start") from None
                time.sleep(0.1)
        yield srv
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def test_given_nginx_verifying_client_certs_when_department_uploads_then_mapped_and_forged_headers_useless(
        tmp_path: Path) -> None:
    settings = make_settings(tmp_path, trusted_proxies="127.0.0.1/32")
    with AppContext(settings) as ctx:
        people = [(idn(1), "测试一")]
        add_pensioners(ctx, people)
        body = (",".join(DEATH_HEADER) + f"\n{people[0][0]},{people[0][1]},2026-10-03,\n").encode()
        ca = TestCA(tmp_path / "pki", "agency-ca")
        rogue = TestCA(tmp_path / "rogue", "rogue-ca").issue("rogue", "police-exchange")
        dept = ca.issue("police", "police-exchange")
        with ctx.db.session() as s:
            exchange.add_certificate(s, DEPT, subject=dept.subject, actor="cli:test")
        forged = {"X-SSL-Client-Verify": "SUCCESS", "X-SSL-Client-S-DN": dept.subject}
        with plain_server(ctx) as upstream, nginx_in_front(tmp_path / "nginx", ca, upstream) as proxy:
            with proxy.client(None) as c:
                no_cert = c.post(URL, content=body, headers=forged)  # nginx overwrites the forged headers
            with proxy.client(rogue) as c:
                wrong_ca = c.post(URL, content=body, headers=forged)  # nginx: verify FAILED, not SUCCESS
            with proxy.client(dept) as c:
                ok = c.post(URL, content=io.BytesIO(body).read())
    assert no_cert.status_code == 401, no_cert.text
    assert wrong_ca.status_code in (400, 401), wrong_ca.text  # nginx may answer 400 itself for a bad cert
    assert ok.status_code == 201, ok.text
    assert ok.json()["outcomes"] == {"deceased": 1}
    with ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(DataImport)) == 1
        received = s.scalars(select(AuditEvent).where(AuditEvent.action == "exchange.extract_received")).one()
        assert received.detail["via"] == "proxy" and received.client_addr == "127.0.0.1"
