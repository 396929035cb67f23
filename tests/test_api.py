"""The HTTP service, started as a real server on loopback."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

LEADLINK = Path(sys.executable).with_name("leadlink")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(trained_store, demo_workspace, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "serve.log"
    env = {**os.environ, "MLFLOW_TRACKING_URI": trained_store}
    with open(log, "w") as handle:
        process = subprocess.Popen(
            [str(LEADLINK), "serve", "--host", "127.0.0.1", "--port", str(port), "--workspace", str(demo_workspace)],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}: {log.read_text()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail(f"server did not become healthy: {log.read_text()}")
    yield base
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture(scope="module")
def known_user(demo_workspace):
    """A user with a personal email, phone and LinkedIn URL, to come back as a contact."""
    users = pd.read_parquet(demo_workspace / "users.parquet")
    complete = users.dropna(subset=["personal_email", "linkedin_url", "first_name", "last_name"])
    return complete.iloc[0].to_dict()


def test_healthz(server):
    body = httpx.get(f"{server}/healthz").json()
    assert body["status"] == "ok"
    assert body["model_version"] == "leadlink/1"
    assert body["users_indexed"] > 0


def test_score_returns_batch_fields(server):
    contact = {
        "contact_id": "web-1",
        "first_name": "Zoë",
        "last_name": "Nowhere-Unmatched",
        "email": "zoe@brand-new-company.io",
        "job_title": "VP Marketing",
        "events": [{"event_type": "demo_request", "occurred_at": "2026-06-25T10:00:00"}],
        "as_of": "2026-06-28T00:00:00Z",
    }
    response = httpx.post(f"{server}/v1/score", json=contact, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"contact_id", "probability", "score", "previous_user", "matched_user_id", "match_probability", "reasons", "model_version"}
    assert body["contact_id"] == "web-1"
    assert 0 <= body["probability"] <= 1
    assert body["score"] == round(body["probability"] * 100)
    assert body["previous_user"] is False
    assert body["matched_user_id"] is None
    assert body["reasons"]


def test_returning_user_is_recognised(server, known_user):
    contact = {
        "contact_id": "web-2",
        "first_name": known_user["first_name"].upper(),
        "last_name": known_user["last_name"],
        "email": "someone@another-employer.com",
        "personal_email": known_user["personal_email"],
        "linkedin_url": known_user["linkedin_url"].upper(),
        "as_of": "2026-06-29T00:00:00Z",
    }
    body = httpx.post(f"{server}/v1/score", json=contact, timeout=30).json()
    assert body["previous_user"] is True
    assert body["matched_user_id"] == known_user["user_id"]
    assert body["match_probability"] > 0.9


def test_malformed_json_is_400(server):
    response = httpx.post(f"{server}/v1/score", content=b'{"contact_id": ', headers={"content-type": "application/json"})
    assert response.status_code == 400


def test_wrong_type_is_422_naming_field(server):
    response = httpx.post(f"{server}/v1/score", json={"contact_id": "x", "employee_count": "many"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "employee_count"


def test_missing_contact_id_is_422(server):
    response = httpx.post(f"{server}/v1/score", json={"first_name": "Ann"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "contact_id"


def test_non_finite_number_is_422(server):
    response = httpx.post(
        f"{server}/v1/score", content=b'{"contact_id": "x", "annual_revenue": Infinity}', headers={"content-type": "application/json"}
    )
    assert response.status_code in (400, 422)


def test_bad_event_timestamp_is_422(server):
    response = httpx.post(f"{server}/v1/score", json={"contact_id": "x", "events": [{"event_type": "chat", "occurred_at": "soon"}]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "events.0.occurred_at"


def test_unicode_name_round_trips(server):
    response = httpx.post(f"{server}/v1/score", json={"contact_id": "Jürgen-Søren-王", "first_name": "王"})
    assert response.status_code == 200
    assert response.json()["contact_id"] == "Jürgen-Søren-王"


def test_openapi_lists_score_route(server):
    schema = httpx.get(f"{server}/openapi.json").json()
    assert "/v1/score" in schema["paths"]
    assert httpx.get(f"{server}/docs").status_code == 200


def test_user_without_company_is_recognised(server, demo_workspace):
    users = pd.read_parquet(demo_workspace / "users.parquet")
    user = users[users["company_domain"].isna() & users["linkedin_url"].notna() & users["first_name"].notna()].iloc[0]
    contact = {"contact_id": "web-3", "first_name": user["first_name"], "last_name": user["last_name"], "linkedin_url": user["linkedin_url"]}
    response = httpx.post(f"{server}/v1/score", json=contact, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["matched_user_id"] == user["user_id"]


def test_concurrent_requests_all_succeed(server, known_user):
    from concurrent.futures import ThreadPoolExecutor

    contact = {"contact_id": "web-4", "first_name": known_user["first_name"], "last_name": known_user["last_name"], "personal_email": known_user["personal_email"]}

    def call(_):
        return httpx.post(f"{server}/v1/score", json=contact, timeout=60).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(call, range(48)))
    assert statuses == [200] * 48


def test_service_refuses_missing_workspace(trained_store, monkeypatch, tmp_path):
    from leadlink.errors import LeadlinkError
    from leadlink.serving.api import ScoringService

    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained_store)
    monkeypatch.setattr("leadlink.serving.api._trained_workspace", lambda spec: None)
    with pytest.raises(LeadlinkError, match="pass --workspace"):
        ScoringService(None, None)
