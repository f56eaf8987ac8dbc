"""The online feature store: what a real-time decision needs, written by every batch run.

Three tables in the ledger database (their own SQLAlchemy MetaData, created on first use):

- `online_consents`: the consent row of every customer who has one, with the objection gate's
  answer `may_profile` (objectors included, so an event of an objector is refused with the
  right code; nothing else is kept about them) and the row's `updated_at`, which the
  objection register is compared with.
- `online_profiles`: one row per consenting customer: the features as of the batch run (a JSON
  array in the order of `online_snapshots.feature_names`), the facts the gates need (birth
  date, current customer, child benefit, distress, products held) and the date the features
  are as of (moved forward by each event, see `serving.online_features`).
- `online_events`: one row per event id with the response given (idempotency). Events that
  were refused before profiling (objection, special category) keep no customer id.

The batch engine replaces the snapshot in one transaction under the ledger lock, so an event
sees either the old or the new snapshot, never a mix.

The objection register (`serving.objections`) is laid over the consent rows by the one rule
(`features.consent.with_objections`) twice: when a snapshot is written (inside its lock, so
an objection recorded while the run computed is kept) and when an event's consent row is
read (`read_consents`, per micro-batch), so an objection recorded since the last run stops
the customer's next event. `record_objection` records one and deletes the customer's
profile at once.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from features.casting import LOCAL_TIMEZONE, local_now
from features.config import FeatureConfig
from features.consent import with_objections
from features.schemas import CHANNELS, DATETIME, Tables
from models.bundle import ID_COLUMNS
from serving import ledger as lg
from serving import objections as register
from serving.config import ServingConfig
from serving.consent import consent_gate
from serving.eligibility import customer_facts, distress_frame, held_products
from serving.ledger_io import insert_frame, merge_imported
from serving.ledger_lock import check_reachable

log = logging.getLogger(__name__)

metadata = sa.MetaData()
snapshots = sa.Table(
    "online_snapshots",
    metadata,
    sa.Column("run_id", sa.String(200), primary_key=True),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("feature_names", sa.Text, nullable=False),  # JSON array
    sa.Column("customers", sa.Integer, nullable=False),
)
consents = sa.Table(
    "online_consents",
    metadata,
    sa.Column("customer_id", sa.String(100), primary_key=True),
    sa.Column("payment_data_marketing", sa.Boolean, nullable=False),
    # the objection gate's own answer (`features.consent.consenting_ids`), not re-derived
    sa.Column("may_profile", sa.Boolean, nullable=False),
    *(sa.Column(c, sa.Boolean, nullable=False) for c in CHANNELS),
    sa.Column("updated_at", sa.DateTime),  # the bank's row (or the register's objection)
)
CONSENT_SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.String(),
    "payment_data_marketing": pl.Boolean(),
    "may_profile": pl.Boolean(),
    **{c: pl.Boolean() for c in CHANNELS},
    "updated_at": DATETIME,
}
profiles = sa.Table(
    "online_profiles",
    metadata,
    sa.Column("customer_id", sa.String(100), primary_key=True),
    sa.Column("run_id", sa.String(200), nullable=False),
    sa.Column("features_as_of", sa.Date, nullable=False),
    sa.Column("birth_date", sa.Date, nullable=False),
    sa.Column("is_current", sa.Boolean, nullable=False),
    sa.Column("child_benefit", sa.Boolean, nullable=False),
    sa.Column("in_distress", sa.Boolean, nullable=False),
    sa.Column("held", sa.Text, nullable=False),  # JSON array of products held
    sa.Column("features", sa.Text, nullable=False),  # JSON {"v": [values]}
)
events = sa.Table(
    "online_events",
    metadata,
    sa.Column("event_id", sa.String(100), primary_key=True),
    sa.Column("customer_id", sa.String(100), index=True),
    sa.Column("received_at", sa.DateTime, nullable=False),
    sa.Column("response", sa.Text, nullable=False),  # the JSON answer given
)


@dataclass
class Profile:
    """One consenting customer's row of `online_profiles`, features as a name -> value dict."""

    customer_id: str
    run_id: str
    features_as_of: date
    birth_date: date
    is_current: bool
    child_benefit: bool
    in_distress: bool
    held: list[str]
    features: dict[str, Any]


def create_tables(conn: Connection) -> None:
    """The online tables (the objection register is a ledger table, `serving.ledger`);
    `online_consents.updated_at` is added to a store written before it existed (its rows
    are replaced by the next snapshot; until then a row without it never outdates an
    objection)."""
    metadata.create_all(conn, checkfirst=True)
    names = {c["name"] for c in sa.inspect(conn).get_columns(consents.name)}
    if "updated_at" not in names:
        conn.exec_driver_sql(f"ALTER TABLE {consents.name} ADD COLUMN updated_at TIMESTAMP")
        log.warning("online store upgraded: online_consents.updated_at added")


def _has_tables(engine: Engine) -> bool:
    """The online tables and the register exist in their current form (no DDL needed)."""
    with lg.reading(engine) as conn:
        found = sa.inspect(conn)
        if not all(found.has_table(t) for t in (*metadata.tables, *lg.metadata.tables)):
            return False
        return "updated_at" in {c["name"] for c in found.get_columns(consents.name)}


def with_register(rows: pl.DataFrame, objections: pl.DataFrame) -> pl.DataFrame:
    """Online consent rows (`CONSENT_SCHEMA`) with the objection register laid over them by
    the one rule (`features.consent.with_objections`): where an objection stands the row is
    the objection alone (`may_profile` false, no channel); a customer in the register
    without a row gets one."""
    over = with_objections(rows.lazy().cast(CONSENT_SCHEMA), objections)  # type: ignore[arg-type]
    may = pl.col("may_profile").fill_null(False) & pl.col("payment_data_marketing")
    return over.with_columns(may_profile=may).select(list(CONSENT_SCHEMA)).collect()


def _feature_json(features: pl.DataFrame, names: list[str]) -> pl.Expr:
    values = pl.concat_list([pl.col(n).cast(pl.Float64) for n in names]).alias("v")
    return pl.struct(values).struct.json_encode().alias("features")


def write_online_snapshot(
    ledger_url: str,
    tables: Tables,
    features: pl.DataFrame,
    as_of: date,
    config: ServingConfig,
    *,
    run_id: str,
    feature_config: FeatureConfig | None = None,
    facts: pl.DataFrame | None = None,
    held: pl.DataFrame | None = None,
    distress: pl.DataFrame | None = None,
) -> int:
    """Replace the online store with this run's features and facts; returns profiles written.

    `features` is the frame the run scored (`build_features(...)`, consenting customers);
    `facts`, `held` and `distress` may be passed when the caller has them (the frames of
    `serving.decide.Inputs`), else they are computed here with the same functions the batch
    uses. Objectors are filtered out again here (their consent row alone is kept). Imported
    contact history (`tables.contacts`) is merged into the ledger as a batch run does, so
    events never decide on less history than the batch.
    """
    gate = consent_gate(tables)
    keep = gate.consenting.lazy()
    if facts is None:
        facts = customer_facts(gate.tables, as_of, config, feature_config).collect()
    if held is None:
        held = held_products(gate.tables, as_of).collect()
    if distress is None:
        distress = distress_frame(gate.tables, as_of, config, feature_config).collect()
    names = [c for c in features.columns if c not in ID_COLUMNS]
    held_json = (
        held.group_by("customer_id")
        .agg(pl.col("product").sort().alias("p"))
        .select("customer_id", pl.struct("p").struct.json_encode().alias("held"))
    )
    rows = (
        features.lazy()
        .join(keep, "customer_id", "semi")
        .select("customer_id", _feature_json(features, names))
        .join(
            tables.customers.select("customer_id", "birth_date").unique("customer_id"),
            "customer_id",
        )
        .join(
            facts.lazy().select("customer_id", "is_current", "child_benefit"), "customer_id", "left"
        )
        .join(distress.lazy().select("customer_id", "in_distress"), "customer_id", "left")
        .join(held_json.lazy(), "customer_id", "left")
        .select(
            "customer_id",
            run_id=pl.lit(run_id),
            features_as_of=pl.lit(as_of),
            birth_date=pl.col("birth_date"),
            is_current=pl.col("is_current").fill_null(False),
            child_benefit=pl.col("child_benefit").fill_null(False),
            in_distress=pl.col("in_distress").fill_null(False),
            held=pl.col("held").fill_null('{"p":[]}'),
            features=pl.col("features"),
        )
        .collect()
    )
    consent_rows = (
        tables.consents.select("customer_id", "payment_data_marketing", *CHANNELS, "updated_at")
        .unique("customer_id")
        .with_columns(pl.exclude("customer_id", "updated_at").fill_null(False))
        .join(keep.with_columns(may_profile=pl.lit(True)), "customer_id", "left")
        .with_columns(pl.col("may_profile").fill_null(False))
        # of an objector only the objection itself is kept: no channel permissions
        .with_columns([pl.col(c) & pl.col("may_profile") for c in CHANNELS])
        .select(list(CONSENT_SCHEMA))
        .collect()
    )
    snap = pl.DataFrame(
        {
            "run_id": [run_id],
            "as_of": [as_of],
            "created_at": [datetime.now()],
            "feature_names": [json.dumps(names)],
            "customers": [rows.height],
        }
    )
    engine = lg.make_engine(ledger_url)
    try:
        with lg.locked(engine) as conn:
            create_tables(conn)
            # events see the same history as batch runs: imported contacts go in first
            merge_imported(conn, tables.contacts.collect())
            # objections recorded while this run computed (the tables were loaded before)
            consent_rows = with_register(consent_rows, register.read_register(conn))
            allowed = consent_rows.filter("may_profile").select("customer_id")
            rows = rows.join(allowed, "customer_id", "semi")
            snap = snap.with_columns(customers=pl.lit(rows.height))
            for table in (profiles, consents, snapshots):
                conn.execute(sa.delete(table))
            insert_frame(conn, snapshots, snap)
            insert_frame(conn, consents, consent_rows)
            insert_frame(conn, profiles, rows)
    finally:
        engine.dispose()
    log.info("online store: %d profile(s) as of %s (run %s)", rows.height, as_of, run_id)
    return rows.height


def feature_names(conn: Connection, run_id: str) -> list[str]:
    """The feature order of a snapshot."""
    text = conn.execute(
        sa.select(snapshots.c.feature_names).where(snapshots.c.run_id == run_id)
    ).scalar_one()
    return list(json.loads(text))


def snapshot_created(conn: Connection, run_id: str) -> datetime | None:
    """When the snapshot of `run_id` was written (tells a replaced run from the old one)."""
    return conn.execute(
        sa.select(snapshots.c.created_at).where(snapshots.c.run_id == run_id)
    ).scalar()


def read_consents(conn: Connection, customer_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Consent rows by customer as they stand now: the snapshot's rows with the objection
    register laid over them (an objection recorded since the last run stops profiling at
    once). A customer without a row is absent: treated as objecting."""
    rows = conn.execute(sa.select(consents).where(consents.c.customer_id.in_(customer_ids)))
    found = {r.customer_id: dict(r._mapping) for r in rows}
    objected = register.read_register(conn, customer_ids)
    if objected.is_empty():  # the common case: no polars work per micro-batch
        return found
    mine = objected["customer_id"].to_list()
    frame = pl.DataFrame([found[c] for c in mine if c in found], schema=CONSENT_SCHEMA)
    for row in with_register(frame, objected).iter_rows(named=True):
        found[row["customer_id"]] = row
    return found


def record_objection(
    ledger_url: str,
    customer_id: str,
    source: str,
    *,
    timezone: str = LOCAL_TIMEZONE,
    lock_timeout: float = lg.DEFAULT_LOCK_TIMEOUT,
) -> dict[str, Any]:
    """Record the customer's objection now (bank local time in `timezone`, as the consents
    table's `updated_at`) and delete their online profile (the features as of the last run),
    in one transaction that waits for the customer's events in flight
    (`serving.online_ledger.event_transaction`). What was done, for the CLI and the API."""
    from serving.online_ledger import event_transaction

    at = local_now(timezone)
    engine = lg.make_engine(ledger_url, lock_timeout)
    try:
        check_reachable(engine)
        with lg.ledger_errors(engine):
            if not _has_tables(engine):  # DDL once, under the ledger lock
                with lg.locked(engine, "objection", lock_timeout) as conn:
                    create_tables(conn)
            with event_transaction(engine, [customer_id]) as conn:
                register.record(conn, customer_id, at, source)
                mine = profiles.c.customer_id == customer_id
                deleted = bool(conn.execute(sa.delete(profiles).where(mine)).rowcount)
    finally:
        engine.dispose()
    log.info("objection recorded (%s); online profile deleted: %s", source, deleted)
    return {
        "customer_id": customer_id,
        "recorded_at": at.isoformat(),
        "source": source,
        "online_profile_deleted": deleted,
    }


def read_profiles(
    conn: Connection, customer_ids: list[str], names: list[str]
) -> dict[str, Profile]:
    """Consenting customers' profiles (absent when the last batch run had none)."""
    if not customer_ids:
        return {}
    rows = conn.execute(sa.select(profiles).where(profiles.c.customer_id.in_(customer_ids)))
    out = {}
    for row in rows:
        m = row._mapping
        values = json.loads(m["features"])["v"]
        out[m["customer_id"]] = Profile(
            customer_id=m["customer_id"],
            run_id=m["run_id"],
            features_as_of=m["features_as_of"],
            birth_date=m["birth_date"],
            is_current=bool(m["is_current"]),
            child_benefit=bool(m["child_benefit"]),
            in_distress=bool(m["in_distress"]),
            held=list(json.loads(m["held"])["p"]),
            features=dict(zip(names, values, strict=True)),
        )
    return out


_SAVE = (
    sa.update(profiles)
    .where(profiles.c.customer_id == sa.bindparam("cid"))
    .values(
        features=sa.bindparam("f"),
        features_as_of=sa.bindparam("as_of"),
        is_current=sa.bindparam("cur"),
        child_benefit=sa.bindparam("cb"),
    )
)


def save_profiles(conn: Connection, saved: list[Profile], names: list[str]) -> None:
    """Write back profiles refreshed by events (features and the facts an event can change),
    in one statement (executemany: one round trip per micro-batch)."""
    if not saved:
        return
    conn.execute(
        _SAVE,
        [
            {
                "cid": q.customer_id,
                "f": json.dumps({"v": [q.features.get(n) for n in names]}),
                "as_of": q.features_as_of,
                "cur": q.is_current,
                "cb": q.child_benefit,
            }
            for q in saved
        ],
    )


def stored_response(conn: Connection, event_id: str) -> dict[str, Any] | None:
    """The answer given to an event id before (idempotency), None for a new event."""
    text = conn.execute(
        sa.select(events.c.response).where(events.c.event_id == event_id)
    ).scalar_one_or_none()
    return None if text is None else dict(json.loads(text))


def stored_responses(conn: Connection, event_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The answers given before to any of these event ids."""
    rows = conn.execute(
        sa.select(events.c.event_id, events.c.response).where(events.c.event_id.in_(event_ids))
    )
    return {r.event_id: dict(json.loads(r.response)) for r in rows}


def store_responses(
    conn: Connection, answers: list[tuple[str, str | None, dict[str, Any]]]
) -> None:
    """(event_id, customer_id or None, response) rows; a repeated event id fails (primary key)."""
    if not answers:
        return
    now = datetime.now()
    conn.execute(
        sa.insert(events),
        [
            {"event_id": e, "customer_id": c, "received_at": now, "response": json.dumps(r)}
            for e, c, r in answers
        ],
    )
