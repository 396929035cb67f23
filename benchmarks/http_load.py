"""HTTP load benchmark of the scoring service, on loopback only.

Run from the repository root with the project environment, in the folder whose
``mlflow.db`` contains a trained model (or with ``MLFLOW_TRACKING_URI`` set):

    .venv/bin/python benchmarks/http_load.py --workspace DIR --duration 20
    .venv/bin/python benchmarks/http_load.py --url http://127.0.0.1:8000 --server-pid PID \\
        --workspace DIR --api-key KEY

Without ``--url`` the script starts ``leadlink serve`` on a free loopback port
with ``LEADLINK_BENCH_ENDPOINTS=1`` and a random API key, and stops it at the
end. A server given with ``--url`` must have been started with that variable.

Two phases run one after the other, each after a warm-up, with the same
request bodies (contacts sampled from the workspace with their events):

1. ``POST /v1/score``: validation, linkage, features, model and reasons.
2. ``POST /v1/bench/booster``: the baseline. The same framework, middleware
   and validation, then one call of the bare LightGBM booster on a prepared row.

Each phase prints p50, p95 and p99 latency, throughput, errors and the server's
resident memory (RSS) at its start and end, and the script prints the ratio of
the two phases. With ``--rate`` the client sends on a fixed schedule, and a
request's latency counts from its scheduled time, so a server that falls behind
shows its queueing delay instead of hiding it. Without ``--rate`` each
connection sends its next request when the previous one returns.

The client runs on the same machine as the server and takes CPU from it, which
lowers the throughput of the fast baseline most. A JSON record goes to
``benchmarks/out/http_load.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pandas as pd
import psutil

from leadlink.serving.auth import is_loopback_host

OUT = Path(__file__).resolve().parent / "out"
LEADLINK = Path(sys.executable).with_name("leadlink")
SCORE_PATH = "/v1/score"
BASELINE_PATH = "/v1/bench/booster"
CONTACT_FIELDS = (
    "contact_id", "first_name", "last_name", "email", "personal_email", "phone", "linkedin_url", "job_title",
    "company_name", "company_domain", "industry", "employee_count", "annual_revenue", "country", "city", "created_at",
)
MAX_EVENTS_PER_BODY = 200
STARTUP_SECONDS = 300


@dataclass
class PhaseResult:
    """Latencies, errors and memory of one phase of the run."""

    path: str
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    rss_start_mib: float | None = None
    rss_end_mib: float | None = None
    rss_max_mib: float | None = None

    @property
    def requests(self) -> int:
        return len(self.latencies_ms) + sum(self.errors.values())

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else math.nan

    def summary(self) -> dict:
        return {
            "path": self.path,
            "requests": self.requests,
            "ok": len(self.latencies_ms),
            "errors": self.errors,
            "seconds": round(self.seconds, 2),
            "throughput_per_s": round(len(self.latencies_ms) / self.seconds, 2) if self.seconds else None,
            "p50_ms": round(self.percentile(50), 2),
            "p95_ms": round(self.percentile(95), 2),
            "p99_ms": round(self.percentile(99), 2),
            "rss_start_mib": self.rss_start_mib,
            "rss_end_mib": self.rss_end_mib,
            "rss_max_mib": self.rss_max_mib,
        }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workspace", type=Path, required=True, help="Workspace folder whose contacts and events become request bodies.")
    parser.add_argument("--url", help="Base URL of a running server on loopback (default: start one).")
    parser.add_argument("--server-pid", type=int, help="Process id of the server given with --url, to read its memory.")
    parser.add_argument("--api-key", help="API key for the server given with --url (default: LEADLINK_API_KEYS' first key, if any).")
    parser.add_argument("--duration", type=float, default=20.0, help="Measured seconds per phase (default: 20).")
    parser.add_argument("--warmup", type=float, default=3.0, help="Unmeasured seconds before each phase (default: 3).")
    parser.add_argument("--rate", type=float, default=0.0, help="Requests per second over all connections; 0 sends as fast as responses return.")
    parser.add_argument("--connections", type=int, default=16, help="Concurrent connections (default: 16).")
    parser.add_argument("--contacts", type=int, default=200, help="Number of distinct request bodies sampled from the workspace (default: 200).")
    parser.add_argument("--seed", type=int, default=0, help="Seed for sampling the contacts.")
    parser.add_argument("--out", type=Path, default=OUT / "http_load.json", help="File for the JSON record.")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.warmup < 0 or args.rate < 0 or args.connections < 1 or args.contacts < 1:
        parser.error("--duration and --connections and --contacts must be positive; --warmup and --rate must not be negative.")
    if args.url is not None:
        host = urlsplit(args.url).hostname or ""
        if not is_loopback_host(host):
            parser.error(f"--url {args.url} is not a loopback address; this benchmark only sends load to 127.0.0.1, ::1 or localhost.")
    return args


def request_bodies(workspace: Path, count: int, seed: int) -> list[bytes]:
    """Sample contacts with their events from the workspace and encode them as JSON request bodies."""
    contacts = _read_table(workspace, "contacts")
    events = _read_table(workspace, "events")
    sample = contacts.sample(n=min(count, len(contacts)), random_state=seed)
    as_of = pd.to_datetime(events["occurred_at"], utc=True).max() if len(events) else pd.Timestamp.now(tz="UTC")
    by_contact = {key: group for key, group in events.groupby("contact_id")} if len(events) else {}

    bodies = []
    for row in sample.to_dict("records"):
        contact = {name: _json_value(row.get(name)) for name in CONTACT_FIELDS if _json_value(row.get(name)) is not None}
        contact["contact_id"] = str(row["contact_id"])
        own = by_contact.get(row["contact_id"])
        if own is not None:
            own = own.sort_values("occurred_at").tail(MAX_EVENTS_PER_BODY)
            contact["events"] = [
                {key: _json_value(value) for key, value in event.items() if key != "contact_id" and _json_value(value) is not None}
                for event in own.to_dict("records")
            ]
        contact["as_of"] = as_of.isoformat()
        bodies.append(json.dumps(contact, ensure_ascii=False).encode("utf-8"))
    return bodies


def _read_table(workspace: Path, name: str) -> pd.DataFrame:
    for suffix in (".parquet", ".csv"):
        path = workspace / f"{name}{suffix}"
        if path.exists():
            return pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path)
    raise SystemExit(f"Workspace {workspace} has no {name}.parquet or {name}.csv.")


def _json_value(value):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value


class Server:
    """A ``leadlink serve`` process started for the run, with benchmark routes on."""

    def __init__(self, workspace: Path, log_dir: Path):
        self.api_key = secrets.token_urlsafe(24)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.log = log_dir / "serve.log"
        env = {**os.environ, "LEADLINK_API_KEYS": self.api_key, "LEADLINK_BENCH_ENDPOINTS": "1"}
        command = [str(LEADLINK), "serve", "--host", "127.0.0.1", "--port", str(port), "--workspace", str(workspace)]
        with open(self.log, "w") as handle:
            self.process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
        self.pid = self.process.pid

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)


def wait_until_ready(url: str, process: subprocess.Popen | None, log: Path | None) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"The server exited with status {process.returncode}:\n{log.read_text() if log else ''}")
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"The server at {url} was not ready within {STARTUP_SECONDS} s.")


def rss_mib(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        return round(psutil.Process(pid).memory_info().rss / 2**20, 1)
    except psutil.Error:
        return None


async def run_phase(url: str, path: str, bodies: list[bytes], headers: dict, args: argparse.Namespace, pid: int | None) -> PhaseResult:
    """Warm up, then send requests for ``args.duration`` seconds and collect their latencies."""
    async with httpx.AsyncClient(
        base_url=url,
        headers={**headers, "content-type": "application/json"},
        timeout=120,
        limits=httpx.Limits(max_connections=args.connections, max_keepalive_connections=args.connections),
    ) as client:
        if args.warmup:
            await _send_for(client, path, bodies, args, args.warmup, PhaseResult(path, args.warmup))

        result = PhaseResult(path, args.duration, rss_start_mib=rss_mib(pid))
        peak = [result.rss_start_mib or 0.0]
        sampler = asyncio.create_task(_sample_rss(pid, peak))
        started = time.perf_counter()
        await _send_for(client, path, bodies, args, args.duration, result)
        result.seconds = time.perf_counter() - started
        sampler.cancel()
        result.rss_end_mib = rss_mib(pid)
        result.rss_max_mib = max(peak[0], result.rss_end_mib or 0.0) if pid is not None else None
        return result


async def _send_for(client: httpx.AsyncClient, path: str, bodies: list[bytes], args, seconds: float, result: PhaseResult) -> None:
    start = time.perf_counter()
    end = start + seconds
    counter = iter(range(10**12))

    async def connection() -> None:
        while True:
            index = next(counter)
            if args.rate:
                scheduled = start + index / args.rate
                if scheduled >= end:
                    return
                await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
                sent_at = scheduled
            else:
                sent_at = time.perf_counter()
                if sent_at >= end:
                    return
            try:
                response = await client.post(path, content=bodies[index % len(bodies)])
            except httpx.HTTPError as error:
                kind = type(error).__name__
                result.errors[kind] = result.errors.get(kind, 0) + 1
                continue
            if response.status_code == 200:
                result.latencies_ms.append((time.perf_counter() - sent_at) * 1000)
            else:
                kind = f"HTTP {response.status_code}"
                result.errors[kind] = result.errors.get(kind, 0) + 1

    await asyncio.gather(*(connection() for _ in range(args.connections)))


async def _sample_rss(pid: int | None, peak: list[float]) -> None:
    while pid is not None:
        value = rss_mib(pid)
        if value is not None:
            peak[0] = max(peak[0], value)
        await asyncio.sleep(1.0)


def print_report(results: list[PhaseResult], args: argparse.Namespace) -> dict:
    """Print one row per phase and the ratios, and return them as a dictionary."""
    mode = f"scheduled at {args.rate:g} requests/s" if args.rate else "closed loop"
    print(f"\n{args.connections} connections, {args.duration:g} s per phase after {args.warmup:g} s warm-up, {mode}, {os.cpu_count()} CPUs")
    header = f"{'route':<20} {'requests':>9} {'errors':>7} {'req/s':>8} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9} {'RSS start':>10} {'RSS end':>9} {'RSS max':>9}"
    print(header)
    summaries = [result.summary() for result in results]
    for row in summaries:
        print(
            f"{row['path']:<20} {row['requests']:>9,} {sum(row['errors'].values()):>7,} {row['throughput_per_s'] or 0:>8.1f} "
            f"{row['p50_ms']:>9.2f} {row['p95_ms']:>9.2f} {row['p99_ms']:>9.2f} "
            f"{_mib(row['rss_start_mib']):>10} {_mib(row['rss_end_mib']):>9} {_mib(row['rss_max_mib']):>9}"
        )
    for row in summaries:
        if row["errors"]:
            print(f"errors on {row['path']}: {row['errors']}")

    score, baseline = summaries
    ratios = {
        "p50": _ratio(score["p50_ms"], baseline["p50_ms"]),
        "p95": _ratio(score["p95_ms"], baseline["p95_ms"]),
        "p99": _ratio(score["p99_ms"], baseline["p99_ms"]),
        "throughput": _ratio(baseline["throughput_per_s"], score["throughput_per_s"]),
    }
    print(
        f"\n{SCORE_PATH} latency divided by the bare-booster baseline's: {ratios['p50']} at p50, {ratios['p95']} at p95, "
        f"{ratios['p99']} at p99. Baseline throughput divided by {SCORE_PATH} throughput: {ratios['throughput']}."
    )
    if score["rss_start_mib"] is not None and score["rss_end_mib"] is not None:
        growth = score["rss_end_mib"] - score["rss_start_mib"]
        print(f"Server RSS during the {SCORE_PATH} phase: {score['rss_start_mib']:.1f} -> {score['rss_end_mib']:.1f} MiB ({growth:+.1f} MiB).")
    return {"phases": summaries, "ratios": ratios}


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} MiB"


def _ratio(numerator, denominator) -> float | None:
    if not numerator or not denominator or not math.isfinite(numerator) or not math.isfinite(denominator):
        return None
    return round(numerator / denominator, 1)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bodies = request_bodies(args.workspace, args.contacts, args.seed)
    print(f"{len(bodies)} request bodies from {args.workspace}, median {int(np.median([len(b) for b in bodies])):,} bytes")

    with tempfile.TemporaryDirectory(prefix="leadlink-http-load-") as folder:
        server = None
        if args.url is None:
            server = Server(args.workspace, Path(folder))
            url, pid, api_key = server.url, server.pid, server.api_key
        else:
            url, pid = args.url.rstrip("/"), args.server_pid
            api_key = args.api_key or os.environ.get("LEADLINK_API_KEYS", "").split(",")[0].strip() or None
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        try:
            wait_until_ready(url, server.process if server else None, server.log if server else None)
            check = httpx.post(f"{url}{BASELINE_PATH}", content=bodies[0], headers={**headers, "content-type": "application/json"}, timeout=60)
            if check.status_code != 200:
                raise SystemExit(f"{BASELINE_PATH} returned {check.status_code} ({check.text}). Start the server with LEADLINK_BENCH_ENDPOINTS=1.")
            results = [asyncio.run(run_phase(url, path, bodies, headers, args, pid)) for path in (SCORE_PATH, BASELINE_PATH)]
        finally:
            if server is not None:
                server.stop()

    record = print_report(results, args)
    record.update(
        {
            "measured_at": pd.Timestamp.now(tz="UTC").isoformat(),
            "cpus": os.cpu_count(),
            "settings": {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()},
            "bodies": len(bodies),
        }
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2))
    print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
