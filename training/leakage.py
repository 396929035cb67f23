"""Flag features that leak the outcome into a lead-scoring training set.

A lead table exported from a CRM often contains fields that the sales team
fills in after contacting the lead: tags, a status, a quality rating, the last
activity up to the export date. A model trained on them scores well on the
holdout but cannot be used when a lead is created, because those fields are
still empty then. ``find_leaks`` flags a feature when any of these holds:

- the feature alone predicts the label almost perfectly (single-feature AUC);
- one of its levels is large and almost always positive or always negative;
- its name is one that CRMs use for fields filled in after contact, and it
  carries some signal;
- the caller knows that its source rows are dated after the outcome.

Every check is a few vectorised passes over the column, with no model fit,
so a table of a million rows and 60 features takes seconds.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import binom
from unidecode import unidecode

logger = logging.getLogger(__name__)

KINDS = ("numeric", "boolean", "categorical")
DEFAULT_FOLDS = 5

# Weight, in rows, of the overall label rate in the smoothed target mean of a
# category level. A level with 20 training rows is pulled halfway to the
# overall rate, so a rare level cannot reach an extreme encoded value.
ENCODING_SMOOTHING_ROWS = 20.0

# A numeric feature with at most this many distinct values is a code or a
# yes/no flag, so its values also get the per-level check of categories.
MAX_CODED_NUMERIC_VALUES = 10

# Level checks print at most this many levels per feature, so a reason stays
# readable when many levels qualify.
MAX_REPORTED_LEVELS = 3

MISSING_LEVEL = "(missing)"

# Words and phrases that CRMs and lead exports use for fields that the sales
# team fills in, or that the CRM updates, after the lead is first contacted.
# They are English and are matched as whole words, so "tag" matches "Tags" and
# "lead_tag" but not "Tagline". A trailing plural "s" also matches.
POST_OUTCOME_NAME_HINTS = (
    # Pipeline position, set and moved by sales reps (Salesforce "Lead Status",
    # HubSpot "lifecyclestage" and "dealstage").
    "status",
    "stage",
    "lifecyclestage",
    "dealstage",
    # Labels and judgements that reps record after a call.
    "tag",
    "lead quality",
    "rating",
    "grade",
    "disposition",
    "note",
    "comment",
    "follow up",
    "callback",
    # Scores that the CRM recomputes from activity up to the export date, so
    # they include what happened after contact.
    "score",
    # Activity summaries that are overwritten until the export date.
    "last activity",
    "notable activity",
    "last contact",
    "last contacted",
    "last modified",
    # The outcome itself, or fields that exist only once it is known.
    "outcome",
    "converted",
    "won",
    "lost",
    "lost reason",
    "loss reason",
    "disqualified",
    "disqualification",
    "closed",
    "close date",
    "opportunity",
    "deal",
    "contract",
    "invoice",
    "payment",
    "paid",
)


@dataclass
class LeakageFlag:
    """A feature suspected of leaking the outcome, with the reasons found."""

    feature: str
    display_name: str
    single_feature_auc: float
    reasons: list[str]
    kept: bool


@dataclass
class LeakageSettings:
    """Thresholds of the leakage checks and the features the user keeps anyway."""

    # In the public X Education lead table (9,240 leads), the columns known at
    # lead creation reach at most AUC 0.70 alone (occupation; time on website
    # reaches 0.65), while the Tags column that sales fills in reaches 0.92.
    # A single column at 0.90 or more usually encodes the outcome.
    max_single_feature_auc: float = 0.90

    # A level is near-deterministic when it contains at least this share of rows
    # and at least this many rows, and its label rate is at most
    # pure_level_rate or at least 1 - pure_level_rate. The row minimums keep
    # small levels, whose rate is noisy, out of the check. The rate is 1%
    # rather than 2% because in the X Education table the lead source
    # "Welingak Website" converts 140 of 142 times (98.6%), and a lead source
    # is known at creation.
    pure_level_share: float = 0.01
    pure_level_min_rows: int = 30
    pure_level_rate: float = 0.01

    # A level rate near 0 or 1 is evidence only when the overall rate is far
    # from it. With 1% of leads converting, many levels convert at 1% or less.
    # So the level's positive count must also be this unlikely under the
    # overall rate (one-sided binomial test). 1e-6 stays strict after testing
    # thousands of levels at once.
    pure_level_max_p_value: float = 1e-6

    # A name hint alone flags a feature only when the feature carries some
    # signal, because a post-contact field that predicts nothing does no harm.
    post_outcome_name_hints: tuple[str, ...] = POST_OUTCOME_NAME_HINTS
    hint_min_auc: float = 0.60

    # Features, by model feature name or by display name, that the user keeps
    # although they are flagged.
    keep: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0.5 <= self.max_single_feature_auc <= 1.0:
            raise ValueError(f"max_single_feature_auc must be between 0.5 and 1, got {self.max_single_feature_auc}.")
        if not 0.5 <= self.hint_min_auc <= 1.0:
            raise ValueError(f"hint_min_auc must be between 0.5 and 1, got {self.hint_min_auc}.")
        if not 0.0 <= self.pure_level_rate < 0.5:
            raise ValueError(f"pure_level_rate must be at least 0 and below 0.5, got {self.pure_level_rate}.")
        if not 0.0 <= self.pure_level_share <= 1.0:
            raise ValueError(f"pure_level_share must be between 0 and 1, got {self.pure_level_share}.")
        if self.pure_level_min_rows < 1:
            raise ValueError(f"pure_level_min_rows must be at least 1, got {self.pure_level_min_rows}.")
        if isinstance(self.keep, str) or isinstance(self.post_outcome_name_hints, str):
            raise ValueError("keep and post_outcome_name_hints must be tuples of names, not a single string.")


@dataclass
class _Level:
    """One value of a feature with its row and positive counts."""

    value: str
    rows: int
    positives: int


@dataclass
class _Column:
    """A feature prepared for the checks: its kind and its values as codes."""

    kind: str
    codes: np.ndarray  # one code per row; missing values get the last code
    level_values: list[str] = field(default_factory=list)


def single_feature_auc(values: pd.Series, labels: np.ndarray, kind: str, folds: int = DEFAULT_FOLDS, seed: int = 0) -> float:
    """Compute how well one feature alone ranks positives above negatives, as a ROC AUC.

    The result is direction-free, in [0.5, 1]: a feature that ranks negatives
    first scores as well as one that ranks positives first.

    Numeric and boolean features are ranked by value, with missing values as
    one group placed below or above all values, whichever fits better. No
    model is fitted and ``folds`` and ``seed`` are not used. Because the best
    of the directions is taken, a noise feature scores slightly above 0.5.

    Categorical features are replaced by the smoothed label rate of their
    level, computed out of fold on ``folds`` stratified folds, so a feature
    with a different value on every row scores about 0.5.

    Raises ValueError for an unknown kind, labels that are not 0/1 with both
    classes, or a length mismatch.
    """
    labels = _checked_labels(labels, len(values))
    _check_kind(kind, str(values.name))
    if kind in ("numeric", "boolean"):
        return _numeric_auc(_numeric_array(values), labels)

    fold_of_row = _stratified_folds(labels, folds, seed)
    return _categorical_auc(_category_codes(values)[0], labels, fold_of_row, folds)


def find_leaks(
    features: pd.DataFrame,
    labels: np.ndarray,
    kinds: dict[str, str],
    settings: LeakageSettings = LeakageSettings(),
    display_names: dict[str, str] | None = None,
    recorded_after_outcome: dict[str, str] | None = None,
) -> list[LeakageFlag]:
    """Check every feature for leakage and return the flagged ones, highest AUC first.

    ``kinds`` maps each feature to numeric, boolean or categorical. A feature
    missing from it is treated as numeric when its dtype is numeric and as
    categorical otherwise. ``display_names`` maps features to the column
    headers shown in reasons and matched against the name hints.
    ``recorded_after_outcome`` maps features to a reason why their source rows
    are dated after the outcome, and flags them whatever their signal.

    Raises ValueError when labels are not 0/1 with both classes, when their
    length differs from the rows, or when ``recorded_after_outcome`` or
    ``kinds`` name something invalid.
    """
    labels = _checked_labels(labels, len(features))
    display_names = display_names or {}
    recorded_after_outcome = recorded_after_outcome or {}
    _check_named_features(recorded_after_outcome, features)
    hint_patterns = _hint_patterns(settings.post_outcome_name_hints)
    fold_of_row = _stratified_folds(labels, DEFAULT_FOLDS, seed=0)

    flags = []
    for column_name, values in features.items():
        name = str(column_name)
        display_name = str(display_names.get(name, name))
        kind = _kind_of(name, values, kinds)
        auc, reasons = _check_feature(values, labels, kind, fold_of_row, display_name, hint_patterns, settings)
        if name in recorded_after_outcome:
            reasons.append(recorded_after_outcome[name])
        if reasons:
            kept = name in settings.keep or display_name in settings.keep
            flags.append(LeakageFlag(name, display_name, auc, reasons, kept))

    _warn_unknown_keep(settings.keep, features, display_names)
    flags.sort(key=lambda flag: (-flag.single_feature_auc, flag.feature))
    _log_summary(flags, features.shape[1])
    return flags


def leakage_table(flags: list[LeakageFlag]) -> pd.DataFrame:
    """Return the flags as a table with one row per flagged feature."""
    rows = [
        {
            "feature": flag.feature,
            "display_name": flag.display_name,
            "single_feature_auc": flag.single_feature_auc,
            "reasons": "; ".join(flag.reasons),
            "kept": flag.kept,
        }
        for flag in flags
    ]
    return pd.DataFrame(rows, columns=["feature", "display_name", "single_feature_auc", "reasons", "kept"])


def excluded_features(flags: list[LeakageFlag]) -> list[str]:
    """Return the flagged features that the user did not keep."""
    return [flag.feature for flag in flags if not flag.kept]


def _check_feature(
    values: pd.Series,
    labels: np.ndarray,
    kind: str,
    fold_of_row: np.ndarray,
    display_name: str,
    hint_patterns: list[tuple[str, re.Pattern]],
    settings: LeakageSettings,
) -> tuple[float, list[str]]:
    """Compute the feature's AUC and the reasons, possibly none, to flag it."""
    column = _prepare_column(values, kind)
    if kind == "categorical":
        auc = _categorical_auc(column.codes, labels, fold_of_row, int(fold_of_row.max()) + 1)
    else:
        auc = _numeric_auc(_numeric_array(values), labels)

    reasons = []
    if auc >= settings.max_single_feature_auc:
        reasons.append(f"alone predicts the label with AUC {auc:.2f} (threshold {settings.max_single_feature_auc:.2f})")

    if column.level_values:
        reasons.extend(_pure_level_reasons(column, labels, settings))

    hint = _matching_hint(display_name, hint_patterns)
    if hint is not None and auc > settings.hint_min_auc:
        reasons.append(
            f'the name "{display_name}" contains "{hint}", a field that CRMs usually fill in after contacting the lead, '
            f"and it predicts the label with AUC {auc:.2f} (above {settings.hint_min_auc:.2f})"
        )
    return auc, reasons


def _prepare_column(values: pd.Series, kind: str) -> _Column:
    """Code the feature's values and keep level names when the level check applies."""
    if kind == "categorical":
        codes, level_values = _category_codes(values)
        return _Column(kind, codes, level_values)

    numbers = _numeric_array(values)
    distinct = pd.unique(numbers[~np.isnan(numbers)])
    if len(distinct) > MAX_CODED_NUMERIC_VALUES:
        return _Column(kind, np.empty(0, dtype=np.int64))
    codes, level_values = _category_codes(pd.Series(numbers))
    return _Column(kind, codes, level_values)


def _category_codes(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Return a code per row and the level of each code; missing values get the last code."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    codes = np.where(codes < 0, len(uniques), codes)
    level_values = [value if isinstance(value, str) else _format_number(value) for value in uniques]
    return codes, level_values + [MISSING_LEVEL]


def _format_number(value: object) -> str:
    if isinstance(value, (int, float, np.integer, np.floating)):
        return f"{float(value):g}"
    return str(value)


def _pure_level_reasons(column: _Column, labels: np.ndarray, settings: LeakageSettings) -> list[str]:
    """Describe the levels that are large and almost always one class."""
    levels = _near_deterministic_levels(column, labels, settings)
    reasons = [
        f'level "{level.value}" has {level.rows:,} rows ({level.rows / len(labels):.1%} of all) '
        f"and a positive rate of {level.positives / level.rows:.1%} ({level.positives:,} positive)"
        for level in levels[:MAX_REPORTED_LEVELS]
    ]
    if len(levels) > MAX_REPORTED_LEVELS:
        reasons.append(f"{len(levels) - MAX_REPORTED_LEVELS} more levels are almost always one class")
    return reasons


def _near_deterministic_levels(column: _Column, labels: np.ndarray, settings: LeakageSettings) -> list[_Level]:
    """Return the large levels whose label rate is near 0 or 1, largest first."""
    n_levels = len(column.level_values)
    rows = np.bincount(column.codes, minlength=n_levels)
    positives = np.bincount(column.codes, weights=labels, minlength=n_levels).round().astype(np.int64)
    overall_rate = labels.mean()

    large = np.flatnonzero((rows >= settings.pure_level_min_rows) & (rows >= settings.pure_level_share * len(labels)))
    rows, positives = rows[large], positives[large]
    rate = positives / rows

    # One-sided binomial tail probability of the level's positive count if
    # the level converted at the overall rate.
    low = (rate <= settings.pure_level_rate) & (binom.cdf(positives, rows, overall_rate) <= settings.pure_level_max_p_value)
    high = (rate >= 1 - settings.pure_level_rate) & (binom.sf(positives - 1, rows, overall_rate) <= settings.pure_level_max_p_value)

    chosen = np.flatnonzero(low | high)
    chosen = chosen[np.argsort(-rows[chosen], kind="stable")]
    return [_Level(column.level_values[large[index]], int(rows[index]), int(positives[index])) for index in chosen]


def _numeric_auc(numbers: np.ndarray, labels: np.ndarray) -> float:
    """Rank AUC of a numeric feature, with missing values placed where they fit best."""
    present = ~np.isnan(numbers)
    positives, negatives = _counts_by_value(numbers[present], labels[present])
    missing_positives = float(labels[~present].sum())
    missing_negatives = float((~present).sum()) - missing_positives

    # Missing values are one tied group. Placing it below and above all
    # values, each in both directions, gives the best monotone ranking that
    # keeps missing values together.
    # NOTE: a numeric leak that is not monotone, such as a status code with
    # more than MAX_CODED_NUMERIC_VALUES values, can score near 0.5 here.
    best = 0.5
    for placement in ("below", "above"):
        if placement == "below":
            group_positives = np.concatenate(([missing_positives], positives))
            group_negatives = np.concatenate(([missing_negatives], negatives))
        else:
            group_positives = np.concatenate((positives, [missing_positives]))
            group_negatives = np.concatenate((negatives, [missing_negatives]))
        best = max(best, _direction_free(_grouped_auc(group_positives, group_negatives)))
    return best


def _categorical_auc(codes: np.ndarray, labels: np.ndarray, fold_of_row: np.ndarray, folds: int) -> float:
    """AUC of the out-of-fold, smoothed label rate of each row's level."""
    encoded = _out_of_fold_encoding(codes, labels, fold_of_row, folds)
    positives, negatives = _counts_by_value(encoded, labels)
    return _direction_free(_grouped_auc(positives, negatives))


def _out_of_fold_encoding(codes: np.ndarray, labels: np.ndarray, fold_of_row: np.ndarray, folds: int) -> np.ndarray:
    """Replace each row's level by its smoothed label rate in the other folds.

    A level absent from the other folds gets their overall rate, which is
    why a column with a new value on every row carries no signal here.
    """
    n_levels = int(codes.max()) + 1
    cell = fold_of_row * n_levels + codes
    cell_rows = np.bincount(cell, minlength=folds * n_levels).reshape(folds, n_levels).astype(float)
    cell_positives = np.bincount(cell, weights=labels, minlength=folds * n_levels).reshape(folds, n_levels)

    # Counts in the other folds are the level's total minus its own fold.
    other_rows = cell_rows.sum(axis=0) - cell_rows
    other_positives = cell_positives.sum(axis=0) - cell_positives
    other_rate = other_positives.sum(axis=1) / other_rows.sum(axis=1)

    encoding = (other_positives + ENCODING_SMOOTHING_ROWS * other_rate[:, None]) / (other_rows + ENCODING_SMOOTHING_ROWS)
    return encoding[fold_of_row, codes]


def _counts_by_value(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Count positive and negative rows per distinct score, in ascending score order."""
    codes, uniques = pd.factorize(scores, sort=True)
    rows = np.bincount(codes, minlength=len(uniques)).astype(float)
    positives = np.bincount(codes, weights=labels, minlength=len(uniques))
    return positives, rows - positives


def _grouped_auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """ROC AUC from per-group class counts, with groups in ascending score order.

    Each positive beats every negative in a lower group and ties, counting
    one half, with the negatives of its own group (the Mann-Whitney U).
    """
    n_positive = positives.sum()
    n_negative = negatives.sum()
    if n_positive == 0 or n_negative == 0:
        return 0.5
    negatives_below = np.cumsum(negatives) - negatives
    wins = np.sum(positives * (negatives_below + 0.5 * negatives))
    return float(wins / (n_positive * n_negative))


def _direction_free(auc: float) -> float:
    return max(auc, 1.0 - auc)


def _stratified_folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Assign each row to one of ``folds`` folds, with each class spread evenly."""
    if folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds}.")
    if len(labels) < folds:
        raise ValueError(f"{len(labels)} rows cannot be split into {folds} folds; use fewer folds.")

    generator = np.random.default_rng(seed)
    fold_of_row = np.empty(len(labels), dtype=np.int64)
    for label in (0, 1):
        rows = generator.permutation(np.flatnonzero(labels == label))
        fold_of_row[rows] = np.arange(len(rows)) % folds
    return fold_of_row


def _checked_labels(labels: np.ndarray, n_rows: int) -> np.ndarray:
    """Return the labels as floats 0/1, or raise ValueError when they cannot be used."""
    array = np.asarray(labels, dtype=float)
    if array.ndim != 1 or len(array) != n_rows:
        raise ValueError(f"Expected one label per row ({n_rows:,}), got an array of shape {array.shape}.")
    if not np.isin(array, (0.0, 1.0)).all():
        raise ValueError("Labels must be 0 or 1 with no missing values.")
    if array.min() == array.max():
        raise ValueError(f"All {n_rows:,} labels are {int(array[0])}; a leakage check needs both positive and negative rows.")
    return array


def _check_kind(kind: str, name: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"Feature {name!r} has kind {kind!r}; expected one of {', '.join(KINDS)}.")


def _kind_of(name: str, values: pd.Series, kinds: dict[str, str]) -> str:
    """Return the feature's declared kind, or one inferred from its dtype."""
    if name in kinds:
        _check_kind(kinds[name], name)
        return kinds[name]
    return "numeric" if pd.api.types.is_numeric_dtype(values) else "categorical"


def _numeric_array(values: pd.Series) -> np.ndarray:
    """Return the values as float64, with missing values as NaN."""
    try:
        return values.to_numpy(dtype="float64", na_value=np.nan)
    except (TypeError, ValueError) as error:
        raise ValueError(f"Feature {values.name!r} is declared numeric but has values that are not numbers: {error}") from error


def _check_named_features(recorded_after_outcome: dict[str, str], features: pd.DataFrame) -> None:
    unknown = sorted(set(recorded_after_outcome) - {str(name) for name in features.columns})
    if unknown:
        raise ValueError(f"recorded_after_outcome names features that are not in the table: {unknown}.")


def _hint_patterns(hints: tuple[str, ...]) -> list[tuple[str, re.Pattern]]:
    """Compile each hint into a whole-word pattern over normalised names."""
    patterns = []
    for hint in hints:
        words = _normalise_name(hint)
        if words:
            patterns.append((hint, re.compile(rf"(?<![a-z0-9]){re.escape(words)}s?(?![a-z0-9])")))
    return patterns


def _normalise_name(name: str) -> str:
    """Lower-case ASCII words separated by single spaces; camelCase is split."""
    text = unidecode(name)
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", text)
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def _matching_hint(display_name: str, hint_patterns: list[tuple[str, re.Pattern]]) -> str | None:
    """Return the longest hint found in the name, or None."""
    words = _normalise_name(display_name)
    found = [hint for hint, pattern in hint_patterns if pattern.search(words)]
    return max(found, key=len) if found else None


def _warn_unknown_keep(keep: tuple[str, ...], features: pd.DataFrame, display_names: dict[str, str]) -> None:
    known = {str(name) for name in features.columns} | {str(name) for name in display_names.values()}
    unknown = [name for name in keep if name not in known]
    if unknown:
        logger.warning("Leakage check: features to keep that are not in the table: %s", unknown)


def _log_summary(flags: list[LeakageFlag], n_features: int) -> None:
    excluded = excluded_features(flags)
    kept = [flag.feature for flag in flags if flag.kept]
    logger.info("Leakage check: %d of %d features flagged, %d excluded, %d kept by request", len(flags), n_features, len(excluded), len(kept))
    for flag in flags:
        logger.info("Leakage check: %s (%s): %s", flag.display_name, "kept" if flag.kept else "excluded", "; ".join(flag.reasons))
