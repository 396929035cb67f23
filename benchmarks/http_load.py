"""HTTP load benchmark of the scoring service, on loopback only.

Run from the repository root with the project environment, in the folder whose
``mlflow.db`` contains a trained model (or with ``MLFLOW_TRACKING_URI`` set,
or with ``--model`` naming a model folder):

    .venv/bin/python benchmarks/http_load.py --workspace DIR --duration 20
    .venv/bin/python benchmarks/http_load.py --workspace DIR --workers 2 --rates 0,100,200,300
    .venv/bin/python benchmarks/http_load.py --url http://127.0.0.1:8000 --server-pid PID \\
        --workspace DIR --api-key KEY

Without ``--url`` the script starts ``leadlink serve --workers N`` on a free
loopback port with ``LEADLINK_BENCH_ENDPOINTS=1`` and a random API key, and
stops it at the end. A server given with ``--url`` must have been started
with that variable.

Two routes are measured with the same request bodies (contacts sampled from
the workspace with their events):

1. ``POST /v1/score``: validation, linkage, features, model and reasons.
2. ``POST /v1/bench/booster``: the baseline. The same framework, middleware
   and validation, then one call of the bare LightGBM booster on a prepared row.

``--rates`` lists the load levels, each run for both routes, one after the
other, after a warm-up. A rate of 0 is a closed loop: each connection sends
its next request when the previous response arrives. A positive rate sends
that many requests per second over all connections on a fixed schedule, and a
request's latency counts from its scheduled time, so a server that falls
behind shows its queueing delay instead of hiding it.

Each phase prints p50, p95 and p99 latency, the achieved rate, errors, the CPU
seconds per request of the server and of this client, and the server's memory:
resident (RSS) summed over its processes, and proportional (PSS), which
counts a page shared by N workers as 1/N in each and so adds up correctly.
The summary gives the closed-loop throughput of ``/v1/score`` as a fraction
of the baseline's, and for each route the highest offered rate whose p99
stays under ``--p99-target-ms``.

The client writes prebuilt HTTP/1.1 requests on keep-alive connections with
asyncio streams (and uvloop when installed), because a full HTTP client costs
more CPU per request than the server's baseline route, and the client runs on
the same cores as the server. It checks each response's status and that its
body names the contact that was sent. A JSON record goes to
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

try:
    import uvloop
except ImportError:  # the client then runs on asyncio's own loop
    uvloop = None

OUT = Path(__file__).resolve().parent / "out"
LEADLINK = Path(sys.executable).with_name("leadlink")
SCORE_PATH = "/v1/score"
BASELINE_PATH = "/v1/bench/booster"
ROUTES = (SCORE_PATH, BASELINE_PATH)
CONTACT_FIELDS = (
    "contact_id", "first_name", "last_name", "email", "personal_email", "phone", "linkedin_url", "job_title",
    "company_name", "company_domain", "industry", "employee_count", "annual_revenue", "country", "city", "created_at",
)
MAX_EVENTS_PER_BODY = 200
STARTUP_SECONDS = 600
REQUEST_TIMEOUT_SECONDS = 60.0
# A server that kept up delivers at least this share of the offered rate.
KEPT_UP_SHARE = 0.95


@dataclass
class PhaseResult:
    """Latencies, errors, CPU time and memory of one route at one load level."""

    path: str
    rate: float
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    server_cpu_seconds: float | None = None
    client_cpu_seconds: float | None = None
    rss_start_mib: float | None = None
    rss_end_mib: float | None = None
    rss_max_mib: float | None = None
    pss_end_mib: float | None = None

    @property
    def requests(self) -> int:
        return len(self.latencies_ms) + sum(self.errors.values())

    def add_error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else math.nan

    def summary(self) -> dict:
        ok = len(self.latencies_ms)
        return {
            "path": self.path,
            "offered_per_s": self.rate or None,
            "requests": self.requests,
            "ok": ok,
            "errors": self.errors,
            "seconds": round(self.seconds, 2),
            "throughput_per_s": round(ok / self.seconds, 2) if self.seconds else None,
            "p50_ms": round(self.percentile(50), 2),
            "p95_ms": round(self.percentile(95), 2),
            "p99_ms": round(self.percentile(99), 2),
            "server_cpu_ms_per_request": _per_request_ms(self.server_cpu_seconds, self.requests),
            "client_cpu_ms_per_request": _per_request_ms(self.client_cpu_seconds, self.requests),
            "rss_start_mib": self.rss_start_mib,
            "rss_end_mib": self.rss_end_mib,
            "rss_max_mib": self.rss_max_mib,
            "pss_end_mib": self.pss_end_mib,
        }


def _per_request_ms(seconds: float | None, requests: int) -> float | None:
    return round(seconds * 1000 / requests, 3) if seconds is not None and requests else None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workspace", type=Path, required=True, help="Workspace folder whose contacts and events become request bodies.")
    parser.add_argument("--url", help="Base URL of a running server on loopback (default: start one).")
    parser.add_argument("--server-pid", type=int, help="Process id of the server given with --url, to read its memory and CPU time.")
    parser.add_argument("--api-key", help="API key for the server given with --url (default: LEADLINK_API_KEYS' first key, if any).")
    parser.add_argument("--model", help="Model URI or folder for the server this script starts (default: the registry's champion).")
    parser.add_argument("--workers", type=int, default=1, help="Worker processes of the server this script starts (default: 1).")
    parser.add_argument("--duration", type=float, default=20.0, help="Measured seconds per phase (default: 20).")
    parser.add_argument("--warmup", type=float, default=3.0, help="Unmeasured seconds before each phase (default: 3).")
    parser.add_argument(
        "--rates", default="0", help="Comma-separated requests per second over all connections, one phase pair each; 0 is a closed loop (default: 0)."
    )
    parser.add_argument("--p99-target-ms", type=float, default=10.0, help="p99 latency target for the rate summary, in ms (default: 10).")
    parser.add_argument("--connections", type=int, default=16, help="Concurrent connections (default: 16).")
    parser.add_argument("--contacts", type=int, default=200, help="Number of distinct request bodies sampled from the workspace (default: 200).")
    parser.add_argument("--seed", type=int, default=0, help="Seed for sampling the contacts.")
    parser.add_argument("--out", type=Path, default=OUT / "http_load.json", help="File for the JSON record.")
    args = parser.parse_args(argv)
    try:
        args.rates = [float(value) for value in args.rates.split(",") if value.strip()]
    except ValueError:
        parser.error(f"--rates {args.rates!r} is not a comma-separated list of numbers.")
    if not args.rates or any(rate < 0 or not math.isfinite(rate) for rate in args.rates):
        parser.error("--rates needs at least one rate, and every rate must be 0 (closed loop) or positive.")
    if args.duration <= 0 or args.warmup < 0 or args.connections < 1 or args.contacts < 1 or args.workers < 1:
        parser.error("--duration, --connections, --contacts and --workers must be positive; --warmup must not be negative.")
    if args.url is not None:
        host = urlsplit(args.url).hostname or ""
        if not is_loopback_host(host):
            parser.error(f"--url {args.url} is not a loopback address; this benchmark only sends load to 127.0.0.1, ::1 or localhost.")
    return args


@dataclass(frozen=True)
class Body:
    """One request body and the contact id its response must name."""

    content: bytes
    contact_id: str


def request_bodies(workspace: Path, count: int, seed: int) -> list[Body]:
    """Sample contacts with their events from the workspace and encode them as JSON request bodies."""
    contacts = _read_table(workspace, "contacts")
    events = _read_table(workspace, "events")
    sample = contacts.sample(n=min(count, len(contacts)), random_state=seed)
    as_of = pd.to_datetime(events["occurred_at"], utc=True).max() if len(events) else pd.Timestamp.now(tz="UTC")
    sampled_events = events[events["contact_id"].isin(sample["contact_id"])] if len(events) else events
    by_contact = {key: group for key, group in sampled_events.groupby("contact_id")} if len(sampled_events) else {}

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
        bodies.append(Body(json.dumps(contact, ensure_ascii=False).encode("utf-8"), contact["contact_id"]))
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

    def __init__(self, workspace: Path, log_dir: Path, workers: int, model: str | None):
        self.api_key = secrets.token_urlsafe(24)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.log = log_dir / "serve.log"
        env = {**os.environ, "LEADLINK_API_KEYS": self.api_key, "LEADLINK_BENCH_ENDPOINTS": "1"}
        command = [str(LEADLINK), "serve", "--host", "127.0.0.1", "--port", str(port), "--workspace", str(workspace), "--workers", str(workers)]
        if model is not None:
            command += ["--model", model]
        with open(self.log, "w") as handle:
            self.process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
        self.pid = self.process.pid

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
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


class ServerProcesses:
    """Memory and CPU time of the server process and its workers."""

    def __init__(self, pid: int | None):
        self.pid = pid

    def _processes(self) -> list[psutil.Process]:
        if self.pid is None:
            return []
        try:
            parent = psutil.Process(self.pid)
            return [parent, *parent.children(recursive=True)]
        except psutil.Error:
            return []

    def rss_mib(self) -> float | None:
        return self._sum(lambda process: process.memory_info().rss)

    def pss_mib(self) -> float | None:
        # PSS is read from /proc/PID/smaps_rollup, which costs more than RSS,
        # so it is read once per phase.
        return self._sum(lambda process: process.memory_full_info().pss)

    def cpu_seconds(self) -> float | None:
        if self.pid is None:
            return None
        total = 0.0
        for process in self._processes():
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return total

    def _sum(self, read) -> float | None:
        if self.pid is None:
            return None
        total = 0
        for process in self._processes():
            try:
                total += read(process)
            except (psutil.Error, AttributeError):
                continue
        return round(total / 2**20, 1)


class Connection:
    """One keep-alive HTTP/1.1 connection that sends prebuilt requests and reads their responses."""

    def __init__(self, host: str, port: int):
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """Send one request and return the response's status code and body."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status, length, chunked, closes = _parse_head(head)
        body = await (self._read_chunked() if chunked else self.reader.readexactly(length))
        if closes:
            self.close()
        return status, body

    async def _read_chunked(self) -> bytes:
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await self.reader.readexactly(size + 2)
            if size == 0:
                return b"".join(parts)
            parts.append(chunk[:-2])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _parse_head(head: bytes) -> tuple[int, int, bool, bool]:
    """Return the status code, Content-Length, whether the body is chunked and whether the server closes the connection."""
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, chunked, closes = 0, False, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            closes = b"close" in value.lower()
    return status, length, chunked, closes


def prebuilt_requests(url: str, path: str, bodies: list[Body], headers: dict[str, str]) -> list[bytes]:
    """Encode one complete HTTP/1.1 POST request per body."""
    parts = urlsplit(url)
    lines = [f"POST {path} HTTP/1.1", f"Host: {parts.netloc}", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    head = "\r\n".join(lines)
    return [f"{head}\r\nContent-Length: {len(body.content)}\r\n\r\n".encode("latin-1") + body.content for body in bodies]


async def run_phase(url: str, path: str, bodies: list[Body], headers: dict, rate: float, args, server: ServerProcesses) -> PhaseResult:
    """Warm up, then send requests for ``args.duration`` seconds and collect their latencies."""
    requests = prebuilt_requests(url, path, bodies, headers)
    parts = urlsplit(url)
    connections = [Connection(parts.hostname, parts.port or 80) for _ in range(args.connections)]
    try:
        if args.warmup:
            await _send_for(connections, requests, bodies, rate, args.warmup, PhaseResult(path, rate, args.warmup))

        result = PhaseResult(path, rate, args.duration, rss_start_mib=server.rss_mib())
        peak = [result.rss_start_mib or 0.0]
        sampler = asyncio.create_task(_sample_rss(server, peak))
        server_cpu, client_cpu = server.cpu_seconds(), time.process_time()
        started = time.perf_counter()
        await _send_for(connections, requests, bodies, rate, args.duration, result)
        result.seconds = time.perf_counter() - started
        result.client_cpu_seconds = time.process_time() - client_cpu
        if server_cpu is not None:
            result.server_cpu_seconds = server.cpu_seconds() - server_cpu
        sampler.cancel()
        result.rss_end_mib = server.rss_mib()
        result.rss_max_mib = max(peak[0], result.rss_end_mib or 0.0) if server.pid is not None else None
        result.pss_end_mib = server.pss_mib()
        return result
    finally:
        for connection in connections:
            connection.close()


async def _send_for(connections: list[Connection], requests: list[bytes], bodies: list[Body], rate: float, seconds: float, result: PhaseResult) -> None:
    start = time.perf_counter()
    end = start + seconds
    counter = iter(range(10**12))

    async def drive(connection: Connection) -> None:
        while True:
            index = next(counter)
            if rate:
                scheduled = start + index / rate
                if scheduled >= end:
                    return
                await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
                sent_at = scheduled
            else:
                sent_at = time.perf_counter()
                if sent_at >= end:
                    return
            body = bodies[index % len(bodies)]
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
                    status, content = await connection.send(requests[index % len(requests)])
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError) as error:
                # The connection's state is unknown after a failure, so the next request opens a new one.
                connection.close()
                result.add_error(type(error).__name__)
                continue
            if status != 200:
                result.add_error(f"HTTP {status}")
            elif not _names_contact(content, body.contact_id):
                result.add_error("response for another contact")
            else:
                result.latencies_ms.append((time.perf_counter() - sent_at) * 1000)

    await asyncio.gather(*(drive(connection) for connection in connections))


def _names_contact(content: bytes, contact_id: str) -> bool:
    try:
        return json.loads(content).get("contact_id") == contact_id
    except (ValueError, AttributeError):
        return False


async def _sample_rss(server: ServerProcesses, peak: list[float]) -> None:
    while server.pid is not None:
        value = server.rss_mib()
        if value is not None:
            peak[0] = max(peak[0], value)
        await asyncio.sleep(1.0)


def print_report(results: list[PhaseResult], args: argparse.Namespace) -> dict:
    """Print one row per phase, the closed-loop throughput ratio and the highest rates within the p99 target; return them."""
    client_loop = "uvloop" if uvloop is not None else "asyncio"
    print(
        f"\n{args.connections} connections, {args.duration:g} s per phase after {args.warmup:g} s warm-up, "
        f"server workers {args.workers if args.url is None else 'as started'}, {os.cpu_count()} CPUs, client loop {client_loop}"
    )
    header = (
        f"{'route':<19} {'offered':>8} {'req/s':>8} {'requests':>9} {'errors':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
        f"{'srv CPU':>8} {'cli CPU':>8} {'RSS max':>9} {'PSS end':>9}"
    )
    print(header)
    summaries = [result.summary() for result in results]
    for row in summaries:
        offered = "closed" if row["offered_per_s"] is None else f"{row['offered_per_s']:g}"
        print(
            f"{row['path']:<19} {offered:>8} {row['throughput_per_s'] or 0:>8.1f} {row['requests']:>9,} {sum(row['errors'].values()):>7,} "
            f"{row['p50_ms']:>8.2f} {row['p95_ms']:>8.2f} {row['p99_ms']:>8.2f} "
            f"{_ms(row['server_cpu_ms_per_request']):>8} {_ms(row['client_cpu_ms_per_request']):>8} "
            f"{_mib(row['rss_max_mib']):>9} {_mib(row['pss_end_mib']):>9}"
        )
    print("(srv CPU and cli CPU: CPU milliseconds per request of the server's processes and of this client)")
    for row in summaries:
        if row["errors"]:
            print(f"errors on {row['path']} at {row['offered_per_s'] or 'closed loop'}: {row['errors']}")

    record = {"phases": summaries}
    closed = {row["path"]: row for row in summaries if row["offered_per_s"] is None}
    if SCORE_PATH in closed and BASELINE_PATH in closed:
        ratio = _ratio(closed[SCORE_PATH]["throughput_per_s"], closed[BASELINE_PATH]["throughput_per_s"])
        record["closed_loop_throughput_ratio"] = ratio
        print(f"\nClosed loop: {SCORE_PATH} throughput is {ratio} of the baseline's.")

    record["max_rate_within_p99_target"] = {}
    for path in ROUTES:
        best = _max_rate_within_target(summaries, path, args.p99_target_ms)
        record["max_rate_within_p99_target"][path] = best
        within = f"{best:g} requests/s" if best is not None else "none of the rates"
        print(f"{path}: highest offered rate with p99 under {args.p99_target_ms:g} ms and no errors: {within}.")
    return record


def _max_rate_within_target(summaries: list[dict], path: str, target_ms: float) -> float | None:
    """Return the highest offered rate at which the route kept up, had no errors and met the p99 target."""
    passing = [
        row["offered_per_s"]
        for row in summaries
        if row["path"] == path
        and row["offered_per_s"] is not None
        and not row["errors"]
        and row["p99_ms"] < target_ms
        and (row["throughput_per_s"] or 0) >= KEPT_UP_SHARE * row["offered_per_s"]
    ]
    return max(passing) if passing else None


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} MiB"


def _ratio(numerator, denominator) -> float | None:
    if not numerator or not denominator or not math.isfinite(numerator) or not math.isfinite(denominator):
        return None
    return round(numerator / denominator, 2)


def run_phases(url: str, bodies: list[Body], headers: dict, args, server: ServerProcesses) -> list[PhaseResult]:
    """Run both routes at every rate, in the order given, on one event loop."""
    loop_factory = uvloop.new_event_loop if uvloop is not None else None
    results = []
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        for rate in args.rates:
            for path in ROUTES:
                result = runner.run(run_phase(url, path, bodies, headers, rate, args, server))
                row = result.summary()
                print(
                    f"  {path} at {'closed loop' if not rate else f'{rate:g}/s'}: {row['throughput_per_s']} req/s, "
                    f"p99 {row['p99_ms']} ms, errors {sum(row['errors'].values())}",
                    flush=True,
                )
                results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bodies = request_bodies(args.workspace, args.contacts, args.seed)
    print(f"{len(bodies)} request bodies from {args.workspace}, median {int(np.median([len(b.content) for b in bodies])):,} bytes")

    with tempfile.TemporaryDirectory(prefix="leadlink-http-load-") as folder:
        server = None
        if args.url is None:
            server = Server(args.workspace, Path(folder), args.workers, args.model)
            url, pid, api_key = server.url, server.pid, server.api_key
        else:
            url, pid = args.url.rstrip("/"), args.server_pid
            api_key = args.api_key or os.environ.get("LEADLINK_API_KEYS", "").split(",")[0].strip() or None
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        try:
            wait_until_ready(url, server.process if server else None, server.log if server else None)
            check = httpx.post(f"{url}{BASELINE_PATH}", content=bodies[0].content, headers={**headers, "content-type": "application/json"}, timeout=60)
            if check.status_code != 200:
                raise SystemExit(f"{BASELINE_PATH} returned {check.status_code} ({check.text}). Start the server with LEADLINK_BENCH_ENDPOINTS=1.")
            processes = ServerProcesses(pid)
            print(f"Server ready; RSS {processes.rss_mib()} MiB, PSS {processes.pss_mib()} MiB over its processes.", flush=True)
            results = run_phases(url, bodies, headers, args, processes)
        finally:
            if server is not None:
                server.stop()

    record = print_report(results, args)
    record.update(
        {
            "measured_at": pd.Timestamp.now(tz="UTC").isoformat(),
            "cpus": os.cpu_count(),
            "client_loop": "uvloop" if uvloop is not None else "asyncio",
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
