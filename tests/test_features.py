"""Point-in-time features with values worked out by hand."""

import math

import pandas as pd
import pytest

from leadlink.features.pipeline import FeatureConfig, build_features, feature_specs
from tests.conftest import utc

AS_OF = utc("2024-06-01")


def days_before(days: float) -> pd.Timestamp:
    return AS_OF - pd.Timedelta(days=days)


@pytest.fixture
def contacts():
    return pd.DataFrame(
        {
            "contact_id": ["C1", "C2", "C3"],
            "job_title": ["VP Sales", "MBA Student", "Data Analyst"],
            "email": ["ana@new.com", "kim@gmail.com", "lee@acme.com"],
            "company_domain": ["new.com", None, "acme.com"],
            "company_name": ["New", None, "Acme"],
            "industry": ["Software", None, None],
            "employee_count": [200, None, 50],
            "annual_revenue": [1_000_000.0, None, None],
            "country": ["US", "DE", "US"],
            "phone": ["+14155550134", None, None],
            "linkedin_url": [None, None, None],
            "created_at": [utc("2024-01-01"), utc("2024-05-01"), utc("2024-02-01")],
        }
    )


@pytest.fixture
def events():
    rows = [
        ("C1", "demo_request", days_before(30), None),
        ("C1", "page_view", days_before(60), "https://www.example.com/pricing"),
        ("C1", "page_view", days_before(1), "https://www.example.com/"),
        ("C1", "email_open", AS_OF, None),  # at the moment: not strictly before
        ("C2", "unsubscribe", days_before(10), None),
    ]
    return pd.DataFrame(rows, columns=["contact_id", "event_type", "occurred_at", "url"])


@pytest.fixture
def users():
    return pd.DataFrame(
        {
            "user_id": ["U1", "U2", "U3"],
            "company_domain": ["old.com", "x.com", "acme.com"],
            "email": ["ana@old.com", "kim@x.com", "lee@acme.com"],
            "company_name": ["Old", "X", "Acme"],
            "signed_up_at": [utc("2023-01-01"), utc("2024-07-01"), utc("2024-01-01")],
            "last_active_at": [utc("2024-01-01"), utc("2024-08-01"), utc("2024-12-31")],
            "active_days": [100, 5, 100],
            "is_admin": [True, False, False],
            "plan": ["team", "free", "business"],
        }
    )


@pytest.fixture
def links():
    return pd.DataFrame({"contact_id": ["C1", "C2", "C3"], "user_id": ["U1", "U2", "U3"], "match_probability": [0.99, 0.95, 0.9]})


def features_at(contacts, events, users, links, as_of=AS_OF):
    moments = pd.DataFrame({"contact_id": contacts["contact_id"], "as_of": pd.Series([as_of] * len(contacts), dtype="datetime64[ns, UTC]")})
    return build_features(contacts, events, users, links, moments, FeatureConfig(half_life_days=30)).set_index(contacts["contact_id"])


def test_columns_follow_specs(contacts, events, users, links):
    features = features_at(contacts, events, users, links)
    assert list(features.columns) == [spec.name for spec in feature_specs()]


def test_decay_halves_per_half_life(contacts, events, users, links):
    c1 = features_at(contacts, events, users, links).loc["C1"]
    assert c1["decayed_demo_request"] == pytest.approx(0.5)
    assert c1["decayed_pricing_page_view"] == pytest.approx(0.25)
    assert c1["decayed_home_page_view"] == pytest.approx(0.5 ** (1 / 30))


def test_event_at_moment_excluded(contacts, events, users, links):
    c1 = features_at(contacts, events, users, links).loc["C1"]
    assert c1["decayed_email_open"] == 0.0


def test_recency_and_counts(contacts, events, users, links):
    c1 = features_at(contacts, events, users, links).loc["C1"]
    assert c1["days_since_demo_request"] == pytest.approx(30)
    assert c1["days_since_last_event"] == pytest.approx(1)
    # The demo request 30 days back and the home page visit yesterday.
    assert c1["events_last_30_days"] == 2
    # Per kind, before the moment: one demo request, one pricing view, one home page view; the open at the moment is excluded.
    assert c1["count_demo_request"] == 1
    assert c1["count_pricing_page_view"] == 1
    assert c1["count_home_page_view"] == 1
    assert c1["count_email_open"] == 0
    expected_score = 30 * 0.5 + 10 * 0.25 + 0.5 * 0.5 ** (1 / 30)
    assert c1["engagement_score"] == pytest.approx(expected_score)


def test_unsubscribe_lowers_score(contacts, events, users, links):
    c2 = features_at(contacts, events, users, links).loc["C2"]
    assert c2["engagement_score"] == pytest.approx(-15 * 0.5 ** (10 / 30))


def test_future_events_do_not_change_features(contacts, events, users, links):
    before = features_at(contacts, events, users, links)
    future = pd.DataFrame(
        [
            ("C1", "demo_request", AS_OF + pd.Timedelta(days=1), None),
            ("C2", "trial_signup", AS_OF + pd.Timedelta(seconds=1), None),
            ("C3", "pricing_page_view", AS_OF + pd.Timedelta(days=40), None),
        ],
        columns=events.columns,
    )
    after = features_at(contacts, pd.concat([events, future], ignore_index=True), users, links)
    pd.testing.assert_frame_equal(before, after)


def test_fit_features(contacts, events, users, links):
    features = features_at(contacts, events, users, links)
    assert features.loc["C1", "seniority_level"] == 8
    assert features.loc["C2", "is_student"] == 1.0
    assert features.loc["C2", "email_kind"] == "personal"
    assert features.loc["C1", "log_annual_revenue"] == pytest.approx(6.0)
    assert features.loc["C1", "contact_age_days"] == pytest.approx(152)


def test_previous_user_at_other_company(contacts, events, users, links):
    c1 = features_at(contacts, events, users, links).loc["C1"]
    assert c1["previous_user"] == 1.0
    assert c1["job_change"] == 1.0
    assert c1["power_user"] == 1.0
    assert c1["user_is_admin"] == 1.0
    assert c1["user_plan"] == "team"
    assert c1["user_tenure_days"] == pytest.approx(365)
    # 2024-01-01 to 2024-06-01: 31 + 29 + 31 + 30 + 31 days.
    assert c1["days_since_user_active"] == pytest.approx(152)


def test_signup_after_moment_is_not_previous_user(contacts, events, users, links):
    c2 = features_at(contacts, events, users, links).loc["C2"]
    assert c2["previous_user"] == 0.0
    assert c2["match_probability"] == 0.0
    assert math.isnan(c2["job_change"])


def test_activity_after_moment_is_scaled(contacts, events, users, links):
    c3 = features_at(contacts, events, users, links).loc["C3"]
    # Account life 2024-01-01..2024-12-31 is 365 days, 152 of them before the moment.
    assert c3["user_active_days"] == pytest.approx(100 * 152 / 365)
    assert c3["job_change"] == 0.0
    assert c3["days_since_user_active"] == pytest.approx(0)


def test_link_below_threshold_not_previous(contacts, events, users, links):
    weak = links.assign(match_probability=[0.5, 0.5, 0.5])
    features = features_at(contacts, events, users, weak)
    assert features["previous_user"].sum() == 0


def test_no_links_no_events(contacts, users):
    empty_links = pd.DataFrame(columns=["contact_id", "user_id", "match_probability"])
    empty_events = pd.DataFrame(columns=["contact_id", "event_type", "occurred_at", "url"]).astype({"occurred_at": "datetime64[ns, UTC]"})
    features = features_at(contacts, empty_events, users, empty_links)
    assert features["previous_user"].sum() == 0
    assert features["engagement_score"].sum() == 0
    assert features["days_since_last_event"].isna().all()
