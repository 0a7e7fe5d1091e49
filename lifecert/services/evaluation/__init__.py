"""Accuracy evaluation of the face pipeline on pair protocols.

Every image goes through the production path: decode (``read_image_file``) →
detect → quality gates (``lifecert.domain.quality.gate`` with ``settings.quality``)
→ align → embed; a pair's score is the cosine similarity of the two L2-normalised
embeddings. As in production, the first image of a pair is the enrolled template (embedded
under ``settings.embedding.enroll_profile``) and the second the probe (``probe_profile``);
every image's per-view embeddings are kept, so any profile pair can be scored from one pass.
Images are processed once per run (embedding cache) and can be spread over a process pool
whose workers each load the engine once.

Failure to enrol (FTE): an image that cannot be decoded, has no detected face or
fails a quality gate. Pairs touching an FTE image are scored two ways:

* ``fte_as_errors`` — every such pair counts as a wrong decision (the operator's view:
  a person who cannot be enrolled or verified is a failure, whatever the label);
* ``enrolled`` — such pairs are left out and the metrics cover the remaining pairs.

A third view, ``detected`` (quality gates ignored, only undecodable/undetected
images are FTE, counted as errors), is what published LFW figures compare to.

Metric helpers (k-fold accuracy, ROC, EER, TAR@FAR, threshold at a target FAR) work
on plain score arrays and are independent of the engine.

The package is split by job: :mod:`.protocol` (reading pair files), :mod:`.embedding` (images
through the pipeline, cache), :mod:`.metrics` (score arrays and scored pairs),
:mod:`.calibration` (thresholds at a FAR, manifest), :mod:`.reports` (a whole run, plots).
This module re-exports their public names.
"""

from __future__ import annotations

from lifecert.services.evaluation.calibration import (
    calibrate_thresholds,
    set_table,
    write_manifest_thresholds,
)
from lifecert.services.evaluation.embedding import (
    ImageResult,
    embed_images,
    load_cache,
    process_image,
    save_cache,
    settings_profiles,
)
from lifecert.services.evaluation.metrics import (
    FAR_TARGETS,
    NOT_ENOUGH,
    KFoldResult,
    PairScores,
    Roc,
    best_threshold,
    candidate_thresholds,
    eer,
    evaluate,
    fte_summary,
    impostor_scores_all,
    kfold_accuracy,
    min_impostors_for,
    quality_bands,
    roc,
    rule_of_three_upper,
    score_pairs,
    tar_at_far,
    threshold_at_far,
    view_metrics,
)
from lifecert.services.evaluation.protocol import (
    Pair,
    read_csv_pairs,
    read_lfw_pairs,
    read_pairs,
)
from lifecert.services.evaluation.reports import (
    ProtocolRun,
    _cache_key,
    identity_of_path,
    machine_info,
    mode_name,
    profile_pairs,
    run_protocol,
    write_plots,
)

__all__ = [
    "FAR_TARGETS",
    "NOT_ENOUGH",
    "ImageResult",
    "KFoldResult",
    "Pair",
    "PairScores",
    "ProtocolRun",
    "Roc",
    "_cache_key",
    "best_threshold",
    "calibrate_thresholds",
    "candidate_thresholds",
    "eer",
    "embed_images",
    "evaluate",
    "fte_summary",
    "identity_of_path",
    "impostor_scores_all",
    "kfold_accuracy",
    "load_cache",
    "machine_info",
    "min_impostors_for",
    "mode_name",
    "process_image",
    "profile_pairs",
    "quality_bands",
    "read_csv_pairs",
    "read_lfw_pairs",
    "read_pairs",
    "roc",
    "rule_of_three_upper",
    "run_protocol",
    "save_cache",
    "score_pairs",
    "set_table",
    "settings_profiles",
    "tar_at_far",
    "threshold_at_far",
    "view_metrics",
    "write_manifest_thresholds",
    "write_plots",
]
