"""Benchmark: test ROC-AUC of the four products trained on everyone and on samples of customers.

    python benchmarks/training_sample.py [--customers 100000] [--samples 0,50000,25000,12500]
        [--months 24] [--seed 7] [--root /tmp/training-sample]

The evidence for `TrainingConfig.sample_customers` (docs/bank-sizes.md). Generates the bank
once (reused after). Then builds ONE test set: every consenting customer at the test date (the
date `train_products` chooses), with each product's label. Each sample size (0: everyone)
trains in a fresh child process with the library path (`train_products`, default settings
apart from `sample_customers`), so its wall time, CPU time and peak RSS are its own; every
model is then scored on that same test set. Prints one markdown row per sample and product:
test ROC-AUC on everyone, the gap to training on everyone, the AUC the run itself reported
(on its sampled customers), training rows and positives, wall / CPU seconds and the peak RSS
while training (sampled; loading the tables before it, whose transaction-id check holds every
id, is printed apart).
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

HEADER = (
    "| sample | product | ROC-AUC (everyone at test date) | gap to everyone | run's own test "
    "AUC | train rows | train pos. | wall s | CPU s | training peak RSS GB |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


def bank(root: Path, customers: int, months: int, seed: int) -> Path:
    from synthbank import generate

    out = root / f"bank-{customers}c-{months}m-seed{seed}"
    if not (out / "customers.parquet").exists():
        print(f"generating {out} ...", flush=True)
        start = time.perf_counter()
        generate(customers=customers, months=months, seed=seed, out=out)
        print(f"generated in {time.perf_counter() - start:.0f} s", flush=True)
    return out


def test_set(data: Path, out: Path) -> Path:
    """Features and every product's label of all consenting customers at the test date."""
    import polars as pl

    from features.config import FeatureConfig
    from features.consent import consenting_tables
    from features.customers import product_names
    from features.io import load_tables
    from features.pipeline import build_features
    from models.products import DEFAULT_PRODUCT_SPECS
    from training.config import TrainingConfig
    from training.labels import build_labels
    from training.splits import choose_snapshots, data_coverage

    if out.exists():
        return out
    tables = consenting_tables(load_tables(data).tables)
    coverage = data_coverage(tables)
    s = choose_snapshots(coverage.start, coverage.end, TrainingConfig())
    config = FeatureConfig()
    pinned = config.model_copy(update={"products": product_names(tables.products, None)})
    frame = build_features(tables, s.test, pinned).collect()
    for spec in DEFAULT_PRODUCT_SPECS:
        labels = build_labels(tables, spec, [s.test], s.horizon_days).collect()
        frame = frame.join(
            labels.select("customer_id", pl.col("label").alias(f"label_{spec.name}")),
            on="customer_id",
            how="left",
        )
    frame.with_columns(test_as_of=pl.lit(s.test)).write_parquet(out)
    print(f"test set: {frame.height:,} customers at {s.test}", flush=True)
    return out


class RssPeak:
    """The largest resident set of this process while the block runs (sampled every 0.1 s),
    so the training's own peak is seen apart from loading the tables before it."""

    def __enter__(self) -> RssPeak:
        import threading

        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        page = resource.getpagesize()
        while True:
            with open("/proc/self/statm") as f:
                self.peak = max(self.peak, int(f.read().split()[1]) * page)
            if self._stop.wait(0.1):
                return

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def one(data: Path, sample: int, root: Path, test_path: Path) -> dict:
    """Train with `sample_customers = sample` here; score every model on the common test set."""
    import polars as pl
    from sklearn.metrics import roc_auc_score

    from features.io import load_tables
    from training.config import TrainingConfig
    from training.run import read_truth
    from training.train import train_products

    work = root / f"work-{sample}"
    shutil.rmtree(work, ignore_errors=True)
    tables = load_tables(data).tables
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB -> GB
    wall, cpu = time.perf_counter(), time.process_time()
    with RssPeak() as rss:
        results = train_products(
            tables, TrainingConfig(sample_customers=sample), None, work, truth=read_truth(data)
        )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    test = pl.read_parquet(test_path)
    rows = {}
    for product, r in results.items():
        if not r.trained or r.bundle is None:
            rows[product] = {"status": r.message}
            continue
        part = test.filter(pl.col(f"label_{product}").is_not_null())
        scores = r.bundle.predict_proba(part)
        rows[product] = {
            "auc": float(roc_auc_score(part[f"label_{product}"].to_numpy(), scores)),
            "own_auc": r.metrics["roc_auc"],
            "n_train": r.counts["n_train"],
            "n_pos_train": r.counts["n_pos_train"],
            "test_rows": part.height,
        }
    peak = rss.peak / 1e9
    times = {"wall": wall, "cpu": cpu, "peak_gb": peak, "load_gb": loaded}
    return {"sample": sample, **times, "products": rows}


def run(args: argparse.Namespace) -> list[str]:
    data = bank(args.root, args.customers, args.months, args.seed)
    test_path = test_set(data, args.root / f"test-{data.name}.parquet")
    found = {}
    for sample in args.samples:
        cmd = [sys.executable, __file__, "--one", str(sample), "--data", str(data)]
        cmd += ["--root", str(args.root), "--test", str(test_path)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        found[sample] = json.loads(out.strip().splitlines()[-1])
        f = found[sample]
        print(
            f"sample {sample or 'everyone'}: {f['wall']:.0f} s wall; load_tables peak "
            f"{f['load_gb']:.1f} GB before training",
            flush=True,
        )
    base = found.get(0, {}).get("products", {})
    lines = []
    for sample, f in found.items():
        label = f"{sample:,}" if sample else "everyone"
        for product, p in f["products"].items():
            if "auc" not in p:
                lines.append(f"| {label} | {product} | {p['status']} |||||||")
                continue
            ref = base.get(product, {}).get("auc")
            gap = "-" if ref is None else f"{p['auc'] - ref:+.4f}"
            lines.append(
                f"| {label} | {product} | {p['auc']:.4f} | {gap} | "
                f"{p['own_auc']:.4f} | {p['n_train']:,} | {p['n_pos_train']:,} | "
                f"{f['wall']:.0f} | {f['cpu']:.0f} | {f['peak_gb']:.1f} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--samples", default="0,50000,25000,12500")
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--root", type=Path, default=Path("/tmp/training-sample"))
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--test", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if args.one is not None:
        print(json.dumps(one(args.data, args.one, args.root, args.test)))
        return
    args.samples = [int(s) for s in args.samples.split(",")]
    args.root.mkdir(parents=True, exist_ok=True)
    lines = run(args)
    print()
    print(HEADER)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
