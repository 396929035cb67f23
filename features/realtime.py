"""Linking one new contact against the users table held in memory.

Splink's batch ``predict`` runs blocking joins over whole tables, which is
far too slow per request. ``RealtimeLinker`` keeps an index from each
blocking key to the users with that key, so dictionary lookups find a
contact's candidates. It then scores those few pairs in Python with the
same trained Splink model. Levels (see ``comparisons.py``), match weights and
user-based term-frequency adjustments are the same as in batch, so a pair
gets the match weight the batch path gives it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from splink import SettingsCreator

from leadlink.errors import LinkageError
from leadlink.features.comparisons import COMPARISONS, Comparison
from leadlink.features.identity import prepare_identity_frame, prepare_identity_record
from leadlink.features.linkage import BLOCKING_KEYS, NAME_ONLY_EVIDENCE, TF_COLUMNS, term_frequency_tables
from leadlink.features.people import assign_person_ids

logger = logging.getLogger(__name__)

# A key shared by more users than this (a very common name in a big city)
# adds no candidates: scoring thousands of namesakes per request would be
# slow, and names alone never make a link.
# NOTE: batch blocking has no such cap, so a pair found only through an
# oversized name key (same name and city, nothing else) can link in batch
# but not in real time. Counting each key's users at index time and
# reporting the keys dropped would make the gap visible.
MAX_USERS_PER_KEY = 150


# Fields whose agreement is evidence beyond the name without being a
# blocking key of their own (see RealtimeLinker.candidates).
CONTEXT_COLUMNS = ("city", "company_domain", "date_of_birth", "postcode", "address")


@dataclass(frozen=True)
class TermFrequencyAdjustment:
    column: str
    log2_u_exact: float
    weight: float
    minimum_u: float


@dataclass(frozen=True)
class ScoredComparison:
    spec: Comparison
    level_weights: tuple[float, ...]  # one per level of ``spec``, then the else level
    adjustments: tuple[TermFrequencyAdjustment | None, ...]


class MatchWeights:
    """The match weights of a trained Splink model, read into plain Python.

    Splink itself resolves every level's weight (including defaults for
    levels EM could not train), so the numbers are the ones its SQL uses.
    """

    def __init__(self, model_json: dict):
        settings = SettingsCreator.from_path_or_dict(model_json).get_settings("duckdb")
        probability = settings._probability_two_random_records_match
        self.prior_weight = math.log2(probability / (1 - probability))
        by_name = {comparison.output_column_name: comparison for comparison in settings.comparisons}
        missing = [spec.name for spec in COMPARISONS if spec.name not in by_name]
        if missing:
            raise LinkageError(f"The linkage model lacks comparison(s) {missing}; retrain it with `leadlink link --retrain`.")
        self.comparisons = tuple(self._read(spec, by_name[spec.name]) for spec in COMPARISONS)

    @staticmethod
    def _read(spec: Comparison, comparison) -> ScoredComparison:
        levels = comparison.comparison_levels
        if len(levels) != len(spec.levels) + 1:
            raise LinkageError(
                f"Comparison '{spec.name}' has {len(levels)} levels in the model but {len(spec.levels) + 1} in this "
                "version of leadlink; retrain the linkage model with `leadlink link --retrain`."
            )
        weights, adjustments = [], []
        for level in levels:
            weight = level._match_weight
            if weight is None:
                raise LinkageError(f"Level '{level.label_for_charts}' of '{spec.name}' has no match weight; retrain the linkage model.")
            weights.append(float(weight))
            adjustments.append(_adjustment(level, levels))
        return ScoredComparison(spec, tuple(weights), tuple(adjustments))

    def score(self, left: dict, right: dict) -> tuple[float, list[str]]:
        """Return the pair's match weight and the comparisons that spoke for a match."""
        total = self.prior_weight
        evidence = []
        for comparison in self.comparisons:
            index = comparison.spec.level_index(left, right)
            level_weight = comparison.level_weights[index]
            total += level_weight + _tf_weight(comparison.adjustments[index], left, right)
            if level_weight > 0:
                evidence.append(comparison.spec.name)
        return total, evidence


def _adjustment(level, levels) -> TermFrequencyAdjustment | None:
    if level.is_null_level or level._is_else_level or not level._has_tf_adjustments or level._tf_adjustment_weight == 0:
        return None
    u_exact = level._u_probability_corresponding_to_exact_match(levels)
    return TermFrequencyAdjustment(
        column=level._tf_adjustment_input_column.input_name,
        log2_u_exact=math.log2(u_exact),
        weight=float(level._tf_adjustment_weight),
        minimum_u=float(level._tf_minimum_u_value),
    )


def _tf_weight(adjustment: TermFrequencyAdjustment | None, left: dict, right: dict) -> float:
    """Apply Splink's adjustment: weight * (log2(u of exact match) - log2(max tf))."""
    if adjustment is None:
        return 0.0
    tf_left, tf_right = left.get(f"tf_{adjustment.column}"), right.get(f"tf_{adjustment.column}")
    if tf_left is None and tf_right is None:
        return 0.0
    present = [value for value in (tf_left, tf_right) if value is not None]
    tf_value = max(*present, adjustment.minimum_u)
    return adjustment.weight * (adjustment.log2_u_exact - math.log2(tf_value))


def match_probability(weight: float) -> float:
    # 2 ** weight overflows past ~1024; the probability is 1.0 long before.
    if weight > 60:
        return 1.0
    odds = 2.0**weight
    return odds / (1.0 + odds)


class RealtimeLinker:
    """Find the best user for single contacts against an in-memory users table."""

    def __init__(self, model_json: dict, users: pd.DataFrame, default_region: str = "US"):
        self.default_region = default_region
        self.weights = MatchWeights(model_json)
        prepared = prepare_identity_frame(users, "user_id", default_region).reset_index(drop=True)
        self.person_ids = assign_person_ids(prepared)
        tables = term_frequency_tables(prepared, self.person_ids)
        self._tf = {column: dict(zip(table[column], table[f"tf_{column}"])) for column, table in tables.items()}
        self._index = self._build_index(prepared)
        self._records = self._user_records(prepared)
        self._context = {column: prepared[column].to_numpy(dtype=object) for column in CONTEXT_COLUMNS}
        logger.info("Real-time linkage index built over %s users", f"{len(prepared):,}")

    @property
    def n_users(self) -> int:
        return len(self._records)

    @staticmethod
    def _build_index(users: pd.DataFrame) -> dict[tuple, dict]:
        index = {}
        for key in BLOCKING_KEYS:
            complete = users.dropna(subset=list(key))
            groups = complete.groupby(list(key), sort=False).indices if len(complete) else {}
            positions = complete.index.to_numpy()
            index[key] = {
                (value if isinstance(value, tuple) else (value,)): positions[rows]
                for value, rows in groups.items()
                if len(rows) <= MAX_USERS_PER_KEY
            }
        return index

    def _user_records(self, users: pd.DataFrame) -> list[dict]:
        records = users.to_dict("records")
        for record in records:
            self._add_term_frequencies(record)
        return records

    def _add_term_frequencies(self, record: dict) -> dict:
        for column in TF_COLUMNS:
            value = record.get(column)
            record[f"tf_{column}"] = self._tf[column].get(value) if value is not None else None
        return record

    def candidates(self, contact: dict, linkable_only: bool = False) -> np.ndarray:
        """Return positions of users sharing at least one blocking key with ``contact``.

        With ``linkable_only``, users found only through the full-name key
        are kept when they also share a city, company, birth date, postcode
        or address. Without one of those they agree on nothing but the name,
        because a shared strong key would have found them through its own
        key, so the evidence rule could never accept them as a link.
        """
        found = []
        for key in BLOCKING_KEYS:
            value = tuple(contact.get(column) for column in key)
            if any(part is None for part in value):
                continue
            positions = self._index[key].get(value)
            if positions is None:
                continue
            if linkable_only and key == ("first_name", "last_name"):
                positions = positions[self._shares_context(contact, positions)]
            found.append(positions)
        if not found:
            return np.empty(0, dtype=np.int64)
        return np.unique(np.concatenate(found))

    def _shares_context(self, contact: dict, positions: np.ndarray) -> np.ndarray:
        shared = np.zeros(len(positions), dtype=bool)
        for column, values in self._context.items():
            value = contact.get(column)
            if value is not None:
                shared |= values[positions] == value
        return shared

    def score_candidates(self, contact: dict, linkable_only: bool = False) -> list[dict]:
        """Return every candidate pair of a prepared contact with weight and evidence."""
        scored = []
        for position in self.candidates(contact, linkable_only):
            user = self._records[position]
            weight, evidence = self.weights.score(contact, user)
            scored.append(
                {
                    "user_id": user["unique_id"],
                    "match_weight": weight,
                    "match_probability": match_probability(weight),
                    "evidence": ",".join(evidence),
                }
            )
        return scored

    def link_record(self, fields: dict, threshold: float, require_evidence_beyond_name: bool = True) -> dict | None:
        """Return the best user for one contact given as raw contract fields, or None."""
        contact = self._add_term_frequencies(prepare_identity_record(fields, "contact_id", self.default_region))
        best = None
        for pair in self.score_candidates(contact, linkable_only=require_evidence_beyond_name):
            if pair["match_probability"] < threshold:
                continue
            if require_evidence_beyond_name and not set(filter(None, pair["evidence"].split(","))) - NAME_ONLY_EVIDENCE:
                continue
            if best is None or _better(pair, best):
                best = pair
        return best

    def link_one(self, contact_row: pd.DataFrame, threshold: float) -> pd.DataFrame:
        """Return the best user for a one-row contacts frame as a links frame."""
        fields = {key: value for key, value in contact_row.iloc[0].to_dict().items()}
        best = self.link_record(fields, threshold)
        columns = ["contact_id", "user_id", "match_weight", "match_probability", "evidence"]
        if best is None:
            return pd.DataFrame(columns=columns)
        return pd.DataFrame([{"contact_id": fields["contact_id"], **best}], columns=columns)


def _better(pair: dict, best: dict) -> bool:
    """Order pairs as the batch path does: higher weight, then smaller user id."""
    if pair["match_weight"] != best["match_weight"]:
        return pair["match_weight"] > best["match_weight"]
    return pair["user_id"] < best["user_id"]
