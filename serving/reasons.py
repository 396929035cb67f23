"""Readable reasons for a score, from per-feature contributions.

A reason is a short phrase about one fact of the lead ("requested a demo 3
days ago", "previous power user at another company"), marked "+" when it
raised the score and "-" when it lowered it. Contributions come from TreeSHAP
in log-odds. Features whose phrases are equal in a row (the previous-user
features often are) count as one reason with their contributions added, and
the ``top_k`` phrases with the largest absolute contribution are reported.

Phrases are chosen by feature name, value and the sign of the contribution.
Lead-table models, whose columns are not known in advance, get a generic
phrase from the column header ("Lead Source is Google").

Choice of method. LightGBM's ``pred_contrib=True`` (exact TreeSHAP on every
row) cost 26 to 55 times a plain ``predict`` in three runs of
``benchmarks/batch_scoring.py reasons``: 100,000 rows of a generated
workspace, a model of 120 trees of at most 15 leaves trained on 100,000
contacts, on a 2-core machine shared with other jobs, so the ratios moved
with its load. On the same rows:

- (a) TreeSHAP cached per decision pattern (``serving.contributions``) is
  exact: it differed from ``pred_contrib`` by at most 4.4e-15 and gave the
  same top 3 features on every row. It cost 1.7 to 4.9 times a ``predict``
  with an empty cache and 0.8 to 2.0 times with a warm one.
- (b) Per-leaf path attribution (Saabas), one ``pred_leaf`` plus a sparse
  gather, cost 1.7 to 3.3 times a ``predict``. Its top feature matched
  TreeSHAP's on 89% of rows, but its set of top 3 features on only 78%
  (62% for a 50-tree model trained on 20,000 contacts).
- (c) TreeSHAP on a subset of rows with a bound for the rest was not built,
  because (a) is exact at about the cost of (b).
- (d) Grouping features is applied on top of (a): the previous-user
  features share one phrase, so their contributions are added up first.

So reasons use (a) by default, and ``method="lightgbm"`` (``--exact-reasons``)
runs LightGBM's own TreeSHAP on every row as a reference. On 200,000 rows
scored against a model of 288 trees of 4 leaves, ``pred_contrib`` cost 7.2
times a ``predict``, (a) 1.3 times with an empty cache and 0.6 times with a
warm one, and (b) 2.9 times with 79% of top-3 sets equal.

Phrasing is grouped: rows whose phrase reads the same facts (the rounded
value, whether a decayed count is recent, the previous-user facts) are
described once per group. On 1,000,000 scored contacts phrasing took 2.7 s
this way, against 6.9 s with one description per distinct raw value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

REASON_COUNT = 3
# Each row's reasons are chosen among this many more features than reasons,
# so that two features with the same phrase still leave ``top_k`` reasons.
EXTRA_CANDIDATES = 2
MIN_EFFECT = 1e-9
MAX_TABLE_VALUE_CHARS = 60

_SENIORITY_TITLES = {
    9: "C-level title",
    8: "VP-level title",
    7: "director-level title",
    6: "manager-level title",
    5: "senior individual contributor title",
    4: "individual contributor title",
    3: "assistant title",
    2: "intern title",
    1: "student title",
    0: "job title without a clear seniority",
}
_FUNCTION_NAMES = {"it": "IT", "hr": "HR", "customer_success": "customer success"}
_EMAIL_KINDS = {
    "work": "work email address",
    "personal": "personal email address",
    "role": "shared role email address (such as info@)",
    "disposable": "disposable email address",
    "missing": "no valid email address",
}
_EVENT_LABELS = {
    "home_page_view": "home page visits",
    "page_view": "website visits",
    "product_page_view": "product page views",
    "pricing_page_view": "pricing page views",
    "demo_request": "demo requests",
    "trial_signup": "trial sign-ups",
    "email_open": "email opens",
    "email_click": "email clicks",
    "email_bounce": "bounced emails",
    "webinar_registered": "webinar registrations",
    "webinar_attended": "webinars attended",
    "content_download": "content downloads",
    "chat": "chats",
    "form_submit": "form submissions",
    "unsubscribe": "unsubscribes",
    "other": "other interactions",
}
# A decayed count below this is an event more than about four half-lives old.
_RECENT_EVENTS = 0.05
_LAST_TIME = {
    "demo_request": ("requested a demo {when}", "never requested a demo"),
    "pricing_page_view": ("viewed the pricing page {when}", "never viewed the pricing page"),
    "trial_signup": ("started a trial {when}", "never started a trial"),
    "webinar_attended": ("attended a webinar {when}", "never attended a webinar"),
}
_NOT_A_USER = "not a previous product user"
# Features whose phrase depends only on the value rounded to a whole number,
# so that rounding first lets equal phrases share one description.
_WHOLE_NUMBER_FEATURES = frozenset(
    {
        "contact_age_days",
        "employee_count",
        "engagement_score",
        "events_last_30_days",
        "days_since_last_event",
        *(f"days_since_{key}" for key in _LAST_TIME),
    }
)
# Features that share the previous-user phrase, which depends on several of them.
_PREVIOUS_USER_FEATURES = frozenset(
    {
        "previous_user",
        "match_probability",
        "job_change",
        "power_user",
        "user_active_days",
        "user_is_admin",
        "user_plan",
        "user_tenure_days",
        "days_since_user_active",
    }
)


def _missing(value) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def _days(value: float) -> str:
    days = int(round(value))
    return "1 day" if days == 1 else f"{days:,} days"


def _ago(value: float) -> str:
    return "today" if int(round(value)) <= 0 else f"{_days(value)} ago"


def _money(value: float) -> str:
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if value >= size:
            amount = value / size
            return f"${amount:,.1f}{suffix}" if amount < 10 else f"${amount:,.0f}{suffix}"
    return f"${value:,.0f}"


def _is_on(value) -> bool:
    return not _missing(value) and float(value) >= 1


# ---------------------------------------------------------------------------
# Workspace features
# ---------------------------------------------------------------------------


def _previous_user_summary(row: Mapping) -> str:
    """Phrase the previous-user facts of a row as one reason.

    Every previous-user feature of a row gets this phrase, so their
    contributions add up to one reason: the features describe one fact, and
    TreeSHAP splits its effect between them in ways a reader cannot use. A
    previous user is described by activity and company ("previous power user
    at another company"). A non-user with a weaker identity match is
    described by that match, because it is the only evidence there is.
    """
    if not _is_on(row.get("previous_user")):
        probability = row.get("match_probability")
        if not _missing(probability) and probability > 0:
            return f"possible earlier product account (identity match {probability:.0%})"
        return _NOT_A_USER
    kind = "power user" if _is_on(row.get("power_user")) else "product user"
    job_change = row.get("job_change")
    if _missing(job_change):
        return f"previous {kind}"
    where = "at another company" if job_change >= 1 else "at the same company"
    return f"previous {kind} {where}"


def _seniority(value, sign: int) -> str:
    if _missing(value):
        return _SENIORITY_TITLES[0]
    return _SENIORITY_TITLES.get(int(value), _SENIORITY_TITLES[0])


def _job_function(value, sign: int) -> str:
    if _missing(value) or value == "unknown":
        return "no job title"
    if value == "other":
        return "job function outside the usual buyers"
    return f"works in {_FUNCTION_NAMES.get(value, str(value).replace('_', ' '))}"


def _engagement_score(value, sign: int) -> str:
    if round(value) == 0:
        return "no recent engagement"
    level = "high" if sign > 0 else "low"
    return f"{level} engagement score ({value:,.0f})"


def _interactions(value, sign: int) -> str:
    count = int(round(value))
    if count == 0:
        return "no interactions in the last 30 days"
    noun = "interaction" if count == 1 else "interactions"
    return f"{count:,} {noun} in the last 30 days"


_DESCRIBERS: dict[str, Callable[[object, int], str]] = {
    "seniority_level": _seniority,
    "job_function": _job_function,
    # The same phrase as the seniority level, so that the two merge into one reason.
    "is_student": lambda v, s: _SENIORITY_TITLES[1] if _is_on(v) else "not a student",
    "is_intern": lambda v, s: _SENIORITY_TITLES[2] if _is_on(v) else "not an intern",
    "email_kind": lambda v, s: _EMAIL_KINDS.get(v, _EMAIL_KINDS["missing"]) if not _missing(v) else _EMAIL_KINDS["missing"],
    "industry": lambda v, s: "industry unknown" if _missing(v) else f"in the {v} industry",
    "employee_count": lambda v, s: "company size unknown" if _missing(v) else f"company of {v:,.0f} employees",
    "log_annual_revenue": lambda v, s: "company revenue unknown" if _missing(v) else f"company revenue about {_money(10**v)}",
    "country": lambda v, s: "country unknown" if _missing(v) else f"based in {str(v).upper()}",
    "has_phone": lambda v, s: "phone number on file" if _is_on(v) else "no phone number on file",
    "has_linkedin": lambda v, s: "LinkedIn profile on file" if _is_on(v) else "no LinkedIn profile on file",
    "contact_age_days": lambda v, s: "CRM creation date unknown" if _missing(v) else f"in the CRM for {_days(v)}",
    "engagement_score": lambda v, s: "no engagement" if _missing(v) else _engagement_score(v, s),
    "events_last_30_days": lambda v, s: "no interactions in the last 30 days" if _missing(v) else _interactions(v, s),
    "days_since_last_event": lambda v, s: "no recorded interaction" if _missing(v) else f"last interaction {_ago(v)}",
}


def describe_feature(name: str, value, row: Mapping, sign: int = 1) -> str:
    """Return the phrase for one workspace feature's value.

    ``row`` maps the row's other feature names to values, which the
    previous-user phrases read. ``sign`` is the direction of the feature's
    contribution (positive or negative). An unknown name gets the generic
    phrase "<name> is <value>".
    """
    if name in _PREVIOUS_USER_FEATURES:
        return _previous_user_summary(row)
    if name.startswith("decayed_"):
        label = _EVENT_LABELS.get(name.removeprefix("decayed_"), name.removeprefix("decayed_").replace("_", " "))
        recent = not _missing(value) and value >= _RECENT_EVENTS
        return f"recent {label}" if recent else f"no recent {label}"
    if name.startswith("days_since_") and name.removeprefix("days_since_") in _LAST_TIME:
        seen, never = _LAST_TIME[name.removeprefix("days_since_")]
        return never if _missing(value) else seen.format(when=_ago(value))
    describe = _DESCRIBERS.get(name)
    if describe is not None:
        return describe(value, sign)
    return describe_table_value(name, value)


# ---------------------------------------------------------------------------
# Lead-table columns
# ---------------------------------------------------------------------------


def describe_table_value(column: str, value, kind: str | None = None) -> str:
    """Return the generic phrase "<column> is <value>" for a lead-table column.

    Yes/no columns (``kind="boolean"``) read "yes" or "no". Text is cut to
    ``MAX_TABLE_VALUE_CHARS`` characters, and semicolons and line breaks are
    replaced, so that joined reasons still split on "; ".
    """
    if _missing(value):
        return f"{column} is missing"
    if kind == "boolean":
        return f"{column} is {'yes' if _is_on(value) else 'no'}"
    if isinstance(value, (float, np.floating)):
        return f"{column} is {_number(float(value))}"
    text = re.sub(r"\s+", " ", str(value).replace(";", ",")).strip()
    if len(text) > MAX_TABLE_VALUE_CHARS:
        text = text[: MAX_TABLE_VALUE_CHARS - 3].rstrip() + "..."
    return f"{column} is {text}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "infinite"
    if value.is_integer():
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


# ---------------------------------------------------------------------------
# Ranking
# ---------------------------------------------------------------------------


def top_reasons(
    features: pd.DataFrame,
    contributions: np.ndarray,
    feature_names: list[str],
    top_k: int = REASON_COUNT,
    display_names: dict[str, str] | None = None,
    kinds: dict[str, str] | None = None,
) -> list[list[str]]:
    """Return, per row, up to ``top_k`` signed phrases with the largest absolute contribution.

    ``features`` is a frame, or a mapping from feature name to the column's
    values, which saves pandas' overhead on a single row. ``contributions``
    has one column per feature in ``feature_names`` (a last bias column may
    follow), as LightGBM's ``pred_contrib`` returns it. With
    ``display_names`` (lead tables), phrases are generic and name the
    original column, and ``kinds`` marks its yes/no columns. A phrase whose
    contribution is below ``MIN_EFFECT`` in size is left out.
    """
    signed, merged = _reason_table(features, contributions, feature_names, top_k, display_names, kinds)
    reasons = [[text for text in row if text is not None] for row in signed.tolist()]
    for row, texts in merged.items():
        reasons[row] = texts
    return reasons


def joined_reasons(
    features: pd.DataFrame,
    contributions: np.ndarray,
    feature_names: list[str],
    top_k: int = REASON_COUNT,
    display_names: dict[str, str] | None = None,
    kinds: dict[str, str] | None = None,
) -> np.ndarray:
    """Return the reasons of ``top_reasons`` as one text per row, joined with "; " (an object array)."""
    signed, merged = _reason_table(features, contributions, feature_names, top_k, display_names, kinds)
    texts = np.full(len(signed), "", dtype=object)
    # Reported reasons fill each row from the left, so a row's text grows column by column.
    for column in range(signed.shape[1]):
        present = signed[:, column] != None  # noqa: E711 - elementwise on an object array
        if column == 0:
            texts[present] = signed[present, 0]
        else:
            texts[present] = texts[present] + "; " + signed[present, column]
    for row, reasons in merged.items():
        texts[row] = "; ".join(reasons)
    return texts


def _reason_table(
    features: pd.DataFrame,
    contributions: np.ndarray,
    feature_names: list[str],
    top_k: int,
    display_names: dict[str, str] | None,
    kinds: dict[str, str] | None,
) -> tuple[np.ndarray, dict[int, list[str]]]:
    """Return the signed phrases per row and slot (None where a row has fewer reasons) and the rows whose reasons were merged."""
    n_features = len(feature_names)
    effects = np.asarray(contributions, dtype=np.float64)[:, :n_features]
    if len(effects) == 0 or n_features == 0 or top_k <= 0:
        return np.full((len(effects), 0), None, dtype=object), {}

    if display_names is None:
        effects = _merge_previous_user_group(effects, feature_names)
    shortlist = _shortlist(effects, min(n_features, top_k + EXTRA_CANDIDATES))
    shortlist_effects = np.take_along_axis(effects, shortlist, axis=1)
    valid = np.abs(shortlist_effects) >= MIN_EFFECT
    # The extra candidates are phrased only for rows whose first ``top_k`` repeat a phrase.
    first = valid.copy()
    first[:, top_k:] = False
    phrases = _shortlist_phrases(features, feature_names, shortlist, shortlist_effects, first, display_names, kinds)

    # Rows whose first ``top_k`` phrases repeat one merge the contributions of
    # their whole shortlist; the others take those phrases as they are.
    repeated = _has_repeated_phrase(phrases[:, :top_k])
    if repeated.any() and shortlist.shape[1] > top_k:
        extra = np.zeros_like(valid)
        extra[repeated, top_k:] = valid[repeated, top_k:]
        more = _shortlist_phrases(features, feature_names, shortlist, shortlist_effects, extra, display_names, kinds)
        phrases[extra] = more[extra]
    reported = first[:, :top_k]
    signs = np.where(shortlist_effects[:, :top_k] > 0, "+ ", "- ").astype(object)
    signed = signs + np.where(reported, phrases[:, :top_k], "").astype(object)
    signed[~reported] = None
    merged = {int(row): _merged_reasons(phrases[row], shortlist_effects[row], valid[row], top_k) for row in np.flatnonzero(repeated)}
    return signed, merged


def _merge_previous_user_group(effects: np.ndarray, feature_names: list[str]) -> np.ndarray:
    """Add the previous-user features' contributions into the first of them, since they share one phrase."""
    members = [position for position, name in enumerate(feature_names) if name in _PREVIOUS_USER_FEATURES]
    if len(members) < 2:
        return effects
    merged = effects.copy()
    merged[:, members[0]] = effects[:, members].sum(axis=1)
    merged[:, members[1:]] = 0.0
    return merged


def _shortlist(effects: np.ndarray, size: int) -> np.ndarray:
    """Return per row the ``size`` feature positions with the largest absolute effect, largest first."""
    magnitude = np.abs(effects)
    if size < effects.shape[1]:
        picked = np.argpartition(-magnitude, size - 1, axis=1)[:, :size]
    else:
        picked = np.broadcast_to(np.arange(effects.shape[1]), effects.shape)
    order = np.argsort(-np.take_along_axis(magnitude, picked, axis=1), axis=1, kind="stable")
    return np.take_along_axis(picked, order, axis=1)


def _shortlist_phrases(
    features: pd.DataFrame,
    feature_names: list[str],
    shortlist: np.ndarray,
    shortlist_effects: np.ndarray,
    valid: np.ndarray,
    display_names: dict[str, str] | None,
    kinds: dict[str, str] | None,
) -> np.ndarray:
    """Phrase the shortlist entries marked in ``valid``, one feature at a time."""
    phrases = np.full(shortlist.shape, None, dtype=object)
    rows, slots = np.nonzero(valid)
    positions = shortlist[rows, slots]
    order = np.argsort(positions, kind="stable")
    rows, slots, positions = rows[order], slots[order], positions[order]
    starts = np.flatnonzero(np.diff(positions, prepend=-1))
    for start, end in zip(starts, [*starts[1:], len(positions)]):
        name = feature_names[positions[start]]
        entry_rows, entry_slots = rows[start:end], slots[start:end]
        signs = np.where(shortlist_effects[entry_rows, entry_slots] > 0, 1, -1)
        phrases[entry_rows, entry_slots] = _feature_phrases(features, name, entry_rows, signs, display_names, kinds)
    return phrases


def _feature_phrases(
    features: pd.DataFrame,
    name: str,
    rows: np.ndarray,
    signs: np.ndarray,
    display_names: dict[str, str] | None,
    kinds: dict[str, str] | None,
) -> np.ndarray:
    """Phrase one feature on ``rows``, describing each group of rows that must share a phrase once.

    A million rows have a few thousand distinct phrases, so describing one
    row per group and copying its phrase to the others keeps phrasing cheap.
    The groups come from ``_phrase_keys``: rows with equal keys get equal
    phrases by construction of the keys.
    """
    keys, describe = _phrasing(features, name, rows, signs, display_names, kinds)

    # One row (a request to the HTTP service) needs no grouping.
    if len(rows) <= 1:
        group, representatives = np.zeros(len(rows), dtype=np.intp), np.arange(len(rows))
    else:
        group, representatives = _group_rows(keys())

    texts = np.empty(len(representatives), dtype=object)
    texts[:] = [describe(row) for row in representatives]
    return texts[group]


def _phrasing(
    features: pd.DataFrame,
    name: str,
    rows: np.ndarray,
    signs: np.ndarray,
    display_names: dict[str, str] | None,
    kinds: dict[str, str] | None,
) -> tuple[Callable[[], list[np.ndarray]], Callable[[int], str]]:
    """Return a function for the phrase keys of one feature on ``rows`` and one that phrases the row at a position."""
    if display_names is None and name in _PREVIOUS_USER_FEATURES:
        context = {key: _column(features, key, rows) for key in _SUMMARY_CONTEXT}

        def previous_user_phrase(row: int) -> str:
            return _previous_user_summary({key: _python_value(column[row]) for key, column in context.items()})

        return (lambda: [_previous_user_key(context), signs]), previous_user_phrase

    values = _column(features, name, rows)

    def keys() -> list[np.ndarray]:
        return [*_phrase_keys(name, values, display_names), signs]

    if display_names is not None:
        column, kind = display_names.get(name, name), (kinds or {}).get(name)
        return keys, lambda row: describe_table_value(column, _python_value(values[row]), kind)

    def feature_phrase(row: int) -> str:
        value = _python_value(values[row])
        if value is not None and name in _WHOLE_NUMBER_FEATURES:
            value = round(value)
        return describe_feature(name, value, {}, int(signs[row]))

    return keys, feature_phrase


def _column(features: pd.DataFrame | Mapping, name: str, rows: np.ndarray) -> np.ndarray:
    # "in" reads a frame's columns or a mapping's keys.
    if name not in features:
        return np.full(len(rows), None, dtype=object)
    values = features[name]
    return (values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values, dtype=object))[rows]


def _python_value(value):
    """Return a value as a Python object, with every kind of missing value as None."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _numbers(values: np.ndarray) -> np.ndarray:
    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _phrase_keys(name: str, values: np.ndarray, display_names: dict[str, str] | None) -> list[np.ndarray]:
    """Return arrays whose values, taken together, decide the phrase of one feature.

    The raw value decides it in general. Continuous workspace features would
    make every row its own group, so those whose phrase reads only the
    rounded value, or only whether the value passes a threshold, are keyed
    by exactly that.
    """
    if display_names is not None:
        return [values]
    if name.startswith("decayed_"):
        numbers = _numbers(values)
        return [np.where(np.isnan(numbers), 0, numbers >= _RECENT_EVENTS)]
    if name in _WHOLE_NUMBER_FEATURES:
        return [np.rint(_numbers(values))]
    return [values]


def _previous_user_key(context: dict[str, np.ndarray]) -> np.ndarray:
    """Key the shared previous-user phrase by the facts ``_previous_user_summary`` reads.

    Those are: previous user or not, power user or not, job change missing,
    yes or no, and for non-users the identity match in whole percent (0 when
    missing or not above 0).
    """
    previous = np.nan_to_num(_numbers(context["previous_user"]), nan=0.0) >= 1
    power = np.nan_to_num(_numbers(context["power_user"]), nan=0.0) >= 1
    change = _numbers(context["job_change"])
    change_state = np.where(np.isnan(change), 2, change >= 1)
    probability = _numbers(context["match_probability"])
    with np.errstate(invalid="ignore"):
        percent = np.where(np.isnan(probability) | ~(probability > 0), 0, np.rint(probability * 100) + 1)
    return ((previous * 2 + power) * 3 + change_state) * 1000 + np.where(previous, 0, percent)


def _group_rows(keys: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Return each row's group number and one row of each group, for rows with equal keys in every array."""
    n_rows = len(keys[0])
    group = np.zeros(n_rows, dtype=np.int64)
    for key in keys:
        codes, uniques = pd.factorize(key, use_na_sentinel=False)
        # Refactorizing after each key keeps the combined codes below n_rows * len(uniques).
        group, _ = pd.factorize(group * len(uniques) + codes)
    n_groups = int(group.max()) + 1
    representatives = np.empty(n_groups, dtype=np.intp)
    representatives[group] = np.arange(n_rows)
    return group, representatives


# The previous-user values that the shared phrase reads.
_SUMMARY_CONTEXT = ("previous_user", "power_user", "job_change", "match_probability")


def _has_repeated_phrase(phrases: np.ndarray) -> np.ndarray:
    """Mark rows in which two shortlist entries have the same phrase."""
    repeated = np.zeros(len(phrases), dtype=bool)
    for first in range(phrases.shape[1]):
        for second in range(first + 1, phrases.shape[1]):
            same = phrases[:, first] == phrases[:, second]
            repeated |= same & (phrases[:, first] != None)  # noqa: E711 - elementwise on an object array
    return repeated


def _merged_reasons(phrases: np.ndarray, effects: np.ndarray, valid: np.ndarray, top_k: int) -> list[str]:
    """Add up the contributions of equal phrases in one row's shortlist and return the top ``top_k``."""
    totals: dict[str, float] = {}
    for phrase, effect, ok in zip(phrases.tolist(), effects.tolist(), valid.tolist()):
        if ok:
            totals[phrase] = totals.get(phrase, 0.0) + effect
    ranked = sorted(totals.items(), key=lambda item: -abs(item[1]))
    return [("+ " if total > 0 else "- ") + phrase for phrase, total in ranked[:top_k] if abs(total) >= MIN_EFFECT]
