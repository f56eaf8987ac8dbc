"""Benchmark: test ROC-AUC per product on banks of different sizes, default settings.

    python benchmarks/bank_sizes.py [--sizes 2000,5000,20000,50000] [--months 24] [--seed 7]
        [--profile dutch|foreign] [--modes adaptive,fixed] [--root /tmp/bench-sizes]

For every size: generate the bank once (reused later), then train the products with the
default `TrainingConfig` ("adaptive": leaf size, tree size and L2 adapt to the positives) and,
with `fixed` in --modes, with the defaults before the adaptive rule (min_child_samples 300,
num_leaves 15, reg_lambda 1, floor 20 positives). Prints one markdown row per size, mode and
product: ROC-AUC, logistic baseline, oracle, test positives, training positives, fit time.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

HEADER = (
    "| customers | mode | product | ROC-AUC | baseline | oracle | test pos. | train pos. | "
    "status |\n|---|---|---|---|---|---|---|---|---|"
)


def _config(mode: str):
    from training.config import LightGBMParams, TrainingConfig

    if mode == "adaptive":
        return TrainingConfig()
    if mode == "fixed":
        fixed = LightGBMParams(min_child_samples=300, num_leaves=15, reg_lambda=1.0)
        return TrainingConfig(lightgbm=fixed, min_positives=20)
    raise SystemExit(f"--modes: unknown mode {mode!r}; use adaptive and/or fixed")


def _bank(root: Path, customers: int, months: int, seed: int, profile: str) -> Path:
    from synthbank import generate
    from synthbank.profiles import PROFILES

    out = root / f"{profile}-{customers}c-{months}m-seed{seed}"
    if not (out / "customers.parquet").exists():
        print(f"generating {out} ...", flush=True)
        end = PROFILES[profile].end
        generate(customers=customers, months=months, seed=seed, out=out, end=end, profile=profile)
    return out


def _specs(profile: str):
    from models.products import DEFAULT_PRODUCT_SPECS, ProductSpec
    from synthbank.profiles import PROFILES

    renames = PROFILES[profile].products
    if not renames:
        return DEFAULT_PRODUCT_SPECS
    return tuple(
        ProductSpec(name=renames[s.name], credit=s.credit, min_age=s.min_age)
        for s in DEFAULT_PRODUCT_SPECS
    )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def run(args: argparse.Namespace) -> list[str]:
    from features.config import InputOptions
    from features.errors import PropensityError
    from synthbank.profiles import PROFILES
    from training.run import train_from_dir

    profile = PROFILES[args.profile]
    options = InputOptions(timezone=profile.timezone or "Europe/Amsterdam")
    rows = []
    for customers in args.sizes:
        data = _bank(args.root, customers, args.months, args.seed, args.profile)
        for mode in args.modes:
            work = args.root / f"work-{args.profile}-{customers}-{mode}"
            shutil.rmtree(work, ignore_errors=True)
            start = time.perf_counter()
            try:
                results = train_from_dir(
                    data, _config(mode), work_dir=work, specs=_specs(args.profile),
                    input_options=options,
                )  # fmt: skip
            except PropensityError as exc:
                why = " ".join(str(exc).split())
                rows.append(f"| {customers:,} | {mode} | (all) | - | - | - | - | - | {why} |")
                continue
            wall = time.perf_counter() - start
            for product, r in results.items():
                s = r.summary()
                status = "trained" if r.trained else r.message
                rows.append(
                    f"| {customers:,} | {mode} | {product} | {_fmt(s['roc_auc'])} | "
                    f"{_fmt(s['baseline_roc_auc'])} | {_fmt(s['oracle_roc_auc'])} | "
                    f"{s['n_pos_test'] or '-'} | {r.counts.get('n_pos_train', '-')} | {status} |"
                )
            print(f"{customers:,} customers, {mode}: {wall:.0f} s", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,5000,20000,50000")
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", default="dutch", choices=("dutch", "foreign"))
    parser.add_argument("--modes", default="adaptive")
    parser.add_argument("--root", type=Path, default=Path("/tmp/bench-sizes"))
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.modes = [m.strip() for m in args.modes.split(",")]
    logging.basicConfig(level=logging.ERROR)
    rows = run(args)
    print()
    print(HEADER)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
