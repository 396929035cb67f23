"""``leadlink serve --workers 2``: forked workers share one socket, metrics and the champion.

The server gets its own copy of the trained MLflow database, as in
``test_api_reload.py``, because one test moves the champion alias.
"""

import json
import signal
import time

import httpx
import psutil
import pytest

from tests.test_api import AUTH, ENV_KEY, metric_value, start_server, stop_server
from tests.test_api_reload import MODEL_NAME, copy_store, registry_client

POLL_SECONDS = 1
DEADLINE_SECONDS = 60
# From this many rows, scoring goes through score_frame (TreeSHAP per
# decision pattern) instead of the single-row path; both must work in workers.
BATCH_PATH_ROWS = 256
MAX_REQUESTS_TO_REACH_BOTH = 200


@pytest.fixture(scope="module")
def workers_store(trained_store, tmp_path_factory) -> str:
    return copy_store(trained_store, tmp_path_factory.mktemp("workers_store"))


@pytest.fixture(scope="module")
def workers_server(workers_store, demo_workspace, tmp_path_factory):
    folder = tmp_path_factory.mktemp("workers_server")
    server = start_server(
        workers_store,
        demo_workspace,
        folder / "serve.log",
        ["--workers", "2", "--reload-interval", str(POLL_SECONDS), "--max-batch-size", str(BATCH_PATH_ROWS)],
        {"LEADLINK_API_KEYS": ENV_KEY, "LEADLINK_BENCH_ENDPOINTS": "1"},
    )
    yield server
    stop_server(server)


def worker_pids(server) -> set[int]:
    return {child.pid for child in psutil.Process(server.process.pid).children()}


def log_entries(server) -> list[dict]:
    return [json.loads(line) for line in server.log_text().splitlines() if line.startswith("{")]


def responding_pids(server, request_ids: set[str]) -> set[int]:
    """Return the pids of the processes that logged the access lines of ``request_ids``."""
    return {entry["pid"] for entry in log_entries(server) if entry.get("request_id") in request_ids}


def wait_for(condition, description: str, server) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {description}: {server.log_text()[-4000:]}")


def score_until_both_answer(server, path: str, payload: dict) -> tuple[list[int], set[int]]:
    """Send requests, each on a new connection, until both workers have responded to one; return the statuses and pids."""
    workers = worker_pids(server)
    statuses, request_ids = [], set()
    for index in range(MAX_REQUESTS_TO_REACH_BOTH):
        request_id = f"{path.strip('/').replace('/', '-')}-{index}"
        response = httpx.post(f"{server.base}{path}", json=payload, headers={**AUTH, "X-Request-ID": request_id}, timeout=60)
        statuses.append(response.status_code)
        request_ids.add(request_id)
        if index % 10 == 9:
            time.sleep(0.3)  # the access line is written after the response
            if responding_pids(server, request_ids) >= workers:
                break
    time.sleep(0.3)
    return statuses, responding_pids(server, request_ids)


def test_workers_are_two_children(workers_server):
    pids = worker_pids(workers_server)
    assert len(pids) == 2
    assert workers_server.process.pid not in pids


def test_workers_both_score(workers_server):
    statuses, pids = score_until_both_answer(workers_server, "/v1/score", {"contact_id": "w-1", "job_title": "CTO"})
    assert set(statuses) == {200}
    assert pids == worker_pids(workers_server)


def test_workers_batch_path_answers(workers_server):
    contacts = [{"contact_id": f"b-{index}", "job_title": "VP Sales"} for index in range(BATCH_PATH_ROWS)]
    statuses = []
    # Several requests, so that both workers most likely run the batch path at least once.
    for _ in range(6):
        response = httpx.post(f"{workers_server.base}/v1/score/batch", json=contacts, headers=AUTH, timeout=60)
        statuses.append(response.status_code)
        assert len(response.json()) == BATCH_PATH_ROWS
    assert set(statuses) == {200}


def test_workers_bench_route(workers_server):
    statuses, pids = score_until_both_answer(workers_server, "/v1/bench/booster", {"contact_id": "bench-w"})
    assert set(statuses) == {200}
    assert pids == worker_pids(workers_server)


def test_workers_share_metrics(workers_server):
    base = workers_server.base
    labels = {"route": "/v1/score", "method": "POST", "status": "200"}
    before = metric_value(base, "leadlink_http_requests_total", labels)
    for index in range(20):
        response = httpx.post(f"{base}/v1/score", json={"contact_id": f"m-{index}"}, headers=AUTH, timeout=60)
        assert response.status_code == 200

    # A worker counts a request just after sending its response, so the last one may lag.
    wait_for(lambda: metric_value(base, "leadlink_http_requests_total", labels) >= before + 20, "the last request's count", workers_server)
    # Each scrape opens a new connection and may reach either worker; all must see the sum.
    totals = [metric_value(base, "leadlink_http_requests_total", labels) for _ in range(6)]
    assert totals == [before + 20] * 6


def test_workers_follow_champion(workers_server, workers_store, monkeypatch):
    base = workers_server.base
    workers = worker_pids(workers_server)
    with registry_client(workers_store, monkeypatch) as registry:
        first = registry.get_model_version(MODEL_NAME, "1")
        copy = registry.create_model_version(MODEL_NAME, source=first.source, run_id=first.run_id)
        registry.set_registered_model_alias(MODEL_NAME, "champion", copy.version)
    new_label = f"{MODEL_NAME}/{copy.version}"

    def reloaded_pids() -> set[int]:
        return {entry["pid"] for entry in log_entries(workers_server) if entry["message"].startswith(f"Now serving model {new_label} ")}

    wait_for(lambda: reloaded_pids() >= workers, f"both workers to serve {new_label}", workers_server)
    versions = {httpx.post(f"{base}/v1/score", json={"contact_id": "c"}, headers=AUTH, timeout=60).json()["model_version"] for _ in range(20)}
    info = httpx.get(f"{base}/metrics", headers=AUTH, timeout=10).text
    assert reloaded_pids() == workers
    assert versions == {new_label}
    for pid in workers:
        assert f'pid="{pid}"' in info
    assert metric_value(base, "leadlink_model_info", {"version": str(copy.version)}) == 2.0


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_workers_stop_on_signal(stop_signal, trained_store, demo_workspace, tmp_path):
    # LEADLINK_WORKERS instead of --workers, so the environment variable is covered too.
    server = start_server(trained_store, demo_workspace, tmp_path / "serve.log", ["--reload-interval", "0"], {"LEADLINK_WORKERS": "2"})
    try:
        workers = [psutil.Process(pid) for pid in worker_pids(server)]
        server.process.send_signal(stop_signal)
        status = server.process.wait(timeout=40)
    finally:
        stop_server(server)

    assert len(workers) == 2
    assert status == 0
    for worker in workers:
        assert not worker.is_running()
    assert "All workers have stopped." in server.log_text()


def test_workers_replace_killed_worker(workers_server):
    before = worker_pids(workers_server)
    killed = min(before)
    psutil.Process(killed).send_signal(signal.SIGKILL)

    wait_for(lambda: len(worker_pids(workers_server)) == 2 and killed not in worker_pids(workers_server), "a new worker", workers_server)
    statuses = [httpx.post(f"{workers_server.base}/v1/score", json={"contact_id": f"r-{index}"}, headers=AUTH, timeout=60).status_code for index in range(10)]
    assert statuses == [200] * 10
    assert "exited unexpectedly" in workers_server.log_text()


def test_bind_listeners_busy_port():
    from leadlink.errors import LeadlinkError
    from leadlink.serving.workers import bind_listeners

    first = bind_listeners("127.0.0.1", 0, 2)
    for listener in first:
        listener.listen()
    try:
        with pytest.raises(LeadlinkError, match="Address already in use"):
            bind_listeners("127.0.0.1", first[0].getsockname()[1], 2)
    finally:
        for listener in first:
            listener.close()
