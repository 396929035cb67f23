"""MLflow tracking and registry with an embedded local default.

Unless ``MLFLOW_TRACKING_URI`` is set, runs go to ``mlflow.db`` (SQLite) in
the working directory. With any SQLite store, artifacts go to
``mlartifacts/`` beside the database file. No server has to be started.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from leadlink.errors import ModelNotFoundError

logger = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "leadlink"
DEFAULT_MODEL_NAME = "leadlink"
_PIP_REQUIREMENTS = ["leadlink", "lightgbm", "pandas", "numpy", "scikit-learn"]


_registry_uri_set_here: str | None = None


def configure_mlflow(experiment: str = DEFAULT_EXPERIMENT) -> str:
    """Point MLflow at the tracking store and make sure the experiment exists."""
    global _registry_uri_set_here
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        uri = f"sqlite:///{Path.cwd() / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    # MLflow 3 copies the registry URI into MLFLOW_REGISTRY_URI when it is
    # set, so a value this function set earlier is not the user's choice and
    # must follow the tracking URI when that changes.
    registry = os.environ.get("MLFLOW_REGISTRY_URI")
    if not registry or registry == _registry_uri_set_here:
        registry = uri
    mlflow.set_registry_uri(registry)
    _registry_uri_set_here = registry

    client = MlflowClient()
    if client.get_experiment_by_name(experiment) is None:
        artifact_location = None
        if uri.startswith("sqlite:///"):
            # Artifacts live beside the SQLite file, not wherever MLflow's
            # default would put them relative to the current directory.
            database = Path(uri.removeprefix("sqlite:///"))
            artifact_location = (database.parent / "mlartifacts").resolve().as_uri()
        client.create_experiment(experiment, artifact_location=artifact_location)
    mlflow.set_experiment(experiment)
    return uri


def log_model(scorer, input_example, fold_metrics=None) -> str:
    """Log the model of the active run with a signature and input example; return its URI.

    Numeric columns are logged as floats so the signature accepts missing
    values in integer-like features such as counts and flags.
    """
    from leadlink.serving import mlflow_entry_path

    example = _example_for_signature(scorer, input_example.head(5))
    signature = infer_signature(example, _prediction_frame(scorer.predict_proba(example)))

    if fold_metrics is not None:
        _log_fold_metrics(fold_metrics)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = scorer.save(Path(tmp) / "model")
        if scorer.linkage_model is not None:
            # The Splink model also sits inside the pyfunc model; this copy is
            # easy to find in the run's artifacts and to reuse with --model-json.
            mlflow.log_dict(scorer.linkage_model, "linkage/linkage.json")
        mlflow.log_text("\n".join(scorer.feature_names), "features.txt")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=mlflow_entry_path(),
            artifacts={"model_dir": str(model_dir)},
            signature=signature,
            input_example=example,
            pip_requirements=_PIP_REQUIREMENTS,
        )
    return info.model_uri


def _example_for_signature(scorer, example):
    import pandas as pd

    columns = {}
    for feature in scorer.spec["features"]:
        values = example[feature["name"]]
        if feature["kind"] == "categorical":
            columns[feature["name"]] = values.astype("object").where(values.notna(), None).map(lambda v: v if v is None else str(v))
        else:
            columns[feature["name"]] = pd.to_numeric(values, errors="coerce").astype("float64")
    return pd.DataFrame(columns, index=example.index)


def _log_fold_metrics(fold_metrics) -> None:
    """Log each scorer's metrics per backtest fold, with the fold number as the step."""
    prefixes = {"model": "fold", "logistic regression": "logistic_fold", "rules score": "rules_fold"}
    for row in fold_metrics.to_dict("records"):
        prefix = prefixes.get(row["scorer"], "fold")
        for name in ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "lift_top_decile", "gain_top_decile", "n", "n_positive"):
            if name in row and _is_number(row[name]):
                mlflow.log_metric(f"{prefix}_{name}", float(row[name]), step=int(row["fold"]))


def register_model_version(model_name: str, model_uri: str, run_id: str) -> str:
    """Register the logged model as a new version and point ``challenger`` at it."""
    client = MlflowClient()
    try:
        client.get_registered_model(model_name)
    except MlflowException:
        client.create_registered_model(model_name, description="leadlink conversion model")
    created = client.create_model_version(model_name, source=model_uri, run_id=run_id)
    client.set_registered_model_alias(model_name, "challenger", created.version)
    logger.info("Registered model %s version %s (alias challenger)", model_name, created.version)
    return str(created.version)


def _prediction_frame(prediction):
    import pandas as pd

    return pd.DataFrame({"probability": prediction})


def param_value(value) -> str:
    text = str(value)
    # MLflow caps parameter values at 6,000 characters.
    return text if len(text) <= 6000 else text[:5997] + "..."


def _is_number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


CHAMPION = "champion"
CHALLENGER = "challenger"


def resolve_model_uri(uri: str | None, model_name: str = DEFAULT_MODEL_NAME) -> tuple[str | None, str | None, str | None, str]:
    """Turn a user's ``--model`` value into (name, version, run id, MLflow URI).

    Accepts ``models:/name/3``, ``models:/name@alias``, ``runs:/...`` and a
    bare version number. ``None`` means the ``champion`` of ``model_name``,
    or its newest version, with a warning, while no version is champion.
    """
    client = MlflowClient()
    if uri is None:
        champion = _version_by_alias(client, model_name, CHAMPION)
        if champion is not None:
            return model_name, str(champion.version), champion.run_id, f"models:/{model_name}@{CHAMPION}"
    if uri is None or uri.isdigit():
        versions = _versions(client, model_name)
        if not versions:
            raise ModelNotFoundError(
                f"No version of model '{model_name}' is registered in {mlflow.get_tracking_uri()}; "
                "run `leadlink train` first or pass --model."
            )
        chosen = versions[-1] if uri is None else next((v for v in versions if v.version == uri), None)
        if chosen is None:
            raise ModelNotFoundError(f"Model '{model_name}' has no version {uri}.")
        if uri is None:
            logger.warning(
                "Model '%s' has no champion yet; using its newest version %s. Run `leadlink promote` to choose one.",
                model_name,
                chosen.version,
            )
        return model_name, str(chosen.version), chosen.run_id, f"models:/{model_name}/{chosen.version}"

    if uri.startswith("models:/"):
        reference = uri.removeprefix("models:/")
        try:
            if "@" in reference:
                name, alias = reference.split("@", 1)
                found = client.get_model_version_by_alias(name, alias)
            else:
                name, version = reference.rsplit("/", 1)
                found = client.get_model_version(name, version)
        except (MlflowException, ValueError) as error:
            raise ModelNotFoundError(f"Model '{uri}' was not found in the registry: {error}") from error
        return found.name, str(found.version), found.run_id, uri
    return None, None, None, uri


def _version_by_alias(client: MlflowClient, model_name: str, alias: str):
    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None


def _versions(client: MlflowClient, model_name: str) -> list:
    try:
        found = client.search_model_versions(f"name = '{model_name}'")
    except MlflowException:
        return []
    return sorted(found, key=lambda v: int(v.version))
