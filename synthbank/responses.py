"""Responses to a run, with a known true effect: the bank's data as it looks N days later.

Ground truth for uplift measurement. Each customer's chance of opening a product in the next
`days` days comes from the generator's truth (the last simulated month's `p_open`, held for the
whole period: q = 1 - (1 - p)^(days / 30.44)); a customer contacted about that product (in the
run's channel files) opens with probability min(1, q * (1 + X)), X per product and channel
(`true_uplift`, 0 allowed). Customers who hold the product on the run date cannot open it.

Written to `out`: the contract tables with the new openings added to products, the last
`days` days of transactions repeated `days` later (fresh ids) so a second run has recent
payments, truth.parquet extended by the new months, `outcomes.parquet` (channel responses of
the contacted: accepted when they opened, else declined or no_response) and
`responses_truth.json` with the effect used and the expected relative uplift per campaign.
Knows only the data contract and the run's output files.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from features.errors import ConfigError

DAYS_PER_MONTH = 30.44
DECLINE_SHARE = 0.1  # of contacted non-openers who answer "declined"
TRUTH_FILE = "responses_truth.json"
OUTCOMES_FILE = "outcomes.parquet"


@dataclass(frozen=True)
class ResponsesResult:
    out: Path
    run_id: str
    as_of: date
    openings: int
    contacted: int
    truth: dict[str, object]


def parse_uplift(text: str) -> dict[str, float]:
    """`0.3` or `savings=0.3,insurance:email=0.2,*=0.1` -> {"*": 0.3} / per product[:channel]."""
    try:
        return {"*": float(text)}
    except ValueError:
        pass
    out: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        key, sep, value = part.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise ConfigError(
                f"--true-uplift {text!r}: expected a number or product[:channel]=number, "
                "e.g. 0.2 or savings=0.3,insurance:email=0.1"
            ) from None
        if not sep or not key.strip():
            raise ConfigError(f"--true-uplift {text!r}: {part!r} is not product[:channel]=number")
    return out


def _uplift_expr(uplift: dict[str, float]) -> pl.Expr:
    """X for each (product, channel): product:channel, else product, else '*', else 0."""
    expr = pl.lit(uplift.get("*", 0.0))
    # product entries first, then product:channel ones, so the most specific wins
    for key in sorted((k for k in uplift if k != "*"), key=lambda k: ":" in k):
        product, _, channel = key.partition(":")
        hit = pl.col("product") == product
        if channel:
            hit = hit & (pl.col("channel") == channel)
        expr = pl.when(hit).then(pl.lit(uplift[key])).otherwise(expr)
    return expr


def read_run(run_dir: Path) -> tuple[str, date, pl.DataFrame]:
    """(run_id, as_of, contacted customer_id/campaign_id/product/channel) from a run's files."""
    summary = Path(run_dir) / "summary.json"
    if not summary.exists():
        raise ConfigError(f"--run-dir {run_dir}: no summary.json (give <work-dir>/out/<run-id>)")
    meta = json.loads(summary.read_text())
    cols = {c: pl.String() for c in ("customer_id", "campaign_id", "product", "channel")}
    files = sorted(Path(run_dir).glob("*.csv"))
    parts = [pl.read_csv(f, schema_overrides=cols).select(list(cols)) for f in files]
    contacted = pl.concat(parts) if parts else pl.DataFrame(schema=cols)
    return str(meta["run_id"]), date.fromisoformat(meta["as_of"]), contacted


def _base(data_dir: Path, as_of: date, days: int) -> pl.DataFrame:
    """customer_id, product, p_month, q (chance to open in `days`) for non-holders on as_of."""
    truth = pl.read_parquet(data_dir / "truth.parquet")
    last = truth.filter(pl.col("month") < as_of)["month"].max()
    products = pl.read_parquet(data_dir / "products.parquet")
    held = products.filter(
        (pl.col("opened_at") <= as_of)
        & (pl.col("closed_at").is_null() | (pl.col("closed_at") > as_of))
    ).select("customer_id", "product")
    return (
        truth.filter(pl.col("month") == last)
        .join(held, ["customer_id", "product"], "anti")
        .select(
            "customer_id",
            "product",
            p_month=pl.col("p_open"),
            q=1 - (1 - pl.col("p_open")) ** (days / DAYS_PER_MONTH),
        )
    )


def _draw(
    base: pl.DataFrame,
    contacted: pl.DataFrame,
    uplift: dict[str, float],
    seed: int,
    as_of: date,
    days: int,
) -> pl.DataFrame:
    """Every (customer, product) with its true chance and whether and when it opened."""
    rng = np.random.default_rng(seed)
    frame = (
        base.join(contacted, ["customer_id", "product"], "left")
        .with_columns(
            x=pl.when(pl.col("channel").is_not_null()).then(_uplift_expr(uplift)).otherwise(0.0)
        )
        .with_columns(q_true=pl.min_horizontal(pl.col("q") * (1 + pl.col("x")), pl.lit(1.0)))
        .sort("customer_id", "product")
    )
    u = rng.random(frame.height)
    day = rng.integers(0, days, frame.height)
    return frame.with_columns(
        opened=pl.Series(u) < pl.col("q_true"),
        opened_at=pl.lit(as_of) + pl.duration(days=pl.Series(day)),
    )


def _outcomes(drawn: pl.DataFrame, run_id: str, as_of: date, days: int, seed: int) -> pl.DataFrame:
    """Channel responses of the contacted customers."""
    rng = np.random.default_rng([seed, 1])
    sent = drawn.filter(pl.col("channel").is_not_null())
    n = sent.height
    declined = rng.random(n) < DECLINE_SHARE
    later = pl.Series(rng.integers(0, days, n))
    return sent.with_columns(
        run_id=pl.lit(run_id),
        outcome=pl.when(pl.col("opened"))
        .then(pl.lit("accepted"))
        .when(pl.Series(declined))
        .then(pl.lit("declined"))
        .otherwise(pl.lit("no_response")),
        responded_at=pl.when(pl.col("opened"))
        .then(pl.col("opened_at"))
        .otherwise(pl.lit(as_of) + pl.duration(days=later))
        .cast(pl.Datetime("us"))
        + timedelta(hours=10),
    ).select("customer_id", "campaign_id", "run_id", "channel", "outcome", "responded_at")


def _transactions(data_dir: Path, out: Path, as_of: date, days: int) -> None:
    """The last `days` days of payments repeated `days` later, with fresh transaction ids."""
    src = data_dir / "transactions"
    parts = sorted(src.glob("*.parquet")) if src.is_dir() else [data_dir / "transactions.parquet"]
    (out / "transactions").mkdir(parents=True, exist_ok=True)
    start = datetime.combine(as_of - timedelta(days=days), datetime.min.time())
    for i, part in enumerate(parts):
        frame = pl.read_parquet(part)
        recent = frame.filter(pl.col("booked_at") >= start).with_columns(
            pl.col("booked_at") + timedelta(days=days),
            pl.col("transaction_id") + f"-r{as_of.isoformat()}",
        )
        pl.concat([frame, recent]).write_parquet(out / "transactions" / f"part-{i:05d}.parquet")


def _truth_rows(base: pl.DataFrame, drawn: pl.DataFrame, as_of: date, days: int) -> pl.DataFrame:
    """Monthly p_open of the new months (contacted: the raised one) for non-holders."""
    months = pl.date_range(
        as_of.replace(day=1), as_of + timedelta(days=days - 1), "1mo", eager=True
    )
    raised = drawn.select(
        "customer_id", "product", p_open=1 - (1 - pl.col("q_true")) ** (DAYS_PER_MONTH / days)
    )
    return (
        raised.join(
            pl.DataFrame({"month": months}).filter(pl.col("month") >= as_of), how="cross"
        ).select("customer_id", "product", "month", "p_open")
        if base.height
        else pl.DataFrame()
    )


def simulate_responses(
    data_dir: Path,
    run_dir: Path,
    *,
    days: int,
    true_uplift: dict[str, float],
    seed: int,
    out: Path,
    transactions: bool = True,
) -> ResponsesResult:
    """Write the data `days` days after the run in `run_dir` to `out` (see module docstring).

    `transactions=False` writes only the small tables (enough to measure the uplift again
    with another seed; not a complete data directory)."""
    data_dir, out = Path(data_dir), Path(out)
    if days < 1:
        raise ConfigError(f"--days must be at least 1, got {days}")
    if not (data_dir / "truth.parquet").exists():
        raise ConfigError(f"{data_dir}: no truth.parquet (only a synthetic bank has one)")
    if out.resolve() == data_dir.resolve():
        raise ConfigError("--out must differ from DATA_DIR (the input is never changed)")
    run_id, as_of, contacted = read_run(run_dir)
    base = _base(data_dir, as_of, days)
    drawn = _draw(base, contacted, true_uplift, seed, as_of, days)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for name in ("customers", "consents", "contacts"):
        shutil.copy(data_dir / f"{name}.parquet", out / f"{name}.parquet")
    if transactions:
        _transactions(data_dir, out, as_of, days)
    new = drawn.filter(pl.col("opened")).select(
        "customer_id", "product", "opened_at", closed_at=pl.lit(None, pl.Date())
    )
    products = pl.read_parquet(data_dir / "products.parquet")
    pl.concat([products, new.cast(products.schema)]).write_parquet(out / "products.parquet")
    truth = pl.read_parquet(data_dir / "truth.parquet")
    extra = _truth_rows(base, drawn, as_of, days)
    pl.concat([truth, extra.cast(truth.schema)]).write_parquet(out / "truth.parquet")
    _outcomes(drawn, run_id, as_of, days, seed).write_parquet(out / OUTCOMES_FILE)
    truth_doc = _truth_doc(drawn, run_id, as_of, days, true_uplift, seed)
    (out / TRUTH_FILE).write_text(json.dumps(truth_doc, indent=2, default=str))
    return ResponsesResult(out, run_id, as_of, new.height, contacted.height, truth_doc)


def _truth_doc(
    drawn: pl.DataFrame, run_id: str, as_of: date, days: int, uplift: dict[str, float], seed: int
) -> dict[str, object]:
    """The effect used and, per campaign, the expected relative uplift of the contacted
    (sum of raised chances / sum of base chances - 1: equals X unless a chance hit 1)."""
    sent = drawn.filter(pl.col("campaign_id").is_not_null())
    per = (
        sent.group_by("campaign_id")
        .agg(
            contacted=pl.len(),
            expected_uplift_rel=pl.col("q_true").sum() / pl.col("q").sum() - 1,
            expected_rate_treated=pl.col("q_true").mean(),
            expected_rate_untreated=pl.col("q").mean(),
        )
        .sort("campaign_id")
    )
    overall = (
        sent.select(pl.col("q_true").sum() / pl.col("q").sum() - 1).item() if sent.height else None
    )
    return {
        "run_id": run_id,
        "as_of": as_of.isoformat(),
        "days": days,
        "seed": seed,
        "true_uplift": uplift,
        "campaigns": {r["campaign_id"]: r for r in per.to_dicts()},
        "overall_expected_uplift_rel": overall,
    }
