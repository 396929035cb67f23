"""LightGBM fitting with a calibration map fitted on a later slice.

``fit_scorer`` takes training rows ordered oldest first. The newest
``CALIBRATION_SHARE`` of them fit the calibration map; the older rows fit
the booster, whose newest part decides when boosting stops. Nothing from
the future of a slice is used to fit it. Metrics come from the backtest
(``leadlink.training.backtest``), not from these slices.
"""

from __future__ import annotations

import logging

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from leadlink.errors import TrainingError
from leadlink.serving.model import MISSING_CATEGORY, OTHER_CATEGORY, Calibration, LeadScorer

logger = logging.getLogger(__name__)

# Shallow trees and a small learning rate: conversion odds are close to a
# sum of fit, engagement and previous-use effects, which shallow trees
# capture with less variance than deep ones. On generated workspaces of 20,000
# and 100,000 contacts, 4 leaves beat 15 by about 0.005 backtest ROC AUC.
DEFAULT_PARAMS = {
    "objective": "binary",
    "learning_rate": 0.03,
    "num_leaves": 4,
    "min_data_in_leaf": 40,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.9,
    "bagging_freq": 1,
    "lambda_l2": 5.0,
    "verbose": -1,
}
# From this many fitting rows on, the small-data settings above need
# thousands of rounds, each slower on more rows. Larger trees and a higher
# learning rate stop early after about 700 rounds on 1,000,000 synthetic rows.
LARGE_DATA_ROWS = 200_000
LARGE_DATA_PARAMS = {"learning_rate": 0.1, "num_leaves": 31, "min_data_in_leaf": 200, "max_bin": 127}
MAX_ROUNDS = 2000
EARLY_STOPPING_ROUNDS = 50
CALIBRATION_SHARE = 0.2
EARLY_STOPPING_SHARE = 0.15
MIN_CLASS_PER_SLICE = 5
MAX_CATEGORY_LEVELS = 50
MIN_ISOTONIC_EXAMPLES = 1000
MIN_CATEGORY_COUNT = 5
# Below this many rows LightGBM runs single-threaded: its OpenMP threads
# spend more time waiting for each other than working on small data, which
# made 1,000-row fits 10 to 50 times slower on a busy 2-core machine.
MULTITHREAD_MIN_ROWS = 50_000


def category_levels(values: pd.Series) -> list[str]:
    """Keep the frequent categories seen in training, plus missing and other."""
    counts = values.dropna().astype(str).value_counts()
    frequent = counts[counts >= MIN_CATEGORY_COUNT].head(MAX_CATEGORY_LEVELS)
    return sorted(frequent.index.tolist()) + [MISSING_CATEGORY, OTHER_CATEGORY]


def fit_scorer(
    features: pd.DataFrame,
    labels: np.ndarray,
    kinds: dict[str, str],
    positions: np.ndarray,
    params: dict | None = None,
    seed: int = 0,
    spec_extra: dict | None = None,
) -> LeadScorer:
    """Fit a booster and its calibration map on the rows at ``positions`` (oldest first)."""
    labels = np.asarray(labels, dtype=int)
    n_calibration = max(int(round(len(positions) * CALIBRATION_SHARE)), 1)
    fit_rows, calibration_rows = positions[:-n_calibration], positions[-n_calibration:]
    _check_slices(labels, {"fitting": fit_rows, "calibration": calibration_rows})

    spec = {"features": _feature_entries(features.iloc[fit_rows], kinds), **(spec_extra or {})}
    scorer = LeadScorer(booster=None, spec=spec)  # type: ignore[arg-type]
    matrix = scorer.encode(features.iloc[positions])
    local = pd.Series(np.arange(len(positions)), index=positions)

    booster = _fit_booster(matrix, labels[positions], local[fit_rows].to_numpy(), params, seed)
    scorer.booster = booster
    raw = booster.predict(matrix.iloc[local[calibration_rows].to_numpy()])
    scorer.calibration = fit_calibration(raw, labels[calibration_rows])
    spec["calibration"] = scorer.calibration.to_dict()
    spec["n_fit"] = len(fit_rows)
    spec["n_calibration"] = len(calibration_rows)
    spec["best_iteration"] = int(booster.best_iteration or booster.current_iteration())
    spec["params"] = {**default_params(len(fit_rows)), **(params or {})}
    return scorer


def default_params(n_rows: int) -> dict:
    """Return the LightGBM parameters used unless the caller or --tune sets others."""
    if n_rows >= LARGE_DATA_ROWS:
        return {**DEFAULT_PARAMS, **LARGE_DATA_PARAMS}
    return dict(DEFAULT_PARAMS)


def _check_slices(labels: np.ndarray, slices: dict[str, np.ndarray]) -> None:
    for name, rows in slices.items():
        wins = int(labels[rows].sum())
        losses = len(rows) - wins
        if min(wins, losses) < MIN_CLASS_PER_SLICE:
            raise TrainingError(
                f"The {name} slice has {wins} positive and {losses} negative examples; it needs at least "
                f"{MIN_CLASS_PER_SLICE} of both. Add more labelled examples or move --as-of later."
            )


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


def _fit_booster(matrix: pd.DataFrame, labels: np.ndarray, fit_rows: np.ndarray, params: dict | None, seed: int) -> lgb.Booster:
    """Fit on ``fit_rows`` (oldest first); their newest part decides when boosting stops."""
    n_stop = max(int(round(len(fit_rows) * EARLY_STOPPING_SHARE)), 1)
    train_rows, stop_rows = fit_rows[:-n_stop], fit_rows[-n_stop:]
    threads = 0 if len(train_rows) >= MULTITHREAD_MIN_ROWS else 1
    base = default_params(len(train_rows))
    merged = {**base, **(params or {}), "seed": seed, "deterministic": True, "num_threads": threads}
    train_set = lgb.Dataset(matrix.iloc[train_rows], label=labels[train_rows], free_raw_data=False)
    stop_set = lgb.Dataset(matrix.iloc[stop_rows], label=labels[stop_rows], reference=train_set)
    return lgb.train(
        merged,
        train_set,
        num_boost_round=MAX_ROUNDS,
        valid_sets=[stop_set],
        callbacks=[lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)],
    )
