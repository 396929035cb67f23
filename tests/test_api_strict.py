"""The HTTP service without API keys, with strict fields and small limits, and start-up checks."""

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.test_api import LEADLINK, free_port, start_server, stop_server

MAX_BATCH_SIZE = 3
MAX_BODY_BYTES = 4096


@pytest.fixture(scope="module")
def strict_server(trained_store, demo_workspace, tmp_path_factory):
    folder = tmp_path_factory.mktemp("strict_server")
    server = start_server(
        trained_store,
        demo_workspace,
        folder / "serve.log",
        ["--strict-fields", "--max-batch-size", str(MAX_BATCH_SIZE), "--max-body-bytes", str(MAX_BODY_BYTES), "--reload-interval", "0"],
        {},
    )
    yield server
    stop_server(server)


def test_auth_off_logs_warning(strict_server):
    assert "Authentication is off" in strict_server.log_text()


def test_no_key_needed_when_auth_off(strict_server):
    response = httpx.post(f"{strict_server.base}/v1/score", json={"contact_id": "x"}, timeout=60)
    assert response.status_code == 200


def test_metrics_open_when_auth_off(strict_server):
    assert httpx.get(f"{strict_server.base}/metrics").status_code == 200


def test_strict_unknown_field_is_422(strict_server):
    response = httpx.post(f"{strict_server.base}/v1/score", json={"contact_id": "x", "favourite_colour": "teal"})
    detail = response.json()["detail"]
    assert response.status_code == 422
    assert len(detail) == 1
    assert detail[0]["field"] == "favourite_colour"
    assert "Unknown field" in detail[0]["message"]


def test_strict_unknown_event_field_is_422(strict_server):
    event = {"event_type": "chat", "occurred_at": "2026-01-01T00:00:00Z", "mood": "happy"}
    response = httpx.post(f"{strict_server.base}/v1/score", json={"contact_id": "x", "events": [event]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "events.0.mood"


def test_strict_batch_names_position(strict_server):
    response = httpx.post(f"{strict_server.base}/v1/score/batch", json=[{"contact_id": "a"}, {"contact_id": "b", "colour": "red"}])
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "1.colour"


def test_strict_contract_fields_accepted(strict_server):
    contact = {"contact_id": "x", "first_name": "Ann", "country": "DE", "events": [{"event_type": "chat", "occurred_at": "2026-01-01", "url": "/p"}]}
    response = httpx.post(f"{strict_server.base}/v1/score", json=contact, timeout=60)
    assert response.status_code == 200


def test_batch_limit_from_option(strict_server):
    contacts = [{"contact_id": str(i)} for i in range(MAX_BATCH_SIZE + 1)]
    response = httpx.post(f"{strict_server.base}/v1/score/batch", json=contacts)
    assert response.status_code == 422
    assert f"at most {MAX_BATCH_SIZE} contacts" in response.json()["detail"][0]["message"]


def test_body_limit_from_option(strict_server):
    response = httpx.post(f"{strict_server.base}/v1/score", json={"contact_id": "x", "first_name": "a" * MAX_BODY_BYTES})
    assert response.status_code == 413
    assert "4,096 bytes" in response.json()["detail"]


def test_readyz_reports_reload_off(strict_server):
    assert httpx.get(f"{strict_server.base}/readyz").json()["reload"] == {"status": "off"}


def _serve_once(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run ``leadlink serve`` expecting it to exit before opening a port."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("LEADLINK_", "MLFLOW_"))}
    return subprocess.run([str(LEADLINK), "serve", "--port", str(free_port()), *args], env={**clean, **env}, capture_output=True, text=True, timeout=120)


def test_non_loopback_without_keys_exits_2(trained_store):
    # 192.0.2.10 is a documentation address (RFC 5737) that no machine owns,
    # so even a broken check could not open a port reachable from outside.
    result = _serve_once(["--host", "192.0.2.10"], {"MLFLOW_TRACKING_URI": trained_store})
    assert result.returncode == 2
    assert "no API keys are configured" in result.stdout


def test_empty_keys_file_exits_2(trained_store, tmp_path):
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text("# no keys yet\n\n", encoding="utf-8")
    result = _serve_once(["--api-keys-file", str(keys_file)], {"MLFLOW_TRACKING_URI": trained_store})
    assert result.returncode == 2
    assert "contains no key" in result.stdout


def test_missing_model_exits_2(tmp_path):
    result = _serve_once([], {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'empty.db'}"})
    assert result.returncode == 2
    assert "No version of model 'leadlink' is registered" in result.stdout


def test_missing_model_folder_exits_2(trained_store, tmp_path):
    result = _serve_once(["--model", str(tmp_path / "no-such-model"), "--workers", "2"], {"MLFLOW_TRACKING_URI": trained_store})
    assert result.returncode == 2
    assert "is not a folder and not a model URI" in result.stdout


@pytest.mark.parametrize(
    "host, expected",
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("example.internal", False),
    ],
)
def test_is_loopback_host(host, expected):
    from leadlink.serving.auth import is_loopback_host

    assert is_loopback_host(host) is expected


def test_keys_file_skips_comments(tmp_path):
    from leadlink.serving.auth import read_api_keys_file

    keys_file = tmp_path / "keys.txt"
    keys_file.write_text("# header\nfirst-key-0123456789\n\n  second-key-0123456789  # rotated in May\n#third\n", encoding="utf-8")
    assert read_api_keys_file(keys_file) == ["first-key-0123456789", "second-key-0123456789"]


def test_load_api_keys_merges_sources(tmp_path):
    from leadlink.serving.auth import load_api_keys

    keys_file = tmp_path / "keys.txt"
    keys_file.write_text("file-key-0123456789\nshared-key-0123456789\n", encoding="utf-8")
    keys = load_api_keys("env-key-0123456789, shared-key-0123456789", keys_file)
    assert keys == ("env-key-0123456789", "shared-key-0123456789", "file-key-0123456789")


def test_load_api_keys_missing_file_raises(tmp_path):
    from leadlink.errors import LeadlinkError
    from leadlink.serving.auth import load_api_keys

    with pytest.raises(LeadlinkError, match="Could not read the API keys file"):
        load_api_keys(None, Path(tmp_path / "absent.txt"))
