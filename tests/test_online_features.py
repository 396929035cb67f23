"""The single-record feature path, compared with the batch pipeline and with values worked out by hand.

The batch pipeline (pandas merges and DuckDB SQL) is the reference: every
feature of every moment must be equal, on a generated workspace and on users
edited to have several accounts per person and missing activity fields.
"""

import math

import numpy as np
import pandas as pd
import pytest

from leadlink.features.linkage import link_workspace, with_person_ids
from leadlink.features.online import OnlineFeatureBuilder, epoch_nanoseconds, event_key
from leadlink.features.pipeline import ENGAGEMENT_KEYS, FeatureConfig, build_features, engagement_features, feature_specs
from leadlink.features.workspace import load_workspace
from tests.conftest import utc

CONFIG = FeatureConfig()
AS_OF = utc("2026-06-01")
CATEGORICAL = [spec.name for spec in feature_specs() if spec.kind == "categorical"]

# Page-view URLs with the engagement key worked out from the SQL patterns. DuckDB
# matches with RE2: "$" is the end of the text only, and (?i) folds the long s
# "ſ" with "s" but not the Turkish "İ" or "ı" with "i".
PAGE_VIEW_KEYS = [
    (None, "home_page_view"),
    ("", "home_page_view"),
    ("/", "home_page_view"),
    ("/?utm_source=ad", "home_page_view"),
    ("https://www.example.com", "home_page_view"),
    ("HTTPS://WWW.EXAMPLE.COM/?ref=1", "home_page_view"),
    ("/pricing", "pricing_page_view"),
    ("/pricing/", "pricing_page_view"),
    ("/PRICING", "pricing_page_view"),
    ("/pricing?plan=team", "pricing_page_view"),
    ("https://www.example.com/en/pricing", "pricing_page_view"),
    ("/pricingplans", "page_view"),
    ("/pricing#faq", "page_view"),
    ("/pricing\n", "page_view"),
    ("/pricing\r\n", "page_view"),
    ("/\n", "page_view"),
    ("/prİcing", "page_view"),
    ("/prıcing", "page_view"),
    ("/products", "product_page_view"),
    ("/Features/reports", "product_page_view"),
    ("/solutions?industry=retail", "product_page_view"),
    ("/ſolutions", "product_page_view"),
    ("/integrations/slack", "product_page_view"),
    ("/blog/product", "product_page_view"),
    ("/productivity", "page_view"),
    ("/features-tour", "page_view"),
    ("https://www.example.com//", "page_view"),
    ("www.example.com", "page_view"),
]


# ---------------------------------------------------------------------------
# Workspace fixtures
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A generated workspace with its batch links and the person ids found while linking."""
    from leadlink.generator import generate_workspace

    folder = tmp_path_factory.mktemp("online") / "workspace"
    generate_workspace(folder, n_contacts=3000, seed=4)
    loaded = load_workspace(folder)
    links, _, result = link_workspace(loaded.contacts, loaded.users)
    users = with_person_ids(loaded.users, result)
    return {"contacts": loaded.contacts, "events": loaded.events, "users": users, "links": links}


@pytest.fixture(scope="module")
def events(workspace):
    """The workspace's events plus page views with awkward URLs, unknown types and missing values."""
    linked = workspace["links"]["contact_id"].tolist()[:40]
    rows = []
    for position, contact_id in enumerate(linked):
        url, _ = PAGE_VIEW_KEYS[position % len(PAGE_VIEW_KEYS)]
        rows.append((contact_id, "page_view", AS_OF - pd.Timedelta(days=position + 1), url))
        rows.append((contact_id, "pricing_view", AS_OF - pd.Timedelta(hours=position + 1), None))
        rows.append((contact_id, None, AS_OF - pd.Timedelta(days=2 * position + 3), None))
        rows.append((contact_id, "demo_request", pd.NaT, None))
    extra = pd.DataFrame(rows, columns=["contact_id", "event_type", "occurred_at", "url"])
    extra["occurred_at"] = pd.to_datetime(extra["occurred_at"], utc=True)
    return pd.concat([workspace["events"][["contact_id", "event_type", "occurred_at", "url"]], extra], ignore_index=True)


def shared_people(users: pd.DataFrame, links: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Give linked users extra accounts of the same person and blank some activity fields.

    Linked users take unlinked users into their person, two each while they
    last and one each after that. About a tenth of the values of each activity
    column are blanked, and some accounts are last active before they signed up.
    """
    rng = np.random.default_rng(seed)
    users = users.copy()
    linked = links["user_id"].drop_duplicates().tolist()
    spare = users.loc[~users["user_id"].isin(linked), "user_id"].sample(frac=1.0, random_state=seed).tolist()
    person_of = dict(zip(users["user_id"], users["person_id"]))
    doubles = len(spare) - len(linked)
    for position, user_id in enumerate(linked):
        count = 2 if position < doubles else 1
        for _ in range(min(count, len(spare))):
            person_of[spare.pop()] = person_of[user_id]
    users["person_id"] = users["user_id"].map(person_of)

    for column in ("signed_up_at", "last_active_at", "active_days", "is_admin", "plan"):
        users.loc[rng.random(len(users)) < 0.1, column] = None
    backwards = rng.random(len(users)) < 0.05
    users.loc[backwards, "last_active_at"] = users.loc[backwards, "signed_up_at"] - pd.Timedelta(days=5)
    return users


@pytest.fixture(scope="module", params=["linked", "shared_people", "no_person_ids"])
def users(request, workspace):
    """The users table as linking left it, with several accounts per person, and without person ids."""
    if request.param == "linked":
        return workspace["users"]
    if request.param == "shared_people":
        return shared_people(workspace["users"], workspace["links"], seed=7)
    return workspace["users"].drop(columns="person_id")


@pytest.fixture(scope="module")
def moments(workspace, events):
    """About 500 contacts, half of them linked, each at several moments.

    The moments fall on event times (which excludes that event), on user
    sign-up and last-activity times of the person's accounts, one second and
    three days either side of them, and on a fixed late date.
    """
    contacts, links = workspace["contacts"], workspace["links"]
    linked = links["contact_id"].drop_duplicates().sample(n=250, random_state=1).tolist()
    others = contacts.loc[~contacts["contact_id"].isin(linked), "contact_id"].sample(n=250, random_state=2).tolist()
    user_of = dict(zip(links["contact_id"], links["user_id"]))
    users = workspace["users"].set_index("user_id")
    times_of_person = users.reset_index().groupby("person_id")[["signed_up_at", "last_active_at"]].agg(list)
    events_of = events.dropna(subset=["occurred_at"]).groupby("contact_id")["occurred_at"].agg(list)

    rows = []
    for contact_id in linked + others:
        times = [AS_OF]
        times += events_of.get(contact_id, [])[:3]
        if contact_id in user_of:
            person = users.at[user_of[contact_id], "person_id"]
            for column in ("signed_up_at", "last_active_at"):
                for time in times_of_person.at[person, column]:
                    if pd.notna(time):
                        times += [time, time + pd.Timedelta(seconds=1), time - pd.Timedelta(days=3)]
        rows += [(contact_id, time) for time in times]
    frame = pd.DataFrame(rows, columns=["contact_id", "as_of"])
    frame["as_of"] = pd.to_datetime(frame["as_of"], utc=True)
    return frame


def comparable(features: pd.DataFrame) -> pd.DataFrame:
    """Return features with float numbers and object categories, every missing category as None."""
    columns = {}
    for name in features.columns:
        if name in CATEGORICAL:
            columns[name] = pd.Series([None if pd.isna(value) else value for value in features[name].tolist()], dtype=object)
        else:
            columns[name] = features[name].astype("float64").reset_index(drop=True)
    return pd.DataFrame(columns)


def online_rows(builder, contacts, events, links, moments) -> pd.DataFrame:
    contact_of = {row["contact_id"]: row for row in contacts.to_dict("records")}
    events_of = {key: group.to_dict("records") for key, group in events.groupby("contact_id")}
    link_of = {row["contact_id"]: row for row in links.to_dict("records")}
    rows = [
        builder.features(contact_of[contact_id], events_of.get(contact_id, []), link_of.get(contact_id), as_of)
        for contact_id, as_of in zip(moments["contact_id"], moments["as_of"])
    ]
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------
# Equality with the batch pipeline
# ---------------------------------------------------------------------------


def test_online_equals_batch(workspace, events, users, moments):
    contacts, links = workspace["contacts"], workspace["links"]
    batch = build_features(contacts, events, users, links, moments, CONFIG)
    online = online_rows(OnlineFeatureBuilder(users, CONFIG), contacts, events, links, moments)
    pd.testing.assert_frame_equal(comparable(online), comparable(batch), check_exact=False, rtol=1e-9)


def test_online_moments_cover_previous_users(workspace, events, moments):
    # Guards the equality test: without previous users it would prove little.
    batch = build_features(workspace["contacts"], events, workspace["users"], workspace["links"], moments, CONFIG)
    assert batch["previous_user"].sum() >= 100


def test_online_columns_follow_specs(workspace):
    builder = OnlineFeatureBuilder(workspace["users"], CONFIG)
    row = builder.features({"contact_id": "c"}, [], None, AS_OF)
    assert list(row) == [spec.name for spec in feature_specs()]


def test_online_other_config_equals_batch(workspace, events, moments):
    config = FeatureConfig(half_life_days=7.5, match_threshold=0.95, power_user_active_days=20, event_weights={"demo_request": 50.0, "chat": -2.0})
    contacts, users, links = workspace["contacts"], workspace["users"], workspace["links"]
    batch = build_features(contacts, events, users, links, moments, config)
    online = online_rows(OnlineFeatureBuilder(users, config), contacts, events, links, moments)
    pd.testing.assert_frame_equal(comparable(online), comparable(batch), check_exact=False, rtol=1e-9)


# ---------------------------------------------------------------------------
# Page kinds
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "expected"), PAGE_VIEW_KEYS)
def test_page_kind_online(url, expected):
    assert event_key("page_view", url) == expected


@pytest.mark.parametrize(("url", "expected"), PAGE_VIEW_KEYS)
def test_page_kind_sql(url, expected):
    events = pd.DataFrame(
        {"contact_id": ["c"], "event_type": ["page_view"], "occurred_at": [AS_OF - pd.Timedelta(days=1)], "url": pd.array([url], dtype="string")}
    )
    moments = pd.DataFrame({"contact_id": ["c"], "as_of": [AS_OF]})
    features = engagement_features(events, moments, CONFIG)
    assert features.at[0, f"count_{expected}"] == 1.0


def test_event_key_unknown_type_is_other():
    assert event_key("pricing_view", "/pricing") == "other"


def test_event_key_missing_type_is_other():
    assert event_key(None, None) == "other"


def test_event_key_known_type_kept():
    assert event_key("product_page_view", None) == "product_page_view"


# ---------------------------------------------------------------------------
# Engagement by hand
# ---------------------------------------------------------------------------


def engagement(events: list[tuple], config: FeatureConfig = CONFIG) -> dict:
    builder = OnlineFeatureBuilder(pd.DataFrame({"user_id": pd.Series(dtype="string")}), config)
    records = [{"event_type": kind, "occurred_at": when, "url": url} for kind, when, url in events]
    return builder.features({"contact_id": "c"}, records, None, AS_OF)


def test_event_at_moment_excluded():
    features = engagement([("demo_request", AS_OF, None), ("demo_request", AS_OF - pd.Timedelta(days=1), None)])
    assert features["count_demo_request"] == 1.0
    assert features["days_since_demo_request"] == pytest.approx(1.0, rel=1e-12)


def test_event_after_moment_excluded():
    features = engagement([("chat", AS_OF + pd.Timedelta(seconds=1), None)])
    assert features["count_chat"] == 0.0
    assert math.isnan(features["days_since_last_event"])


def test_event_without_time_excluded():
    features = engagement([("chat", None, None)])
    assert features["count_chat"] == 0.0


def test_pricing_query_string_counts_as_pricing():
    features = engagement([("page_view", AS_OF - pd.Timedelta(days=2), "/pricing?plan=team")])
    assert features["count_pricing_page_view"] == 1.0
    assert features["days_since_pricing_page_view"] == pytest.approx(2.0, rel=1e-12)


def test_missing_url_counts_as_home_page():
    # The SQL reads a missing URL as '', which the home-page pattern matches.
    features = engagement([("page_view", AS_OF - pd.Timedelta(days=2), None)])
    assert features["count_home_page_view"] == 1.0
    assert features["count_page_view"] == 0.0


def test_decay_halves_per_half_life():
    features = engagement([("demo_request", AS_OF - pd.Timedelta(days=30), None), ("demo_request", AS_OF - pd.Timedelta(days=60), None)])
    assert features["decayed_demo_request"] == pytest.approx(0.5 + 0.25, rel=1e-12)
    assert features["engagement_score"] == pytest.approx(30.0 * 0.75, rel=1e-12)


def test_negative_weights_subtract():
    features = engagement([("unsubscribe", AS_OF - pd.Timedelta(days=30), None), ("chat", AS_OF - pd.Timedelta(days=30), None)])
    assert features["engagement_score"] == pytest.approx((-15.0 + 6.0) * 0.5, rel=1e-12)


def test_last_30_days_includes_boundary():
    events = [
        ("chat", AS_OF - pd.Timedelta(days=30), None),
        ("chat", AS_OF - pd.Timedelta(days=30, microseconds=1), None),
        ("email_open", AS_OF - pd.Timedelta(minutes=1), None),
    ]
    features = engagement(events)
    assert features["events_last_30_days"] == 2.0
    assert features["days_since_last_event"] == pytest.approx(1 / 1440, rel=1e-12)


def test_no_events_gives_zero_counts():
    features = engagement([])
    assert all(features[f"count_{key}"] == 0.0 for key in ENGAGEMENT_KEYS)
    assert features["engagement_score"] == 0.0
    assert math.isnan(features["days_since_demo_request"])


# ---------------------------------------------------------------------------
# Fit features by hand
# ---------------------------------------------------------------------------


def test_fit_features_by_hand():
    contact = {
        "job_title": "VP Sales",
        "email": "ana@gmail.com",
        "industry": "  Software ",
        "employee_count": 200,
        "annual_revenue": 1_000_000.0,
        "country": "US",
        "phone": "",
        "linkedin_url": None,
        "created_at": AS_OF - pd.Timedelta(days=10),
    }
    builder = OnlineFeatureBuilder(pd.DataFrame({"user_id": pd.Series(dtype="string")}), CONFIG)
    features = builder.features(contact, [], None, AS_OF)
    assert features["seniority_level"] == 8.0
    assert features["job_function"] == "sales"
    assert features["email_kind"] == "personal"
    assert features["industry"] == "software"
    assert features["log_annual_revenue"] == pytest.approx(6.0, rel=1e-12)
    # An empty string is not null, so the batch path counts it as a phone number too.
    assert features["has_phone"] == 1.0
    assert features["has_linkedin"] == 0.0
    assert features["contact_age_days"] == pytest.approx(10.0, rel=1e-12)


def test_contact_created_after_moment_has_age_zero():
    builder = OnlineFeatureBuilder(pd.DataFrame({"user_id": pd.Series(dtype="string")}), CONFIG)
    features = builder.features({"created_at": AS_OF + pd.Timedelta(days=3)}, [], None, AS_OF)
    assert features["contact_age_days"] == 0.0


def test_zero_revenue_has_no_log():
    builder = OnlineFeatureBuilder(pd.DataFrame({"user_id": pd.Series(dtype="string")}), CONFIG)
    features = builder.features({"annual_revenue": 0.0}, [], None, AS_OF)
    assert math.isnan(features["log_annual_revenue"])


def test_missing_moment_raises():
    builder = OnlineFeatureBuilder(pd.DataFrame({"user_id": pd.Series(dtype="string")}), CONFIG)
    with pytest.raises(ValueError, match="as_of is missing"):
        builder.features({}, [], None, None)


# ---------------------------------------------------------------------------
# Previous use by hand
# ---------------------------------------------------------------------------


@pytest.fixture
def person_users():
    """One person with two accounts (U1, U2) and a user of another person (U3)."""
    return pd.DataFrame(
        {
            "user_id": ["U1", "U2", "U3"],
            "person_id": ["P1", "P1", "P3"],
            "email": ["ana@old.com", "ana@gmail.com", "bo@acme.com"],
            "company_domain": ["old.com", None, "acme.com"],
            "company_name": ["Old", None, "Acme"],
            "signed_up_at": [utc("2025-01-01"), utc("2025-02-01"), utc("2025-05-01")],
            "last_active_at": [utc("2025-03-02"), utc("2025-07-02"), utc("2025-06-01")],
            "active_days": pd.array([30, 100, 10], dtype="Int64"),
            "is_admin": pd.array([True, False, False], dtype="boolean"),
            "plan": ["free", "team", "business"],
        }
    )


def previous_use(users: pd.DataFrame, user_id: str, as_of: pd.Timestamp, probability: float = 0.99) -> dict:
    builder = OnlineFeatureBuilder(users, CONFIG)
    contact = {"email": "ana@new.com", "company_domain": "new.com"}
    return builder.features(contact, [], {"user_id": user_id, "match_probability": probability}, as_of)


def test_person_accounts_add_up(person_users):
    # U1 lies wholly before 2025-04-01: 30 days. U2 lived 151 days, 59 of
    # them before the moment, so it counts 100 * 59 / 151 days.
    features = previous_use(person_users, "U1", utc("2025-04-01"))
    assert features["previous_user"] == 1.0
    assert features["user_active_days"] == pytest.approx(30 + 100 * 59 / 151, rel=1e-12)
    assert features["user_tenure_days"] == pytest.approx(90.0, rel=1e-12)
    assert features["days_since_user_active"] == 0.0
    assert features["user_is_admin"] == 1.0
    # U2 is active up to the moment, later than U1, so its plan counts.
    assert features["user_plan"] == "team"
    assert features["power_user"] == 1.0
    assert features["job_change"] == 1.0


def test_person_accounts_after_moment_ignored(person_users):
    # Only U1 had signed up by 2025-01-15, and it had lived 14 of its 60 days.
    features = previous_use(person_users, "U2", utc("2025-01-15"))
    assert features["user_active_days"] == pytest.approx(30 * 14 / 60, rel=1e-12)
    assert features["user_plan"] == "free"
    assert features["power_user"] == 0.0


def test_signup_after_moment_not_previous_user(person_users):
    features = previous_use(person_users, "U3", utc("2025-04-01"))
    assert features["previous_user"] == 0.0
    assert features["match_probability"] == 0.0
    assert features["user_plan"] is None
    assert math.isnan(features["user_active_days"])


def test_weak_match_not_previous_user(person_users):
    features = previous_use(person_users, "U3", utc("2025-06-01"), probability=0.5)
    assert features["previous_user"] == 0.0
    assert features["match_probability"] == 0.5
    assert features["power_user"] == 0.0


def test_active_days_clipped_to_tenure(person_users):
    users = person_users.assign(active_days=pd.array([300, 400, 10], dtype="Int64"))
    features = previous_use(users, "U1", utc("2025-12-01"))
    # First sign-up 2025-01-01, last activity 2025-07-02: 182 days, plus one.
    assert features["user_active_days"] == pytest.approx(183.0, rel=1e-12)


def test_same_company_is_no_job_change(person_users):
    builder = OnlineFeatureBuilder(person_users, CONFIG)
    contact = {"email": "bo@acme.com"}
    features = builder.features(contact, [], {"user_id": "U3", "match_probability": 0.99}, utc("2025-06-01"))
    assert features["job_change"] == 0.0


def test_unknown_linked_user_not_previous_user(person_users):
    features = previous_use(person_users, "U9", utc("2025-06-01"))
    assert features["previous_user"] == 0.0


def test_users_without_activity_columns():
    users = pd.DataFrame({"user_id": ["U1"], "email": ["ana@acme.com"]})
    features = previous_use(users, "U1", AS_OF)
    assert features["previous_user"] == 1.0
    assert math.isnan(features["user_active_days"])
    assert math.isnan(features["user_tenure_days"])


# ---------------------------------------------------------------------------
# Timestamps
# ---------------------------------------------------------------------------


def test_epoch_nanoseconds_naive_is_utc():
    assert epoch_nanoseconds(pd.Timestamp("1970-01-02")) == 86_400 * 10**9


def test_epoch_nanoseconds_keeps_microseconds():
    from datetime import datetime, timedelta, timezone

    moment = datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=timezone(timedelta(hours=2)))
    assert epoch_nanoseconds(moment) == (1767225600 - 7200) * 10**9 + 1000


def test_epoch_nanoseconds_missing():
    assert epoch_nanoseconds(pd.NaT) is None


# ---------------------------------------------------------------------------
# The HTTP service's scoring path against batch scoring
# ---------------------------------------------------------------------------

CONTACT_FIELDS = (
    "first_name", "last_name", "email", "personal_email", "phone", "linkedin_url", "job_title",
    "company_name", "company_domain", "industry", "employee_count", "annual_revenue", "country", "city", "created_at",
)


@pytest.fixture(scope="module")
def service(trained_store, demo_workspace):
    """A scoring service with the model trained on the demo workspace, linking against its users."""
    from leadlink.serving.model import load_model
    from leadlink.serving.scoring import ScoringService, load_users

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", trained_store)
        model = load_model(None)
    _, users = load_users(demo_workspace, model)
    return ScoringService(model, users)


def request_value(value):
    return None if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value)) else value


@pytest.fixture(scope="module")
def requests(demo_workspace):
    """Contacts of the demo workspace with their events at two moments, and returning users as new contacts."""
    from leadlink.serving.scoring import ContactIn

    loaded = load_workspace(demo_workspace)
    events_of = {key: group.to_dict("records") for key, group in loaded.events.groupby("contact_id")}
    bodies = []
    for position, row in enumerate(loaded.contacts.sample(n=80, random_state=3).to_dict("records")):
        body = {name: request_value(row.get(name)) for name in CONTACT_FIELDS}
        events = [{key: request_value(event[key]) for key in ("event_type", "occurred_at", "url")} for event in events_of.get(row["contact_id"], [])]
        as_of = AS_OF if position % 2 else utc("2025-11-15")
        bodies.append(ContactIn(contact_id=row["contact_id"], events=events, as_of=as_of, **body))

    users = loaded.users.dropna(subset=["personal_email", "first_name", "last_name"]).head(30)
    for position, row in enumerate(users.to_dict("records")):
        # A day after sign-up the user is a previous user, a day before not yet.
        as_of = AS_OF
        if pd.notna(row["signed_up_at"]):
            as_of = row["signed_up_at"] + pd.Timedelta(days=1 if position % 3 else -1)
        bodies.append(
            ContactIn(
                contact_id=f"returning-{position}",
                first_name=row["first_name"],
                last_name=row["last_name"],
                personal_email=row["personal_email"],
                email=f"{row['first_name'].lower()}@new-employer.example",
                job_title="Head of Operations",
                as_of=as_of,
            )
        )
    return bodies


def batch_scores(service, contacts) -> tuple[np.ndarray, list[list[str]], list]:
    """Score contacts with the batch pipeline (``build_features`` and ``score_frame``), as the service did before."""
    from leadlink.serving.batch import score_frame

    keys = [str(position) for position in range(len(contacts))]
    rows = [{**contact.model_dump(exclude={"events", "as_of"}), "contact_id": key} for key, contact in zip(keys, contacts)]
    contact_frame = pd.DataFrame(rows)
    contact_frame["created_at"] = pd.to_datetime(contact_frame["created_at"], utc=True)
    pairs = [(key, event) for key, contact in zip(keys, contacts) for event in contact.events]
    events = pd.DataFrame(
        {
            "contact_id": [key for key, _ in pairs],
            "event_type": [event.event_type.strip().lower() for _, event in pairs],
            "occurred_at": pd.to_datetime([event.occurred_at for _, event in pairs], utc=True),
            "url": [event.url for _, event in pairs],
        }
    )
    found = [(key, service.linker.link_record(row, service.config.match_threshold)) for key, row in zip(keys, rows)]
    links = pd.DataFrame(
        [{"contact_id": key, "user_id": link["user_id"], "match_probability": link["match_probability"]} for key, link in found if link],
        columns=["contact_id", "user_id", "match_probability"],
    )
    moments = pd.DataFrame({"contact_id": keys, "as_of": pd.Series([contact.as_of for contact in contacts], dtype="datetime64[ns, UTC]")})
    features = build_features(contact_frame, events, service.users, links, moments, service.config)
    probability, reasons = score_frame(service.model.scorer, features)
    matched = [link["user_id"] if link and features["previous_user"].iloc[position] >= 1 else None for position, (_, link) in enumerate(found)]
    return probability, reasons, matched


def test_service_probability_equals_batch(service, requests):
    expected, _, _ = batch_scores(service, requests)
    scored = [service.score([contact])[0] for contact in requests]
    assert [result.probability for result in scored] == pytest.approx(expected.tolist(), rel=1e-12, abs=1e-15)


def test_service_reasons_equal_batch(service, requests):
    _, expected, _ = batch_scores(service, requests)
    scored = [service.score([contact])[0] for contact in requests]
    assert [result.reasons for result in scored] == expected


def test_service_matches_equal_batch(service, requests):
    _, _, expected = batch_scores(service, requests)
    scored = [service.score([contact])[0] for contact in requests]
    assert [result.matched_user_id for result in scored] == expected


def test_service_requests_include_previous_users(service, requests):
    # Guards the comparisons above: they must cover recognised users too.
    scored = service.score(requests)
    assert sum(result.previous_user for result in scored) >= 10


def test_service_batch_equals_single(service, requests):
    batch = service.score(requests)
    singles = [service.score([contact])[0] for contact in requests]
    assert [result.model_dump() for result in batch] == [result.model_dump() for result in singles]


# ---------------------------------------------------------------------------
# The single-row prediction path
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def feature_rows(service, requests):
    """Feature rows of the requests, plus a row with every value missing and one with unseen categories."""
    rows = []
    for contact in requests:
        fields = contact.model_dump(exclude={"events", "as_of"})
        link = service.linker.link_record(fields, service.config.match_threshold)
        events = [event.model_dump() for event in contact.events]
        rows.append(service.feature_builder.features(fields, events, link, contact.as_of))
    names = list(rows[0])
    rows.append({name: None for name in names})
    unseen = dict(rows[0])
    unseen.update({"industry": "deep-sea mining", "country": "zz", "user_plan": "platinum", "job_function": "astronaut"})
    rows.append(unseen)
    return rows


def typed_frame(rows: list[dict]) -> pd.DataFrame:
    """Return rows as build_features types them: float numbers and object categories."""
    frame = pd.DataFrame(rows)
    for spec in feature_specs():
        frame[spec.name] = frame[spec.name].astype(object) if spec.kind == "categorical" else frame[spec.name].astype("float64")
    return frame


def test_row_probabilities_equal_predict_proba(service, feature_rows):
    scorer = service.row_scorer
    expected = service.model.scorer.predict_proba(typed_frame(feature_rows))
    np.testing.assert_array_equal(scorer.probabilities(scorer.matrix(feature_rows)), expected)


def test_single_row_probabilities_equal_predict_proba(service, feature_rows):
    scorer = service.row_scorer
    expected = service.model.scorer.predict_proba(typed_frame(feature_rows))
    single = np.concatenate([scorer.probabilities(scorer.matrix([row])) for row in feature_rows])
    np.testing.assert_array_equal(single, expected)


def test_row_reasons_equal_score_frame(service, feature_rows):
    from leadlink.serving.batch import score_frame

    _, expected = score_frame(service.model.scorer, typed_frame(feature_rows))
    reasons = [service.row_scorer.score([row])[1][0] for row in feature_rows]
    assert reasons == expected


def test_row_matrix_unseen_category_is_other(service, feature_rows):
    scorer = service.row_scorer
    spec = {feature["name"]: feature for feature in service.model.scorer.spec["features"]}
    column = list(spec).index("industry")
    assert scorer.matrix(feature_rows[-1:])[0, column] == spec["industry"]["levels"].index("__other__")


def test_row_matrix_missing_category(service, feature_rows):
    scorer = service.row_scorer
    spec = {feature["name"]: feature for feature in service.model.scorer.spec["features"]}
    column = list(spec).index("industry")
    assert scorer.matrix(feature_rows[-2:-1])[0, column] == spec["industry"]["levels"].index("__missing__")


def test_large_request_reasons_equal_score_frame(service, feature_rows):
    from leadlink.serving.batch import score_frame
    from leadlink.serving.contributions import MIN_ROWS_FOR_PATTERNS

    rows = feature_rows * (MIN_ROWS_FOR_PATTERNS // len(feature_rows) + 1)
    _, expected = score_frame(service.model.scorer, typed_frame(rows))
    _, reasons = service.row_scorer.score(rows)
    assert reasons == expected
