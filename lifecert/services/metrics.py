"""Prometheus metrics (prometheus-client).

Two kinds:

- **Event metrics** counted in the process where the event happens (verification decisions
  and scores, HTTP request latencies). Every API node exposes its own; Prometheus sums them
  (``sum by (decision, reason) (rate(lifecert_verification_sessions_total[5m]))``).
- **State metrics** read from the shared database at scrape time by :class:`DatabaseCollector`
  (enrollment runs, import rows, audit-chain head, 1:N index staleness). They are the same on
  every node, so dashboards use ``max`` over nodes, not ``sum``. Each query is one indexed
  aggregate or a read of the newest few rows: cheap at a 15–30 s scrape interval.

The event metrics live in one :class:`Metrics` object per registry (never module globals),
so tests and several apps in one process do not collide. No label ever holds an ID number,
a name or a client address.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from lifecert.domain.spotcheck import pad_score_of

if TYPE_CHECKING:
    from lifecert.services.context import AppContext

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SCORE_BUCKETS = tuple(round(x * 0.05, 2) for x in range(-4, 21))  # -0.2 … 1.0 (cosine and probabilities)


class Metrics:
    """The event metrics of one process, registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.sessions = Counter(
            "lifecert_verification_sessions",
            "Verification sessions decided, by decision and reason code",
            ["decision", "reason"], registry=registry,
        )
        self.match_score = Histogram(
            "lifecert_verification_match_score",
            "1:1 cosine similarity of the decided session's best frames against the pensioner's templates",
            buckets=SCORE_BUCKETS, registry=registry,
        )
        self.pad_score = Histogram(
            "lifecert_verification_pad_score",
            "Fused presentation-attack detection score P(real) of decided sessions (when PAD scored them)",
            buckets=SCORE_BUCKETS, registry=registry,
        )
        self.analysis_seconds = Histogram(
            "lifecert_verification_analysis_seconds",
            "Server-side analysis time of one upload (decode excluded: it happens before the nonce claim)",
            buckets=LATENCY_BUCKETS, registry=registry,
        )
        self.spot_checks = Counter(
            "lifecert_spot_checks",
            "Caseworker spot-check cases opened on CONFIRMED sessions, by their first reason",
            ["reason"], registry=registry,
        )
        self.http_seconds = Histogram(
            "lifecert_http_request_seconds",
            "HTTP request latency by route template, method and status class",
            ["route", "method", "status"], buckets=LATENCY_BUCKETS, registry=registry,
        )

    def spot_check_opened(self, reason: str) -> None:
        self.spot_checks.labels(str(reason)).inc()

    def session_decided(self, decision: str, reason: str | None, scores: Mapping[str, Any]) -> None:
        self.sessions.labels(str(decision), str(reason or "")).inc()
        match = scores.get("match")
        if isinstance(match, int | float) and not isinstance(match, bool):
            self.match_score.observe(float(match))
        pad = pad_score_of(scores)  # the fused session score inside the PAD record, not the record itself
        if pad is not None:
            self.pad_score.observe(pad)
        ms = scores.get("analysis_ms")
        if isinstance(ms, int | float):
            self.analysis_seconds.observe(float(ms) / 1000.0)


class DatabaseCollector(Collector):
    """State metrics read from the shared database when scraped (see the module docstring)."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            yield from self._collect()
        except Exception:  # a scrape must not fail the endpoint: the up/scrape-error metric says enough
            log.exception("metrics: reading the database failed")
            g = GaugeMetricFamily(
                "lifecert_metrics_database_error", "1 when the last scrape could not read the database"
            )
            g.add_metric([], 1.0)
            yield g

    def _collect(self) -> Iterator[GaugeMetricFamily]:
        from lifecert.storage.models import AuditEvent, EnrollmentItem, EnrollmentRun, FaceTemplate
        from lifecert.storage.models_data import DataImport

        now = time.time()
        with self.ctx.db.session() as s:
            head = s.execute(select(AuditEvent.id, AuditEvent.at).order_by(AuditEvent.id.desc()).limit(1)).first()
            g = GaugeMetricFamily("lifecert_audit_chain_head_id", "Id of the newest audit event (the chain head)")
            g.add_metric([], float(head[0]) if head else 0.0)
            yield g
            g = GaugeMetricFamily("lifecert_audit_chain_head_timestamp_seconds", "Time of the newest audit event")
            g.add_metric([], head[1].timestamp() if head else 0.0)
            yield g

            runs = s.execute(
                select(EnrollmentRun.id, EnrollmentRun.total_items, EnrollmentRun.started_at)
                .where(EnrollmentRun.status == "running")
            ).all()
            done = dict(
                s.execute(
                    select(EnrollmentItem.run_id, func.count(EnrollmentItem.id))
                    .where(EnrollmentItem.run_id.in_([r[0] for r in runs]))
                    .group_by(EnrollmentItem.run_id)
                ).all()
            ) if runs else {}
            total = GaugeMetricFamily("lifecert_enrollment_run_rows", "Rows of running enrollment runs", labels=["run"])
            prog = GaugeMetricFamily("lifecert_enrollment_run_done_rows", "Rows finished so far", labels=["run"])
            rate = GaugeMetricFamily(
                "lifecert_enrollment_run_rows_per_second", "Mean rate of a running run since it started", labels=["run"]
            )
            for run_id, n, started in runs:
                d = int(done.get(run_id, 0))
                total.add_metric([str(run_id)], float(n))
                prog.add_metric([str(run_id)], float(d))
                age = max(1.0, now - started.timestamp()) if started else 1.0
                rate.add_metric([str(run_id)], d / age)
            yield total
            yield prog
            yield rate
            g = GaugeMetricFamily("lifecert_enrollment_runs_running", "Enrollment runs in status running")
            g.add_metric([], float(len(runs)))
            yield g

            key = self.ctx.model.key
            n_tpl = s.scalar(
                select(func.count(FaceTemplate.id)).where(FaceTemplate.model_key == key, FaceTemplate.active.is_(True))
            )
            g = GaugeMetricFamily("lifecert_templates_active", "Active face templates of the configured model")
            g.add_metric([], float(n_tpl or 0))
            yield g

            last = s.execute(
                select(DataImport.rows_total, DataImport.rows_valid, DataImport.rows_rejected)
                .order_by(DataImport.id.desc()).limit(1)
            ).first()
            sums = s.execute(
                select(
                    func.coalesce(func.sum(DataImport.rows_total), 0),
                    func.coalesce(func.sum(DataImport.rows_rejected), 0),
                )
            ).one()
            g = GaugeMetricFamily(
                "lifecert_import_rows", "Rows of department extracts imported, all time", labels=["kind"]
            )
            g.add_metric(["total"], float(sums[0]))
            g.add_metric(["rejected"], float(sums[1]))
            yield g
            g = GaugeMetricFamily("lifecert_import_last_rows", "Rows of the newest import", labels=["kind"])
            if last:
                g.add_metric(["total"], float(last[0]))
                g.add_metric(["valid"], float(last[1]))
                g.add_metric(["rejected"], float(last[2]))
            yield g

        g = GaugeMetricFamily(
            "lifecert_index_stale_seconds",
            "Seconds this node has known its 1:N index to be older than the templates (0: fresh)",
        )
        g.add_metric([], float(self.ctx.index.stale_for_seconds(key)))
        yield g
        g = GaugeMetricFamily("lifecert_index_size", "Vectors in this node's 1:N index")
        g.add_metric([], float(self.ctx.index.cached_size(key)))
        yield g


def new_registry(ctx: AppContext | None) -> tuple[CollectorRegistry, Metrics]:
    """A registry with the event metrics and, given a context, the database collector."""
    reg = CollectorRegistry(auto_describe=True)
    metrics = Metrics(reg)
    if ctx is not None:
        reg.register(DatabaseCollector(ctx))
    return reg, metrics
