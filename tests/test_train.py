"""LightGBM fitting, calibration, backtest folds and metrics on data with a known true model."""

import numpy as np
import pandas as pd
import pytest

from leadlink.errors import TrainingError
from leadlink.serving.model import LeadScorer
from leadlink.training.backtest import (
    MODEL,
    auc_standard_error,
    check_folds,
    random_folds,
    run_backtest,
    signal_verdict,
    time_folds,
)
from leadlink.training.evaluation import classification_metrics, expected_calibration_error, gain_at_top, lift_at_top
from leadlink.training.train import fit_calibration, fit_scorer


def synthetic(n: int, seed: int = 0, signal: float = 1.0):
    """Examples whose true log-odds are signal * (2x - 1 + [colour is red])."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    colour = rng.choice(["red", "blue", "green"], size=n)
    logit = signal * (2 * x - 1 + np.where(colour == "red", 1.0, 0.0))
    probability = 1 / (1 + np.exp(-logit))
    labels = (rng.random(n) < probability).astype(int)
    features = pd.DataFrame({"x": x, "colour": colour, "noise": rng.normal(size=n)})
    moments = pd.Series(pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"))
    return features, labels, probability, moments


KINDS = {"x": "numeric", "colour": "categorical", "noise": "numeric"}


def backtest(features, labels, moments, folds=4, rules_points=None):
    outcome_at = moments + pd.Timedelta(hours=12)
    fold_list = time_folds(moments, outcome_at, folds)
    return run_backtest(features, labels, KINDS, fold_list, "time", np.arange(len(labels)), rules_points)


def test_time_folds_by_hand():
    # Moments on days 0..9, outcomes known 2 days later, 2 folds over the newest 40%:
    # cut-offs at the 0.6 and 0.8 quantiles, days 5.4 and 7.2.
    moments = pd.Series(pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(np.arange(10), unit="D"))
    folds = time_folds(moments, moments + pd.Timedelta(days=2), n_folds=2)
    assert folds[0].cutoff == moments[0] + pd.Timedelta(days=5.4)
    assert folds[0].test.tolist() == [6, 7]
    assert folds[0].train.tolist() == [0, 1, 2, 3]  # outcome day + 2 < 5.4
    assert folds[1].test.tolist() == [8, 9]
    assert folds[1].train.tolist() == [0, 1, 2, 3, 4, 5]


def test_time_folds_maturity_window():
    moments = pd.Series(pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(np.arange(10), unit="D"))
    folds = time_folds(moments, moments + pd.Timedelta(hours=1), n_folds=1, maturity_days=3)
    # Cut-off day 6: rows need a moment before day 3 as well as a known outcome.
    assert folds[0].train.tolist() == [0, 1, 2]


def test_random_folds_partition_rows():
    labels = np.array([0, 1] * 50)
    folds = random_folds(labels, n_folds=5, seed=1)
    tested = np.sort(np.concatenate([fold.test for fold in folds]))
    assert tested.tolist() == list(range(100))
    assert all(len(np.intersect1d(fold.train, fold.test)) == 0 for fold in folds)


def test_check_folds_names_counts():
    features, labels, _, moments = synthetic(400)
    labels = np.zeros(400, dtype=int)
    labels[:100] = 1  # no wins in any test window
    folds = time_folds(moments, moments, 2)
    with pytest.raises(TrainingError, match=r"fold 1 \(cut-off .*\) has 0 won and 80 lost test examples"):
        check_folds(folds, labels, "Add data.")


def test_backtest_approaches_oracle_auc():
    features, labels, probability, moments = synthetic(8000)
    result = backtest(features, labels, moments)
    tested = result.predictions["position"].to_numpy()
    oracle = classification_metrics(labels[tested], probability[tested])["roc_auc"]
    assert result.split == "time"
    assert result.metric("roc_auc") >= 0.97 * oracle


def test_backtest_is_calibrated():
    features, labels, probability, moments = synthetic(12000, seed=1)
    result = backtest(features, labels, moments)
    assert result.metric("ece") < 0.03


def test_backtest_scores_every_test_row_once():
    features, labels, _, moments = synthetic(3000, seed=2)
    result = backtest(features, labels, moments, folds=3)
    positions = result.predictions["position"]
    assert positions.is_unique
    assert len(positions) == sum(len(fold.test) for fold in result.folds)


def test_backtest_metrics_per_fold_and_scorer():
    features, labels, _, moments = synthetic(3000, seed=3)
    result = backtest(features, labels, moments, folds=3, rules_points=features["x"].to_numpy() * 10)
    assert set(result.fold_metrics["scorer"]) == {MODEL, "logistic regression", "rules score"}
    assert len(result.fold_metrics) == 9
    first = result.predictions[result.predictions["fold"] == 1]
    expected = classification_metrics(first["label"].to_numpy(), first[MODEL].to_numpy())["roc_auc"]
    row = result.fold_metrics.query("scorer == @MODEL and fold == 1").iloc[0]
    assert row["roc_auc"] == pytest.approx(expected)


def test_rules_points_keep_their_ranking():
    # A rules score equal to the true log-odds ranks leads as well as the truth does.
    features, labels, probability, moments = synthetic(4000, seed=4)
    points = np.log(probability / (1 - probability))
    result = backtest(features, labels, moments, rules_points=points)
    tested = result.predictions["position"].to_numpy()
    oracle = classification_metrics(labels[tested], probability[tested])["roc_auc"]
    # Metrics clip probabilities to [1e-6, 1 - 1e-6]; the few ties that makes move the AUC by < 1e-4.
    assert result.metric("roc_auc", "rules score") == pytest.approx(oracle, abs=2e-4)


def test_no_signal_verdict_on_random_labels():
    features, _, _, moments = synthetic(3000, seed=5)
    labels = (np.random.default_rng(5).random(3000) < 0.3).astype(int)
    result = backtest(features, labels, moments)
    has_signal, text = signal_verdict(result)
    assert not has_signal
    assert "base rate" in text


def test_signal_verdict_on_real_signal():
    features, labels, _, moments = synthetic(3000, seed=6)
    has_signal, _ = signal_verdict(backtest(features, labels, moments))
    assert has_signal


def test_auc_standard_error_by_hand():
    # Hanley and McNeil: AUC 0.8 with 50 positives and 50 negatives.
    q1, q2 = 0.8 / 1.2, 2 * 0.64 / 1.8
    variance = (0.8 * 0.2 + 49 * (q1 - 0.64) + 49 * (q2 - 0.64)) / 2500
    assert auc_standard_error(0.8, 50, 50) == pytest.approx(variance**0.5)


def test_scorer_round_trip(tmp_path):
    features, labels, _, _ = synthetic(1500, seed=2)
    scorer = fit_scorer(features, labels, KINDS, np.arange(1500))
    folder = scorer.save(tmp_path / "model")
    reloaded = LeadScorer.from_dir(folder)
    np.testing.assert_allclose(reloaded.predict_proba(features.head(50)), scorer.predict_proba(features.head(50)))


def test_calibration_slice_is_newest():
    features, labels, _, _ = synthetic(1000, seed=7)
    scorer = fit_scorer(features, labels, KINDS, np.arange(1000))
    assert scorer.spec["n_calibration"] == 200
    assert scorer.spec["n_fit"] == 800


def test_unseen_category_scores():
    features, labels, _, _ = synthetic(1500, seed=3)
    scorer = fit_scorer(features, labels, KINDS, np.arange(1500))
    odd = pd.DataFrame({"x": [0.0], "colour": ["ultraviolet"], "noise": [None]})
    probability = scorer.predict_proba(odd)
    assert 0.0 <= probability[0] <= 1.0


def test_slice_without_positives_raises():
    features, _, _, _ = synthetic(400)
    labels = np.zeros(400, dtype=int)
    labels[:50] = 1  # all positives in the oldest rows, none in the calibration slice
    with pytest.raises(TrainingError, match="calibration slice has 0 positive"):
        fit_scorer(features, labels, KINDS, np.arange(400))


def test_platt_calibration_recovers_known_map():
    # Raw scores whose true rate is sigmoid(2 * logit(raw)): Platt should find slope 2, intercept 0.
    rng = np.random.default_rng(4)
    raw = rng.uniform(0.05, 0.95, size=800)
    logit = np.log(raw / (1 - raw))
    labels = (rng.random(800) < 1 / (1 + np.exp(-2 * logit))).astype(int)
    calibration = fit_calibration(raw, labels)
    assert calibration.method == "platt"
    assert calibration.slope == pytest.approx(2.0, abs=0.35)
    assert calibration.intercept == pytest.approx(0.0, abs=0.25)


def test_isotonic_recovers_known_rates():
    # Raw scores whose true rate is raw ** 2: the isotonic map should follow it.
    rng = np.random.default_rng(5)
    raw = rng.uniform(size=20000)
    labels = (rng.random(20000) < raw**2).astype(int)
    calibration = fit_calibration(raw, labels)
    assert calibration.method == "isotonic"
    grid = np.array([0.2, 0.5, 0.8])
    np.testing.assert_allclose(calibration.apply(grid), grid**2, atol=0.05)


def test_expected_calibration_error_by_hand():
    # Bin [0.1, 0.2): predictions 0.1, 0.1 against labels 0, 1 -> gap |0.1 - 0.5| = 0.4 on 2 rows.
    # Bin [0.9, 1.0]: predictions 0.9, 0.9 against labels 1, 1 -> gap 0.1 on 2 rows.
    error = expected_calibration_error(np.array([0, 1, 1, 1]), np.array([0.1, 0.1, 0.9, 0.9]))
    assert error == pytest.approx((0.4 * 2 + 0.1 * 2) / 4)


def test_lift_and_gain_by_hand():
    labels = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    scores = np.array([0.9, 0.8, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.2])
    # Top 10% is one lead, a conversion; the base rate is 2 / 10 and half the conversions are found.
    assert lift_at_top(labels, scores) == pytest.approx(1 / 0.2)
    assert gain_at_top(labels, scores) == pytest.approx(0.5)


def test_metrics_of_empty_slice_are_nan():
    metrics = classification_metrics(np.array([], dtype=int), np.array([]))
    assert metrics["n"] == 0
    assert np.isnan(metrics["roc_auc"])
