"""Champion and challenger in the MLflow registry: train, compare, promote, refuse, and the no-signal rule."""

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from leadlink.cli import app
from leadlink.errors import LeadlinkError
from leadlink.training import registry, tracking
from leadlink.training.workflow import TrainingOptions, train_table

runner = CliRunner()


def lead_table(path, n: int = 1500, signal: float = 1.0, seed: int = 0):
    """Write a lead table whose conversion log-odds are signal * (1.5 * visits_z + [source is referral]) - 1."""
    rng = np.random.default_rng(seed)
    visits = rng.gamma(2.0, 3.0, size=n).round()
    source = rng.choice(["search", "referral", "ads"], size=n)
    z = (visits - visits.mean()) / visits.std()
    logit = signal * (1.5 * z + (source == "referral")) - 1
    won = rng.random(n) < 1 / (1 + np.exp(-logit))
    table = pd.DataFrame({"Lead": [f"L{i}" for i in range(n)], "Visits": visits, "Source": source, "Won": np.where(won, "yes", "no")})
    table.to_csv(path, index=False)
    return path


def train(path, seed: int = 0) -> dict:
    return train_table(path, "Won", "Lead", TrainingOptions(model_name="leads", seed=seed, folds=3))


def set_metric(run_id: str, name: str, value: float) -> None:
    """Overwrite a run's logged metric so a test controls which version is better."""
    MlflowClient().log_metric(run_id, name, value)


def test_trained_model_becomes_challenger(tmp_path):
    summary = train(lead_table(tmp_path / "leads.csv"))
    assert summary["registered"]
    version = MlflowClient().get_model_version_by_alias("leads", tracking.CHALLENGER)
    assert str(version.version) == summary["version"]


def test_run_logs_folds_plots_and_baselines(tmp_path):
    summary = train(lead_table(tmp_path / "leads.csv"))
    client = MlflowClient()
    run = client.get_run(summary["run_id"])
    assert run.data.metrics["backtest_roc_auc"] == pytest.approx(summary["metrics"]["roc_auc"])
    assert "rules_backtest_roc_auc" not in run.data.metrics  # tables have no rules score
    assert "logistic_backtest_roc_auc" in run.data.metrics
    history = client.get_metric_history(summary["run_id"], "fold_roc_auc")
    assert sorted(point.step for point in history) == [1, 2, 3]
    plots = {item.path for item in client.list_artifacts(summary["run_id"], "plots")}
    expected = {"roc.png", "precision_recall.png", "calibration.png", "lift.png", "feature_importance.png", "shap_summary.png"}
    assert expected <= {path.split("/")[-1] for path in plots}


def test_signature_accepts_missing_numbers(tmp_path):
    summary = train(lead_table(tmp_path / "leads.csv"))
    model = mlflow.pyfunc.load_model(summary["model_uri"])
    names = model.metadata.get_input_schema().input_names()
    row = {name: None for name in names}
    output = model.predict(pd.DataFrame([row]))
    assert 0.0 <= float(output["probability"].iloc[0]) <= 1.0


def test_no_signal_model_is_not_registered(tmp_path):
    summary = train(lead_table(tmp_path / "noise.csv", signal=0.0))
    assert not summary["registered"]
    assert summary["version"] is None
    with pytest.raises(mlflow.exceptions.MlflowException):
        MlflowClient().get_registered_model("leads")


def test_first_promotion_needs_no_champion(tmp_path):
    summary = train(lead_table(tmp_path / "leads.csv"))
    result = registry.promote("leads")
    assert result["changed"]
    assert result["champion"] == summary["version"]
    assert str(MlflowClient().get_model_version_by_alias("leads", tracking.CHAMPION).version) == summary["version"]


def test_promote_rejects_worse_challenger(tmp_path):
    path = lead_table(tmp_path / "leads.csv")
    first = train(path)
    registry.promote("leads")
    second = train(path, seed=1)
    set_metric(first["run_id"], "backtest_roc_auc", 0.9)
    set_metric(second["run_id"], "backtest_roc_auc", 0.8)
    with pytest.raises(registry.PromotionRejected, match="worse than champion version 1"):
        registry.promote("leads")
    assert str(MlflowClient().get_model_version_by_alias("leads", tracking.CHAMPION).version) == first["version"]


def test_promote_force_moves_champion(tmp_path):
    path = lead_table(tmp_path / "leads.csv")
    first = train(path)
    registry.promote("leads")
    second = train(path, seed=1)
    set_metric(first["run_id"], "backtest_roc_auc", 0.9)
    set_metric(second["run_id"], "backtest_roc_auc", 0.8)
    result = registry.promote("leads", force=True)
    version = MlflowClient().get_model_version("leads", second["version"])
    assert result["champion"] == second["version"]
    assert version.tags["leadlink.promotion_forced"] == "true"


def test_promote_lower_is_better_metric(tmp_path):
    path = lead_table(tmp_path / "leads.csv")
    first = train(path)
    registry.promote("leads")
    second = train(path, seed=1)
    set_metric(first["run_id"], "backtest_log_loss", 0.50)
    set_metric(second["run_id"], "backtest_log_loss", 0.45)
    result = registry.promote("leads", metric="log_loss")
    assert result["champion"] == second["version"]


def test_compare_table_and_report(tmp_path):
    path = lead_table(tmp_path / "leads.csv")
    first = train(path)
    registry.promote("leads")
    second = train(path)
    runs = registry.registered_runs("leads")
    frame = registry.comparison_frame(runs)
    assert list(frame.index) == [f"challenger v{second['version']}", f"champion v{first['version']}"]
    assert frame.loc[f"champion v{first['version']}", "roc_auc"] == pytest.approx(first["metrics"]["roc_auc"])
    assert frame["same backtest"].tolist() == ["yes", "yes"]

    report = registry.write_comparison(tmp_path / "compare.html", "leads", runs, frame)
    html = report.read_text()
    assert "champion v1" in html
    assert html.count("data:image/png;base64,") == 4


def test_cli_compare_and_promote(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = lead_table(tmp_path / "leads.csv")
    trained = runner.invoke(app, ["train", "--table", str(path), "--label", "Won", "--id", "Lead", "--model-name", "leads", "--folds", "3"])
    assert trained.exit_code == 0, trained.output
    promoted = runner.invoke(app, ["promote", "--model-name", "leads", "--json"])
    assert promoted.exit_code == 0, promoted.output
    assert json.loads(promoted.output.strip().splitlines()[-1])["champion"] == "1"
    compared = runner.invoke(app, ["compare", "--model-name", "leads", "--report", str(tmp_path / "c.html"), "--json"])
    assert compared.exit_code == 0, compared.output
    versions = json.loads(compared.output.strip().splitlines()[-1])["versions"]
    assert versions[0]["model"] == "champion v1"
    assert (tmp_path / "c.html").exists()


def test_promote_without_model_is_clear(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["promote", "--model-name", "nothing"])
    assert result.exit_code == 2
    assert "Model 'nothing' has no 'challenger' alias" in result.output


def test_promote_rejects_model_worse_than_rules(tmp_path):
    summary = train(lead_table(tmp_path / "leads.csv"))
    set_metric(summary["run_id"], "rules_backtest_roc_auc", summary["metrics"]["roc_auc"] + 0.05)
    with pytest.raises(registry.PromotionRejected, match="worse than the rules score"):
        registry.promote("leads")
    assert registry.promote("leads", force=True)["champion"] == summary["version"]


def test_promote_rejects_data_metric():
    with pytest.raises(LeadlinkError, match="'base_rate' is not a model metric"):
        registry.promote("leads", metric="base_rate")


def test_backtests_with_other_folds_differ(tmp_path):
    path = lead_table(tmp_path / "leads.csv")
    train(path)
    train_table(path, "Won", "Lead", TrainingOptions(model_name="leads", folds=4))
    frame = registry.comparison_frame(registry.registered_runs("leads"))
    assert frame["same backtest"].tolist() == ["yes", "no"]
