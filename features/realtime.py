"""Linking one new contact against the users table held in memory.

Splink's batch ``predict`` runs the blocking joins over whole tables, which
is far too slow per request. ``RealtimeLinker`` keeps an index from each
blocking key to the users with that key, so dictionary lookups find a
contact's candidates. Only those few pairs are scored, with the same trained
Splink model and the same user-based term frequencies as the batch path.
"""

from __future__ import annotations

import logging
from collections import defaultdict

import numpy as np
import pandas as pd
from splink import Linker

from leadlink.engine import create_db_api
from leadlink.features.identity import prepare_identity_frame
from leadlink.features.linkage import TF_COLUMNS, _orient_pairs, best_match_per_contact, has_evidence_beyond_name, term_frequency_tables

logger = logging.getLogger(__name__)

# The same keys as the batch blocking rules, as tuples of identity columns.
BLOCKING_KEYS = (
    ("phone",),
    ("linkedin",),
    ("personal_email",),
    ("email_local",),
    ("first_name", "last_name"),
    ("last_name", "city"),
    ("first_name", "city"),
)
MAX_CANDIDATES = 200


class RealtimeLinker:
    """Find the best user for single contacts against an in-memory users table."""

    def __init__(self, model_json: dict, users: pd.DataFrame, default_region: str = "US"):
        self.default_region = default_region
        self.users = prepare_identity_frame(users, "user_id", default_region).reset_index(drop=True)
        self._index = self._build_index(self.users)
        self._tf = {column: dict(zip(table[column], table[f"tf_{column}"])) for column, table in term_frequency_tables(self.users).items()}
        self._user_records = self.users.to_dict("records")
        self._linker = self._scoring_linker(model_json)
        logger.info("Real-time linkage index built over %s users", f"{len(self.users):,}")

    @staticmethod
    def _build_index(users: pd.DataFrame) -> dict[tuple, dict[tuple, list[int]]]:
        index: dict[tuple, dict[tuple, list[int]]] = {}
        for key in BLOCKING_KEYS:
            postings: dict[tuple, list[int]] = defaultdict(list)
            values = users[list(key)]
            complete = values.notna().all(axis=1).to_numpy()
            for position, row in zip(np.flatnonzero(complete), values[complete].itertuples(index=False, name=None)):
                postings[row].append(int(position))
            index[key] = dict(postings)
        return index

    def _scoring_linker(self, model_json: dict) -> Linker:
        db_api = create_db_api(threads=1)
        empty = self.users.head(0)
        left = db_api.register(empty, dataset_display_name="contacts", table_name="contacts_input")
        right = db_api.register(empty.copy(), dataset_display_name="users", table_name="users_input")
        return Linker([left, right], model_json, log_level=None)

    def candidates(self, contact: dict) -> list[int]:
        """Return positions of users sharing at least one blocking key with ``contact``."""
        found: dict[int, None] = {}
        for key in BLOCKING_KEYS:
            value = tuple(contact.get(column) for column in key)
            if any(v is None for v in value):
                continue
            for position in self._index[key].get(value, ()):
                found[position] = None
                if len(found) >= MAX_CANDIDATES:
                    return list(found)
        return list(found)

    def _with_tf(self, record: dict, source: str) -> dict:
        enriched = dict(record, source_dataset=source)
        for column in TF_COLUMNS:
            value = record.get(column)
            # A value absent from the users table gets the smallest share seen,
            # so agreement on it weighs as much as on the rarest known value.
            enriched[f"tf_{column}"] = self._tf[column].get(value, min(self._tf[column].values(), default=None)) if value is not None else None
        return enriched

    def link_one(self, contact_row: pd.DataFrame, threshold: float) -> pd.DataFrame:
        """Return the best user for a one-row contacts frame, or an empty frame."""
        prepared = prepare_identity_frame(contact_row, "contact_id", self.default_region)
        contact = {key: (None if _is_null(value) else value) for key, value in prepared.iloc[0].to_dict().items()}
        positions = self.candidates(contact)
        if not positions:
            return _orient_pairs(pd.DataFrame())
        left = [self._with_tf(contact, "contacts")]
        right = [self._with_tf(self._user_records[p], "users") for p in positions]
        scored = self._linker.inference.score_pairs(left, right).as_pandas_dataframe()
        pairs = _orient_pairs(scored)
        pairs = pairs[(pairs["match_probability"] >= threshold) & has_evidence_beyond_name(pairs["evidence"])]
        return best_match_per_contact(pairs)


def _is_null(value) -> bool:
    if isinstance(value, (list, np.ndarray)):
        return False
    return value is None or (isinstance(value, float) and np.isnan(value))
