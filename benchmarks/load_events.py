"""Load test of `propensity serve`: a fixed rate of mixed events for N customers, open loop.

Setup (not timed): a synthetic bank, champion models (`propensity train --promote`, or small
quick models with `--quick-models`), the online snapshot in the ledger, a token, and the real
server (`propensity serve`, a subprocess on 127.0.0.1). Then events are sent at `--rate` per
second for `--duration` seconds whatever the answers take (open loop, asyncio + httpx), and
the script reports throughput, p50/p95/p99/max latency, errors, answers by reason code, and
the cap violations found by SQL on the ledger afterwards (must be 0).

Mix: card payments at an airport (35 %) or abroad (10 %), child benefit (5 %), large inflows
(5 %), pharmacy payments (special category, 3 %), groceries (no trigger, 40 %); 2 % of the
events are replays of an earlier event id. Customers are drawn from the whole bank
(objectors and customers without a consent row included).

usage: python benchmarks/load_events.py [--customers 20000] [--rate 200] [--duration 60]
       [--ledger-url postgresql+psycopg://postgres@127.0.0.1:5432/test] [--work-dir DIR]
       [--quick-models]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

# this directory holds a file named like the `serving` package: keep it off the import path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import sqlalchemy as sa  # noqa: E402
import tomlkit  # noqa: E402

from features.config import FeatureConfig  # noqa: E402
from features.consent import consenting_tables  # noqa: E402
from features.io import load_tables  # noqa: E402
from features.pipeline import build_features  # noqa: E402
from features.schemas import Tables  # noqa: E402
from propensity.tokens import hash_secret  # noqa: E402
from serving.config import ContactPolicy, ServingConfig  # noqa: E402
from serving.online_store import write_online_snapshot  # noqa: E402

TOKEN = "load-test-token-0123456789abcdef"
PRODUCTS = ("savings", "insurance", "credit_card", "child_savings")


def _cli(*args: str, cwd: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-m", "propensity.cli", *args], check=True, cwd=cwd, env=env)


def prepare_bank(work: Path, customers: int, months: int, seed: int) -> Path:
    data = work / f"bank-{customers}c-{months}m-{seed}"
    if not (data / "customers.parquet").exists():
        _cli(
            "generate",
            "--customers",
            str(customers),
            "--months",
            str(months),
            "--seed",
            str(seed),
            "--out",
            str(data),
            cwd=work,
        )
    return data


def quick_models(features: pl.DataFrame, work: Path) -> None:
    """Small real LightGBM models on random labels (latency only; not a quality benchmark)."""
    from mlflow import MlflowClient

    from models.bundle import ModelBundle, schema_hash
    from models.calibration import ScoreCalibrator
    from models.estimator import PropensityEstimator
    from models.registry import model_name, quiet_mlflow
    from training.register import log_and_register

    quiet_mlflow()
    uri = f"sqlite:///{work / 'mlflow.db'}"
    names = [c for c in features.columns if c not in ("customer_id", "as_of")]
    x = features.select(pl.col(names).cast(pl.Float64)).to_numpy()
    for i, product in enumerate(PRODUCTS):
        y = (np.random.default_rng(i).random(len(x)) < 0.3).astype(int)
        est = PropensityEstimator(n_estimators=100, early_stopping_rounds=0, n_jobs=2).fit(x, y)
        cal = ScoreCalibrator().fit(est.predict_proba(x)[:, 1], y)
        bundle = ModelBundle(product, names, est, cal, schema_hash(names))
        bundle = bundle.with_feature_config(FeatureConfig())
        _, version = log_and_register(
            bundle,
            params={},
            metrics={},
            plots_dir=None,
            fingerprint="bench",
            work_dir=work,
            tracking_uri=uri,
        )
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.set_registered_model_alias(model_name(product), "champion", version)


def write_config(work: Path, ledger_url: str) -> Path:
    doc = tomlkit.document()
    doc["ledger"] = {"url": ledger_url}
    doc["online"] = {"tokens": [{"name": "bench", "role": "events", "hash": hash_secret(TOKEN)}]}
    path = work / "propensity.toml"
    path.write_text(tomlkit.dumps(doc))
    return path


def make_events(tables: Tables, as_of: date, n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    ids = tables.customers.select("customer_id").collect()["customer_id"].to_list()
    at = datetime.combine(as_of, datetime.min.time()) + timedelta(hours=9)
    kinds = [
        (
            "airport",
            0.35,
            dict(
                amount=-24.5,
                method="card",
                counterparty_name="Bagels Schiphol",
                mcc=5812,
                location="Schiphol",
                country="NL",
            ),
        ),
        (
            "abroad",
            0.10,
            dict(
                amount=-61.0,
                method="card",
                counterparty_name="Carrefour Paris",
                mcc=5411,
                location="Paris",
                country="FR",
            ),
        ),
        (
            "child_benefit",
            0.05,
            dict(
                amount=280.0,
                method="transfer",
                counterparty_name="SVB",
                description="Kinderbijslag 4e kwartaal",
            ),
        ),
        (
            "large_inflow",
            0.05,
            dict(amount=48_000.0, method="transfer", counterparty_name="Notaris Jansen"),
        ),
        (
            "pharmacy",
            0.03,
            dict(
                amount=-12.4,
                method="card",
                counterparty_name="Apotheek De Linde",
                mcc=5912,
                location="Utrecht",
                country="NL",
            ),
        ),
        (
            "groceries",
            0.42,
            dict(
                amount=-38.2,
                method="card",
                counterparty_name="Albert Heijn 1234",
                mcc=5411,
                location="Utrecht",
                country="NL",
            ),
        ),
    ]
    weights = [k[1] for k in kinds]
    events: list[dict] = []
    for i in range(n):
        if events and rng.random() < 0.02:
            events.append(dict(rng.choice(events)))  # a replay
            continue
        _, _, fields = rng.choices(kinds, weights)[0]
        when = at + timedelta(seconds=i * 0.1)
        events.append(
            {
                "event_id": f"ev-{seed}-{i}",
                "customer_id": rng.choice(ids),
                "booked_at": when.isoformat(),
                **fields,
            }
        )
    return events


class _Conn:
    """One keep-alive HTTP/1.1 connection: a request written as prepared bytes, the answer
    read by Content-Length. Far cheaper per request than a general client, so the load
    generator does not take the CPU the server under test needs (2 cores)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def post(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, await self.reader.readexactly(length)


def _request(host: str, port: int, body: dict) -> bytes:
    payload = json.dumps(body).encode()
    head = (
        f"POST /v1/events HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


async def fire(url: str, events: list[dict], rate: float) -> list[tuple[float, int, str]]:
    """Send each event at its slot (open loop) over a pool of keep-alive connections;
    (latency s, status, reason code) per event."""
    host, port = url.removeprefix("http://").split(":")
    pool: asyncio.Queue[_Conn] = asyncio.Queue()
    for _ in range(256):
        pool.put_nowait(_Conn(*await asyncio.open_connection(host, int(port))))
    requests = [_request(host, int(port), b) for b in events]
    results: list[tuple[float, int, str]] = []

    async def one(request: bytes, at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        t0 = time.perf_counter()
        conn = await pool.get()
        try:
            status, body = await asyncio.wait_for(conn.post(request), 30)
            code = json.loads(body).get("reason_code", "") if status == 200 else ""
            results.append((time.perf_counter() - t0, status, code))
            pool.put_nowait(conn)
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
            results.append((time.perf_counter() - t0, 0, type(exc).__name__))
            conn.writer.close()
            pool.put_nowait(_Conn(*await asyncio.open_connection(host, int(port))))

    start = time.perf_counter() + 0.5
    await asyncio.gather(*(one(r, start + i / rate) for i, r in enumerate(requests)))
    for _ in range(pool.qsize()):
        pool.get_nowait().writer.close()
    return results


def worker_metrics(url: str) -> dict[str, float]:
    """The decision worker's counters from the service's /metrics (one process's)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    out = {}
    for family in text_string_to_metric_families(text):
        if family.name.startswith("propensity_decision_"):
            for s in family.samples:
                le = s.labels.get("le")
                out[s.name + (f"@{le}" if le else "")] = s.value
    return out


def worker_line(m: dict[str, float], processes: int) -> str:
    """Batches, events per batch, and the mean queue wait and work per batch."""
    n = m.get("propensity_decision_batch_seconds_count", 0.0)
    if not n:
        return "decision worker: no batches reported"
    events = m["propensity_decision_batch_events_sum"] / n
    wait = m["propensity_decision_queue_seconds_sum"] / n * 1000
    work = m["propensity_decision_batch_seconds_sum"] / n * 1000
    slow = n - m.get("propensity_decision_batch_seconds_bucket@0.05", n)
    where = "" if processes == 1 else f" (one of {processes} processes)"
    return (
        f"decision worker{where}: {n:,.0f} batches, {events:.1f} events each, oldest event "
        f"waited {wait:.1f} ms, batch took {work:.1f} ms on average; {slow:,.0f} batches > 50 ms"
    )


def cap_violations(url: str, as_of: date, policy: ContactPolicy) -> dict[str, int]:
    """Customers (or customer-product pairs) over a cap around `as_of`, by SQL."""
    mid = datetime.combine(as_of, datetime.min.time())

    def win(days: int) -> dict[str, datetime]:
        return {"lo": mid - timedelta(days=days - 1), "hi": mid + timedelta(days=days)}

    checks = {
        "contacts": (
            "select customer_id from contacts where contacted_at >= :lo and contacted_at"
            f" < :hi group by customer_id having count(*) > {policy.max_contacts}",
            win(policy.contacts_window_days),
        ),
        "phone": (
            "select customer_id from contacts where channel = 'phone' and contacted_at >= :lo"
            f" and contacted_at < :hi group by customer_id having count(*) > {policy.max_phone}",
            win(policy.phone_window_days),
        ),
        "product": (
            "select customer_id from contacts where contacted_at >= :lo and contacted_at"
            " < :hi and source <> 'import' group by customer_id, product"
            " having count(*) > 1",
            win(policy.product_cooldown_days),
        ),
    }
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        out = {k: len(conn.execute(sa.text(q), p).all()) for k, (q, p) in checks.items()}
    engine.dispose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--months", type=int, default=18)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--rate", type=float, default=200.0, help="events per second")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds")
    ap.add_argument("--ledger-url", default=None, help="default: SQLite in the work dir")
    ap.add_argument("--work-dir", type=Path, default=Path("bench-events"))
    ap.add_argument("--quick-models", action="store_true", help="skip real training")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--workers", type=int, default=1, help="server processes")
    args = ap.parse_args()

    work = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    data = prepare_bank(work, args.customers, args.months, args.seed)
    tables = load_tables(data).tables
    last = tables.transactions.select(pl.col("booked_at").max()).collect().item()
    as_of = last.date() + timedelta(days=1)
    # cached beside the models trained on them (delete the work dir after changing features)
    cached = work / f"features-{data.name}-{as_of}.parquet"
    if cached.exists():
        features = pl.read_parquet(cached)
    else:
        features = build_features(consenting_tables(tables), as_of, FeatureConfig()).collect()
        features.write_parquet(cached)
    if not (work / "mlflow.db").exists():
        if args.quick_models:
            quick_models(features, work)
        else:
            _cli("train", str(data), "--work-dir", str(work), "--promote", cwd=work)
    ledger = args.ledger_url or f"sqlite:///{work / 'ledger.sqlite'}"
    if ledger.startswith("sqlite"):
        Path(ledger.removeprefix("sqlite:///")).unlink(missing_ok=True)
    else:  # a schema of its own: never drop tables anybody else uses
        if "options=" not in ledger:
            engine = sa.create_engine(ledger)
            with engine.begin() as conn:
                conn.execute(sa.text("create schema if not exists bench_load_events"))
            engine.dispose()
            sep = "&" if "?" in ledger else "?"
            ledger = f"{ledger}{sep}options=-csearch_path%3Dbench_load_events"
        engine = sa.create_engine(ledger)
        with engine.begin() as conn:
            for t in (
                "online_events",
                "online_profiles",
                "online_consents",
                "online_snapshots",
                "decisions",
                "contacts",
                "runs",
                "imports",
            ):
                conn.execute(sa.text(f"drop table if exists {t}"))
        engine.dispose()
    write_online_snapshot(ledger, tables, features, as_of, ServingConfig(), run_id=f"run-{as_of}")
    config = write_config(work, ledger)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    log = (work / "server.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "propensity.cli",
            "serve",
            "--config",
            str(config),
            "--work-dir",
            str(work),
            "--port",
            str(args.port),
            "--workers",
            str(args.workers),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=work,
    )
    url = f"http://127.0.0.1:{args.port}"
    try:
        why = "no answer"
        for _ in range(300):
            try:
                ready = httpx.get(f"{url}/readyz", timeout=1)
                if ready.status_code == 200:
                    break
                why = ready.json().get("detail", why)
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        else:  # e.g. models of an older feature version: delete WORK/mlflow.db to retrain
            raise SystemExit(f"server not ready ({why}); see {work / 'server.log'}")
        n = int(args.rate * args.duration)
        events = make_events(tables, as_of, n, args.seed)
        warm = make_events(tables, as_of, 50, args.seed + 1000)
        asyncio.run(fire(url, warm, 20))
        before = worker_metrics(url)
        t0 = time.perf_counter()
        results = asyncio.run(fire(url, events, args.rate))
        elapsed = time.perf_counter() - t0 - 0.5
        worker = {k: v - before.get(k, 0.0) for k, v in worker_metrics(url).items()}
    finally:
        server.terminate()
        server.wait(timeout=30)
    lat = np.array([r[0] for r in results]) * 1000
    errors = sum(1 for r in results if r[1] != 200)
    reasons: dict[str, int] = {}
    for _, status, code in results:
        if status == 200:
            reasons[code] = reasons.get(code, 0) + 1
    violations = cap_violations(ledger, as_of, ServingConfig().policy)
    backend = ledger.split(":")[0].split("+")[0]
    p50, p95, p99 = np.percentile(lat, [50, 95, 99])
    print(
        "\n| ledger | customers | target/s | events | achieved/s | p50 ms | p95 ms | p99 ms | "
        "max ms | errors | cap violations |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {backend} | {args.customers:,} | {args.rate:g} | {len(results):,} | "
        f"{len(results) / elapsed:.0f} | {p50:.1f} | {p95:.1f} | {p99:.1f} | {lat.max():.1f} | "
        f"{errors} | {sum(violations.values())} |"
    )
    print("\nanswers by reason:", json.dumps(dict(sorted(reasons.items()))))
    print("cap violations by rule:", json.dumps(violations))
    print(worker_line(worker, args.workers))


if __name__ == "__main__":
    main()
