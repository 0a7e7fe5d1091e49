"""Deployment files, checked as far as this machine allows: no container engine runs here
(``docker`` is only a client, without compose), so the compose file is parsed and checked for
what matters, and the nginx config goes through ``nginx -t`` with the replica names pointed
at 127.0.0.1."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def test_given_the_compose_file_when_parsed_then_two_replicas_share_postgres_and_redis_behind_nginx() -> None:
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    svc = doc["services"]
    assert {"postgres", "redis", "migrate", "api1", "api2", "nginx"} <= set(svc)
    for name in ("api1", "api2"):
        api = svc[name]
        env = api["environment"]
        assert env["LIFECERT_ENV"] == "production"
        assert env["LIFECERT_DATABASE_URL"].startswith("postgresql+psycopg2://") and "@postgres:5432/" in env[
            "LIFECERT_DATABASE_URL"]
        assert env["LIFECERT_REDIS_URL"].startswith("redis://") and "@redis:6379/" in env["LIFECERT_REDIS_URL"]
        assert env["LIFECERT_BLOBS__BACKEND"] == "database"
        assert env["LIFECERT_TRUSTED_PROXIES"] == doc["networks"]["backend"]["ipam"]["config"][0]["subnet"]
        assert api["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert api["depends_on"]["postgres"] == {"condition": "service_healthy"}
        assert "ports" not in api  # only the proxy is reachable
        assert not any(k in env for k in ("LIFECERT_TEMPLATE_KEY", "LIFECERT_SESSION_SECRET"))  # secrets: env_file
        assert api["env_file"] == ["lifecert.env"]
    assert svc["api1"]["volumes"] != svc["api2"]["volumes"]
    assert svc["nginx"]["ports"] == ["127.0.0.1:8080:80"]
    assert [s for s, v in svc.items() if "ports" in v] == ["nginx"]
    assert svc["migrate"]["command"] == ["lifecert", "db", "upgrade"]
    example = (DEPLOY / "lifecert.env.example").read_text()
    assert re.search(r"^LIFECERT_TEMPLATE_KEY=$", example, re.M)  # the example carries no key


def test_given_the_containerfile_when_read_then_it_runs_unprivileged_and_ships_no_weights_or_test_data() -> None:
    text = (ROOT / "Containerfile").read_text()
    copies = re.findall(r"^COPY (\S+)", text, re.M)
    assert copies and not any("shared" in c or c.endswith((".onnx", ".dat", ".zip")) for c in copies)
    assert re.search(r"^USER lifecert$", text, re.M)
    assert "lifecert\", \"serve\"" in text and "HEALTHCHECK" in text


def test_given_the_nginx_config_when_checked_by_nginx_then_it_is_valid(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        pytest.skip("nginx not installed (.ci/run installs nginx-light)")
    conf = (DEPLOY / "nginx.conf").read_text()
    for i in (1, 2):
        conf = conf.replace(f"server api{i}:8000", f"server 127.0.0.1:1800{i}")
    conf = conf.replace("listen 80;", "listen 127.0.0.1:18080;").replace("/tmp/", f"{tmp_path}/")
    assert "api1" not in conf and "listen 80" not in conf
    (tmp_path / "nginx.conf").write_text(conf)
    (tmp_path / "logs").mkdir()
    r = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "syntax is ok" in r.stderr
