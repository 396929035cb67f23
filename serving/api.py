"""The HTTP service: score one contact per request, with reasons.

The model and the users index load once at start-up; each request links the
contact against the users in memory, computes its features as of the
request's moment, and returns the same fields as a batch scoring row.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import pandas as pd
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from leadlink.errors import LeadlinkError
from leadlink.features.linkage import _orient_pairs
from leadlink.features.pipeline import FeatureConfig, build_features
from leadlink.features.realtime import RealtimeLinker
from leadlink.features.workspace import load_workspace
from leadlink.serving.batch import model_version_label, score_frame
from leadlink.serving.model import load_model

logger = logging.getLogger(__name__)

MAX_EVENTS_PER_CONTACT = 10_000
ShortText = Annotated[str | None, Field(default=None, max_length=1000)]


class EventIn(BaseModel):
    """One engagement event of the contact."""

    model_config = ConfigDict(extra="ignore")

    event_type: str = Field(min_length=1, max_length=100)
    occurred_at: datetime
    url: ShortText = None


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
    employee_count: int | None = Field(default=None, ge=0)
    annual_revenue: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    country: ShortText = None
    city: ShortText = None
    created_at: datetime | None = None
    events: list[EventIn] = Field(default_factory=list, max_length=MAX_EVENTS_PER_CONTACT)
    as_of: datetime | None = Field(default=None, description="Score as of this time; default: now.")

    @field_validator("created_at", "as_of")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return _as_utc(value)


class ScoreOut(BaseModel):
    """The score of one contact, as a batch scoring row has it."""

    contact_id: str
    probability: float
    score: int
    previous_user: bool
    matched_user_id: str | None
    match_probability: float
    reasons: list[str]
    model_version: str


class Health(BaseModel):
    status: str
    model_version: str
    users_indexed: int


def _as_utc(value: datetime | None) -> datetime | None:
    """Read naive timestamps as UTC, as the workspace contract does."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class ScoringService:
    """The loaded model, the users index and the per-request scoring steps."""

    def __init__(self, workspace: Path | None, model_uri: str | None):
        self.model = load_model(model_uri)
        scorer = self.model.scorer
        if scorer.mode != "workspace":
            raise ValueError(f"Model {self.model.uri} was trained on a lead table; the HTTP service needs a workspace model.")
        self.config = FeatureConfig.from_dict(scorer.spec["feature_config"])
        self.version = model_version_label(self.model)

        workspace = workspace or _trained_workspace(scorer.spec)
        if workspace is None:
            raise LeadlinkError(
                f"Model {self.model.uri} was trained on workspace {scorer.spec.get('workspace')!r}, which no longer exists; "
                "pass --workspace with the folder that holds the users table."
            )
        self.users = load_workspace(workspace, require=(), tables=("users",)).users
        if self.users.empty:
            logger.warning("Workspace %s has no users; no contact will be recognised as a previous user.", workspace)
        self.linker = None
        if scorer.linkage_model and len(self.users):
            self.linker = RealtimeLinker(scorer.linkage_model, self.users, self.config.default_region)
            self.users = self.users.assign(person_id=self.linker.person_ids.to_numpy())

    def score(self, contact: ContactIn) -> ScoreOut:
        as_of = pd.Timestamp(contact.as_of or datetime.now(timezone.utc))
        fields = contact.model_dump(exclude={"events", "as_of"})
        contact_frame = pd.DataFrame([fields])
        contact_frame["created_at"] = pd.to_datetime(contact_frame["created_at"], utc=True)
        events = pd.DataFrame(
            {
                "contact_id": contact.contact_id,
                "event_type": [e.event_type.strip().lower() for e in contact.events],
                "occurred_at": pd.to_datetime([_as_utc(e.occurred_at) for e in contact.events], utc=True),
                "url": [e.url for e in contact.events],
            }
        )
        links = self.linker.link_one(contact_frame, self.config.match_threshold) if self.linker else _orient_pairs(pd.DataFrame())
        moments = pd.DataFrame({"contact_id": [contact.contact_id], "as_of": pd.Series([as_of], dtype="datetime64[ns, UTC]")})
        features = build_features(contact_frame, events, self.users, links, moments, self.config)

        probability, reasons = score_frame(self.model.scorer, features)
        previous = bool(features["previous_user"].iloc[0] >= 1)
        matched = links["user_id"].iloc[0] if previous and len(links) else None
        return ScoreOut(
            contact_id=contact.contact_id,
            probability=_finite(float(probability[0])),
            score=int(round(_finite(float(probability[0])) * 100)),
            previous_user=previous,
            matched_user_id=matched,
            match_probability=_finite(float(features["match_probability"].iloc[0])),
            reasons=reasons[0],
            model_version=self.version,
        )


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0


def _trained_workspace(spec: dict) -> Path | None:
    path = spec.get("workspace")
    return Path(path) if path and Path(path).is_dir() else None


def _field_name(error: dict) -> str:
    # For unparseable JSON the location is a character offset, not a field.
    if error.get("type") == "json_invalid":
        return "body"
    return ".".join(str(part) for part in error.get("loc", ()) if part != "body")


def create_app(workspace: str | Path | None = None, model_uri: str | None = None) -> FastAPI:
    """Build the FastAPI application with the model and users loaded."""
    service = ScoringService(Path(workspace) if workspace else None, model_uri)
    app = FastAPI(
        title="leadlink",
        summary="Lead scores with previous-user recognition and reasons.",
        version="1",
    )
    app.state.service = service

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = error.errors()
        status = 400 if any(e.get("type") == "json_invalid" for e in errors) else 422
        detail = [{"field": _field_name(e), "message": e.get("msg")} for e in errors]
        return JSONResponse(status_code=status, content={"detail": detail})

    @app.get("/healthz", response_model=Health)
    def health() -> Health:
        """Report that the service is up and which model it serves."""
        return Health(status="ok", model_version=service.version, users_indexed=len(service.users))

    @app.post("/v1/score", response_model=ScoreOut)
    def score(contact: ContactIn) -> ScoreOut:
        """Score one contact, linking it to the product's users first."""
        return service.score(contact)

    return app
