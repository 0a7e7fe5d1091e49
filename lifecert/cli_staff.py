"""``lifecert users ...`` and ``lifecert audit ...`` commands."""

from __future__ import annotations

import getpass
import os
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from lifecert.services import audit

out = Console()


def _password(prompt: str, from_env: str | None) -> str:
    """Read a password without echo (or from an environment variable for scripts; never from argv)."""
    if from_env:
        value = os.environ.get(from_env)
        if not value:
            from lifecert.domain.errors import ErrorCode, LifecertError

            raise LifecertError(f"environment variable {from_env} is empty or not set", code=ErrorCode.BAD_REQUEST)
        return value
    first = getpass.getpass(f"{prompt}: ")
    again = getpass.getpass(f"{prompt} (again): ")
    if first != again:
        from lifecert.domain.errors import ErrorCode, LifecertError

        raise LifecertError("the two passwords differ", code=ErrorCode.BAD_REQUEST)
    return first


def register(app: typer.Typer) -> None:
    from lifecert.cli import friendly_errors
    from lifecert.services import staff
    from lifecert.services.context import AppContext

    users = typer.Typer(no_args_is_help=True,
                        help="Staff accounts (roles: admin, enrollment_staff, caseworker, auditor, community_worker)")
    audit_app = typer.Typer(no_args_is_help=True, help="The tamper-evident audit trail")
    app.add_typer(users, name="users")
    app.add_typer(audit_app, name="audit")
    actor = audit.cli_actor()

    @users.command("create")
    @friendly_errors
    def users_create(
        username: str,
        role: str = typer.Option(..., help="admin | enrollment_staff | caseworker | auditor | community_worker"),
        display_name: str = typer.Option("", help="name shown in the console"),
        region: str | None = typer.Option(None, help="6-digit region code of the staff member's office"),
        password_env: str | None = typer.Option(None, help="read the password from this environment variable"),
    ) -> None:
        """Create a staff account (asks for the password)."""
        password = _password("password", password_env)
        with AppContext() as ctx, ctx.db.session() as s:
            u = staff.create_user(s, username, password, role, display_name=display_name, region_code=region,
                                  actor=actor, actor_role="cli")
            out.print(f"created {u.username} ({u.role}) id={u.id}")

    @users.command("disable")
    @friendly_errors
    def users_disable(username: str) -> None:
        """Disable an account and end its sessions and API tokens."""
        with AppContext() as ctx:
            with ctx.db.session() as s:
                staff.disable_user(s, username, actor=actor, actor_role="cli")
            out.print(f"disabled {username}")

    @users.command("reset-password")
    @friendly_errors
    def users_reset(
        username: str,
        password_env: str | None = typer.Option(None, help="read the password from this environment variable"),
    ) -> None:
        """Set a new password (re-enables the account, clears lockouts, ends sessions and tokens)."""
        password = _password("new password", password_env)
        with AppContext() as ctx:
            with ctx.db.session() as s:
                staff.reset_password(s, username, password, actor=actor, actor_role="cli")
            out.print(f"password reset for {username}")

    @users.command("list")
    @friendly_errors
    def users_list() -> None:
        """List staff accounts."""
        with AppContext() as ctx:
            with ctx.db.session() as s:
                t = Table("id", "username", "display name", "role", "region", "active")
                for u in staff.list_users(s):
                    t.add_row(str(u.id), u.username, u.display_name, u.role, u.region_code or "",
                              "yes" if u.active else "no")
            out.print(t)

    @users.command("token")
    @friendly_errors
    def users_token(
        username: str,
        name: str = typer.Option("", help="a label for the token"),
        days: int = typer.Option(90, help="days until the token expires"),
    ) -> None:
        """Issue an API bearer token for a staff account (shown once; only its hash is stored)."""
        from datetime import timedelta

        with AppContext() as ctx:
            with ctx.db.session() as s:
                raw, row = staff.create_api_token(s, username, name=name, ttl=timedelta(days=days), actor=actor,
                                                  actor_role="cli")
            out.print(f"token id={row.id} (expires {row.expires_at:%Y-%m-%d}):")
            typer.echo(raw)

    @audit_app.command("verify")
    @friendly_errors
    def audit_verify(
        checkpoint: Path | None = typer.Option(None, "--checkpoint",
                                               help="file of signed checkpoints (lifecert audit checkpoint): "
                                                    "also detect deleted newest rows and re-hashed tails"),
    ) -> None:
        """Check the keyed hash chain (and signed checkpoints); exit 1 and name the problem when broken."""
        from lifecert.services import audit_anchor

        with AppContext() as ctx, ctx.db.session() as s:
            if checkpoint is not None:
                cps = audit_anchor.read_checkpoints(checkpoint)
                anchored = audit_anchor.verify_against(s, cps, audit_anchor.verify_key(ctx.settings))
                rep, ok, problem = anchored.chain, anchored.ok, anchored.problem
            else:
                rep = audit.verify_chain(s)
                ok, problem = rep.ok, rep.problem
            audit.record(s, actor=actor, role="cli", action="audit.verify", object_type="audit_event",
                         object_id="*", detail={"ok": ok, "rows": rep.rows, "first_bad_id": rep.first_bad_id,
                                                "checkpoints": checkpoint is not None})
        if ok:
            extra = f", {len(cps)} signed checkpoint(s) hold" if checkpoint is not None else ""
            out.print(f"audit chain OK: {rep.rows} rows{extra}")
            return
        if not rep.ok:
            typer.echo(f"audit chain BROKEN at row id {rep.first_bad_id}: {rep.problem} "
                       f"({rep.rows} rows before it verified)", err=True)
        else:
            typer.echo(f"audit trail does NOT match its checkpoints: {problem}", err=True)
        raise typer.Exit(1)

    @audit_app.command("checkpoint")
    @friendly_errors
    def audit_checkpoint(
        out_file: str = typer.Option(..., "--out", help="append the signed checkpoint to this file "
                                                        "('-' = stdout, to pipe into an external log)"),
    ) -> None:
        """Sign the chain head (id, hash, row count, time) with LIFECERT_AUDIT_SIGNING_KEY (Ed25519)."""
        from lifecert.services import audit_anchor

        with AppContext() as ctx:
            key = audit_anchor.signing_key(ctx.settings)
            with ctx.db.session() as s:
                cp = audit_anchor.make_checkpoint(s, key)
            audit_anchor.write_checkpoint(cp, out_file)
        if out_file != "-":
            out.print(f"checkpoint: head row {cp['head_id']}, {cp['count']} rows, key {cp['key_id']} -> {out_file}")

    @audit_app.command("keygen")
    def audit_keygen() -> None:
        """Print a new Ed25519 key pair for signing checkpoints (keep the signing key secret, ideally off
        the database host; give the verify key to auditors)."""
        from lifecert.services import audit_anchor

        seed, pub = audit_anchor.new_keypair()
        typer.echo(f"LIFECERT_AUDIT_SIGNING_KEY={seed}")
        typer.echo(f"LIFECERT_AUDIT_VERIFY_KEY={pub}")

    @audit_app.command("export")
    @friendly_errors
    def audit_export(
        out_file: Path = typer.Option(..., "--out", help="CSV file to write"),
        actor_filter: str | None = typer.Option(None, "--actor"),
        action: str | None = typer.Option(None, help="exact action, or a prefix ending in '.' (e.g. case.)"),
        date_from: str | None = typer.Option(None, "--from", help="YYYY-MM-DD (UTC, inclusive)"),
        date_to: str | None = typer.Option(None, "--to", help="YYYY-MM-DD (UTC, inclusive)"),
    ) -> None:
        """Export the trail (with hashes) to CSV; the export itself is audited."""
        from datetime import date

        f = audit.AuditFilter(actor=actor_filter, action=action,
                              date_from=date.fromisoformat(date_from) if date_from else None,
                              date_to=date.fromisoformat(date_to) if date_to else None)
        with AppContext() as ctx:
            with ctx.db.session() as s:
                audit.record(s, actor=actor, role="cli", action="audit.export", object_type="audit_event",
                             object_id="*", detail={"out": str(out_file), "rows": audit.count_events(s, f)})
            with ctx.db.session() as s:
                n = audit.export_csv(s, out_file, f)
        out.print(f"wrote {n} events to {out_file}")
