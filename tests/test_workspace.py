"""The workspace contract: loading, coercion, rejects and their messages."""

import pandas as pd
import pytest

from leadlink.errors import WorkspaceError
from leadlink.features.workspace import load_workspace
from tests.conftest import utc, write_workspace


def contacts_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "contact_id": ["C1", "C2", "C1", None],
            "first_name": ["José", "Bob", "Copy", "NoId"],
            "created_at": ["2024-01-02T10:00:00", "yesterday", "2024-01-03", "2024-01-04"],
            "employee_count": ["50", "1.5", "", "7"],
            "Lieblings Farbe": ["rot", "blau", "grün", "gelb"],
        }
    )


def deals_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "deal_id": ["D1", "D2", "D3", "D4", "D5"],
            "contact_id": ["C1", "C9", "C2", "C2", "C2"],
            "created_at": ["2024-02-01", "2024-02-01", "2024-02-01", "2024-02-01", "2024-03-01"],
            "closed_at": ["2024-03-01", "2024-03-01", "", "2024-03-01", "2024-02-01"],
            "outcome": ["WON", "lost", "won", "maybe", "lost"],
            "amount": ["1,000", "", "", "", ""],
        }
    )


@pytest.fixture
def messy_workspace(tmp_path):
    return write_workspace(tmp_path / "ws", contacts=contacts_frame(), deals=deals_frame())


def problem(workspace, table, row):
    found = workspace.problems[(workspace.problems["table"] == table) & (workspace.problems["row"] == row)]
    assert len(found) == 1, f"expected one problem at {table} row {row}, found {found.to_dict('records')}"
    return found.iloc[0]


def test_contacts_counts(messy_workspace):
    workspace = load_workspace(messy_workspace)
    counts = workspace.counts["contacts"]
    # 4 rows read: the duplicate C1 (file row 4) and the row without id (row 5) are rejected.
    assert (counts.read, counts.used, counts.rejected) == (4, 2, 2)
    # "yesterday" and 1.5 employees are cleared; both rows stay.
    assert counts.values_cleared == 2


def test_duplicate_id_names_row_and_value(messy_workspace):
    row = problem(load_workspace(messy_workspace), "contacts", 4)
    assert row["column"] == "contact_id"
    assert row["value"] == "C1"
    assert "unique" in row["expected"]
    assert row["severity"] == "rejected"


def test_missing_id_rejected(messy_workspace):
    row = problem(load_workspace(messy_workspace), "contacts", 5)
    assert row["column"] == "contact_id"
    assert "required" in row["expected"]


def test_unparseable_optional_value_cleared(messy_workspace):
    workspace = load_workspace(messy_workspace)
    cleared = workspace.problems[workspace.problems["severity"] == "value_cleared"]
    assert set(zip(cleared["row"], cleared["column"], cleared["value"])) == {
        (3, "created_at", "yesterday"),
        (3, "employee_count", "1.5"),
    }
    c2 = workspace.contacts.set_index("contact_id").loc["C2"]
    assert pd.isna(c2["created_at"])


def test_naive_timestamp_read_as_utc(messy_workspace):
    contacts = load_workspace(messy_workspace).contacts.set_index("contact_id")
    assert contacts.loc["C1", "created_at"] == utc("2024-01-02T10:00:00")


def test_extra_columns_carried_through(messy_workspace):
    contacts = load_workspace(messy_workspace).contacts.set_index("contact_id")
    assert contacts.loc["C1", "Lieblings Farbe"] == "rot"


def test_deal_rules(messy_workspace):
    workspace = load_workspace(messy_workspace)
    reasons = {row.row: (row.column, row.expected) for row in workspace.problems[workspace.problems["table"] == "deals"].itertuples()}
    # File rows: D2=3 (unknown contact), D3=4 (won without close), D4=5 (bad outcome), D5=6 (closed before created).
    assert reasons[3] == ("contact_id", "a contact_id present in contacts")
    assert reasons[4][0] == "closed_at"
    assert reasons[5] == ("outcome", "one of won, lost, open")
    assert reasons[6] == ("closed_at", "a close timestamp not before created_at")
    assert workspace.deals["deal_id"].tolist() == ["D1"]


def test_outcome_case_and_amount_parsed(messy_workspace):
    deal = load_workspace(messy_workspace).deals.iloc[0]
    assert deal["outcome"] == "won"
    assert deal["amount"] == 1000.0


def test_missing_folder_raises(tmp_path):
    with pytest.raises(WorkspaceError, match="does not exist"):
        load_workspace(tmp_path / "nowhere")


def test_missing_contacts_table_raises(tmp_path):
    (tmp_path / "ws").mkdir()
    with pytest.raises(WorkspaceError, match="no 'contacts' table"):
        load_workspace(tmp_path / "ws")


def test_missing_required_column_raises(tmp_path):
    folder = write_workspace(tmp_path / "ws", contacts=pd.DataFrame({"id": ["C1"]}))
    with pytest.raises(WorkspaceError, match=r"missing required column\(s\) \['contact_id'\]"):
        load_workspace(folder)


def test_csv_and_parquet_together_raise(tmp_path):
    folder = write_workspace(tmp_path / "ws", contacts=pd.DataFrame({"contact_id": ["C1"]}))
    pd.DataFrame({"contact_id": ["C1"]}).to_parquet(folder / "contacts.parquet")
    with pytest.raises(WorkspaceError, match="keep exactly one file"):
        load_workspace(folder)


def test_parquet_timestamps_kept(tmp_path):
    folder = tmp_path / "ws"
    folder.mkdir()
    pd.DataFrame({"contact_id": ["C1"], "created_at": [utc("2024-05-01T09:30:00")]}).to_parquet(folder / "contacts.parquet")
    contacts = load_workspace(folder).contacts
    assert contacts.loc[0, "created_at"] == utc("2024-05-01T09:30:00")


def test_unknown_event_type_kept(tmp_path):
    folder = write_workspace(
        tmp_path / "ws",
        contacts=pd.DataFrame({"contact_id": ["C1"]}),
        events=pd.DataFrame({"contact_id": ["C1"], "event_type": ["Partner_Referral"], "occurred_at": ["2024-01-01"]}),
    )
    events = load_workspace(folder).events
    assert events["event_type"].tolist() == ["partner_referral"]


def test_latest_timestamp(messy_workspace):
    assert load_workspace(messy_workspace).latest_timestamp() == utc("2024-03-01")
