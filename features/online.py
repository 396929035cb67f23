"""Point-in-time features of one contact, computed without pandas or SQL per call.

``build_features`` in ``pipeline.py`` joins frames and runs DuckDB SQL, which
takes over 100 ms even for a single row (``benchmarks/online_features.py``). ``OnlineFeatureBuilder`` indexes the
users table once and then computes one row of the same features with
dictionary lookups, a few numpy operations and plain Python. The rules are
those of the batch pipeline, restated here, and the tests compare both paths
on generated workspaces:

* fit features: the same title, email and text normalisers (cached per
  distinct string);
* engagement: the same mapping of events to kinds. The page-view URL
  patterns follow the RE2 semantics of DuckDB's ``regexp_matches``, and
  event ages are whole microseconds, DuckDB's timestamp resolution;
* previous use: the person's user records signed up before the moment,
  aggregated as ``_summarise_person_records`` does.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

from leadlink.features import normalize, titles
from leadlink.features.pipeline import (
    ENGAGEMENT_KEYS,
    RECENCY_KEYS,
    FeatureConfig,
    company_domain,
    feature_specs,
)
from leadlink.features.workspace import KNOWN_EVENT_TYPES

_MICROSECONDS_PER_SECOND = 1e6
_SECONDS_PER_DAY = 86_400.0
_LAST_30_DAYS_MICROSECONDS = 30 * 86_400 * 10**6
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_MICROSECOND = timedelta(microseconds=1)
_TEXT_CACHE_SIZE = 65_536

# The page-view patterns of the engagement SQL in pipeline.py. DuckDB's
# regexp_matches uses RE2, whose (?i) folds ASCII letters and also the long s
# "ſ" with "s" (checked with DuckDB 2.0). Python's IGNORECASE would also fold
# "İ" and "ı" with "i", so the patterns use ASCII folding and spell out the
# long s. RE2's "$" matches only at the very end of the text, which is
# Python's "\Z", because Python's "$" also matches before a final newline.
_LETTER_S = "[sſ]"
_PRODUCT_PAGE = re.compile(
    rf"/(product|product{_LETTER_S}|feature{_LETTER_S}|{_LETTER_S}olution{_LETTER_S}|platform|integration{_LETTER_S})(/|\Z|\?)",
    re.IGNORECASE | re.ASCII,
)
_PRICING_PAGE = re.compile(r"/pricing(/|\Z|\?)", re.IGNORECASE | re.ASCII)
_HOME_PAGE = re.compile(rf"^(http{_LETTER_S}?://[^/]+)?/?(\?.*)?\Z", re.IGNORECASE | re.ASCII)

_KEY_POSITION = {key: position for position, key in enumerate(ENGAGEMENT_KEYS)}
_RECENCY_POSITIONS = [_KEY_POSITION[key] for key in RECENCY_KEYS]
# Event types counted under their own name. The SQL maps every other type to "other".
_KNOWN_TYPE_POSITION = {event_type: _KEY_POSITION[event_type] for event_type in KNOWN_EVENT_TYPES}


def is_missing(value: object) -> bool:
    """Return True for None, NaN, pd.NA and NaT, the values pandas' ``isna`` treats as missing."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def epoch_nanoseconds(value: object) -> int | None:
    """Convert a timestamp to integer nanoseconds since 1970-01-01 UTC, or None when it is missing.

    Naive values are read as UTC, as the workspace contract does. Python
    datetimes are converted with integer arithmetic, so no precision is lost.
    Other values (numpy datetimes, ISO 8601 text) go through ``pd.Timestamp``.
    """
    if is_missing(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return (value - _EPOCH) // _ONE_MICROSECOND * 1000
    timestamp = pd.Timestamp(value)
    return None if timestamp is pd.NaT else timestamp.value


@functools.lru_cache(maxsize=_TEXT_CACHE_SIZE)
def page_view_key(url: str) -> str:
    """Return the engagement key of a page view of ``url``, as the engagement SQL assigns it.

    An empty URL counts as the home page, because the SQL reads a missing URL as ''.
    """
    if _PRODUCT_PAGE.search(url):
        return "product_page_view"
    if _PRICING_PAGE.search(url):
        return "pricing_page_view"
    if _HOME_PAGE.search(url):
        return "home_page_view"
    return "page_view"


def event_key(event_type: object, url: object) -> str:
    """Return the engagement key of one event: a page kind for page views, the type or "other" otherwise."""
    if is_missing(event_type):
        return "other"
    event_type = str(event_type)
    if event_type == "page_view":
        return page_view_key("" if is_missing(url) else str(url))
    return event_type if event_type in _KNOWN_TYPE_POSITION else "other"


@functools.lru_cache(maxsize=_TEXT_CACHE_SIZE)
def _fold_text(value: str) -> str | None:
    return normalize.fold_text(value)


@functools.lru_cache(maxsize=_TEXT_CACHE_SIZE)
def _email_kind(value: str) -> str:
    return normalize.email_domain_kind(value)


def _folded(value: object) -> str | None:
    return _fold_text(value) if isinstance(value, str) else normalize.fold_text(value)


def _number(value: object) -> float:
    """Read a number as ``pd.to_numeric(errors="coerce")`` does for one value: NaN when missing or unreadable."""
    if is_missing(value):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _days(later_ns: int | None, earlier_ns: int | None) -> float:
    if later_ns is None or earlier_ns is None:
        return math.nan
    return (later_ns - earlier_ns) / 1e9 / _SECONDS_PER_DAY


def fit_features(contact: Mapping, as_of_ns: int) -> dict[str, object]:
    """Compute the fit features of one contact, as ``pipeline.fit_features`` does for a frame."""
    title = contact.get("job_title")
    seniority = titles.parse_seniority(title)
    email = contact.get("email")
    revenue = _number(contact.get("annual_revenue"))
    created_ns = epoch_nanoseconds(contact.get("created_at"))
    age = _days(as_of_ns, created_ns)
    level = titles.SENIORITY_LEVELS.get(seniority)

    return {
        "seniority_level": math.nan if level is None else float(level),
        "job_function": titles.parse_function(title),
        "is_student": float(seniority == "student"),
        "is_intern": float(seniority == "intern"),
        "email_kind": _email_kind(email) if isinstance(email, str) else normalize.email_domain_kind(email),
        "industry": _folded(contact.get("industry")),
        "employee_count": _number(contact.get("employee_count")),
        "log_annual_revenue": float(np.log10(revenue)) if revenue > 0 else math.nan,
        "country": _folded(contact.get("country")),
        "has_phone": float(not is_missing(contact.get("phone"))),
        "has_linkedin": float(not is_missing(contact.get("linkedin_url"))),
        "contact_age_days": max(age, 0.0) if not math.isnan(age) else math.nan,
    }


class OnlineFeatureBuilder:
    """Compute the feature row of one contact at one moment against an indexed users table.

    The users table is indexed once: a position per ``user_id``, the records of
    each person (from ``person_id`` when the table has one, else one record per
    user) and the activity columns as numpy arrays. Text columns are read
    from the users frame when needed. For 1,000,000 users the index takes
    about 165 MiB (measured with tracemalloc), most of it the ``user_id``
    dictionary. The builder is not changed after construction, so request
    threads may share it.
    """

    def __init__(self, users: pd.DataFrame, config: FeatureConfig | None = None):
        self.config = config or FeatureConfig()
        self.feature_names = [spec.name for spec in feature_specs()]
        weights = pd.Series(self.config.event_weights, dtype="float64")
        self._weights = weights.reindex(list(ENGAGEMENT_KEYS)).fillna(0.0).to_numpy()
        self._index_users(users)

    @property
    def n_users(self) -> int:
        return len(self._row_of_user)

    def _index_users(self, users: pd.DataFrame) -> None:
        n_users = len(users)
        user_ids = _column(users, "user_id").tolist()
        self._row_of_user = {user_id: row for row, user_id in enumerate(user_ids) if not is_missing(user_id)}

        # pandas merges match missing person ids with each other, so missing is a group of its own.
        if "person_id" in users.columns:
            codes, _ = pd.factorize(users["person_id"], use_na_sentinel=False)
        else:
            codes = np.arange(n_users)
        self._person_of_row = codes
        self._person_rows = np.argsort(codes, kind="stable")
        self._person_starts = np.concatenate([[0], np.cumsum(np.bincount(codes))])

        self._signed_up = _nanoseconds(_column(users, "signed_up_at"))
        self._last_active = _nanoseconds(_column(users, "last_active_at"))
        self._active_days = pd.to_numeric(_column(users, "active_days"), errors="coerce").astype("float64").to_numpy()
        self._admin = _column(users, "is_admin").astype("float64").fillna(0.0).to_numpy()
        self._plan = _column(users, "plan").array
        self._company = {name: _column(users, name).array for name in ("company_domain", "email", "company_name")}

    def features(self, contact: Mapping, events: Iterable[Mapping], link: Mapping | None, as_of: object) -> dict[str, object]:
        """Return the feature row of ``contact`` as of ``as_of``, with keys in ``feature_specs()`` order.

        ``contact`` maps contract column names to values. ``events`` are
        mappings with ``event_type``, ``occurred_at`` and ``url``. ``link`` is
        the best user match with ``user_id`` and ``match_probability``, or
        None. Only events and user records dated strictly before ``as_of``
        count. Numbers are floats (NaN when unknown) and categories are text
        or None. Raises ValueError when ``as_of`` is missing.
        """
        as_of_ns = epoch_nanoseconds(as_of)
        if as_of_ns is None:
            raise ValueError("as_of is missing. Pass the moment at which to compute the features.")

        values = fit_features(contact, as_of_ns)
        values.update(self.engagement_features(events, as_of_ns))
        values.update(self.previous_user_features(contact, link, as_of_ns))
        return {name: values[name] for name in self.feature_names}

    def engagement_features(self, events: Iterable[Mapping], as_of_ns: int) -> dict[str, float]:
        """Count and decay the events before the moment per engagement key, as the engagement SQL does."""
        as_of_us = as_of_ns // 1000
        positions, ages_us = [], []
        for event in events:
            occurred_ns = epoch_nanoseconds(event.get("occurred_at"))
            # The SQL joins on occurred_at < as_of, which drops missing times too.
            if occurred_ns is None or occurred_ns // 1000 >= as_of_us:
                continue
            positions.append(_KEY_POSITION[event_key(event.get("event_type"), event.get("url"))])
            ages_us.append(as_of_us - occurred_ns // 1000)
        return self._aggregate_events(np.array(positions, dtype=np.intp), np.array(ages_us, dtype=np.int64))

    def _aggregate_events(self, positions: np.ndarray, ages_us: np.ndarray) -> dict[str, float]:
        n_keys = len(ENGAGEMENT_KEYS)
        ages_seconds = ages_us / _MICROSECONDS_PER_SECOND
        counts = np.bincount(positions, minlength=n_keys).astype("float64")
        decay = np.power(0.5, ages_seconds / _SECONDS_PER_DAY / float(self.config.half_life_days))
        decayed = np.bincount(positions, weights=decay, minlength=n_keys)

        result = {f"count_{key}": count for key, count in zip(ENGAGEMENT_KEYS, counts.tolist())}
        result.update({f"decayed_{key}": value for key, value in zip(ENGAGEMENT_KEYS, decayed.tolist())})
        for key, position in zip(RECENCY_KEYS, _RECENCY_POSITIONS):
            ages_of_key = ages_seconds[positions == position]
            result[f"days_since_{key}"] = float(ages_of_key.min()) / _SECONDS_PER_DAY if len(ages_of_key) else math.nan
        result["engagement_score"] = float(decayed @ self._weights)
        result["events_last_30_days"] = float(np.count_nonzero(ages_us <= _LAST_30_DAYS_MICROSECONDS))
        result["days_since_last_event"] = float(ages_seconds.min()) / _SECONDS_PER_DAY if len(ages_seconds) else math.nan
        return result

    def previous_user_features(self, contact: Mapping, link: Mapping | None, as_of_ns: int) -> dict[str, object]:
        """Summarise the linked person's user records signed up before the moment.

        The rules are those of ``pipeline.previous_user_features``: scaled
        active days, admin on any record, the plan of the latest record,
        tenure and recency, and a job change when contact and user work at
        different companies.
        """
        row = self._linked_row(link)
        summary = self._summarise_person(row, as_of_ns) if row is not None else None
        probability = _number(link.get("match_probability")) if summary is not None else 0.0
        probability = 0.0 if math.isnan(probability) else probability
        if summary is None or probability < self.config.match_threshold:
            return {
                "previous_user": 0.0,
                "match_probability": probability,
                "job_change": math.nan,
                "user_active_days": math.nan,
                "power_user": 0.0,
                "user_is_admin": 0.0,
                "user_plan": None,
                "user_tenure_days": math.nan,
                "days_since_user_active": math.nan,
            }

        active_days = summary["active_days"]
        return {
            "previous_user": 1.0,
            "match_probability": probability,
            "job_change": 1.0 - self._same_company(contact, row),
            "user_active_days": active_days,
            "power_user": float(active_days >= self.config.power_user_active_days),
            "user_is_admin": summary["is_admin"],
            "user_plan": summary["plan"],
            "user_tenure_days": summary["tenure_days"],
            "days_since_user_active": summary["days_since_active"],
        }

    def _linked_row(self, link: Mapping | None) -> int | None:
        if link is None:
            return None
        user_id = link.get("user_id")
        if is_missing(user_id):
            return None
        # NOTE: a linked user id missing from the users table gives no records
        # here. In batch, with a person_id column, it would take the records
        # whose person_id is missing; the linker only returns indexed users.
        return self._row_of_user.get(user_id)

    def _summarise_person(self, row: int, as_of_ns: int) -> dict[str, object] | None:
        """Aggregate the person's records signed up before the moment, or return None when there are none."""
        person = self._person_of_row[row]
        members = self._person_rows[self._person_starts[person] : self._person_starts[person + 1]].tolist()
        records = []
        for member in members:
            signed = _time_at(self._signed_up, member)
            if signed is not None and signed >= as_of_ns:
                continue
            last_active = _time_at(self._last_active, member)
            active_end = last_active if last_active is None or last_active < as_of_ns else as_of_ns
            scaled = float(self._active_days[member]) * _share_before(signed, last_active, active_end)
            records.append((member, signed, active_end, scaled))
        if not records:
            return None

        # Batch sorts the records by the end of their activity (missing last,
        # ties in table order) and takes the plan of the last one with a plan.
        ordered = sorted(records, key=lambda record: (record[2] is None, record[2] or 0))
        plans = [plan for plan in (_text_at(self._plan, record[0]) for record in ordered) if plan is not None]
        scaled = [record[3] for record in records if not math.isnan(record[3])]
        signed_times = [record[1] for record in records if record[1] is not None]
        end_times = [record[2] for record in records if record[2] is not None]

        first_signed = min(signed_times) if signed_times else None
        last_end = max(end_times) if end_times else None
        tenure_days = _days(last_end, first_signed)
        active_days = math.fsum(scaled) if scaled else math.nan
        # Accounts used side by side share calendar days, so their sum cannot
        # exceed the days between the first sign-up and the last activity.
        if not math.isnan(tenure_days):
            active_days = min(active_days, tenure_days + 1)
        return {
            "active_days": active_days,
            "is_admin": max(float(self._admin[record[0]]) for record in records),
            "plan": plans[-1] if plans else None,
            "tenure_days": tenure_days,
            "days_since_active": _days(as_of_ns, last_end),
        }

    def _same_company(self, contact: Mapping, row: int) -> float:
        """Return 1.0 when contact and user share a company, 0.0 when not, NaN when unknown, as ``same_company_flags`` does."""
        user = {name: _text_at(values, row) for name, values in self._company.items()}
        contact_domain = company_domain(_present(contact.get("company_domain")), _present(contact.get("email")))
        user_domain = company_domain(_present(user["company_domain"]), _present(user["email"]))
        if contact_domain and user_domain:
            return float(contact_domain == user_domain)
        contact_name, user_name = _folded(_present(contact.get("company_name"))), _folded(_present(user["company_name"]))
        if contact_name and user_name:
            return float(contact_name == user_name)
        return math.nan


def _share_before(signed: int | None, last_active: int | None, active_end: int | None) -> float:
    """Return the share of a record's life (sign-up to last activity) that lies before the moment, 1.0 when unknown."""
    life_days = _days(last_active, signed)
    before_days = _days(active_end, signed)
    if math.isnan(life_days) or math.isnan(before_days) or life_days <= 0:
        return 1.0
    return min(max(before_days / life_days, 0.0), 1.0)


def _present(value: object) -> object:
    return None if normalize.is_missing(value) else value


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """Return a column, or an all-missing one when the frame lacks it (as the pipeline fills contract columns)."""
    if name in frame.columns:
        return frame[name]
    return pd.Series(None, index=frame.index, dtype="object")


def _text_at(values, row: int) -> object:
    value = values[row]
    return None if is_missing(value) else value


_NOT_A_TIME = np.iinfo(np.int64).min


def _nanoseconds(values: pd.Series) -> np.ndarray:
    """Return timestamps as int64 nanoseconds since 1970 UTC, with ``_NOT_A_TIME`` where missing."""
    stamps = pd.to_datetime(values, utc=True)
    integers = stamps.dt.tz_convert(None).to_numpy(dtype="datetime64[ns]").view("int64").copy()
    integers[stamps.isna().to_numpy()] = _NOT_A_TIME
    return integers


def _time_at(values: np.ndarray, row: int) -> int | None:
    value = int(values[row])
    return None if value == _NOT_A_TIME else value
