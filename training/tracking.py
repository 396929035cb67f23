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


def configure_mlflow(experiment: str = DEFAULT_EXPERIMENT) -> str:
    """Point MLflow at the tracking store and make sure the experiment exists."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        uri = f"sqlite:///{Path.cwd() / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(os.environ.get("MLFLOW_REGISTRY_URI", uri))

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


def log_model_run(
    scorer,
    params: dict,
    metrics: dict,
    input_example,
    model_name: str = DEFAULT_MODEL_NAME,
    tags: dict | None = None,
    extra_artifacts: dict[str, Path] | None = None,
) -> dict:
    """Log one trained model as an MLflow run and register it.

    Returns the run id, the model URI in the registry and the version.
    """
    from leadlink.serving import mlflow_entry_path

    configure_mlflow()
    example = input_example.head(5)
    prediction = scorer.predict_proba(example)
    signature = infer_signature(example, _prediction_frame(prediction))

    with mlflow.start_run() as run, tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tags(tags or {})
        mlflow.log_params({key: _param_value(value) for key, value in params.items()})
        mlflow.log_metrics({key: float(value) for key, value in metrics.items() if _is_number(value)})
        model_dir = scorer.save(Path(tmp) / "model")
        if scorer.linkage_model is not None:
            # The Splink model also sits inside the pyfunc model; this copy is
            # easy to find in the run's artifacts and to reuse with --model-json.
            mlflow.log_dict(scorer.linkage_model, "linkage/linkage.json")
        for artifact_path, file in (extra_artifacts or {}).items():
            mlflow.log_artifact(str(file), artifact_path=artifact_path)
        mlflow.log_text("\n".join(scorer.feature_names), "features.txt")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=mlflow_entry_path(),
            artifacts={"model_dir": str(model_dir)},
            signature=signature,
            input_example=example,
            pip_requirements=_PIP_REQUIREMENTS,
        )
        run_id = run.info.run_id

    version = register_model_version(model_name, info.model_uri, run_id)
    return {"run_id": run_id, "model_uri": f"models:/{model_name}/{version}", "version": version}


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


def _param_value(value) -> str:
    text = str(value)
    # MLflow caps parameter values at 6,000 characters.
    return text if len(text) <= 6000 else text[:5997] + "..."


def _is_number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def resolve_model_uri(uri: str | None, model_name: str = DEFAULT_MODEL_NAME) -> tuple[str | None, str | None, str | None, str]:
    """Turn a user's ``--model`` value into (name, version, run id, MLflow URI).

    Accepts ``models:/name/3``, ``models:/name@alias``, ``runs:/...`` and a
    bare version number; ``None`` means the newest version of ``model_name``.
    """
    client = MlflowClient()
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


def _versions(client: MlflowClient, model_name: str) -> list:
    try:
        found = client.search_model_versions(f"name = '{model_name}'")
    except MlflowException:
        return []
    return sorted(found, key=lambda v: int(v.version))
