"""Load the model in the background and follow a registry alias to reload it.

The HTTP port opens at once. A background thread loads the model and the
users index, then polls the MLflow registry every ``interval`` seconds. When
the followed alias (``champion`` by default) points to another version, the
thread loads that version, builds a new ``ScoringService`` and replaces the
reference to the current one. Python assigns references atomically, and a
request reads the reference once, so requests in flight finish on the model
they started with and none is dropped.

With several worker processes, the parent loads the first model before it
forks them (``preload``), and each worker then polls the registry and
reloads on its own, so every worker builds its own index of a new version.

A failed load keeps the current model serving, logs the error and reports it
on ``/readyz``. The same version is retried with a doubling delay, capped at
``MAX_RETRY_SECONDS``, and at once when the alias moves again.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from leadlink.serving.metrics import ServiceMetrics
from leadlink.serving.model import load_model
from leadlink.serving.scoring import ScoringService, load_users
from leadlink.training import tracking

logger = logging.getLogger(__name__)

MIN_RETRY_SECONDS = 5.0
MAX_RETRY_SECONDS = 600.0


@dataclass(frozen=True)
class LoadFailure:
    """The last failed attempt to load a model version."""

    target: str
    error: str
    failed_at: datetime
    attempts: int

    def to_dict(self) -> dict:
        return {"target": self.target, "error": self.error, "failed_at": self.failed_at.isoformat(), "attempts": self.attempts}


def followed_alias(model_uri: str | None, model_name: str = tracking.DEFAULT_MODEL_NAME) -> tuple[str, str] | None:
    """Return the (model name, alias) to follow, or None when ``model_uri`` pins one model.

    Without a URI the champion of ``model_name`` is followed, and with
    ``models:/name@alias`` that alias. Version numbers, run URIs and folders
    are pinned.
    """
    if model_uri is None:
        return model_name, tracking.CHAMPION
    if model_uri.startswith("models:/") and "@" in model_uri:
        name, alias = model_uri.removeprefix("models:/").split("@", 1)
        return name, alias
    return None


class ModelManager:
    """The scoring service in use and the background thread that loads and reloads it."""

    def __init__(
        self,
        workspace: Path | None,
        model_uri: str | None,
        interval: float,
        metrics: ServiceMetrics,
        model_name: str = tracking.DEFAULT_MODEL_NAME,
    ):
        self.workspace = workspace
        self.model_uri = model_uri
        self.interval = interval
        self.metrics = metrics
        self.followed = followed_alias(model_uri, model_name)

        # Written only by the background thread, read by request threads.
        self.service: ScoringService | None = None
        self.startup_error: str | None = None
        self.last_failure: LoadFailure | None = None

        self._users: pd.DataFrame | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._retry_at = 0.0
        self._retry_delay = 0.0

    @property
    def reload_enabled(self) -> bool:
        return self.followed is not None and self.interval > 0

    def preload(self) -> bool:
        """Load the first model and the users index in the calling thread; return whether it worked.

        ``leadlink serve --workers N`` calls this in the parent process before
        forking, so the workers share the loaded index. A failure is recorded
        as in the background thread, which then retries in each worker.
        """
        target, alias = self._first_target()
        return self._try_load(target, alias)

    def start(self) -> None:
        """Start the background thread that loads the model, unless preloaded, and then polls the registry."""
        service = self.service
        if service is not None:
            # A model preloaded before a fork was recorded in the parent's
            # metrics; this records it for the worker that serves it.
            self.metrics.set_model(service.model.name or "", service.model.version or "", service.alias or "", service.model.run_id or "")
        self._thread = threading.Thread(target=self._run, name="leadlink-model-loader", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the background thread to stop and wait up to ``timeout`` seconds for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def readiness(self) -> tuple[bool, dict]:
        """Return whether a model serves, with the body that ``/readyz`` sends."""
        service = self.service
        if service is None:
            reason = "The model and users index are still loading."
            if self.startup_error is not None:
                reason = f"Loading the model failed: {self.startup_error}"
            return False, {"status": "unavailable", "reason": reason}

        reload = {"status": "ok" if self.reload_enabled else "off"}
        if self.last_failure is not None:
            reload = {"status": "failed", **self.last_failure.to_dict()}
        return True, {
            "status": "ready",
            "model_version": service.version,
            "users_indexed": len(service.users),
            "reload": reload,
        }

    def check_for_new_version(self) -> None:
        """Load the version the followed alias points to, if it is not the one served."""
        if self.followed is None or self.service is None:
            return
        name, alias = self.followed
        try:
            version = alias_version(name, alias)
        except MlflowException as error:
            self._record_failure(f"{name}@{alias}", f"Could not read alias {alias!r} of model {name!r}: {error}")
            return

        current = self.service
        if version is None or version == current.model.version:
            # Nothing to load, and a failure of another version no longer matters.
            self.last_failure = None
            return
        target = f"models:/{name}/{version}"
        if self.last_failure is not None and self.last_failure.target == target and time.monotonic() < self._retry_at:
            return
        self._try_load(target, alias)

    def _run(self) -> None:
        preloaded = self.service is not None
        self._load_first()
        if not self.reload_enabled:
            logger.info("Model reload is off: %s", "the model is pinned" if self.followed is None else "the poll interval is 0")
            return
        logger.info("Polling alias %s of model %s every %g s for a new version.", self.followed[1], self.followed[0], self.interval)
        # A worker forked from a preloaded parent may start long after that
        # load (a replacement for a dead worker), so it checks at once instead
        # of serving an older champion for a whole interval.
        if preloaded:
            self.check_for_new_version()
        while not self._stop.wait(self.interval):
            self.check_for_new_version()

    def _load_first(self) -> None:
        """Load the first model, retrying with a growing delay until it works or the service stops."""
        while self.service is None and not self._stop.is_set():
            target, alias = self._first_target()
            if self._try_load(target, alias):
                return
            self._stop.wait(self._retry_delay)

    def _first_target(self) -> tuple[str | None, str | None]:
        if self.followed is None:
            return self.model_uri, None
        name, alias = self.followed
        try:
            tracking.configure_mlflow()
            version = alias_version(name, alias)
        except MlflowException:
            version = None  # load_model reports the registry error with more context
        if version is not None:
            return f"models:/{name}/{version}", alias
        # Without the alias, load_model picks the newest version (with a warning)
        # when no URI was given, or names the missing alias.
        return self.model_uri, None

    def _try_load(self, target: str | None, alias: str | None) -> bool:
        started = time.perf_counter()
        try:
            service = self._build(target, alias)
        except Exception as error:  # noqa: BLE001 - any load error must keep the current model serving
            self._record_failure(target or "newest version", f"{type(error).__name__}: {error}")
            return False
        self._swap(service, time.perf_counter() - started)
        return True

    def _build(self, target: str | None, alias: str | None) -> ScoringService:
        model = load_model(target)
        # NOTE: the users table is read once, with the first model. A later
        # version trained on another workspace still links against it, unless
        # the service is restarted.
        if self._users is None:
            folder, self._users = load_users(self.workspace, model)
            logger.info("Loaded %s users from workspace %s.", f"{len(self._users):,}", folder)
        return ScoringService(model, self._users, alias=alias, trained_at=run_start_time(model.run_id))

    def _swap(self, service: ScoringService, seconds: float) -> None:
        previous = self.service
        self.service = service
        self.startup_error = None
        self.last_failure = None
        self._retry_delay = 0.0
        self.metrics.set_model(service.model.name or "", service.model.version or "", service.alias or "", service.model.run_id or "")
        if previous is None:
            logger.info("Serving model %s (alias %s), loaded in %.1f s.", service.version, service.alias or "none", seconds)
        else:
            self.metrics.reloads.inc()
            logger.info("Now serving model %s (alias %s) in place of %s, loaded in %.1f s.", service.version, service.alias, previous.version, seconds)

    def _record_failure(self, target: str, message: str) -> None:
        self.metrics.reload_failures.inc()
        previous = self.last_failure
        attempts = previous.attempts + 1 if previous is not None and previous.target == target else 1
        self.last_failure = LoadFailure(target, message, datetime.now(timezone.utc), attempts)
        if self.service is None:
            self.startup_error = message

        base = max(self.interval, MIN_RETRY_SECONDS)
        self._retry_delay = min(base * 2 ** (attempts - 1), MAX_RETRY_SECONDS)
        self._retry_at = time.monotonic() + self._retry_delay
        # A registry that stays down fails every poll, so only attempts 1, 2, 4, 8, ... are logged.
        if attempts & (attempts - 1) == 0:
            serving = f"still serving {self.service.version}" if self.service is not None else "no model is serving"
            logger.error(
                "Loading model %s failed (attempt %d; %s; next try in %.0f s): %s", target, attempts, serving, self._retry_delay, message
            )


def alias_version(model_name: str, alias: str) -> str | None:
    """Return the version an alias of a registered model points to, or None when it is not set.

    Raises MlflowException when the registry cannot be read.
    """
    try:
        registered = MlflowClient().get_registered_model(model_name)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    version = registered.aliases.get(alias)
    return str(version) if version is not None else None


def run_start_time(run_id: str | None) -> datetime | None:
    """Return when the model's training run started, or None for a model without a run."""
    if run_id is None:
        return None
    try:
        started = MlflowClient().get_run(run_id).info.start_time
    except MlflowException as error:
        logger.warning("Could not read the start time of run %s: %s", run_id, error)
        return None
    return datetime.fromtimestamp(started / 1000, timezone.utc) if started else None
