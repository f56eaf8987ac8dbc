"""The one decision thread: micro-batches of waiting events, one event per customer each.

The polars work of a decision costs about the same for one event as for fifty, so deciding
everything waiting at that moment together keeps latency flat under load.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from serving import online_store as store
from serving.config import Campaign
from serving.online_categorise import Categorised
from serving.online_config import Trigger
from serving.online_event import Event

log = logging.getLogger(__name__)

MAX_BATCH = 64
# How long the worker waits for more requests before deciding a batch, so that requests
# already on the wire join it. 0 and 2 ms measured alike on the busy 2-core machine (load test,
# 200 events/s: p99 within the run-to-run spread; docs/realtime.md); 2 ms is kept.
LINGER_SECONDS = float(os.environ.get("PROPENSITY_LINGER_MS", "2")) / 1000


@dataclass
class Pending:
    """One event on its way through the worker, and its answer."""

    event: Event
    queued_at: float = field(default_factory=time.perf_counter)
    cat: Categorised | None = None  # set only once the objection gate is passed
    done: threading.Event = field(default_factory=threading.Event)
    response: dict[str, Any] | None = None
    replayed: bool = False
    error: BaseException | None = None
    keep_customer: bool = True
    profile: store.Profile | None = None
    consent: dict[str, Any] | None = None
    triggers: list[Trigger] = field(default_factory=list)
    campaigns: list[Campaign] = field(default_factory=list)
    on_done: Callable[[Pending], None] | None = None

    def finish(self) -> None:
        """Mark the answer (or the error) ready and tell whoever waits."""
        self.done.set()
        if self.on_done is not None:
            self.on_done(self)


# (events in the batch, seconds its oldest event waited before the batch began, seconds the
# batch took): what the service's /metrics shows of the worker, to tell queueing from work
BatchObserver = Callable[[int, float, float], None]


class DecisionWorker:
    """Feeds `decide_batch` batches of events of distinct customers, in arrival order."""

    def __init__(self, decide_batch: Callable[[list[Pending]], None]) -> None:
        self._decide_batch = decide_batch
        self.observe: BatchObserver | None = None
        self._queue: queue.Queue[Pending | None] = queue.Queue()
        self._held: list[Pending] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def submit(self, pending: Pending) -> None:
        self._queue.put(pending)

    def start(self) -> None:
        """Start the decision thread (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._work, name="decisions", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _next(self) -> Pending | None:
        """The next waiting item without blocking (held ones first); None when none waits."""
        if self._held:
            return self._held.pop(0)
        try:
            item = self._queue.get_nowait()
        except queue.Empty:
            return None
        if item is None:  # the stop marker
            self._stop.set()
        return item

    def _take(self) -> list[Pending]:
        """Everything waiting now (at most `MAX_BATCH`), one event per customer."""
        first = self._held.pop(0) if self._held else self._queue.get()
        if first is None:
            return []
        if LINGER_SECONDS and self._queue.qsize() < MAX_BATCH:
            # let the server's event loop (which needs the GIL this thread holds while
            # deciding) hand over the requests already on the wire: bigger batches under load
            time.sleep(LINGER_SECONDS)
        batch, customers = [first], {first.event.customer_id}
        later: list[Pending] = []
        while len(batch) < MAX_BATCH and (item := self._next()) is not None:
            if item.event.customer_id in customers:
                later.append(item)  # the same customer's next event waits for this batch
            else:
                batch.append(item)
                customers.add(item.event.customer_id)
        self._held = later + self._held
        return batch

    def _work(self) -> None:
        while not self._stop.is_set():
            batch = self._take()
            if batch:
                self._run(batch)

    def _run(self, batch: list[Pending]) -> None:
        began = time.perf_counter()
        try:
            self._decide_all(batch)
        finally:
            if self.observe is not None:
                waited = began - min(p.queued_at for p in batch)
                self.observe(len(batch), waited, time.perf_counter() - began)

    def _decide_all(self, batch: list[Pending]) -> None:
        try:
            try:
                self._decide_batch(batch)
            except sa.exc.IntegrityError:  # e.g. one event id reused for another customer
                if len(batch) == 1:
                    raise
                for p in batch:  # one at a time: only the offending event fails
                    self._decide_alone(p)
        except Exception as exc:  # every waiting request gets the failure, never a hang
            # the type only: SQL errors carry parameters (customer ids) in their message
            log.error("decision batch of %d event(s) failed: %s", len(batch), type(exc).__name__)
            for p in batch:
                if not p.done.is_set():
                    p.error = exc
                    p.finish()

    def _decide_alone(self, p: Pending) -> None:
        try:
            self._decide_batch([p])
        except Exception as exc:
            log.error("event could not be decided: %s", type(exc).__name__)
            p.error = exc
            p.finish()
