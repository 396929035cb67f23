"""Prometheus metrics of one service instance, kept in its own registry.

Each application gets a fresh ``CollectorRegistry`` instead of the process-wide
default, so several applications (in tests, say) can exist in one process
without their metric names colliding.

With several worker processes (``leadlink serve --workers N``) the metrics use
prometheus_client's multiprocess mode: every process writes its values to
memory-mapped files in a shared folder, and ``/metrics`` in any worker adds up
the counters and histograms of all of them. ``leadlink_model_info`` then has
one series per live worker, labelled with its ``pid``, so a scrape shows
which model each worker serves.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector

# Seconds. Scoring one contact takes from milliseconds to a few hundred
# milliseconds; the upper buckets catch batches and requests stuck behind a reload.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ServiceMetrics:
    """Request, model and reload metrics, rendered in the Prometheus text format."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, multiprocess_dir: Path | None = None):
        """Create the metrics, shared between processes through ``multiprocess_dir`` when it is given.

        Raises RuntimeError when ``multiprocess_dir`` is given but
        prometheus_client was imported before ``PROMETHEUS_MULTIPROC_DIR``
        was set, because its values would then stay in this process.
        """
        if multiprocess_dir is not None and not getattr(values.ValueClass, "_multiprocess", False):
            raise RuntimeError(
                "Shared metrics need PROMETHEUS_MULTIPROC_DIR set before prometheus_client is imported; "
                "call serving.workers.prepare_worker_environment at the start of the process."
            )
        self.multiprocess_dir = multiprocess_dir
        self._model_labels: dict[str, str] | None = None
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "leadlink_http_requests",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "leadlink_http_request_duration_seconds",
            "Time from receiving a request to sending the end of its response, by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.scored_contacts = Counter(
            "leadlink_scored_contacts",
            "Contacts scored, single and batch requests together.",
            registry=self.registry,
        )
        self.model_info = Gauge(
            "leadlink_model_info",
            "The model being served: 1 for the labels of the current model.",
            ["model", "version", "alias", "run_id"],
            registry=self.registry,
            # Ignored in a single process; with workers, one series per live worker.
            multiprocess_mode="liveall",
        )
        self.reloads = Counter(
            "leadlink_model_reloads",
            "Models swapped in after start-up because the followed alias moved.",
            registry=self.registry,
        )
        self.reload_failures = Counter(
            "leadlink_model_reload_failures",
            "Failed attempts to load a model, at start-up or on reload.",
            registry=self.registry,
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route=route, method=method, status=str(status)).inc()
        self.latency.labels(route=route).observe(seconds)

    def set_model(self, model: str, version: str, alias: str, run_id: str) -> None:
        """Replace the labels of the model info gauge with those of the model now served."""
        labels = {"model": model, "version": version, "alias": alias, "run_id": run_id}
        if self.multiprocess_dir is None:
            self.model_info.clear()
        elif self._model_labels is not None and self._model_labels != labels:
            # The shared files cannot drop a series, so the previous model's stays, at 0.
            self.model_info.labels(**self._model_labels).set(0)
        self.model_info.labels(**labels).set(1)
        self._model_labels = labels

    def render(self) -> bytes:
        """Return the metrics in the Prometheus text format, summed over all workers in multiprocess mode."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        shared = CollectorRegistry()
        MultiProcessCollector(shared, path=str(self.multiprocess_dir))
        return generate_latest(shared)
