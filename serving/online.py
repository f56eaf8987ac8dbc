"""Real-time decisions on single events, with exactly the batch's rules.

One event: idempotency (a known event id returns the stored answer) -> the objection gate
(the online consent row; objectors are not profiled at all) -> categorisation by the same
rules as the batch (special-category events are dropped unseen) -> trigger campaigns ->
the customer's features as of the last batch run, refreshed with the event
(`serving.online_features`) -> scores -> the same `Inputs` -> `serving.decide.decide` ->
the ledger, in one transaction under the ledger lock (so batch runs and events share caps).

Locking: on SQLite every ledger write transaction is `BEGIN IMMEDIATE`, as for a batch run.
On PostgreSQL an event takes the batch's advisory lock in *shared* mode plus an exclusive
lock on its customer: events of different customers run side by side, events of one
customer one after the other, and a batch run (exclusive) excludes them all. An event's
decision is its own "run" in the ledger (`run_id` = `event:<event_id>`), with capacity per
channel as configured for a run.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

import polars as pl
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.engine import Connection, Engine

from features.categories import RuleSet, airport_expr, category_expr, load_ruleset
from features.config import FeatureConfig
from features.errors import ConfigError, ModelNotFoundError
from features.expressions import full_years
from features.schemas import CHANNELS, METHODS
from models.bundle import ModelBundle
from serving import ledger as lg
from serving import online_store as store
from serving.config import Campaign, ServingConfig, config_hash
from serving.contact_policy import HISTORY_SCHEMA
from serving.decide import DECISION_SCHEMA, Inputs, decide
from serving.ledger_io import insert_frame
from serving.online_config import OnlineConfig, Trigger
from serving.online_features import EventFacts, is_large_inflow, refresh
from serving.reasons import Reason
from serving.scoring import SCORE_SCHEMA, explain_features, score_features

log = logging.getLogger(__name__)

_EVENT_LOCK_CLASS = 0x50524F51  # "PROQ": per-customer event locks (two-int advisory key space)
Method = Literal[METHODS]  # type: ignore[valid-type]


class Event(BaseModel):
    """One transaction as it is booked (the contract's transaction columns) plus `event_id`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(min_length=1, max_length=100)
    customer_id: str = Field(min_length=1, max_length=100)
    booked_at: datetime
    amount: float
    method: Method
    transaction_id: str | None = Field(None, max_length=200)
    account_id: str | None = Field(None, max_length=100)
    balance_after: float | None = None
    counterparty_name: str | None = Field(None, max_length=200)
    counterparty_iban: str | None = Field(None, max_length=64)
    description: str | None = Field(None, max_length=500)
    mcc: int | None = Field(None, ge=0, le=9999)
    location: str | None = Field(None, max_length=200)
    country: str | None = Field(None, min_length=2, max_length=2)

    @field_validator("amount")
    @classmethod
    def _amount(cls, v: float) -> float:
        if v == 0 or not math.isfinite(v):
            raise ValueError("amount must be a finite non-zero number (credit > 0, debit < 0)")
        return v

    @field_validator("booked_at")
    @classmethod
    def _naive_local(cls, v: datetime) -> datetime:
        return v.replace(tzinfo=None) if v.tzinfo is None else v.astimezone().replace(tzinfo=None)


class Models:
    """The served bundles by product, swapped atomically when the registry alias moves."""

    def __init__(self, products: list[str], alias: str, tracking_uri: str) -> None:
        self.products, self.alias, self.tracking_uri = products, alias, tracking_uri
        self._bundles: dict[str, ModelBundle] = {}
        self._lock = threading.Lock()  # one reload at a time; readers never wait
        self.reload()

    @property
    def bundles(self) -> dict[str, ModelBundle]:
        return self._bundles  # one reference read: a request sees the old or the new set

    def versions(self) -> dict[str, str]:
        return {p: str(b.version) for p, b in self._bundles.items()}

    def _registry_versions(self) -> dict[str, str]:
        from models.registry import model_version

        out = {}
        for product in self.products:
            try:
                out[product] = model_version(product, self.alias, self.tracking_uri)
            except ModelNotFoundError:
                continue
        return out

    def reload(self) -> bool:
        """Load the bundles whose alias moved; True when anything changed."""
        from models.registry import load_bundle

        with self._lock:
            wanted = self._registry_versions()
            current = self.versions()
            if wanted == current:
                return False
            fresh = dict(self._bundles)
            for product in list(fresh):
                if product not in wanted:
                    del fresh[product]
            for product, version in wanted.items():
                if current.get(product) != version:
                    bundle = load_bundle(product, self.alias, self.tracking_uri)
                    bundle.estimator.model_.set_params(n_jobs=1)  # one row: no thread pool
                    fresh[product] = bundle
            self._bundles = fresh
            log.info("serving models %s", {p: b.version for p, b in fresh.items()})
            return True


@dataclass(frozen=True)
class Categorised:
    category: str
    special: bool
    airport: bool


class OnlineEngine:
    """Decides single events with the batch's rules (see module docstring)."""

    def __init__(
        self,
        ledger_url: str,
        serving: ServingConfig,
        campaigns: list[Campaign],
        features: FeatureConfig,
        online: OnlineConfig,
        models: Models,
    ) -> None:
        self.serving, self.features, self.online, self.models = serving, features, online, models
        self.campaigns = campaigns
        self.ruleset: RuleSet = load_ruleset(features)
        self._check_triggers()
        self.engine: Engine = lg.make_engine(ledger_url)
        if ledger_url.startswith("sqlite"):  # readers outside the write lock (WAL)
            self.reader: Engine = sa.create_engine(ledger_url, connect_args={"timeout": 120})
        else:
            self.reader = self.engine
        with lg.locked(self.engine) as conn:
            store.create_tables(conn)
        self._names: dict[str, list[str]] = {}
        self._categories: OrderedDict[tuple[Any, ...], Categorised] = OrderedDict()

    def close(self) -> None:
        self.engine.dispose()
        self.reader.dispose()

    def _check_triggers(self) -> None:
        ids = {c.id for c in self.campaigns}
        products = {c.product for c in self.campaigns}
        known = set(self.ruleset.categories)
        for t in self.online.triggers:
            bad = [c for c in t.campaigns if c not in ids]
            if bad:
                raise ConfigError(f"online.triggers[{t.name}]: unknown campaign(s) {bad}")
            bad = [c for c in t.categories if c not in known]
            if bad:
                raise ConfigError(f"online.triggers[{t.name}]: unknown category(ies) {bad}")
            bad = [c for c in t.categories if c in self.ruleset.special]
            if bad:
                raise ConfigError(f"online.triggers[{t.name}]: special category(ies) {bad}")
            if not (set(t.products) & products or t.campaigns):
                log.warning("trigger %s names no product with a campaign", t.name)

    # ---- readiness ------------------------------------------------------------------------
    def ready(self) -> tuple[bool, str]:
        """Models loaded and the ledger reachable (with an online snapshot)."""
        if not self.models.bundles:
            return False, "no model loaded"
        try:
            with self.reader.connect() as conn:
                n = conn.execute(sa.select(sa.func.count()).select_from(store.snapshots)).scalar()
        except sa.exc.SQLAlchemyError:
            return False, "ledger unreachable"
        if not n:
            return False, "no online snapshot (run a batch first)"
        return True, "ok"

    # ---- the pieces -----------------------------------------------------------------------
    def categorise(self, event: Event) -> Categorised:
        """The batch's categorisation rules on one event (cached per distinct key)."""
        key = (
            event.counterparty_name,
            event.counterparty_iban,
            event.mcc,
            event.method,
            event.description,
            event.location,
            event.amount > 0,
        )
        hit = self._categories.get(key)
        if hit is not None:
            return hit
        row = pl.DataFrame(
            {
                "counterparty_name": [event.counterparty_name],
                "counterparty_iban": [event.counterparty_iban],
                "mcc": [event.mcc],
                "method": [event.method],
                "description": [event.description],
                "location": [event.location],
                "credit": [event.amount > 0],
            },
            schema={
                "counterparty_name": pl.String,
                "counterparty_iban": pl.String,
                "mcc": pl.Int32,
                "method": pl.String,
                "description": pl.String,
                "location": pl.String,
                "credit": pl.Boolean,
            },
        )
        cat, airport = row.select(
            category_expr(self.ruleset).cast(pl.String), airport_expr(self.ruleset)
        ).row(0)
        out = Categorised(str(cat), cat in self.ruleset.special, bool(airport))
        self._categories[key] = out
        if len(self._categories) > 50_000:
            self._categories.popitem(last=False)
        return out

    def _abroad(self, event: Event) -> bool:
        # the same definition as features.pipeline.narrow_rows (country set and not home)
        return event.country is not None and event.country != self.features.home_country

    def triggered(self, event: Event, cat: Categorised, large: bool, day: date) -> list[Trigger]:
        signals = {"airport": cat.airport, "abroad": self._abroad(event), "large_inflow": large}
        direction = "in" if event.amount > 0 else "out"
        hits = []
        for t in self.online.triggers:
            if t.direction not in ("any", direction):
                continue
            if t.methods and event.method not in t.methods:
                continue
            if cat.category in t.categories or any(signals[s] for s in t.signals):
                hits.append(t)
        return hits

    def _campaigns(self, triggers: list[Trigger], day: date) -> list[Campaign]:
        ids = {c for t in triggers for c in t.campaigns}
        products = {p for t in triggers for p in t.products}
        loaded = self.models.bundles
        return [
            c
            for c in self.campaigns
            if (c.id in ids or c.product in products) and c.active_on(day) and c.product in loaded
        ]

    def _names_of(self, conn: Connection, run_id: str) -> list[str]:
        if run_id not in self._names:
            self._names = {run_id: store.feature_names(conn, run_id)}
        return self._names[run_id]

    # ---- one event ------------------------------------------------------------------------
    def handle(self, event: Event) -> tuple[dict[str, Any], bool]:
        """The answer to one event and whether it is a replay of a stored answer."""
        with self.reader.connect() as conn:
            prior = store.stored_response(conn, event.event_id)
            if prior is not None:
                return prior, True
            consent = store.read_consent(conn, event.customer_id)
            profile = None
            if consent is not None and consent["payment_data_marketing"]:
                run_id = conn.execute(sa.select(store.snapshots.c.run_id)).scalar()
                if run_id is not None:
                    names = self._names_of(conn, run_id)
                    profile = store.read_profile(conn, event.customer_id, names)
        day = event.booked_at.date()
        if consent is None or not consent["payment_data_marketing"]:
            code = Reason.NO_CONSENT_ROW if consent is None else Reason.OBJECTED
            return self._record_none(event, code, keep_customer=False)
        cat = self.categorise(event)
        if cat.special:  # never stored, never used: only the event id and the code are kept
            return self._record_none(event, Reason.SPECIAL_CATEGORY, keep_customer=False)
        if profile is None:
            return self._record_none(event, Reason.NO_PROFILE, keep_customer=True)
        facts = EventFacts(
            day, event.amount, cat.category, cat.airport, self._abroad(event), event.balance_after
        )
        income = profile.features.get("income_monthly_amount")
        large = is_large_inflow(facts, income, self.features)
        profile.features, profile.features_as_of = refresh(
            profile.features,
            profile.features_as_of,
            profile.birth_date,
            facts,
            large,
            self.ruleset,
            self.features,
        )
        profile.is_current = True  # the event is a payment on the account
        if cat.category == "child_benefit" and event.amount > 0:
            profile.child_benefit = True
        triggers = self.triggered(event, cat, large, day)
        campaigns = self._campaigns(triggers, day)
        if not campaigns:
            return self._record_none(event, Reason.NO_TRIGGER, keep_customer=True, profile=profile)
        return self._decide(event, profile, consent, triggers, campaigns, day)

    def _record_none(
        self,
        event: Event,
        code: Reason,
        *,
        keep_customer: bool,
        profile: store.Profile | None = None,
    ) -> tuple[dict[str, Any], bool]:
        response = _response(event, None, code, [])
        with self._transaction(event.customer_id) as conn:
            prior = store.stored_response(conn, event.event_id)
            if prior is not None:
                return prior, True
            if profile is not None:
                store.save_profile(conn, profile, self._names[profile.run_id])
            store.store_response(
                conn, event.event_id, event.customer_id if keep_customer else None, response
            )
        return response, False

    @contextmanager
    def _transaction(self, customer_id: str) -> Iterator[Connection]:
        """A ledger write transaction that batch runs exclude (see module docstring)."""
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock_shared(lg._LOCK_KEY)))
                conn.execute(
                    sa.select(
                        sa.func.pg_advisory_xact_lock(
                            _EVENT_LOCK_CLASS, sa.func.hashtext(customer_id)
                        )
                    )
                )
            yield conn

    def _inputs(
        self, event: Event, profile: store.Profile, consent: dict[str, Any], scores: pl.DataFrame
    ) -> Inputs:
        cid = event.customer_id
        day = event.booked_at.date()
        age = pl.select(full_years(pl.lit(profile.birth_date), day)).item()
        return Inputs(
            scores=scores.lazy(),
            facts=pl.LazyFrame(
                {
                    "customer_id": [cid],
                    "age": [age],
                    "is_current": [profile.is_current],
                    "child_benefit": [profile.child_benefit],
                },
                schema={
                    "customer_id": pl.String,
                    "age": pl.Int32,
                    "is_current": pl.Boolean,
                    "child_benefit": pl.Boolean,
                },
            ),
            held=pl.LazyFrame(
                {"customer_id": [cid] * len(profile.held), "product": profile.held},
                schema={"customer_id": pl.String, "product": pl.String},
            ).with_columns(holds=pl.lit(True)),
            distress=pl.LazyFrame(
                {"customer_id": [cid], "in_distress": [profile.in_distress]},
                schema={"customer_id": pl.String, "in_distress": pl.Boolean},
            ),
            consents=pl.LazyFrame(
                {"customer_id": [cid], **{c: [bool(consent[c])] for c in CHANNELS}},
                schema={"customer_id": pl.String, **{c: pl.Boolean for c in CHANNELS}},
            ),
            history=pl.LazyFrame(schema=HISTORY_SCHEMA),
        )

    def _decide(
        self,
        event: Event,
        profile: store.Profile,
        consent: dict[str, Any],
        triggers: list[Trigger],
        campaigns: list[Campaign],
        day: date,
    ) -> tuple[dict[str, Any], bool]:
        bundles = {
            p: b for p, b in self.models.bundles.items() if p in {c.product for c in campaigns}
        }
        names = self._names[profile.run_id]
        row = pl.DataFrame(
            {"customer_id": [event.customer_id], **{n: [profile.features.get(n)] for n in names}},
            strict=False,
        ).with_columns(pl.exclude("customer_id").cast(pl.Float64))
        scores = score_features(row, bundles) if bundles else pl.DataFrame(schema=SCORE_SCHEMA)
        pairs = scores.select("customer_id", "product")
        model_reasons = explain_features(row, bundles, pairs, day, self.serving.reasons_per_offer)
        said = [t.reason.format(day=day.isoformat()) for t in triggers if t.reason]
        inputs = self._inputs(event, profile, consent, scores)
        run_id = f"event:{event.event_id}"
        with self._transaction(event.customer_id) as conn:
            prior = store.stored_response(conn, event.event_id)
            if prior is not None:
                return prior, True
            history = _customer_history(conn, event.customer_id)
            decision = decide(_with_history(inputs, history), campaigns, self.serving, day)
            decisions = _with_reasons(decision.decisions, model_reasons, said)
            response = _pick(event, decisions)
            self._write(conn, event, run_id, decisions, campaigns, scores, day)
            store.save_profile(conn, profile, names)
            store.store_response(conn, event.event_id, event.customer_id, response)
        return response, False

    def _write(
        self,
        conn: Connection,
        event: Event,
        run_id: str,
        decisions: pl.DataFrame,
        campaigns: list[Campaign],
        scores: pl.DataFrame,
        day: date,
    ) -> None:
        counts = dict(decisions.group_by("reason").len().iter_rows())
        versions = dict(scores.select("product", "model_version").unique().iter_rows())
        insert_frame(
            conn,
            lg.runs,
            pl.DataFrame(
                {
                    "run_id": [run_id],
                    "created_at": [datetime.now()],
                    "as_of": [day],
                    "config_hash": [config_hash(self.serving, campaigns)],
                    "model_versions": [json.dumps(versions, sort_keys=True)],
                    "status": ["complete"],
                    "summary": [json.dumps({"source": "event", "counts": counts})],
                }
            ),
        )
        rows = decisions.with_columns(
            run_id=pl.lit(run_id), reasons=pl.col("reasons").list.join("\n")
        )
        insert_frame(conn, lg.decisions, rows.select([c.name for c in lg.decisions.columns]))
        contacted = rows.filter(pl.col("outcome") == Reason.SELECTED.value).select(
            "customer_id",
            "product",
            "channel",
            "campaign_id",
            "run_id",
            contacted_at=pl.lit(event.booked_at),
            source=pl.lit("event"),
        )
        insert_frame(conn, lg.contacts, contacted)


def _customer_history(conn: Connection, customer_id: str) -> pl.DataFrame:
    """All of one customer's contacts (the policy windows are applied by `decide`)."""
    c = lg.contacts.c
    rows = conn.execute(
        sa.select(c.customer_id, c.product, c.channel, c.contacted_at, c.outcome).where(
            c.customer_id == customer_id
        )
    ).all()
    return pl.DataFrame([tuple(r) for r in rows], schema=HISTORY_SCHEMA, orient="row")


def _with_history(inputs: Inputs, history: pl.DataFrame) -> Inputs:
    from dataclasses import replace

    return replace(inputs, history=history.lazy())


def _with_reasons(decisions: pl.DataFrame, model: pl.DataFrame, said: list[str]) -> pl.DataFrame:
    """The trigger's sentence first, then the model's top contributions (selected rows only)."""
    out = decisions.join(model, ["customer_id", "product"], "left")
    selected = pl.col("outcome") == Reason.SELECTED.value
    full = pl.concat_list(pl.lit(said, pl.List(pl.String)), pl.col("reasons").fill_null([]))
    return out.with_columns(
        reasons=pl.when(selected).then(full).otherwise(pl.lit([], pl.List(pl.String)))
    ).select(*DECISION_SCHEMA, "reasons")


def _pick(event: Event, decisions: pl.DataFrame) -> dict[str, Any]:
    """The answer: the selected offer if any; else the best-scored candidate's reason."""
    if decisions.is_empty():
        return _response(event, None, Reason.BELOW_THRESHOLD, [])
    selected = decisions.filter(pl.col("outcome") == Reason.SELECTED.value)
    if selected.height:
        row = selected.row(0, named=True)
        return _response(event, row, Reason.SELECTED, list(row["reasons"]))
    row = decisions.sort("propensity", descending=True).row(0, named=True)
    return _response(event, row, Reason(row["reason"]), [])


def _response(
    event: Event, row: dict[str, Any] | None, code: Reason, reasons: list[str]
) -> dict[str, Any]:
    offer = code is Reason.SELECTED
    return {
        "event_id": event.event_id,
        "decision": "offer" if offer else "none",
        "campaign_id": row["campaign_id"] if row else None,
        "product": row["product"] if row else None,
        "channel": row["channel"] if offer and row else None,
        "propensity": round(float(row["propensity"]), 6) if row else None,
        "reason_code": code.value,
        "reasons": reasons,
        "decided_at": datetime.now().isoformat(timespec="milliseconds"),
    }
