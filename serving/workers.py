"""Run the HTTP service in several worker processes that share one loaded users index.

``leadlink serve --workers N`` loads the model and the users index once, in
the parent process, binds the listening sockets and then forks N workers.
The workers inherit the loaded index as copy-on-write memory, and each runs
its own uvicorn server. The parent only supervises: it starts a new worker
when one dies, and on SIGTERM or SIGINT it sends every worker SIGTERM, waits
for them and exits.

On Linux every worker gets its own listening socket on the port
(SO_REUSEPORT), and the kernel spreads new connections over them by a hash
of the client's address and port. With one shared socket, the first worker
to wake accepted a whole burst of connections (all 16 of a load test, in one
of three runs of ``benchmarks/http_load.py``), and keep-alive clients then
stayed on that worker. Other systems share one socket between the workers.

Forking a loaded process has four constraints, which this module handles:

- GNU OpenMP (used by LightGBM) keeps a thread pool that does not survive
  fork. In a standalone script with LightGBM 4.7 and libgomp, a forked
  child's first multi-threaded ``predict`` never returned once the parent
  had loaded a booster. The HTTP paths mostly predict with one thread, but
  one with the default thread count (a batch of 10,000 rows or more) could
  hang a worker, so ``prepare_worker_environment`` sets
  ``OMP_NUM_THREADS=1`` before LightGBM is loaded. The workers supply the
  parallelism.
- Python threads do not survive fork either, so the parent starts none.
  Each worker starts its own model loader thread, which polls the registry,
  when its application starts.
- prometheus_client chooses between in-process and shared-file metrics when
  it is imported, so the shared metrics folder is set before that.
- Connections to the MLflow registry that the parent opened must not be
  shared: SQL stores get no connection pool, and each worker drops the HTTP
  sessions it inherited.

The port opens only once the model and the index are loaded, unlike a single
worker, which opens it at once and reports loading on ``/readyz``.
"""

from __future__ import annotations

import atexit
import collections
import gc
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

import uvicorn

from leadlink.errors import LeadlinkError

logger = logging.getLogger(__name__)

# log_config=None keeps leadlink's JSON log handlers. The access log comes
# from leadlink's own middleware, which leaves out personal data. uvicorn
# picks uvloop and httptools when they are installed, else asyncio and h11.
UVICORN_OPTIONS = {"log_level": "warning", "log_config": None, "access_log": False, "server_header": False}

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# Seconds the workers get to finish requests in flight after SIGTERM before
# they are killed.
STOP_TIMEOUT_SECONDS = 30.0
# Seconds between the supervisor's checks for exited workers and signals.
SUPERVISE_INTERVAL_SECONDS = 0.2
# More worker restarts than this within the window stop the service, because
# a worker that fails at start would fail again every time. Only workers that
# die within STARTUP_SECONDS of their start count: one killed after serving
# (by the OOM killer, say) is replaced however often it happens.
MAX_RESTARTS = 5
RESTART_WINDOW_SECONDS = 60.0
STARTUP_SECONDS = 10.0
# prometheus_client reads this variable once, when it is first imported, to
# choose between in-process values and memory-mapped files.
MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Modules that must not be imported before the environment is set; see the module docstring.
_FORK_SENSITIVE_MODULES = ("lightgbm", "prometheus_client")


def prepare_worker_environment() -> Path:
    """Set the environment variables that forked workers need and return the new shared metrics folder.

    Call this before anything imports LightGBM or prometheus_client. Raises
    RuntimeError when one of them is already imported, because the settings
    would then have no effect.
    """
    imported = [name for name in _FORK_SENSITIVE_MODULES if name in sys.modules]
    if imported:
        raise RuntimeError(f"prepare_worker_environment must run before {', '.join(imported)} is imported.")
    if not hasattr(os, "fork"):
        raise LeadlinkError("--workers above 1 needs os.fork, which this platform lacks; run one worker per process instead.")

    previous = os.environ.get("OMP_NUM_THREADS")
    if previous not in (None, "1"):
        logger.info("Setting OMP_NUM_THREADS to 1 instead of %s, because OpenMP thread pools do not survive fork.", previous)
    os.environ["OMP_NUM_THREADS"] = "1"

    # Without a pool, each registry query opens its own database connection.
    # A pooled connection opened by the parent would be used by several workers at once.
    os.environ.setdefault("MLFLOW_SQLALCHEMYSTORE_POOLCLASS", "NullPool")

    metrics_dir = Path(tempfile.mkdtemp(prefix="leadlink-metrics-"))
    os.environ[MULTIPROCESS_DIR_ENV] = str(metrics_dir)
    # Workers end with os._exit, so only the parent runs this.
    atexit.register(shutil.rmtree, metrics_dir, ignore_errors=True)
    return metrics_dir


def serve_workers(app, host: str, port: int, workers: int, metrics_dir: Path) -> int:
    """Preload the model, fork ``workers`` uvicorn servers on the port and supervise them.

    Returns the exit status: 0 after a stop signal, 1 when workers kept
    exiting on their own. ``app`` must come from ``create_app`` with
    ``metrics_dir`` from ``prepare_worker_environment``.
    """
    # SIGTERM's default action would skip the atexit clean-up of the metrics
    # folder while the model loads; exiting through SystemExit runs it.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    # The port is taken before the long load, so that a busy port fails at once.
    listeners = bind_listeners(host, port, workers)
    if not app.state.manager.preload():
        logger.warning("Loading the model before forking failed; each worker retries on its own and builds its own users index.")
    config = uvicorn.Config(app, host=host, port=port, **UVICORN_OPTIONS)
    _warn_about_threads()
    # Objects created so far are never collected, so the garbage collector
    # does not write to their pages, which would copy them in every worker.
    gc.freeze()
    supervisor = Supervisor(config, listeners, workers, metrics_dir)
    logger.info("Serving on %s port %d with %d worker processes.", host, port, workers)
    return supervisor.run()


def bind_listeners(host: str, port: int, count: int) -> list[socket.socket]:
    """Bind ``count`` listening sockets to one port with SO_REUSEPORT on Linux, else one socket for all workers.

    Raises LeadlinkError when the address cannot be bound. The sockets start
    listening when uvicorn serves on them.
    """
    # Only Linux spreads connections over SO_REUSEPORT sockets; other systems
    # may give them all to one socket.
    reuse_port = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listeners: list[socket.socket] = []
    try:
        if reuse_port:
            # SO_REUSEPORT would also let these sockets join another service's
            # on the same port and split its traffic silently. A plain socket
            # binds only to a free port, so it checks that first.
            port = _free_port(family, host, port)
        for _ in range(count if reuse_port else 1):
            listener = socket.socket(family, socket.SOCK_STREAM)
            listeners.append(listener)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            listener.bind((host, port))
            # With port 0 the first socket gets a free port, and the others must take the same one.
            port = listener.getsockname()[1]
    except OSError as error:
        for listener in listeners:
            listener.close()
        raise LeadlinkError(f"Could not listen on {host} port {port}: {error.strerror or error}.") from None
    return listeners


def _exit_on_signal(signum: int, _frame) -> None:
    raise SystemExit(128 + signum)


def _free_port(family: int, host: str, port: int) -> int:
    """Return ``port`` (or a free one for port 0) after checking that no socket is bound to it; raise OSError if one is."""
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
        return probe.getsockname()[1]


def _warn_about_threads() -> None:
    """Log Python threads that would be lost in the workers, which can leave locks held there."""
    import threading

    others = [thread.name for thread in threading.enumerate() if thread is not threading.main_thread()]
    if others:
        logger.warning("Forking workers while other threads run (%s); the workers get no copy of them.", ", ".join(others))


class Supervisor:
    """The parent process's loop: fork the workers, replace those that exit, stop them all on a signal."""

    def __init__(self, config: uvicorn.Config, listeners: list[socket.socket], workers: int, metrics_dir: Path):
        self.config = config
        # One socket per worker, or one shared by all (see bind_listeners).
        # The parent keeps them open, so connections that reach the socket of
        # a worker that died wait for its replacement.
        self.listeners = listeners
        self.workers = workers
        self.metrics_dir = metrics_dir
        self.children: dict[int, int] = {}  # pid -> worker number
        self.started_at: dict[int, float] = {}  # pid -> time.monotonic() at fork
        self.exit_status = 0
        self._signals: list[int] = []
        self._stop_deadline: float | None = None
        self._restarts: collections.deque[float] = collections.deque()

    def run(self) -> int:
        """Start the workers and supervise them until all have exited; return the exit status."""
        from prometheus_client.multiprocess import mark_process_dead

        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)
        for number in range(self.workers):
            self._fork(number)
        # The parent set the model info gauge while preloading; only workers serve.
        mark_process_dead(os.getpid(), str(self.metrics_dir))

        while self.children:
            self._handle_signals()
            self._reap()
            if self._stop_deadline is not None and time.monotonic() > self._stop_deadline:
                self._kill_all(f"still running {STOP_TIMEOUT_SECONDS:g} s after SIGTERM")
            time.sleep(SUPERVISE_INTERVAL_SECONDS)
        for listener in self.listeners:
            listener.close()
        logger.info("All workers have stopped.")
        return self.exit_status

    def _on_signal(self, signum: int, _frame) -> None:
        # Only record the signal here; the loop acts on it between checks.
        self._signals.append(signum)

    def _handle_signals(self) -> None:
        while self._signals:
            signum = self._signals.pop(0)
            if self._stop_deadline is None:
                logger.info("Received %s; stopping %d workers.", signal.Signals(signum).name, len(self.children))
                self._stop_all()
            else:
                self._kill_all(f"a second {signal.Signals(signum).name} arrived")

    def _stop_all(self) -> None:
        self._stop_deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for pid in self.children:
            _send(pid, signal.SIGTERM)

    def _kill_all(self, reason: str) -> None:
        logger.warning("Killing %d workers: %s.", len(self.children), reason)
        for pid in self.children:
            _send(pid, signal.SIGKILL)
        self._stop_deadline = float("inf")

    def _reap(self) -> None:
        """Collect exited workers and replace them unless the service is stopping."""
        from prometheus_client.multiprocess import mark_process_dead

        while self.children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return
            number = self.children.pop(pid)
            lived = time.monotonic() - self.started_at.pop(pid)
            mark_process_dead(pid, str(self.metrics_dir))
            outcome = _describe_exit(os.waitstatus_to_exitcode(status))
            if self._stop_deadline is not None:
                logger.info("Worker %d (pid %d) stopped: %s.", number, pid, outcome)
            elif lived >= STARTUP_SECONDS or self._may_restart():
                logger.error("Worker %d (pid %d) exited unexpectedly (%s); starting a new one.", number, pid, outcome)
                self._fork(number)
            else:
                logger.error(
                    "Worker %d (pid %d) exited unexpectedly (%s) after %d restarts of workers that died within %g s of starting, "
                    "all within %g s; stopping the service.",
                    number, pid, outcome, MAX_RESTARTS, STARTUP_SECONDS, RESTART_WINDOW_SECONDS,
                )
                self.exit_status = 1
                self._stop_all()

    def _may_restart(self) -> bool:
        now = time.monotonic()
        while self._restarts and now - self._restarts[0] > RESTART_WINDOW_SECONDS:
            self._restarts.popleft()
        if len(self._restarts) >= MAX_RESTARTS:
            return False
        self._restarts.append(now)
        return True

    def _fork(self, number: int) -> None:
        # Signals stay blocked across fork, so a stop signal sent to a new
        # worker waits until it has its own handlers instead of the parent's.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                own = self.listeners[number % len(self.listeners)]
                for listener in self.listeners:
                    if listener is not own:
                        listener.close()
                status = _run_worker(self.config, own)
            finally:
                # _exit skips the parent's atexit handlers and finalizers,
                # which must not run twice (one deletes the metrics folder).
                os._exit(status)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        self.children[pid] = number
        self.started_at[pid] = time.monotonic()
        logger.info("Started worker %d (pid %d).", number, pid)


def _run_worker(config: uvicorn.Config, listener) -> int:
    """Serve on the inherited socket until a stop signal; return the exit status."""
    # uvicorn installs its own handlers for a graceful shutdown, and after
    # it re-raises the signal, which then ends the process with the default action.
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    _drop_inherited_sessions()
    try:
        server = uvicorn.Server(config)
        server.run(sockets=[listener])
    except Exception:  # noqa: BLE001 - log why the worker died before it exits
        logger.exception("Worker pid %d failed.", os.getpid())
        return 1
    return 0 if server.started else 1


def _drop_inherited_sessions() -> None:
    """Forget the parent's HTTP sessions to an MLflow tracking server, so workers never write to one socket together."""
    from mlflow.utils import request_utils

    # NOTE: MLflow 3 caches its requests sessions in this private function and
    # offers no public reset after fork. Without it, workers would share the
    # parent's keep-alive connections. Closing the copies in a worker leaves
    # the parent's sockets open.
    cached = getattr(request_utils, "_cached_get_request_session", None)
    if cached is not None:
        cached.cache_clear()


def _send(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass  # exited already; the next reap collects it


def _describe_exit(code: int) -> str:
    if code < 0:
        return f"signal {-code} ({signal.strsignal(-code)})"
    return f"exit status {code}"
