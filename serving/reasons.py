"""Readable reasons for a score from per-feature contributions.

LightGBM's SHAP contributions measure how much each feature moved a lead's
log-odds. The features with the largest absolute moves become reasons,
phrased from the feature's value ("requested a demo 3 days ago") and marked
with the direction they pushed the score ("+" raises it, "-" lowers it).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from leadlink.features.titles import SENIORITY_LEVELS

_SENIORITY_NAMES = {value: name.replace("_", " ") for name, value in SENIORITY_LEVELS.items()}

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
_LAST_TIME = {
    "demo_request": ("requested a demo {days} ago", "never requested a demo"),
    "pricing_page_view": ("viewed the pricing page {days} ago", "never viewed the pricing page"),
    "trial_signup": ("started a trial {days} ago", "never started a trial"),
    "webinar_attended": ("attended a webinar {days} ago", "never attended a webinar"),
}


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _days(value: float) -> str:
    days = int(round(value))
    if days <= 0:
        return "today"
    return "1 day" if days == 1 else f"{days:,} days"


def describe_feature(name: str, value, row: dict) -> str:
    """Return a short phrase for one feature's value in the context of its row."""
    if name.startswith("decayed_"):
        label = _EVENT_LABELS.get(name.removeprefix("decayed_"), name)
        return f"recent {label}" if not _missing(value) and value > 0.05 else f"no recent {label}"
    if name.startswith("days_since_") and name.removeprefix("days_since_") in _LAST_TIME:
        seen, never = _LAST_TIME[name.removeprefix("days_since_")]
        return never if _missing(value) else seen.format(days=_days(value)).replace("today ago", "today")
    describe = _DESCRIBERS.get(name)
    if describe is not None:
        return describe(value, row)
    if _missing(value):
        return f"{name} unknown"
    return f"{name} = {value}"


def _previous_user(value, row) -> str:
    if value and value >= 1:
        probability = row.get("match_probability")
        if _missing(probability):
            return "used the product before"
        return f"used the product before (identity match {probability:.0%})"
    return "no earlier product use found"


def _job_change(value, row) -> str:
    if _missing(value):
        return "not a previous user"
    return "previous user now at another company" if value >= 1 else "product user at the same company"


def _power_user(value, row) -> str:
    if not row.get("previous_user"):
        return "not a previous user"
    days = row.get("user_active_days")
    active = "" if _missing(days) else f" ({days:,.0f} active days)"
    kind = "power user" if value and value >= 1 else "casual user"
    where = "at another company" if row.get("job_change") == 1 else "of the product"
    return f"previous {kind} {where}{active}"


_DESCRIBERS = {
    "previous_user": _previous_user,
    "match_probability": lambda v, r: "no identity match" if not v else f"identity match {v:.0%} with a product user",
    "job_change": _job_change,
    "power_user": _power_user,
    "user_active_days": lambda v, r: "not a previous user" if _missing(v) else f"{v:,.0f} active days in the product",
    "user_is_admin": lambda v, r: "was an admin of a product account" if v else "was not an admin",
    "user_plan": lambda v, r: "not a previous user" if _missing(v) else f"had the {v} plan",
    "user_tenure_days": lambda v, r: "not a previous user" if _missing(v) else f"used the product for {_days(v)}",
    "days_since_user_active": lambda v, r: "not a previous user" if _missing(v) else f"last active in the product {_days(v)} ago",
    "seniority_level": lambda v, r: f"seniority: {_SENIORITY_NAMES.get(int(v), 'unknown') if not _missing(v) else 'unknown'}",
    "job_function": lambda v, r: "job function unknown" if _missing(v) or v == "unknown" else f"works in {str(v).replace('_', ' ')}",
    "is_student": lambda v, r: "student" if v else "not a student",
    "is_intern": lambda v, r: "intern" if v else "not an intern",
    "email_kind": lambda v, r: "no email address" if _missing(v) or v == "missing" else f"{v} email address",
    "industry": lambda v, r: "industry unknown" if _missing(v) else f"industry: {v}",
    "employee_count": lambda v, r: "company size unknown" if _missing(v) else f"company of {v:,.0f} employees",
    "log_annual_revenue": lambda v, r: "company revenue unknown" if _missing(v) else f"company revenue about ${10 ** v:,.0f}",
    "country": lambda v, r: "country unknown" if _missing(v) else f"based in {str(v).upper()}",
    "has_phone": lambda v, r: "phone number on file" if v else "no phone number",
    "has_linkedin": lambda v, r: "LinkedIn profile on file" if v else "no LinkedIn profile",
    "contact_age_days": lambda v, r: "CRM creation date unknown" if _missing(v) else f"in the CRM for {_days(v)}",
    "engagement_score": lambda v, r: f"engagement score {v:,.0f}",
    "events_last_30_days": lambda v, r: f"{v:,.0f} interactions in the last 30 days",
    "days_since_last_event": lambda v, r: "no recorded interaction" if _missing(v) else f"last interaction {_days(v)} ago".replace("today ago", "today"),
}


def top_reasons(
    features: pd.DataFrame,
    contributions: np.ndarray,
    feature_names: list[str],
    top_k: int = 3,
    display_names: dict[str, str] | None = None,
) -> list[list[str]]:
    """Return, per row, the ``top_k`` reasons with the largest absolute contribution.

    ``contributions`` has one column per feature and a last bias column, as
    LightGBM's ``pred_contrib`` returns it. Features whose phrases repeat in a
    row (the previous-user group often does) are reported once. With
    ``display_names`` (lead tables), a reason reads "<column> = <value>".
    """
    effects = contributions[:, : len(feature_names)]
    order = np.argsort(-np.abs(effects), axis=1, kind="stable")
    records = features[feature_names].to_dict("records")
    reasons = []
    for row_index, record in enumerate(records):
        phrases: list[str] = []
        for column in order[row_index]:
            effect = effects[row_index, column]
            if abs(effect) < 1e-9 or len(phrases) >= top_k:
                break
            name = feature_names[column]
            if display_names is not None:
                phrase = _describe_table_value(display_names.get(name, name), record.get(name))
            else:
                phrase = describe_feature(name, record.get(name), record)
            signed = ("+ " if effect > 0 else "- ") + phrase
            if signed not in phrases:
                phrases.append(signed)
        reasons.append(phrases)
    return reasons


def _describe_table_value(column: str, value) -> str:
    if _missing(value):
        return f"{column} missing"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{column} = {value}"
