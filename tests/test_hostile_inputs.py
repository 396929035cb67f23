"""Inputs that once broke leadlink: each must now give a clear result."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from leadlink.cli import app
from leadlink.features.identity import prepare_identity_frame
from leadlink.features.workspace import load_workspace
from leadlink.training.dataset import resolve_as_of
from tests.conftest import utc, write_workspace

runner = CliRunner()


def test_trailing_comma_keeps_columns(tmp_path):
    folder = tmp_path / "ws"
    folder.mkdir()
    (folder / "contacts.csv").write_text("contact_id,first_name,last_name,email\nC1,Bob,Smith,bob@x.com,\nC2,Al,Jones,al@y.com,\n")
    contacts = load_workspace(folder).contacts
    assert contacts["contact_id"].tolist() == ["C1", "C2"]
    assert contacts["email"].tolist() == ["bob@x.com", "al@y.com"]


def test_overlong_row_rejected(tmp_path):
    folder = tmp_path / "ws"
    folder.mkdir()
    (folder / "contacts.csv").write_text("contact_id,first_name\nC1,Bob,EXTRA\nC2,Al\n")
    workspace = load_workspace(folder)
    assert workspace.contacts["contact_id"].tolist() == ["C2"]
    problem = workspace.problems.iloc[0]
    assert (problem["row"], problem["severity"]) == (2, "rejected")
    assert "fields" in problem["expected"]


@pytest.mark.parametrize("value", ["inf", "1e400", "-5", "1,5", "1.5", "100000.5", "1,2,3"])
def test_bad_counts_are_cleared(tmp_path, value):
    folder = write_workspace(tmp_path / "ws", contacts=pd.DataFrame({"contact_id": ["C1"], "employee_count": [value]}))
    workspace = load_workspace(folder)
    assert pd.isna(workspace.contacts.loc[0, "employee_count"])
    assert workspace.problems["value"].tolist() == [value]


@pytest.mark.parametrize(("value", "expected"), [("1,200", 1200), ("1,200,000", 1200000), ("42", 42)])
def test_grouped_thousands_are_read(tmp_path, value, expected):
    folder = write_workspace(tmp_path / "ws", contacts=pd.DataFrame({"contact_id": ["C1"], "employee_count": [value]}))
    assert load_workspace(folder).contacts.loc[0, "employee_count"] == expected


def test_header_case_and_spaces_matched(tmp_path):
    folder = tmp_path / "ws"
    folder.mkdir()
    (folder / "contacts.csv").write_text("Contact_ID, First_Name , email\nC1,Ana,ana@x.com\n")
    contacts = load_workspace(folder).contacts
    assert contacts.loc[0, "contact_id"] == "C1"
    assert contacts.loc[0, "first_name"] == "Ana"


def test_integer_ids_from_parquet_floats(tmp_path):
    folder = tmp_path / "ws"
    folder.mkdir()
    pd.DataFrame({"contact_id": [1.0, 2.0, np.nan]}).to_parquet(folder / "contacts.parquet")
    assert load_workspace(folder).contacts["contact_id"].tolist() == ["1", "2"]


def test_placeholder_names_prepare():
    users = pd.DataFrame({"user_id": ["U1", "U2", "U3"], "first_name": ["-", "123", "😀"], "last_name": [".", "Smith", None], "email": ["a.b@acme.com", None, "x@y.com"]})
    prepared = prepare_identity_frame(users, "user_id")
    assert prepared["first_name"].isna().all()
    assert prepared.loc[1, "last_name"] == "smith"


def test_default_as_of_ignores_future_dates(tmp_path):
    folder = write_workspace(
        tmp_path / "ws",
        contacts=pd.DataFrame({"contact_id": ["C1", "C2"], "created_at": ["2024-01-01", "2099-01-01"]}),
    )
    moment = resolve_as_of(load_workspace(folder), None, now=utc("2025-01-01"))
    assert moment == utc("2024-01-01") + pd.Timedelta(microseconds=1)


def test_empty_as_of_is_an_error(tmp_path):
    folder = write_workspace(tmp_path / "ws", contacts=pd.DataFrame({"contact_id": ["C1"], "created_at": ["2024-01-01"]}))
    result = runner.invoke(app, ["train", str(folder), "--as-of", ""])
    assert result.exit_code == 2
    assert "is not an ISO 8601 timestamp" in result.stdout


def test_markup_in_data_is_printed_as_text(tmp_path):
    folder = write_workspace(tmp_path / "ws", contacts=pd.DataFrame({"contact_id": ["[/x]", "[/x]"], "first_name": ["[bold]A[/bold]", "B"]}))
    result = runner.invoke(app, ["validate", str(folder)])
    assert result.exit_code == 1
    assert "value '[/x]'" in result.stdout


def test_validate_masks_contact_data_on_screen(tmp_path):
    folder = write_workspace(tmp_path / "ws", contacts=pd.DataFrame({"contact_id": ["john.doe@acme.com", "john.doe@acme.com"]}))
    result = runner.invoke(app, ["validate", str(folder)])
    assert "john.doe@acme.com" not in result.stdout
    assert "j***@acme.com" in result.stdout
    assert "john.doe@acme.com" in (folder / "rejects.csv").read_text()


def test_unwritable_rejects_path_is_clear(tmp_path):
    folder = write_workspace(tmp_path / "ws", contacts=pd.DataFrame({"contact_id": ["C1", "C1"]}))
    (tmp_path / "blocker").write_text("a file, not a folder")
    result = runner.invoke(app, ["validate", str(folder), "--rejects", str(tmp_path / "blocker" / "r.csv")])
    assert result.exit_code == 2
    assert "could not access" in result.stdout
    assert "Traceback" not in result.output


def test_bad_model_json_is_clear(tmp_path):
    folder = write_workspace(tmp_path / "ws", contacts=pd.DataFrame({"contact_id": ["C1"]}), users=pd.DataFrame({"user_id": ["U1"]}))
    bogus = tmp_path / "model.json"
    bogus.write_text(json.dumps({"hello": "world"}))
    result = runner.invoke(app, ["link", str(folder), "--out", str(tmp_path / "l.csv"), "--model-json", str(bogus)])
    assert result.exit_code == 2
    assert "is not a Splink model" in result.stdout


def test_invalid_model_name_rejected_before_training(tmp_path):
    result = runner.invoke(app, ["train", "--table", str(tmp_path / "x.csv"), "--label", "y", "--model-name", "a/b"])
    assert result.exit_code == 2
    assert "--model-name 'a/b' is invalid" in result.stdout


def lead_table(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    visits = rng.integers(0, 5000, size=n)
    return pd.DataFrame(
        {
            "Lead": [f"L{i}" for i in range(n)],
            "Visits": [f"{v:,}" for v in visits],
            "Email": [f"person{i % 50}@gmail.com" for i in range(n)],
            "Won": np.where(rng.random(n) < visits / 5000, "yes", "no"),
        }
    )


def test_table_with_grouped_numbers_and_emails(tmp_path):
    path = tmp_path / "leads.csv"
    lead_table().to_csv(path, index=False)
    result = runner.invoke(app, ["train", "--table", str(path), "--label", "Won", "--id", "Lead", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["model_uri"] == "models:/leadlink-table/1"
    assert summary["features"] == 1
    assert any("'Email'" in note and "personal data" in note for note in summary["notes"])


def test_unreadable_labels_listed(tmp_path):
    path = tmp_path / "leads.csv"
    lead_table().assign(Won=lambda t: np.where(t["Won"] == "yes", "ja", "nein")).to_csv(path, index=False)
    result = runner.invoke(app, ["train", "--table", str(path), "--label", "Won"])
    assert result.exit_code == 2
    assert "found values" in result.stdout
    assert "'ja'" in result.stdout


def test_single_class_table_message(tmp_path):
    path = tmp_path / "leads.csv"
    lead_table().assign(Won="yes").to_csv(path, index=False)
    result = runner.invoke(app, ["train", "--table", str(path), "--label", "Won"])
    assert result.exit_code == 2
    assert "Add more labelled rows with both outcomes" in result.stdout


def test_row_with_extra_field_rejected_not_file(tmp_path):
    folder = tmp_path / "ws"
    folder.mkdir()
    (folder / "contacts.csv").write_text("contact_id,first_name\nc1,Ann\nc2,Bob,extra\nc3,Cy\n")
    workspace = load_workspace(folder)
    assert workspace.contacts["contact_id"].tolist() == ["c1", "c3"]
    assert workspace.problems[["row", "severity"]].values.tolist() == [[3, "rejected"]]


def test_shared_office_phone_does_not_merge_people():
    from leadlink.features.people import MAX_RECORDS_PER_KEY, assign_person_ids

    n = MAX_RECORDS_PER_KEY + 2
    users = pd.DataFrame({"user_id": [f"U{i}" for i in range(n)], "phone": ["+1 212 555 0100"] * n})
    people = assign_person_ids(prepare_identity_frame(users, "user_id"))
    assert people.nunique() == n


def test_same_file_for_links_and_pairs_rejected(tmp_path):
    folder = write_workspace(tmp_path / "ws", contacts=pd.DataFrame({"contact_id": ["C1"]}), users=pd.DataFrame({"user_id": ["U1"]}))
    out = tmp_path / "same.csv"
    result = runner.invoke(app, ["link", str(folder), "--out", str(out), "--all-pairs", str(out)])
    assert result.exit_code == 2
    assert "give the pairs their own file" in result.stdout
