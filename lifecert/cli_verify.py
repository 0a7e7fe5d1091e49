"""Commands of the proof-of-life area: ``serve``, ``status``, ``due``, ``overdue``, ``purge``.

Heavy imports (engine, server) happen inside the commands, never at import time.
"""

from __future__ import annotations

import csv
import io
import os
import re
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

CSV_FIELDS = ("id_number", "name", "state", "valid_until", "days_left", "last_method", "last_evidence_date")


def parse_within(text: str) -> int:
    """'30d', '30', '4w', '2m' (30-day months) -> days."""
    m = re.fullmatch(r"\s*(\d+)\s*([dwm]?)\s*", text.lower())
    if not m:
        raise typer.BadParameter("use a number of days like 30d, 4w or 2m")
    n, unit = int(m.group(1)), m.group(2) or "d"
    return n * {"d": 1, "w": 7, "m": 30}[unit]


def _csv(rows: list[object], out: Path | None) -> None:
    from lifecert.domain.cells import spreadsheet_safe

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_FIELDS)
    for s in rows:
        # Names come from enrollment manifests and department extracts: never let a cell run as a formula.
        w.writerow(["" if getattr(s, f) is None else spreadsheet_safe(getattr(s, f)) for f in CSV_FIELDS])
    if out is None:
        sys.stdout.write(buf.getvalue())
    else:
        # Owner-only (0600): the list names pensioners. Excel opens UTF-8 CSV with a BOM correctly.
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8-sig", newline="") as fh:
            fh.write(buf.getvalue())
        typer.echo(f"{len(rows)} rows -> {out}", err=True)


def register(app: typer.Typer) -> None:
    from lifecert.cli import friendly_errors

    @app.command()
    @friendly_errors
    def serve(
        host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="TCP port")] = 8000,
        workers: Annotated[int, typer.Option(help="server processes (dlib holds the GIL: one per core)")] = 1,
    ) -> None:
        """Run the HTTP service (verification API, pensioner page at /, staff console at /console).

        Refuses to start unless LIFECERT_ENV is set explicitly (development, test, staging or
        production): an unset environment must never fall back to development keys."""
        from lifecert.domain.errors import ErrorCode, LifecertError
        from lifecert.services.logs import configure_logging
        from server.deps import configure_threads

        if not os.environ.get("LIFECERT_ENV"):
            raise LifecertError("set LIFECERT_ENV (production, staging, test or development) before serving; "
                                "the service does not guess", code=ErrorCode.CONFIG_ERROR)
        from pydantic import ValidationError

        from lifecert.config import get_settings

        try:
            get_settings()
        except ValidationError as exc:  # one line per problem, no traceback
            problems = "; ".join(str(e.get("msg", "")) for e in exc.errors())
            raise LifecertError(f"configuration refused: {problems}", code=ErrorCode.CONFIG_ERROR) from None

        configure_threads(1)  # before the engine libraries start their thread pools
        configure_logging(get_settings().log_format)
        import uvicorn

        # proxy_headers=False: uvicorn would otherwise rewrite the client address from X-Forwarded-For
        # for any request arriving from 127.0.0.1 (so anyone behind a local proxy could pick their
        # address and dodge per-address limits). Proxies are trusted only through
        # LIFECERT_TRUSTED_PROXIES, resolved by the application (server.deps.client_addr).
        if workers > 1:
            uvicorn.run("server.app:create_app", factory=True, host=host, port=port, workers=workers, log_config=None,
                        proxy_headers=False)
        else:
            from server.app import create_app

            uvicorn.run(create_app(), host=host, port=port, log_config=None, proxy_headers=False)

    @app.command()
    @friendly_errors
    def status(id_number: Annotated[str, typer.Argument(help="18-character ID number")]) -> None:
        """A pensioner's survival confirmation standing and recent confirmations."""
        from lifecert.domain.errors import NotFound
        from lifecert.domain.idnumber import mask_id_number, parse_id_number
        from lifecert.services.confirmations import confirmations_of, status_of
        from lifecert.services.context import AppContext
        from lifecert.services.templates import get_pensioner

        with AppContext() as ctx, ctx.db.session() as s:
            p = get_pensioner(s, parse_id_number(id_number).value)
            if p is None:
                raise NotFound(f"no pensioner with ID number {mask_id_number(id_number)}")
            st = status_of(s, p)
            typer.echo(f"{p.name}  {p.id_number}  pensioner status: {p.status}")
            if st.valid_until is None:
                typer.echo("survival confirmation: never confirmed")
            else:
                typer.echo(
                    f"survival confirmation: {st.state}, valid until {st.valid_until} ({st.days_left} days left), "
                    f"last by {st.last_method} on {st.last_evidence_date}"
                )
            for c in confirmations_of(s, p.id)[:10]:
                gone = f"  WITHDRAWN {c.withdrawn_at:%Y-%m-%d}: {c.withdrawn_reason}" if c.withdrawn_at else ""
                typer.echo(f"  {c.confirmed_at:%Y-%m-%d %H:%M}  {c.method:<18} valid until {c.valid_until}  "
                           f"{c.source}{gone}")

    @app.command()
    @friendly_errors
    def due(
        within: Annotated[str, typer.Option("--within", help="e.g. 30d, 4w, 2m")] = "30d",
        out: Annotated[Path | None, typer.Option("--out", help="write CSV here instead of stdout")] = None,
    ) -> None:
        """Active pensioners whose confirmation runs out within the period (CSV)."""
        from lifecert.services.confirmations import due_within
        from lifecert.services.context import AppContext

        with AppContext() as ctx, ctx.db.session() as s:
            _csv(list(due_within(s, parse_within(within), today=date.today())), out)

    @app.command()
    @friendly_errors
    def overdue(
        out: Annotated[Path | None, typer.Option("--out", help="write CSV here instead of stdout")] = None,
        include_never: Annotated[bool, typer.Option(help="also list pensioners never confirmed")] = True,
    ) -> None:
        """Active pensioners whose confirmation has expired (CSV)."""
        from lifecert.services.confirmations import overdue as overdue_list
        from lifecert.services.context import AppContext

        with AppContext() as ctx, ctx.db.session() as s:
            _csv(list(overdue_list(s, today=date.today(), include_never=include_never)), out)

    @app.command()
    @friendly_errors
    def purge(
        days: Annotated[int | None, typer.Option(help="retention days (default: review_retention_days)")] = None,
    ) -> None:
        """Delete frames and scores of verification sessions older than the review period."""
        from lifecert.services.context import AppContext
        from lifecert.services.verification import purge_expired

        with AppContext() as ctx:
            r = purge_expired(ctx, retention_days=days)
            typer.echo(
                f"purged {r.sessions} sessions: {r.blobs_deleted} frame files, {r.photos_deleted} best-frame photos; "
                f"{r.held_open_review} held (review case still open)"
            )
