"""Per-request telemetry: JSON access log lines, Prometheus metrics and request ids.

Access log lines contain the method, route template, status, latency, model
version and batch size, never the path's query, the body or a header value, so
no email, phone number or name from a request reaches the log.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import datetime, timezone

from leadlink.logs import MaskingFilter, mask_personal_data
from leadlink.serving.metrics import ServiceMetrics

access_logger = logging.getLogger("leadlink.serving.access")
logger = logging.getLogger(__name__)

# Key under which a request's telemetry context sits in the ASGI scope, for
# route handlers to add the model version and batch size.
SCOPE_KEY = "leadlink.telemetry"
REQUEST_ID_HEADER = b"x-request-id"
_CLIENT_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")
_KNOWN_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"


class JsonLogFormatter(logging.Formatter):
    """Format each record as one JSON object per line.

    Fields passed as ``extra={"fields": {...}}`` become top-level keys.
    Tracebacks are masked like messages, because an exception's text can
    contain a value from the request.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            # Tells apart the lines of worker processes that share one log.
            "pid": record.process,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["error"] = mask_personal_data(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_service_logging(verbose: bool = False) -> None:
    """Send leadlink's and uvicorn's log lines to stderr as masked JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    handler.addFilter(MaskingFilter())
    for name in ("leadlink", "uvicorn"):
        target = logging.getLogger(name)
        target.handlers[:] = [handler]
        target.propagate = False
    logging.getLogger("leadlink").setLevel(logging.DEBUG if verbose else logging.INFO)


class TelemetryMiddleware:
    """ASGI middleware that times each request, logs it, counts it and tags it with an id.

    An exception that escapes the application is logged here, masked, and the
    client gets a 500 response, so the exception never reaches uvicorn's
    unmasked traceback log.
    """

    def __init__(self, app, metrics: ServiceMetrics, route_paths: frozenset[str]):
        self.app = app
        self.metrics = metrics
        self.route_paths = route_paths

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        request_id = _request_id(scope["headers"])
        context = {"model_version": None, "batch_size": None, "request_id": request_id}
        scope[SCOPE_KEY] = context
        status = 500
        response_started = False

        async def send_with_id(message: dict) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message = {**message, "headers": [*message.get("headers", []), (REQUEST_ID_HEADER, request_id.encode("ascii"))]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:  # noqa: BLE001 - the last line of defence for any bug below
            logger.exception("Unhandled error in request %s", request_id)
            status = 500
            if not response_started:
                await _internal_error(send_with_id, request_id)
        finally:
            self._record(scope, status, time.perf_counter() - started, context)

    def _record(self, scope, status: int, seconds: float, context: dict) -> None:
        route = scope["path"] if scope["path"] in self.route_paths else UNMATCHED_ROUTE
        method = scope["method"] if scope["method"] in _KNOWN_METHODS else "OTHER"
        self.metrics.observe_request(route, method, status, seconds)
        access_logger.info(
            "request",
            extra={
                "fields": {
                    "request_id": context["request_id"],
                    "method": method,
                    "route": route,
                    "status": status,
                    "latency_ms": round(seconds * 1000, 2),
                    "model_version": context["model_version"],
                    "batch_size": context["batch_size"],
                }
            },
        )


def _request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """Reuse a client's X-Request-ID when it is short and plain, else make a new one."""
    for name, value in headers:
        if name == REQUEST_ID_HEADER and _CLIENT_REQUEST_ID.match(value):
            return value.decode("ascii")
    return uuid.uuid4().hex


async def _internal_error(send, request_id: str) -> None:
    body = json.dumps({"detail": f"Internal error; the service log has the details under request id {request_id}."}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode("ascii"))],
        }
    )
    await send({"type": "http.response.body", "body": body})
