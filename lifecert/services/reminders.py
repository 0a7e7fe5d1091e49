"""Reminder batches for a month's campaign: who is reminded, the text, and the durable record.

The month's plan (lifecert.services.campaign) gives the pensioners whose window is open (stage
``open``) or whose grace period runs (stage ``grace``) in the month, on the channels that get a
text (self-service by default). Each gets at most one reminder per window and stage: a
``reminder`` row is written (status ``pending``, committed) before the send and set ``sent`` after,
so a rerun skips what went out and retries what failed. A crash between the send and the update
leaves ``pending``: that one may go out twice (at least once, never silently lost).

Output: a notifier (SMTP or webhook, lifecert.services.notify) with a rate limit and retries with
exponential backoff, or a CSV for an SMS gateway (phone, text, ref). ``dry_run`` counts and
writes nothing. Logs and the audit trail carry counts only.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from lifecert.domain.cells import spreadsheet_safe
from lifecert.domain.errors import ErrorCode, LifecertError
from lifecert.domain.policy import Channel, DueState
from lifecert.services import audit
from lifecert.services.campaign import plan_month
from lifecert.services.notify import Notifier, NotifyError
from lifecert.storage.db import Database
from lifecert.storage.models import Pensioner
from lifecert.storage.models_agency import Reminder, ReminderStatus

log = logging.getLogger(__name__)

OPEN_TEXT = ("【养老金资格认证】您好！您今年的养老金领取资格认证已经开始，请在{closes}前完成："
             "用手机浏览器打开 {url} ，按屏幕提示对着镜头做动作即可，不用去窗口。"
             "不会用手机的，可以请家人或社区工作人员帮忙。")
GRACE_TEXT = ("【养老金资格认证】您好！您今年的养老金领取资格认证还没有完成，请在{grace}前完成，"
              "逾期养老金将暂停发放：用手机浏览器打开 {url} 。"
              "行动不便的，请联系社区工作人员上门帮助。")
BATCH = 500


def _md(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def reminder_text(stage: str, *, closes: date, grace_until: date, url: str) -> str:
    """The plain-Mandarin text for ``stage`` (open | grace)."""
    tpl = OPEN_TEXT if stage == "open" else GRACE_TEXT
    return tpl.format(closes=_md(closes), grace=_md(grace_until), url=url)


def valid_mobile(phone: str | None) -> str | None:
    """A mainland mobile number (11 digits starting 1, optional +86/86 and spaces/dashes), or None."""
    if not phone:
        return None
    digits = "".join(c for c in phone if c.isdigit() and c.isascii())
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits if len(digits) == 11 and digits[0] == "1" and digits[1] in "3456789" else None


def mask_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:] if len(phone) == 11 else "*" * len(phone)


@dataclass
class RemindSummary:
    campaign: str
    candidates: int = 0
    already: int = 0
    no_phone: int = 0
    sent: int = 0
    exported: int = 0
    failed: int = 0
    retries: int = 0
    dry_run: bool = False
    by_stage: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class _Item:
    pensioner_id: int
    closes: date
    grace_until: date
    stage: str


class RateLimiter:
    """At most ``per_second`` sends a second (0 = unlimited); ``clock``/``sleep`` injectable."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self.clock, self.sleep = clock, sleep
        self.next_at = 0.0

    def wait(self) -> None:
        if self.interval <= 0:
            return
        now = self.clock()
        if now < self.next_at:
            self.sleep(self.next_at - now)
            now = self.next_at
        self.next_at = now + self.interval


def _candidates(db: Database, year: int, month: int, channels: tuple[Channel, ...], region_prefix: str) -> list[_Item]:
    with db.session() as s:
        return [_Item(r.pensioner_id, r.closes, r.grace_until, "open" if r.state is DueState.OPEN else "grace")
                for r in plan_month(s, year, month, region_prefix=region_prefix, include_overdue=False)
                if r.channel in channels]


def _chunks(items: list[_Item], n: int) -> Iterable[list[_Item]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def remind(
    db: Database, year: int, month: int, *, page_url: str, notifier: Notifier | None = None,
    csv_out: Path | None = None, dry_run: bool = False, channels: tuple[Channel, ...] = (Channel.SELF_SERVICE,),
    region_prefix: str = "", rate_per_s: float = 10.0, retries: int = 3, backoff_s: float = 1.0,
    actor: str = "system", role: str = "system", sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> RemindSummary:
    """Send (or export) the month's reminders; see the module docstring."""
    if (notifier is None) == (csv_out is None):
        raise LifecertError("give exactly one of a notifier or a CSV output", code=ErrorCode.BAD_REQUEST)
    if not page_url.startswith("https://") or any(c.isspace() for c in page_url) or len(page_url) > 200:
        raise LifecertError("the page address must be https://", code=ErrorCode.BAD_REQUEST)
    if retries < 0 or retries > 10 or backoff_s < 0 or rate_per_s < 0:
        raise LifecertError("retries 0..10, backoff and rate not negative", code=ErrorCode.BAD_REQUEST)
    label = f"{year:04d}-{month:02d}"
    summary = RemindSummary(label, dry_run=dry_run)
    via = notifier.via if notifier is not None else "csv"
    limiter = RateLimiter(rate_per_s, clock, sleep)
    items = _candidates(db, year, month, channels, region_prefix)
    summary.candidates = len(items)
    fh = None
    writer = None
    if csv_out is not None and not dry_run:
        fd = os.open(csv_out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        fh = os.fdopen(fd, "w", encoding="utf-8-sig", newline="")
        writer = csv.writer(fh)
        writer.writerow(["phone", "text", "ref"])
    try:
        for chunk in _chunks(items, BATCH):
            _do_chunk(db, chunk, summary, label=label, via=via, page_url=page_url, notifier=notifier, writer=writer,
                      dry_run=dry_run, limiter=limiter, retries=retries, backoff_s=backoff_s, sleep=sleep)
    finally:
        if fh is not None:
            fh.close()
    if not dry_run:
        with db.session() as s:
            audit.record(s, actor=actor, role=role, action="reminders.run", object_type="campaign", object_id=label,
                         detail={k: v for k, v in summary.as_dict().items() if k != "campaign"} | {"via": via})
    log.info("reminders %s via %s: %d candidates, %d already, %d without phone, %d sent, %d exported, %d failed",
             label, via, summary.candidates, summary.already, summary.no_phone, summary.sent, summary.exported,
             summary.failed)
    return summary


def _do_chunk(db: Database, chunk: list[_Item], summary: RemindSummary, *, label: str, via: str, page_url: str,
              notifier: Notifier | None, writer: Any, dry_run: bool,
              limiter: RateLimiter, retries: int, backoff_s: float, sleep: Callable[[float], None]) -> None:
    ids = [i.pensioner_id for i in chunk]
    with db.session() as s:
        phones: dict[int, str | None] = {pid: ph for pid, ph in s.execute(
            select(Pensioner.id, Pensioner.phone).where(Pensioner.id.in_(ids)))}
        existing = {(r.pensioner_id, r.window_closes, r.stage): r for r in s.scalars(
            select(Reminder).where(Reminder.pensioner_id.in_(ids)))}
        todo: list[tuple[str, str, int]] = []  # (phone, text, reminder id) to send once committed
        staged: list[tuple[str, str, Reminder]] = []
        now = datetime.now(UTC)
        for it in chunk:
            prior = existing.get((it.pensioner_id, it.closes, it.stage))
            if prior is not None and prior.status in ReminderStatus.DONE:
                summary.already += 1
                continue
            phone = valid_mobile(phones.get(it.pensioner_id))
            if phone is None:
                summary.no_phone += 1
                continue
            text = reminder_text(it.stage, closes=it.closes, grace_until=it.grace_until, url=page_url)
            summary.by_stage[it.stage] = summary.by_stage.get(it.stage, 0) + 1
            if dry_run:
                continue
            row = prior or Reminder(pensioner_id=it.pensioner_id, campaign=label, window_closes=it.closes,
                                    stage=it.stage, attempts=0)
            row.via, row.status, row.to_masked = via, ReminderStatus.PENDING, mask_phone(phone)
            row.text_sha256 = hashlib.sha256(text.encode()).hexdigest()
            if writer is not None:  # a file for the gateway: written and recorded in the same transaction
                row.status, row.sent_at = ReminderStatus.EXPORTED, now
            if prior is None:
                s.add(row)
            staged.append((phone, text, row))
        s.flush()  # one batched INSERT per chunk; the ids come back for the gateway's ref column
        for phone, text, row in staged:
            if writer is not None:
                writer.writerow([spreadsheet_safe(phone), spreadsheet_safe(text), row.id])
                summary.exported += 1
            else:
                todo.append((phone, text, row.id))
    if notifier is None:
        return
    # the pending rows are committed: now send, one short transaction per outcome
    for phone, text, rid in todo:
        attempts, error = 0, None
        while True:
            limiter.wait()
            attempts += 1
            try:
                notifier.send(phone, text, str(rid))
                error = None
                break
            except NotifyError as exc:
                error = exc
                if not exc.transient or attempts > retries:
                    break
                summary.retries += 1
                sleep(backoff_s * (2 ** (attempts - 1)))
        if error is None:
            _finish(db, rid, ReminderStatus.SENT, attempts, None)
            summary.sent += 1
        else:
            _finish(db, rid, ReminderStatus.FAILED, attempts, error.message)
            summary.failed += 1


def _finish(db: Database, rid: int, status: str, attempts: int, error: str | None) -> None:
    with db.session() as s:
        r = s.get(Reminder, rid)
        if r is None:
            return
        r.status, r.attempts, r.last_error = status, r.attempts + attempts, (error or None) and error[:255]
        if status in ReminderStatus.DONE:
            r.sent_at = datetime.now(UTC)
