"""``lifecert eval``: verification accuracy of the configured engine on a pair protocol.

The same run as ``benchmarks/accuracy.py`` (which also writes plots and the README table)."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    from lifecert.cli import friendly_errors

    @app.command("eval")
    @friendly_errors
    def eval_cmd(
        pairs: Path = typer.Option(..., "--pairs", help="LFW pairs.txt or CSV (file_a,file_b,same)"),
        root: Path | None = typer.Option(None, "--root", help="image root (default: the pairs file's folder)"),
        engine: str | None = typer.Option(None, "--engine",
                                          help="engine (default: settings.engine); ENGINE+ENGINE fuses their scores"),
        workers: int = typer.Option(2, "--workers", help="processes, each loading the engine once"),
        folds: int = typer.Option(10, "--folds", help="folds for CSV files (LFW files carry their own)"),
        enroll_profile: str | None = typer.Option(None, "--enroll-profile",
                                                  help="views of side a: single | flip | jitter (default: settings)"),
        probe_profile: str | None = typer.Option(None, "--probe-profile",
                                                 help="views of side b: single | flip | jitter (default: settings)"),
        target_far: float = typer.Option(1e-3, "--target-far", help="FAR of the verify threshold"),
        duplicate_far: float = typer.Option(1e-6, "--duplicate-far", help="FAR of the duplicate threshold"),
        limit: int | None = typer.Option(None, "--limit", help="first N pairs only"),
        out: Path | None = typer.Option(None, "--out", help="write the full report as JSON here"),
        cache_dir: Path | None = typer.Option(None, "--cache-dir",
                                              help="reuse/keep per-image embeddings here (e.g. var/eval-cache)"),
        fusion_method: str = typer.Option("znorm", "--fusion-method", help="znorm | logistic (ENGINE+ENGINE)"),
        write_manifest: bool = typer.Option(False, "--write-manifest", help="write thresholds into the manifest"),
    ) -> None:
        """Run pairs through decode → detect → quality gates → align → embed → cosine and report
        k-fold accuracy, EER, TAR@FAR, failure-to-enrol and calibrated thresholds."""
        from lifecert.config import get_settings
        from lifecert.engine.manifest import manifest_path
        from lifecert.services import evaluation as ev

        s = get_settings()
        if engine is not None and "+" in engine:
            from lifecert.services.evaluation import fusion as fu

            engines = [e for e in engine.split("+") if e]
            _, fr = fu.run_fused_protocol(pairs, s, engines, root=root, workers=workers, folds=folds,
                                          enroll_profile=enroll_profile, probe_profile=probe_profile,
                                          target_far=target_far, duplicate_far=duplicate_far, limit=limit,
                                          cache_dir=cache_dir, method=fusion_method)
            for line in fu.summary_lines(fr):
                typer.echo(line)
            if write_manifest:
                fu.write_manifest_fusion(manifest_path(s.manifest_path), fr["fusion"], fr, pairs.name, fr["date"])
                typer.echo(f"fusion weights and thresholds written to {manifest_path(s.manifest_path)}")
            if out is not None:
                out.write_text(json.dumps(fr, indent=2, default=float) + "\n")
            return
        run = ev.run_protocol(pairs, s, root=root, engine_name=engine, workers=workers, folds=folds,
                              enroll_profile=enroll_profile, probe_profile=probe_profile,
                              target_far=target_far, duplicate_far=duplicate_far, limit=limit, cache_dir=cache_dir)
        r = run.report
        h = r["headline"]["views"]
        hp = r["headline_profiles"]
        typer.echo(f"{r['engine']} ({r['model_key']}): enrolled side {hp['enroll']}, probe side {hp['probe']}")
        for view in ("detected", "enrolled", "fte_as_errors"):
            v = h[view]
            typer.echo(f"{view:14s} accuracy {100 * v['accuracy_mean']:.2f}% ± {100 * v['accuracy_std']:.2f}% "
                       f"over {v['pairs']} pairs")
        for t in h["detected"].get("tar_at_far", []):
            shown = t["note"] if t["tar"] is None else f"{100 * t['tar']:.2f}% at similarity {t['threshold']:.4f}"
            typer.echo(f"TAR@FAR={t['far']:g}: {shown}")
        f = r["fte"]
        typer.echo(f"failure to enrol: {100 * f['fte_rate']:.2f}% of {f['images']} images {f['reasons']}")
        for k, t in r["thresholds"].items():
            typer.echo(f"threshold {k}: {t['similarity']} at FAR {t['far']:g} ({t['impostor_pairs']} impostor pairs)")
        if write_manifest:
            th = {k: {"similarity": v["similarity"], "far": v["far"],
                      "enroll_profile": v["enroll_profile"], "probe_profile": v["probe_profile"]}
                  for k, v in r["thresholds"].items() if v["similarity"] is not None}
            ev.write_manifest_thresholds(manifest_path(s.manifest_path), r["engine"], th, pairs.name, r["date"])
            typer.echo(f"thresholds written to {manifest_path(s.manifest_path)}")
        if out is not None:
            out.write_text(json.dumps(r, indent=2, default=float) + "\n")
