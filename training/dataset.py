"""Training examples from a workspace: one per deal closed before a cut-off."""

from __future__ import annotations

import logging

import numpy as np
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
    stamp = parse_as_of(as_of)
    latest = workspace.latest_timestamp(not_after=now)
    if latest is not None and stamp > max(latest, now):
        logger.warning(
            "--as-of %s lies after the workspace's latest timestamp (%s) and the current time; deals still open then "
            "cannot be told apart from deals that never closed.",
            stamp.isoformat(),
            latest.isoformat(),
        )
    return stamp


def parse_as_of(as_of: str | pd.Timestamp) -> pd.Timestamp:
    """Read an --as-of value as a UTC timestamp; naive values are UTC."""
    try:
        stamp = pd.Timestamp(as_of)
    except ValueError as error:
        raise TrainingError(f"--as-of {as_of!r} is not an ISO 8601 timestamp: {error}") from error
    if pd.isna(stamp):
        raise TrainingError(f"--as-of {as_of!r} is not an ISO 8601 timestamp such as 2026-01-31 or 2026-01-31T12:00:00Z.")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


# Deals created shortly before the cut-off are mostly still open, and the
# ones that did close are the quickly lost ones, because won deals take
# longer. Learning from them would bias every probability down, so deals
# count only once they are older than a maturity window: this quantile of
# sales-cycle lengths, taken for won and lost deals apart, the longer one.
MATURITY_QUANTILE = 0.95
# Cycle lengths are measured on deals created at least this long before the
# cut-off, which have nearly all closed; recent deals would understate them.
CYCLE_SAMPLE_AGE_DAYS = 365
MIN_CYCLE_SAMPLE = 50


# A century: longer windows are typing mistakes and overflow timestamps.
MAX_DAYS = 36_500


def check_days(option: str, value: float, allow_zero: bool) -> None:
    """Raise a TrainingError unless ``value`` is a usable number of days for ``option``."""
    lowest = "zero or more" if allow_zero else "more than zero"
    valid = np.isfinite(value) and (value >= 0 if allow_zero else value > 0) and value <= MAX_DAYS
    if not valid:
        raise TrainingError(f"{option} must be a number of days, {lowest} and at most {MAX_DAYS:,}; got {value}.")


def sales_cycle_days(deals: pd.DataFrame, as_of: pd.Timestamp, quantile: float = MATURITY_QUANTILE) -> float:
    """Return the maturity window in days: the longer of the won and lost cycle-length ``quantile``."""
    closed = deals[deals["outcome"].isin(["won", "lost"]) & (deals["closed_at"] < as_of)]
    old = closed[closed["created_at"] < as_of - pd.Timedelta(days=CYCLE_SAMPLE_AGE_DAYS)]
    sample = old if len(old) >= MIN_CYCLE_SAMPLE else closed
    cycle = (sample["closed_at"] - sample["created_at"]).dt.total_seconds() / 86_400
    valid = cycle >= 0
    per_outcome = cycle[valid].groupby(sample.loc[valid, "outcome"]).quantile(quantile)
    return float(np.ceil(per_outcome.max())) if len(per_outcome) else 0.0


def deal_examples(workspace: Workspace, as_of: pd.Timestamp, maturity_days: float | None = None) -> pd.DataFrame:
    """Return one example per won or lost deal, as of the deal's creation.

    The model learns what was known when the deal opened, never what happened
    while it was worked. Only deals created at least ``maturity_days`` before
    ``as_of`` count, and of those only deals closed before ``as_of``; the
    others are counted in the log. Columns: deal_id, contact_id, as_of (the
    moment), outcome_at (when the outcome became known) and label.
    """
    deals = workspace.deals
    if maturity_days is None:
        maturity_days = sales_cycle_days(deals, as_of)
    check_days("--maturity-days", maturity_days, allow_zero=True)
    mature_before = as_of - pd.Timedelta(days=float(maturity_days))
    created_in_time = deals["created_at"] < mature_before
    closed = deals["outcome"].isin(["won", "lost"]) & (deals["closed_at"] < as_of)
    chosen = deals[created_in_time & closed]

    examples = pd.DataFrame(
        {
            "deal_id": chosen["deal_id"].to_numpy(),
            "contact_id": chosen["contact_id"].to_numpy(),
            "as_of": chosen["created_at"].to_numpy(),
            "outcome_at": chosen["closed_at"].to_numpy(),
            "label": chosen["outcome"].eq("won").astype(int).to_numpy(),
        }
    )
    for column in ("as_of", "outcome_at"):
        examples[column] = pd.to_datetime(examples[column], utc=True)
    if examples.empty:
        n_closed = int(deals["outcome"].isin(["won", "lost"]).sum())
        if n_closed == 0:
            raise TrainingError(
                f"The deals table of {workspace.path} has no won or lost deal among its {len(deals):,} usable rows; "
                "training needs closed deals. Rejected rows, if any, are listed in the workspace's rejects file."
            )
        raise TrainingError(
            f"No won or lost deal created before {mature_before.isoformat()} and closed before {as_of.isoformat()} "
            f"in {workspace.path} ({n_closed:,} closed deals in all). Move --as-of later or lower --maturity-days."
        )

    logger.info(
        "Training examples: %s closed deals (%s won, %s lost) created before %s (maturity window %s days); "
        "left out: %s created later, %s still open or closed after the cut-off",
        f"{len(examples):,}",
        f"{int(examples['label'].sum()):,}",
        f"{int((1 - examples['label']).sum()):,}",
        mature_before.date().isoformat(),
        f"{maturity_days:g}",
        f"{int((~created_in_time).sum()):,}",
        f"{int((created_in_time & ~closed).sum()):,}",
    )
    examples = examples.sort_values("as_of", kind="stable").reset_index(drop=True)
    examples.attrs["maturity_days"] = float(maturity_days)
    return examples


def contact_examples(workspace: Workspace, as_of: pd.Timestamp, horizon_days: float) -> pd.DataFrame:
    """Return one example per contact as of its creation: won a deal within ``horizon_days``?

    Only contacts whose horizon ended before ``as_of`` count, so every label
    is final. Contacts without a creation time are counted and left out.
    """
    check_days("--horizon-days", horizon_days, allow_zero=False)
    contacts = workspace.contacts
    if contacts["created_at"].isna().all():
        raise TrainingError(
            f"No contact in {workspace.path} has a created_at time, so no contact has a moment to be scored as of; "
            "fill contacts.created_at or use --population deals."
        )
    horizon = pd.Timedelta(days=float(horizon_days))
    created = contacts["created_at"]
    usable = created.notna() & (created + horizon < as_of)
    chosen = contacts.loc[usable, ["contact_id", "created_at"]]

    deals = workspace.deals
    won = deals.loc[deals["outcome"].eq("won") & deals["closed_at"].notna(), ["contact_id", "closed_at"]]
    pairs = chosen.merge(won, on="contact_id", how="inner")
    in_horizon = (pairs["closed_at"] > pairs["created_at"]) & (pairs["closed_at"] <= pairs["created_at"] + horizon)
    winners = set(pairs.loc[in_horizon, "contact_id"])

    examples = pd.DataFrame(
        {
            "contact_id": chosen["contact_id"].to_numpy(),
            "as_of": pd.to_datetime(chosen["created_at"], utc=True).to_numpy(),
            "outcome_at": pd.to_datetime(chosen["created_at"] + horizon, utc=True).to_numpy(),
            "label": chosen["contact_id"].isin(winners).astype(int).to_numpy(),
        }
    )
    for column in ("as_of", "outcome_at"):
        examples[column] = pd.to_datetime(examples[column], utc=True)
    if examples.empty:
        raise TrainingError(
            f"No contact in {workspace.path} was created more than {horizon_days:g} days before {as_of.isoformat()}; "
            "move --as-of later or shorten --horizon-days."
        )
    logger.info(
        "Training examples: %s contacts as of their creation, %s won a deal within %g days; left out: %s without "
        "a creation time, %s created too recently",
        f"{len(examples):,}",
        f"{int(examples['label'].sum()):,}",
        horizon_days,
        f"{int(created.isna().sum()):,}",
        f"{int((created.notna() & ~usable).sum()):,}",
    )
    examples = examples.sort_values("as_of", kind="stable").reset_index(drop=True)
    # Every label is final exactly one horizon after its moment.
    examples.attrs["maturity_days"] = float(horizon_days)
    return examples
