"""Point-in-time correctness on a whole workspace: rewriting the future leaves training features unchanged."""

import numpy as np
import pandas as pd
import pytest

from leadlink.features.linkage import link_workspace, with_person_ids
from leadlink.features.pipeline import build_features
from leadlink.features.workspace import load_workspace
from leadlink.training.dataset import deal_examples


@pytest.fixture(scope="module")
def prepared(demo_workspace):
    workspace = load_workspace(demo_workspace)
    cutoff = workspace.deals["closed_at"].max() + pd.Timedelta(seconds=1)
    examples = deal_examples(workspace, cutoff, maturity_days=0)
    links, _, linked = link_workspace(workspace.contacts, workspace.users)
    users = with_person_ids(workspace.users, linked)
    return workspace, examples, links, users


def rewrite_future(events: pd.DataFrame, moment: pd.Timestamp, seed: int = 0) -> pd.DataFrame:
    """Drop every event at or after ``moment`` and add different ones there instead."""
    rng = np.random.default_rng(seed)
    past = events[events["occurred_at"] < moment]
    contacts = events["contact_id"].unique()
    n = 5000
    future = pd.DataFrame(
        {
            "contact_id": rng.choice(contacts, size=n),
            "event_type": rng.choice(["demo_request", "pricing_page_view", "unsubscribe", "trial_signup"], size=n),
            "occurred_at": moment + pd.to_timedelta(rng.integers(0, 90 * 86_400, size=n), unit="s"),
            "url": "https://www.example-product.com/pricing",
        }
    )
    return pd.concat([past, future], ignore_index=True)


def test_future_events_leave_features_unchanged(prepared):
    workspace, examples, links, users = prepared
    moment = examples["as_of"].quantile(0.5)
    early = examples[examples["as_of"] <= moment].reset_index(drop=True)

    before = build_features(workspace.contacts, workspace.events, users, links, early)
    after = build_features(workspace.contacts, rewrite_future(workspace.events, moment), users, links, early)
    pd.testing.assert_frame_equal(before, after)


def test_rewritten_future_does_change_later_features(prepared):
    # The check above must be able to fail: the same rewrite changes features of later moments.
    workspace, examples, links, users = prepared
    moment = examples["as_of"].quantile(0.5)
    late = examples[examples["as_of"] > moment + pd.Timedelta(days=30)].reset_index(drop=True)

    before = build_features(workspace.contacts, workspace.events, users, links, late)
    after = build_features(workspace.contacts, rewrite_future(workspace.events, moment), users, links, late)
    assert not before["engagement_score"].equals(after["engagement_score"])


def test_future_user_signups_are_ignored(prepared):
    workspace, examples, links, users = prepared
    moment = examples["as_of"].quantile(0.5)
    early = examples[examples["as_of"] <= moment].reset_index(drop=True)
    # Every user record re-dated to sign up after the moment, so no contact was a user yet.
    later = users.assign(signed_up_at=moment + pd.Timedelta(days=1))

    features = build_features(workspace.contacts, workspace.events, later, links, early)
    assert features["previous_user"].sum() == 0
    assert features["user_active_days"].isna().all()


def test_deals_closed_after_cutoff_are_not_examples(prepared):
    workspace, _, _, _ = prepared
    cutoff = workspace.deals["created_at"].quantile(0.5)
    examples = deal_examples(workspace, cutoff, maturity_days=0)
    chosen = workspace.deals.set_index("deal_id").loc[examples["deal_id"]]
    assert (chosen["closed_at"] < cutoff).all()
    assert (examples["outcome_at"] < cutoff).all()
