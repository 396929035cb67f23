"""Baselines the model must beat: a logistic regression and the rules score.

Both are fitted on exactly the rows the model is fitted on in each backtest
fold, so their metrics are comparable with the model's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler


@dataclass
class LogisticBaseline:
    pipeline: Pipeline
    columns: list[str]

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        return self.pipeline.predict_proba(_prepare(features, self.columns))[:, 1]


def fit_logistic(features: pd.DataFrame, labels: np.ndarray, kinds: dict[str, str]) -> LogisticBaseline:
    """Fit an L2 logistic regression: numbers imputed and scaled, categories one-hot encoded.

    Missing numbers get the training median plus a missing-value indicator,
    because for engagement and previous-use features "never happened" is
    itself informative. Numbers are log-compressed first: event counts are
    heavy-tailed, and a few huge values would otherwise get extreme
    probabilities that ruin the baseline's log loss.
    """
    numeric = [name for name in features.columns if kinds[name] != "categorical"]
    categorical = [name for name in features.columns if kinds[name] == "categorical"]
    transformer = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True), FunctionTransformer(_signed_log), StandardScaler()), numeric),
            ("categorical", OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=5, sparse_output=False), categorical),
        ]
    )
    pipeline = Pipeline([("encode", transformer), ("model", LogisticRegression(C=0.1, max_iter=2000))])
    columns = numeric + categorical
    pipeline.fit(_prepare(features, columns, categorical), np.asarray(labels, dtype=int))
    return LogisticBaseline(pipeline, columns)


def _signed_log(values: np.ndarray) -> np.ndarray:
    return np.sign(values) * np.log1p(np.abs(values))


def _prepare(features: pd.DataFrame, columns: list[str], categorical: list[str] | None = None) -> pd.DataFrame:
    frame = features[columns].copy()
    for name in columns:
        if frame[name].dtype == object or isinstance(frame[name].dtype, (pd.CategoricalDtype, pd.StringDtype)):
            frame[name] = frame[name].astype("object").where(frame[name].notna(), "missing").astype(str)
        else:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    return frame


@dataclass
class PointsCalibration:
    """A logistic map from rules points to a conversion probability."""

    slope: float
    intercept: float

    def apply(self, points: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.slope * np.asarray(points, dtype=float) + self.intercept)))


def fit_points_calibration(points: np.ndarray, labels: np.ndarray) -> PointsCalibration:
    """Fit a Platt map from rules points to probability, so the rules score gets log loss and ECE too.

    The ranking of leads, and so the ROC AUC, is the rules score's own.
    """
    points = np.nan_to_num(np.asarray(points, dtype=float))
    labels = np.asarray(labels, dtype=int)
    if len(np.unique(labels)) < 2:
        rate = float(np.clip(labels.mean() if len(labels) else 0.5, 1e-6, 1 - 1e-6))
        return PointsCalibration(slope=0.0, intercept=float(np.log(rate / (1 - rate))))
    scale = float(points.std()) or 1.0
    fitted = LogisticRegression(C=1e6).fit((points / scale).reshape(-1, 1), labels)
    return PointsCalibration(slope=float(fitted.coef_[0][0]) / scale, intercept=float(fitted.intercept_[0]))
