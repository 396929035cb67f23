"""Model reload: the server follows the champion alias and survives a broken version.

The server gets its own copy of the trained MLflow database, so registering
versions and moving aliases here changes no other test's store. The copy
still points at the original artifacts, which it only reads.
"""

import shutil
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import mlflow
import pytest
from mlflow import MlflowClient

from tests.test_api import AUTH, ENV_KEY, metric_value, start_server, stop_server

POLL_SECONDS = 1
SWITCH_DEADLINE_SECONDS = 90
MODEL_NAME = "leadlink"


@pytest.fixture(scope="module")
def reload_store(trained_store, tmp_path_factory) -> str:
    return copy_store(trained_store, tmp_path_factory.mktemp("reload_store"))


def copy_store(trained_store: str, folder: Path) -> str:
    shutil.copy(trained_store.removeprefix("sqlite:///"), folder / "mlflow.db")
    return f"sqlite:///{folder / 'mlflow.db'}"


@contextmanager
def registry_client(store: str, monkeypatch):
    """Yield a client of ``store``, with ``store`` also set as MLflow's global store.

    Registering a version looks up its logged model through the global store,
    so that store must be the same one.
    """
    previous_tracking, previous_registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", store)
    mlflow.set_tracking_uri(store)
    mlflow.set_registry_uri(store)
    try:
        yield MlflowClient(tracking_uri=store, registry_uri=store)
    finally:
        mlflow.set_tracking_uri(previous_tracking)
        mlflow.set_registry_uri(previous_registry)


def register_broken_version(registry: MlflowClient, folder: Path) -> str:
    """Register a copy of version 1's artifacts whose booster file LightGBM cannot parse; return its version."""
    source = Path(registry.get_model_version_download_uri(MODEL_NAME, "1").removeprefix("file://"))
    broken = folder / "broken"
    shutil.copytree(source, broken)
    booster_files = list(broken.rglob("booster.txt"))
    assert len(booster_files) == 1
    booster_files[0].write_text("this is not a LightGBM model\n")
    run_id = registry.get_model_version(MODEL_NAME, "1").run_id
    return str(registry.create_model_version(MODEL_NAME, source=broken.as_uri(), run_id=run_id).version)


@pytest.fixture
def registry(reload_store, monkeypatch):
    with registry_client(reload_store, monkeypatch) as client:
        yield client


@pytest.fixture(scope="module")
def reload_server(reload_store, demo_workspace, tmp_path_factory):
    folder = tmp_path_factory.mktemp("reload_server")
    server = start_server(
        reload_store,
        demo_workspace,
        folder / "serve.log",
        ["--reload-interval", str(POLL_SECONDS)],
        {"LEADLINK_API_KEYS": ENV_KEY, "LEADLINK_BENCH_ENDPOINTS": "1"},
    )
    yield server
    stop_server(server)


def served_version(base: str) -> dict:
    return httpx.get(f"{base}/v1/model", headers=AUTH, timeout=30).json()


def wait_for(condition, description: str, server) -> None:
    deadline = time.monotonic() + SWITCH_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {description}: {server.log_text()[-4000:]}")


class Traffic:
    """Threads that score contacts without pause until stopped, recording every status."""

    def __init__(self, base: str, threads: int = 4):
        self.base = base
        self.statuses: list[int] = []
        self.versions: list[str] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]

    def __enter__(self) -> "Traffic":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)

    def _run(self, index: int) -> None:
        with httpx.Client(timeout=60) as client:
            while not self._stop.is_set():
                try:
                    response = client.post(f"{self.base}/v1/score", json={"contact_id": f"t-{index}", "job_title": "CTO"}, headers=AUTH)
                except httpx.TransportError as error:
                    self.errors.append(repr(error))
                    continue
                self.statuses.append(response.status_code)
                if response.status_code == 200:
                    self.versions.append(response.json()["model_version"])


def test_reload_follows_champion(reload_server, registry):
    base = reload_server.base
    first = registry.get_model_version(MODEL_NAME, "1")
    copy = registry.create_model_version(MODEL_NAME, source=first.source, run_id=first.run_id)
    reloads_before = metric_value(base, "leadlink_model_reloads_total")

    with Traffic(base) as traffic:
        time.sleep(1)
        registry.set_registered_model_alias(MODEL_NAME, "champion", copy.version)
        wait_for(lambda: served_version(base)["version"] == str(copy.version), f"version {copy.version}", reload_server)
        time.sleep(1)  # keep the traffic going on the new model too

    model = served_version(base)
    assert model["alias"] == "champion"
    assert model["run_id"] == first.run_id
    assert traffic.errors == []
    assert len(traffic.statuses) > 0
    assert set(traffic.statuses) == {200}
    assert f"{MODEL_NAME}/{copy.version}" in traffic.versions
    assert metric_value(base, "leadlink_model_reloads_total") == reloads_before + 1
    assert metric_value(base, "leadlink_model_info", {"version": str(copy.version), "alias": "champion"}) == 1.0


def test_failed_reload_keeps_model(reload_server, registry, tmp_path):
    base = reload_server.base
    serving_before = served_version(base)["version"]
    failures_before = metric_value(base, "leadlink_model_reload_failures_total")

    bad = register_broken_version(registry, tmp_path)
    registry.set_registered_model_alias(MODEL_NAME, "champion", bad)

    def reload_failed() -> bool:
        reload = httpx.get(f"{base}/readyz").json().get("reload", {})
        return reload.get("status") == "failed"

    wait_for(reload_failed, "the reload failure on /readyz", reload_server)
    readiness = httpx.get(f"{base}/readyz")
    reload = readiness.json()["reload"]
    assert readiness.status_code == 200
    assert readiness.json()["model_version"] == f"{MODEL_NAME}/{serving_before}"
    assert reload["target"] == f"models:/{MODEL_NAME}/{bad}"
    assert "booster.txt" in reload["error"]
    assert reload["attempts"] >= 1

    response = httpx.post(f"{base}/v1/score", json={"contact_id": "after-failure"}, headers=AUTH, timeout=60)
    assert response.status_code == 200
    assert response.json()["model_version"] == f"{MODEL_NAME}/{serving_before}"
    assert served_version(base)["version"] == serving_before
    assert metric_value(base, "leadlink_model_reload_failures_total") >= failures_before + 1
    assert f"Loading model models:/{MODEL_NAME}/{bad} failed" in reload_server.log_text()


def test_bench_route_enabled_by_flag(reload_server):
    response = httpx.post(f"{reload_server.base}/v1/bench/booster", json={"contact_id": "bench-1"}, headers=AUTH)
    body = response.json()
    assert response.status_code == 200
    assert body["contact_id"] == "bench-1"
    assert isinstance(body["raw"], float)


def test_bench_route_needs_key(reload_server):
    response = httpx.post(f"{reload_server.base}/v1/bench/booster", json={"contact_id": "bench-1"})
    assert response.status_code == 401


def test_failed_first_load_is_503(trained_store, demo_workspace, tmp_path, monkeypatch):
    store = copy_store(trained_store, tmp_path)
    with registry_client(store, monkeypatch) as client:
        bad = register_broken_version(client, tmp_path)
        client.set_registered_model_alias(MODEL_NAME, "champion", bad)
    server = start_server(store, demo_workspace, tmp_path / "serve.log", ["--reload-interval", "1"], {"LEADLINK_API_KEYS": ENV_KEY}, wait_path="/healthz")
    try:
        wait_for(lambda: "failed" in httpx.get(f"{server.base}/readyz").json()["reason"], "the load failure on /readyz", server)
        readiness = httpx.get(f"{server.base}/readyz")
        score = httpx.post(f"{server.base}/v1/score", json={"contact_id": "x"}, headers=AUTH)
        health = httpx.get(f"{server.base}/healthz")
    finally:
        stop_server(server)

    assert readiness.status_code == 503
    assert readiness.json()["status"] == "unavailable"
    assert "booster.txt" in readiness.json()["reason"]
    assert score.status_code == 503
    assert score.headers["retry-after"] == "5"
    assert "booster.txt" in score.json()["detail"]
    assert health.status_code == 200
