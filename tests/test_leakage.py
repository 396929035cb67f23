"""Leakage guard: single-feature AUC, the flag rules, and the X Education table."""

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from leadlink.training import table as lead_table
from leadlink.training.leakage import (
    LeakageFlag,
    LeakageSettings,
    excluded_features,
    find_leaks,
    leakage_table,
    single_feature_auc,
)


def random_labels(n: int, rate: float, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random(n) < rate).astype(int)


def modest_status(labels: np.ndarray, seed: int) -> pd.Series:
    """Return a two-level feature whose AUC is about 0.75.

    Rows go to "Working" with probability 0.75 when positive and 0.25 when
    negative. With half the rows positive, a positive outranks a negative
    with probability 0.75 * 0.75 plus half of the ties (0.75 * 0.25 +
    0.25 * 0.75) / 2, which is 0.5625 + 0.1875 = 0.75.
    """
    generator = np.random.default_rng(seed)
    working_share = np.where(labels == 1, 0.75, 0.25)
    working = generator.random(len(labels)) < working_share
    return pd.Series(np.where(working, "Working", "New"), dtype="object")


def hand_counted_auc(values: list[float], labels: list[int]) -> float:
    """Count positive-negative pairs: a win counts 1 and a tie counts 1/2."""
    positives = [value for value, label in zip(values, labels) if label == 1]
    negatives = [value for value, label in zip(values, labels) if label == 0]
    score = 0.0
    for positive in positives:
        for negative in negatives:
            if positive > negative:
                score += 1.0
            elif positive == negative:
                score += 0.5
    return score / (len(positives) * len(negatives))


def test_numeric_leak_flagged():
    labels = random_labels(2000, 0.3, seed=1)
    noise = np.random.default_rng(2).normal(scale=0.01, size=len(labels))
    features = pd.DataFrame({"deal_amount": labels + noise})

    flags = find_leaks(features, labels, {"deal_amount": "numeric"})

    # Noise of 0.01 never bridges the gap of 1 between the classes, so every
    # positive outranks every negative.
    assert [flag.feature for flag in flags] == ["deal_amount"]
    assert flags[0].single_feature_auc == pytest.approx(1.0)
    assert "AUC 1.00" in flags[0].reasons[0]


def test_numeric_noise_not_flagged():
    n = 20000
    labels = random_labels(n, 0.3, seed=3)
    features = pd.DataFrame({"visits": np.random.default_rng(4).normal(size=n)})

    flags = find_leaks(features, labels, {"visits": "numeric"})
    auc = single_feature_auc(features["visits"], labels, "numeric")

    # With no signal, the Mann-Whitney U statistic has variance
    # P N (P + N + 1) / 12, so the AUC has standard error
    # sqrt((P + N + 1) / (12 P N)), about 0.0045 here. Five standard errors
    # leave room for taking the better of the two directions.
    n_positive = labels.sum()
    n_negative = n - n_positive
    standard_error = math.sqrt((n_positive + n_negative + 1) / (12 * n_positive * n_negative))
    assert flags == []
    assert auc < 0.5 + 5 * standard_error


def test_auc_matches_hand_count():
    values = [1.0, 2.0, 2.0, 3.0, 4.0, 0.5, 3.0]
    labels = [0, 0, 1, 1, 0, 0, 1]

    auc = single_feature_auc(pd.Series(values), np.array(labels), "numeric")

    # Positives 2, 3, 3 against negatives 0.5, 1, 2, 4: 2 wins, 1 tie, 1 loss
    # for the 2, then 3 wins and 1 loss for each 3, so (8 + 0.5) / 12.
    assert auc == pytest.approx(8.5 / 12)
    assert auc == pytest.approx(hand_counted_auc(values, labels))


def test_auc_direction_free():
    values = [4.0, 3.0, 2.0, 1.0]
    labels = np.array([0, 0, 1, 1])

    assert single_feature_auc(pd.Series(values), labels, "numeric") == pytest.approx(1.0)


def test_auc_missing_placed_best():
    values = [1.0, np.nan, 3.0, np.nan, 2.0, 5.0]
    labels = [0, 1, 1, 1, 0, 0]

    # Replace the missing values by a value below or above all others, count
    # pairs by hand, and keep the best direction.
    candidates = []
    for stand_in in (-1e9, 1e9):
        filled = [stand_in if math.isnan(value) else value for value in values]
        auc = hand_counted_auc(filled, labels)
        candidates.append(max(auc, 1 - auc))

    assert single_feature_auc(pd.Series(values), np.array(labels), "numeric") == pytest.approx(max(candidates))


def test_auc_agrees_with_sklearn():
    n = 5000
    labels = random_labels(n, 0.4, seed=5)
    values = np.random.default_rng(6).normal(size=n) + 0.5 * labels
    values = np.round(values, 1)  # rounding creates ties

    expected = roc_auc_score(labels, values)

    assert single_feature_auc(pd.Series(values), labels, "numeric") == pytest.approx(expected)


def test_auc_constant_column():
    labels = random_labels(500, 0.5, seed=7)

    assert single_feature_auc(pd.Series(np.full(500, 3.0)), labels, "numeric") == 0.5


def test_pure_level_flagged():
    n = 3000
    generator = np.random.default_rng(8)
    labels = random_labels(n, 0.4, seed=9)
    source = pd.Series(generator.choice(["Web", "Referral", "Event"], size=n), dtype="object")

    # 60 rows (2% of all) come from one partner and all of them convert.
    partner_rows = np.arange(60)
    source.iloc[partner_rows] = "Partner Website"
    labels[partner_rows] = 1

    flags = find_leaks(pd.DataFrame({"source": source}), labels, {"source": "categorical"})

    assert len(flags) == 1
    assert flags[0].single_feature_auc < 0.9
    assert any('level "Partner Website" has 60 rows' in reason for reason in flags[0].reasons)
    assert any("positive rate of 100.0%" in reason for reason in flags[0].reasons)


def test_small_pure_level_not_flagged():
    n = 3000
    generator = np.random.default_rng(10)
    labels = random_labels(n, 0.4, seed=11)
    source = pd.Series(generator.choice(["Web", "Referral", "Event"], size=n), dtype="object")

    # 29 rows are one short of pure_level_min_rows.
    source.iloc[:29] = "Partner Website"
    labels[:29] = 1

    assert find_leaks(pd.DataFrame({"source": source}), labels, {"source": "categorical"}) == []


def test_pure_level_needs_evidence_at_low_rate():
    n = 6000
    labels = np.zeros(n, dtype=int)
    labels[::100] = 1  # 1% of rows are positive
    region = pd.Series(np.where(np.arange(n) % 10 == 1, "North", "South"), dtype="object")

    # North has 600 rows and no positive. At a 1% overall rate that happens
    # with probability 0.99 ** 600, about 0.0024, which is no evidence.
    assert (labels[region == "North"] == 0).all()
    assert find_leaks(pd.DataFrame({"region": region}), labels, {"region": "categorical"}) == []


def test_pure_level_of_flag_column():
    n = 3000
    labels = random_labels(n, 0.4, seed=12)
    flag = np.zeros(n)
    flag[:150] = 1.0  # 5% of rows
    labels[:150] = 1

    flags = find_leaks(pd.DataFrame({"flag_a": flag}), labels, {"flag_a": "numeric"})

    assert len(flags) == 1
    assert any('level "1" has 150 rows' in reason for reason in flags[0].reasons)


def test_identifier_not_flagged():
    n = 5000
    labels = random_labels(n, 0.3, seed=13)
    identifier = pd.Series([f"lead-{index}" for index in range(n)], dtype="object")

    flags = find_leaks(pd.DataFrame({"lead_id": identifier}), labels, {"lead_id": "categorical"})
    auc = single_feature_auc(identifier, labels, "categorical")

    # Every value is absent from the other folds, so each row gets its
    # fold's prior. Stratified folds make the priors nearly equal.
    assert flags == []
    assert auc < 0.52


def test_name_hint_flags_modest_signal():
    labels = random_labels(4000, 0.5, seed=14)
    status = modest_status(labels, seed=15)
    features = pd.DataFrame({"c001_lead_status": status})

    flags = find_leaks(features, labels, {"c001_lead_status": "categorical"}, display_names={"c001_lead_status": "Lead Status"})

    assert len(flags) == 1
    assert 0.70 < flags[0].single_feature_auc < 0.80
    assert 'contains "status"' in flags[0].reasons[0]


def test_name_hint_ignores_other_names():
    labels = random_labels(4000, 0.5, seed=14)
    features = pd.DataFrame({"c001_lead_source": modest_status(labels, seed=15)})

    flags = find_leaks(features, labels, {"c001_lead_source": "categorical"}, display_names={"c001_lead_source": "Lead Source"})

    assert flags == []


def test_name_hint_ignores_noise():
    n = 4000
    labels = random_labels(n, 0.5, seed=16)
    status = pd.Series(np.random.default_rng(17).choice(["New", "Working", "Nurture"], size=n), dtype="object")

    flags = find_leaks(pd.DataFrame({"status": status}), labels, {"status": "categorical"}, display_names={"status": "Lead Status"})

    assert flags == []


@pytest.mark.parametrize(
    ("display_name", "flagged"),
    [
        ("LeadStatus", True),
        ("lead_status", True),
        ("Lead Státus", True),
        ("Deal Stages", True),
        ("Lost Reason", True),
        ("Stagecoach Route", False),
        ("Statistics Course", False),
    ],
)
def test_name_hint_matching(display_name, flagged):
    labels = random_labels(4000, 0.5, seed=18)
    features = pd.DataFrame({"feature": modest_status(labels, seed=19)})

    flags = find_leaks(features, labels, {"feature": "categorical"}, display_names={"feature": display_name})

    assert (len(flags) == 1) is flagged


def test_keep_by_display_name():
    labels = random_labels(1000, 0.3, seed=20)
    features = pd.DataFrame({"c003_deal_amount": labels * 1000.0, "c004_visits": np.random.default_rng(21).normal(size=1000)})
    kinds = {"c003_deal_amount": "numeric", "c004_visits": "numeric"}
    display_names = {"c003_deal_amount": "Deal Amount", "c004_visits": "Visits"}

    flags = find_leaks(features, labels, kinds, LeakageSettings(keep=("Deal Amount",)), display_names=display_names)

    assert len(flags) == 1
    assert flags[0].kept is True
    assert excluded_features(flags) == []


def test_keep_by_feature_name():
    labels = random_labels(1000, 0.3, seed=22)
    features = pd.DataFrame({"won_flag": labels.astype(float), "score": labels * 2.0})
    kinds = {"won_flag": "numeric", "score": "numeric"}

    flags = find_leaks(features, labels, kinds, LeakageSettings(keep=("score",)))

    assert {flag.feature: flag.kept for flag in flags} == {"won_flag": False, "score": True}
    assert excluded_features(flags) == ["won_flag"]


def test_recorded_after_outcome_flagged():
    n = 1000
    labels = random_labels(n, 0.3, seed=23)
    features = pd.DataFrame({"emails_sent": np.random.default_rng(24).normal(size=n)})
    reason = "its events are dated after the deal closed"

    flags = find_leaks(features, labels, {"emails_sent": "numeric"}, recorded_after_outcome={"emails_sent": reason})

    assert len(flags) == 1
    assert flags[0].reasons == [reason]


def test_recorded_after_outcome_unknown_feature():
    labels = random_labels(100, 0.3, seed=25)
    features = pd.DataFrame({"visits": np.arange(100.0)})

    with pytest.raises(ValueError, match="emails_sent"):
        find_leaks(features, labels, {"visits": "numeric"}, recorded_after_outcome={"emails_sent": "late"})


def test_flags_sorted_by_auc():
    n = 2000
    labels = random_labels(n, 0.5, seed=26)
    generator = np.random.default_rng(27)
    features = pd.DataFrame(
        {
            "strong": labels + generator.normal(scale=0.2, size=n),
            "perfect": labels.astype(float),
            "weaker": labels + generator.normal(scale=0.4, size=n),
        }
    )
    kinds = dict.fromkeys(features.columns, "numeric")

    flags = find_leaks(features, labels, kinds)

    assert [flag.feature for flag in flags] == ["perfect", "strong", "weaker"]


def test_leakage_table_columns():
    flags = [LeakageFlag("c001_tags", "Tags", 0.93, ["first reason", "second reason"], False)]

    table = leakage_table(flags)

    assert list(table.columns) == ["feature", "display_name", "single_feature_auc", "reasons", "kept"]
    assert table.loc[0, "reasons"] == "first reason; second reason"
    assert leakage_table([]).empty


def test_labels_with_one_class_rejected():
    features = pd.DataFrame({"visits": np.arange(50.0)})

    with pytest.raises(ValueError, match="both positive and negative"):
        find_leaks(features, np.ones(50, dtype=int), {"visits": "numeric"})


def test_unknown_kind_rejected():
    labels = random_labels(100, 0.5, seed=28)

    with pytest.raises(ValueError, match="text"):
        single_feature_auc(pd.Series(np.arange(100.0), name="visits"), labels, "text")


def test_x_education_leaks(shared_data):
    path = shared_data / "xeducation" / "Leads.csv"
    if not path.is_file():
        pytest.skip(f"X Education lead table not found at {path}")

    # The same steps as training.workflow.train_table.
    raw = lead_table.read_lead_table(path)
    lead_table.check_columns(raw, path, "Converted", "Prospect ID")
    rows, labels, _ = lead_table.split_labelled_rows(raw, path, "Converted")
    schema = lead_table.infer_schema(rows, "Converted", "Prospect ID")
    features = lead_table.table_features(rows, schema)
    kinds = {c.name: ("categorical" if c.kind == "categorical" else "numeric") for c in schema.columns}

    flags = find_leaks(features, labels, kinds, display_names=schema.display_names)
    flagged = {flag.display_name for flag in flags}

    assert "Tags" in flagged
    assert "Lead Quality" in flagged
    for column in ("Lead Origin", "Lead Source", "TotalVisits", "Total Time Spent on Website"):
        assert column not in flagged, column
