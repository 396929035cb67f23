"""Rolling-origin backtest: train on what was known at each cut-off, test on what came next.

A fold has a cut-off time. Its training rows are the examples whose outcome
was known before the cut-off. Its test rows are the examples whose moment
falls between this cut-off and the next one. Each fold's model, rules-score
map and baseline are fitted on that fold's training rows only, so every test
prediction is one that could have been made at the time.

Lead tables carry no dates, so their folds are stratified random folds, and
the result records ``split="random"``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from leadlink.errors import TrainingError
from leadlink.progress import progress_bar
from leadlink.training import baselines
from leadlink.training.evaluation import classification_metrics
from leadlink.training.train import fit_scorer

logger = logging.getLogger(__name__)

DEFAULT_FOLDS = 4
# The folds' test windows together cover the newest share of example moments.
DEFAULT_TEST_SHARE = 0.4
MIN_TRAIN_EXAMPLES = 100
MIN_CLASS_PER_TEST_FOLD = 10
MIN_CLASS_PER_TRAIN_FOLD = 20

MODEL = "model"
RULES = "rules score"
LOGISTIC = "logistic regression"


@dataclass
class Fold:
    number: int
    train: np.ndarray
    test: np.ndarray
    cutoff: pd.Timestamp | None = None
    end: pd.Timestamp | None = None

    def describe(self) -> str:
        if self.cutoff is None:
            return f"fold {self.number}"
        return f"fold {self.number} (cut-off {self.cutoff.date()})"


@dataclass
class BacktestResult:
    split: str  # "time" or "random"
    folds: list[Fold]
    predictions: pd.DataFrame  # one row per test example: position, fold, label, one column per scorer
    fold_metrics: pd.DataFrame  # one row per (scorer, fold)
    pooled: dict[str, dict[str, float]] = field(default_factory=dict)  # scorer -> metrics over all test rows

    def metric(self, name: str, scorer: str = MODEL) -> float:
        return float(self.pooled[scorer][name])


def time_folds(
    moments: pd.Series,
    outcome_at: pd.Series,
    n_folds: int = DEFAULT_FOLDS,
    test_share: float = DEFAULT_TEST_SHARE,
    maturity_days: float = 0.0,
) -> list[Fold]:
    """Place ``n_folds`` cut-offs over the newest ``test_share`` of moments.

    Cut-offs sit at moment quantiles, so each test window contains about the
    same number of examples even when the deal flow grows over time. A
    fold trains on examples older than its cut-off minus ``maturity_days``
    whose outcome was known by the cut-off: the examples just before a
    cut-off that had already closed are mostly quick losses, and training
    on them alone would bias the fold's calibration.
    """
    if n_folds < 1:
        raise TrainingError(f"--folds must be at least 1; got {n_folds}.")
    moment_values = pd.to_datetime(moments, utc=True).reset_index(drop=True)
    outcome_values = pd.to_datetime(outcome_at, utc=True).reset_index(drop=True)
    if moment_values.nunique() < 2 * n_folds:
        raise TrainingError(
            f"The examples have {moment_values.nunique():,} distinct moment(s); a backtest by time with {n_folds} fold(s) "
            f"needs examples spread over at least {2 * n_folds} moments. Add data from more days."
        )
    quantiles = [1.0 - test_share + test_share * k / n_folds for k in range(n_folds)]
    cutoffs = [moment_values.quantile(q) for q in quantiles] + [None]

    folds = []
    for number, (cutoff, end) in enumerate(zip(cutoffs[:-1], cutoffs[1:]), start=1):
        in_window = moment_values >= cutoff
        if end is not None:
            in_window &= moment_values < end
        known_before = (outcome_values < cutoff) & (moment_values < cutoff - pd.Timedelta(days=float(maturity_days)))
        folds.append(
            Fold(number, np.flatnonzero(known_before.to_numpy()), np.flatnonzero(in_window.to_numpy()), cutoff, end)
        )
    return folds


def random_folds(labels: np.ndarray, n_folds: int = DEFAULT_FOLDS, seed: int = 0) -> list[Fold]:
    """Stratified random folds, for tables whose rows carry no time."""
    if n_folds < 2:
        raise TrainingError(f"A table without dates needs --folds of at least 2 for cross-validation; got {n_folds}.")
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    positions = np.arange(len(labels))
    return [
        Fold(number, train, test)
        for number, (train, test) in enumerate(splitter.split(positions, labels), start=1)
    ]


def check_folds(folds: list[Fold], labels: np.ndarray, remedy: str) -> None:
    """Raise a TrainingError with the counts when a fold is too small to learn or judge from."""
    wins = int(np.sum(labels))
    if wins in (0, len(labels)):
        outcome = "won" if wins else "lost"
        raise TrainingError(
            f"All {len(labels):,} examples are {outcome}; a conversion model needs both won and lost examples. {remedy}"
        )
    for fold in folds:
        train_wins = int(labels[fold.train].sum())
        train_losses = len(fold.train) - train_wins
        test_wins = int(labels[fold.test].sum())
        test_losses = len(fold.test) - test_wins
        if len(fold.train) < MIN_TRAIN_EXAMPLES or min(train_wins, train_losses) < MIN_CLASS_PER_TRAIN_FOLD:
            raise TrainingError(
                f"The backtest's {fold.describe()} has {len(fold.train):,} training examples "
                f"({train_wins:,} won, {train_losses:,} lost); it needs at least {MIN_TRAIN_EXAMPLES} with "
                f"{MIN_CLASS_PER_TRAIN_FOLD} of each outcome. {remedy}"
            )
        if min(test_wins, test_losses) < MIN_CLASS_PER_TEST_FOLD:
            raise TrainingError(
                f"The backtest's {fold.describe()} has {test_wins:,} won and {test_losses:,} lost test examples; "
                f"each fold needs at least {MIN_CLASS_PER_TEST_FOLD} of each outcome. {remedy}"
            )


def run_backtest(
    features: pd.DataFrame,
    labels: np.ndarray,
    kinds: dict[str, str],
    folds: list[Fold],
    split: str,
    order: np.ndarray,
    rules_points: np.ndarray | None = None,
    params: dict | None = None,
    seed: int = 0,
) -> BacktestResult:
    """Fit and test the model, the rules score and a logistic regression on every fold.

    ``order`` ranks all examples oldest first; each fold's training rows are
    taken in that order so its calibration slice is the newest part.
    """
    labels = np.asarray(labels, dtype=int)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    frames = []

    for fold in progress_bar(folds, description="Backtest folds", unit="fold"):
        train = fold.train[np.argsort(rank[fold.train], kind="stable")]
        scorer = fit_scorer(features, labels, kinds, train, params=params, seed=seed)
        columns = {
            "position": fold.test,
            "fold": fold.number,
            "label": labels[fold.test],
            "train_rate": labels[train].mean(),
            MODEL: scorer.predict_proba(features.iloc[fold.test]),
            LOGISTIC: baselines.fit_logistic(features.iloc[train], labels[train], kinds).predict(features.iloc[fold.test]),
        }
        if rules_points is not None:
            calibration_rows = train[-scorer.spec["n_calibration"]:]
            points_map = baselines.fit_points_calibration(rules_points[calibration_rows], labels[calibration_rows])
            columns[RULES] = points_map.apply(rules_points[fold.test])
        frames.append(pd.DataFrame(columns))
        logger.info("Backtest %s: %s training and %s test examples", fold.describe(), f"{len(train):,}", f"{len(fold.test):,}")

    predictions = pd.concat(frames, ignore_index=True)
    scorers = [MODEL, LOGISTIC] + ([RULES] if rules_points is not None else [])
    return BacktestResult(split, folds, predictions, _fold_metrics(predictions, folds, scorers), _pooled(predictions, scorers))


def _fold_metrics(predictions: pd.DataFrame, folds: list[Fold], scorers: list[str]) -> pd.DataFrame:
    rows = []
    for fold in folds:
        part = predictions[predictions["fold"] == fold.number]
        for scorer in scorers:
            metrics = classification_metrics(part["label"].to_numpy(), part[scorer].to_numpy())
            rows.append({"scorer": scorer, "fold": fold.number, "cutoff": fold.cutoff, "n_train": len(fold.train), **metrics})
    return pd.DataFrame(rows)


def _pooled(predictions: pd.DataFrame, scorers: list[str]) -> dict[str, dict[str, float]]:
    labels = predictions["label"].to_numpy()
    return {scorer: classification_metrics(labels, predictions[scorer].to_numpy()) for scorer in scorers}


def auc_standard_error(auc: float, n_positive: int, n_negative: int) -> float:
    """Return the Hanley-McNeil (1982) standard error of a ROC AUC."""
    q1 = auc / (2 - auc)
    q2 = 2 * auc * auc / (1 + auc)
    variance = (auc * (1 - auc) + (n_positive - 1) * (q1 - auc * auc) + (n_negative - 1) * (q2 - auc * auc)) / (
        n_positive * n_negative
    )
    return float(np.sqrt(max(variance, 0.0)))


def signal_verdict(result: BacktestResult) -> tuple[bool, str]:
    """Decide whether the model beats the base rate on the backtest.

    The model has signal when the lower end of its ROC AUC's 95% interval
    lies above 0.5 and its log loss beats always predicting each fold's
    training base rate. Returns the verdict and a sentence with the figures.
    """
    pooled = result.pooled[MODEL]
    n_positive = int(pooled["n_positive"])
    n_negative = int(pooled["n"]) - n_positive
    auc = pooled["roc_auc"]
    lower = auc - 1.96 * auc_standard_error(auc, n_positive, n_negative)
    base_loss = _base_rate_log_loss(result)
    has_signal = bool(np.isfinite(lower) and lower > 0.5 and pooled["log_loss"] < base_loss)
    text = (
        f"backtest ROC AUC {auc:.3f} (95% interval from {lower:.3f}), log loss {pooled['log_loss']:.4f} "
        f"against {base_loss:.4f} for the base rate"
    )
    return has_signal, text


def _base_rate_log_loss(result: BacktestResult) -> float:
    """Log loss of predicting, in each fold, the win rate of that fold's training rows."""
    labels = result.predictions["label"].to_numpy()
    rate = np.clip(result.predictions["train_rate"].to_numpy(), 1e-6, 1 - 1e-6)
    return float(np.mean(-(labels * np.log(rate) + (1 - labels) * np.log(1 - rate))))
