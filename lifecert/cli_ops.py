"""Operations commands: ``backup`` and ``restore`` (lifecert.services.backup)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    from lifecert.cli import friendly_errors

    @app.command()
    @friendly_errors
    def backup(
        out: Annotated[Path, typer.Option("--out", help="Encrypted backup file to write (mode 0600)")],
    ) -> None:
        """Consistent, encrypted backup of the database and the blob store while the service runs."""
        from lifecert.services.audit import cli_actor
        from lifecert.services.backup import create_backup
        from lifecert.services.context import AppContext

        ctx = AppContext()
        try:
            r = create_backup(ctx, out, actor=cli_actor())
        finally:
            ctx.close()
        typer.echo(
            f"backup {r.path}: {r.bytes / 1e6:.1f} MB, {sum(r.rows.values())} rows, {r.blobs} blobs "
            f"({r.blob_bytes / 1e6:.1f} MB) in {r.seconds:.1f} s"
        )

    @app.command()
    @friendly_errors
    def restore(
        src: Annotated[Path, typer.Argument(help="Backup file written by `lifecert backup`")],
    ) -> None:
        """Restore a backup into an EMPTY deployment (refuses one that has data); checks every hash,
        the row counts and the audit chain."""
        from lifecert.config import get_settings
        from lifecert.services.audit import cli_actor
        from lifecert.services.backup import restore_backup

        r = restore_backup(get_settings(), src, actor=cli_actor())
        typer.echo(
            f"restored {sum(r.rows.values())} rows and {r.blobs} blobs in {r.seconds:.1f} s; "
            f"audit chain intact ({r.audit_rows} events)"
        )
