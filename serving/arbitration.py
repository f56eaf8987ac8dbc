"""Arbitration (one offer per customer per run), channel capacity and the control group.

Each customer proposes its best remaining (campaign, channel) by expected value; each
(campaign, channel) keeps its `capacity` best proposers (by expected value, then customer_id)
and rejects the rest, who drop that option and propose again. This is deferred acceptance:
it ends when nobody is rejected, uses only joins and sorts, and gives the same result for the
same input. The control group is drawn from the winners, so treated and control customers
come from the same ranked population (a control customer keeps its capacity slot).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date

import numpy as np
import polars as pl

from features.hashing import stable_hash64

log = logging.getLogger(__name__)

CONTROL_DRAW_KEY = b"propensity-control-v1"
CONTROL_DRAW_SCHEME = "blake2b64-v1"


def _by_preference(options: pl.DataFrame) -> pl.DataFrame:
    """Options sorted so each customer's rows run from best to worst, with a row id.

    Best = highest expected value, then channel preference, then campaign and channel ids.
    """
    return options.sort(
        ["customer_id", "expected_value", "preference", "campaign_id", "channel"],
        descending=[False, True, False, False, False],
    ).with_row_index("_oid")


def _first_per_customer(ordered: pl.DataFrame) -> pl.DataFrame:
    """The first (best) remaining row of each customer in a frame sorted by customer."""
    return ordered.filter(pl.col("customer_id").ne_missing(pl.col("customer_id").shift(1)))


def _within_capacity(proposals: pl.LazyFrame, capacity: pl.LazyFrame) -> pl.LazyFrame:
    """Proposals with `accepted`: rank within (campaign, channel) at most its capacity."""
    ranked = proposals.sort(
        ["campaign_id", "channel", "expected_value", "customer_id"],
        descending=[False, False, True, False],
    ).with_columns(_rank=pl.int_range(1, pl.len() + 1).over("campaign_id", "channel"))
    return ranked.join(capacity, ["campaign_id", "channel"], "left").with_columns(
        accepted=pl.col("_rank") <= pl.col("capacity").fill_null(0)
    )


def arbitrate(options: pl.DataFrame, capacity: pl.DataFrame) -> pl.DataFrame:
    """The winning option per customer who gets one (columns of `options`).

    options: customer_id, campaign_id, channel, expected_value, preference (+ any others);
    capacity: campaign_id, channel, capacity.
    """
    remaining = _by_preference(options)  # filtering keeps this order: no re-sort per round
    cap = capacity.lazy()
    rounds = 0
    while True:
        rounds += 1
        proposals = _within_capacity(_first_per_customer(remaining).lazy(), cap).collect()
        rejected = proposals.filter(~pl.col("accepted"))["_oid"]
        if rejected.is_empty():
            break
        remaining = remaining.filter(~pl.col("_oid").is_in(rejected.implode()))
    log.info("arbitration settled after %d round(s)", rounds)
    return proposals.drop("_oid", "_rank", "capacity", "accepted").sort("customer_id")


def control_draw(customers: Sequence[str], campaigns: Sequence[str]) -> np.ndarray:
    """A number in [0, 1) per (customer, campaign): the control-group draw (ledger contract).

    BLAKE2b-64 of the UTF-8 bytes `customer_id + "\\x1f" + campaign_id`, keyed with
    `CONTROL_DRAW_KEY`, read as a big-endian unsigned integer; its top 53 bits / 2**53.
    Defined by the project, not by a dataframe library, so an upgrade never moves a customer
    between control and treated (docs/ledger.md). Ledgers state the scheme of each run
    (`CONTROL_DRAW_SCHEME`); runs before it used polars' hash and keep their stored outcome.
    """
    keys = [f"{c}\x1f{k}" for c, k in zip(customers, campaigns, strict=True)]
    hashes = stable_hash64(keys, CONTROL_DRAW_KEY)
    return np.array([(h >> 11) / float(1 << 53) for h in hashes], dtype=np.float64)


def global_control(
    customers: pl.Series, as_of: date, share: float, days: int, start: date
) -> pl.DataFrame:
    """customer_id, in_global_control: the customers held out of every campaign on `as_of`.

    The same draw as the campaign control group, keyed with the period instead of a campaign
    (`global-<n>`, n = whole periods of `days` since `start`), so membership persists across
    the runs of a period and is redrawn in the next one (docs/ledger.md).
    """
    ids = customers.cast(pl.String).unique().sort()
    schema = {"customer_id": pl.String(), "in_global_control": pl.Boolean()}
    if share <= 0.0 or ids.is_empty():
        return pl.DataFrame({"customer_id": ids, "in_global_control": False}, schema=schema)
    period = (as_of - start).days // days
    draw = control_draw(ids.to_list(), [f"global-{period}"] * ids.len())
    return pl.DataFrame({"customer_id": ids, "in_global_control": draw < share}, schema=schema)


def in_control(frame: pl.DataFrame) -> pl.Series:
    """True where a won (customer_id, campaign_id) falls in its campaign's `control_share`."""
    draw = control_draw(frame["customer_id"].to_list(), frame["campaign_id"].to_list())
    return pl.Series("in_control", draw < frame["control_share"].to_numpy())
