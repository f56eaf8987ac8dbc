"""The HTTP service of `propensity serve` (FastAPI on uvicorn): decisions on single events.

Routes (OpenAPI at /docs and /openapi.json): `POST /v1/events` (role `events`),
`GET /v1/customers/{customer_id}/decisions` and `POST /v1/customers/{customer_id}/objection`
(role `service_desk`), `GET /metrics` (any valid token), `GET /healthz` and `GET /readyz` (no
token). Wrong or missing token: 401; wrong role: 403; a body over the limit: 413; a malformed
body: 422 naming the field (the value is never echoed). Logs carry the route template,
status and time, never a customer id or amount.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from features.casting import LOCAL_TIMEZONE
from features.errors import EnvironmentFailure, PropensityError
from propensity.tokens import TokenVerifier
from serving.online import Event, OnlineEngine
from serving.online_config import ApiToken

log = logging.getLogger("propensity.api")
API_VERSION = "1"


class EventDecision(BaseModel):
    """The answer to one event."""

    event_id: str
    decision: Literal["offer", "none"]
    campaign_id: str | None = None
    product: str | None = None
    channel: str | None = None
    propensity: float | None = None
    reason_code: str
    reasons: list[str] = []
    decided_at: str


class StoredDecision(BaseModel):
    """One decision about a customer, as `propensity explain` shows it."""

    as_of: str
    run_id: str
    campaign_id: str
    product: str
    channel: str | None
    outcome: str
    reason: str
    propensity: float
    model_version: str | None
    reasons: list[str]


class CustomerDecisions(BaseModel):
    customer_id: str
    decisions: list[StoredDecision]


class ObjectionRecorded(BaseModel):
    """An objection to payment-data marketing, recorded now (bank local time)."""

    customer_id: str
    recorded_at: str
    source: Literal["http"]
    online_profile_deleted: bool


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class BodyLimit:
    """Pure ASGI middleware: 413 for a request body over `limit` bytes (declared or streamed)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(self.limit)(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise ApiError(413, f"request body over {self.limit} bytes")
            return message

        await self.app(scope, limited, send)


class Observe:
    """Pure ASGI middleware: counts and times every request by route template and status,
    and logs the line (never a customer id). Pure ASGI, not `@app.middleware("http")`: that
    one runs each request in its own task and stream, ~1 ms of the one core a decision needs."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except ApiError as exc:  # raised by BodyLimit while the body streams in
            status = exc.status
            await JSONResponse({"detail": exc.message}, status_code=exc.status)(
                scope, receive, send
            )
        finally:
            template = getattr(scope.get("route"), "path", "unmatched")
            took = time.perf_counter() - start
            method = scope["method"]
            self.metrics.requests.labels(template, method, str(status)).inc()
            self.metrics.latency.labels(template).observe(took)
            log.info("%s %s %d %.1f ms", method, template, status, took * 1000)


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse({"detail": f"request body over {limit} bytes"}, status_code=413)


_SECONDS = (0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """Prometheus metrics of one app (own registry, so tests can run several apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "propensity_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "propensity_http_request_seconds",
            "request latency by route template",
            ["route"],
            buckets=_SECONDS,
            registry=self.registry,
        )
        self.decisions = Counter(
            "propensity_event_decisions",
            "event decisions by reason code (replays not counted)",
            ["reason"],
            registry=self.registry,
        )
        self.replays = Counter(
            "propensity_event_replays", "events answered from the store", registry=self.registry
        )
        self.batch_events = Histogram(
            "propensity_decision_batch_events",
            "events per micro-batch of the decision worker",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=self.registry,
        )
        self.batch_wait = Histogram(
            "propensity_decision_queue_seconds",
            "how long a micro-batch's oldest event waited for the worker",
            buckets=_SECONDS,
            registry=self.registry,
        )
        self.batch_work = Histogram(
            "propensity_decision_batch_seconds",
            "how long the worker took for a micro-batch (decision and ledger transaction)",
            buckets=_SECONDS,
            registry=self.registry,
        )

    def observe_batch(self, events: int, waited: float, took: float) -> None:
        """The decision worker's report on one micro-batch (called in its thread)."""
        self.batch_events.observe(events)
        self.batch_wait.observe(waited)
        self.batch_work.observe(took)


def freeze_heap() -> None:
    """Keep the loaded libraries and models out of Python's garbage collector. A full
    collection of the served process's heap (about 390k objects: MLflow, scikit-learn,
    LightGBM, polars) held the GIL for 0.4-1.1 s while every event waited; frozen, it takes
    under 1 ms. Objects dropped later are still freed by reference counting."""
    gc.collect()
    gc.freeze()


def _poller(engine: OnlineEngine, every: float, stop: threading.Event) -> None:
    """Checks the registry alias every `every` seconds; a failed check keeps the old models."""
    while not stop.wait(every):
        try:
            if engine.models.reload():
                freeze_heap()  # the new models too
        except Exception:  # keep serving the loaded models; the next poll tries again
            log.exception("model reload failed; still serving the loaded models")


def create_app(
    engine: OnlineEngine,
    tokens: tuple[ApiToken, ...],
    ledger_url: str,
    timezone: str = LOCAL_TIMEZONE,
) -> FastAPI:
    """The FastAPI app around one `OnlineEngine`; `timezone`: the bank's local time
    (`[data] timezone`), in which an objection's `recorded_at` is kept."""
    verifier = TokenVerifier(tokens)
    metrics = Metrics()
    bearer = HTTPBearer(auto_error=False)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        thread = threading.Thread(
            target=_poller,
            args=(engine, engine.online.model_poll_seconds, stop),
            name="model-poller",
            daemon=True,
        )
        thread.start()
        freeze_heap()  # everything loaded so far stays for the life of the process
        engine.start(metrics.observe_batch)
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)
            engine.stop()

    app = FastAPI(
        title="bank-propensity real-time decisions",
        version=API_VERSION,
        description="Offers on single payment events under the batch's rules "
        "(consent, eligibility, channels, caps, control group, ledger).",
        lifespan=lifespan,
    )

    def role(*allowed: str) -> Callable[..., Awaitable[ApiToken]]:
        async def check(
            credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
        ) -> ApiToken:
            challenge = {"WWW-Authenticate": "Bearer"}
            if credentials is None or credentials.scheme.lower() != "bearer":
                raise ApiError(401, "missing bearer token", challenge)
            secret = credentials.credentials
            token = verifier.known(secret)  # cached: no thread, no scrypt
            if token is None:  # scrypt (~50 ms) off the event loop
                token = await run_in_threadpool(verifier.verify, secret)
            if token is None:
                raise ApiError(401, "invalid token", challenge)
            if allowed and token.role not in allowed:
                raise ApiError(403, f"role {token.role!r} may not use this endpoint")
            return token

        return check

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(PropensityError)
    async def _user_error(_request: Request, exc: PropensityError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        """Readiness: models loaded, ledger and online snapshot reachable."""
        ok, why = engine.ready()
        body = {"status": "ready" if ok else "not ready", "detail": why}
        body["models"] = engine.models.versions()  # type: ignore[assignment]
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["health"], response_class=PlainTextResponse)
    def prometheus(_token: ApiToken = Depends(role())) -> PlainTextResponse:
        """Prometheus text: requests, latency histogram, decisions by reason code."""
        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/events", response_model=EventDecision, tags=["events"])
    async def post_event(
        event: Event, _token: ApiToken = Depends(role("events"))
    ) -> dict[str, Any]:
        """Decide on one booked transaction; the same `event_id` again returns the same answer.

        No thread waits for the answer: the engine's worker resolves this request's future
        (a thread per waiting request would cap concurrency and fight the worker for the GIL).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()

        def resolve(p: Any) -> None:  # in the worker thread
            loop.call_soon_threadsafe(lambda: future.done() or future.set_result(p))

        pending = engine.submit(event, on_done=resolve)
        try:
            await asyncio.wait_for(future, timeout=30)
        except TimeoutError:
            raise ApiError(503, "no decision in time; retry with the same event_id") from None
        if pending.error is not None:  # the message may hold SQL parameters: the type only
            log.error("event failed: %s", type(pending.error).__name__)
            raise ApiError(500, "internal error; retry with the same event_id")
        answer, replayed = pending.response, pending.replayed
        assert answer is not None
        if replayed:
            metrics.replays.inc()
        else:
            metrics.decisions.labels(answer["reason_code"]).inc()
        return answer

    @app.get(
        "/v1/customers/{customer_id}/decisions",
        response_model=CustomerDecisions,
        tags=["service desk"],
    )
    def customer_decisions(
        customer_id: str, _token: ApiToken = Depends(role("service_desk"))
    ) -> dict[str, Any]:
        """Every decision about a customer with its stored reasons (`propensity explain`)."""
        from serving.jobs import explain_customer

        rows = explain_customer(customer_id, ledger_url)
        decisions = [
            {
                **r,
                "as_of": str(r["as_of"]),
                "reasons": (r["reasons"] or "").split("\n") if r["reasons"] else [],
            }
            for r in rows.iter_rows(named=True)
        ]
        return {"customer_id": customer_id, "decisions": decisions}

    @app.post(
        "/v1/customers/{customer_id}/objection",
        response_model=ObjectionRecorded,
        tags=["service desk"],
    )
    def record_objection(
        customer_id: str, _token: ApiToken = Depends(role("service_desk"))
    ) -> dict[str, Any]:
        """Record the customer's objection to payment-data marketing now (GDPR art. 21).

        From this moment their events are refused unseen (reason `objected`), their online
        profile is gone and every batch path leaves them out; a consents row the bank
        updates later than this lifts it. Recording again moves the time forward.
        """
        from features.ids import customer_id_problem
        from serving.online_store import record_objection as record

        problem = customer_id_problem(customer_id)
        if problem is not None:  # the value is never echoed
            raise ApiError(422, f"path parameter customer_id: a customer id {problem}")
        try:
            return record(
                ledger_url,
                customer_id,
                "http",
                timezone=timezone,
                lock_timeout=engine.serving.lock_timeout_seconds,
            )
        except EnvironmentFailure as exc:  # e.g. the ledger lock held by a long batch run
            log.error("objection not recorded: %s", type(exc).__name__)
            raise ApiError(503, "objection not recorded (ledger busy); retry") from None

    app.add_middleware(Observe, metrics=metrics)
    app.add_middleware(BodyLimit, limit=engine.online.max_body_bytes)
    return app
