"""Reason phrases for hand-built rows, and pattern-cached TreeSHAP against LightGBM's own TreeSHAP."""

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from leadlink.serving.contributions import MIN_ROWS_FOR_PATTERNS, PatternTreeShap, lightgbm_contributions, numeric_matrix
from leadlink.serving.reasons import describe_feature, describe_table_value, joined_reasons, top_reasons
from leadlink.training.train import fit_scorer

NOT_A_USER = {"previous_user": 0.0, "match_probability": 0.0, "job_change": np.nan, "power_user": 0.0}


# ---------------------------------------------------------------------------
# Phrases
# ---------------------------------------------------------------------------


def test_power_user_job_change_phrase():
    row = {"previous_user": 1.0, "power_user": 1.0, "job_change": 1.0, "match_probability": 0.97}
    assert describe_feature("power_user", 1.0, row) == "previous power user at another company"


def test_previous_user_features_share_phrase():
    row = {"previous_user": 1.0, "power_user": 0.0, "job_change": 0.0, "match_probability": 0.9, "user_plan": "team"}
    phrases = {describe_feature(name, row.get(name), row) for name in ("previous_user", "job_change", "user_plan", "user_active_days")}
    assert phrases == {"previous product user at the same company"}


def test_non_user_phrases():
    assert describe_feature("previous_user", 0.0, NOT_A_USER) == "not a previous product user"
    weak = {**NOT_A_USER, "match_probability": 0.55}
    assert describe_feature("match_probability", 0.55, weak) == "possible earlier product account (identity match 55%)"


@pytest.mark.parametrize(
    ("name", "value", "phrase"),
    [
        ("days_since_demo_request", 3.2, "requested a demo 3 days ago"),
        ("days_since_demo_request", 0.3, "requested a demo today"),
        ("days_since_demo_request", np.nan, "never requested a demo"),
        ("days_since_pricing_page_view", 1.0, "viewed the pricing page 1 day ago"),
        ("seniority_level", 8.0, "VP-level title"),
        ("seniority_level", 9.0, "C-level title"),
        ("seniority_level", np.nan, "job title without a clear seniority"),
        ("email_kind", "personal", "personal email address"),
        ("email_kind", "role", "shared role email address (such as info@)"),
        ("email_kind", None, "no valid email address"),
        ("job_function", "it", "works in IT"),
        ("job_function", "customer_success", "works in customer success"),
        ("industry", "software", "in the software industry"),
        ("country", "de", "based in DE"),
        ("employee_count", 1200.0, "company of 1,200 employees"),
        ("log_annual_revenue", 7.0, "company revenue about $10M"),
        ("log_annual_revenue", 5.5, "company revenue about $316K"),
        ("decayed_pricing_page_view", 1.4, "recent pricing page views"),
        ("decayed_pricing_page_view", 0.0, "no recent pricing page views"),
        ("events_last_30_days", 1.0, "1 interaction in the last 30 days"),
        ("events_last_30_days", 0.0, "no interactions in the last 30 days"),
        ("has_linkedin", 0.0, "no LinkedIn profile on file"),
        ("is_intern", 1.0, "intern title"),
        ("is_student", 0.0, "not a student"),
        ("engagement_score", 0.4, "no recent engagement"),
        ("days_since_last_event", np.nan, "no recorded interaction"),
    ],
)
def test_feature_phrase(name, value, phrase):
    assert describe_feature(name, value, {}) == phrase


def test_engagement_phrase_follows_sign():
    assert describe_feature("engagement_score", 42.0, {}, sign=1) == "high engagement score (42)"
    assert describe_feature("engagement_score", 3.0, {}, sign=-1) == "low engagement score (3)"
    assert describe_feature("engagement_score", 0.0, {}, sign=-1) == "no recent engagement"


@pytest.mark.parametrize(
    ("value", "kind", "phrase"),
    [
        ("Google", "categorical", "Lead Source is Google"),
        (None, "categorical", "Lead Source is missing"),
        (np.nan, "numeric", "Lead Source is missing"),
        (5.0, "numeric", "Lead Source is 5"),
        (2.3456, "numeric", "Lead Source is 2.35"),
        (1234.5, "numeric", "Lead Source is 1,234"),
        (1.0, "boolean", "Lead Source is yes"),
        (0.0, "boolean", "Lead Source is no"),
        ("A; B\nC", "categorical", "Lead Source is A, B C"),
    ],
)
def test_table_phrase(value, kind, phrase):
    assert describe_table_value("Lead Source", value, kind) == phrase


def test_table_phrase_cut_to_limit():
    phrase = describe_table_value("Notes", "x" * 500, "categorical")
    assert phrase == "Notes is " + "x" * 57 + "..."


# ---------------------------------------------------------------------------
# Ranking
# ---------------------------------------------------------------------------


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def test_top_reason_previous_power_user():
    names = ["previous_user", "power_user", "job_change", "days_since_demo_request", "seniority_level"]
    features = _frame([{"previous_user": 1.0, "power_user": 1.0, "job_change": 1.0, "days_since_demo_request": 3.0, "seniority_level": 8.0}])
    # Each previous-user feature alone is smaller than the demo, but their sum is the largest.
    contributions = np.array([[0.3, 0.4, 0.2, 0.6, 0.1, -1.0]])
    reasons = top_reasons(features, contributions, names)
    assert reasons == [["+ previous power user at another company", "+ requested a demo 3 days ago", "+ VP-level title"]]


def test_top_reasons_sign_and_order():
    names = ["email_kind", "seniority_level", "decayed_pricing_page_view", "has_phone"]
    features = _frame([{"email_kind": "personal", "seniority_level": 8.0, "decayed_pricing_page_view": 2.0, "has_phone": 1.0}])
    contributions = np.array([[-0.9, 0.5, 0.7, 0.01]])
    reasons = top_reasons(features, contributions, names)
    assert reasons == [["- personal email address", "+ recent pricing page views", "+ VP-level title"]]


def test_top_reasons_merge_equal_phrases():
    names = ["seniority_level", "is_intern", "decayed_demo_request", "has_phone"]
    features = _frame([{"seniority_level": 2.0, "is_intern": 1.0, "decayed_demo_request": 1.0, "has_phone": 0.0}])
    # The intern flag and the seniority level both read "intern title": -0.3 - 0.25 outweighs +0.4.
    contributions = np.array([[-0.3, -0.25, 0.4, -0.1]])
    reasons = top_reasons(features, contributions, names)
    assert reasons == [["- intern title", "+ recent demo requests", "- no phone number on file"]]


def test_top_reasons_skip_zero_effects():
    names = ["seniority_level", "has_phone"]
    features = _frame([{"seniority_level": 8.0, "has_phone": 1.0}])
    reasons = top_reasons(features, np.array([[0.2, 0.0]]), names)
    assert reasons == [["+ VP-level title"]]


def test_top_reasons_table_names():
    names = ["c000_lead_source", "c001_visits"]
    features = _frame([{"c000_lead_source": "Google", "c001_visits": np.nan}, {"c000_lead_source": None, "c001_visits": 4.0}])
    contributions = np.array([[0.5, -0.2, 0.0], [-0.1, 0.3, 0.0]])
    display = {"c000_lead_source": "Lead Source", "c001_visits": "Visits"}
    reasons = top_reasons(features, contributions, names, display_names=display)
    assert reasons[0] == ["+ Lead Source is Google", "- Visits is missing"]
    assert reasons[1] == ["+ Visits is 4", "- Lead Source is missing"]


def test_top_reasons_missing_values_repeat():
    names = ["days_since_demo_request"]
    features = _frame([{"days_since_demo_request": np.nan}] * 3)
    reasons = top_reasons(features, np.array([[-0.4], [-0.4], [-0.4]]), names)
    assert reasons == [["- never requested a demo"]] * 3


def test_joined_reasons_texts():
    names = ["seniority_level", "is_intern", "decayed_demo_request", "has_phone"]
    features = _frame(
        [
            {"seniority_level": 2.0, "is_intern": 1.0, "decayed_demo_request": 1.0, "has_phone": 0.0},
            {"seniority_level": 8.0, "is_intern": 0.0, "decayed_demo_request": 0.0, "has_phone": 1.0},
            {"seniority_level": 8.0, "is_intern": 0.0, "decayed_demo_request": 0.0, "has_phone": 1.0},
        ]
    )
    contributions = np.array([[-0.3, -0.25, 0.4, -0.1], [0.2, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    texts = joined_reasons(features, contributions, names)
    assert texts.tolist() == ["- intern title; + recent demo requests; - no phone number on file", "+ VP-level title", ""]


# ---------------------------------------------------------------------------
# Pattern-cached TreeSHAP
# ---------------------------------------------------------------------------


# Phrases are described once per group of rows that share them; each row's
# phrase must still equal the one describe_feature gives that row alone.
_GROUPED_FEATURES = [
    "decayed_demo_request",
    "days_since_demo_request",
    "days_since_last_event",
    "contact_age_days",
    "engagement_score",
    "events_last_30_days",
    "employee_count",
    "log_annual_revenue",
    "seniority_level",
    "job_function",
    "previous_user",
    "match_probability",
]


def _varied_rows(n: int, seed: int) -> pd.DataFrame:
    """Rows with missing values, ties at .5 and values on both sides of the recent-events threshold."""
    rng = np.random.default_rng(seed)

    def numbers(scale: float) -> np.ndarray:
        values = np.round(rng.exponential(scale, n) * 2) / 2 + rng.choice([0.0, 0.001], n)
        values[rng.random(n) < 0.15] = np.nan
        return values

    return pd.DataFrame(
        {
            "decayed_demo_request": np.where(rng.random(n) < 0.3, rng.choice([0.049, 0.05, 0.051], n), numbers(0.2)),
            "days_since_demo_request": numbers(5),
            "days_since_last_event": numbers(3),
            "contact_age_days": numbers(100),
            "engagement_score": numbers(2),
            "events_last_30_days": numbers(2),
            "employee_count": numbers(500),
            "log_annual_revenue": numbers(6),
            "seniority_level": rng.choice([np.nan, 1.0, 4.0, 9.0], n),
            "job_function": pd.Series(rng.choice(["it", "sales", "unknown", "other"], n)).where(rng.random(n) > 0.1, None),
            "previous_user": rng.choice([0.0, 1.0, np.nan], n),
            "power_user": rng.choice([0.0, 1.0, np.nan], n),
            "job_change": rng.choice([0.0, 1.0, np.nan], n),
            "match_probability": np.where(rng.random(n) < 0.2, rng.choice([0.0, 0.004, 0.005, 0.555, 0.565, np.nan], n), rng.uniform(0, 1, n)),
        }
    )


def _row_value(value):
    return None if value is None or (not isinstance(value, str) and pd.isna(value)) else value


@pytest.mark.parametrize("name", _GROUPED_FEATURES)
def test_grouped_phrases_equal_row_phrases(name):
    features = _varied_rows(3000, seed=len(name))
    effects = np.where(np.arange(len(features)) % 3 == 0, -0.5, 0.5)[:, None]
    reasons = top_reasons(features, effects, [name], top_k=1)
    expected = []
    for row, effect in zip(features.to_dict("records"), effects[:, 0]):
        context = {key: _row_value(value) for key, value in row.items()}
        sign = 1 if effect > 0 else -1
        expected.append([("+ " if sign > 0 else "- ") + describe_feature(name, context[name], context, sign)])
    assert reasons == expected


def test_grouped_table_phrases_equal_row_phrases():
    features = pd.DataFrame({"Lead Source": ["Google", None, "Olark Chat", "Google", 3.5, "Google;Ads"] * 50})
    reasons = top_reasons(features, np.full((len(features), 1), 0.2), ["Lead Source"], top_k=1, display_names={"Lead Source": "Lead Source"})
    expected = [["+ " + describe_table_value("Lead Source", _row_value(value))] for value in features["Lead Source"]]
    assert reasons == expected


def _synthetic_features(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Features with missing values, exact zeros, repeated values and a category, and a label that depends on them."""
    rng = np.random.default_rng(seed)
    visits = rng.poisson(3, n).astype(float)
    visits[rng.random(n) < 0.2] = np.nan
    minutes = np.round(rng.exponential(20, n), 1)
    minutes[rng.random(n) < 0.3] = 0.0
    score = rng.normal(0, 1, n)
    flag = (rng.random(n) < 0.4).astype(float)
    source = rng.choice(["ads", "web", "partner", "event", None], n, p=[0.3, 0.3, 0.2, 0.15, 0.05])
    logit = 0.4 * np.nan_to_num(visits, nan=1.0) + 0.03 * minutes + 0.8 * score + flag - 2.5 + (source == "partner") * 1.2
    labels = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    features = pd.DataFrame({"visits": visits, "minutes": minutes, "score": score, "flag": flag, "source": source})
    return features, labels


KINDS = {"visits": "numeric", "minutes": "numeric", "score": "numeric", "flag": "numeric", "source": "categorical"}


@pytest.fixture(scope="module")
def small_scorer():
    features, labels = _synthetic_features(4000, seed=1)
    return fit_scorer(features, labels, KINDS, np.arange(len(labels)), seed=0)


@pytest.fixture(scope="module")
def scoring_rows(small_scorer):
    features, _ = _synthetic_features(3000, seed=2)
    return features, numeric_matrix(small_scorer.encode(features))


def test_patterns_equal_lightgbm(small_scorer, scoring_rows):
    _, matrix = scoring_rows
    explainer = PatternTreeShap(small_scorer.booster)
    fast = explainer.contributions(matrix)
    exact = lightgbm_contributions(small_scorer.booster, matrix)
    assert explainer.supported
    assert fast.shape == exact.shape
    assert np.abs(fast - exact).max() < 1e-9


def test_patterns_computed_once(small_scorer, scoring_rows):
    _, matrix = scoring_rows
    explainer = PatternTreeShap(small_scorer.booster)
    first = explainer.contributions(matrix)
    computed = explainer.patterns_computed
    second = explainer.contributions(matrix)
    assert explainer.patterns_computed == computed
    assert np.array_equal(first, second)
    # Fewer TreeSHAP runs than row-tree pairs is the point of the cache.
    assert computed < len(matrix) * small_scorer.booster.num_trees() / 4


def test_patterns_chunks_equal_whole(small_scorer, scoring_rows):
    _, matrix = scoring_rows
    whole = PatternTreeShap(small_scorer.booster).contributions(matrix)
    chunked_explainer = PatternTreeShap(small_scorer.booster)
    parts = [chunked_explainer.contributions(matrix[start : start + 700]) for start in range(0, len(matrix), 700)]
    assert np.abs(np.vstack(parts) - whole).max() < 1e-9


def test_patterns_small_cache(small_scorer, scoring_rows):
    _, matrix = scoring_rows
    explainer = PatternTreeShap(small_scorer.booster, max_cached_values=500)
    exact = lightgbm_contributions(small_scorer.booster, matrix)
    for start in range(0, len(matrix), 1000):
        part = explainer.contributions(matrix[start : start + 1000])
        assert np.abs(part - exact[start : start + 1000]).max() < 1e-9


def test_patterns_missing_category_rows(small_scorer, scoring_rows):
    _, matrix = scoring_rows
    odd = matrix.copy()
    source = small_scorer.feature_names.index("source")
    odd[::5, source] = np.nan
    odd[1::7, source] = -3.0
    odd[2::11, source] = 999.0
    fast = PatternTreeShap(small_scorer.booster).contributions(odd)
    assert np.abs(fast - lightgbm_contributions(small_scorer.booster, odd)).max() < 1e-9


def test_patterns_zero_as_missing():
    rng = np.random.default_rng(3)
    n = 3000
    x = np.where(rng.random((n, 3)) < 0.3, 0.0, rng.normal(0, 1, (n, 3)))
    x[rng.random(n) < 0.1, 1] = np.nan
    x[:50, 2] = 1e-36  # inside LightGBM's zero zone, passed to the trees as 0
    y = (x[:, 0] + np.nan_to_num(x[:, 1]) + (x[:, 2] == 0) + rng.normal(0, 1, n) > 0.5).astype(int)
    params = {"objective": "binary", "num_leaves": 15, "zero_as_missing": True, "min_data_in_leaf": 20, "verbose": -1}
    booster = lgb.train(params, lgb.Dataset(x, y), num_boost_round=30)
    fast = PatternTreeShap(booster).contributions(x)
    assert np.abs(fast - lightgbm_contributions(booster, x)).max() < 1e-9


def test_patterns_few_rows_use_lightgbm(small_scorer, scoring_rows):
    _, matrix = scoring_rows
    rows = matrix[: MIN_ROWS_FOR_PATTERNS - 1]
    explainer = PatternTreeShap(small_scorer.booster)
    fast = explainer.contributions(rows)
    assert explainer.patterns_computed == 0
    assert np.abs(fast - lightgbm_contributions(small_scorer.booster, rows)).max() < 1e-12


def test_patterns_top3_agree_with_lightgbm(small_scorer, scoring_rows):
    """Share of rows whose top 3 features (by absolute contribution) match exact TreeSHAP.

    The pattern method is exact, so only ties between features with equal
    absolute contributions, ordered differently after rounding, can differ.
    It matched on every one of these 3,000 rows when this test was written;
    the 0.995 bound leaves room for such ties on other platforms.
    """
    _, matrix = scoring_rows
    n_features = len(small_scorer.feature_names)
    fast = PatternTreeShap(small_scorer.booster).contributions(matrix)[:, :n_features]
    exact = lightgbm_contributions(small_scorer.booster, matrix)[:, :n_features]
    top_fast = np.argsort(-np.abs(fast), axis=1, kind="stable")[:, :3]
    top_exact = np.argsort(-np.abs(exact), axis=1, kind="stable")[:, :3]
    agreement = np.mean([set(a) == set(b) for a, b in zip(top_fast, top_exact)])
    assert agreement >= 0.995
