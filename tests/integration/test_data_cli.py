"""``lifecert data ...`` end to end: several departments' extracts in one command each, then the lists."""

from __future__ import annotations

import csv
import stat
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from lifecert.cli import app
from lifecert.config import get_settings
from lifecert.storage.db import Database
from lifecert.storage.models import AuditEvent, SurvivalConfirmation
from tests.integration.test_data_support import DEATH_HEADER, MEDICAL_HEADER, idn, write_csv


def _register(people: list[tuple[str, str]]) -> None:
    from lifecert.services.templates import upsert_pensioner

    db = Database(get_settings().resolved_database_url, audit_key=get_settings().audit_key_bytes())
    with db.session() as s:
        for i, n in people:
            upsert_pensioner(s, i, n)
    db.dispose()


def test_given_month_of_extracts_when_imported_by_cli_then_lists_confirmations_and_report(
        cli_env: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    a, b = idn(61), idn(63)
    _register([(a, "沈一"), (b, "韩二")])
    death = write_csv(tmp_path / "death.csv", DEATH_HEADER, [[a, "沈一", "2026-03-05", ""]], encoding="gbk")
    med = write_csv(tmp_path / "med.csv", MEDICAL_HEADER, [[b, "韩二", "2026-03-09", ""], ["x", "y", "z", ""]])

    ledger = write_csv(tmp_path / "ledger.csv", ["身份证号", "发放月份", "发放金额"],
                       [[a, m, "2800.00"] for m in ("2026-03", "2026-04", "2026-05")])
    r1 = runner.invoke(app, ["data", "import", "--source", "police_deregistration", "--period", "2026-03",
                             "--ledger", str(ledger), str(death)])
    r2 = runner.invoke(app, ["data", "import", "--source", "medical_settlement", "--json", str(med)])
    r3 = runner.invoke(app, ["data", "suspensions", "--out", str(tmp_path / "s.xlsx")])
    r4 = runner.invoke(app, ["data", "report", "--year", "2026", "--out", str(tmp_path / "rep.csv")])

    assert r1.exit_code == 0, r1.output
    assert "deceased=1" in r1.output
    assert "1 pensioner(s), 2 month(s), 5600.00 yuan" in r1.output
    assert r2.exit_code == 0, r2.output
    assert '"BAD_ID_NUMBER"' in r2.output
    assert r3.exit_code == 0 and "1 suspension(s)" in r3.output
    assert r4.exit_code == 0 and "written to" in r4.output
    assert stat.S_IMODE((tmp_path / "s.xlsx").stat().st_mode) == 0o600
    with (tmp_path / "rep.csv").open(encoding="utf-8-sig") as fh:
        rows = {r["department"]: r for r in csv.DictReader(fh)}
    assert rows["police_deregistration"]["deceased"] == "1"
    db = Database(get_settings().resolved_database_url, audit_key=get_settings().audit_key_bytes())
    with db.session() as s:
        assert len(s.scalars(select(SurvivalConfirmation)).all()) == 1
        actors = set(s.scalars(select(AuditEvent.actor)))
    db.dispose()
    assert all(x.startswith("cli:") for x in actors)
    assert stat.S_IMODE((cli_env / "mappings").stat().st_mode) == 0o700


def test_given_file_with_unexpected_headers_when_imported_by_cli_then_one_line_error_exit_2(
        cli_env: Path, tmp_path: Path) -> None:
    f = write_csv(tmp_path / "x.csv", ["foo", "bar"], [["1", "2"]])

    r = CliRunner().invoke(app, ["data", "import", "--source", "police_deregistration", str(f)])

    assert r.exit_code == 2
    assert "BAD_MAPPING" in r.output
    assert "Traceback" not in r.output


def test_given_imports_when_other_data_commands_run_then_each_writes_its_file_or_case(
        cli_env: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    a = idn(65)
    _register([(a, "秦三")])
    death = write_csv(tmp_path / "death.csv", DEATH_HEADER, [[a, "秦三", "2026-03-05", ""], ["1", "x", "", ""],
                                                             [idn(67, region="320102"), "外人", "2026-03-01", ""]])
    ledger = write_csv(tmp_path / "ledger.csv", ["id_number", "month", "amount"],
                       [[a, "2026-03", "3000"], [a, "2026-04", "3000"]])
    assert runner.invoke(app, ["data", "import", "-s", "police_deregistration", str(death)]).exit_code == 0

    results = {
        "mappings": runner.invoke(app, ["data", "mappings"]),
        "runs": runner.invoke(app, ["data", "runs"]),
        "rejects": runner.invoke(app, ["data", "rejects", "-o", str(tmp_path / "rej.csv")]),
        "unmatched": runner.invoke(app, ["data", "unmatched", "-o", str(tmp_path / "un.csv"), "-s",
                                         "police_deregistration"]),
        "resumptions": runner.invoke(app, ["data", "resumptions", "-o", str(tmp_path / "res.csv")]),
        "overpayments": runner.invoke(app, ["data", "overpayments", "--ledger", str(ledger), "-o",
                                            str(tmp_path / "op.csv")]),
        "tipoff": runner.invoke(app, ["data", "tipoff", "--id-number", a, "--description",
                                      "电话举报：老人已去世仍领钱"]),
    }

    assert {k: r.exit_code for k, r in results.items()} == dict.fromkeys(results, 0)
    assert "court_sentence" in results["mappings"].output
    assert "1 rejected row(s)" in results["rejects"].output
    assert "1 unmatched record(s)" in results["unmatched"].output
    assert "0 resumption(s)" in results["resumptions"].output
    assert "1 pensioner(s), 1 month(s), 3000.00 yuan" in results["overpayments"].output
    assert "review case #" in results["tipoff"].output and "(pensioner found)" in results["tipoff"].output
    assert all(stat.S_IMODE((tmp_path / f).stat().st_mode) == 0o600 for f in ("rej.csv", "un.csv", "res.csv",
                                                                                  "op.csv"))
