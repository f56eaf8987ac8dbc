"""Real-time decisions on single events, with exactly the batch's rules.

One event: idempotency (a known event id returns the stored answer) -> the objection gate
(the online consent row; objectors are not profiled at all) -> categorisation by the same
rules as the batch (special-category events are dropped unseen) -> trigger campaigns ->
the customer's features as of the last batch run, refreshed with the event
(`serving.online_features`) -> scores -> the same `Inputs` -> `serving.decide.decide` ->
the ledger, in one transaction under the ledger lock (so batch runs and events share caps;
see `serving.online_ledger` for the locks). An event's decision is its own "run" in the
ledger, with capacity per channel as configured for a run.

This module wires the steps; each lives in its own `serving.online_*` module: the event
(`online_event`), served models (`online_models`), categorisation (`online_categorise`),
triggers (`online_triggers`), gates and fresh features (`online_steps`), the worker
(`online_worker`), the decision (`online_decide`, `online_inputs`), the ledger
(`online_ledger`) and the answer (`online_response`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from features.categories import RuleSet, load_ruleset
from features.config import FeatureConfig
from serving import ledger as lg
from serving import online_store as store
from serving.config import Campaign, ServingConfig
from serving.online_categorise import Categorised, Categoriser
from serving.online_config import OnlineConfig, Trigger
from serving.online_decide import decide_events
from serving.online_event import Event, Method
from serving.online_ledger import event_transaction, write_run
from serving.online_models import ServedModels
from serving.online_response import response
from serving.online_steps import gates, refresh_profiles
from serving.online_triggers import check_triggers, fired, is_abroad, started_campaigns
from serving.online_worker import (
    LINGER_SECONDS,
    MAX_BATCH,
    BatchObserver,
    DecisionWorker,
    Pending,
)
from serving.reasons import Reason

_Pending = Pending  # the name before the split

__all__ = [
    "LINGER_SECONDS",
    "MAX_BATCH",
    "Categorised",
    "Event",
    "Method",
    "OnlineEngine",
    "Pending",
    "ServedModels",
]


class OnlineEngine:
    """Decides single events with the batch's rules (see module docstring)."""

    def __init__(
        self,
        ledger_url: str,
        serving: ServingConfig,
        campaigns: list[Campaign],
        features: FeatureConfig,
        online: OnlineConfig,
        models: ServedModels,
    ) -> None:
        self.serving, self.features, self.online, self.models = serving, features, online, models
        self.campaigns = campaigns
        self.ruleset: RuleSet = load_ruleset(features)
        check_triggers(self.online.triggers, self.campaigns, self.ruleset)
        self.engine: Engine = lg.make_engine(ledger_url)
        if ledger_url.startswith("sqlite"):  # readers outside the write lock (WAL)
            self.reader: Engine = sa.create_engine(ledger_url, connect_args={"timeout": 120})
        else:
            self.reader = self.engine
        with lg.locked(self.engine) as conn:
            store.create_tables(conn)
        self._names: dict[str, list[str]] = {}  # snapshot key -> feature order
        self._categoriser = Categoriser(self.ruleset)
        self._worker = DecisionWorker(self.decide_batch)
        self._seq = 0

    def close(self) -> None:
        self.stop()
        self.engine.dispose()
        self.reader.dispose()

    # ---- readiness ------------------------------------------------------------------------
    def ready(self) -> tuple[bool, str]:
        """Models loaded and the ledger reachable (with an online snapshot)."""
        if not self.models.bundles:
            return False, "no model loaded"
        try:
            with self.reader.connect() as conn:
                run_id = conn.execute(sa.select(store.snapshots.c.run_id)).scalar()
                names = set(self._names_of(conn, run_id)) if run_id is not None else set()
        except sa.exc.SQLAlchemyError:
            return False, "ledger unreachable"
        if run_id is None:
            return False, "no online snapshot (run a batch first)"
        for product, bundle in self.models.bundles.items():
            missing = [n for n in bundle.feature_names if n not in names]
            if missing:
                return (
                    False,
                    f"snapshot {run_id} lacks features of the {product} model: {missing[:3]}",
                )
        return True, "ok"

    def _names_of(self, conn: Connection, run_id: str) -> list[str]:
        """The snapshot's feature order, cached per snapshot (a replaced run id is new)."""
        return self._names_at(conn, run_id, store.snapshot_created(conn, run_id))

    def _names_at(self, conn: Connection, run_id: str, created: object) -> list[str]:
        key = f"{run_id}@{created}"
        if key not in self._names:
            self._names = {key: store.feature_names(conn, run_id)}
        return self._names[key]

    def _snapshot(self, conn: Connection) -> tuple[str | None, list[str]]:
        """The current snapshot's run id and feature order (one query while it stays)."""
        row = conn.execute(
            sa.select(store.snapshots.c.run_id, store.snapshots.c.created_at)
        ).first()
        if row is None:
            return None, []
        return row.run_id, self._names_at(conn, row.run_id, row.created_at)

    # ---- one event (request thread) -------------------------------------------------------
    def handle(self, event: Event, timeout: float = 30.0) -> tuple[dict[str, Any], bool]:
        """The answer to one event and whether it is a replay of a stored answer.

        Cheap checks run here; the decision runs in the engine's one worker thread, which
        decides every event waiting at that moment together (one `decide` call, one ledger
        transaction, see `serving.online_worker`).
        """
        with self.reader.connect() as conn:
            prior = store.stored_response(conn, event.event_id)
        if prior is not None:
            return prior, True
        pending = self.submit(event)
        if not pending.done.wait(timeout):
            raise TimeoutError("no decision within the time limit")
        if pending.error is not None:
            raise pending.error
        assert pending.response is not None
        return pending.response, pending.replayed

    def submit(self, event: Event, on_done: Callable[[Pending], None] | None = None) -> Pending:
        """Queue an event for the worker; `on_done` is called (in the worker thread) with the
        finished item: how an asyncio server awaits the answer without a blocked thread."""
        pending = Pending(event, on_done=on_done)
        self._worker.submit(pending)
        return pending

    def start(self, observe: BatchObserver | None = None) -> None:
        """Start the decision worker (idempotent); `observe` hears of every micro-batch."""
        self._worker.observe = observe
        self._worker.start()

    def stop(self) -> None:
        self._worker.stop()

    # ---- a batch of events (worker thread) ------------------------------------------------
    def decide_batch(self, batch: list[Pending]) -> None:
        """Decide events of distinct customers in one ledger transaction (see `handle`)."""
        customers = sorted(p.event.customer_id for p in batch)
        with event_transaction(self.engine, customers) as conn:
            fresh = _replay_known(conn, batch)
            consents = store.read_consents(conn, customers)
            run_id, names = self._snapshot(conn)
            deciding = self._admit(conn, fresh, consents, run_id, names)
            self._decide(conn, deciding, consents, names)
            store.store_responses(
                conn,
                [
                    (p.event.event_id, p.event.customer_id if p.keep_customer else None, p.response)
                    for p in fresh
                    if p.response is not None
                ],
            )
        for p in batch:
            p.finish()

    def _admit(
        self,
        conn: Connection,
        fresh: list[Pending],
        consents: dict[str, dict[str, Any]],
        run_id: str | None,
        names: list[str],
    ) -> list[Pending]:
        """Categorise (only for customers who did not object), read profiles, pass the gates."""
        for p in fresh:  # only the payments of customers who did not object are looked at
            if (consents.get(p.event.customer_id) or {}).get("may_profile"):
                p.cat = self.categorise(p.event)
        wanted = [p.event.customer_id for p in fresh if p.cat is not None and not p.cat.special]
        profiles = store.read_profiles(conn, wanted, names) if run_id is not None else {}
        return gates(fresh, consents, profiles, self.ruleset)

    def _decide(
        self,
        conn: Connection,
        deciding: list[Pending],
        consents: dict[str, dict[str, Any]],
        names: list[str],
    ) -> None:
        """Fresh features and triggers, the decision for events with campaigns, the profiles."""
        large = refresh_profiles(deciding, self.ruleset, self.features)
        for p, big in zip(deciding, large, strict=True):
            day = p.event.booked_at.date()
            assert p.cat is not None
            p.triggers = self.triggered(p.event, p.cat, big, day)
            p.campaigns = started_campaigns(p.triggers, self.campaigns, self.models.bundles, day)
            if not p.campaigns:
                p.response = response(p.event, None, Reason.NO_TRIGGER, [])
        to_decide = [p for p in deciding if p.campaigns]
        if to_decide:
            decisions, scores = decide_events(
                conn, to_decide, consents, names, self.models.bundles, self.serving
            )
            self._seq += 1
            write_run(conn, self.serving, to_decide, decisions, scores, self._seq)
        store.save_profiles(conn, [p.profile for p in deciding if p.profile is not None], names)

    def categorise(self, event: Event) -> Categorised:
        """The batch's categorisation rules on one event (cached per distinct key)."""
        return self._categoriser(event)

    def triggered(self, event: Event, cat: Categorised, large: bool, day: date) -> list[Trigger]:
        """The configured triggers this event fires (`day` is not used)."""
        abroad = is_abroad(event, self.features.home_country)
        return fired(self.online.triggers, event, cat, large, abroad)


def _replay_known(conn: Connection, batch: list[Pending]) -> list[Pending]:
    """Answer the events whose id the ledger already knows (a retry); the others are fresh."""
    known = store.stored_responses(conn, [p.event.event_id for p in batch])
    fresh = []
    for p in batch:
        if p.event.event_id in known:
            p.response, p.replayed = known[p.event.event_id], True
        else:
            fresh.append(p)
    return fresh
