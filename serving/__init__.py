"""Model loading, batch scoring and the HTTP API."""

from pathlib import Path


def mlflow_entry_path() -> str:
    """Return the file MLflow runs to build a leadlink pyfunc model on load."""
    return str(Path(__file__).with_name("mlflow_entry.py"))
