"""Shared fixtures: an isolated MLflow store, shared data, and small workspaces."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def isolated_mlflow(tmp_path_factory, monkeypatch):
    """Give every test its own tracking store so no test reads another's models."""
    store = tmp_path_factory.mktemp("mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store / 'mlflow.db'}")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    return store


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA}; it sits beside the repository in CI")
    return SHARED_DATA


@pytest.fixture(scope="session")
def demo_workspace(tmp_path_factory) -> Path:
    """A generated workspace small enough to link and train in seconds."""
    from leadlink.generator import generate_workspace

    folder = tmp_path_factory.mktemp("demo") / "workspace"
    generate_workspace(folder, n_contacts=4000, seed=11)
    return folder


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory, demo_workspace) -> str:
    """An MLflow store holding one model trained on ``demo_workspace``."""
    from leadlink.training.workflow import train_workspace

    store = tmp_path_factory.mktemp("trained") / "mlflow.db"
    uri = f"sqlite:///{store}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        train_workspace(demo_workspace)
    return uri


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def write_workspace(folder: Path, **tables: pd.DataFrame) -> Path:
    """Write the given tables as CSV files of a workspace folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder
