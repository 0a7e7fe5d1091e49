"""Structured JSON logs: one JSON object per line with time, level, logger, message, the
request id of the HTTP request being served (a context variable set by the server's
middleware) and exception text. ID numbers are masked in every message and exception
(``110105********002X``), whatever code logged them: a log line must never carry one.

Enabled by ``LIFECERT_LOG_FORMAT=json`` (``lifecert serve`` and the batch commands call
:func:`configure_logging`); plain text otherwise.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime

from lifecert.domain.idnumber import mask_id_number

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("lifecert_request_id", default="")

# 18-character resident ID numbers (17 digits + digit/X) not embedded in a longer digit run,
# and 15-digit first-generation numbers.
_ID_RE = re.compile(r"(?<![0-9A-Za-z])(\d{17}[\dXx]|\d{15})(?![0-9A-Za-z])")


def mask_ids(text: str) -> str:
    return _ID_RE.sub(lambda m: mask_id_number(m.group(1).upper()) if len(m.group(1)) == 18 else "*" * 15, text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": mask_ids(record.getMessage()),
        }
        rid = request_id_var.get()
        if rid:
            out["request_id"] = rid
        if record.exc_info:
            out["exc"] = mask_ids(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False)


class MaskingTextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        rid = request_id_var.get()
        text = mask_ids(super().format(record))
        return f"{text} [rid={rid}]" if rid else text


def configure_logging(fmt: str = "text", level: int = logging.INFO) -> None:
    """Replace the root handlers with one stderr handler in ``fmt`` ("json" or "text"); uvicorn's
    loggers propagate to it (``lifecert serve`` passes ``log_config=None``)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if fmt == "json" else MaskingTextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers = []
        lg.propagate = True
