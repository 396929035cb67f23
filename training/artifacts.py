"""Plots and tables that explain one training run, written as files for MLflow."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from leadlink.serving.model import LeadScorer
from leadlink.training import plots
from leadlink.training.backtest import MODEL, BacktestResult

logger = logging.getLogger(__name__)

# Rows explained for the SHAP summary; enough for a stable picture, cheap to compute.
SHAP_SAMPLE_ROWS = 2000


def backtest_curves(result: BacktestResult) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Return (labels, probabilities) of every scorer on the pooled backtest test rows."""
    labels = result.predictions["label"].to_numpy()
    return {name: (labels, result.predictions[name].to_numpy()) for name in result.pooled}


def feature_importance(scorer: LeadScorer, display_names: dict[str, str] | None = None) -> pd.Series:
    """Return the total split gain per feature, largest first."""
    gains = scorer.booster.feature_importance(importance_type="gain")
    names = [(display_names or {}).get(name, name) for name in scorer.feature_names]
    return pd.Series(gains, index=names, dtype="float64").sort_values(ascending=False)


def shap_sample(scorer: LeadScorer, features: pd.DataFrame, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    """Return exact TreeSHAP contributions (without the bias column) for a sample of rows."""
    rows = features
    if len(features) > SHAP_SAMPLE_ROWS:
        rows = features.sample(SHAP_SAMPLE_ROWS, random_state=seed)
    contributions = scorer.contributions(scorer.encode(rows))[:, :-1]
    return contributions, rows[scorer.feature_names]


def write_run_plots(
    out_dir: Path,
    result: BacktestResult,
    scorer: LeadScorer,
    features: pd.DataFrame,
    display_names: dict[str, str] | None = None,
) -> list[Path]:
    """Write the run's evaluation plots as PNG files and return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    curves = backtest_curves(result)
    contributions, values = shap_sample(scorer, features)
    values = values.rename(columns=display_names or {})
    figures = {
        "roc.png": plots.roc_figure(curves, title="ROC curve, backtest"),
        "precision_recall.png": plots.precision_recall_figure(curves, title="Precision-recall, backtest"),
        "calibration.png": plots.calibration_figure(curves, title="Calibration, backtest"),
        "lift.png": plots.lift_figure(curves, title="Cumulative gain, backtest"),
        "feature_importance.png": plots.importance_figure(feature_importance(scorer, display_names), title="Feature importance (gain)"),
        "shap_summary.png": plots.shap_summary_figure(contributions, values),
        "auc_by_fold.png": plots.metrics_by_fold_figure(result.fold_metrics.rename(columns={"scorer": "model"}), metric="roc_auc"),
    }
    written = [plots.save_png(figure, out_dir / name) for name, figure in figures.items()]
    logger.info("Wrote %d plots to %s", len(written), out_dir)
    return written


def model_metrics(result: BacktestResult) -> dict[str, float]:
    """Flatten pooled backtest metrics into MLflow metric names."""
    prefixes = {MODEL: "backtest", "logistic regression": "logistic_backtest", "rules score": "rules_backtest"}
    flat = {}
    for scorer, metrics in result.pooled.items():
        for name, value in metrics.items():
            flat[f"{prefixes[scorer]}_{name}"] = value
    return flat
