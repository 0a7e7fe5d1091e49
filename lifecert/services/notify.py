"""Pluggable notifiers for reminders: SMTP (e.g. an email-to-SMS gateway) and an HTTP webhook (an
SMS gateway's API). A notifier sends one text to one phone number or raises :class:`NotifyError`
saying whether a retry may help (``transient``). Nothing here logs a number or a text.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

from lifecert.domain.errors import ErrorCode, LifecertError

SUBJECT = "养老金领取资格认证提醒"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class NotifyError(LifecertError):
    """A send failed. ``transient``: a retry may succeed (timeouts, 4xx SMTP, 5xx HTTP, 429)."""

    code = ErrorCode.BAD_REQUEST

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class Notifier(Protocol):
    via: str

    def send(self, to: str, text: str, ref: str) -> None:
        """Deliver ``text`` to phone number ``to``; ``ref`` is our reminder id (for the gateway's receipts)."""
        ...


@dataclass
class SmtpNotifier:
    """One e-mail per reminder to ``to_template.format(phone=...)`` (e.g. ``{phone}@sms.example.cn``)."""

    host: str
    port: int
    sender: str
    to_template: str = "{phone}@sms.invalid"
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout_s: float = 10.0
    via: str = "smtp"

    def send(self, to: str, text: str, ref: str) -> None:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = self.sender, self.to_template.format(phone=to), SUBJECT
        msg["X-Lifecert-Ref"] = ref
        msg.set_content(text, charset="utf-8")
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(msg)
        except smtplib.SMTPResponseException as exc:
            raise NotifyError(f"SMTP {exc.smtp_code}", transient=400 <= exc.smtp_code < 500) from None
        except smtplib.SMTPRecipientsRefused:
            raise NotifyError("SMTP recipient refused", transient=False) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise NotifyError(f"SMTP {type(exc).__name__}", transient=True) from None


@dataclass
class WebhookNotifier:
    """POST ``{"to", "text", "ref"}`` as JSON; the body is signed: ``X-Lifecert-Signature`` =
    hex HMAC-SHA256(secret, timestamp + "." + body), ``X-Lifecert-Timestamp`` = Unix seconds."""

    url: str
    secret: bytes
    timeout_s: float = 10.0
    via: str = "webhook"

    def __post_init__(self) -> None:
        # phone numbers and texts travel in the body: TLS, except to a gateway on this host
        u = urllib.parse.urlsplit(self.url)
        if not (u.scheme == "https" and u.hostname) and not (u.scheme == "http" and u.hostname in LOOPBACK):
            raise LifecertError("webhook URL must be https:// (http only to this host)", code=ErrorCode.BAD_REQUEST)
        if len(self.secret) < 16:
            raise LifecertError("webhook secret must be at least 16 bytes", code=ErrorCode.BAD_REQUEST)

    def sign(self, ts: str, body: bytes) -> str:
        return hmac.new(self.secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()

    def send(self, to: str, text: str, ref: str) -> None:
        body = json.dumps({"to": to, "text": text, "ref": ref}, ensure_ascii=False).encode()
        ts = str(int(time.time()))
        req = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json; charset=utf-8", "X-Lifecert-Timestamp": ts,
            "X-Lifecert-Signature": self.sign(ts, body)})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                resp.read(1024)
        except urllib.error.HTTPError as exc:
            raise NotifyError(f"HTTP {exc.code}", transient=exc.code >= 500 or exc.code == 429) from None
        except (TimeoutError, urllib.error.URLError, OSError) as exc:
            raise NotifyError(f"HTTP {type(exc).__name__}", transient=True) from None
