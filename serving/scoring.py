"""Request and response models of the HTTP service, and the per-request scoring steps.

A ``ScoringService`` pairs one loaded model with the users table it links
contacts against. It is not changed after construction. A model reload builds
a new one and swaps it in, so a request that holds a reference to the old one
finishes on the old model.

A request is scored without pandas or SQL: ``RealtimeLinker`` links each
contact, ``OnlineFeatureBuilder`` computes its feature row and
``FeatureRowScorer`` encodes the rows as numbers for LightGBM. The results
equal those of batch scoring (``build_features`` and ``score_frame``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from leadlink.errors import LeadlinkError
from leadlink.features.online import OnlineFeatureBuilder, is_missing
from leadlink.features.pipeline import FeatureConfig, feature_specs
from leadlink.features.realtime import RealtimeLinker
from leadlink.features.workspace import load_workspace
from leadlink.serving.batch import model_version_label, score_frame
from leadlink.serving.contributions import MIN_ROWS_FOR_PATTERNS
from leadlink.serving.model import MISSING_CATEGORY, OTHER_CATEGORY, LeadScorer, ResolvedModel
from leadlink.serving.reasons import top_reasons

logger = logging.getLogger(__name__)

MAX_EVENTS_PER_CONTACT = 10_000
MAX_EMPLOYEE_COUNT = 100_000_000
# pandas stores timestamps as 64-bit nanoseconds (years 1677 to 2262), so
# request timestamps are held to a range that fits with room to spare.
EARLIEST_TIMESTAMP = datetime(1900, 1, 1, tzinfo=timezone.utc)
LATEST_TIMESTAMP = datetime(2200, 1, 1, tzinfo=timezone.utc)

ShortText = Annotated[str | None, Field(default=None, max_length=1000)]


def _as_utc(value: datetime | None) -> datetime | None:
    """Read naive timestamps as UTC, as the workspace contract does."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _checked_timestamp(value: datetime | None) -> datetime | None:
    value = _as_utc(value)
    if value is not None and not EARLIEST_TIMESTAMP <= value < LATEST_TIMESTAMP:
        raise ValueError(f"must be on or after {EARLIEST_TIMESTAMP:%Y-%m-%d} and before {LATEST_TIMESTAMP:%Y-%m-%d}")
    return value


class EventIn(BaseModel):
    """One engagement event of the contact."""

    model_config = ConfigDict(extra="ignore")

    event_type: str = Field(min_length=1, max_length=100)
    occurred_at: datetime
    url: ShortText = None

    check_timestamps = field_validator("occurred_at")(_checked_timestamp)


class ContactIn(BaseModel):
    """A contact as the workspace contract defines it, with optional recent events."""

    model_config = ConfigDict(extra="ignore")

    contact_id: str = Field(min_length=1, max_length=200)
    first_name: ShortText = None
    last_name: ShortText = None
    email: ShortText = None
    personal_email: ShortText = None
    phone: ShortText = None
    linkedin_url: ShortText = None
    job_title: ShortText = None
    company_name: ShortText = None
    company_domain: ShortText = None
    industry: ShortText = None
    employee_count: int | None = Field(default=None, ge=0, le=MAX_EMPLOYEE_COUNT)
    annual_revenue: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    country: ShortText = None
    city: ShortText = None
    created_at: datetime | None = None
    events: list[EventIn] = Field(default_factory=list, max_length=MAX_EVENTS_PER_CONTACT)
    as_of: datetime | None = Field(default=None, description="Score as of this time; default: now.")

    check_timestamps = field_validator("created_at", "as_of")(_checked_timestamp)


class StrictEventIn(EventIn):
    """An event that rejects fields outside the contract."""

    model_config = ConfigDict(extra="forbid")


class StrictContactIn(ContactIn):
    """A contact that rejects fields outside the contract, in itself and in its events."""

    model_config = ConfigDict(extra="forbid")

    events: list[StrictEventIn] = Field(default_factory=list, max_length=MAX_EVENTS_PER_CONTACT)


class ScoreOut(BaseModel):
    """The score of one contact, as a batch scoring row has it.

    ``probability``, ``score`` and ``match_probability`` are null when the
    model returns a value that is not finite, because JSON has no NaN.
    """

    model_config = ConfigDict(ser_json_inf_nan="null")

    contact_id: str
    probability: float | None
    score: int | None
    previous_user: bool
    matched_user_id: str | None
    match_probability: float | None
    reasons: list[str]
    model_version: str


def finite_or_none(value) -> float | None:
    """Return ``value`` as a float, or None when it is missing, not a number, NaN or infinite."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def score_result(
    contact_id: str,
    probability: float,
    previous_user: bool,
    matched_user_id: str | None,
    match_probability: float,
    reasons: list[str],
    model_version: str,
) -> ScoreOut:
    """Build a response row, with null in place of a non-finite probability or match probability."""
    probability = finite_or_none(probability)
    return ScoreOut(
        contact_id=contact_id,
        probability=probability,
        score=None if probability is None else int(round(probability * 100)),
        previous_user=previous_user,
        matched_user_id=matched_user_id,
        match_probability=finite_or_none(match_probability),
        reasons=reasons,
        model_version=model_version,
    )


def trained_workspace(spec: dict) -> Path | None:
    """Return the workspace folder the model was trained on, when it still exists."""
    path = spec.get("workspace")
    return Path(path) if path and Path(path).is_dir() else None


def load_users(workspace: Path | None, model: ResolvedModel) -> tuple[Path, pd.DataFrame]:
    """Read the users table that contacts are linked against.

    Without ``workspace`` the folder recorded in the model's spec is used.
    Raises LeadlinkError when neither is available.
    """
    folder = workspace or trained_workspace(model.scorer.spec)
    if folder is None:
        raise LeadlinkError(
            f"Model {model.uri} was trained on workspace {model.scorer.spec.get('workspace')!r}, which no longer exists; "
            "pass --workspace with the folder that contains the users table."
        )
    users = load_workspace(folder, require=(), tables=("users",)).users
    if users.empty:
        logger.warning("Workspace %s has no users; no contact will be recognised as a previous user.", folder)
    return folder, users


class FeatureRowScorer:
    """Predict and explain feature rows given as dictionaries, without pandas' encoding.

    ``LeadScorer.encode`` builds a frame column by column, which takes most of
    the 12 to 17 ms that ``score_frame`` needs for one row (medians measured
    by ``benchmarks/online_features.py`` on 2 shared cores). This class writes
    the same numbers straight into a numpy matrix. A numeric feature becomes
    a float. A categorical feature becomes the position of its value among
    the model's levels, with ``__missing__`` for a missing value and
    ``__other__`` for one not seen in training. LightGBM reads those
    positions as the categories of the encoded frame, so probabilities equal
    ``LeadScorer.predict_proba`` and reasons equal ``score_frame`` (the tests
    compare both).
    """

    def __init__(self, scorer: LeadScorer):
        self.scorer = scorer
        self._columns = [(feature["name"], _level_codes(feature)) for feature in scorer.spec["features"]]
        # One shared column index: pandas builds its lookup table once, not per request.
        self._frame_columns = pd.Index([spec.name for spec in feature_specs()], dtype=object)

    def matrix(self, rows: list[dict]) -> np.ndarray:
        """Return the booster's input: one row per feature row, one column per model feature."""
        matrix = np.empty((len(rows), len(self._columns)))
        for position, row in enumerate(rows):
            matrix[position] = [_encoded_value(row.get(name), codes) for name, codes in self._columns]
        return matrix

    def frame(self, rows: list[dict]) -> pd.DataFrame:
        """Put feature rows in one frame of object columns, in ``feature_specs()`` order, for ``top_reasons``.

        With ``dtype=object`` pandas keeps the values as they are in one
        block, which is about ten times faster than inferring a type per column.
        """
        values = np.empty((len(rows), len(self._frame_columns)), dtype=object)
        for position, row in enumerate(rows):
            values[position] = [row.get(name) for name in self._frame_columns]
        return pd.DataFrame(values, columns=self._frame_columns, dtype=object, copy=False)

    def probabilities(self, matrix: np.ndarray) -> np.ndarray:
        """Return calibrated probabilities, as ``LeadScorer.predict_proba`` computes them."""
        # One thread: OpenMP start-up costs more than a few rows take.
        raw = self.scorer.booster.predict(matrix, num_threads=1)
        return np.clip(self.scorer.calibration.apply(raw), 0.0, 1.0)

    def score(self, rows: list[dict]) -> tuple[np.ndarray, list[list[str]]]:
        """Return the calibrated probability and the top reasons of each feature row.

        The rows are those of ``OnlineFeatureBuilder``, whose keys are the
        names of ``feature_specs()``.
        """
        # From this many rows on, score_frame computes TreeSHAP values per
        # decision pattern, which may differ from pred_contrib in the last
        # bits. Such requests go through score_frame to get batch's reasons.
        if len(rows) >= MIN_ROWS_FOR_PATTERNS:
            return score_frame(self.scorer, self.frame(rows))

        matrix = self.matrix(rows)
        probability = self.probabilities(matrix)
        contributions = self.scorer.booster.predict(matrix, pred_contrib=True, num_threads=1)
        # top_reasons reads a handful of columns; a mapping of them costs less than a frame's lookups.
        return probability, top_reasons(_RowColumns(rows), contributions, self.scorer.feature_names)


class _RowColumns(Mapping):
    """Feature rows seen as columns: ``columns[name]`` lists that feature's values, built when first read."""

    def __init__(self, rows: list[dict]):
        self._rows = rows
        self._names = set().union(*(row.keys() for row in rows)) if rows else set()

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._names:
            raise KeyError(name)
        values = np.empty(len(self._rows), dtype=object)
        values[:] = [row.get(name) for row in self._rows]
        return values

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def _level_codes(feature: dict) -> tuple[dict[str, float], float] | None:
    """Map a categorical feature's levels to their codes and return them with the code of unseen values.

    Returns None for a numeric feature.
    """
    if feature["kind"] != "categorical":
        return None
    codes = {level: float(code) for code, level in enumerate(feature["levels"])}
    # A model without an "other" level has no code for unseen values, which
    # pandas encodes as -1 and LightGBM reads as missing.
    return codes, codes.get(OTHER_CATEGORY, math.nan)


def _encoded_value(value, codes: tuple[dict[str, float], float] | None) -> float:
    if codes is None:
        return math.nan if is_missing(value) else float(value)
    levels, other = codes
    return levels.get(MISSING_CATEGORY if is_missing(value) else str(value), other)


class ScoringService:
    """One loaded model, its users index and the steps that score contacts with them."""

    def __init__(self, model: ResolvedModel, users: pd.DataFrame, alias: str | None = None, trained_at: datetime | None = None):
        scorer = model.scorer
        if scorer.mode != "workspace":
            raise LeadlinkError(f"Model {model.uri} was trained on a lead table; the HTTP service needs a workspace model.")
        self.model = model
        self.alias = alias
        self.trained_at = trained_at
        self.loaded_at = datetime.now(timezone.utc)
        self.config = FeatureConfig.from_dict(scorer.spec["feature_config"])
        self.version = model_version_label(model)

        self.users = users
        self.linker = None
        if scorer.linkage_model and len(users):
            self.linker = RealtimeLinker(scorer.linkage_model, users, self.config.default_region)
            self.users = users.assign(person_id=self.linker.person_ids.to_numpy())
        self.feature_builder = OnlineFeatureBuilder(self.users, self.config)
        self.row_scorer = FeatureRowScorer(scorer)

    def describe(self) -> dict:
        """Return the model's registry identity, training facts, backtest metrics and features."""
        spec = self.model.scorer.spec
        return {
            "name": self.model.name,
            "version": self.model.version,
            "alias": self.alias,
            "run_id": self.model.run_id,
            "uri": self.model.uri,
            "trained_at": self.trained_at,
            "trained_as_of": spec.get("trained_as_of"),
            "loaded_at": self.loaded_at,
            "metrics": {name: finite_or_none(value) for name, value in spec.get("metrics", {}).items()},
            "features": list(self.model.scorer.feature_names),
        }

    def score(self, contacts: list[ContactIn]) -> list[ScoreOut]:
        """Link and score contacts, returning one result per contact in request order."""
        if not contacts:
            return []

        now = datetime.now(timezone.utc)
        links = []
        rows = []
        for contact in contacts:
            fields = contact.model_dump(exclude={"events", "as_of"})
            link = self.linker.link_record(fields, self.config.match_threshold) if self.linker is not None else None
            rows.append(self.feature_builder.features(fields, _event_records(contact), link, contact.as_of or now))
            links.append(link)

        probability, reasons = self.row_scorer.score(rows)
        results = []
        for position, (contact, row, link) in enumerate(zip(contacts, rows, links)):
            previous = row["previous_user"] >= 1
            results.append(
                score_result(
                    contact_id=contact.contact_id,
                    probability=probability[position],
                    previous_user=previous,
                    matched_user_id=link["user_id"] if previous else None,
                    match_probability=row["match_probability"],
                    reasons=reasons[position],
                    model_version=self.version,
                )
            )
        return results


def _event_records(contact: ContactIn) -> list[dict]:
    """Return the contact's events as the feature builder reads them, with event types trimmed and lower-cased."""
    return [
        {"event_type": event.event_type.strip().lower(), "occurred_at": event.occurred_at, "url": event.url}
        for event in contact.events
    ]
