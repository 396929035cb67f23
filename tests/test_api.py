"""The HTTP service, started as a real server on loopback with API keys.

The helpers at the top start and stop servers, and the other ``test_api_*``
files import them.
"""

import json
import math
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pandas as pd
import pytest
from mlflow import MlflowClient
from prometheus_client.parser import text_string_to_metric_families

LEADLINK = Path(sys.executable).with_name("leadlink")
ENV_KEY = "env-key-0123456789abcdef"
FILE_KEY = "file-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {ENV_KEY}"}
MAX_BODY_BYTES = 1024 * 1024
MAX_BATCH_SIZE = 100
STARTUP_SECONDS = 180


@dataclass
class RunningServer:
    base: str
    log: Path
    process: subprocess.Popen

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(
    tracking_uri: str, workspace: Path, log: Path, args: list[str], env: dict[str, str], wait_path: str = "/readyz"
) -> RunningServer:
    """Start ``leadlink serve`` on a free loopback port and wait until ``wait_path`` returns 200."""
    port = free_port()
    # MLflow copies its tracking and registry URIs into this process's
    # environment, so they are dropped to keep the server on ``tracking_uri``.
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("LEADLINK_", "MLFLOW_"))}
    full_env = {**clean, "MLFLOW_TRACKING_URI": tracking_uri, **env}
    command = [str(LEADLINK), "serve", "--host", "127.0.0.1", "--port", str(port), "--workspace", str(workspace), *args]
    with open(log, "w") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=full_env)
    server = RunningServer(f"http://127.0.0.1:{port}", log, process)

    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}: {server.log_text()}")
        try:
            if httpx.get(f"{server.base}{wait_path}", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    stop_server(server)
    pytest.fail(f"server did not become ready: {server.log_text()}")


def stop_server(server: RunningServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=20)


def metric_value(base: str, name: str, labels: dict[str, str] | None = None) -> float:
    """Return the sum of the /metrics samples named ``name`` whose labels include ``labels`` (0 when none exists)."""
    text = httpx.get(f"{base}/metrics", headers=AUTH, timeout=10).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in (labels or {}).items()):
                total += sample.value
    return total


@pytest.fixture(scope="session")
def api_server(trained_store, demo_workspace, tmp_path_factory):
    """A server with one key in LEADLINK_API_KEYS and another in a keys file."""
    folder = tmp_path_factory.mktemp("api_server")
    keys_file = folder / "keys.txt"
    keys_file.write_text(f"# keys for the test server\n\n{FILE_KEY}  # second key\n", encoding="utf-8")
    server = start_server(
        trained_store,
        demo_workspace,
        folder / "serve.log",
        ["--api-keys-file", str(keys_file)],
        {"LEADLINK_API_KEYS": ENV_KEY},
    )
    yield server
    stop_server(server)


@pytest.fixture(scope="session")
def server(api_server) -> str:
    return api_server.base


@pytest.fixture(scope="module")
def known_user(demo_workspace):
    """A user with a personal email, phone and LinkedIn URL, to come back as a contact."""
    users = pd.read_parquet(demo_workspace / "users.parquet")
    complete = users.dropna(subset=["personal_email", "linkedin_url", "first_name", "last_name"])
    return complete.iloc[0].to_dict()


def post_json(server: str, path: str, payload, headers=AUTH, timeout: float = 60) -> httpx.Response:
    return httpx.post(f"{server}{path}", json=payload, headers=headers, timeout=timeout)


def post_raw(server: str, path: str, body, headers=AUTH, timeout: float = 60) -> httpx.Response:
    return httpx.post(f"{server}{path}", content=body, headers={**headers, "content-type": "application/json"}, timeout=timeout)


# Health and readiness


def test_healthz_open_without_key(server):
    response = httpx.get(f"{server}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_model(server):
    response = httpx.get(f"{server}/readyz")
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ready"
    assert body["model_version"] == "leadlink/1"
    assert body["users_indexed"] > 0
    assert body["reload"] == {"status": "ok"}


# Scoring


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
    response = post_json(server, "/v1/score", contact)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"contact_id", "probability", "score", "previous_user", "matched_user_id", "match_probability", "reasons", "model_version"}
    assert body["contact_id"] == "web-1"
    assert 0 <= body["probability"] <= 1
    assert body["score"] == round(body["probability"] * 100)
    assert body["previous_user"] is False
    assert body["matched_user_id"] is None
    assert body["reasons"]
    assert body["model_version"] == "leadlink/1"


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
    body = post_json(server, "/v1/score", contact).json()
    assert body["previous_user"] is True
    assert body["matched_user_id"] == known_user["user_id"]
    assert body["match_probability"] > 0.9


def test_user_without_company_is_recognised(server, demo_workspace):
    users = pd.read_parquet(demo_workspace / "users.parquet")
    user = users[users["company_domain"].isna() & users["linkedin_url"].notna() & users["first_name"].notna()].iloc[0]
    contact = {"contact_id": "web-3", "first_name": user["first_name"], "last_name": user["last_name"], "linkedin_url": user["linkedin_url"]}
    response = post_json(server, "/v1/score", contact)
    assert response.status_code == 200, response.text
    assert response.json()["matched_user_id"] == user["user_id"]


def test_unicode_name_round_trips(server):
    contact_id = "Jürgen-Søren-王-𝔘-ﬁ"
    response = post_json(server, "/v1/score", {"contact_id": contact_id, "first_name": "王", "last_name": "Łukasiewicz"})
    assert response.status_code == 200
    assert response.json()["contact_id"] == contact_id


def test_unknown_field_ignored_by_default(server):
    response = post_json(server, "/v1/score", {"contact_id": "web-5", "favourite_colour": "teal", "events": [{"event_type": "chat", "occurred_at": "2026-01-01", "mood": 1}]})
    assert response.status_code == 200
    assert response.json()["contact_id"] == "web-5"


def test_concurrent_requests_all_succeed(server, known_user):
    contact = {"contact_id": "web-4", "first_name": known_user["first_name"], "last_name": known_user["last_name"], "personal_email": known_user["personal_email"]}

    def call(_):
        return post_json(server, "/v1/score", contact).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(call, range(48)))
    assert statuses == [200] * 48


# Batch scoring


def test_batch_matches_single_scores(server, known_user):
    contacts = [
        {"contact_id": "b-1", "job_title": "Chief Executive Officer", "as_of": "2026-06-01T00:00:00Z"},
        {"contact_id": "b-2", "first_name": known_user["first_name"], "last_name": known_user["last_name"],
         "personal_email": known_user["personal_email"], "as_of": "2026-06-01T00:00:00Z"},
        {"contact_id": "b-3", "events": [{"event_type": "pricing_view", "occurred_at": "2026-05-30T12:00:00Z"}], "as_of": "2026-06-01T00:00:00Z"},
    ]
    singles = [post_json(server, "/v1/score", contact).json() for contact in contacts]
    response = post_json(server, "/v1/score/batch", contacts)
    assert response.status_code == 200, response.text
    batch = response.json()
    assert [row["contact_id"] for row in batch] == ["b-1", "b-2", "b-3"]
    for single, row in zip(singles, batch):
        assert row["probability"] == pytest.approx(single["probability"], abs=1e-12)
        assert row["matched_user_id"] == single["matched_user_id"]
        assert row["reasons"] == single["reasons"]


def test_batch_repeated_contact_id(server):
    contact = {"contact_id": "same", "job_title": "CTO", "as_of": "2026-06-01T00:00:00Z"}
    response = post_json(server, "/v1/score/batch", [contact, contact])
    assert response.status_code == 200, response.text
    first, second = response.json()
    assert first["contact_id"] == "same"
    assert second == first


def test_batch_empty_returns_empty(server):
    response = post_json(server, "/v1/score/batch", [])
    assert response.status_code == 200
    assert response.json() == []


def test_batch_over_limit_is_422(server):
    contacts = [{"contact_id": f"c-{i}"} for i in range(MAX_BATCH_SIZE + 1)]
    response = post_json(server, "/v1/score/batch", contacts)
    detail = response.json()["detail"]
    assert response.status_code == 422
    assert detail[0]["field"] == "body"
    assert f"at most {MAX_BATCH_SIZE} contacts" in detail[0]["message"]
    assert f"has {MAX_BATCH_SIZE + 1}" in detail[0]["message"]


def test_batch_at_limit_is_scored(server):
    contacts = [{"contact_id": f"c-{i}"} for i in range(MAX_BATCH_SIZE)]
    response = post_json(server, "/v1/score/batch", contacts, timeout=120)
    assert response.status_code == 200
    assert len(response.json()) == MAX_BATCH_SIZE


def test_batch_wrong_type_names_position(server):
    response = post_json(server, "/v1/score/batch", [{"contact_id": "ok"}, {"contact_id": "x", "employee_count": "many"}])
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "1.employee_count"


# Bad input


def test_malformed_json_is_400(server):
    response = post_raw(server, "/v1/score", b'{"contact_id": ')
    detail = response.json()["detail"][0]
    assert response.status_code == 400
    assert detail["field"] == "body"
    assert "Invalid JSON" in detail["message"]


def test_wrong_type_is_422_naming_field(server):
    response = post_json(server, "/v1/score", {"contact_id": "x", "employee_count": "many"})
    detail = response.json()["detail"][0]
    assert response.status_code == 422
    assert detail["field"] == "employee_count"
    assert "integer" in detail["message"]


def test_missing_contact_id_is_422(server):
    response = post_json(server, "/v1/score", {"first_name": "Ann"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "contact_id"


@pytest.mark.parametrize(
    "body, field",
    [
        (b'{"contact_id": "x", "annual_revenue": NaN}', "annual_revenue"),
        (b'{"contact_id": "x", "annual_revenue": Infinity}', "annual_revenue"),
        (b'{"contact_id": "x", "annual_revenue": 1e999}', "annual_revenue"),
        (b'{"contact_id": "x", "employee_count": -Infinity}', "employee_count"),
        (b'{"contact_id": "x", "employee_count": NaN}', "employee_count"),
    ],
)
def test_non_finite_number_is_422(server, body, field):
    response = post_raw(server, "/v1/score", body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == field


def test_bad_event_timestamp_is_422(server):
    response = post_json(server, "/v1/score", {"contact_id": "x", "events": [{"event_type": "chat", "occurred_at": "soon"}]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "events.0.occurred_at"


def test_timestamp_out_of_range_is_422(server):
    response = post_json(server, "/v1/score", {"contact_id": "x", "as_of": "9999-12-31T00:00:00Z"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "as_of"


def test_unpaired_surrogate_is_422(server):
    response = post_raw(server, "/v1/score", b'{"contact_id": "\\ud800"}')
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "contact_id"


# Body size limit


def _padded_body(size: int) -> bytes:
    """Return a valid contact JSON body of exactly ``size`` bytes, padded in an ignored field."""
    head, tail = b'{"contact_id": "pad", "padding": "', b'"}'
    return head + b"a" * (size - len(head) - len(tail)) + tail


def test_body_at_limit_is_accepted(server):
    body = _padded_body(MAX_BODY_BYTES)
    assert len(body) == MAX_BODY_BYTES
    response = post_raw(server, "/v1/score", body)
    assert response.status_code == 200


def test_oversized_body_is_413(server):
    response = post_raw(server, "/v1/score", _padded_body(MAX_BODY_BYTES + 1))
    assert response.status_code == 413
    assert "1,048,576 bytes" in response.json()["detail"]


def test_oversized_chunked_body_is_413(server):
    body = _padded_body(MAX_BODY_BYTES + 1)
    chunks = (body[start : start + 65536] for start in range(0, len(body), 65536))
    response = post_raw(server, "/v1/score", chunks)
    assert response.request.headers.get("content-length") is None
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 413


def test_oversized_malformed_body_is_413_not_400(server):
    response = post_raw(server, "/v1/score", iter([b"{" * (MAX_BODY_BYTES + 10)]))
    assert response.status_code == 413


# Authentication


def test_missing_key_is_401(server):
    response = post_json(server, "/v1/score", {"contact_id": "x"}, headers={})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_wrong_key_is_401(server):
    response = post_json(server, "/v1/score", {"contact_id": "x"}, headers={"Authorization": f"Bearer {ENV_KEY}x"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_wrong_scheme_is_401(server):
    response = post_json(server, "/v1/score", {"contact_id": "x"}, headers={"Authorization": f"Basic {ENV_KEY}"})
    assert response.status_code == 401


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": f"Bearer {ENV_KEY}"}, {"X-API-Key": ENV_KEY}, {"Authorization": f"Bearer {FILE_KEY}"}, {"X-API-Key": FILE_KEY}],
    ids=["bearer-env", "x-api-key-env", "bearer-file", "x-api-key-file"],
)
def test_valid_key_is_accepted(server, headers):
    response = post_json(server, "/v1/score", {"contact_id": "x"}, headers=headers)
    assert response.status_code == 200


def test_unauthenticated_oversized_body_is_401(server):
    response = post_raw(server, "/v1/score", _padded_body(MAX_BODY_BYTES + 1), headers={})
    assert response.status_code == 401


@pytest.mark.parametrize("path", ["/v1/model", "/metrics", "/v1/unknown"])
def test_protected_routes_need_key(server, path):
    assert httpx.get(f"{server}{path}").status_code == 401


def test_docs_open_without_key(server):
    schema = httpx.get(f"{server}/openapi.json").json()
    assert httpx.get(f"{server}/docs").status_code == 200
    assert "/v1/score" in schema["paths"]
    assert "/v1/score/batch" in schema["paths"]
    assert schema["paths"]["/v1/score"]["post"]["security"] == [{"bearer": []}, {"apiKeyHeader": []}]
    assert "security" not in schema["paths"]["/healthz"]["get"]


def test_bench_route_absent_by_default(server):
    response = post_json(server, "/v1/bench/booster", {"contact_id": "x"})
    assert response.status_code == 404


# Model description


def test_model_route_describes_registry_version(server, trained_store, tmp_path):
    client = MlflowClient(tracking_uri=trained_store, registry_uri=trained_store)
    version = max(client.search_model_versions("name = 'leadlink'"), key=lambda v: int(v.version))
    run = client.get_run(version.run_id)
    features = Path(client.download_artifacts(version.run_id, "features.txt", str(tmp_path))).read_text().splitlines()

    body = httpx.get(f"{server}/v1/model", headers=AUTH).json()
    assert body["name"] == "leadlink"
    assert body["version"] == str(version.version)
    assert body["alias"] is None  # the store has a challenger but no champion
    assert body["run_id"] == version.run_id
    assert datetime.fromisoformat(body["trained_at"]) == datetime.fromtimestamp(run.info.start_time / 1000, timezone.utc)
    assert body["metrics"]["roc_auc"] == pytest.approx(run.data.metrics["backtest_roc_auc"])
    assert body["metrics"]["log_loss"] == pytest.approx(run.data.metrics["backtest_log_loss"])
    assert body["features"] == features


# Metrics and logs


def test_metrics_count_score_requests(server):
    labels = {"route": "/v1/score", "method": "POST", "status": "200"}
    before = metric_value(server, "leadlink_http_requests_total", labels)
    latency_before = metric_value(server, "leadlink_http_request_duration_seconds_count", {"route": "/v1/score"})
    post_json(server, "/v1/score", {"contact_id": "m-1"})
    post_json(server, "/v1/score", {"contact_id": "m-2"})
    assert metric_value(server, "leadlink_http_requests_total", labels) == before + 2
    assert metric_value(server, "leadlink_http_request_duration_seconds_count", {"route": "/v1/score"}) == latency_before + 2


def test_metrics_count_rejected_requests(server):
    labels = {"route": "/v1/score", "method": "POST", "status": "401"}
    before = metric_value(server, "leadlink_http_requests_total", labels)
    post_json(server, "/v1/score", {"contact_id": "x"}, headers={})
    assert metric_value(server, "leadlink_http_requests_total", labels) == before + 1


def test_metrics_show_model_and_reloads(server):
    info = metric_value(server, "leadlink_model_info", {"model": "leadlink", "version": "1", "alias": ""})
    assert info == 1.0
    assert metric_value(server, "leadlink_model_reloads_total") == 0.0
    assert metric_value(server, "leadlink_model_reload_failures_total") == 0.0


def test_unknown_paths_share_one_label(server):
    for path in ("/v1/nope-1", "/v1/nope-2"):
        httpx.get(f"{server}{path}", headers=AUTH)
    text = httpx.get(f"{server}/metrics", headers=AUTH).text
    assert "nope" not in text
    assert metric_value(server, "leadlink_http_requests_total", {"route": "unmatched", "status": "404"}) >= 2


def test_access_log_has_no_personal_data(api_server):
    personal = {
        "first_name": "Adalinde",
        "last_name": "Quixotewell",
        "email": "adalinde.quixotewell@example.org",
        "personal_email": "ada.q.private@gmail.com",
        "phone": "+44 20 7946 0958",
    }
    request_id = "log-check-1"
    response = post_json(api_server.base, "/v1/score", {"contact_id": "log-1", **personal}, headers={**AUTH, "X-Request-ID": request_id})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == request_id

    time.sleep(0.5)  # the server writes the line after the response
    lines = [json.loads(line) for line in api_server.log_text().splitlines() if line.startswith("{")]
    entries = [line for line in lines if line.get("request_id") == request_id]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["method"] == "POST"
    assert entry["route"] == "/v1/score"
    assert entry["status"] == 200
    assert entry["latency_ms"] > 0
    assert entry["model_version"] == "leadlink/1"
    assert entry["batch_size"] == 1
    log = api_server.log_text()
    for value in (*personal.values(), "7946 0958", "20 7946"):
        assert value not in log


def test_new_request_id_when_none_sent(server):
    response = httpx.get(f"{server}/healthz")
    assert len(response.headers["x-request-id"]) == 32


# Units: output sanitising, settings, keys


def test_score_result_non_finite_becomes_null():
    from leadlink.serving.scoring import score_result

    for value in (math.nan, math.inf, -math.inf):
        row = score_result("c", value, False, None, value, [], "v")
        assert row.probability is None
        assert row.score is None
        assert row.match_probability is None
        assert json.loads(row.model_dump_json())["probability"] is None


def test_score_result_rounds_score():
    from leadlink.serving.scoring import score_result

    row = score_result("c", 0.456, True, "u-1", 0.97, ["a"], "v")
    assert row.probability == 0.456
    assert row.score == 46
    assert row.match_probability == 0.97


def test_finite_or_none_cases():
    from leadlink.serving.scoring import finite_or_none

    assert finite_or_none(0.5) == 0.5
    assert finite_or_none(3) == 3.0
    assert finite_or_none(math.nan) is None
    assert finite_or_none(None) is None
    assert finite_or_none("n/a") is None


def test_unhandled_error_is_masked_500():
    import asyncio
    import io
    import logging

    from leadlink.serving.metrics import ServiceMetrics
    from leadlink.serving.telemetry import JsonLogFormatter, TelemetryMiddleware

    async def failing_app(scope, receive, send):
        raise ValueError("no user for ada.lovelace@example.org")

    metrics = ServiceMetrics()
    app = TelemetryMiddleware(failing_app, metrics, frozenset({"/v1/score"}))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLogFormatter())
    error_logger = logging.getLogger("leadlink.serving.telemetry")
    error_logger.addHandler(handler)
    try:

        async def call() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
                return await client.post("/v1/score", json={"contact_id": "x"}, headers={"X-Request-ID": "req-500"})

        response = asyncio.run(call())
    finally:
        error_logger.removeHandler(handler)

    logged = json.loads(stream.getvalue().splitlines()[0])
    assert response.status_code == 500
    assert "req-500" in response.json()["detail"]
    assert logged["level"] == "error"
    assert "ValueError" in logged["error"]
    assert "ada.lovelace@example.org" not in logged["error"]
    assert "a***@example.org" in logged["error"]
    assert metrics.registry.get_sample_value("leadlink_http_requests_total", {"route": "/v1/score", "method": "POST", "status": "500"}) == 1


def test_readiness_while_loading():
    from leadlink.serving.metrics import ServiceMetrics
    from leadlink.serving.reload import ModelManager

    ready, body = ModelManager(None, None, 30, ServiceMetrics()).readiness()
    assert ready is False
    assert body["status"] == "unavailable"
    assert "still loading" in body["reason"]


@pytest.mark.parametrize(
    "model_uri, expected",
    [
        (None, ("leadlink", "champion")),
        ("models:/other@staging", ("other", "staging")),
        ("models:/leadlink/3", None),
        ("runs:/abc/model", None),
        ("/srv/models/leadlink", None),
    ],
)
def test_followed_alias(model_uri, expected):
    from leadlink.serving.reload import followed_alias

    assert followed_alias(model_uri) == expected


def test_settings_from_env():
    from leadlink.serving.api import ServiceSettings

    settings = ServiceSettings.from_env(
        {
            "LEADLINK_API_KEYS": f" {ENV_KEY} ,,{FILE_KEY}",
            "LEADLINK_STRICT_FIELDS": "1",
            "LEADLINK_MAX_BODY_BYTES": "2048",
            "LEADLINK_MAX_BATCH_SIZE": "7",
            "LEADLINK_RELOAD_INTERVAL": "2.5",
        }
    )
    assert settings.api_keys == (ENV_KEY, FILE_KEY)
    assert settings.strict_fields is True
    assert settings.max_body_bytes == 2048
    assert settings.max_batch_size == 7
    assert settings.reload_interval == 2.5
    assert settings.bench_endpoints is False


def test_settings_defaults():
    from leadlink.serving.api import ServiceSettings

    settings = ServiceSettings.from_env({})
    assert settings.api_keys == ()
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.max_batch_size == 100
    assert settings.reload_interval == 30.0
    assert settings.strict_fields is False


@pytest.mark.parametrize(
    "environ, message",
    [
        ({"LEADLINK_STRICT_FIELDS": "maybe"}, "LEADLINK_STRICT_FIELDS is 'maybe'"),
        ({"LEADLINK_MAX_BATCH_SIZE": "ten"}, "LEADLINK_MAX_BATCH_SIZE is 'ten'"),
        ({"LEADLINK_MAX_BATCH_SIZE": "0"}, "maximum batch size must be at least 1"),
        ({"LEADLINK_RELOAD_INTERVAL": "-1"}, "reload interval must be 0"),
    ],
)
def test_settings_reject_bad_env(environ, message):
    from leadlink.errors import LeadlinkError
    from leadlink.serving.api import ServiceSettings

    with pytest.raises(LeadlinkError, match=message):
        ServiceSettings.from_env(environ)


def test_load_fails_for_missing_workspace(trained_store, monkeypatch):
    from leadlink.errors import LeadlinkError
    from leadlink.serving.model import load_model
    from leadlink.serving.scoring import load_users

    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained_store)
    model = load_model(None)
    model.scorer.spec = {**model.scorer.spec, "workspace": "/nonexistent/workspace"}
    with pytest.raises(LeadlinkError, match="pass --workspace"):
        load_users(None, model)
