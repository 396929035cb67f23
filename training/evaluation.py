"""Metrics for conversion probabilities: ranking, accuracy and calibration."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score


METRIC_NAMES = ("base_rate", "roc_auc", "pr_auc", "log_loss", "brier", "ece", "lift_top_decile", "gain_top_decile")
# Metrics where a lower value is better; for the others higher is better.
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "ece"})


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray, n_bins: int = 10) -> float:
    """Weighted mean gap between predicted and observed rates over equal-width bins."""
    labels = np.asarray(labels, dtype=float)
    probabilities = np.asarray(probabilities, dtype=float)
    bins = np.minimum((probabilities * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for index in range(n_bins):
        in_bin = bins == index
        if in_bin.any():
            gap = abs(probabilities[in_bin].mean() - labels[in_bin].mean())
            total += gap * in_bin.sum()
    return total / max(len(labels), 1)


def lift_at_top(labels: np.ndarray, probabilities: np.ndarray, share: float = 0.1) -> float:
    """Conversion rate of the top ``share`` of leads divided by the overall rate."""
    labels = np.asarray(labels, dtype=float)
    n_top = max(int(round(len(labels) * share)), 1)
    order = np.argsort(-np.asarray(probabilities), kind="stable")
    base_rate = labels.mean()
    if base_rate == 0:
        return float("nan")
    return float(labels[order[:n_top]].mean() / base_rate)


def gain_at_top(labels: np.ndarray, probabilities: np.ndarray, share: float = 0.1) -> float:
    """Share of all conversions found in the top ``share`` of leads."""
    labels = np.asarray(labels, dtype=float)
    total = labels.sum()
    if total == 0:
        return float("nan")
    n_top = max(int(round(len(labels) * share)), 1)
    order = np.argsort(-np.asarray(probabilities), kind="stable")
    return float(labels[order[:n_top]].sum() / total)


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """Return the standard metrics of a set of predictions, with their counts.

    ROC and PR AUC need both classes; with one class they are NaN.
    """
    labels = np.asarray(labels, dtype=int)
    if len(labels) == 0:
        return {"n": 0.0, "n_positive": 0.0, **dict.fromkeys(METRIC_NAMES, float("nan"))}
    probabilities = np.clip(np.asarray(probabilities, dtype=float), 1e-6, 1 - 1e-6)
    both_classes = len(np.unique(labels)) == 2
    return {
        "n": float(len(labels)),
        "n_positive": float(labels.sum()),
        "base_rate": float(labels.mean()) if len(labels) else float("nan"),
        "roc_auc": float(roc_auc_score(labels, probabilities)) if both_classes else float("nan"),
        "pr_auc": float(average_precision_score(labels, probabilities)) if both_classes else float("nan"),
        "log_loss": float(log_loss(labels, probabilities, labels=[0, 1])),
        "brier": float(brier_score_loss(labels, probabilities)),
        "ece": float(expected_calibration_error(labels, probabilities)),
        "lift_top_decile": lift_at_top(labels, probabilities),
        "gain_top_decile": gain_at_top(labels, probabilities),
    }
