"""The leadlink command: each subcommand on small inputs, with exit codes."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from leadlink.cli import app
from tests.conftest import write_workspace

runner = CliRunner()


def invoke(*args: str):
    result = runner.invoke(app, [str(a) for a in args])
    return result


def last_json(result) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_generate_writes_tables_and_truth(tmp_path):
    result = invoke("generate", "--out", tmp_path / "ws", "--contacts", 300, "--seed", 5, "--format", "csv", "--json")
    assert result.exit_code == 0, result.output
    summary = last_json(result)
    assert summary["rows"]["contacts"] == 300
    for name in ("contacts", "users", "events", "deals"):
        assert (tmp_path / "ws" / f"{name}.csv").is_file()
    assert (tmp_path / "ws" / "truth" / "links.parquet").is_file()


def test_validate_clean_workspace(demo_workspace, tmp_path):
    result = invoke("validate", demo_workspace, "--rejects", tmp_path / "rejects.csv", "--json")
    assert result.exit_code == 0, result.output
    assert last_json(result)["problems"] == 0
    assert not (tmp_path / "rejects.csv").exists()


def test_validate_reports_row_column_value(tmp_path):
    folder = write_workspace(
        tmp_path / "ws",
        contacts=pd.DataFrame({"contact_id": ["C1", "C1"], "created_at": ["2024-01-01", "2024-13-45"]}),
    )
    result = invoke("validate", folder)
    assert result.exit_code == 1
    assert "contacts row 3 column contact_id: value 'C1'" in result.stdout
    rejects = pd.read_csv(folder / "rejects.csv")
    problems = set(map(tuple, rejects[["row", "column", "severity"]].values.tolist()))
    assert problems == {(3, "created_at", "value_cleared"), (3, "contact_id", "rejected")}


def test_missing_workspace_is_one_line_error(tmp_path):
    result = invoke("validate", tmp_path / "nowhere")
    assert result.exit_code == 2
    assert "does not exist" in result.stdout
    assert "Traceback" not in result.output


def test_link_writes_best_match_per_contact(demo_workspace, tmp_path):
    out = tmp_path / "links.csv"
    result = invoke("link", demo_workspace, "--out", out, "--truth", demo_workspace / "truth" / "links.parquet", "--json")
    assert result.exit_code == 0, result.output
    links = pd.read_csv(out)
    assert list(links.columns) == ["contact_id", "user_id", "match_weight", "match_probability", "evidence", "job_change"]
    assert links["contact_id"].is_unique
    assert (links["match_probability"] >= 0.8).all()
    quality = last_json(result)["quality"]
    assert quality["precision"] >= 0.85


def test_train_and_score_workspace(demo_workspace, tmp_path):
    trained = invoke("train", demo_workspace, "--json")
    assert trained.exit_code == 0, trained.output
    summary = last_json(trained)
    assert summary["model_uri"] == "models:/leadlink/1"
    assert summary["split"] == "time"
    assert 0.5 < summary["metrics"]["roc_auc"] <= 1.0

    out = tmp_path / "scores.parquet"
    scored = invoke("score", demo_workspace, "--out", out, "--top", 3, "--json")
    assert scored.exit_code == 0, scored.output
    scores = pd.read_parquet(out)
    contacts = pd.read_parquet(demo_workspace / "contacts.parquet")
    assert len(scores) == len(contacts)
    assert set(scores["contact_id"]) == set(contacts["contact_id"])
    expected = ["contact_id", "probability", "score", "grade", "is_mql", "previous_user", "matched_user_id", "match_probability", "reasons", "model_version"]
    assert list(scores.columns) == expected
    assert scores["probability"].between(0, 1).all()
    assert (scores["score"] == (scores["probability"] * 100).round().astype(int)).all()
    assert scores.loc[scores["previous_user"], "matched_user_id"].notna().all()
    assert scores.loc[~scores["previous_user"], "matched_user_id"].isna().all()
    assert (scores["model_version"] == "leadlink/1").all()
    assert scores["reasons"].str.len().gt(0).all()
    assert last_json(scored)["scored"] == len(contacts)


def test_train_as_of_excludes_later_deals(demo_workspace):
    deals = pd.read_parquet(demo_workspace / "deals.parquet")
    closed = deals[deals["outcome"].isin(["won", "lost"])].sort_values("closed_at")
    cutoff = closed["closed_at"].iloc[len(closed) * 3 // 4]
    expected = int((closed["closed_at"] < cutoff).sum())
    result = invoke("train", demo_workspace, "--as-of", cutoff.isoformat(), "--maturity-days", "0", "--folds", "2", "--json")
    assert result.exit_code == 0, result.output
    assert last_json(result)["examples"] == expected


def test_train_maturity_window_leaves_out_recent_deals(demo_workspace):
    deals = pd.read_parquet(demo_workspace / "deals.parquet")
    closed = deals[deals["outcome"].isin(["won", "lost"])]
    cutoff = closed["closed_at"].max() + pd.Timedelta(seconds=1)
    expected = int((closed["created_at"] < cutoff - pd.Timedelta(days=60)).sum())
    result = invoke("train", demo_workspace, "--as-of", cutoff.isoformat(), "--maturity-days", "60", "--folds", "2", "--json")
    assert result.exit_code == 0, result.output
    assert last_json(result)["examples"] == expected


def test_score_without_model_is_clear(demo_workspace, tmp_path):
    result = invoke("score", demo_workspace, "--out", tmp_path / "s.csv")
    assert result.exit_code == 2
    assert "No version of model 'leadlink' is registered" in result.stdout


def test_train_needs_workspace_or_table():
    result = invoke("train")
    assert result.exit_code == 2
    assert "either a WORKSPACE folder or --table" in result.stdout


def test_bad_as_of_is_clear(demo_workspace):
    result = invoke("train", demo_workspace, "--as-of", "next tuesday")
    assert result.exit_code == 2
    assert "--as-of 'next tuesday' is not an ISO 8601 timestamp" in result.stdout


@pytest.mark.parametrize("suffix", [".txt", ".json"])
def test_score_rejects_unknown_output_format(demo_workspace, tmp_path, suffix):
    result = invoke("score", demo_workspace, "--out", tmp_path / f"scores{suffix}")
    assert result.exit_code == 2
    assert "must end in .csv or .parquet" in result.stdout
