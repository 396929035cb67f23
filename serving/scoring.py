"""Request and response models of the HTTP service, and the per-request scoring steps.

A ``ScoringService`` pairs one loaded model with the users table it links
contacts against. It is not changed after construction. A model reload builds
a new one and swaps it in, so a request that holds a reference to the old one
finishes on the old model.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from leadlink.errors import LeadlinkError
from leadlink.features.linkage import _orient_pairs
from leadlink.features.pipeline import FeatureConfig, build_features
from leadlink.features.realtime import RealtimeLinker
from leadlink.features.workspace import load_workspace
from leadlink.serving.batch import model_version_label, score_frame
from leadlink.serving.model import ResolvedModel

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

        # Row keys stand in for contact ids while features are built, because
        # the feature pipeline joins on contact_id and a batch may repeat one.
        keys = [str(position) for position in range(len(contacts))]
        now = datetime.now(timezone.utc)
        contact_frame = self._contact_frame(contacts, keys)
        events = self._event_frame(contacts, keys)
        links = self._links(contact_frame)
        moments = pd.DataFrame(
            {
                "contact_id": keys,
                "as_of": pd.Series([contact.as_of or now for contact in contacts], dtype="datetime64[ns, UTC]"),
            }
        )
        features = build_features(contact_frame, events, self.users, links, moments, self.config)

        probability, reasons = score_frame(self.model.scorer, features)
        matched_by_key = dict(zip(links["contact_id"], links["user_id"]))
        results = []
        for row, (key, contact) in enumerate(zip(keys, contacts)):
            previous = bool(features["previous_user"].iloc[row] >= 1)
            results.append(
                score_result(
                    contact_id=contact.contact_id,
                    probability=probability[row],
                    previous_user=previous,
                    matched_user_id=matched_by_key.get(key) if previous else None,
                    match_probability=features["match_probability"].iloc[row],
                    reasons=reasons[row],
                    model_version=self.version,
                )
            )
        return results

    @staticmethod
    def _contact_frame(contacts: list[ContactIn], keys: list[str]) -> pd.DataFrame:
        rows = [{**contact.model_dump(exclude={"events", "as_of"}), "contact_id": key} for key, contact in zip(keys, contacts)]
        frame = pd.DataFrame(rows)
        frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
        return frame

    @staticmethod
    def _event_frame(contacts: list[ContactIn], keys: list[str]) -> pd.DataFrame:
        pairs = [(key, event) for key, contact in zip(keys, contacts) for event in contact.events]
        return pd.DataFrame(
            {
                "contact_id": [key for key, _ in pairs],
                "event_type": [event.event_type.strip().lower() for _, event in pairs],
                "occurred_at": pd.to_datetime([_as_utc(event.occurred_at) for _, event in pairs], utc=True),
                "url": [event.url for _, event in pairs],
            }
        )

    def _links(self, contact_frame: pd.DataFrame) -> pd.DataFrame:
        if self.linker is None:
            return _orient_pairs(pd.DataFrame())
        found = [self.linker.link_one(contact_frame.iloc[[row]], self.config.match_threshold) for row in range(len(contact_frame))]
        found = [links for links in found if not links.empty]
        return pd.concat(found, ignore_index=True) if found else _orient_pairs(pd.DataFrame())
