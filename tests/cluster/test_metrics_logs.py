"""/metrics in Prometheus format from the app, request ids on responses and log lines, and
ID numbers masked in every log line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from lifecert.config import Settings
from lifecert.services.logs import JsonFormatter, mask_ids, request_id_var
from lifecert.services.metrics import new_registry
from server.app import create_app

ID = "11010519491231002X"


def test_given_the_app_when_metrics_are_scraped_then_event_and_database_metrics_parse(tmp_path: Path) -> None:
    app = create_app(Settings(env="test", data_dir=tmp_path))
    with TestClient(app) as c:
        r = c.post("/api/v1/sessions", json={"id_number": ID, "name": "某人"}, headers={"X-Request-ID": "abc-123"})
        assert r.headers["X-Request-ID"] == "abc-123"
        hostile = c.get("/healthz", headers={"X-Request-ID": "<script>" + "x" * 100})
        assert hostile.headers["X-Request-ID"] != "<script>" + "x" * 100 and len(hostile.headers["X-Request-ID"]) == 32
        text = c.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in ("lifecert_verification_sessions", "lifecert_http_request_seconds", "lifecert_audit_chain_head_id",
                 "lifecert_enrollment_runs_running", "lifecert_templates_active", "lifecert_import_rows",
                 "lifecert_index_stale_seconds", "lifecert_verification_match_score"):
        assert name in families, name
    routes = {s.labels.get("route") for s in families["lifecert_http_request_seconds"].samples}
    assert "/api/v1/sessions" in routes and "/healthz" in routes
    assert ID not in text


def test_given_decided_sessions_when_recorded_then_counters_and_score_histograms_move() -> None:
    reg, m = new_registry(None)
    m.session_decided("CONFIRMED", None, {"match": 0.81, "analysis_ms": 120.0})
    # the PAD record as the verification rules write it: the fused session score sits inside it
    m.session_decided("REVIEW", "LOW_MATCH", {"match": 0.31, "pad": {"score": 0.9, "threshold": 0.7325}})
    m.session_decided("REVIEW", "LOW_MATCH", {"match": "n/a", "pad": {"score": None}})  # non-numbers: not observed
    labels = {"decision": "REVIEW", "reason": "LOW_MATCH"}
    assert reg.get_sample_value("lifecert_verification_sessions_total", labels) == 2
    assert reg.get_sample_value("lifecert_verification_match_score_count") == 2
    assert reg.get_sample_value("lifecert_verification_pad_score_count") == 1
    # the observed value sits in its bucket (no _sum is exported: the score buckets start below 0)
    assert reg.get_sample_value("lifecert_verification_pad_score_bucket", {"le": "0.85"}) == 0
    assert reg.get_sample_value("lifecert_verification_pad_score_bucket", {"le": "0.9"}) == 1
    assert reg.get_sample_value("lifecert_verification_analysis_seconds_sum") == 0.12


def test_given_a_log_line_with_an_id_number_when_formatted_as_json_then_it_is_masked_with_the_request_id() -> None:
    args = (ID, "110105491231002")
    rec = logging.LogRecord("x", logging.INFO, __file__, 1, "session refused for %s (old %s)", args, None)
    token = request_id_var.set("rid-1")
    try:
        out = json.loads(JsonFormatter().format(rec))
    finally:
        request_id_var.reset(token)
    assert out["request_id"] == "rid-1"
    assert ID not in out["msg"] and "110105********002X" in out["msg"]
    assert "110105491231002" not in out["msg"]
    # longer digit runs are not ID numbers and stay
    assert mask_ids("order 123456789012345678901 total") == "order 123456789012345678901 total"


def test_given_the_grafana_dashboard_when_read_then_every_metric_it_queries_is_exported(tmp_path: Path) -> None:
    import re

    root = Path(__file__).resolve().parents[2]
    dash = json.loads((root / "deploy" / "grafana-dashboard.json").read_text())
    used = {m for p in dash["panels"] for t in p["targets"] for m in re.findall(r"lifecert_[a-z_]+", t["expr"])}
    assert used
    app = create_app(Settings(env="test", data_dir=tmp_path))
    with TestClient(app) as c:
        c.get("/healthz")
        text = c.get("/metrics").text
    exported = set(re.findall(r"^# TYPE (lifecert_[a-z_]+) (\w+)", text, re.M))
    names = set()
    for name, kind in exported:
        names.add(name)
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
        if kind == "counter":
            names.add(f"{name}_total")
    assert used <= names, used - names
