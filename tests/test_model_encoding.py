"""The model matrix: ``LeadScorer.encode_matrix`` codes values as ``encode`` does, checked by hand."""

import math

import numpy as np
import pandas as pd
import pytest

from leadlink.serving.contributions import numeric_matrix
from leadlink.serving.model import MISSING_CATEGORY, OTHER_CATEGORY, LeadScorer

SPEC = {
    "features": [
        {"name": "industry", "kind": "categorical", "levels": ["software", "retail", MISSING_CATEGORY, OTHER_CATEGORY]},
        {"name": "employees", "kind": "numeric"},
        {"name": "plan", "kind": "categorical", "levels": ["free", "team"]},
    ]
}


@pytest.fixture
def scorer():
    # encode_matrix reads only the spec, so no booster is needed.
    return LeadScorer(booster=None, spec=SPEC)


@pytest.fixture
def features():
    return pd.DataFrame(
        {
            "industry": pd.Series(["retail", None, "mining", "software"], dtype="str"),
            "employees": ["12", "many", None, 7.5],
            "plan": pd.Series(["team", "gold", None, 3], dtype=object),
        }
    )


def test_encode_matrix_known_levels(scorer, features):
    matrix = scorer.encode_matrix(features)
    assert matrix[0, 0] == 1.0
    assert matrix[3, 0] == 0.0


def test_encode_matrix_missing_level(scorer, features):
    assert scorer.encode_matrix(features)[1, 0] == 2.0


def test_encode_matrix_unseen_level(scorer, features):
    assert scorer.encode_matrix(features)[2, 0] == 3.0


def test_encode_matrix_numbers(scorer, features):
    column = scorer.encode_matrix(features)[:, 1]
    assert column[0] == 12.0
    assert math.isnan(column[1])
    assert math.isnan(column[2])
    assert column[3] == 7.5


def test_encode_matrix_no_fallback_levels(scorer, features):
    # "plan" has neither a missing nor an "other" level: such values are NaN.
    column = scorer.encode_matrix(features)[:, 2]
    assert column[0] == 1.0
    assert np.isnan(column[1:]).all()


def test_encode_matrix_absent_column(scorer):
    matrix = scorer.encode_matrix(pd.DataFrame({"employees": [1.0]}))
    assert matrix[0, 0] == 2.0
    assert math.isnan(matrix[0, 2])


def test_encode_matrix_equals_frame_encoding(scorer, features):
    expected = numeric_matrix(scorer.encode(features))
    assert np.array_equal(scorer.encode_matrix(features), expected, equal_nan=True)


def test_encode_matrix_empty(scorer):
    assert scorer.encode_matrix(pd.DataFrame(columns=["industry", "employees", "plan"])).shape == (0, 3)


@pytest.mark.parametrize("dtype", ["str", "string[python]", "object"])
def test_encode_matrix_text_storage(scorer, dtype):
    features = pd.DataFrame({"industry": pd.Series(["software", None, "mining"], dtype=dtype)})
    column = scorer.encode_matrix(features)[:, 0]
    assert column.tolist() == [0.0, 2.0, 3.0]
