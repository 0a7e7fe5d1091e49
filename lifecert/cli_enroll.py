"""Commands of the enrollment area: ``enroll``, ``index rebuild``, ``templates rebuild``, ``db upgrade``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

if TYPE_CHECKING:
    from lifecert.config import Settings

console = Console()


def register(app: typer.Typer) -> None:
    from lifecert.cli import friendly_errors

    index_app = typer.Typer(no_args_is_help=True, help="The faiss 1:N index (a rebuildable cache of the templates).")
    templates_app = typer.Typer(no_args_is_help=True, help="Face templates.")
    db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
    app.add_typer(index_app, name="index")
    app.add_typer(templates_app, name="templates")
    app.add_typer(db_app, name="db")

    @app.command()
    @friendly_errors
    def enroll(
        source: Annotated[Path, typer.Argument(help="Folder of photos, or a .zip of one")],
        manifest: Annotated[Path | None, typer.Option(help="CSV/XLSX manifest: ID number, name, photo file")] = None,
        workers: Annotated[int, typer.Option(
            help="Worker processes (0 = in this process); Ray actors with --ray-address")] = 2,
        ray_address: Annotated[str | None, typer.Option(
            help="Run the face pipeline on this Ray cluster (e.g. 127.0.0.1:6379); needs lifecert[ray]")] = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate manifest and images; write nothing")] = False,
        report_dir: Annotated[Path | None, typer.Option(help="Where to write the CSV/JSON/HTML report")] = None,
        no_progress: Annotated[bool, typer.Option("--no-progress")] = False,
    ) -> None:
        """Batch-enroll ID photos into face templates (resumable; safe to rerun)."""
        from enrollment.job import JobOptions, run_job
        from lifecert.services.audit import cli_actor
        from lifecert.services.context import AppContext

        with AppContext() as ctx:
            with Progress(
                TextColumn("[bold]enrolling"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:>6.1f} photos/s"), TimeElapsedColumn(), TextColumn("ETA"),
                TimeRemainingColumn(), console=console, disable=no_progress, refresh_per_second=4,
            ) as progress:
                task = progress.add_task("enroll", total=None, rate=0.0)
                t0 = time.monotonic()

                def on_progress(done: int, total: int, assessed: int) -> None:
                    # Only photos assessed in this invocation count: rows finished by an earlier run,
                    # or rejected before the face pipeline, are done at once and would inflate the rate.
                    elapsed = time.monotonic() - t0
                    rate = assessed / elapsed if assessed and elapsed >= 0.5 else 0.0
                    progress.update(task, completed=done, total=total, rate=rate)

                result = run_job(
                    ctx, source, manifest,
                    JobOptions(workers=workers, ray_address=ray_address, dry_run=dry_run, report_dir=report_dir,
                               actor=cli_actor(), on_progress=on_progress),
                )
            resumed = " (resumed)" if result.resumed else ""
            table = Table(title=f"enrollment run {result.run_id or '(dry run)'}{resumed}")
            table.add_column("reason")
            table.add_column("count", justify="right")
            for k, v in sorted(result.counts.items()):
                table.add_row(k, str(v))
            console.print(table)
            for kind, path in result.reports.items():
                console.print(f"report {kind}: {path}")

    manifest_app = typer.Typer(no_args_is_help=True, help="Enrollment manifests.")
    app.add_typer(manifest_app, name="manifest")

    @manifest_app.command("synth")
    @friendly_errors
    def manifest_synth(
        folder: Annotated[Path, typer.Argument(help="Folder with one sub-folder of photos per person")],
        out: Annotated[Path, typer.Option(help="CSV to write (UTF-8 with BOM)")],
        region: Annotated[str, typer.Option(help="6-digit region code for the synthetic ID numbers")] = "220202",
        seed: Annotated[str | None, typer.Option(help="Seed of the ID numbers (default: the folder's name)")] = None,
    ) -> None:
        """Write a demo manifest for a labelled photo folder: one synthetic, checksum-valid ID number
        per person (first photo of each sub-folder). For demos and benchmarks only."""
        from enrollment.manifest import synth_manifest

        n, used_seed = synth_manifest(folder, out, region, seed)
        console.print(f"{n} rows → {out} (region {region}, seed {used_seed!r}; another seed gives other ID numbers)")

    @index_app.command("rebuild")
    @friendly_errors
    def index_rebuild() -> None:
        """Build the 1:N index of the configured model from the database (a check: every template
        must decrypt). The service keeps its index in memory and rebuilds it when templates change."""
        from lifecert.services.context import AppContext

        with AppContext() as ctx:
            with ctx.db.session() as s:
                idx = ctx.index.rebuild(s, ctx.model.key)
            console.print(f"index {ctx.model.key}: {idx.size} templates decrypted and indexed (in memory only)")

    @index_app.command("status")
    @friendly_errors
    def index_status() -> None:
        """How many active templates the configured model's index will hold (it lives in memory only,
        built from the sealed rows at start-up and whenever the templates change)."""
        from lifecert.services.context import AppContext
        from lifecert.storage.vector_index import template_count

        with AppContext() as ctx:
            with ctx.db.session() as s:
                n = template_count(s, ctx.model.key)
            console.print(f"index {ctx.model.key}: {n} active templates; kept in memory by the service, never on disk")

    @templates_app.command("rebuild")
    @friendly_errors
    def templates_rebuild(
        engine: Annotated[str, typer.Option(help="Engine whose model makes the new templates")] = "dlib",
    ) -> None:
        """Re-embed the stored photos of every active template with ENGINE's model (templates of
        other models are kept; each model's templates are only compared with its own), and
        re-embed in place the templates made under another embedding profile than the
        configured enroll profile. ENGINE = the configured fusion engine (edgeface) adds its
        templates beside the primary's instead, made as enrollment makes them."""
        from lifecert.config import get_settings
        from lifecert.services.context import AppContext
        from lifecert.services.rebuild import rebuild_second_templates, rebuild_templates

        configured = get_settings()
        if engine == configured.fusion_engine and engine != configured.engine:
            # the fusion's second engine: its templates beside the primary's, made as enrollment makes them
            with AppContext(configured) as ctx:
                counts = rebuild_second_templates(ctx)
        else:
            with AppContext(ctx_settings_for(engine)) as ctx:
                counts = rebuild_templates(ctx)
        for k, v in sorted(counts.items()):
            console.print(f"{k}: {v}")

    @templates_app.command("expire")
    @friendly_errors
    def templates_expire() -> None:
        """Retire refresh templates past their expiry date (audited); run daily."""
        from lifecert.config import get_settings
        from lifecert.services import refresh
        from lifecert.services.context import AppContext

        with AppContext(get_settings()) as ctx:
            console.print(f"expired: {refresh.expire_due(ctx)}")

    @db_app.command("upgrade")
    @friendly_errors
    def db_upgrade() -> None:
        """Apply database migrations up to the newest revision."""
        from lifecert.config import get_settings
        from lifecert.storage.db import make_engine
        from lifecert.storage.migrate import upgrade_to_head

        s = get_settings()
        upgrade_to_head(make_engine(s.resolved_database_url))
        console.print("database is at the newest revision")


def ctx_settings_for(engine: str) -> Settings:
    """The configured settings with another engine (templates of each model are kept apart)."""
    from lifecert.config import get_settings

    return get_settings().model_copy(update={"engine": engine})
