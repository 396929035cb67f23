"""The HTTP service: score contacts one at a time or in batches, with reasons.

``create_app`` returns the application at once. The model and the users index
load in a background thread (see ``reload.py``), so ``/healthz`` responds while
they load and ``/readyz`` returns 503 until they are in place.

Authentication: when API keys are configured, every route needs one except
``/healthz``, ``/readyz``, ``/docs`` and ``/openapi.json``. The documentation
describes only the public request and response formats, and a browser opening
``/docs`` cannot send a key. ``/metrics`` needs a key, because it shows the
traffic and the model served, and Prometheus can send one with its
``authorization`` scrape setting.

Readiness: when a reload fails while a model still serves, ``/readyz`` returns
200 with the failure in its body. The instance can still score, and every
instance would fail the same bad version, so a 503 would take the whole
service out of its load balancer.
"""

# No ``from __future__ import annotations`` here: the route handlers take
# request models chosen at run time (strict or not), and FastAPI reads the
# annotations as objects.

import logging
import os
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
from fastapi import Body, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from leadlink.errors import LeadlinkError
from leadlink.serving.auth import API_KEYS_ENV, API_KEYS_FILE_ENV, ApiKeyMiddleware, load_api_keys
from leadlink.serving.limits import DEFAULT_MAX_BODY_BYTES, BodySizeLimitMiddleware
from leadlink.serving.metrics import ServiceMetrics
from leadlink.serving.reload import ModelManager
from leadlink.serving.scoring import ContactIn, ScoreOut, ScoringService, StrictContactIn
from leadlink.serving.telemetry import SCOPE_KEY, TelemetryMiddleware

logger = logging.getLogger(__name__)

DEFAULT_MAX_BATCH_SIZE = 100
DEFAULT_RELOAD_INTERVAL = 30.0
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
RETRY_AFTER_SECONDS = "5"

STRICT_FIELDS_ENV = "LEADLINK_STRICT_FIELDS"
MAX_BODY_BYTES_ENV = "LEADLINK_MAX_BODY_BYTES"
MAX_BATCH_SIZE_ENV = "LEADLINK_MAX_BATCH_SIZE"
RELOAD_INTERVAL_ENV = "LEADLINK_RELOAD_INTERVAL"
# Adds POST /v1/bench/booster for benchmarks/http_load.py. Never on by default.
BENCH_ENDPOINTS_ENV = "LEADLINK_BENCH_ENDPOINTS"


@dataclass(frozen=True)
class ServiceSettings:
    """Limits, authentication and reload settings of one service instance."""

    api_keys: tuple[str, ...] = ()
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    strict_fields: bool = False
    reload_interval: float = DEFAULT_RELOAD_INTERVAL
    bench_endpoints: bool = False

    def __post_init__(self):
        if self.max_body_bytes < 1:
            raise LeadlinkError(f"The maximum body size must be at least 1 byte; got {self.max_body_bytes}.")
        if self.max_batch_size < 1:
            raise LeadlinkError(f"The maximum batch size must be at least 1 contact; got {self.max_batch_size}.")
        if self.reload_interval < 0:
            raise LeadlinkError(f"The reload interval must be 0 (off) or a positive number of seconds; got {self.reload_interval}.")

    @classmethod
    def from_env(cls, environ: dict | None = None) -> "ServiceSettings":
        """Read the settings from ``LEADLINK_*`` environment variables, with defaults for those unset."""
        environ = os.environ if environ is None else environ
        keys_file = environ.get(API_KEYS_FILE_ENV)
        return cls(
            api_keys=load_api_keys(environ.get(API_KEYS_ENV), Path(keys_file) if keys_file else None),
            max_body_bytes=_env_number(environ, MAX_BODY_BYTES_ENV, DEFAULT_MAX_BODY_BYTES, int),
            max_batch_size=_env_number(environ, MAX_BATCH_SIZE_ENV, DEFAULT_MAX_BATCH_SIZE, int),
            strict_fields=env_flag(environ, STRICT_FIELDS_ENV),
            reload_interval=_env_number(environ, RELOAD_INTERVAL_ENV, DEFAULT_RELOAD_INTERVAL, float),
            bench_endpoints=env_flag(environ, BENCH_ENDPOINTS_ENV),
        )


def env_flag(environ, name: str) -> bool:
    """Read a yes/no environment variable: 1, true, yes, on or 0, false, no, off, empty."""
    value = environ.get(name, "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    raise LeadlinkError(f"Environment variable {name} is {value!r}; set it to 1 or 0.")


def _env_number(environ, name: str, default, kind):
    value = environ.get(name, "").strip()
    if not value:
        return default
    try:
        return kind(value)
    except ValueError:
        raise LeadlinkError(f"Environment variable {name} is {value!r}, which is not a number.") from None


class ModelInfo(BaseModel):
    """The model being served: registry identity, training facts, backtest metrics and features."""

    model_config = ConfigDict(ser_json_inf_nan="null", protected_namespaces=())

    name: str | None
    version: str | None
    alias: str | None
    run_id: str | None
    uri: str
    trained_at: datetime | None
    trained_as_of: str | None
    loaded_at: datetime
    metrics: dict[str, float | None]
    features: list[str]


class Health(BaseModel):
    status: str


def create_app(
    workspace: str | Path | None = None,
    model_uri: str | None = None,
    settings: ServiceSettings | None = None,
    metrics_dir: Path | None = None,
) -> FastAPI:
    """Build the application; the model and users load in the background once it starts.

    ``settings`` defaults to ``ServiceSettings.from_env()``. ``metrics_dir``
    is the folder where worker processes share their Prometheus metrics
    (see ``metrics.py``); leave it out for a single process. To load the
    model before the application starts, call ``app.state.manager.preload()``.
    """
    settings = settings or ServiceSettings.from_env()
    metrics = ServiceMetrics(multiprocess_dir=metrics_dir)
    manager = ModelManager(Path(workspace) if workspace else None, model_uri, settings.reload_interval, metrics)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        if not settings.api_keys:
            logger.warning("Authentication is off: no API keys are configured, so any client that can connect may call every route.")
        manager.start()
        yield
        manager.stop()

    app = FastAPI(
        title="leadlink",
        summary="Lead scores with previous-user recognition and reasons.",
        version="1",
        lifespan=lifespan,
    )
    app.state.manager = manager
    app.state.metrics = metrics
    app.state.settings = settings

    _add_error_handlers(app, settings)
    _add_routes(app, manager, metrics, settings)
    if settings.bench_endpoints:
        logger.warning("Benchmark routes are on (%s=1); do not enable them in production.", BENCH_ENDPOINTS_ENV)
        _add_benchmark_routes(app, manager, settings)

    route_paths = frozenset(route.path for route in app.routes)
    # Starlette runs the middleware added last first. So telemetry records
    # every request, authentication runs before the body is read, and the
    # size limit runs before FastAPI parses the body.
    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(ApiKeyMiddleware, api_keys=settings.api_keys, open_paths=OPEN_PATHS)
    app.add_middleware(TelemetryMiddleware, metrics=metrics, route_paths=route_paths)
    app.openapi = lambda: _openapi_schema(app, secured=bool(settings.api_keys))
    return app


def _add_routes(app: FastAPI, manager: ModelManager, metrics: ServiceMetrics, settings: ServiceSettings) -> None:
    contact_model = StrictContactIn if settings.strict_fields else ContactIn
    contact_batch = Annotated[list[contact_model], Body(max_length=settings.max_batch_size)]

    @app.get("/healthz", response_model=Health)
    def health() -> Health:
        """Report that the process is up. The model's state is on /readyz."""
        return Health(status="ok")

    @app.get("/readyz", responses={503: {"description": "No model is loaded yet, or loading it failed."}})
    def ready() -> JSONResponse:
        """Report whether a model and the users index are loaded, and the last reload failure."""
        is_ready, body = manager.readiness()
        return JSONResponse(body, status_code=200 if is_ready else 503)

    @app.get("/v1/model", response_model=ModelInfo)
    def model_info(request: Request) -> dict:
        """Describe the model being served: registry name, version, alias, run, training date, backtest metrics, features."""
        return _current_service(manager, request).describe()

    # /v1/score runs on the event loop instead of the thread pool, because it
    # takes about a millisecond of CPU and does no I/O. The hop to a pool
    # thread and the GIL hand-offs between that thread and the loop cost more
    # at the tail. The p99 at 200 requests/s was 25.6 ms in the pool and 3.2 ms
    # on the loop (benchmarks/http_load.py, one worker, 10,000 users, 2 shared
    # cores). Batches stay in the pool, so a long batch cannot hold the loop
    # for its whole run.
    @app.post("/v1/score", response_model=ScoreOut)
    async def score(contact: contact_model, request: Request) -> ScoreOut:
        """Score one contact, linking it to the product's users first."""
        service = _current_service(manager, request)
        return _score(service, [contact], metrics, request)[0]

    @app.post("/v1/score/batch", response_model=list[ScoreOut])
    def score_batch(contacts: contact_batch, request: Request) -> list[ScoreOut]:
        """Score a list of contacts in one request and return the results in request order."""
        service = _current_service(manager, request)
        return _score(service, contacts, metrics, request)

    @app.get("/metrics", response_class=Response)
    def prometheus_metrics() -> Response:
        """Return request, latency, model and reload metrics in the Prometheus text format."""
        return Response(metrics.render(), media_type=metrics.content_type)


def _current_service(manager: ModelManager, request: Request) -> ScoringService:
    """Return the service to use for the whole request, or raise 503 while none is loaded."""
    service = manager.service
    if service is None:
        _, body = manager.readiness()
        raise HTTPException(status_code=503, detail=body["reason"], headers={"Retry-After": RETRY_AFTER_SECONDS})
    context = request.scope.get(SCOPE_KEY)
    if context is not None:
        context["model_version"] = service.version
    return service


def _score(service: ScoringService, contacts: list[ContactIn], metrics: ServiceMetrics, request: Request) -> list[ScoreOut]:
    context = request.scope.get(SCOPE_KEY)
    if context is not None:
        context["batch_size"] = len(contacts)
    results = service.score(contacts)
    metrics.scored_contacts.inc(len(results))
    return results


def _add_benchmark_routes(app: FastAPI, manager: ModelManager, settings: ServiceSettings) -> None:
    """Add a route that validates a contact and calls only the bare booster, as the latency floor for /v1/score."""
    contact_model = StrictContactIn if settings.strict_fields else ContactIn
    # One (service, row) pair, replaced as a whole so that request threads never
    # see the row of one model with another; rebuilt after a reload.
    prepared: list[tuple[ScoringService | None, np.ndarray | None]] = [(None, None)]

    # Async like /v1/score, so that both routes take the same path through the server.
    @app.post("/v1/bench/booster", include_in_schema=False)
    async def bench_booster(contact: contact_model, request: Request) -> dict:
        service = _current_service(manager, request)
        cached_service, row = prepared[0]
        if cached_service is not service:
            row = _prepared_row(service)
            prepared[0] = (service, row)
        # One thread, as FeatureRowScorer predicts: OpenMP threads cost more than one row takes.
        raw = service.model.scorer.booster.predict(row, num_threads=1)
        return {"contact_id": contact.contact_id, "raw": float(raw[0])}


def _prepared_row(service: ScoringService) -> np.ndarray:
    """Encode one row with every feature missing as the booster's numeric input.

    Categorical columns become their category codes, which LightGBM reads as
    the categories it was trained on because ``encode`` keeps the training levels.
    """
    encoded = service.model.scorer.encode(pd.DataFrame(index=[0]))
    columns = []
    for name in encoded.columns:
        values = encoded[name]
        if isinstance(values.dtype, pd.CategoricalDtype):
            columns.append(values.cat.codes.astype("float64").to_numpy())
        else:
            columns.append(values.to_numpy(dtype="float64"))
    return np.column_stack(columns)


def _add_error_handlers(app: FastAPI, settings: ServiceSettings) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        errors = error.errors()
        status = 400 if any(e.get("type") == "json_invalid" for e in errors) else 422
        detail = [_describe_error(e, settings) for e in errors]
        return JSONResponse(status_code=status, content={"detail": detail})


def _describe_error(error: dict, settings: ServiceSettings) -> dict:
    """Turn a pydantic error into a field name, a readable message and the error type."""
    kind = error.get("type", "")
    field = _field_name(error)
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    context = error.get("ctx") or {}
    if kind == "json_invalid":
        position = error.get("loc", ("body", "?"))[-1]
        message = f"Invalid JSON at character {position}: {context.get('error', 'could not parse the body')}."
    elif kind == "extra_forbidden":
        message = f"Unknown field {field!r}. Strict field checking is on, so only the fields of the contract are accepted."
    elif kind == "too_long" and field == "body":
        message = (
            f"A batch may contain at most {settings.max_batch_size} contacts; this one has {context.get('actual_length', 'more')}. "
            "Split it into several requests."
        )
    return {"field": field, "message": message, "type": kind}


def _field_name(error: dict) -> str:
    # For unparseable JSON the location is a character offset, not a field.
    if error.get("type") == "json_invalid":
        return "body"
    parts = [str(part) for part in error.get("loc", ()) if part != "body"]
    return ".".join(parts) or "body"


def _openapi_schema(app: FastAPI, secured: bool) -> dict:
    """Build the OpenAPI schema once, declaring the API key schemes on the routes that need a key."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
    if secured:
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            if method == "post":
                responses.setdefault("400", {"description": "The body is not valid JSON."})
                responses.setdefault("413", {"description": "The body is larger than the configured limit."})
            if secured and path not in OPEN_PATHS:
                operation["security"] = [{"bearer": []}, {"apiKeyHeader": []}]
                responses.setdefault("401", {"description": "The API key is missing or invalid."})
    app.openapi_schema = schema
    return schema


def check_model_available(model_uri: str | None, workspace: Path | None) -> None:
    """Raise LeadlinkError before the port opens when the model or the workspace cannot be found.

    This only resolves names in the registry. Loading the model itself happens
    in the background, and its errors show on ``/readyz`` and in the log.
    """
    from leadlink.training import tracking

    if workspace is not None and not Path(workspace).is_dir():
        raise LeadlinkError(f"--workspace {workspace} is not a folder; give the workspace folder that contains the users table.")
    if model_uri is not None and Path(model_uri).is_dir():
        return
    if model_uri is not None and not _looks_like_uri(model_uri):
        raise LeadlinkError(
            f"--model {model_uri} is not a folder and not a model URI; give a saved model folder "
            "or a URI such as models:/leadlink@champion, models:/leadlink/3 or runs:/<run id>/model."
        )
    tracking.configure_mlflow()
    tracking.resolve_model_uri(model_uri)


def _looks_like_uri(text: str) -> bool:
    """Return whether ``text`` has a URI scheme (models:/, runs:/, file://, s3://), as opposed to a plain path."""
    scheme, separator, _ = text.partition(":/")
    # One letter before ":/" is a Windows drive ("C:/models"), not a scheme.
    return bool(separator) and len(scheme) > 1 and scheme.replace("+", "").replace("-", "").replace(".", "").isalnum()
