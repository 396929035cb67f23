"""Hyperparameter search with Optuna on the data before the backtest.

Trials are scored on rows whose outcome was known before the first backtest
cut-off: the older part trains, the newer part validates. Tuning on the
backtest folds themselves would let the search see the test rows and make
the backtest look better than the model is.
"""

from __future__ import annotations

import logging

import mlflow
import numpy as np
import optuna
import pandas as pd
from sklearn.metrics import log_loss

from leadlink.errors import TrainingError
from leadlink.training.train import fit_scorer

logger = logging.getLogger(__name__)

VALIDATION_SHARE = 0.25


def search_space(trial: optuna.Trial) -> dict:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 4, 63, log=True),
        "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 10, 200, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.5, 1.0),
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 50.0, log=True),
    }


def tune_params(
    features: pd.DataFrame,
    labels: np.ndarray,
    kinds: dict[str, str],
    positions: np.ndarray,
    n_trials: int,
    seed: int = 0,
) -> dict:
    """Search LightGBM parameters on ``positions`` (oldest first); log each trial as a nested MLflow run.

    Returns the best parameters found, by validation log loss.
    """
    n_validation = int(round(len(positions) * VALIDATION_SHARE))
    train_rows, validation_rows = positions[:-n_validation], positions[-n_validation:]
    validation_labels = np.asarray(labels)[validation_rows]
    if len(np.unique(validation_labels)) < 2 or len(train_rows) < 100:
        raise TrainingError(
            f"Tuning needs examples known before the first backtest cut-off: {len(train_rows):,} for training and "
            f"{len(validation_rows):,} for validation with both outcomes. Use fewer --folds or leave out --tune."
        )

    def objective(trial: optuna.Trial) -> float:
        params = search_space(trial)
        scorer = fit_scorer(features, labels, kinds, train_rows, params=params, seed=seed)
        probability = np.clip(scorer.predict_proba(features.iloc[validation_rows]), 1e-6, 1 - 1e-6)
        loss = float(log_loss(validation_labels, probability, labels=[0, 1]))
        with mlflow.start_run(run_name=f"trial {trial.number}", nested=True):
            mlflow.log_params(params)
            mlflow.log_metrics({"validation_log_loss": loss, "best_iteration": scorer.spec["best_iteration"]})
        return loss

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=n_trials, show_progress_bar=False)
    logger.info("Tuning: best validation log loss %.4f after %d trials with %s", study.best_value, n_trials, study.best_params)
    return dict(study.best_params)
