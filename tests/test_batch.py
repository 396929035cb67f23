"""Streaming batch scoring: chunked reading and writing, atomic output, rejects, CRM export and the score command."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from leadlink.cli import app
from leadlink.errors import LeadlinkError
from leadlink.progress import RowProgress
from leadlink.serving.batch import ScoringOptions, score_table, score_workspace
from leadlink.serving.export import parse_crm_columns
from leadlink.serving.stream import AtomicTableWriter, csv_header_names, partial_path, read_chunks
from leadlink.serving.table_scoring import id_text
from leadlink.serving.workspace_scoring import events_by_chunk
from leadlink.training.table import infer_schema, table_features
from leadlink.training.train import fit_scorer

runner = CliRunner()
TABLE_COLUMNS = ["Lead ID", "probability", "score", "reasons", "model_version"]


def lead_table(n: int, seed: int) -> pd.DataFrame:
    """A lead table as a web form exports it: text numbers, yes/no flags, placeholders and a label."""
    rng = np.random.default_rng(seed)
    visits = rng.poisson(4, n)
    minutes = np.round(rng.exponential(15, n), 1)
    source = rng.choice(["Google", "Referral", "Direct", "Select"], n, p=[0.4, 0.2, 0.3, 0.1])
    newsletter = rng.choice(["Yes", "No"], n)
    logit = 0.3 * visits + 0.04 * minutes + (source == "Referral") * 1.0 - 2.5
    converted = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "Lead ID": [f"L{seed}-{i}" for i in range(n)],
            "Visits": visits.astype(str),
            "Minutes": minutes.astype(str),
            "Lead Source": source,
            "Newsletter": newsletter,
            "Converted": converted,
        }
    )


@pytest.fixture(scope="module")
def table_model(tmp_path_factory) -> Path:
    """A lead-table model folder fitted the way ``train --table`` fits its final model."""
    table = lead_table(3000, seed=1)
    schema = infer_schema(table, label="Converted", id_column="Lead ID")
    features = table_features(table, schema)
    kinds = {column.name: ("categorical" if column.kind == "categorical" else "numeric") for column in schema.columns}
    positions = np.random.default_rng(0).permutation(len(table))
    scorer = fit_scorer(features, table["Converted"].to_numpy(), kinds, positions, spec_extra={"mode": "table", "table": schema.to_dict()})
    return scorer.save(tmp_path_factory.mktemp("table-model") / "model")


@pytest.fixture(scope="module")
def leads_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("leads") / "leads.csv"
    lead_table(1500, seed=2).drop(columns="Converted").to_csv(path, index=False)
    return path


def score(table: Path, out: Path, model: Path, **options) -> dict:
    return score_table(table, out, model_uri=str(model), options=ScoringOptions(**options))


# ---------------------------------------------------------------------------
# Reading in chunks
# ---------------------------------------------------------------------------


def test_header_names_like_pandas():
    assert csv_header_names([" id ", "a", "", "a", "a"]) == ["id", "a", "Unnamed: 2", "a.1", "a.2"]


def test_csv_chunks_rows_and_rejects(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"\xef\xbb\xbfid,a,b\n1,x,2\n\n2,\"two\nlines\",3\n3,y,4,extra\n4,\xff,5\n5,z\n6,w,7,\n")
    chunks = list(read_chunks(path, chunk_rows=2, id_column="id"))
    rows = pd.concat([chunk.frame for chunk in chunks], ignore_index=True)
    numbers = np.concatenate([chunk.row_numbers for chunk in chunks])
    rejects = [reject for chunk in chunks for reject in chunk.rejects]
    assert rows["id"].tolist() == ["1", "2", "5", "6"]
    assert rows["a"].tolist() == ["x", "two\nlines", "z", "w"]
    assert rows["b"].tolist() == ["2", "3", None, "7"]
    # The blank line is not counted: data rows are numbered from 2 in record order.
    assert numbers.tolist() == [2, 3, 6, 7]
    assert [(reject["row"], reject["id"]) for reject in rejects] == [(4, "3"), (5, "4")]
    assert rejects[0]["reason"] == "the row has 4 fields but the header has 3"
    assert rejects[0]["value"] == "3,y,4,extra"
    assert rejects[1]["reason"] == "the row is not valid UTF-8 text"


def test_parquet_chunks_row_numbers(tmp_path):
    path = tmp_path / "t.parquet"
    pd.DataFrame({"id": ["a", "b", "c", "d", "e"]}).to_parquet(path)
    chunks = list(read_chunks(path, chunk_rows=2))
    assert [len(chunk.frame) for chunk in chunks] == [2, 2, 1]
    assert np.concatenate([chunk.row_numbers for chunk in chunks]).tolist() == [2, 3, 4, 5, 6]


def test_id_text():
    values = pd.Series([1.0, 2.5, np.nan, 3.0])
    assert id_text(values).tolist() == ["1", "2.5", None, "3"]
    assert id_text(pd.Series(["  A1 ", "", None])).tolist() == ["A1", None, None]


def test_events_by_chunk():
    events = pd.DataFrame({"contact_id": ["c3", "c1", "c2", "c3", "c1"], "event_type": list("abcde"), "occurred_at": pd.NaT, "url": None})
    events_of = events_by_chunk(events, pd.Series(["c1", "c2", "c3"]), chunk_rows=2)
    assert events_of(0)["event_type"].tolist() == ["b", "c", "e"]
    assert events_of(1)["event_type"].tolist() == ["a", "d"]


# ---------------------------------------------------------------------------
# Table mode
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_chunked_equals_unchunked(table_model, leads_csv, tmp_path, suffix):
    whole = score(leads_csv, tmp_path / f"whole{suffix}", table_model, chunk_rows=100_000)
    chunked = score(leads_csv, tmp_path / f"chunked{suffix}", table_model, chunk_rows=97)
    read = pd.read_parquet if suffix == ".parquet" else pd.read_csv
    expected, actual = read(tmp_path / f"whole{suffix}"), read(tmp_path / f"chunked{suffix}")
    assert whole["scored"] == 1500
    assert chunked["scored"] == 1500
    assert list(actual.columns) == TABLE_COLUMNS
    pd.testing.assert_frame_equal(actual, expected)


def test_parquet_input_equals_csv(table_model, leads_csv, tmp_path):
    parquet_input = tmp_path / "leads.parquet"
    pd.read_csv(leads_csv, dtype=str).to_parquet(parquet_input)
    score(leads_csv, tmp_path / "from_csv.parquet", table_model, chunk_rows=400)
    score(parquet_input, tmp_path / "from_parquet.parquet", table_model, chunk_rows=400)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "from_parquet.parquet"), pd.read_parquet(tmp_path / "from_csv.parquet"))


def test_exact_reasons_equal_default(table_model, leads_csv, tmp_path):
    score(leads_csv, tmp_path / "patterns.parquet", table_model, chunk_rows=500)
    score(leads_csv, tmp_path / "exact.parquet", table_model, chunk_rows=500, reasons_method="lightgbm")
    patterns, exact = pd.read_parquet(tmp_path / "patterns.parquet"), pd.read_parquet(tmp_path / "exact.parquet")
    assert (patterns["reasons"] == exact["reasons"]).all()


def test_output_values(table_model, leads_csv, tmp_path):
    out = tmp_path / "scores.parquet"
    summary = score(leads_csv, out, table_model)
    scores = pd.read_parquet(out)
    leads = pd.read_csv(leads_csv)
    assert scores["Lead ID"].tolist() == leads["Lead ID"].tolist()
    assert np.isfinite(scores["probability"]).all()
    assert scores["probability"].between(0, 1).all()
    assert (scores["score"] == np.rint(scores["probability"] * 100)).all()
    assert (scores["model_version"] == str(table_model.resolve())).all()
    phrases = scores["reasons"].str.split("; ").explode()
    assert phrases.str.match(r"^[+-] (Visits|Minutes|Lead Source|Newsletter) is .+$").all()
    assert scores["reasons"].str.split("; ").map(len).max() == 3
    assert summary["top"]["probability"].tolist() == sorted(scores["probability"], reverse=True)[:10]


def test_rejects_file_and_counts(table_model, tmp_path):
    table = lead_table(20, seed=3).drop(columns="Converted")
    table.loc[2, "Lead ID"] = None
    table.loc[5, "Visits"] = "lots"
    table.loc[7, "Newsletter"] = "perhaps"
    table.loc[9, "Minutes"] = "inf"
    table.loc[11, "Lead Source"] = "N/A"  # a placeholder: missing, not rejected
    path = tmp_path / "leads.csv"
    table.to_csv(path, index=False)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("L-extra,1,2,Google,Yes,unexpected\n")
    out = tmp_path / "scores.csv"

    summary = score(path, out, table_model, chunk_rows=6)

    assert (summary["read"], summary["scored"], summary["rejected"]) == (21, 16, 5)
    rejects = pd.read_csv(summary["rejects_file"], keep_default_na=False)
    assert summary["rejects_file"] == str(tmp_path / "scores.rejects.csv")
    assert list(rejects.columns) == ["table", "row", "id", "column", "value", "reason", "severity"]
    by_row = {row.row: row for row in rejects.itertuples()}
    assert sorted(by_row) == [4, 7, 9, 11, 22]
    assert (by_row[4].column, by_row[4].reason) == ("Lead ID", "the id is missing")
    assert (by_row[7].id, by_row[7].column, by_row[7].value) == ("L3-5", "Visits", "lots")
    assert by_row[7].reason == "not a number, and the model needs a number here"
    assert (by_row[9].column, by_row[9].value) == ("Newsletter", "perhaps")
    assert (by_row[11].column, by_row[11].value) == ("Minutes", "inf")
    assert by_row[22].reason == "the row has 6 fields but the header has 5"
    scored_ids = pd.read_csv(out)["Lead ID"].tolist()
    assert "L3-11" in scored_ids
    assert "L3-5" not in scored_ids


def test_rejects_file_removed_when_clean(table_model, leads_csv, tmp_path):
    stale = tmp_path / "scores.rejects.csv"
    stale.write_text("table,row\nold,2\n")
    summary = score(leads_csv, tmp_path / "scores.csv", table_model)
    assert summary["rejects_file"] is None
    assert not stale.exists()


def test_missing_values_give_finite_probabilities(table_model, tmp_path):
    table = pd.DataFrame({"Lead ID": ["a", "b", "c"], "Visits": [None, "1e308", "-1"], "Minutes": [None, None, "0"]})
    path = tmp_path / "sparse.csv"
    table.to_csv(path, index=False)
    out = tmp_path / "scores.parquet"
    summary = score(path, out, table_model)
    scores = pd.read_parquet(out)
    assert summary["scored"] == 3
    assert np.isfinite(scores["probability"]).all()


def test_header_only_table_is_error(table_model, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("Lead ID,Visits\n")
    out = tmp_path / "scores.csv"
    with pytest.raises(LeadlinkError, match="has a header but no rows"):
        score(path, out, table_model)
    assert not out.exists()
    assert not partial_path(out).exists()


def test_missing_id_column_is_error(table_model, leads_csv, tmp_path):
    with pytest.raises(LeadlinkError, match="has no id column 'Prospect'"):
        score_table(leads_csv, tmp_path / "s.csv", model_uri=str(table_model), id_column="Prospect")


def test_same_output_and_rejects_path_is_error(table_model, leads_csv, tmp_path):
    out = tmp_path / "s.csv"
    with pytest.raises(LeadlinkError, match="both name"):
        score(leads_csv, out, table_model, rejects_path=out)


# ---------------------------------------------------------------------------
# Atomic output
# ---------------------------------------------------------------------------


def test_writer_failure_leaves_no_file(tmp_path):
    out = tmp_path / "t.parquet"
    with pytest.raises(RuntimeError):
        with AtomicTableWriter(out) as writer:
            writer.write(pd.DataFrame({"a": [1, 2]}))
            raise RuntimeError("stop")
    assert not out.exists()
    assert not partial_path(out).exists()


def test_writer_keeps_earlier_output_on_failure(tmp_path):
    out = tmp_path / "t.csv"
    out.write_text("a\n1\n")
    with pytest.raises(RuntimeError):
        with AtomicTableWriter(out) as writer:
            writer.write(pd.DataFrame({"a": [2]}))
            raise RuntimeError("stop")
    assert out.read_text() == "a\n1\n"


def test_killed_run_leaves_only_partial(table_model, tmp_path):
    big = tmp_path / "big.csv"
    lead_table(150_000, seed=4).drop(columns="Converted").to_csv(big, index=False)
    out = tmp_path / "scores.csv"
    partial = partial_path(out)
    command = [sys.executable, "-m", "leadlink.cli", "score", "--table", str(big), "--out", str(out), "--model", str(table_model), "--chunk-rows", "2000"]

    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        # The first chunk is written once the partial file has a header and rows.
        while not (partial.exists() and partial.stat().st_size > 10_000):
            assert process.poll() is None, "the run ended before its first chunk was seen"
            assert time.monotonic() < deadline, "no chunk was written within 120 s"
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    assert not out.exists()
    assert partial.exists()
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == [partial.name]

    small = tmp_path / "small.csv"
    lead_table(300, seed=5).drop(columns="Converted").to_csv(small, index=False)
    summary = score(small, out, table_model)
    assert summary["scored"] == 300
    assert len(pd.read_csv(out)) == 300
    assert not partial.exists()


# ---------------------------------------------------------------------------
# CRM export
# ---------------------------------------------------------------------------


def test_crm_export_columns_and_values(table_model, leads_csv, tmp_path):
    out, crm = tmp_path / "scores.parquet", tmp_path / "crm.csv"
    score(leads_csv, out, table_model, crm_export=crm, crm_columns="id=Lead_ID,probability=Lead_Score__c,score=Score__c,reasons=Score_Reasons__c")
    scores = pd.read_parquet(out)
    text = crm.read_text(encoding="utf-8")
    export = pd.read_csv(crm, dtype=str, keep_default_na=False)
    assert list(export.columns) == ["Lead_ID", "Lead_Score__c", "Score__c", "Score_Reasons__c"]
    assert export["Lead_ID"].tolist() == scores["Lead ID"].tolist()
    assert export["Lead_Score__c"].str.fullmatch(r"[01]\.\d{4}").all()
    assert export["Lead_Score__c"].tolist() == [f"{value:.4f}" for value in scores["probability"]]
    assert export["Score__c"].tolist() == [str(value) for value in scores["score"]]
    assert export["Score_Reasons__c"].tolist() == scores["reasons"].tolist()
    assert text.startswith("Lead_ID,")


def test_crm_mapping_file(tmp_path):
    toml = tmp_path / "crm.toml"
    toml.write_text('id = "LeadId"\nprobability = "Score"\n', encoding="utf-8")
    mapping = parse_crm_columns(str(toml), ["id", "probability", "reasons"], "Lead ID")
    assert mapping == {"id": "LeadId", "probability": "Score"}
    json_file = tmp_path / "crm.json"
    json_file.write_text(json.dumps({"id": "Id", "reasons": "Why"}), encoding="utf-8")
    assert parse_crm_columns(str(json_file), ["id", "reasons"], "Lead ID") == {"id": "Id", "reasons": "Why"}


def test_crm_default_mapping():
    mapping = parse_crm_columns(None, ["id", "probability", "score", "reasons", "model_version"], "Lead ID")
    assert mapping == {"id": "Lead ID", "probability": "probability", "score": "score", "reasons": "reasons"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("id=A,colour=B", "unknown field"),
        ("id=A,grade=G", "does not produce"),
        ("probability=P", "must map the id"),
        ("id=A,probability=A", "more than once"),
        ("id=A,probability", "is invalid"),
        ("id=A,id=B", "twice"),
        ("missing.toml", "not found"),
    ],
)
def test_crm_mapping_errors(spec, message):
    with pytest.raises(LeadlinkError, match=message):
        parse_crm_columns(spec, ["id", "probability", "reasons"], "Lead ID")


# ---------------------------------------------------------------------------
# The score command
# ---------------------------------------------------------------------------


def test_score_command_json_counts(table_model, leads_csv, tmp_path):
    out = tmp_path / "scores.csv"
    result = runner.invoke(app, ["score", "--table", str(leads_csv), "--out", str(out), "--model", str(table_model), "--top", "2", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["read"], summary["scored"], summary["rejected"]) == (1500, 1500, 0)
    assert summary["model_version"] == str(table_model.resolve())
    assert "Read 1,500 leads, scored 1,500, rejected 0" in result.stdout


def test_score_command_crm_columns_need_export(table_model, leads_csv, tmp_path):
    args = ["score", "--table", str(leads_csv), "--out", str(tmp_path / "s.csv"), "--model", str(table_model), "--crm-columns", "id=A"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "add --crm-export" in result.stdout


def test_row_progress_logs_rate(caplog):
    with caplog.at_level("INFO", logger="leadlink.progress"):
        with RowProgress("Scoring leads", total=100, log_every_seconds=0.0) as progress:
            progress.update(40)
            progress.update(60)
    lines = [record.getMessage() for record in caplog.records]
    assert lines[0].startswith("Scoring leads: 40 of 100 rows done, ")
    assert lines[-1].startswith("Scoring leads: 100 of 100 rows done, ")
    assert lines[-1].endswith(" rows/s")


# ---------------------------------------------------------------------------
# Workspace mode
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def registry_env_cleared():
    """Drop MLFLOW_REGISTRY_URI before the session's model is trained.

    mlflow.set_registry_uri (MLflow 3) writes the variable into os.environ,
    and training.tracking.configure_mlflow prefers it over the tracking URI,
    so an earlier test's store would otherwise receive the registration.
    """
    os.environ.pop("MLFLOW_REGISTRY_URI", None)


@pytest.fixture
def trained_workspace_store(registry_env_cleared, trained_store, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained_store)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    return trained_store


def test_workspace_chunked_equals_unchunked(trained_workspace_store, demo_workspace, tmp_path):
    whole = score_workspace(demo_workspace, tmp_path / "whole.parquet", options=ScoringOptions(chunk_rows=1_000_000))
    chunked = score_workspace(demo_workspace, tmp_path / "chunked.parquet", options=ScoringOptions(chunk_rows=777))
    expected, actual = pd.read_parquet(tmp_path / "whole.parquet"), pd.read_parquet(tmp_path / "chunked.parquet")
    contacts = pd.read_parquet(demo_workspace / "contacts.parquet")
    assert whole["scored"] == len(contacts)
    assert chunked["previous_users"] == whole["previous_users"]
    pd.testing.assert_frame_equal(actual, expected)


def test_workspace_output_columns(trained_workspace_store, demo_workspace, tmp_path):
    out, crm = tmp_path / "scores.parquet", tmp_path / "crm.csv"
    summary = score_workspace(
        demo_workspace, out, options=ScoringOptions(crm_export=crm, crm_columns="id=Lead_ID,grade=Grade__c,is_mql=MQL__c,reasons=Why__c")
    )
    scores = pd.read_parquet(out)
    expected = ["contact_id", "probability", "score", "grade", "is_mql", "previous_user", "matched_user_id", "match_probability", "reasons", "model_version"]
    assert list(scores.columns) == expected
    assert scores["grade"].str.fullmatch(r"[A-D][1-4]").all()
    assert scores.loc[scores["previous_user"], "matched_user_id"].notna().all()
    assert scores.loc[~scores["previous_user"], "matched_user_id"].isna().all()
    assert np.isfinite(scores["probability"]).all()
    assert (summary["read"], summary["scored"], summary["rejected"]) == (len(scores), len(scores), 0)
    export = pd.read_csv(crm, dtype=str, keep_default_na=False)
    assert list(export.columns) == ["Lead_ID", "Grade__c", "MQL__c", "Why__c"]
    assert set(export["MQL__c"]) <= {"true", "false"}
    assert export["Grade__c"].tolist() == scores["grade"].tolist()


def test_single_chunk_columns_keep_values():
    from leadlink.serving.workspace_scoring import _single_chunk_columns

    parts = [pd.Series(["a", None], dtype="str"), pd.Series(["b"], dtype="str")]
    frame = pd.DataFrame({"text": pd.concat(parts, ignore_index=True), "number": [1.0, 2.0, 3.0]})
    def chunks(series: pd.Series) -> int:
        arrow = pa.array(series.array)
        return arrow.num_chunks if isinstance(arrow, pa.ChunkedArray) else 1

    assert chunks(frame["text"]) == 2
    single = _single_chunk_columns(frame)
    assert chunks(single["text"]) == 1
    pd.testing.assert_frame_equal(single, frame)
