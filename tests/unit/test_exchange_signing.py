"""Known answers for the exchange API's request signing and the small rules around it."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

from lifecert.services.assisted import day_start
from lifecert.services.exchange import canonical_request, normalize_subject, safe_file_name, sign, signed_headers


def test_given_request_parts_when_signed_then_hmac_sha256_over_the_documented_canonical_form() -> None:
    secret_raw = bytes(range(32))
    secret = base64.urlsafe_b64encode(secret_raw).rstrip(b"=").decode()
    body_sha = hashlib.sha256(b"a,b\n").hexdigest()
    path = "/api/v1/exchange/extracts?department=police&period=2026-10"
    assert canonical_request("post", path, "1790000000", body_sha.upper()) == (
        f"POST\n{path}\n1790000000\n{body_sha}".encode())
    want = hmac.new(secret_raw, f"POST\n{path}\n1790000000\n{body_sha}".encode(), hashlib.sha256).hexdigest()
    assert sign(secret, "POST", path, "1790000000", body_sha) == want
    # any change to method, path (query included), time or body hash changes the signature
    assert sign(secret, "GET", path, "1790000000", body_sha) != want
    assert sign(secret, "POST", path.replace("2026-10", "2026-11"), "1790000000", body_sha) != want
    assert sign(secret, "POST", path, "1790000001", body_sha) != want
    h = signed_headers("xk_1", secret, "POST", path, body_sha, datetime.fromtimestamp(1790000000, UTC))
    assert h["X-Lifecert-Timestamp"] == "1790000000" and h["X-Lifecert-Signature"] == want


def test_given_subject_spellings_when_normalized_then_one_form() -> None:
    assert normalize_subject(" cn = police , O=Dept,c=CN ") == "CN=police,O=Dept,C=CN"
    assert normalize_subject(r"CN=a\,b,O=x") == r"CN=a\,b,O=x"  # an escaped comma stays inside its value


def test_given_hostile_file_names_when_made_safe_then_plain_base_names() -> None:
    assert safe_file_name("../../etc/passwd") == "passwd"
    assert safe_file_name("C:\\temp\\死亡 名单.csv") == "死亡_名单.csv"
    assert safe_file_name("") == "extract"
    assert safe_file_name("data.csv", b"PK\x03\x04") == "data.csv.xlsx"
    assert len(safe_file_name("x" * 500 + ".csv")) == 120


def test_given_utc_time_when_local_day_start_then_midnight_china_time() -> None:
    # 2026-11-30 17:00 UTC is 01:00 on 1 December in China: the day began at 16:00 UTC
    assert day_start(datetime(2026, 11, 30, 17, 0, tzinfo=UTC), 8) == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
    assert day_start(datetime(2026, 11, 30, 15, 59, tzinfo=UTC), 8) == datetime(2026, 11, 29, 16, 0, tzinfo=UTC)


def test_given_formula_like_worker_name_when_report_written_then_cell_is_inert_text() -> None:
    import csv
    import io

    from lifecert.services.assisted import REPORT_COLUMNS, report_csv

    row = dict.fromkeys(REPORT_COLUMNS, 0) | {"worker": "=HYPERLINK(\"http://x\")", "worker_region": "+110105"}
    out = list(csv.reader(io.StringIO("".join(report_csv([row])))))
    assert out[0] == list(REPORT_COLUMNS)
    assert not out[1][0].startswith("=") and not out[1][1].startswith("+")
    assert "HYPERLINK" in out[1][0]


def test_given_worker_counts_when_flagged_then_each_rule_fires_only_on_its_pattern() -> None:
    from lifecert.services.assisted import worker_flags

    calm = {"started": 10, "retry": 2, "review": 1, "distinct_pensioners": 9, "regions_helped": 1,
            "night_sessions": 0}
    assert worker_flags(calm) == []
    assert worker_flags(calm | {"retry": 3, "review": 2}) == ["high_failure_rate"]
    assert worker_flags(calm | {"distinct_pensioners": 4}) == ["repeated_pensioners"]
    assert worker_flags(calm | {"regions_helped": 4}) == ["many_regions"]
    assert worker_flags(calm | {"night_sessions": 1}) == ["night_sessions"]
    assert worker_flags(calm | {"withdrawn": 1}) == ["withdrawn_confirmations"]  # one is enough: two signed it
    # too few sessions to judge rates
    assert worker_flags({"started": 2, "retry": 2, "review": 0, "distinct_pensioners": 1, "regions_helped": 1,
                         "night_sessions": 0}) == []
