"""LightGBM training with a split by time and a calibrated output.

Examples are ordered by their moment and cut into three slices: the oldest
70% train the booster (its last part stops boosting early), the next 15% fit
a calibration map, and the newest 15% is the holdout the metrics
come from. Nothing from the future of a slice is used to fit it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from leadlink.errors import TrainingError
from leadlink.serving.model import MISSING_CATEGORY, OTHER_CATEGORY, Calibration, LeadScorer
from leadlink.training.evaluation import classification_metrics

logger = logging.getLogger(__name__)

DEFAULT_PARAMS = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.9,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "verbose": -1,
}
MAX_ROUNDS = 1000
EARLY_STOPPING_ROUNDS = 50
SLICE_FRACTIONS = (0.70, 0.15, 0.15)
MIN_EXAMPLES = 100
MIN_CLASS_PER_SLICE = 5
MAX_CATEGORY_LEVELS = 50
MIN_ISOTONIC_EXAMPLES = 1000
MIN_CATEGORY_COUNT = 5


@dataclass
class TrainingResult:
    scorer: LeadScorer
    metrics: dict[str, float]
    holdout: pd.DataFrame
    split: str
    best_iteration: int


def split_slices(n_rows: int, order: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut row positions, taken in ``order``, into train, calibration and holdout."""
    train_end = int(round(n_rows * SLICE_FRACTIONS[0]))
    calibration_end = int(round(n_rows * (SLICE_FRACTIONS[0] + SLICE_FRACTIONS[1])))
    return order[:train_end], order[train_end:calibration_end], order[calibration_end:]


def category_levels(values: pd.Series) -> list[str]:
    """Keep the frequent categories seen in training, plus missing and other."""
    counts = values.dropna().astype(str).value_counts()
    frequent = counts[counts >= MIN_CATEGORY_COUNT].head(MAX_CATEGORY_LEVELS)
    return sorted(frequent.index.tolist()) + [MISSING_CATEGORY, OTHER_CATEGORY]


def _check_enough_data(labels: np.ndarray, slices: dict[str, np.ndarray], remedy: str) -> None:
    if len(labels) < MIN_EXAMPLES:
        raise TrainingError(
            f"Only {len(labels):,} labelled examples; at least {MIN_EXAMPLES} are needed for a "
            f"train, calibration and holdout slice. {remedy}"
        )
    for name, positions in slices.items():
        wins = int(labels[positions].sum())
        losses = len(positions) - wins
        if min(wins, losses) < MIN_CLASS_PER_SLICE:
            raise TrainingError(
                f"The {name} slice has {wins} positive and {losses} negative examples; each slice needs "
                f"at least {MIN_CLASS_PER_SLICE} of both. {remedy}"
            )


def fit_lead_model(
    features: pd.DataFrame,
    labels: np.ndarray,
    feature_kinds: dict[str, str],
    times: pd.Series | None = None,
    params: dict | None = None,
    seed: int = 0,
    spec_extra: dict | None = None,
) -> TrainingResult:
    """Train, calibrate and evaluate a LightGBM model on ``features``.

    ``times`` orders examples for the split by time; without it (a lead table
    with no date) the split is random with ``seed``, and ``TrainingResult.split`` records it.
    """
    labels = np.asarray(labels, dtype=int)
    if times is not None:
        order = np.argsort(times.to_numpy(), kind="stable")
        split = "time"
    else:
        order = np.random.default_rng(seed).permutation(len(labels))
        split = "random"
    train, calibration, holdout = split_slices(len(labels), order)
    remedy = "Add more closed deals or move --as-of later." if times is not None else "Add more labelled rows with both outcomes."
    _check_enough_data(labels, {"train": train, "calibration": calibration, "holdout": holdout}, remedy)

    spec = {
        "features": _feature_entries(features.iloc[train], feature_kinds),
        **(spec_extra or {}),
    }
    scorer = LeadScorer(booster=None, spec=spec)  # type: ignore[arg-type]
    matrix = scorer.encode(features)

    booster = _fit_booster(matrix, labels, train, params, seed)
    scorer.booster = booster

    scorer.calibration = fit_calibration(booster.predict(matrix.iloc[calibration]), labels[calibration])
    spec["calibration"] = scorer.calibration.to_dict()

    probability = scorer.calibration.apply(booster.predict(matrix.iloc[holdout]))
    metrics = classification_metrics(labels[holdout], probability)
    metrics.update({"n_train": float(len(train)), "n_calibration": float(len(calibration)), "best_iteration": float(booster.best_iteration or booster.current_iteration())})
    spec["metrics"] = metrics
    spec["split"] = split

    holdout_frame = pd.DataFrame({"label": labels[holdout], "probability": probability}, index=features.index[holdout])
    return TrainingResult(scorer, metrics, holdout_frame, split, int(metrics["best_iteration"]))


def fit_calibration(raw: np.ndarray, labels: np.ndarray) -> Calibration:
    """Fit the map from raw booster output to observed rates on a later slice.

    Isotonic regression follows any monotone shape but needs many examples.
    On a smaller slice its steps would give many leads the same score, so a
    two-parameter Platt curve is fitted instead.
    """
    if len(labels) >= MIN_ISOTONIC_EXAMPLES:
        isotonic = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, labels)
        return Calibration("isotonic", x=[float(v) for v in isotonic.X_thresholds_], y=[float(v) for v in isotonic.y_thresholds_])

    clipped = np.clip(raw, 1e-9, 1 - 1e-9)
    logit = np.log(clipped / (1 - clipped)).reshape(-1, 1)
    platt = LogisticRegression(C=1e6).fit(logit, labels)
    return Calibration("platt", slope=float(platt.coef_[0][0]), intercept=float(platt.intercept_[0]))


def _feature_entries(train_features: pd.DataFrame, feature_kinds: dict[str, str]) -> list[dict]:
    entries = []
    for name in train_features.columns:
        kind = feature_kinds[name]
        entry = {"name": name, "kind": kind}
        if kind == "categorical":
            entry["levels"] = category_levels(train_features[name])
        entries.append(entry)
    return entries


def _fit_booster(matrix: pd.DataFrame, labels: np.ndarray, train: np.ndarray, params: dict | None, seed: int) -> lgb.Booster:
    """Fit on the train slice; its newest 15% decides when boosting stops."""
    n_fit = int(len(train) * 0.85)
    fit_rows, stop_rows = train[:n_fit], train[n_fit:]
    merged = {**DEFAULT_PARAMS, **(params or {}), "seed": seed, "deterministic": True, "num_threads": 0}
    fit_set = lgb.Dataset(matrix.iloc[fit_rows], label=labels[fit_rows], free_raw_data=False)
    stop_set = lgb.Dataset(matrix.iloc[stop_rows], label=labels[stop_rows], reference=fit_set)
    return lgb.train(
        merged,
        fit_set,
        num_boost_round=MAX_ROUNDS,
        valid_sets=[stop_set],
        callbacks=[lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)],
    )
