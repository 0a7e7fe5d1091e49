"""``lifecert keys``: which keys seal the stored biometric data, and rotation to the current key."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    from lifecert.cli import friendly_errors

    keys_app = typer.Typer(no_args_is_help=True, help="Encryption keys of templates, photos and frames")
    app.add_typer(keys_app, name="keys")

    @keys_app.command("status")
    @friendly_errors
    def keys_status() -> None:
        """Count sealed blobs per key id (v1 = sealed before key ids); retire a key when it has none."""
        from lifecert.services.context import AppContext
        from lifecert.services.keys import status

        with AppContext() as ctx:
            counts = status(ctx)
            typer.echo(f"current key {ctx.cipher.current_key_id}; configured: {', '.join(ctx.cipher.key_ids)}")
            for kind, per_key in counts.items():
                shown = ", ".join(f"{k}: {n}" for k, n in sorted(per_key.items())) or "none"
                typer.echo(f"  {kind:<15} {shown}")

    @keys_app.command("rotate")
    @friendly_errors
    def keys_rotate(batch: int = typer.Option(200, help="rows/blobs per transaction")) -> None:
        """Re-seal every blob under LIFECERT_TEMPLATE_KEY (old keys in LIFECERT_RETIRED_TEMPLATE_KEYS).
        Safe while the service runs; stop and re-run at any time: it continues where it stopped."""
        from lifecert.services import audit
        from lifecert.services.context import AppContext
        from lifecert.services.keys import KINDS, rotate

        def progress(kind: str, done: int, seen: int) -> None:
            typer.echo(f"  {kind}: {seen} examined, {done} re-sealed", err=True)

        with AppContext() as ctx:
            rep = rotate(ctx, batch=max(1, batch), progress=progress)
            with ctx.db.session() as s:
                audit.record(s, actor=audit.cli_actor(), role="cli", action="keys.rotate", object_type="key",
                             object_id=ctx.cipher.current_key_id,
                             detail={"resealed": dict(rep.resealed), "examined": dict(rep.examined),
                                     "missing": dict(rep.missing)})
            for kind in KINDS:
                typer.echo(f"{kind}: {rep.resealed[kind]} of {rep.examined[kind]} re-sealed under "
                           f"{ctx.cipher.current_key_id}" + (f", {rep.missing[kind]} missing" if rep.missing[kind]
                                                             else ""))
