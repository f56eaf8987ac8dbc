"""Benchmark: the whole nightly job (`propensity run`, a subprocess, like a user) at a bank's size.

Generates the synthetic bank once into --dir (reused while its `_COMPLETE` marker matches the
arguments), then runs `propensity run` in the chosen modes, one after the other in one work
directory: `retrain` (validation, features, training on the configured sample, scoring,
selection, ledger, online snapshot, checks, report) first, then `score` (`[run] retrain =
false`: the nightly run with the champions the first run registered). For each run it prints
wall time, peak RSS of the whole process tree (psutil, polled every 0.2 s) and a table per
stage taken from the job's own `step finished: <stage> in <s> s` lines.

Run (1M customers x 24 months, about 500M transactions; needs ~16 GB and both cores):
    flock /tmp/bench.lock /work/venv/bin/python benchmarks/nightly.py --customers 1000000 \\
        --dir /tmp/bank-1m
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

# Running `python benchmarks/nightly.py` puts benchmarks/ first on sys.path, where sibling
# scripts (e.g. benchmarks/features.py) would shadow the packages of the same name.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

STEP = re.compile(r"^step finished: (.*) in ([0-9.]+) s$")


def generate_once(customers: int, months: int, seed: int, out: Path) -> None:
    """The synthetic bank in `out`, generated unless its marker says it is already there."""
    from synthbank import generate

    marker = out / "_COMPLETE"
    want = {"customers": customers, "months": months, "seed": seed}
    if marker.exists() and json.loads(marker.read_text()) == want:
        print(f"reusing the bank in {out}")
        return
    start = time.perf_counter()
    result = generate(customers, months, seed, out)
    marker.write_text(json.dumps(want))
    size = sum(p.stat().st_size for p in out.rglob("*.parquet")) / 2**30
    took = time.perf_counter() - start
    print(f"generated {result.rows['transactions']:,} transactions in {took:.0f} s, {size:.1f} GiB")


def tree_rss(proc: psutil.Process) -> int:
    """Resident memory of a process and all its children (Dask workers included)."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue
    return total


def run(cmd: list[str], log: Path) -> tuple[float, int, list[tuple[str, float]], int]:
    """(wall s, peak tree RSS bytes, [(stage, s)], exit code) of one command; output to `log`."""
    peak = 0
    with log.open("w") as out:
        start = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True)
        proc = psutil.Process(child.pid)
        done = threading.Event()

        def poll() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, tree_rss(proc))
                done.wait(0.2)

        watcher = threading.Thread(target=poll, daemon=True)
        watcher.start()
        code = child.wait()
        wall = time.perf_counter() - start
        done.set()
        watcher.join()
    stages = [
        (m.group(1), float(m.group(2)))
        for line in log.read_text().splitlines()
        if (m := STEP.match(line.strip()))
    ]
    return wall, peak, stages, code


def fresh_ledger(url: str | None, work: Path, mode: str) -> str:
    """An empty ledger per mode, so each run decides on the same (imported) history: an SQLite
    file in the work dir, or on PostgreSQL the schema `nightly_<mode>` (dropped and created;
    nothing else in the database is touched)."""
    if not url:
        path = work / f"ledger-{mode}.sqlite"
        path.unlink(missing_ok=True)
        return f"sqlite:///{path}"
    if not url.startswith("postgresql"):
        raise SystemExit(
            "--ledger-url: an SQLAlchemy PostgreSQL URL, e.g. postgresql+psycopg://u@h/db"
        )
    import sqlalchemy as sa

    schema = f"nightly_{mode}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    engine.dispose()
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


def config_text(data: Path, work: Path, ledger_url: str | None, retrain: bool, extra: str) -> str:
    """The propensity.toml of one benchmark run."""
    lines = [
        f'work_dir = "{work}"',
        "[data]",
        f'path = "{data}"',
        "[run]",
        f"retrain = {'true' if retrain else 'false'}",
        "promote = true",
    ]
    if ledger_url:
        lines += ["[ledger]", f'url = "{ledger_url}"']
    return "\n".join(lines) + "\n" + extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", type=Path, default=None, help="the bank (generated once)")
    parser.add_argument("--work", type=Path, default=None, help="work dir (default: temporary)")
    parser.add_argument("--ledger-url", default=None, help="default: SQLite in the work dir")
    parser.add_argument("--modes", default="retrain,score", help="retrain, score or both")
    parser.add_argument(
        "--config-extra", default="", help="TOML appended to the config, e.g. a [training] table"
    )
    args = parser.parse_args()
    data = args.dir or Path(f"/tmp/bank-{args.customers}c-{args.months}m-seed{args.seed}")
    generate_once(args.customers, args.months, args.seed, data)
    work = args.work or Path(tempfile.mkdtemp(prefix="nightly-"))
    work.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    for mode in args.modes.split(","):
        cfg = work / f"{mode}.toml"
        ledger = fresh_ledger(args.ledger_url, work, mode)
        cfg.write_text(config_text(data, work, ledger, mode == "retrain", args.config_extra))
        cmd = [
            sys.executable, "-m", "propensity.cli", "run", "--config", str(cfg),
            "--run-id", f"nightly-{mode}",
        ]  # fmt: skip
        wall, peak, stages, code = run(cmd, work / f"{mode}.log")
        load = os.getloadavg()
        print(f"\n== propensity run, mode {mode}: exit {code}, log {work / f'{mode}.log'}")
        print(f"wall {wall:.1f} s, peak RSS (process tree) {peak / 2**30:.2f} GiB, ", end="")
        print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        width = max([len(s) for s, _ in stages] + [5])
        print(f"| {'stage':<{width}} | seconds |")
        print(f"|{'-' * (width + 2)}|---------|")
        for name, took in stages:
            print(f"| {name:<{width}} | {took:7.1f} |")
        if code != 0:
            print((work / f"{mode}.log").read_text()[-3000:])
            break
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
