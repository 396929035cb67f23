"""Prometheus metrics of one service instance, kept in its own registry.

Each application gets a fresh ``CollectorRegistry`` instead of the process-wide
default, so several applications (in tests, say) can exist in one process
without their metric names colliding.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Seconds. Scoring one contact takes from milliseconds to a few hundred
# milliseconds; the upper buckets catch batches and requests stuck behind a reload.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ServiceMetrics:
    """Request, model and reload metrics, rendered in the Prometheus text format."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self):
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
        self.model_info.clear()
        self.model_info.labels(model=model, version=version, alias=alias, run_id=run_id).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
