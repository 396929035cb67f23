"""Training jobs: build examples, guard against leakage, backtest, fit, log and register.

Both modes share one path after their features are built:

1. the leakage guard flags features that are recorded after the outcome or
   that alone predict the label almost perfectly, and leaves them out unless
   the user keeps them;
2. an optional Optuna search tunes LightGBM on data older than the backtest;
3. the rolling-origin backtest measures the model, the rules score and a
   logistic regression on the same folds;
4. the final model is fitted on every example and logged to MLflow with its
   plots, and registered as the ``challenger`` only when the backtest shows
   signal above the base rate.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from leadlink.errors import TrainingError
from leadlink.features.linkage import link_workspace, with_person_ids
from leadlink.features.pipeline import FeatureConfig, build_features, engagement_features, feature_specs
from leadlink.features.rules import RulesConfig, load_rules, score_rules
from leadlink.features.workspace import load_workspace
from leadlink.training import artifacts, tracking
from leadlink.training.backtest import (
    DEFAULT_FOLDS,
    MODEL,
    BacktestResult,
    check_folds,
    random_folds,
    run_backtest,
    signal_verdict,
    time_folds,
)
from leadlink.training.dataset import contact_examples, deal_examples, resolve_as_of
from leadlink.training.leakage import LeakageSettings, excluded_features, find_leaks, leakage_table
from leadlink.training.train import fit_scorer
from leadlink.training.tuning import tune_params

logger = logging.getLogger(__name__)


@dataclass
class TrainingOptions:
    """Choices shared by both training modes."""

    model_name: str = tracking.DEFAULT_MODEL_NAME
    folds: int = DEFAULT_FOLDS
    seed: int = 0
    tune_trials: int = 0
    keep_features: tuple[str, ...] = ()
    leakage_auc: float = LeakageSettings.max_single_feature_auc
    rejects_path: Path | None = None
    extra_tags: dict = field(default_factory=dict)


@dataclass
class PreparedData:
    """Everything the shared training path needs from one mode."""

    features: pd.DataFrame
    labels: np.ndarray
    kinds: dict[str, str]
    order: np.ndarray  # positions oldest first (random for tables)
    split: str
    folds: list
    remedy: str
    display_names: dict[str, str]
    params: dict
    tags: dict
    spec_extra: dict
    rules_points: np.ndarray | None = None
    rules: RulesConfig | None = None
    recorded_after_outcome: dict[str, str] = field(default_factory=dict)


def train_workspace(
    path: str | Path,
    as_of: str | None = None,
    config: FeatureConfig | None = None,
    options: TrainingOptions | None = None,
    population: str = "deals",
    horizon_days: float = 90.0,
    maturity_days: float | None = None,
    rules_path: Path | None = None,
) -> dict:
    """Train a conversion model on the workspace at ``path``; log it and register it when it has signal.

    ``population`` is ``deals`` (one example per closed deal, won against
    lost, as of the deal's creation) or ``contacts`` (one per contact as of
    its creation, won within ``horizon_days``).
    """
    options = options or TrainingOptions()
    started = time.perf_counter()
    prepared = prepare_workspace(path, as_of, config, options, population, horizon_days, maturity_days, rules_path)
    timings = {"prepare": _lap(started)}

    summary = _fit_evaluate_log(prepared.data, options, linkage_model=prepared.linkage_model)
    timings["fit_and_log"] = _lap(started, timings)
    return {
        **summary,
        "examples": len(prepared.examples),
        "linked_contacts": prepared.linked_contacts,
        "rows": prepared.rows,
        "rejects_file": prepared.rejects_file,
        "seconds": timings,
    }


@dataclass
class PreparedWorkspace:
    data: PreparedData
    examples: pd.DataFrame
    linkage_model: dict | None
    linked_contacts: int
    rows: dict
    rejects_file: str | None


def prepare_workspace(
    path: str | Path,
    as_of: str | None = None,
    config: FeatureConfig | None = None,
    options: TrainingOptions | None = None,
    population: str = "deals",
    horizon_days: float = 90.0,
    maturity_days: float | None = None,
    rules_path: Path | None = None,
) -> PreparedWorkspace:
    """Load, link and featurize a workspace: everything training needs before the backtest."""
    config = config or FeatureConfig()
    options = options or TrainingOptions()
    # Read the rules first so that a broken rules file fails before the slow steps.
    rules = load_rules(rules_path)
    workspace = load_workspace(path, require=("contacts", "deals"))
    rejects = workspace.write_problems(options.rejects_path or Path(path) / "rejects.csv")
    if rejects:
        logger.warning("%s problem(s) in the workspace; rejected rows and cleared values are listed in %s", f"{len(workspace.problems):,}", rejects)
    if workspace.events.empty:
        logger.warning("The workspace has no events, so every engagement feature is zero and the model learns from fit and previous use only.")
    cutoff = resolve_as_of(workspace, as_of)

    links, linker, linked = link_workspace(
        workspace.contacts, workspace.users, threshold=config.match_threshold, default_region=config.default_region
    )
    users = with_person_ids(workspace.users, linked)

    if population == "deals":
        examples = deal_examples(workspace, cutoff, maturity_days)
    elif population == "contacts":
        examples = contact_examples(workspace, cutoff, horizon_days)
    else:
        raise TrainingError(f"--population must be 'deals' or 'contacts'; got {population!r}.")
    features = build_features(workspace.contacts, workspace.events, users, links, examples, config)
    rules_points = _rules_points(features, rules, config, workspace.events, examples)

    folds = time_folds(examples["as_of"], examples["outcome_at"], options.folds, maturity_days=examples.attrs["maturity_days"])
    specs = feature_specs()
    data = PreparedData(
        features=features,
        labels=examples["label"].to_numpy(),
        kinds={spec.name: spec.kind for spec in specs},
        order=np.arange(len(examples)),  # examples come sorted by moment
        split="time",
        folds=folds,
        remedy=_fold_remedy(population),
        display_names={},
        params={
            "mode": "workspace",
            "population": population,
            "as_of": cutoff.isoformat(),
            "maturity_days": examples.attrs["maturity_days"],
            "horizon_days": horizon_days if population == "contacts" else None,
            **{f"feature_{key}": value for key, value in config.to_dict().items()},
        },
        tags={"leadlink.mode": "workspace", "leadlink.workspace": str(Path(path).resolve())},
        spec_extra={
            "mode": "workspace",
            "feature_config": config.to_dict(),
            "feature_groups": {spec.name: spec.group for spec in specs},
            "trained_as_of": cutoff.isoformat(),
            "population": population,
            "workspace": str(Path(path).resolve()),
        },
        rules_points=rules_points,
        rules=rules,
    )
    return PreparedWorkspace(data, examples, linker.model_json_, len(links), workspace.summary(), str(rejects) if rejects else None)


def _fold_remedy(population: str) -> str:
    if population == "contacts":
        return "Use a longer --horizon-days, move --as-of later, or use fewer --folds."
    return "Add closed deals, move --as-of later, or use fewer --folds."


def _rules_points(
    features: pd.DataFrame, rules: RulesConfig, config: FeatureConfig, events: pd.DataFrame, moments: pd.DataFrame
) -> np.ndarray:
    """Score every example with the rules, recomputing engagement when the rules decay at another half-life."""
    if rules.engagement.half_life_days == config.half_life_days:
        return score_rules(features, rules, config.half_life_days)["rules_score"].to_numpy()
    rules_config = FeatureConfig(half_life_days=rules.engagement.half_life_days)
    engagement = engagement_features(events, moments, rules_config)
    merged = features.drop(columns=engagement.columns, errors="ignore").join(engagement)
    return score_rules(merged, rules, rules_config.half_life_days)["rules_score"].to_numpy()


def train_table(path: str | Path, label: str, id_column: str | None = None, options: TrainingOptions | None = None) -> dict:
    """Train on a one-row-per-lead table; log it and register it when it has signal.

    The table has no timestamps, so the backtest folds are stratified random
    folds, and the summary's ``split`` records that.
    """
    from leadlink.training import table as lead_table

    options = options or TrainingOptions(model_name="leadlink-table")
    started = time.perf_counter()
    raw = lead_table.read_lead_table(path)
    lead_table.check_columns(raw, path, label, id_column)
    rows, labels, rejected = lead_table.split_labelled_rows(raw, path, label)
    rejects = None
    if len(rejected):
        rejects = options.rejects_path or Path(path).with_name(Path(path).stem + ".rejects.csv")
        rejected.to_csv(rejects, index=False)
        logger.warning("%s rows have no usable label and were written to %s", f"{len(rejected):,}", rejects)

    schema = lead_table.infer_schema(rows, label, id_column)
    if not schema.columns:
        raise TrainingError(f"Lead table {path} has no usable feature column after dropping: {schema.notes}")
    features = lead_table.table_features(rows, schema)
    labels = np.asarray(labels, dtype=int)
    prepared = PreparedData(
        features=features,
        labels=labels,
        kinds={c.name: ("categorical" if c.kind == "categorical" else "numeric") for c in schema.columns},
        order=np.random.default_rng(options.seed).permutation(len(labels)),
        split="random",
        folds=random_folds(labels, options.folds, options.seed),
        remedy="Add more labelled rows with both outcomes, or use fewer --folds.",
        display_names=schema.display_names,
        params={"mode": "table", "table": Path(path).name, "label": label},
        tags={"leadlink.mode": "table", "leadlink.table": str(Path(path).resolve())},
        spec_extra={"mode": "table", "table": schema.to_dict()},
    )
    summary = _fit_evaluate_log(prepared, options)
    return {
        **summary,
        "rows": {"read": len(raw), "used": len(rows), "rejected": len(rejected)},
        "features": len(schema.columns),
        "notes": schema.notes,
        "rejects_file": str(rejects) if rejects else None,
        "seconds": {"total": round(time.perf_counter() - started, 2)},
    }


def _fit_evaluate_log(data: PreparedData, options: TrainingOptions, linkage_model: dict | None = None) -> dict:
    """Run the shared path: leakage guard, tuning, backtest, final fit, MLflow logging and registration."""
    check_folds(data.folds, data.labels, data.remedy)
    # The guard looks at every example, test folds included. It can only
    # remove features, so this makes the backtest stricter, never kinder.
    flags = find_leaks(
        data.features,
        data.labels,
        data.kinds,
        _leakage_settings(options, data),
        display_names=data.display_names,
        recorded_after_outcome=data.recorded_after_outcome,
    )
    _check_keep_names(options.keep_features, data)
    excluded = excluded_features(flags)
    if len(excluded) == data.features.shape[1]:
        raise TrainingError(
            f"The leakage guard flagged all {len(excluded)} features (--leakage-auc {options.leakage_auc}), so none is left to "
            "train on. Raise --leakage-auc or keep features with --keep-feature."
        )
    features = data.features.drop(columns=excluded)
    kinds = {name: data.kinds[name] for name in features.columns}

    tracking.configure_mlflow()
    with mlflow.start_run(tags={**data.tags, **options.extra_tags}) as run:
        params: dict = {}
        if options.tune_trials:
            tuning_rows = _rows_before_backtest(data)
            params = tune_params(features, data.labels, kinds, tuning_rows, options.tune_trials, options.seed)

        result = run_backtest(features, data.labels, kinds, data.folds, data.split, data.order, data.rules_points, params, options.seed)
        has_signal, verdict = signal_verdict(result)
        scorer = fit_scorer(
            features,
            data.labels,
            kinds,
            data.order,
            params=params,
            seed=options.seed,
            spec_extra={
                **data.spec_extra,
                "metrics": result.pooled[MODEL],
                "split": data.split,
                "excluded_features": excluded,
                "rules": data.rules.to_dict() if data.rules is not None else None,
            },
        )
        scorer.linkage_model = linkage_model
        _log_run_contents(data, options, result, scorer, features, flags, params, verdict)
        model_uri = tracking.log_model(scorer, features, result.fold_metrics)
        run_id = run.info.run_id

    _log_backtest(result, data.split)
    summary = {
        "run_id": run_id,
        "metrics": result.pooled[MODEL],
        "baselines": {name: metrics for name, metrics in result.pooled.items() if name != MODEL},
        "folds": result.fold_metrics.to_dict("records"),
        "split": data.split,
        "leakage": leakage_table(flags).to_dict("records"),
        "excluded_features": excluded,
        "signal": has_signal,
        "verdict": verdict,
        "params": params,
    }
    if not has_signal:
        logger.warning(
            "The model shows no signal above the base rate (%s); it was logged as run %s but not registered.", verdict, run_id
        )
        return {**summary, "model_uri": None, "version": None, "registered": False}
    version = tracking.register_model_version(options.model_name, model_uri, run_id)
    return {**summary, "model_uri": f"models:/{options.model_name}/{version}", "version": version, "registered": True}


def _leakage_settings(options: TrainingOptions, data: PreparedData) -> LeakageSettings:
    settings = LeakageSettings(max_single_feature_auc=options.leakage_auc, keep=tuple(options.keep_features))
    if data.split == "time":
        # Workspace features are built from rows dated before each moment, so
        # their names carry no sign of when they were recorded.
        settings.post_outcome_name_hints = ()
    return settings


def _rows_before_backtest(data: PreparedData) -> np.ndarray:
    """Return the positions, oldest first, known before the first backtest fold's cut-off."""
    first = data.folds[0]
    rank = np.empty(len(data.order), dtype=np.int64)
    rank[data.order] = np.arange(len(data.order))
    return first.train[np.argsort(rank[first.train], kind="stable")]


def _log_run_contents(data, options, result: BacktestResult, scorer, features, flags, params: dict, verdict: str) -> None:
    """Log parameters, metrics, leakage table, fold metrics, predictions and plots to the active run."""
    mlflow.log_params(
        {
            key: tracking.param_value(value)
            for key, value in {
                **data.params,
                "n_examples": len(data.labels),
                "n_features": len(scorer.feature_names),
                "split": data.split,
                "folds": len(data.folds),
                "seed": options.seed,
                "tune_trials": options.tune_trials,
                "leakage_auc": options.leakage_auc,
                "kept_features": ",".join(options.keep_features),
                "excluded_features": ",".join(scorer.spec["excluded_features"]),
                **{f"lgbm_{key}": value for key, value in scorer.spec["params"].items()},
            }.items()
        }
    )
    mlflow.log_metrics({key: float(value) for key, value in artifacts.model_metrics(result).items() if np.isfinite(value)})
    mlflow.log_metric("best_iteration", scorer.spec["best_iteration"])
    mlflow.set_tag("leadlink.verdict", verdict)
    mlflow.log_dict(
        {"features": scorer.spec["features"], "feature_config": data.spec_extra.get("feature_config"), "tuned_params": params},
        "features.json",
    )
    if data.rules is not None:
        mlflow.log_dict(data.rules.to_dict(), "rules.json")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        leakage_table(flags).to_csv(folder / "leakage.csv", index=False)
        result.fold_metrics.to_csv(folder / "backtest_folds.csv", index=False)
        # Positions, folds, labels and scores only: no ids or personal data.
        result.predictions.to_parquet(folder / "backtest_predictions.parquet", index=False)
        (folder / "backtest.json").write_text(json.dumps(_backtest_definition(data, result), indent=2, default=str))
        for name in ("leakage.csv", "backtest_folds.csv", "backtest_predictions.parquet", "backtest.json"):
            mlflow.log_artifact(str(folder / name), artifact_path="backtest" if name != "leakage.csv" else None)
        display = data.display_names or None
        for file in artifacts.write_run_plots(folder / "plots", result, scorer, features, display):
            mlflow.log_artifact(str(file), artifact_path="plots")


def _backtest_definition(data: PreparedData, result: BacktestResult) -> dict:
    """Describe the backtest so runs can tell whether they were judged on the same examples."""
    folds = pd.DataFrame({"fold": np.full(len(data.labels), -1), "label": data.labels})
    for fold in result.folds:
        folds.loc[fold.test, "fold"] = fold.number
    # Same labels in the same order, split into the same test folds at the same cut-offs.
    cutoffs = "|".join(str(fold.cutoff) for fold in result.folds)
    fingerprint = int(pd.util.hash_pandas_object(folds, index=True).sum()) ^ int(pd.util.hash_array(np.array([cutoffs], dtype=object))[0])
    return {
        "split": result.split,
        "folds": [
            {"fold": f.number, "cutoff": f.cutoff, "end": f.end, "n_train": len(f.train), "n_test": len(f.test)} for f in result.folds
        ],
        "n_examples": len(data.labels),
        "fingerprint": f"{int(fingerprint) & 0xFFFFFFFFFFFF:012x}-{len(data.labels)}",
    }


def _check_keep_names(keep: tuple[str, ...], data: PreparedData) -> None:
    known = set(data.features.columns) | set(data.display_names.values())
    unknown = [name for name in keep if name not in known]
    if unknown:
        raise TrainingError(f"--keep-feature names unknown feature(s) {unknown}; features are: {sorted(known)}")


def _log_backtest(result: BacktestResult, split: str) -> None:
    for scorer, metrics in result.pooled.items():
        logger.info(
            "Backtest %s (%s split, %d folds, %s test examples, %.0f%% positive): ROC AUC %.3f, PR AUC %.3f, "
            "log loss %.4f, Brier %.4f, ECE %.3f, top-decile lift %.2f",
            scorer,
            split,
            len(result.folds),
            f"{int(metrics['n']):,}",
            100 * metrics["base_rate"],
            metrics["roc_auc"],
            metrics["pr_auc"],
            metrics["log_loss"],
            metrics["brier"],
            metrics["ece"],
            metrics["lift_top_decile"],
        )


def _lap(started: float, previous: dict | None = None) -> float:
    return round(time.perf_counter() - started - sum((previous or {}).values()), 2)
