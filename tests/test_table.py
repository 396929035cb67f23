"""Lead-table mode: type inference on hand-made columns and the X Education table."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from leadlink.cli import app
from leadlink.training.table import clean_values, feature_name, infer_kind, infer_schema, parse_labels

runner = CliRunner()


def test_placeholders_become_missing():
    cleaned = clean_values(pd.Series(["Select", " select ", "N/A", "", "Mumbai", None]))
    assert cleaned.isna().tolist() == [True, True, True, True, False, True]


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (["1", "2.5", "1,200", None], "numeric"),
        (["Yes", "No", "no", None], "boolean"),
        (["Email", "Phone", "Chat", "Email"], "categorical"),
        ([None, None], None),
    ],
)
def test_infer_kind(values, kind):
    assert infer_kind(clean_values(pd.Series(values, dtype="object"))) == kind


def test_feature_name_safe_for_lightgbm():
    name = feature_name('Città "Preferita": {x}', 7)
    assert name == "c007_citta_preferita_x"
    assert not set(name) & set('",:{}[]')


def test_schema_drops_empty_constant_and_identifier_columns():
    n = 120
    table = pd.DataFrame(
        {
            "Lead ID": [f"L{i}" for i in range(n)],
            "Empty": [""] * n,
            "Only Select": ["Select"] * n,
            "Constant": ["No"] * n,
            "Visits": np.arange(n) % 7,
            "Source": ["Web", "Referral", "Ads"] * (n // 3),
            "Converted": [0, 1] * (n // 2),
        }
    )
    schema = infer_schema(table, label="Converted", id_column=None)
    kept = {column.source: column.kind for column in schema.columns}
    assert kept == {"Visits": "numeric", "Source": "categorical"}
    assert len(schema.notes) == 4


def test_parse_labels():
    labels = parse_labels(pd.Series(["1", "0", "yes", "No", "won", "lost", "maybe", None]))
    assert labels.tolist()[:6] == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    assert labels.iloc[6:].isna().all()


def test_x_education_trains_and_scores(shared_data, tmp_path):
    leads = shared_data / "xeducation" / "Leads.csv"
    trained = runner.invoke(app, ["train", "--table", str(leads), "--label", "Converted", "--id", "Prospect ID", "--json"])
    assert trained.exit_code == 0, trained.output
    summary = json.loads(trained.stdout.strip().splitlines()[-1])
    assert summary["rows"] == {"read": 9240, "used": 9240, "rejected": 0}
    assert summary["split"] == "random"
    flagged = {row["display_name"] for row in summary["leakage"]}
    assert {"Tags", "Lead Quality"} <= flagged
    assert not flagged & {"Lead Origin", "Lead Source", "TotalVisits", "Total Time Spent on Website"}
    # Without the columns sales fills in, the model is good but no longer near perfect.
    assert 0.80 < summary["metrics"]["roc_auc"] < 0.95
    assert any("Unnamed: 37" in note for note in summary["notes"])

    out = tmp_path / "scores.csv"
    scored = runner.invoke(app, ["score", "--table", str(leads), "--out", str(out)])
    assert scored.exit_code == 0, scored.output
    scores = pd.read_csv(out)
    assert len(scores) == 9240
    assert list(scores.columns) == ["Prospect ID", "probability", "score", "reasons", "model_version"]
    assert scores["probability"].between(0, 1).all()
    phrases = scores["reasons"].str.split("; ").explode()
    assert phrases.str.match(r"^[+-] .+ is .+$").all()


def test_table_rows_without_label_are_rejected(tmp_path):
    rng = np.random.default_rng(0)
    n = 400
    visits = rng.integers(0, 20, size=n)
    label = np.where(rng.random(n) < visits / 20, "yes", "no").astype(object)
    label[:3] = ["", "perhaps", None]
    table = pd.DataFrame({"Lead": [f"L{i}" for i in range(n)], "Visits": visits, "Won?": label})
    path = tmp_path / "leads.csv"
    table.to_csv(path, index=False)
    result = runner.invoke(app, ["train", "--table", str(path), "--label", "Won?", "--id", "Lead", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["rows"] == {"read": 400, "used": 397, "rejected": 3}
    rejects = pd.read_csv(summary["rejects_file"])
    assert rejects["row"].tolist() == [2, 3, 4]


def test_table_missing_label_column_is_clear(tmp_path):
    path = tmp_path / "leads.csv"
    pd.DataFrame({"a": [1, 2]}).to_csv(path, index=False)
    result = runner.invoke(app, ["train", "--table", str(path), "--label", "Converted"])
    assert result.exit_code == 2
    assert "has no label column 'Converted'" in result.stdout
