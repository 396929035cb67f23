"""Rules-based lead score, with expected points worked out by hand from the rules."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from leadlink.errors import LeadlinkError
from leadlink.features.pipeline import ENGAGEMENT_KEYS, engagement_features
from leadlink.features.rules import (
    JOB_FUNCTIONS,
    RulesConfig,
    RulesConfigError,
    load_rules,
    rules_engagement_config,
    rules_reasons,
    score_rules,
)
from leadlink.features.titles import parse_function
from tests.conftest import utc

# A small config whose numbers are easy to add up by hand.
SMALL_RULES = """
mql_threshold = 60

[fit.seniority]
director = 15
student = -20

[fit.email_kind]
work = 5
personal = -10

[fit.industry]
"Financial Services" = 8

[fit.country]
US = 4

[fit.employee_count]
unknown = -2
bands = [
    { min = 1000, points = 15 },
    { min = 1, points = 0 },
    { min = 200, points = 10 },
]

[fit.annual_revenue]
bands = [
    { min = 10_000_000, points = 5 },
]

[engagement]
half_life_days = 30
max_points = 50

[engagement.points]
demo_request = 30
pricing_page_view = 10
unsubscribe = -15

[grade]
fit_a = 40
fit_b = 20
fit_c = 10
engagement_1 = 30
engagement_2 = 20
engagement_3 = 10
"""


def lead(**values) -> dict:
    """Return one feature row where everything not given is missing or zero."""
    row = {
        "seniority_level": np.nan,
        "job_function": None,
        "is_student": 0.0,
        "is_intern": 0.0,
        "email_kind": None,
        "industry": None,
        "employee_count": np.nan,
        "log_annual_revenue": np.nan,
        "country": None,
        "days_since_last_event": np.nan,
    }
    row.update({f"decayed_{key}": 0.0 for key in ENGAGEMENT_KEYS})
    row.update(values)
    return row


def frame(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def write_rules(tmp_path, text: str):
    path = tmp_path / "my_rules.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def small_rules(tmp_path) -> RulesConfig:
    return load_rules(write_rules(tmp_path, SMALL_RULES))


@pytest.fixture(scope="module")
def default_rules() -> RulesConfig:
    return load_rules()


def grade_rules(**overrides) -> RulesConfig:
    """Rules where each seniority gives chosen fit points and a demo request 1 point."""
    values = {
        "mql_threshold": 60,
        "fit": {"seniority": {"c_level": 40, "vice_president": 39.5, "director": 20, "manager": 19.5, "senior_individual_contributor": 10, "individual_contributor": 9.5}},
        "engagement": {"half_life_days": 30, "points": {"demo_request": 1}},
        "grade": {"fit_a": 40, "fit_b": 20, "fit_c": 10, "engagement_1": 30, "engagement_2": 20, "engagement_3": 10},
    }
    values.update(overrides)
    return RulesConfig.from_dict(values)


# --- loading -----------------------------------------------------------------


def test_default_rules_load(default_rules):
    assert isinstance(default_rules, RulesConfig)


def test_default_rules_half_life_positive(default_rules):
    assert default_rules.engagement.half_life_days > 0


def test_default_rules_penalise_students(default_rules):
    assert default_rules.fit.seniority["student"] < 0


def test_default_rules_penalise_unsubscribe(default_rules):
    assert default_rules.engagement.points["unsubscribe"] < 0


def test_bands_sorted_by_min(small_rules):
    minimums = [band.min for band in small_rules.fit.employee_count.bands]
    assert minimums == [1.0, 200.0, 1000.0]


def test_names_folded_on_load(small_rules):
    assert small_rules.fit.industry == {"financial services": 8.0}


def test_country_code_folded_on_load(small_rules):
    assert small_rules.fit.country == {"us": 4.0}


# --- hand-computed scores ------------------------------------------------------


def test_score_director_demo_pricing(default_rules):
    rules = default_rules
    half_life = rules.engagement.half_life_days
    # A demo request today counts 1, and two pricing page views one half-life ago count 0.5 each.
    decayed_demo = 0.5 ** (0 / half_life)
    decayed_pricing = 2 * 0.5 ** (half_life / half_life)
    row = lead(
        seniority_level=7.0,  # director
        job_function="sales",
        email_kind="work",
        employee_count=1500.0,
        decayed_demo_request=decayed_demo,
        decayed_pricing_page_view=decayed_pricing,
    )

    # 1,500 employees fall in the band that starts at 1,000 when no band starts between them.
    band_1000 = next(band for band in rules.fit.employee_count.bands if band.min == 1000)
    assert not any(1000 < band.min <= 1500 for band in rules.fit.employee_count.bands)
    expected_fit = (
        rules.fit.seniority["director"]
        + rules.fit.job_function["sales"]
        + rules.fit.email_kind["work"]
        + band_1000.points
        + rules.fit.annual_revenue.unknown
    )
    expected_engagement = (
        rules.engagement.points["demo_request"] * decayed_demo + rules.engagement.points["pricing_page_view"] * decayed_pricing
    )
    assert rules.engagement.max_points is None or expected_engagement <= rules.engagement.max_points
    scores = score_rules(frame(row), rules, half_life)

    assert scores.loc[0, "fit_points"] == pytest.approx(expected_fit)
    assert scores.loc[0, "engagement_points"] == pytest.approx(expected_engagement)
    assert scores.loc[0, "rules_score"] == pytest.approx(expected_fit + expected_engagement)


def test_score_small_rules_by_hand(small_rules):
    row = lead(
        seniority_level=7.0,
        email_kind="work",
        industry="financial services",
        country="us",
        employee_count=1500.0,
        log_annual_revenue=math.log10(20_000_000),
        decayed_demo_request=1.0,
        decayed_pricing_page_view=1.0,
    )
    scores = score_rules(frame(row), small_rules, 30)

    # director 15 + work email 5 + financial services 8 + US 4 + 1,000+ employees 15 + $10M+ revenue 5
    assert scores.loc[0, "fit_points"] == 52.0
    # demo 30 * 1.0 + pricing 10 * 1.0
    assert scores.loc[0, "engagement_points"] == 40.0
    assert scores.loc[0, "rules_score"] == 92.0
    # fit 52 >= 40 gives A, engagement 40 >= 30 gives 1
    assert scores.loc[0, "grade"] == "A1"
    assert bool(scores.loc[0, "is_mql"]) is True


def test_unfolded_values_match(small_rules):
    row = lead(industry="Financial Services", country="US")
    scores = score_rules(frame(row), small_rules, 30)

    # industry 8 + US 4 + missing employee count -2
    assert scores.loc[0, "fit_points"] == 10.0


def test_negative_points(small_rules):
    row = lead(seniority_level=1.0, email_kind="personal", employee_count=5.0, decayed_unsubscribe=1.0)
    scores = score_rules(frame(row), small_rules, 30)

    # student -20 + personal email -10 + band min 1 gives 0
    assert scores.loc[0, "fit_points"] == -30.0
    # unsubscribe -15 * 1.0
    assert scores.loc[0, "engagement_points"] == -15.0
    assert scores.loc[0, "rules_score"] == -45.0


def test_engagement_cap(small_rules):
    row = lead(decayed_demo_request=3.0)
    scores = score_rules(frame(row), small_rules, 30)

    # 30 * 3.0 = 90, capped at max_points = 50
    assert scores.loc[0, "engagement_points"] == 50.0


def test_cap_leaves_negatives(small_rules):
    row = lead(decayed_demo_request=3.0, decayed_unsubscribe=4.0)
    scores = score_rules(frame(row), small_rules, 30)

    # 30 * 3.0 - 15 * 4.0 = 30, below the cap of 50
    assert scores.loc[0, "engagement_points"] == 30.0


def test_employee_band_boundaries(small_rules):
    counts = [0.0, 1.0, 199.0, 200.0, 999.0, 1000.0, 50_000.0]
    # A count below every band gives 0. The bands give 1 -> 0, 200 -> 10 and 1000 -> 15.
    expected = [0.0, 0.0, 0.0, 10.0, 10.0, 15.0, 15.0]
    scores = score_rules(frame(*(lead(employee_count=count) for count in counts)), small_rules, 30)

    for position, points in enumerate(expected):
        assert scores.loc[position, "fit_points"] == points, f"employee_count={counts[position]}"


def test_revenue_band_boundary(small_rules):
    revenues = [9_999_999.0, 10_000_000.0]
    rows = [lead(log_annual_revenue=np.log10(revenue)) for revenue in revenues]
    scores = score_rules(frame(*rows), small_rules, 30)

    # Both rows get -2 for the missing employee count, and the $10M band adds 5.
    assert scores.loc[0, "fit_points"] == -2.0
    assert scores.loc[1, "fit_points"] == 3.0


# --- decay -------------------------------------------------------------------


def test_decay_one_half_life_counts_half(small_rules):
    as_of = utc("2024-06-01")
    half_life = small_rules.engagement.half_life_days
    events = pd.DataFrame(
        {
            "contact_id": ["C1", "C1"],
            "event_type": ["demo_request", "page_view"],
            "occurred_at": [as_of - pd.Timedelta(days=half_life), as_of - pd.Timedelta(days=2 * half_life)],
            "url": [None, "https://example.com/pricing"],
        }
    )
    moments = pd.DataFrame({"contact_id": ["C1"], "as_of": [as_of]})
    engagement = engagement_features(events, moments, rules_engagement_config(small_rules))
    features = pd.DataFrame([lead()]).drop(columns=list(engagement.columns), errors="ignore").join(engagement)

    scores = score_rules(features, small_rules, half_life)

    # demo 30 * 0.5 + pricing 10 * 0.25
    assert scores.loc[0, "engagement_points"] == pytest.approx(15.0 + 2.5)


def test_engagement_config_takes_half_life(tmp_path):
    rules = load_rules(write_rules(tmp_path, SMALL_RULES.replace("half_life_days = 30", "half_life_days = 14")))

    assert rules_engagement_config(rules).half_life_days == 14.0


# --- MQL threshold and grade -----------------------------------------------------


def test_mql_exactly_at_threshold():
    rules = grade_rules()
    # c_level 40 + 20 demo requests * 1 = 60, the threshold
    scores = score_rules(frame(lead(seniority_level=9.0, decayed_demo_request=20.0)), rules, 30)

    assert scores.loc[0, "rules_score"] == 60.0
    assert bool(scores.loc[0, "is_mql"]) is True


def test_mql_just_below_threshold():
    rules = grade_rules()
    scores = score_rules(frame(lead(seniority_level=9.0, decayed_demo_request=19.5)), rules, 30)

    assert scores.loc[0, "rules_score"] == 59.5
    assert bool(scores.loc[0, "is_mql"]) is False


@pytest.mark.parametrize(
    ("level", "letter"),
    [(9.0, "A"), (8.0, "B"), (7.0, "B"), (6.0, "C"), (5.0, "C"), (4.0, "D"), (0.0, "D")],
)
def test_fit_letter_boundaries(level, letter):
    # fit points by level: 9 -> 40, 8 -> 39.5, 7 -> 20, 6 -> 19.5, 5 -> 10, 4 -> 9.5, 0 -> 0
    scores = score_rules(frame(lead(seniority_level=level)), grade_rules(), 30)

    assert scores.loc[0, "fit_letter"] == letter


@pytest.mark.parametrize(
    ("decayed", "digit"),
    [(30.0, 1), (29.5, 2), (20.0, 2), (19.5, 3), (10.0, 3), (9.5, 4), (0.0, 4)],
)
def test_engagement_digit_boundaries(decayed, digit):
    scores = score_rules(frame(lead(decayed_demo_request=decayed)), grade_rules(), 30)

    assert scores.loc[0, "engagement_digit"] == digit


def test_grade_joins_letter_and_digit():
    # fit 20 gives B, engagement 10 gives 3
    scores = score_rules(frame(lead(seniority_level=7.0, decayed_demo_request=10.0)), grade_rules(), 30)

    assert scores.loc[0, "grade"] == "B3"


def test_grade_thresholds_must_decrease():
    grade = {"fit_a": 10, "fit_b": 20, "fit_c": 5, "engagement_1": 30, "engagement_2": 20, "engagement_3": 10}

    with pytest.raises(RulesConfigError, match="fit thresholds must decrease"):
        grade_rules(grade=grade)


# --- missing values ------------------------------------------------------------


def test_missing_values_score_zero():
    rules = grade_rules()
    row = {"seniority_level": None, "decayed_demo_request": np.nan}
    scores = score_rules(frame(row), rules, 30)

    assert scores.loc[0, "fit_points"] == 0.0
    assert scores.loc[0, "engagement_points"] == 0.0


def test_missing_values_default_rules(default_rules):
    rules = default_rules
    scores = score_rules(frame(lead()), rules, rules.engagement.half_life_days)

    expected = (
        rules.fit.seniority.get("unknown", 0.0)
        + rules.fit.job_function.get("unknown", 0.0)
        + rules.fit.email_kind.get("missing", 0.0)
        + rules.fit.employee_count.unknown
        + rules.fit.annual_revenue.unknown
    )
    assert scores.loc[0, "fit_points"] == expected
    assert scores.loc[0, "engagement_points"] == 0.0


def test_missing_gets_unknown_points(small_rules):
    scores = score_rules(frame(lead()), small_rules, 30)

    # the employee count is missing, and SMALL_RULES gives unknown = -2
    assert scores.loc[0, "fit_points"] == -2.0


def test_missing_labels_get_their_points():
    fit = {
        "seniority": {"unknown": -1},
        "job_function": {"unknown": -2},
        "email_kind": {"missing": -4},
    }
    rules = grade_rules(fit=fit)
    row = {"seniority_level": np.nan, "job_function": None, "email_kind": None, "decayed_demo_request": 0.0}
    scores = score_rules(frame(row), rules, 30)

    # unknown seniority -1 + unknown job function -2 + missing email -4
    assert scores.loc[0, "fit_points"] == -7.0


def test_out_of_range_level_scores_zero(small_rules):
    scores = score_rules(frame(lead(seniority_level=42.0, employee_count=5.0)), small_rules, 30)

    assert scores.loc[0, "fit_points"] == 0.0


def test_index_preserved(small_rules):
    features = pd.DataFrame([lead(), lead(seniority_level=7.0)], index=["x", "y"])
    scores = score_rules(features, small_rules, 30)

    assert list(scores.index) == ["x", "y"]


def test_output_columns(small_rules):
    scores = score_rules(frame(lead()), small_rules, 30)

    assert list(scores.columns) == [
        "fit_points",
        "engagement_points",
        "rules_score",
        "fit_letter",
        "engagement_digit",
        "grade",
        "is_mql",
    ]


# --- input errors ---------------------------------------------------------------


def test_half_life_mismatch_raises(small_rules):
    with pytest.raises(ValueError, match="half-life of 14 days, but the rules use 30 days"):
        score_rules(frame(lead()), small_rules, 14)


def test_missing_column_raises(small_rules):
    features = frame(lead()).drop(columns=["decayed_demo_request"])

    with pytest.raises(ValueError, match="decayed_demo_request"):
        score_rules(features, small_rules, 30)


# --- config errors -------------------------------------------------------------


def test_unknown_key_names_file(tmp_path):
    path = write_rules(tmp_path, SMALL_RULES.replace("[fit.country]", "[fit.countries]"))

    with pytest.raises(RulesConfigError) as raised:
        load_rules(path)
    assert "my_rules.toml" in str(raised.value)
    assert "unknown key 'fit.countries'" in str(raised.value)


def test_unknown_event_names_file(tmp_path):
    path = write_rules(tmp_path, SMALL_RULES.replace("demo_request = 30", "demo_requested = 30"))

    with pytest.raises(RulesConfigError) as raised:
        load_rules(path)
    assert "my_rules.toml" in str(raised.value)
    assert "'demo_requested'" in str(raised.value)
    assert "pricing_page_view" in str(raised.value)


def test_unknown_seniority_lists_labels(tmp_path):
    path = write_rules(tmp_path, SMALL_RULES.replace("director = 15", "vp = 15"))

    with pytest.raises(RulesConfigError) as raised:
        load_rules(path)
    assert "'vp'" in str(raised.value)
    assert "vice_president" in str(raised.value)


def test_wrong_type_names_file(tmp_path):
    path = write_rules(tmp_path, SMALL_RULES.replace("mql_threshold = 60", 'mql_threshold = "sixty"'))

    with pytest.raises(RulesConfigError) as raised:
        load_rules(path)
    assert "my_rules.toml" in str(raised.value)
    assert "mql_threshold" in str(raised.value)


def test_invalid_toml_names_file(tmp_path):
    path = write_rules(tmp_path, "mql_threshold = [")

    with pytest.raises(RulesConfigError, match="my_rules.toml"):
        load_rules(path)


def test_missing_file_raises(tmp_path):
    with pytest.raises(RulesConfigError, match="not found"):
        load_rules(tmp_path / "absent.toml")


def test_duplicate_band_min_raises(tmp_path):
    path = write_rules(tmp_path, SMALL_RULES.replace("{ min = 1, points = 0 }", "{ min = 200, points = 0 }"))

    with pytest.raises(RulesConfigError, match="two bands have min = 200"):
        load_rules(path)


def test_duplicate_folded_name_raises(tmp_path):
    path = write_rules(tmp_path, SMALL_RULES.replace("US = 4", "US = 4\nus = 3"))

    with pytest.raises(RulesConfigError, match="listed twice"):
        load_rules(path)


def test_config_error_classes(tmp_path):
    path = write_rules(tmp_path, "colour = 1")

    with pytest.raises(RulesConfigError) as raised:
        load_rules(path)
    assert isinstance(raised.value, ValueError)
    assert isinstance(raised.value, LeadlinkError)


# --- round trip and reasons -------------------------------------------------------


def test_dict_round_trip(small_rules):
    stored = json.loads(json.dumps(small_rules.to_dict()))

    assert RulesConfig.from_dict(stored) == small_rules


def test_default_dict_round_trip(default_rules):
    stored = json.loads(json.dumps(default_rules.to_dict()))

    assert RulesConfig.from_dict(stored) == default_rules


def test_reasons_top_lines(small_rules):
    row = lead(seniority_level=7.0, email_kind="personal", employee_count=1500.0, decayed_demo_request=0.9)
    reasons = rules_reasons(row, small_rules, top=3)

    # demo 30 * 0.9 = 27, director 15, 1,000+ employees 15, personal email -10
    assert reasons == ["requested a demo (+27)", "Director (+15)", "1,000+ employees (+15)"]


def test_reasons_include_penalties(small_rules):
    row = lead(seniority_level=1.0, email_kind="personal")
    reasons = rules_reasons(row, small_rules, top=5)

    # student -20, personal email -10, missing employee count -2
    assert reasons == ["Student (-20)", "personal email (-10)", "employee count unknown (-2)"]


def test_reasons_frame_indexed(small_rules):
    features = pd.DataFrame([lead(), lead(seniority_level=7.0)], index=["x", "y"])
    reasons = rules_reasons(features, small_rules, top=1)

    assert reasons.loc["y"] == ["Director (+15)"]


def test_job_functions_cover_parser():
    titles = ["VP Sales", "Data Engineer", "HR Manager", "Teacher", "Chief Executive Officer", "Gardener", None]

    for title in titles:
        assert parse_function(title) in JOB_FUNCTIONS, title


def test_docs_worked_example(default_rules):
    # The example in docs/rules.md: director 15 + sales 8 + work email 5 + software 10 + US 5
    # + 1,000+ employees 15 + $10M+ revenue 5 = 63 fit points, and demo 30 * 1
    # + pricing 10 * (0.5 + 0.5) + email open 1 * 0.25 = 40.25 engagement points.
    row = lead(
        seniority_level=7.0,
        job_function="sales",
        email_kind="work",
        industry="software",
        country="us",
        employee_count=1500.0,
        log_annual_revenue=math.log10(20_000_000),
        decayed_demo_request=1.0,
        decayed_pricing_page_view=0.5 + 0.5,
        decayed_email_open=0.25,
    )
    scores = score_rules(frame(row), default_rules, 30)

    assert scores.loc[0, "fit_points"] == 63.0
    assert scores.loc[0, "engagement_points"] == 40.25
    assert scores.loc[0, "grade"] == "A2"
    assert bool(scores.loc[0, "is_mql"]) is True
