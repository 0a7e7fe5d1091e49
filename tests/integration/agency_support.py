"""Helpers for the agency-cycle tests: synthetic pensioners, template rows, confirmations, local
SMTP and webhook servers on 127.0.0.1. This module holds no tests."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy.orm import Session

from lifecert.domain.idnumber import make_id_number
from lifecert.services.confirmations import record_confirmation
from lifecert.storage.models import FaceTemplate, Pensioner, PensionerStatus, Photo

REGISTERED = datetime(2025, 1, 10, tzinfo=UTC)


def person(s: Session, region: str, born: date, seq: int, *, phone: str | None = "13800000000",
           status: str = PensionerStatus.ACTIVE, name: str = "测试") -> Pensioner:
    p = Pensioner(id_number=make_id_number(region, born, seq), name=name, sex="M", birth_date=born,
                  region_code=region, phone=phone, status=status, created_at=REGISTERED)
    s.add(p)
    s.flush()
    return p


def template_row(s: Session, p: Pensioner) -> None:
    """A template row (the plan only asks whether one exists; nothing decrypts it)."""
    sha = "ab" * 32
    if s.get(Photo, sha) is None:
        s.add(Photo(sha256=sha, size=1, width=1, height=1))
        s.flush()
    s.add(FaceTemplate(pensioner_id=p.id, engine="dlib", model_key="dlib:test:1", embedding_enc=b"sealed",
                       photo_sha256=sha))
    s.flush()


def confirm(s: Session, p: Pensioner, method: str, day: date) -> None:
    record_confirmation(s, p, method, day, "test", {}, cycle_months=12)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SmtpSink:
    port: int
    messages: list[Message] = field(default_factory=list)


@contextmanager
def smtp_sink() -> Iterator[SmtpSink]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 and a free port; its ``messages`` fill as mail arrives."""
    from aiosmtpd.controller import Controller

    sink = SmtpSink(free_port())
    got = sink.messages

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            got.append(message_from_bytes(envelope.content))
            return "250 OK"

    c = Controller(Handler(), hostname="127.0.0.1", port=sink.port)
    c.start()
    try:
        yield sink
    finally:
        c.stop()


@dataclass
class Webhook:
    """A local HTTP endpoint: answers ``fail_first`` requests with ``fail_status``, then 200; checks
    the signature with ``secret`` and records the verified JSON bodies."""

    secret: bytes
    fail_first: int = 0
    fail_status: int = 503
    received: list[dict[str, Any]] = field(default_factory=list)
    calls: int = 0
    bad_signatures: int = 0
    url: str = ""


@contextmanager
def webhook_server(hook: Webhook) -> Iterator[Webhook]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(min(n, 65536))
            ts = self.headers.get("X-Lifecert-Timestamp", "")
            want = hmac.new(hook.secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
            with lock:
                hook.calls += 1
                failing = hook.calls <= hook.fail_first
                ok_sig = hmac.compare_digest(want, self.headers.get("X-Lifecert-Signature", ""))
                if not ok_sig:
                    hook.bad_signatures += 1
                elif not failing:
                    hook.received.append(json.loads(body))
            status = 401 if not ok_sig else (hook.fail_status if failing else 200)
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    hook.url = f"http://127.0.0.1:{srv.server_address[1]}/sms"
    try:
        yield hook
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(timeout=5)
