"""Training populations, hyperparameter search and the leakage guard inside the training job."""

import mlflow
import numpy as np
import pandas as pd
import pytest

from leadlink.errors import TrainingError
from leadlink.features.workspace import load_workspace
from leadlink.training.dataset import contact_examples, deal_examples, sales_cycle_days
from leadlink.training.workflow import TrainingOptions, train_table, train_workspace
from tests.conftest import utc, write_workspace
from tests.test_registry import lead_table


@pytest.fixture
def small_workspace(tmp_path):
    contacts = pd.DataFrame(
        {
            "contact_id": ["C1", "C2", "C3", "C4", "C5"],
            "created_at": ["2024-01-01", "2024-01-01", "2024-03-01", "2024-05-20", None],
        }
    )
    deals = pd.DataFrame(
        {
            "deal_id": ["D1", "D2", "D3", "D4"],
            "contact_id": ["C1", "C2", "C3", "C3"],
            "created_at": ["2024-01-10", "2024-01-05", "2024-03-05", "2024-05-01"],
            "closed_at": ["2024-02-15", "2024-06-01", "2024-04-01", "2024-05-10"],
            "outcome": ["won", "won", "lost", "won"],
        }
    )
    return load_workspace(write_workspace(tmp_path / "ws", contacts=contacts, deals=deals))


def test_contact_population_by_hand(small_workspace):
    # As of 2024-06-15 with a 90-day horizon, contacts created before 2024-03-17 count.
    examples = contact_examples(small_workspace, utc("2024-06-15"), horizon_days=90)
    labels = dict(zip(examples["contact_id"], examples["label"]))
    # C1 won 45 days after creation and C2 only after 152 days. C3 lost one deal but won another
    # 70 days after creation. C4 is too recent and C5 has no creation time.
    assert labels == {"C1": 1, "C2": 0, "C3": 1}
    assert (examples["outcome_at"] == examples["as_of"] + pd.Timedelta(days=90)).all()


def test_contact_population_needs_positive_horizon(small_workspace):
    with pytest.raises(TrainingError, match="--horizon-days must be a number of days, more than zero"):
        contact_examples(small_workspace, utc("2024-06-15"), horizon_days=0)


def test_deal_population_by_hand(small_workspace):
    examples = deal_examples(small_workspace, utc("2024-05-15"), maturity_days=30)
    # Created before 2024-04-15 and closed before 2024-05-15: D1 and D3; D2 closes later, D4 is too recent.
    assert examples["deal_id"].tolist() == ["D1", "D3"]
    assert examples["label"].tolist() == [1, 0]


def test_sales_cycle_days_by_hand(small_workspace):
    # Closed before 2024-07-01: won cycles 36, 148 and 9 days, lost 27 days. Too few old deals, so
    # all closed deals count; the 95th percentile of the won cycles is the longer one.
    won = np.quantile([36, 148, 9], 0.95)
    assert sales_cycle_days(small_workspace.deals, utc("2024-07-01")) == np.ceil(won)


def test_tuning_logs_nested_trials(tmp_path):
    summary = train_table(lead_table(tmp_path / "leads.csv", n=2000), "Won", "Lead", TrainingOptions(model_name="leads", folds=3, tune_trials=3))
    children = mlflow.search_runs(experiment_names=["leadlink"], filter_string=f"tags.mlflow.parentRunId = '{summary['run_id']}'")
    assert len(children) == 3
    assert "metrics.validation_log_loss" in children.columns
    assert set(summary["params"]) == {"learning_rate", "num_leaves", "min_data_in_leaf", "feature_fraction", "lambda_l2"}


def test_leaking_column_is_left_out(tmp_path):
    path = lead_table(tmp_path / "leads.csv", n=2000)
    table = pd.read_csv(path)
    table["Sales Notes"] = np.where(table["Won"] == "yes", "signed", "no answer")
    table.to_csv(path, index=False)
    summary = train_table(path, "Won", "Lead", TrainingOptions(model_name="leads", folds=3))
    assert [row["display_name"] for row in summary["leakage"]] == ["Sales Notes"]
    assert len(summary["excluded_features"]) == 1
    assert summary["metrics"]["roc_auc"] < 0.95


def test_kept_leaking_column_stays(tmp_path):
    path = lead_table(tmp_path / "leads.csv", n=2000)
    table = pd.read_csv(path)
    table["Sales Notes"] = np.where(table["Won"] == "yes", "signed", "no answer")
    table.to_csv(path, index=False)
    summary = train_table(path, "Won", "Lead", TrainingOptions(model_name="leads", folds=3, keep_features=("Sales Notes",)))
    assert summary["excluded_features"] == []
    assert summary["metrics"]["roc_auc"] > 0.99


def test_unknown_kept_feature_is_clear(tmp_path):
    path = lead_table(tmp_path / "leads.csv", n=2000)
    with pytest.raises(TrainingError, match=r"--keep-feature names unknown feature\(s\) \['Nope'\]"):
        train_table(path, "Won", "Lead", TrainingOptions(model_name="leads", folds=3, keep_features=("Nope",)))


def test_contact_population_trains(demo_workspace):
    summary = train_workspace(demo_workspace, options=TrainingOptions(folds=2), population="contacts", horizon_days=120)
    assert summary["split"] == "time"
    assert summary["examples"] > 1000


def test_guard_flagging_everything_is_clear(tmp_path):
    path = lead_table(tmp_path / "leads.csv", n=2000)
    with pytest.raises(TrainingError, match="flagged all 2 features"):
        train_table(path, "Won", "Lead", TrainingOptions(model_name="leads", folds=3, leakage_auc=0.5))


@pytest.mark.parametrize("days", [float("nan"), float("inf"), -30.0, 1e9])
def test_bad_maturity_days_rejected(small_workspace, days):
    with pytest.raises(TrainingError, match="--maturity-days must be a number of days"):
        deal_examples(small_workspace, utc("2024-05-15"), maturity_days=days)


def test_one_outcome_only_is_clear(tmp_path):
    path = lead_table(tmp_path / "leads.csv", n=600)
    table = pd.read_csv(path).assign(Won="yes")
    table.to_csv(path, index=False)
    with pytest.raises(TrainingError, match="All 600 examples are won"):
        train_table(path, "Won", "Lead", TrainingOptions(model_name="leads", folds=3))


def test_person_name_columns_are_dropped(tmp_path):
    path = lead_table(tmp_path / "leads.csv", n=1500)
    table = pd.read_csv(path)
    rng = np.random.default_rng(0)
    table["First Name"] = rng.choice(["Ana", "Bo", "Chen", "Dana"], size=len(table))
    table["Last Name"] = rng.choice(["Silva", "Berg", "Wong"], size=len(table))
    table.to_csv(path, index=False)
    summary = train_table(path, "Won", "Lead", TrainingOptions(model_name="leads", folds=3))
    assert summary["features"] == 2
    assert any("First Name" in note and "names" in note for note in summary["notes"])
