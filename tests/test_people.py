"""Several user records of one person: grouping, term frequencies, features."""

import pandas as pd
import pytest

from leadlink.features.identity import prepare_identity_frame
from leadlink.features.linkage import term_frequency_tables
from leadlink.features.people import assign_person_ids
from leadlink.features.pipeline import FeatureConfig, build_features
from tests.conftest import utc


@pytest.fixture
def users():
    return pd.DataFrame(
        {
            # U1 and U2 share a phone; U2 and U3 share a LinkedIn handle: one person.
            # U4 has the same name but no shared key: another person.
            "user_id": ["U1", "U2", "U3", "U4"],
            "first_name": ["Ana", "Ana", "Ana", "Ana"],
            "last_name": ["Silva", "Silva", "Silva", "Silva"],
            "phone": ["+1 415 555 0134", "(415) 555-0134", None, None],
            "linkedin_url": [None, "linkedin.com/in/ana-silva", "https://www.linkedin.com/in/Ana-Silva/", None],
            "personal_email": [None, None, None, "ana.s@yahoo.com"],
            "country": ["US"] * 4,
            "signed_up_at": [utc("2023-01-01"), utc("2023-06-01"), utc("2024-07-01"), utc("2023-01-01")],
            "last_active_at": [utc("2023-03-01"), utc("2024-01-01"), utc("2024-08-01"), utc("2023-02-01")],
            "active_days": [10, 50, 99, 5],
            "is_admin": [False, True, False, False],
            "plan": ["free", "team", "business", "free"],
        }
    )


def test_chained_keys_make_one_person(users):
    person = assign_person_ids(prepare_identity_frame(users, "user_id")).tolist()
    assert person == ["U1", "U1", "U1", "U4"]


def test_term_frequency_counts_people_once(users):
    prepared = prepare_identity_frame(users, "user_id")
    per_record = term_frequency_tables(prepared)["last_name"].set_index("last_name")["tf_last_name"]
    per_person = term_frequency_tables(prepared, assign_person_ids(prepared))["last_name"].set_index("last_name")["tf_last_name"]
    # Four records but two people, all named Silva: the share is 1 either way,
    # so compare first names against a second surname instead.
    assert per_record["silva"] == pytest.approx(1.0)
    assert per_person["silva"] == pytest.approx(1.0)
    mixed = pd.concat([users, users.head(1).assign(user_id="U5", last_name="Ng", phone="+1 212 555 0100", linkedin_url=None)])
    prepared = prepare_identity_frame(mixed, "user_id")
    shares = term_frequency_tables(prepared, assign_person_ids(prepared))["last_name"].set_index("last_name")["tf_last_name"]
    # People: {U1,U2,U3} Silva, U4 Silva, U5 Ng -> Silva 2 of 3, Ng 1 of 3.
    assert shares["silva"] == pytest.approx(2 / 3)
    assert shares["ng"] == pytest.approx(1 / 3)


def test_features_add_up_person_records_known_before(users):
    prepared = prepare_identity_frame(users, "user_id")
    users = users.assign(person_id=assign_person_ids(prepared).to_numpy())
    contacts = pd.DataFrame({"contact_id": ["C1"], "company_domain": ["new.com"], "email": ["ana@new.com"]})
    links = pd.DataFrame({"contact_id": ["C1"], "user_id": ["U1"], "match_probability": [0.99]})
    moments = pd.DataFrame({"contact_id": ["C1"], "as_of": pd.Series([utc("2024-06-01")], dtype="datetime64[ns, UTC]")})
    events = pd.DataFrame(columns=["contact_id", "event_type", "occurred_at", "url"]).astype({"occurred_at": "datetime64[ns, UTC]"})
    row = build_features(contacts, events, users, links, moments, FeatureConfig()).iloc[0]

    # U3 signed up after the moment and does not count; U1 and U2 do.
    assert row["previous_user"] == 1.0
    assert row["user_active_days"] == pytest.approx(10 + 50)
    assert row["user_is_admin"] == 1.0
    assert row["user_plan"] == "team"  # the plan of the most recently active record
    # Earliest sign-up 2023-01-01 to latest activity 2024-01-01.
    assert row["user_tenure_days"] == pytest.approx(365)
    assert row["days_since_user_active"] == pytest.approx(152)
