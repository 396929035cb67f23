"""LightGBM training, calibration and metrics on data with a known true model."""

import numpy as np
import pandas as pd
import pytest

from leadlink.errors import TrainingError
from leadlink.serving.model import LeadScorer
from leadlink.training.evaluation import classification_metrics, expected_calibration_error, lift_at_top
from leadlink.training.train import fit_calibration, fit_lead_model, split_slices


def synthetic(n: int, seed: int = 0):
    """Examples whose true log-odds are 2*x - 1 plus a category effect."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    colour = rng.choice(["red", "blue", "green"], size=n)
    logit = 2 * x - 1 + np.where(colour == "red", 1.0, 0.0)
    probability = 1 / (1 + np.exp(-logit))
    labels = (rng.random(n) < probability).astype(int)
    features = pd.DataFrame({"x": x, "colour": colour, "noise": rng.normal(size=n)})
    times = pd.Series(pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"))
    return features, labels, probability, times


KINDS = {"x": "numeric", "colour": "categorical", "noise": "numeric"}


def test_split_slices_in_time_order():
    train, calibration, holdout = split_slices(20, np.arange(20))
    assert (len(train), len(calibration), len(holdout)) == (14, 3, 3)
    assert train.max() < calibration.min() < holdout.min()


def test_model_approaches_oracle_auc():
    features, labels, probability, times = synthetic(6000)
    result = fit_lead_model(features, labels, KINDS, times=times)
    holdout = result.holdout.index.to_numpy()
    oracle = classification_metrics(labels[holdout], probability[holdout])["roc_auc"]
    assert result.split == "time"
    assert result.metrics["roc_auc"] >= 0.95 * oracle


def test_model_is_calibrated_on_holdout():
    features, labels, _, times = synthetic(6000, seed=1)
    result = fit_lead_model(features, labels, KINDS, times=times)
    assert result.metrics["ece"] < 0.06


def test_scorer_round_trip(tmp_path):
    features, labels, _, times = synthetic(1500, seed=2)
    result = fit_lead_model(features, labels, KINDS, times=times)
    folder = result.scorer.save(tmp_path / "model")
    reloaded = LeadScorer.from_dir(folder)
    np.testing.assert_allclose(reloaded.predict_proba(features.head(50)), result.scorer.predict_proba(features.head(50)))


def test_unseen_category_scores():
    features, labels, _, times = synthetic(1500, seed=3)
    scorer = fit_lead_model(features, labels, KINDS, times=times).scorer
    odd = pd.DataFrame({"x": [0.0], "colour": ["ultraviolet"], "noise": [None]})
    probability = scorer.predict_proba(odd)
    assert 0.0 <= probability[0] <= 1.0


def test_too_few_examples_raise():
    features, labels, _, times = synthetic(60)
    with pytest.raises(TrainingError, match="Only 60 labelled examples"):
        fit_lead_model(features, labels, KINDS, times=times)


def test_slice_without_positives_raises():
    features, _, _, times = synthetic(400)
    labels = np.zeros(400, dtype=int)
    labels[:50] = 1  # all positives in the oldest rows, none later
    with pytest.raises(TrainingError, match="calibration slice has 0 positive"):
        fit_lead_model(features, labels, KINDS, times=times)


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


def test_isotonic_used_on_large_slices():
    rng = np.random.default_rng(5)
    raw = rng.uniform(size=3000)
    labels = (rng.random(3000) < raw).astype(int)
    calibration = fit_calibration(raw, labels)
    assert calibration.method == "isotonic"
    assert np.all(np.diff(calibration.apply(np.linspace(0, 1, 11))) >= 0)


def test_expected_calibration_error_by_hand():
    # Bin [0.1, 0.2): predictions 0.1, 0.1 against labels 0, 1 -> gap |0.1 - 0.5| = 0.4 on 2 rows.
    # Bin [0.9, 1.0]: predictions 0.9, 0.9 against labels 1, 1 -> gap 0.1 on 2 rows.
    error = expected_calibration_error(np.array([0, 1, 1, 1]), np.array([0.1, 0.1, 0.9, 0.9]))
    assert error == pytest.approx((0.4 * 2 + 0.1 * 2) / 4)


def test_lift_by_hand():
    labels = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    scores = np.array([0.9, 0.8, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.2])
    # Top 10% is one lead, a conversion; the base rate is 2 / 10.
    assert lift_at_top(labels, scores) == pytest.approx(1 / 0.2)
