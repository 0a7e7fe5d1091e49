"""The monthly certification campaign: who is due in a month, by region and channel.

``plan_month`` streams the register once (lifecert.services.policy.iter_register) and yields one
``PlanRow`` per active pensioner whose next window (opening to end of grace) touches the month,
and, unless asked not to, those already overdue. Rows carry the masked ID number only; the list
is for staff planning (reminders take their own, audited path). ``write_plan`` writes CSV or JSON
lines as it goes (constant memory whatever the register size) and returns the counts.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import IO, Literal

from sqlalchemy.orm import Session

from lifecert.domain.cells import spreadsheet_safe
from lifecert.domain.idnumber import mask_id_number
from lifecert.domain.policy import (
    CertificationPolicy,
    Channel,
    DueState,
    age_on,
    channel_for,
    month_bounds,
    next_due,
    policy_for,
)
from lifecert.services.policy import default_policy, iter_register, policies_in_force


@dataclass(frozen=True, slots=True)
class PlanRow:
    """One pensioner in the month's campaign. ``state``: open | grace | overdue, as on the later of
    the month's first day and the window's opening."""

    month: str
    region_code: str
    pensioner_id: int
    id_masked: str
    channel: Channel
    state: DueState
    opens: date
    closes: date
    grace_until: date
    last_confirmation: date | None
    policy: str

    def cells(self) -> list[object]:
        return [self.month, self.region_code, self.pensioner_id, self.id_masked, str(self.channel), str(self.state),
                self.opens.isoformat(), self.closes.isoformat(), self.grace_until.isoformat(),
                self.last_confirmation.isoformat() if self.last_confirmation else "", self.policy]


PLAN_HEADER = ["month", "region_code", "pensioner_id", "id_masked", "channel", "state", "opens", "closes",
               "grace_until", "last_confirmation", "policy"]


def plan_month(session: Session, year: int, month: int, *, region_prefix: str = "", include_overdue: bool = True,
               policies: list[CertificationPolicy] | None = None) -> Iterator[PlanRow]:
    """Pensioners due in ``year-month`` under the policy in force on the month's first day."""
    first, last = month_bounds(year, month)
    label = f"{year:04d}-{month:02d}"
    ps = policies if policies is not None else policies_in_force(session)
    fallback = default_policy()
    by_region: dict[str, CertificationPolicy] = {}
    for r in iter_register(session, region_prefix=region_prefix):
        pol = by_region.get(r.region_code)
        if pol is None:
            pol = by_region[r.region_code] = policy_for(ps, r.region_code, first) or fallback
        w = next_due(pol, birth_month=r.birth_month, last_confirmation=r.last_confirmation, registered=r.registered)
        if w.opens > last:
            continue
        state = w.state_on(max(first, w.opens))
        if state is DueState.OVERDUE and not include_overdue:
            continue
        ch = channel_for(has_template=r.has_template, has_phone=r.has_phone, passive=r.passive,
                         age=age_on(r.birth_date, first))
        yield PlanRow(label, r.region_code, r.pensioner_id, mask_id_number(r.id_number), ch, state, w.opens,
                      w.closes, w.grace_until, r.last_confirmation, f"{pol.kind}:{pol.region_prefix or '*'}")


@dataclass
class PlanSummary:
    month: str
    rows: int = 0
    by_region_channel: Counter[tuple[str, str]] = field(default_factory=Counter)
    by_state: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        regions: dict[str, dict[str, int]] = {}
        for (region, ch), n in sorted(self.by_region_channel.items()):
            regions.setdefault(region, {})[ch] = n
        return {"month": self.month, "rows": self.rows, "by_state": dict(sorted(self.by_state.items())),
                "by_region": regions}


def write_plan(rows: Iterable[PlanRow], out: IO[str], *, fmt: Literal["csv", "jsonl"], month: str) -> PlanSummary:
    """Write ``rows`` as CSV (header first; cells a spreadsheet would run are quoted) or JSON lines,
    as they come; count them by region, channel and state."""
    s = PlanSummary(month)
    writer = csv.writer(out) if fmt == "csv" else None
    if writer is not None:
        writer.writerow(PLAN_HEADER)
    for r in rows:
        cells = r.cells()
        if writer is not None:
            writer.writerow([spreadsheet_safe(c) for c in cells])
        else:
            out.write(json.dumps(dict(zip(PLAN_HEADER, cells, strict=True)), ensure_ascii=False) + "\n")
        s.rows += 1
        s.by_region_channel[(r.region_code, str(r.channel))] += 1
        s.by_state[str(r.state)] += 1
    return s
