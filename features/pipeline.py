"""Point-in-time features of a contact: fit, engagement and previous use.

A *moment* is a (contact, as-of timestamp) pair: a deal's creation time for a
training example, or the scoring time. Every feature of a moment is computed
only from rows dated strictly before it, so a model never learns from events
that happened after the outcome it predicts.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from leadlink.engine import create_sql_connection
from leadlink.features import normalize, titles
from leadlink.features.workspace import CONTRACT, KNOWN_EVENT_TYPES

logger = logging.getLogger(__name__)

# Engagement keys: the known event types, with page views split by page kind
# because a product page shows more buying intent than the home page.
ENGAGEMENT_KEYS = ("home_page_view", *KNOWN_EVENT_TYPES, "other")

# Points per event for the summed engagement score; negative events subtract.
DEFAULT_EVENT_WEIGHTS = {
    "home_page_view": 0.5,
    "page_view": 1.0,
    "product_page_view": 4.0,
    "pricing_page_view": 10.0,
    "demo_request": 30.0,
    "trial_signup": 25.0,
    "email_open": 0.5,
    "email_click": 3.0,
    "email_bounce": -5.0,
    "webinar_registered": 4.0,
    "webinar_attended": 10.0,
    "content_download": 5.0,
    "chat": 6.0,
    "form_submit": 8.0,
    "unsubscribe": -15.0,
    "other": 1.0,
}

# Event kinds whose last occurrence is worth a "days since" feature.
RECENCY_KEYS = ("demo_request", "pricing_page_view", "trial_signup", "webinar_attended")

_SECONDS_PER_DAY = 86_400.0


@dataclass
class FeatureConfig:
    """Settings of the feature pipeline; stored with every trained model."""

    half_life_days: float = 30.0
    event_weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_EVENT_WEIGHTS))
    match_threshold: float = 0.8
    power_user_active_days: int = 60
    # Region for phone numbers written without a country code, when the
    # record has no country of its own.
    default_region: str = "US"

    def __post_init__(self) -> None:
        if not (self.half_life_days > 0 and math.isfinite(self.half_life_days)):
            raise ValueError(f"half_life_days must be a positive number of days; got {self.half_life_days}.")
        if not 0.0 <= self.match_threshold <= 1.0:
            raise ValueError(f"match_threshold must lie between 0 and 1; got {self.match_threshold}.")
        if not (isinstance(self.default_region, str) and len(self.default_region) == 2 and self.default_region.isalpha()):
            raise ValueError(f"default_region must be a two-letter ISO country code such as US or DE; got {self.default_region!r}.")
        self.default_region = self.default_region.upper()

    def to_dict(self) -> dict:
        return {
            "half_life_days": self.half_life_days,
            "event_weights": dict(self.event_weights),
            "match_threshold": self.match_threshold,
            "power_user_active_days": self.power_user_active_days,
            "default_region": self.default_region,
        }

    @classmethod
    def from_dict(cls, values: dict) -> "FeatureConfig":
        return cls(**values)


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    kind: str  # "numeric" or "categorical"
    group: str  # "fit", "engagement" or "previous_user"


def feature_specs() -> list[FeatureSpec]:
    """Return every feature the workspace pipeline produces, in model order."""
    fit = [
        FeatureSpec("seniority_level", "numeric", "fit"),
        FeatureSpec("job_function", "categorical", "fit"),
        FeatureSpec("is_student", "numeric", "fit"),
        FeatureSpec("is_intern", "numeric", "fit"),
        FeatureSpec("email_kind", "categorical", "fit"),
        FeatureSpec("industry", "categorical", "fit"),
        FeatureSpec("employee_count", "numeric", "fit"),
        FeatureSpec("log_annual_revenue", "numeric", "fit"),
        FeatureSpec("country", "categorical", "fit"),
        FeatureSpec("has_phone", "numeric", "fit"),
        FeatureSpec("has_linkedin", "numeric", "fit"),
        FeatureSpec("contact_age_days", "numeric", "fit"),
    ]
    engagement = [FeatureSpec(f"count_{key}", "numeric", "engagement") for key in ENGAGEMENT_KEYS]
    engagement += [FeatureSpec(f"decayed_{key}", "numeric", "engagement") for key in ENGAGEMENT_KEYS]
    engagement += [FeatureSpec(f"days_since_{key}", "numeric", "engagement") for key in RECENCY_KEYS]
    engagement += [
        FeatureSpec("engagement_score", "numeric", "engagement"),
        FeatureSpec("events_last_30_days", "numeric", "engagement"),
        FeatureSpec("days_since_last_event", "numeric", "engagement"),
    ]
    previous_user = [
        FeatureSpec("previous_user", "numeric", "previous_user"),
        FeatureSpec("match_probability", "numeric", "previous_user"),
        FeatureSpec("job_change", "numeric", "previous_user"),
        FeatureSpec("user_active_days", "numeric", "previous_user"),
        FeatureSpec("power_user", "numeric", "previous_user"),
        FeatureSpec("user_is_admin", "numeric", "previous_user"),
        FeatureSpec("user_plan", "categorical", "previous_user"),
        FeatureSpec("user_tenure_days", "numeric", "previous_user"),
        FeatureSpec("days_since_user_active", "numeric", "previous_user"),
    ]
    return fit + engagement + previous_user


def _with_contract_columns(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """Add any contract column the frame lacks, empty, so callers may pass partial tables."""
    missing = [column.name for column in CONTRACT[table].columns if column.name not in frame.columns]
    if not missing:
        return frame
    empty = {
        column.name: pd.Series(pd.NaT if column.kind == "timestamp" else None, index=frame.index, dtype="datetime64[ns, UTC]" if column.kind == "timestamp" else "object")
        for column in CONTRACT[table].columns
        if column.name in missing
    }
    return frame.assign(**empty)


def _days_between(later: pd.Series, earlier: pd.Series) -> pd.Series:
    return (later - earlier).dt.total_seconds() / _SECONDS_PER_DAY


def fit_features(contacts: pd.DataFrame, moments: pd.DataFrame) -> pd.DataFrame:
    """Who the person and company are, from the contact row."""
    rows = moments[["contact_id", "as_of"]].merge(contacts, on="contact_id", how="left")
    seniority = rows["job_title"].map(titles.parse_seniority)
    email_kind = rows["email"].map(normalize.email_domain_kind)
    revenue = pd.to_numeric(rows["annual_revenue"], errors="coerce").astype("float64")
    created = rows["created_at"]
    age = _days_between(rows["as_of"], created).clip(lower=0)

    return pd.DataFrame(
        {
            "seniority_level": seniority.map(titles.SENIORITY_LEVELS).astype("float64"),
            "job_function": rows["job_title"].map(titles.parse_function),
            "is_student": seniority.eq("student").astype("float64"),
            "is_intern": seniority.eq("intern").astype("float64"),
            "email_kind": email_kind,
            "industry": rows["industry"].map(normalize.fold_text),
            "employee_count": pd.to_numeric(rows["employee_count"], errors="coerce").astype("float64"),
            "log_annual_revenue": np.log10(revenue.where(revenue > 0)),
            "country": rows["country"].map(normalize.fold_text),
            "has_phone": rows["phone"].notna().astype("float64"),
            "has_linkedin": rows["linkedin_url"].notna().astype("float64"),
            "contact_age_days": age.astype("float64"),
        },
        index=moments.index,
    )


_ENGAGEMENT_SQL = """
WITH keyed AS (
    SELECT
        contact_id,
        occurred_at,
        CASE
            WHEN CAST(event_type AS VARCHAR) = 'page_view' AND regexp_matches(coalesce(CAST(url AS VARCHAR), ''), '(?i)/(product|products|features|solutions|platform|integrations)(/|$|\\?)')
                THEN 'product_page_view'
            WHEN CAST(event_type AS VARCHAR) = 'page_view' AND regexp_matches(coalesce(CAST(url AS VARCHAR), ''), '(?i)/pricing(/|$|\\?)')
                THEN 'pricing_page_view'
            WHEN CAST(event_type AS VARCHAR) = 'page_view' AND regexp_matches(coalesce(CAST(url AS VARCHAR), ''), '(?i)^(https?://[^/]+)?/?(\\?.*)?$')
                THEN 'home_page_view'
            WHEN CAST(event_type AS VARCHAR) IN ({known}) THEN CAST(event_type AS VARCHAR)
            ELSE 'other'
        END AS event_key
    FROM events
)
SELECT
    m.example_id,
    k.event_key,
    count(*) AS n_events,
    sum(pow(0.5, epoch(m.as_of - k.occurred_at) / {seconds_per_day} / {half_life})) AS decayed,
    sum(CASE WHEN epoch(m.as_of - k.occurred_at) <= 30 * {seconds_per_day} THEN 1 ELSE 0 END) AS last_30_days,
    min(epoch(m.as_of - k.occurred_at)) / {seconds_per_day} AS days_since_last
FROM moments m
JOIN keyed k ON k.contact_id = m.contact_id AND k.occurred_at < m.as_of
GROUP BY m.example_id, k.event_key
"""


def engagement_features(events: pd.DataFrame, moments: pd.DataFrame, config: FeatureConfig) -> pd.DataFrame:
    """Compute how the contact engaged before the moment, with exponential decay.

    ``count_<key>`` counts the events of each kind before the moment;
    ``decayed_<key>`` sums 0.5 ** (age in days / half-life) over the events of
    that kind, so an event today counts 1 and one a half-life ago counts 0.5.
    """
    known = {key for key in ENGAGEMENT_KEYS if key not in ("home_page_view", "other")}
    sql = _ENGAGEMENT_SQL.format(
        known=", ".join(f"'{key}'" for key in sorted(known)),
        seconds_per_day=_SECONDS_PER_DAY,
        half_life=float(config.half_life_days),
    )
    moments_frame = moments[["contact_id", "as_of"]].assign(example_id=np.arange(len(moments)))
    events_frame = events[["contact_id", "event_type", "occurred_at", "url"]]
    connection = create_sql_connection()
    connection.register("moments", moments_frame)
    connection.register("events", events_frame)
    long = connection.execute(sql).df()
    connection.close()

    result = pd.DataFrame(index=np.arange(len(moments)))
    counts = long.pivot_table(index="example_id", columns="event_key", values="n_events", aggfunc="sum")
    for key in ENGAGEMENT_KEYS:
        column = counts[key] if key in counts.columns else pd.Series(dtype="float64")
        result[f"count_{key}"] = column.reindex(result.index).fillna(0.0).to_numpy(dtype="float64")

    decayed = long.pivot_table(index="example_id", columns="event_key", values="decayed", aggfunc="sum")
    for key in ENGAGEMENT_KEYS:
        column = decayed[key] if key in decayed.columns else pd.Series(dtype="float64")
        result[f"decayed_{key}"] = column.reindex(result.index).fillna(0.0).to_numpy()

    last_seen = long.pivot_table(index="example_id", columns="event_key", values="days_since_last", aggfunc="min")
    for key in RECENCY_KEYS:
        column = last_seen[key] if key in last_seen.columns else pd.Series(dtype="float64")
        result[f"days_since_{key}"] = column.reindex(result.index).to_numpy()

    weights = pd.Series(config.event_weights)
    decayed_matrix = result[[f"decayed_{key}" for key in ENGAGEMENT_KEYS]].to_numpy()
    weight_vector = weights.reindex(list(ENGAGEMENT_KEYS)).fillna(0.0).to_numpy()
    result["engagement_score"] = decayed_matrix @ weight_vector
    per_example = long.groupby("example_id").agg(last_30=("last_30_days", "sum"), since=("days_since_last", "min"))
    result["events_last_30_days"] = per_example["last_30"].reindex(result.index).fillna(0).to_numpy(dtype="float64")
    result["days_since_last_event"] = per_example["since"].reindex(result.index).to_numpy(dtype="float64")
    result.index = moments.index
    return result


def previous_user_features(users: pd.DataFrame, links: pd.DataFrame, contacts: pd.DataFrame, moments: pd.DataFrame, config: FeatureConfig) -> pd.DataFrame:
    """Compute what the product recorded about the person before the moment.

    When ``users`` has a ``person_id`` column, all user records of the linked
    person count together: active days add up, the earliest sign-up and the
    latest activity set tenure and recency, and admin on any account counts.
    Only records signed up before the moment count. Activity fields are a
    snapshot of the users table: when a record was last active after the
    moment, its active days are scaled down to the share of the account's
    life that lies before it.
    """
    # NOTE: a users table is one snapshot, so the scaled active days and
    # "days since active" are estimates; a per-day activity history would
    # make them exact at any moment.
    frame = moments[["contact_id", "as_of"]].reset_index(drop=True)
    frame["row"] = np.arange(len(frame))
    frame = frame.merge(links[["contact_id", "user_id", "match_probability"]], on="contact_id", how="left")
    frame = frame.sort_values("row", kind="stable").reset_index(drop=True)

    records = _person_records(frame, users)
    summary = _summarise_person_records(records, len(frame))
    frame = frame.merge(users[["user_id", "company_domain", "email", "company_name"]].add_prefix("user_").rename(columns={"user_user_id": "user_id"}), on="user_id", how="left")
    frame = frame.merge(contacts[["contact_id", "company_domain", "email", "company_name"]], on="contact_id", how="left")
    frame = frame.sort_values("row", kind="stable").reset_index(drop=True)

    known_before = summary["known"].to_numpy()
    probability = frame["match_probability"].where(known_before, 0.0).fillna(0.0)
    is_previous = known_before & (probability.to_numpy() >= config.match_threshold)
    active_days = summary["active_days"].to_numpy()
    same_company = _same_company(frame)

    result = pd.DataFrame(
        {
            "previous_user": is_previous.astype("float64"),
            "match_probability": probability.astype("float64").to_numpy(),
            "job_change": np.where(is_previous, 1.0 - same_company, np.nan),
            "user_active_days": np.where(is_previous, active_days, np.nan),
            "power_user": np.where(is_previous, (active_days >= config.power_user_active_days).astype("float64"), 0.0),
            "user_is_admin": np.where(is_previous, summary["is_admin"].to_numpy(), 0.0),
            "user_plan": summary["plan"].astype("object").where(is_previous, None).to_numpy(),
            "user_tenure_days": np.where(is_previous, summary["tenure_days"].to_numpy(), np.nan),
            "days_since_user_active": np.where(is_previous, summary["days_since_active"].to_numpy(), np.nan),
        }
    )
    result.index = moments.index
    return result


_USER_ACTIVITY = ["user_id", "signed_up_at", "last_active_at", "active_days", "is_admin", "plan"]


def _person_records(frame: pd.DataFrame, users: pd.DataFrame) -> pd.DataFrame:
    """Return, per moment row, every user record of the linked person known before it."""
    linked = frame.loc[frame["user_id"].notna(), ["row", "as_of", "user_id"]]
    if "person_id" in users.columns:
        person_of = users.set_index("user_id")["person_id"]
        linked = linked.assign(person_id=linked["user_id"].map(person_of))
        activity = users[_USER_ACTIVITY + ["person_id"]].drop(columns="user_id")
        records = linked[["row", "as_of", "person_id"]].merge(activity, on="person_id", how="inner")
    else:
        records = linked[["row", "as_of", "user_id"]].merge(users[_USER_ACTIVITY], on="user_id", how="inner")
    signed = records["signed_up_at"]
    return records[signed.isna() | (signed < records["as_of"])].reset_index(drop=True)


def _summarise_person_records(records: pd.DataFrame, n_rows: int) -> pd.DataFrame:
    """Aggregate per moment row the activity of the person's known records."""
    signed, last_active, as_of = records["signed_up_at"], records["last_active_at"], records["as_of"]
    active_end = last_active.where(last_active.isna() | (last_active < as_of), as_of)
    life_days = _days_between(last_active, signed)
    before_days = _days_between(active_end, signed)
    share_before = (before_days / life_days.where(life_days > 0)).clip(0, 1).fillna(1.0)
    records = records.assign(
        active_end=active_end,
        scaled_active_days=pd.to_numeric(records["active_days"], errors="coerce").astype("float64") * share_before,
        admin=records["is_admin"].astype("float64").fillna(0.0),
    )

    grouped = records.sort_values("active_end", kind="stable").groupby("row")
    summary = pd.DataFrame(
        {
            "active_days": grouped["scaled_active_days"].sum(min_count=1),
            "is_admin": grouped["admin"].max(),
            "plan": grouped["plan"].last(),
            "first_signed": grouped["signed_up_at"].min(),
            "last_end": grouped["active_end"].max(),
            "as_of": grouped["as_of"].first(),
        }
    ).reindex(np.arange(n_rows))
    summary["known"] = summary["as_of"].notna()
    summary["tenure_days"] = _days_between(summary["last_end"], summary["first_signed"])
    # Accounts used side by side share calendar days, so their sum cannot
    # exceed the days between the first sign-up and the last activity.
    summary["active_days"] = summary["active_days"].clip(upper=summary["tenure_days"].fillna(np.inf) + 1)
    summary["days_since_active"] = _days_between(summary["as_of"], summary["last_end"])
    return summary


def _same_company(frame: pd.DataFrame) -> np.ndarray:
    """1.0 when contact and user share a company, 0.0 when not, NaN if unknown."""
    user_side = frame[["user_company_domain", "user_email", "user_company_name"]]
    user_side = user_side.rename(columns=lambda c: c.removeprefix("user_"))
    return same_company_flags(frame[["company_domain", "email", "company_name"]], user_side)


def same_company_flags(contact_side: pd.DataFrame, user_side: pd.DataFrame) -> np.ndarray:
    """Compare two aligned frames with company_domain, email and company_name.

    The domain decides when both sides have one (taken from a work email when
    the column is empty); otherwise the folded company name does. Returns
    1.0 for the same company, 0.0 for another, NaN when neither is known.
    """

    def values(frame: pd.DataFrame, name: str) -> list:
        if name not in frame.columns:
            return [None] * len(frame)
        return [None if normalize.is_missing(value) else value for value in frame[name].tolist()]

    result = np.full(len(contact_side), np.nan)
    contact_rows = zip(values(contact_side, "company_domain"), values(contact_side, "email"), values(contact_side, "company_name"))
    user_rows = zip(values(user_side, "company_domain"), values(user_side, "email"), values(user_side, "company_name"))
    for position, (contact, user) in enumerate(zip(contact_rows, user_rows)):
        if not any(user):
            # No user side (most contacts have no linked user): nothing to compare.
            continue
        contact_domain, user_domain = company_domain(*contact[:2]), company_domain(*user[:2])
        if contact_domain and user_domain:
            result[position] = float(contact_domain == user_domain)
            continue
        contact_name, user_name = normalize.fold_text(contact[2]), normalize.fold_text(user[2])
        if contact_name and user_name:
            result[position] = float(contact_name == user_name)
    return result


def company_domain(domain, email) -> str | None:
    """Return the company's domain: the explicit one, else a work or role email's domain."""
    explicit = normalize.normalize_domain(domain)
    if explicit:
        return explicit
    if normalize.email_domain_kind(email) in ("work", "role"):
        return normalize.email_parts(email)[1]
    return None


def build_features(
    contacts: pd.DataFrame,
    events: pd.DataFrame,
    users: pd.DataFrame,
    links: pd.DataFrame,
    moments: pd.DataFrame,
    config: FeatureConfig | None = None,
) -> pd.DataFrame:
    """Return one row of features per moment, in the order of ``feature_specs()``.

    ``moments`` needs ``contact_id`` and a UTC ``as_of``; ``links`` is the best
    user per contact with ``match_probability`` (it may be empty).
    """
    config = config or FeatureConfig()
    moments = moments.reset_index(drop=True)
    contacts = _with_contract_columns(contacts, "contacts")
    users = _with_contract_columns(users, "users")
    events = _with_contract_columns(events, "events")
    parts = [
        fit_features(contacts, moments),
        engagement_features(events, moments, config),
        previous_user_features(users, links, contacts, moments, config),
    ]
    features = pd.concat(parts, axis=1)
    return features[[spec.name for spec in feature_specs()]]

