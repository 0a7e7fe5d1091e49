"""Commands of the models area: ``models list | pull | install | verify``.

Engines and model packs come from ``models/manifest.toml`` (see
:mod:`lifecert.engine.packs`); installed packs
live in ``settings.resolved_models_dir`` (``LIFECERT_MODELS_DIR``), each with a
``pack.json`` recording every file's sha256. Failures print one line and exit 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from lifecert.config import Settings


def _settings() -> Settings:
    from lifecert.config import get_settings

    return get_settings()


# -- plain functions (what the commands do; also used by tests and scripts) --------------------
def list_models(settings: Settings) -> dict[str, Any]:
    """Engines of the manifest and, per known pack, what is installed
    (recorded sha256, not re-hashed: use :func:`verify_models` for that)."""
    from lifecert.engine import packs
    from lifecert.engine.manifest import load_manifest, model_info

    manifest = load_manifest(settings.manifest_path)
    engines = []
    for name in sorted(manifest.get("engines", {})):
        info = model_info(name, settings.manifest_path)
        engines.append({
            "engine": name,
            "key": info.key,
            "embedding_size": info.embedding_size,
            "thresholds": {k: t.similarity for k, t in info.thresholds.items()},
            "active": name == settings.engine,
        })
    listed = packs.list_packs(settings.resolved_models_dir, settings.manifest_path)
    for p in listed:
        p["active"] = p["engine"] == settings.engine and (
            p["engine"] != "insightface" or settings.insightface_pack == p["pack"])
    return {"models_dir": str(settings.resolved_models_dir), "engines": engines, "packs": listed}


def install_models(settings: Settings, source: Path, name: str | None = None) -> dict[str, Any]:
    """Install pack ``name`` (default: the folder's or zip's name) from a folder or a zip."""
    from lifecert.engine.packs import install_pack

    return install_pack(source, settings.resolved_models_dir, name, manifest_path=settings.manifest_path)


def pull_models(settings: Settings, name: str, url: str | None = None,
                upstream_base: str | None = None) -> dict[str, Any]:
    """Pull pack ``name``: its archive (``url`` or the default), each pinned file, or, for packs built
    here from pinned upstream originals (minifasnet), those originals from upstream or the mirror
    folder ``upstream_base``, converted (lifecert.engine.pack_convert)."""
    from lifecert.engine.packs import default_pack_url, pack_spec, pull_pack

    spec = pack_spec(name, settings.manifest_path)
    if url is None and (upstream_base is not None or (spec.convertible and default_pack_url(spec) is None)):
        from lifecert.engine.pack_convert import pull_converted

        return pull_converted(spec, settings.resolved_models_dir, base=upstream_base,
                              manifest_path=settings.manifest_path)
    return pull_pack(name, settings.resolved_models_dir, url=url, manifest_path=settings.manifest_path)


def verify_models(settings: Settings, name: str) -> list[Any]:
    """Re-hash pack ``name``; returns the per-file checks or raises MODEL_MISSING."""
    from lifecert.engine.packs import pack_spec, verify_pack

    return verify_pack(settings.resolved_models_dir, pack_spec(name, settings.manifest_path))


# -- the commands ------------------------------------------------------------------------------
# Plain lines, not tables: sha256 values must print whole, and scripts grep them.
def _print_record(record: dict[str, Any]) -> None:
    typer.echo(f"pack {record['name']} from {record['source']} (installed {record['installed_at']})")
    for fname, entry in record["files"].items():
        typer.echo(f"  {fname}  role={entry.get('role') or '-'}  bytes={entry['size']}  sha256={entry['sha256']}")


def register(app: typer.Typer) -> None:
    from lifecert.cli import friendly_errors

    models_app = typer.Typer(no_args_is_help=True, help="Face model packs: list, pull, install, verify.")
    app.add_typer(models_app, name="models")

    @models_app.command("list")
    @friendly_errors
    def list_cmd() -> None:
        """Engines in the manifest, and the model packs installed in the models directory."""
        data = list_models(_settings())
        typer.echo("engines (models/manifest.toml):")
        for e in data["engines"]:
            th = ", ".join(f"{k}={v:.3f}" for k, v in e["thresholds"].items()) or "none"
            active = "  [active]" if e["active"] else ""
            typer.echo(f"  {e['engine']}  {e['key']}  dim={e['embedding_size']}  thresholds: {th}{active}")
        typer.echo(f"model packs in {data['models_dir']}:")
        for p in data["packs"]:
            active = "  [active]" if p["active"] else ""
            licence = f"  licence: {p['licence']}" if p["licence"] else ""
            if not p["installed"]:
                typer.echo(f"  {p['pack']}  not installed{active}{licence}")
                continue
            typer.echo(f"  {p['pack']}  installed {p['installed_at']} from {p['source']}{active}{licence}")
            for fname, entry in p["files"].items():
                typer.echo(f"    {fname}  role={entry.get('role') or '-'}  sha256={entry['sha256']}")

    @models_app.command("pull")
    @friendly_errors
    def pull_cmd(
        name: Annotated[str, typer.Argument(help="Pack name, e.g. buffalo_l")],
        url: Annotated[str | None, typer.Option(help="Mirror URL of NAME.zip (default: insightface's)")] = None,
        upstream_base: Annotated[str | None, typer.Option(
            help="Mirror folder URL serving the upstream originals of a converted pack (e.g. minifasnet's .pth)",
        )] = None,
    ) -> None:
        """Download a pack (its archive, each pinned file, or the pinned upstream originals it is
        converted from) and install it (needs internet or a mirror)."""
        _print_record(pull_models(_settings(), name, url, upstream_base))

    @models_app.command("install")
    @friendly_errors
    def install_cmd(
        source: Annotated[Path, typer.Option("--from", help="A pack folder or zip, e.g. buffalo_l.zip")],
        pack: Annotated[str | None, typer.Argument(help="Pack name (default: the folder's or zip's name)")] = None,
        name: Annotated[str | None, typer.Option(help="Pack name (same as the argument)")] = None,
    ) -> None:
        """Install a pack from a local folder or zip (sha256 checked against the manifest's pins)."""
        _print_record(install_models(_settings(), source, pack or name))

    @models_app.command("verify")
    @friendly_errors
    def verify_cmd(name: Annotated[str, typer.Argument(help="Pack name, e.g. buffalo_l")]) -> None:
        """Re-hash an installed pack's files and compare with pack.json and the manifest."""
        checks = verify_models(_settings(), name)
        for c in checks:
            typer.echo(f"ok  {c.name}  role={c.role or '-'}  sha256={c.sha256}")
        typer.echo(f"pack {name}: {len(checks)} files verified")
