"""Champion and challenger: compare registered models and move the champion alias.

Every trained model with signal is registered as the ``challenger``.
Scoring and serving use the ``champion``. ``promote`` moves the champion
alias to the challenger (or a chosen version) only when it is at least as
good on the chosen backtest metric, unless forced.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from leadlink.errors import LeadlinkError, ModelNotFoundError
from leadlink.training import tracking
from leadlink.training.evaluation import LOWER_IS_BETTER

logger = logging.getLogger(__name__)

COMPARED_METRICS = ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "lift_top_decile", "gain_top_decile")


class PromotionRejected(LeadlinkError):
    """The challenger is worse than the champion on the chosen metric."""


@dataclass
class RegisteredRun:
    """One registered model version with its run's backtest results."""

    version: str
    aliases: list[str]
    run_id: str
    created: pd.Timestamp
    metrics: dict[str, float]
    backtest: dict

    @property
    def label(self) -> str:
        role = " / ".join(self.aliases)
        return f"{role} v{self.version}" if role else f"v{self.version}"


def registered_runs(model_name: str, recent: int = 5) -> list[RegisteredRun]:
    """Return the champion, the challenger and the ``recent`` newest other versions, newest first."""
    client = MlflowClient()
    try:
        versions = client.search_model_versions(f"name = '{model_name}'")
    except MlflowException as error:
        raise ModelNotFoundError(f"Model '{model_name}' could not be read from the registry: {error}") from error
    if not versions:
        raise ModelNotFoundError(f"No version of model '{model_name}' is registered in {mlflow.get_tracking_uri()}; run `leadlink train` first.")

    # Version search results leave out aliases in some MLflow stores; the
    # registered model lists them all.
    aliases: dict[str, list[str]] = {}
    for alias, number in client.get_registered_model(model_name).aliases.items():
        aliases.setdefault(str(number), []).append(alias)

    versions = sorted(versions, key=lambda v: int(v.version), reverse=True)
    with_alias = [v for v in versions if str(v.version) in aliases]
    others = [v for v in versions if str(v.version) not in aliases][: max(recent, 0)]
    chosen = sorted(with_alias + others, key=lambda v: int(v.version), reverse=True)
    return [_registered_run(client, version, aliases.get(str(version.version), [])) for version in chosen]


def _registered_run(client: MlflowClient, version, aliases: list[str]) -> RegisteredRun:
    run = client.get_run(version.run_id)
    return RegisteredRun(
        version=str(version.version),
        aliases=sorted(aliases, key=lambda a: (a != tracking.CHAMPION, a)),
        run_id=version.run_id,
        created=pd.Timestamp(version.creation_timestamp, unit="ms", tz="UTC"),
        metrics=dict(run.data.metrics),
        backtest=_backtest_definition(client, version.run_id),
    )


def _backtest_definition(client: MlflowClient, run_id: str) -> dict:
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = client.download_artifacts(run_id, "backtest/backtest.json", tmp)
            return json.loads(Path(path).read_text())
    except (MlflowException, OSError, json.JSONDecodeError):
        # Runs logged before backtests existed have no definition file.
        return {}


def comparison_frame(runs: list[RegisteredRun]) -> pd.DataFrame:
    """Return one row per run with its backtest metrics and those of its baselines."""
    # Runs are compared with the challenger's backtest, or the champion's when there is no challenger.
    reference = next((run for run in runs if tracking.CHALLENGER in run.aliases), None)
    reference = reference or next((run for run in runs if tracking.CHAMPION in run.aliases), runs[0])
    rows = []
    for run in runs:
        row = {"model": run.label, "run": run.run_id[:8], "registered": run.created.strftime("%Y-%m-%d %H:%M")}
        row["examples"] = run.backtest.get("n_examples")
        row.update({name: run.metrics.get(f"backtest_{name}", np.nan) for name in COMPARED_METRICS})
        row["rules roc_auc"] = run.metrics.get("rules_backtest_roc_auc", np.nan)
        row["logistic roc_auc"] = run.metrics.get("logistic_backtest_roc_auc", np.nan)
        row["same backtest"] = _same_backtest(run, reference)
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def _same_backtest(run: RegisteredRun, reference: RegisteredRun) -> str:
    if not run.backtest or not reference.backtest:
        return "unknown"
    return "yes" if run.backtest.get("fingerprint") == reference.backtest.get("fingerprint") else "no"


def promote(model_name: str, version: str | None = None, metric: str = "roc_auc", force: bool = False) -> dict:
    """Point the champion alias at ``version`` (default: the challenger) when it is not worse.

    Raises PromotionRejected when the candidate is worse than the current
    champion on ``backtest_<metric>`` and ``force`` is false.
    """
    if metric not in COMPARED_METRICS:
        raise LeadlinkError(f"--metric {metric!r} is not a model metric; choose one of {', '.join(COMPARED_METRICS)}.")
    client = MlflowClient()
    candidate = _version(client, model_name, version=version, alias=None if version else tracking.CHALLENGER)
    champion = _version(client, model_name, alias=tracking.CHAMPION, required=False)

    if champion is not None and str(champion.version) == str(candidate.version):
        return {
            "model": model_name,
            "champion": str(candidate.version),
            "previous": str(champion.version),
            "changed": False,
            "message": f"Version {candidate.version} is already the champion.",
        }

    verdict = _judge(client, candidate, champion, metric)
    rules_value = _rules_metric(client, candidate.run_id, metric)
    if rules_value is not None and _is_worse(verdict["candidate_value"], rules_value, metric) and not force:
        raise PromotionRejected(
            f"Version {candidate.version} has backtest {metric} {verdict['candidate_value']:.4f}, worse than the rules score's "
            f"{rules_value:.4f} on the same folds; a points score would serve better. Pass --force to promote anyway."
        )
    if verdict["worse"] and not force:
        raise PromotionRejected(
            f"Version {candidate.version} has backtest {metric} {verdict['candidate_value']:.4f}, worse than champion version "
            f"{champion.version} with {verdict['champion_value']:.4f}; the champion stays. Pass --force to promote anyway."
        )

    client.set_registered_model_alias(model_name, tracking.CHAMPION, candidate.version)
    client.set_model_version_tag(model_name, candidate.version, "leadlink.promoted_at", pd.Timestamp.now(tz="UTC").isoformat())
    client.set_model_version_tag(model_name, candidate.version, "leadlink.promoted_over", str(champion.version) if champion else "none")
    client.set_model_version_tag(model_name, candidate.version, "leadlink.promotion_forced", str(bool(force and verdict["worse"])).lower())
    challenger = _version(client, model_name, alias=tracking.CHALLENGER, required=False)
    if challenger is not None and str(challenger.version) == str(candidate.version):
        client.delete_registered_model_alias(model_name, tracking.CHALLENGER)
    logger.info("Model %s version %s is now the champion (was %s)", model_name, candidate.version, champion.version if champion else "none")
    return {
        "model": model_name,
        "champion": str(candidate.version),
        "previous": str(champion.version) if champion else None,
        "changed": True,
        "metric": metric,
        **verdict,
    }


def _judge(client: MlflowClient, candidate, champion, metric: str) -> dict:
    candidate_value = _run_metric(client, candidate.run_id, metric)
    if champion is None:
        return {"candidate_value": candidate_value, "champion_value": None, "worse": False, "same_backtest": None}
    champion_value = _run_metric(client, champion.run_id, metric)
    worse = _is_worse(candidate_value, champion_value, metric)
    same = _backtest_definition(client, candidate.run_id).get("fingerprint") == _backtest_definition(client, champion.run_id).get("fingerprint")
    if not same:
        logger.warning(
            "Versions %s and %s were backtested on different examples; their %s figures are not strictly comparable.",
            candidate.version,
            champion.version,
            metric,
        )
    return {"candidate_value": candidate_value, "champion_value": champion_value, "worse": bool(worse), "same_backtest": same}


def _is_worse(value: float, reference: float, metric: str) -> bool:
    return value > reference if metric in LOWER_IS_BETTER else value < reference


def _rules_metric(client: MlflowClient, run_id: str, metric: str) -> float | None:
    value = client.get_run(run_id).data.metrics.get(f"rules_backtest_{metric}")
    return float(value) if value is not None and np.isfinite(value) else None


def _run_metric(client: MlflowClient, run_id: str, metric: str) -> float:
    value = client.get_run(run_id).data.metrics.get(f"backtest_{metric}")
    if value is None or not np.isfinite(value):
        raise LeadlinkError(f"Run {run_id} has no backtest_{metric} metric; it was trained by an older leadlink. Retrain it or pass --force.")
    return float(value)


def _version(client: MlflowClient, model_name: str, version: str | None = None, alias: str | None = None, required: bool = True):
    try:
        if version is not None:
            return client.get_model_version(model_name, version)
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException as error:
        if not required:
            return None
        what = f"version {version}" if version is not None else f"'{alias}' alias"
        raise ModelNotFoundError(f"Model '{model_name}' has no {what}; train a model first or name a version with --version.") from error


def backtest_predictions(run: RegisteredRun) -> pd.DataFrame | None:
    """Download a run's pooled backtest predictions, or None for runs without them."""
    client = MlflowClient()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = client.download_artifacts(run.run_id, "backtest/backtest_predictions.parquet", tmp)
            return pd.read_parquet(path)
    except (MlflowException, OSError):
        return None


def write_comparison(path: Path, model_name: str, runs: list[RegisteredRun], frame: pd.DataFrame) -> Path:
    """Write the HTML comparison report: the metrics table and overlaid backtest plots."""
    from leadlink.training import plots, report

    curves = {}
    for run in runs:
        predictions = backtest_predictions(run)
        if predictions is None:
            continue
        labels = predictions["label"].to_numpy()
        curves[run.label] = (labels, predictions["model"].to_numpy())
        if tracking.CHALLENGER in run.aliases and "rules score" in predictions.columns:
            curves[f"rules score ({run.label} backtest)"] = (labels, predictions["rules score"].to_numpy())

    figures = {
        "ROC curve": plots.roc_figure(curves),
        "Precision-recall": plots.precision_recall_figure(curves),
        "Calibration": plots.calibration_figure(curves),
        "Cumulative gain": plots.lift_figure(curves),
    }
    notes = [
        "Each model's curves come from its own rolling-origin backtest; the column 'same backtest' says "
        "whether a run was judged on the same examples as the challenger."
    ]
    return report.write_comparison_report(path, f"leadlink model comparison: {model_name}", frame, figures, notes)
