"""Training examples from a workspace: one per deal closed before a cut-off."""

from __future__ import annotations

import logging

import pandas as pd

from leadlink.errors import TrainingError
from leadlink.features.workspace import Workspace

logger = logging.getLogger(__name__)


def resolve_as_of(workspace: Workspace, as_of: str | pd.Timestamp | None, now: pd.Timestamp | None = None) -> pd.Timestamp:
    """Return ``as_of`` as a UTC timestamp, defaulting to the workspace's latest.

    The default is the latest timestamp that is not in the future, so one
    mistyped date in 2099 cannot move every score into an empty future.
    Future timestamps are counted in a warning.
    """
    now = now or pd.Timestamp.now(tz="UTC")
    if as_of is None:
        latest = workspace.latest_timestamp(not_after=now)
        if latest is None:
            raise TrainingError(f"Workspace {workspace.path} has no timestamps up to now; pass --as-of explicitly.")
        future = workspace.count_timestamps_after(now)
        if future:
            logger.warning("%s timestamp(s) lie after the current time and were ignored for the default --as-of; check them.", f"{future:,}")
        # One microsecond later, so that rows at the latest instant count as before it.
        return latest + pd.Timedelta(microseconds=1)
    return parse_as_of(as_of)


def parse_as_of(as_of: str | pd.Timestamp) -> pd.Timestamp:
    """Read an --as-of value as a UTC timestamp; naive values are UTC."""
    try:
        stamp = pd.Timestamp(as_of)
    except ValueError as error:
        raise TrainingError(f"--as-of {as_of!r} is not an ISO 8601 timestamp: {error}") from error
    if pd.isna(stamp):
        raise TrainingError(f"--as-of {as_of!r} is not an ISO 8601 timestamp such as 2026-01-31 or 2026-01-31T12:00:00Z.")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def deal_examples(workspace: Workspace, as_of: pd.Timestamp) -> pd.DataFrame:
    """Return won and lost deals closed before ``as_of`` with their label.

    Each example's moment is the deal's ``created_at``: the model learns what
    was known when the deal opened, never what happened while it was worked.
    """
    deals = workspace.deals
    closed = deals[deals["outcome"].isin(["won", "lost"]) & (deals["closed_at"] < as_of)]
    examples = pd.DataFrame(
        {
            "deal_id": closed["deal_id"].to_numpy(),
            "contact_id": closed["contact_id"].to_numpy(),
            "as_of": closed["created_at"].to_numpy(),
            "label": closed["outcome"].eq("won").astype(int).to_numpy(),
        }
    )
    examples["as_of"] = pd.to_datetime(examples["as_of"], utc=True)
    if examples.empty:
        raise TrainingError(
            f"No won or lost deal closed before {as_of.isoformat()} in {workspace.path}; "
            f"the deals table has {len(deals):,} usable rows."
        )
    logger.info(
        "Training examples: %s closed deals (%s won, %s lost) before %s",
        f"{len(examples):,}",
        f"{int(examples['label'].sum()):,}",
        f"{int((1 - examples['label']).sum()):,}",
        as_of.isoformat(),
    )
    return examples.sort_values("as_of", kind="stable").reset_index(drop=True)
