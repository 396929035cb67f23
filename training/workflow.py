"""The training job on a workspace: link, featurize, fit, log and register."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from leadlink.errors import TrainingError
from leadlink.features.linkage import link_workspace, with_person_ids
from leadlink.features.pipeline import FeatureConfig, build_features, feature_specs
from leadlink.features.workspace import load_workspace
from leadlink.training import tracking
from leadlink.training.dataset import deal_examples, resolve_as_of
from leadlink.training.train import fit_lead_model

logger = logging.getLogger(__name__)


def train_workspace(
    path: str | Path,
    as_of: str | None = None,
    model_name: str = tracking.DEFAULT_MODEL_NAME,
    rejects_path: Path | None = None,
    seed: int = 0,
    config: FeatureConfig | None = None,
) -> dict:
    """Train a conversion model on the workspace at ``path`` and register it.

    Returns a summary with the run id, model URI, holdout metrics, row counts
    and the time spent per step.
    """
    config = config or FeatureConfig()
    timings: dict[str, float] = {}
    started = time.perf_counter()

    workspace = load_workspace(path, require=("contacts", "deals"))
    rejects = workspace.write_problems(rejects_path or Path(path) / "rejects.csv")
    cutoff = resolve_as_of(workspace, as_of)
    timings["load"] = _lap(started)

    links, linker, linked = link_workspace(
        workspace.contacts, workspace.users, threshold=config.match_threshold, default_region=config.default_region
    )
    users = with_person_ids(workspace.users, linked)
    timings["link"] = _lap(started, timings)

    examples = deal_examples(workspace, cutoff)
    features = build_features(workspace.contacts, workspace.events, users, links, examples, config)
    timings["features"] = _lap(started, timings)

    kinds = {spec.name: spec.kind for spec in feature_specs()}
    result = fit_lead_model(
        features,
        examples["label"].to_numpy(),
        kinds,
        times=examples["as_of"],
        seed=seed,
        spec_extra={
            "mode": "workspace",
            "feature_config": config.to_dict(),
            "feature_groups": {spec.name: spec.group for spec in feature_specs()},
            "trained_as_of": cutoff.isoformat(),
            "workspace": str(Path(path).resolve()),
        },
    )
    result.scorer.linkage_model = linker.model_json_
    timings["fit"] = _lap(started, timings)
    _log_metrics(result.metrics, result.split)

    params = {
        "mode": "workspace",
        "as_of": cutoff.isoformat(),
        "n_examples": len(examples),
        "n_features": len(result.scorer.feature_names),
        "split": result.split,
        "seed": seed,
        **{f"feature_{key}": value for key, value in config.to_dict().items()},
    }
    logged = tracking.log_model_run(
        result.scorer,
        params,
        {f"holdout_{key}": value for key, value in result.metrics.items()},
        input_example=features,
        model_name=model_name,
        tags={"leadlink.mode": "workspace", "leadlink.workspace": str(Path(path).resolve())},
    )
    timings["log"] = _lap(started, timings)
    return {
        **logged,
        "metrics": result.metrics,
        "split": result.split,
        "examples": len(examples),
        "linked_contacts": len(links),
        "rows": workspace.summary(),
        "rejects_file": str(rejects) if rejects else None,
        "seconds": timings,
    }


def _lap(started: float, previous: dict | None = None) -> float:
    return round(time.perf_counter() - started - sum((previous or {}).values()), 2)


def _log_metrics(metrics: dict, split: str) -> None:
    logger.info(
        "Holdout (%s split, %s examples, %.0f%% positive): ROC AUC %.3f, PR AUC %.3f, Brier %.3f, ECE %.3f, top-decile lift %.2f",
        split,
        f"{int(metrics['n']):,}",
        100 * metrics["base_rate"],
        metrics["roc_auc"],
        metrics["pr_auc"],
        metrics["brier"],
        metrics["ece"],
        metrics["lift_top_decile"],
    )



def train_table(
    path: str | Path,
    label: str,
    id_column: str | None = None,
    model_name: str = tracking.DEFAULT_MODEL_NAME,
    rejects_path: Path | None = None,
    seed: int = 0,
) -> dict:
    """Train and register a model on a one-row-per-lead table.

    The table has no timestamps, so the holdout is a random slice; the
    summary's ``split`` field says so.
    """
    from leadlink.training import table as lead_table

    started = time.perf_counter()
    raw = lead_table.read_lead_table(path)
    lead_table.check_columns(raw, path, label, id_column)
    rows, labels, rejected = lead_table.split_labelled_rows(raw, path, label)
    rejects = None
    if len(rejected):
        rejects = rejects_path or Path(path).with_name(Path(path).stem + ".rejects.csv")
        rejected.to_csv(rejects, index=False)
        logger.warning("%s rows have no usable label and were written to %s", f"{len(rejected):,}", rejects)

    schema = lead_table.infer_schema(rows, label, id_column)
    if not schema.columns:
        raise TrainingError(f"Lead table {path} has no usable feature column after dropping: {schema.notes}")
    features = lead_table.table_features(rows, schema)
    kinds = {c.name: ("categorical" if c.kind == "categorical" else "numeric") for c in schema.columns}
    result = fit_lead_model(features, labels, kinds, times=None, seed=seed, spec_extra={"mode": "table", "table": schema.to_dict()})
    _log_metrics(result.metrics, result.split)

    params = {"mode": "table", "table": Path(path).name, "label": label, "n_examples": len(rows), "n_features": len(schema.columns), "split": result.split, "seed": seed}
    logged = tracking.log_model_run(
        result.scorer,
        params,
        {f"holdout_{key}": value for key, value in result.metrics.items()},
        input_example=features,
        model_name=model_name,
        tags={"leadlink.mode": "table", "leadlink.table": str(Path(path).resolve())},
    )
    return {
        **logged,
        "metrics": result.metrics,
        "split": result.split,
        "rows": {"read": len(raw), "used": len(rows), "rejected": len(rejected)},
        "features": len(schema.columns),
        "notes": schema.notes,
        "rejects_file": str(rejects) if rejects else None,
        "seconds": {"total": round(time.perf_counter() - started, 2)},
    }
