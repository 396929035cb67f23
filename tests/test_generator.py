"""Tests for the demo workspace generator on small workspaces (at most 10,000 contacts)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from leadlink.generator import generate_workspace

END = pd.Timestamp("2026-06-30T00:00:00Z")
START = END - pd.DateOffset(months=24)
SMALL = 2_000
SEED = 7
TABLES = ("contacts", "users", "events", "deals")
EVIDENCE = {"name", "personal_email", "phone", "linkedin", "email_local", "city", "company"}
PERTURBATIONS = {"nickname", "typo", "accent_stripped", "new_surname", "gmail_dots", "plus_tag", "phone_format",
                 "linkedin_format", "case"}
KNOWN_EVENT_TYPES = {"page_view", "product_page_view", "pricing_page_view", "demo_request", "trial_signup",
                     "email_open", "email_click", "webinar_registered", "webinar_attended", "content_download",
                     "chat", "form_submit", "unsubscribe"}
# Largest workspace these tests may generate. 100,000 contacts (about 9 s on a 2-core
# machine) belong in a benchmark, not in the test suite.
MAX_TEST_CONTACTS = 10_000


def generate(out_dir: Path, n_contacts: int, **options) -> dict:
    return generate_workspace(out_dir, n_contacts, **options)


def read_workspace(out_dir: Path, file_format: str = "parquet") -> dict[str, pd.DataFrame]:
    reader = pd.read_parquet if file_format == "parquet" else pd.read_csv
    frames = {name: reader(out_dir / f"{name}.{file_format}") for name in TABLES}
    frames["links"] = pd.read_parquet(out_dir / "truth" / "links.parquet")
    frames["truth_deals"] = pd.read_parquet(out_dir / "truth" / "deals.parquet")
    return frames


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> dict:
    out_dir = tmp_path_factory.mktemp("workspace")
    summary = generate(out_dir, SMALL, seed=SEED)
    return {"dir": out_dir, "summary": summary, **read_workspace(out_dir)}


@pytest.fixture(scope="module")
def linked_pairs(workspace) -> pd.DataFrame:
    """Truth links joined with the contact (suffix _c) and the user (suffix _u)."""
    pairs = workspace["links"].merge(workspace["contacts"], on="contact_id")
    return pairs.merge(workspace["users"], on="user_id", suffixes=("_c", "_u"))


def split_words(values: pd.Series) -> list[set[str]]:
    return [set(value.split(",")) - {""} for value in values]


# --------------------------------------------------------------------------- determinism


def test_generator_is_deterministic(workspace, tmp_path):
    generate(tmp_path, SMALL, seed=SEED)
    again = read_workspace(tmp_path)
    for name in (*TABLES, "links", "truth_deals"):
        pd.testing.assert_frame_equal(again[name], workspace[name], obj=name)


def test_generator_differs_between_seeds(workspace, tmp_path):
    generate(tmp_path, SMALL, seed=SEED + 1)
    other = pd.read_parquet(tmp_path / "contacts.parquet")
    assert not other["email"].equals(workspace["contacts"]["email"])


# --------------------------------------------------------------------------- ids and references


@pytest.mark.parametrize(("table", "column"), [("contacts", "contact_id"), ("users", "user_id"),
                                               ("deals", "deal_id")])
def test_ids_are_unique(workspace, table, column):
    assert workspace[table][column].is_unique


def test_contact_count_matches_request(workspace):
    assert len(workspace["contacts"]) == SMALL


def test_events_reference_contacts(workspace):
    assert workspace["events"]["contact_id"].isin(workspace["contacts"]["contact_id"]).all()


def test_deals_reference_contacts(workspace):
    assert workspace["deals"]["contact_id"].isin(workspace["contacts"]["contact_id"]).all()


def test_truth_links_reference_contacts(workspace):
    assert workspace["links"]["contact_id"].isin(workspace["contacts"]["contact_id"]).all()


def test_truth_links_reference_users(workspace):
    assert workspace["links"]["user_id"].isin(workspace["users"]["user_id"]).all()


def test_truth_links_are_one_to_one(workspace):
    assert workspace["links"]["contact_id"].is_unique
    assert workspace["links"]["user_id"].is_unique


def test_truth_deals_cover_every_deal(workspace):
    truth = workspace["truth_deals"]
    assert truth["deal_id"].tolist() == workspace["deals"]["deal_id"].tolist()
    assert truth["contact_id"].tolist() == workspace["deals"]["contact_id"].tolist()


def test_true_probability_between_zero_and_one(workspace):
    probability = workspace["truth_deals"]["true_probability"]
    assert probability.notna().all()
    assert probability.between(0, 1, inclusive="neither").all()


# --------------------------------------------------------------------------- timestamps


TIMESTAMP_COLUMNS = [("contacts", "created_at"), ("users", "signed_up_at"), ("users", "last_active_at"),
                     ("events", "occurred_at"), ("deals", "created_at"), ("deals", "closed_at")]


@pytest.mark.parametrize(("table", "column"), TIMESTAMP_COLUMNS)
def test_timestamps_are_utc_nanoseconds(workspace, table, column):
    assert str(workspace[table][column].dtype) == "datetime64[ns, UTC]"


@pytest.mark.parametrize(("table", "column"), TIMESTAMP_COLUMNS)
def test_timestamps_fall_in_window(workspace, table, column):
    values = workspace[table][column].dropna()
    assert (values <= END).all()
    assert (values >= START).all()


def test_last_active_not_before_signup(workspace):
    users = workspace["users"]
    assert (users["last_active_at"] >= users["signed_up_at"]).all()


def test_active_days_within_activity_span(workspace):
    users = workspace["users"]
    days_between = (users["last_active_at"] - users["signed_up_at"]).dt.days
    assert (users["active_days"] >= 0).all()
    assert (users["active_days"] <= days_between).all()


def test_deals_start_after_their_contact(workspace):
    deals = workspace["deals"].merge(workspace["contacts"][["contact_id", "created_at"]], on="contact_id",
                                     suffixes=("", "_contact"))
    assert (deals["created_at"] > deals["created_at_contact"]).all()


def test_events_start_near_contact_creation(workspace):
    events = workspace["events"].merge(workspace["contacts"][["contact_id", "created_at"]], on="contact_id")
    assert (events["occurred_at"] >= events["created_at"] - pd.Timedelta(days=5)).all()


def test_closed_deal_cycle_is_7_to_180_days(workspace):
    closed = workspace["deals"].dropna(subset=["closed_at"])
    cycle = closed["closed_at"] - closed["created_at"]
    assert (cycle >= pd.Timedelta(days=7)).all()
    assert (cycle <= pd.Timedelta(days=180)).all()


# --------------------------------------------------------------------------- deals


def test_outcomes_are_known_values(workspace):
    assert set(workspace["deals"]["outcome"]) <= {"won", "lost", "open"}


def test_open_deals_have_no_closed_at(workspace):
    deals = workspace["deals"]
    assert deals.loc[deals["outcome"] == "open", "closed_at"].isna().all()


def test_closed_deals_have_closed_at(workspace):
    deals = workspace["deals"]
    assert deals.loc[deals["outcome"] != "open", "closed_at"].notna().all()


def test_closed_win_rate_is_realistic(workspace):
    closed = workspace["deals"].loc[workspace["deals"]["outcome"] != "open"]
    win_rate = (closed["outcome"] == "won").mean()
    assert 0.2 <= win_rate <= 0.4, win_rate


def test_summary_win_rate_matches_tables(workspace):
    closed = workspace["deals"].loc[workspace["deals"]["outcome"] != "open"]
    assert workspace["summary"]["closed_win_rate"] == pytest.approx((closed["outcome"] == "won").mean())


def test_deal_share_is_about_thirty_percent(workspace):
    share = workspace["deals"]["contact_id"].nunique() / len(workspace["contacts"])
    assert 0.2 <= share <= 0.4, share


def test_won_deals_are_followed_by_events(workspace):
    won = workspace["deals"].loc[workspace["deals"]["outcome"] == "won", ["contact_id", "closed_at"]]
    later = workspace["events"].merge(won, on="contact_id")
    assert (later["occurred_at"] > later["closed_at"]).any()


# --------------------------------------------------------------------------- events and values


def test_unknown_event_type_is_rare(workspace):
    unknown = ~workspace["events"]["event_type"].isin(KNOWN_EVENT_TYPES)
    assert 0 < unknown.mean() < 0.02, unknown.mean()


def test_events_per_contact_average_about_twenty(workspace):
    mean = len(workspace["events"]) / len(workspace["contacts"])
    assert 15 <= mean <= 25, mean


@pytest.mark.parametrize("table", TABLES)
def test_missing_values_are_nulls_not_strings(workspace, table):
    frame = workspace[table]
    text_columns = frame.select_dtypes(include=["object", "string", "str"]).columns
    for column in text_columns:
        assert not frame[column].isin(["nan", "None", "NaN", "<NA>", ""]).any(), column


def test_contacts_have_missing_phones(workspace):
    share = workspace["contacts"]["phone"].isna().mean()
    assert 0.3 <= share <= 0.5, share


def test_names_contain_accents(workspace):
    names = pd.concat([workspace["users"]["last_name"], workspace["users"]["first_name"]])
    assert names.str.contains(r"[^\x00-\x7f]").any()


# --------------------------------------------------------------------------- truth links


def test_job_change_share_in_range(workspace):
    share = (workspace["links"]["scenario"] == "job_change").sum() / len(workspace["contacts"])
    assert 0.13 <= share <= 0.23, share


def test_same_company_share_in_range(workspace):
    share = (workspace["links"]["scenario"] == "same_company").sum() / len(workspace["contacts"])
    assert 0.03 <= share <= 0.09, share


def test_evidence_uses_known_fields(workspace):
    used = set().union(*split_words(workspace["links"]["evidence"]))
    assert used <= EVIDENCE


def test_perturbations_use_known_names(workspace):
    used = set().union(*split_words(workspace["links"]["perturbations"]))
    assert used <= PERTURBATIONS


def test_some_links_carry_only_the_name(workspace):
    assert (workspace["links"]["evidence"] == "name").any()


def test_job_changers_work_elsewhere(linked_pairs):
    changers = linked_pairs.loc[linked_pairs["scenario"] == "job_change"].dropna(
        subset=["company_domain_c", "company_domain_u"])
    assert (changers["company_domain_c"] != changers["company_domain_u"]).all()


def last_seven_digits(phone: str) -> str:
    without_extension = re.sub(r"\s*ext\.\s*\d+$", "", phone)
    return re.sub(r"\D", "", without_extension)[-7:]


def test_phone_evidence_digits_agree(linked_pairs):
    rows = linked_pairs.loc[linked_pairs["evidence"].str.contains("phone")]
    assert len(rows) > 0
    for contact_phone, user_phone in zip(rows["phone_c"], rows["phone_u"]):
        assert last_seven_digits(contact_phone) == last_seven_digits(user_phone), (contact_phone, user_phone)


def without_local_dots(address: str) -> str:
    local, domain = address.lower().split("@")
    return f"{local.replace('.', '')}@{domain}"


def test_gmail_dots_rows_agree_without_dots(linked_pairs):
    rows = linked_pairs.loc[linked_pairs["perturbations"].str.contains("gmail_dots")]
    assert len(rows) > 0
    for contact_email, user_email in zip(rows["personal_email_c"], rows["personal_email_u"]):
        assert contact_email != user_email
        assert without_local_dots(contact_email) == without_local_dots(user_email)


def test_plus_tag_rows_agree_without_tag(linked_pairs):
    rows = linked_pairs.loc[linked_pairs["perturbations"].str.contains("plus_tag")]
    assert len(rows) > 0
    for contact_email, user_email in zip(rows["personal_email_c"], rows["personal_email_u"]):
        assert contact_email != user_email
        assert re.sub(r"\+[^@]*@", "@", contact_email) == user_email


def test_linkedin_evidence_shares_profile_slug(linked_pairs):
    rows = linked_pairs.loc[linked_pairs["evidence"].str.contains("linkedin")]
    assert len(rows) > 0
    slug = r"/in/([^/?]+)"
    contact_slugs = rows["linkedin_url_c"].str.extract(slug)[0].str.lower()
    user_slugs = rows["linkedin_url_u"].str.extract(slug)[0].str.lower()
    assert (contact_slugs == user_slugs).all()


def test_new_surname_rows_lack_name_evidence(linked_pairs):
    rows = linked_pairs.loc[linked_pairs["perturbations"].str.contains("new_surname")]
    assert not rows["evidence"].str.contains("name").any()


def test_common_names_repeat_among_unlinked(tmp_path):
    # 2,000 contacts are too few for a name to recur often, so this test uses 10,000.
    generate(tmp_path, MAX_TEST_CONTACTS, seed=SEED)
    frames = read_workspace(tmp_path)
    contacts = frames["contacts"].loc[~frames["contacts"]["contact_id"].isin(frames["links"]["contact_id"])]
    users = frames["users"].loc[~frames["users"]["user_id"].isin(frames["links"]["user_id"])]
    full_names = pd.concat([contacts["first_name"] + " " + contacts["last_name"],
                            users["first_name"] + " " + users["last_name"]])
    counts = full_names.value_counts()
    assert counts.iloc[0] >= 4, counts.head()
    assert (counts >= 3).sum() >= 10, counts.head(10)


# --------------------------------------------------------------------------- output files


def test_csv_reads_back_with_same_row_counts(workspace, tmp_path):
    generate(tmp_path, SMALL, seed=SEED, file_format="csv")
    frames = read_workspace(tmp_path, "csv")
    for name in TABLES:
        assert len(frames[name]) == len(workspace[name]), name


def test_csv_timestamps_parse_as_utc(tmp_path):
    generate(tmp_path, 200, seed=SEED, file_format="csv")
    deals = pd.read_csv(tmp_path / "deals.csv")
    closed_at = pd.to_datetime(deals["closed_at"], utc=True, format="ISO8601")
    created_at = pd.to_datetime(deals["created_at"], utc=True, format="ISO8601")
    assert deals["created_at"].str.endswith("Z").all()
    assert closed_at.isna().sum() == (deals["outcome"] == "open").sum()
    assert created_at.notna().all()


def test_switching_format_removes_old_tables(tmp_path):
    generate(tmp_path, 100, seed=SEED)
    generate(tmp_path, 100, seed=SEED, file_format="csv")
    assert not list(tmp_path.glob("*.parquet"))
    assert len(list(tmp_path.glob("*.csv"))) == len(TABLES)


def test_rejects_directory_with_other_files(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="notes.txt"):
        generate(tmp_path, 100)
    assert (tmp_path / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(("options", "message"), [
    ({"file_format": "json"}, "file_format"),
    ({"end": "yesterday-ish"}, "end"),
    ({"n_contacts": 0}, "n_contacts"),
])
def test_rejects_invalid_arguments(tmp_path, options, message):
    arguments = {"n_contacts": 100, **options}
    with pytest.raises(ValueError, match=message):
        generate(tmp_path / "out", **arguments)


def test_summary_reports_row_counts(workspace):
    rows = workspace["summary"]["rows"]
    for name in TABLES:
        assert rows[name] == len(workspace[name]), name
    assert rows["truth_links"] == len(workspace["links"])


def test_summary_oracle_auc_is_informative(workspace):
    assert workspace["summary"]["oracle_auc"] > 0.7
