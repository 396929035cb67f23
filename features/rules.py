"""Rules-based lead score: fit points, decayed engagement points, MQL flag and grade.

Marketing teams score leads with hand-set points. leadlink offers the same
score as a feature and uses it as the baseline a trained model must beat.

    fit_points        = sum of the fit rules that match the lead
    engagement_points = sum over event kinds of points * decayed event count,
                        capped at engagement.max_points when it is set
    rules_score       = fit_points + engagement_points
    is_mql            = rules_score >= mql_threshold
    grade             = fit letter (A..D) + engagement digit (1..4), e.g. "B2"

The rules live in a TOML file validated by ``RulesConfig``. The packaged
default is ``rules.toml`` beside this module, and ``docs/rules.md`` describes
the format. Scoring reads the columns that ``pipeline.build_features``
produces and is vectorised, so it costs a few array operations per rule.
"""

from __future__ import annotations

import bisect
import math
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import replace
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from leadlink.errors import LeadlinkError
from leadlink.features import titles
from leadlink.features.normalize import fold_text
from leadlink.features.pipeline import ENGAGEMENT_KEYS, FeatureConfig

DEFAULT_RULES_FILE = "rules.toml"

SENIORITY_LABELS = tuple(titles.SENIORITY_LEVELS)
# NOTE: titles.py lists its function labels only inside the private
# _FUNCTION_RULES, so they are read from there. The label is the first field
# of each rule, and a label may repeat. "other" and "unknown" are what
# parse_function returns for a title that matches no rule and for a missing title.
JOB_FUNCTIONS = (*dict.fromkeys(rule[0] for rule in titles._FUNCTION_RULES), "other", "unknown")
# The values normalize.email_domain_kind returns.
EMAIL_KINDS = ("work", "role", "personal", "disposable", "missing")

# Labels whose points a missing value gets, because the feature pipeline
# writes these labels for a missing job title or email.
_MISSING_SENIORITY = "unknown"
_MISSING_JOB_FUNCTION = "unknown"
_MISSING_EMAIL_KIND = "missing"

FIT_COLUMNS = {
    "seniority": "seniority_level",
    "job_function": "job_function",
    "industry": "industry",
    "country": "country",
    "email_kind": "email_kind",
    "employee_count": "employee_count",
    "annual_revenue": "log_annual_revenue",
}

FIT_LETTERS = ("A", "B", "C", "D")
GRADES = tuple(f"{letter}{digit}" for letter in FIT_LETTERS for digit in "1234")

# Reasons worth 0.5 points or less are left out, because they would print as +0 or -0.
_MAX_HIDDEN_REASON_POINTS = 0.5


class RulesConfigError(LeadlinkError, ValueError):
    """A rules file or dictionary that fails to parse or validate."""


# ---------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------


class _RulesModel(BaseModel):
    # Strict types reject a quoted number or true/false where points belong,
    # because in a hand-edited file those are typing mistakes.
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class Band(_RulesModel):
    """Points for a numeric value at or above ``min``."""

    min: float = Field(ge=0)
    points: float


class BandedPoints(_RulesModel):
    """Points by bands of a numeric value, plus points for a missing value."""

    unknown: float = 0.0
    bands: list[Band] = Field(default_factory=list)

    @field_validator("bands")
    @classmethod
    def _sort_bands(cls, bands: list[Band]) -> list[Band]:
        ordered = sorted(bands, key=lambda band: band.min)
        for lower, upper in zip(ordered, ordered[1:]):
            if lower.min == upper.min:
                raise ValueError(f"two bands have min = {lower.min:g}. Give each band its own min.")
        return ordered


class FitRules(_RulesModel):
    """Points for who the person and the company are."""

    seniority: dict[str, float] = Field(default_factory=dict)
    job_function: dict[str, float] = Field(default_factory=dict)
    industry: dict[str, float] = Field(default_factory=dict)
    country: dict[str, float] = Field(default_factory=dict)
    email_kind: dict[str, float] = Field(default_factory=dict)
    employee_count: BandedPoints = Field(default_factory=BandedPoints)
    annual_revenue: BandedPoints = Field(default_factory=BandedPoints)

    @field_validator("seniority")
    @classmethod
    def _check_seniority(cls, points: dict[str, float]) -> dict[str, float]:
        return _check_labels(points, SENIORITY_LABELS, "seniority label")

    @field_validator("job_function")
    @classmethod
    def _check_job_function(cls, points: dict[str, float]) -> dict[str, float]:
        return _check_labels(points, JOB_FUNCTIONS, "job function")

    @field_validator("email_kind")
    @classmethod
    def _check_email_kind(cls, points: dict[str, float]) -> dict[str, float]:
        return _check_labels(points, EMAIL_KINDS, "email kind")

    @field_validator("industry", "country")
    @classmethod
    def _fold_names(cls, points: dict[str, float]) -> dict[str, float]:
        return _fold_keys(points)


class EngagementRules(_RulesModel):
    """Points per engagement event, decayed with the event's age."""

    half_life_days: float = Field(gt=0)
    max_points: float | None = Field(default=None, ge=0)
    points: dict[str, float] = Field(default_factory=dict)

    @field_validator("points")
    @classmethod
    def _check_events(cls, points: dict[str, float]) -> dict[str, float]:
        return _check_labels(points, ENGAGEMENT_KEYS, "event")


class GradeRules(_RulesModel):
    """Thresholds of the fit letter (on fit points) and engagement digit (on engagement points)."""

    fit_a: float
    fit_b: float
    fit_c: float
    engagement_1: float
    engagement_2: float
    engagement_3: float

    @model_validator(mode="after")
    def _check_order(self) -> GradeRules:
        if not self.fit_a > self.fit_b > self.fit_c:
            raise ValueError(
                f"fit thresholds must decrease from A to C, but fit_a = {self.fit_a:g}, "
                f"fit_b = {self.fit_b:g} and fit_c = {self.fit_c:g}"
            )
        if not self.engagement_1 > self.engagement_2 > self.engagement_3:
            raise ValueError(
                f"engagement thresholds must decrease from 1 to 3, but engagement_1 = {self.engagement_1:g}, "
                f"engagement_2 = {self.engagement_2:g} and engagement_3 = {self.engagement_3:g}"
            )
        return self


class RulesConfig(_RulesModel):
    """A validated rules config: fit and engagement points, MQL threshold and grade thresholds."""

    mql_threshold: float
    fit: FitRules = Field(default_factory=FitRules)
    engagement: EngagementRules
    grade: GradeRules

    def to_dict(self) -> dict:
        """Return the config as plain JSON-safe values that ``from_dict`` reads back."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, values: Mapping, source: str = "rules dictionary") -> RulesConfig:
        """Validate a config from a dictionary. ``source`` names it in error messages."""
        return _validate(values, source)


def _check_labels(points: dict[str, float], valid: tuple[str, ...], kind: str) -> dict[str, float]:
    unknown = [key for key in points if key not in valid]
    if unknown:
        names = ", ".join(repr(key) for key in unknown)
        raise ValueError(f"unknown {kind} {names}. Valid {kind}s are {', '.join(valid)}.")
    return points


def _fold_keys(points: dict[str, float]) -> dict[str, float]:
    """Fold names as the feature pipeline folds column values, so "Software" matches "software"."""
    folded: dict[str, float] = {}
    for key, value in points.items():
        name = fold_text(key)
        if name is None:
            raise ValueError("a name is empty. Write the name or remove the line.")
        if name in folded:
            raise ValueError(f"{key!r} is listed twice, because names are compared ignoring case and accents")
        folded[name] = value
    return folded


def load_rules(path: str | Path | None = None) -> RulesConfig:
    """Read and validate a rules TOML file, or the packaged default when ``path`` is None.

    Raises ``RulesConfigError`` naming the file for a missing or unreadable
    file, invalid TOML, an unknown key or label, or a value of the wrong type.
    """
    if path is None:
        resource = resources.files("leadlink.features").joinpath(DEFAULT_RULES_FILE)
        source = str(resource)
        text = resource.read_text(encoding="utf-8")
    else:
        source = str(path)
        text = _read_rules_file(Path(path))

    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise RulesConfigError(f"{source} is not valid TOML: {error}") from None

    return _validate(values, source)


def _read_rules_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RulesConfigError(f"rules file not found: {path}") from None
    except UnicodeDecodeError:
        raise RulesConfigError(f"rules file {path} is not UTF-8 text") from None
    except OSError as error:
        raise RulesConfigError(f"failed to read rules file {path}: {error.strerror}") from None


def _validate(values: Mapping, source: str) -> RulesConfig:
    """Validate ``values`` and turn pydantic's errors into one readable message."""
    try:
        return RulesConfig.model_validate(dict(values))
    except ValidationError as error:
        problems = [_describe_problem(detail) for detail in error.errors()]
        lines = "\n".join(f"  - {problem}" for problem in problems)
        raise RulesConfigError(f"invalid rules in {source}:\n{lines}") from None


def _describe_problem(detail: Mapping) -> str:
    location = detail["loc"]
    where = _format_location(location)
    kind = detail["type"]

    if kind == "extra_forbidden":
        section = _format_location(location[:-1]) or "the top level"
        valid = ", ".join(_valid_keys(location[:-1]))
        return f"unknown key {where!r}. Valid keys in {section} are {valid}."
    if kind == "missing":
        return f"missing required key {where!r}"

    message = detail["msg"].removeprefix("Value error, ")
    if kind != "value_error":
        # Type and range errors do not repeat the value, so show it.
        value_text = repr(detail.get("input"))
        if len(value_text) > 60:
            value_text = value_text[:57] + "..."
        message = f"{message}, got {value_text}"
    return f"{where}: {message}" if where else message


def _format_location(location: tuple) -> str:
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _valid_keys(location: tuple) -> list[str]:
    """List the keys the config model accepts at ``location``, for an unknown-key message."""
    model: type[BaseModel] = RulesConfig
    for part in location:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[part].annotation
        if typing.get_origin(annotation) is list:
            annotation = typing.get_args(annotation)[0]
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


# ---------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------


def rules_engagement_config(rules: RulesConfig, base: FeatureConfig | None = None) -> FeatureConfig:
    """Return a feature config whose half-life matches the rules, for recomputing engagement columns.

    Pass the result to ``pipeline.engagement_features(events, moments, config)``
    when the features were built with another half-life. The other settings
    come from ``base``, or from the defaults when it is None.
    """
    return replace(base or FeatureConfig(), half_life_days=rules.engagement.half_life_days)


def score_rules(features: pd.DataFrame, rules: RulesConfig, features_half_life_days: float) -> pd.DataFrame:
    """Score every lead of a feature frame with the rules.

    ``features_half_life_days`` is the half-life the ``decayed_<event>``
    columns were computed with. It must equal the rules' half-life, because
    points per event assume the rules' decay. A ValueError names both values
    when they differ.

    Returns a frame indexed like ``features`` with fit_points,
    engagement_points, rules_score, fit_letter ("A" to "D", categorical),
    engagement_digit (1 to 4), grade ("A1" to "D4", categorical) and is_mql.
    Missing values
    score 0 points, except where the rules give points to "unknown" (seniority,
    job function, employee count, revenue) or "missing" (email kind).
    """
    _check_half_life(rules, features_half_life_days)
    _check_columns(features, rules)

    fit_lines = _fit_contributions(features, rules.fit)
    engagement_lines = _engagement_contributions(features, rules.engagement)
    fit_points = _sum_lines(fit_lines, len(features))
    engagement_points = _sum_lines(engagement_lines, len(features))
    if rules.engagement.max_points is not None:
        engagement_points = np.minimum(engagement_points, rules.engagement.max_points)
    total = fit_points + engagement_points

    grade = rules.grade
    letter_index = _threshold_index(fit_points, (grade.fit_a, grade.fit_b, grade.fit_c))
    digit_index = _threshold_index(engagement_points, (grade.engagement_1, grade.engagement_2, grade.engagement_3))

    return pd.DataFrame(
        {
            "fit_points": fit_points,
            "engagement_points": engagement_points,
            "rules_score": total,
            # Categoricals from codes cost an array copy, where a million
            # Python strings would be converted one by one.
            "fit_letter": pd.Categorical.from_codes(letter_index, categories=FIT_LETTERS),
            "engagement_digit": (digit_index + 1).astype("int64"),
            "grade": pd.Categorical.from_codes(letter_index * 4 + digit_index, categories=GRADES),
            "is_mql": total >= rules.mql_threshold,
        },
        index=features.index,
    )


def _check_half_life(rules: RulesConfig, features_half_life_days: float) -> None:
    expected = rules.engagement.half_life_days
    if not math.isclose(float(features_half_life_days), expected, rel_tol=1e-9):
        raise ValueError(
            f"the engagement columns were computed with a half-life of {features_half_life_days:g} days, "
            f"but the rules use {expected:g} days. Recompute them with "
            "pipeline.engagement_features(events, moments, rules_engagement_config(rules))."
        )


def _required_columns(rules: RulesConfig) -> list[str]:
    """List the feature columns the rules read. A section without rules needs no column."""
    fit = rules.fit
    columns = [column for section, column in FIT_COLUMNS.items() if _has_rules(getattr(fit, section))]
    columns += [f"decayed_{key}" for key, points in rules.engagement.points.items() if points != 0]
    return columns


def _has_rules(section: dict[str, float] | BandedPoints) -> bool:
    if isinstance(section, BandedPoints):
        return bool(section.bands) or section.unknown != 0
    return bool(section)


def _check_columns(features: pd.DataFrame, rules: RulesConfig) -> None:
    missing = [column for column in _required_columns(rules) if column not in features.columns]
    if missing:
        raise ValueError(
            f"the feature frame lacks columns the rules read: {', '.join(missing)}. "
            "Build it with pipeline.build_features."
        )


def _fit_contributions(features: pd.DataFrame, fit: FitRules) -> dict[str, np.ndarray]:
    """Return the points of each fit rule section that has rules, one value per lead."""
    lines: dict[str, np.ndarray] = {}
    if fit.seniority:
        lines["seniority"] = _seniority_points(features["seniority_level"], fit.seniority)
    if fit.job_function:
        lines["job_function"] = _label_points(features["job_function"], fit.job_function, _MISSING_JOB_FUNCTION)
    if fit.industry:
        lines["industry"] = _label_points(features["industry"], fit.industry)
    if fit.country:
        lines["country"] = _label_points(features["country"], fit.country)
    if fit.email_kind:
        lines["email_kind"] = _label_points(features["email_kind"], fit.email_kind, _MISSING_EMAIL_KIND)
    if _has_rules(fit.employee_count):
        employees = _as_float(features["employee_count"])
        lines["employee_count"] = _band_points(employees, _band_minimums(fit.employee_count), fit.employee_count)
    if _has_rules(fit.annual_revenue):
        # Bands are compared in log10 space, where the frame stores revenue.
        # np.log10 of a band's min is the value the pipeline stores for a
        # revenue of exactly that min, so a boundary value lands in its band.
        with np.errstate(divide="ignore"):
            log_minimums = np.log10(_band_minimums(fit.annual_revenue))
        log_revenue = _as_float(features["log_annual_revenue"])
        lines["annual_revenue"] = _band_points(log_revenue, log_minimums, fit.annual_revenue)
    return lines


def _engagement_contributions(features: pd.DataFrame, engagement: EngagementRules) -> dict[str, np.ndarray]:
    """Return points * decayed count for each event kind with non-zero points."""
    lines: dict[str, np.ndarray] = {}
    for key, points in engagement.points.items():
        if points == 0:
            continue
        decayed = np.nan_to_num(_as_float(features[f"decayed_{key}"]), nan=0.0)
        lines[key] = points * decayed
    return lines


def _as_float(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _sum_lines(lines: dict[str, np.ndarray], length: int) -> np.ndarray:
    total = np.zeros(length)
    for points in lines.values():
        total += points
    return total


def _seniority_points(levels: pd.Series, points: dict[str, float]) -> np.ndarray:
    by_level = np.zeros(max(titles.SENIORITY_LEVELS.values()) + 1)
    for label, level in titles.SENIORITY_LEVELS.items():
        by_level[level] = points.get(label, 0.0)

    values = _as_float(levels)
    valid = np.isfinite(values) & (values >= 0) & (values < len(by_level)) & (values == np.floor(values))
    # A missing or out-of-range level gets the points of "unknown".
    index = np.where(valid, values, titles.SENIORITY_LEVELS[_MISSING_SENIORITY]).astype("int64")
    return by_level[index]


def _label_points(values: pd.Series, points: dict[str, float], missing_label: str | None = None) -> np.ndarray:
    """Look up points per text value, giving a missing value the points of ``missing_label``.

    Values are folded once per distinct value, so a frame that was not built
    by the pipeline ("Software", "US") still matches the folded rule names.
    """
    missing_points = points.get(missing_label, 0.0) if missing_label else 0.0
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    table = []
    for value in uniques:
        name = fold_text(value)
        table.append(missing_points if name is None else points.get(name, 0.0))
    # factorize codes a missing value as -1, which picks the last entry.
    table.append(missing_points)
    return np.asarray(table, dtype="float64")[codes]


def _band_minimums(rule: BandedPoints) -> np.ndarray:
    return np.array([band.min for band in rule.bands], dtype="float64")


def _band_points(values: np.ndarray, minimums: np.ndarray, rule: BandedPoints) -> np.ndarray:
    """Give each value the points of the highest band whose min it reaches.

    ``minimums`` are the bands' mins on the scale of ``values`` and sorted,
    because ``BandedPoints`` sorts its bands. A value below every band gets
    0 points and a missing one gets ``rule.unknown``.
    """
    result = np.full(len(values), rule.unknown, dtype="float64")
    known = ~np.isnan(values)
    if not rule.bands:
        result[known] = 0.0
        return result

    band_points = np.array([band.points for band in rule.bands], dtype="float64")
    band_index = np.searchsorted(minimums, values[known], side="right") - 1
    result[known] = np.where(band_index >= 0, band_points[np.maximum(band_index, 0)], 0.0)
    return result


def _threshold_index(points: np.ndarray, thresholds: tuple[float, float, float]) -> np.ndarray:
    """Return 0 at or above the first threshold, 1 at or above the second, 2 at or above the third, else 3."""
    index = np.full(len(points), 3, dtype="int64")
    for threshold in thresholds:
        index -= points >= threshold
    return index


# ---------------------------------------------------------------------------
# Reasons
# ---------------------------------------------------------------------------

_SENIORITY_TEXT = {
    "c_level": "C-level",
    "vice_president": "Vice president",
    "unknown": "seniority unknown",
}
_FUNCTION_TEXT = {"it": "IT", "hr": "HR", "customer_success": "customer success"}
_EMAIL_TEXT = {"missing": "no valid email"}
_EVENT_TEXT = {
    "home_page_view": "visited the home page",
    "page_view": "visited the website",
    "product_page_view": "viewed product pages",
    "pricing_page_view": "viewed the pricing page",
    "demo_request": "requested a demo",
    "trial_signup": "started a trial",
    "email_open": "opened emails",
    "email_click": "clicked emails",
    "email_bounce": "emails bounced",
    "webinar_registered": "registered for a webinar",
    "webinar_attended": "attended a webinar",
    "content_download": "downloaded content",
    "chat": "used the chat",
    "form_submit": "submitted a form",
    "unsubscribe": "unsubscribed",
    "other": "other activity",
}


def rules_reasons(
    features: pd.DataFrame | pd.Series | Mapping,
    rules: RulesConfig,
    top: int = 3,
    features_half_life_days: float | None = None,
) -> pd.Series | list[str]:
    """Phrase the rules that moved a lead's score the most, such as "Director (+15)".

    Rules are ranked by the absolute size of their points, so a large penalty
    ("personal email (-10)") shows as readily as a large gain. Rules worth
    half a point or less are left out. Engagement lines show points before
    the ``max_points`` cap, so they can add up to more than engagement_points.

    Returns a list of phrases for one lead (a Series or mapping of its
    features) and a Series of such lists, indexed like the frame, for a
    DataFrame. ``features_half_life_days`` is checked as in ``score_rules``
    when it is given.
    """
    if features_half_life_days is not None:
        _check_half_life(rules, features_half_life_days)
    single = not isinstance(features, pd.DataFrame)
    frame = _as_frame(features)
    _check_columns(frame, rules)

    lines = {("fit", name): points for name, points in _fit_contributions(frame, rules.fit).items()}
    lines |= {("engagement", key): points for key, points in _engagement_contributions(frame, rules.engagement).items()}
    reasons = _phrase_top_lines(frame, rules, lines, top)

    if single:
        return reasons[0]
    return pd.Series(reasons, index=frame.index, dtype="object")


def _as_frame(features: pd.DataFrame | pd.Series | Mapping) -> pd.DataFrame:
    if isinstance(features, pd.DataFrame):
        return features
    if isinstance(features, pd.Series):
        return features.to_frame().T
    if isinstance(features, Mapping):
        return pd.DataFrame([dict(features)])
    raise TypeError(f"features must be a DataFrame, a Series or a mapping, not {type(features).__name__}")


def _phrase_top_lines(frame: pd.DataFrame, rules: RulesConfig, lines: dict, top: int) -> list[list[str]]:
    if not lines or top <= 0:
        return [[] for _ in range(len(frame))]

    names = list(lines)
    matrix = np.column_stack([lines[name] for name in names])
    order = np.argsort(-np.abs(matrix), axis=1, kind="stable")[:, :top]
    sources = {name: frame[FIT_COLUMNS[name[1]]].to_numpy() for name in names if name[0] == "fit"}

    reasons = []
    for row, columns in enumerate(order):
        phrases = []
        for column in columns:
            points = matrix[row, column]
            if abs(points) <= _MAX_HIDDEN_REASON_POINTS:
                break
            section, name = names[column]
            if section == "fit":
                text = _describe_fit(name, sources[names[column]][row], rules.fit)
            else:
                text = _EVENT_TEXT[name]
            phrases.append(f"{text} ({points:+.0f})")
        reasons.append(phrases)
    return reasons


def _describe_fit(section: str, value: object, fit: FitRules) -> str:
    """Phrase the fit rule that ``value`` matched in ``section``."""
    if section == "seniority":
        return _describe_seniority(value)
    if section in ("employee_count", "annual_revenue"):
        return _describe_band(section, value, getattr(fit, section))

    name = fold_text(value)
    if section == "job_function":
        name = name or _MISSING_JOB_FUNCTION
        if name in ("other", "unknown"):
            return f"job function {name}"
        return f"{_FUNCTION_TEXT.get(name, name)} function"
    if section == "email_kind":
        name = name or _MISSING_EMAIL_KIND
        return _EMAIL_TEXT.get(name, f"{name} email")
    if section == "industry":
        return f"{name} industry"
    return f"country {name.upper() if len(name) == 2 else name}"


def _describe_seniority(level: object) -> str:
    number = pd.to_numeric(level, errors="coerce")
    labels = {number: label for label, number in titles.SENIORITY_LEVELS.items()}
    label = labels.get(number, _MISSING_SENIORITY) if pd.notna(number) else _MISSING_SENIORITY
    return _SENIORITY_TEXT.get(label, label.replace("_", " ").capitalize())


def _describe_band(section: str, value: object, rule: BandedPoints) -> str:
    number = pd.to_numeric(value, errors="coerce")
    what = "employee count" if section == "employee_count" else "annual revenue"
    if pd.isna(number):
        return f"{what} unknown"

    minimums = [band.min for band in rule.bands]
    if section == "annual_revenue":
        minimums = [float(np.log10(minimum)) if minimum > 0 else -math.inf for minimum in minimums]
    band = rule.bands[bisect.bisect_right(minimums, float(number)) - 1]
    if section == "employee_count":
        return f"{band.min:,.0f}+ employees"
    return f"revenue ${band.min:,.0f}+"
