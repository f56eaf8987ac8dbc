"""The decision for one run, as pure polars: who is targeted, which gate stops whom, who wins.

Each candidate gets the first reason that applies, in the order of `serving.reasons.Reason`
(the one home of the codes and their order). Objectors never get here: they have no scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import polars as pl

from models.products import resolve_products
from serving.arbitration import arbitrate, global_control, in_control
from serving.config import Campaign, ContactPolicy, ServingConfig
from serving.contact_policy import customer_stats, phone_blocked, policy_reason, product_stats
from serving.reasons import Reason
from serving.reasons import lit as reason_lit

DECISION_SCHEMA = {
    "customer_id": pl.String(),
    "campaign_id": pl.String(),
    "product": pl.String(),
    "channel": pl.String(),
    "outcome": pl.String(),
    "reason": pl.String(),
    "propensity": pl.Float64(),
    "expected_value": pl.Float64(),
    "model_version": pl.String(),
}


CAMPAIGN_SCHEMA = {
    "campaign_id": pl.String(),
    "product": pl.String(),
    "min_propensity": pl.Float64(),
    "value": pl.Float64(),
    "control_share": pl.Float64(),
    "min_age": pl.Int32(),
    "credit": pl.Boolean(),
    "needs_child_benefit": pl.Boolean(),
}


@dataclass(frozen=True)
class Inputs:
    """Everything a decision needs, as frames (see `serving.batch` for how they are built)."""

    scores: pl.LazyFrame  # customer_id, product, propensity, model_version
    facts: pl.LazyFrame  # customer_id, age, is_current, child_benefit
    held: pl.LazyFrame  # customer_id, product, holds
    distress: pl.LazyFrame  # customer_id, in_distress
    consents: pl.LazyFrame  # the consents table
    history: pl.LazyFrame  # customer_id, product, channel, contacted_at, outcome


@dataclass(frozen=True)
class Decision:
    decisions: pl.DataFrame  # DECISION_SCHEMA, one row per targeted (customer, campaign)
    below_threshold: pl.DataFrame  # campaign_id, n


def campaign_frames(
    campaigns: list[Campaign], config: ServingConfig
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One row per campaign (with product rules) and one per (campaign, channel)."""
    specs = {s.name: s for s in resolve_products(config.products, [c.product for c in campaigns])}
    camp = pl.DataFrame(
        {
            "campaign_id": [c.id for c in campaigns],
            "product": [c.product for c in campaigns],
            "min_propensity": [c.min_propensity for c in campaigns],
            "value": [c.value for c in campaigns],
            "control_share": [c.control_share for c in campaigns],
            "min_age": [max(config.adult_age, specs[c.product].min_age) for c in campaigns],
            "credit": [specs[c.product].credit for c in campaigns],
            "needs_child_benefit": [specs[c.product].requires_child_benefit for c in campaigns],
        },
        schema=CAMPAIGN_SCHEMA,  # explicit: a run with no campaign is a normal, empty run
    )
    rows = [
        (c.id, ch, i, c.capacity[ch], config.factor(ch))
        for c in campaigns
        for i, ch in enumerate(c.channels)
    ]
    chan = pl.DataFrame(
        rows,
        schema={
            "campaign_id": pl.String(),
            "channel": pl.String(),
            "preference": pl.Int32(),
            "capacity": pl.Int64(),
            "factor": pl.Float64(),
        },
        orient="row",
    )
    return camp, chan


def _gate_reason(config: ServingConfig) -> pl.Expr:
    """Eligibility then contact policy: the first rule a candidate breaks, else null."""
    return _gate_reason_for(config.policy)


@lru_cache(maxsize=16)  # expressions are immutable: built once per policy, not per decision
def _gate_reason_for(policy: ContactPolicy) -> pl.Expr:
    return (
        pl.when(pl.col("age").fill_null(0) < pl.col("min_age"))
        .then(reason_lit(Reason.MINOR))
        .when(pl.col("holds").fill_null(False))
        .then(reason_lit(Reason.HOLDS_PRODUCT))
        .when(pl.col("credit") & pl.col("in_distress").fill_null(False))
        .then(reason_lit(Reason.DISTRESS))
        .when(pl.col("needs_child_benefit") & ~pl.col("child_benefit").fill_null(False))
        .then(reason_lit(Reason.NO_CHILD_BENEFIT))
        .otherwise(
            pl.coalesce(
                policy_reason(policy),
                pl.when(pl.col("in_global_control")).then(reason_lit(Reason.GLOBAL_CONTROL)),
            )
        )
    )


def _candidates(
    inp: Inputs, camp: pl.DataFrame, config: ServingConfig, as_of: date
) -> pl.LazyFrame:
    """Targeted (customer, campaign) pairs with every fact joined and the gate reason."""
    targeted = inp.scores.join(camp.lazy(), "product").filter(
        pl.col("propensity") >= pl.col("min_propensity")
    )
    if config.global_control_share > 0.0:
        ids = targeted.select("customer_id").unique().collect()["customer_id"]
        held_out = global_control(
            ids,
            as_of,
            config.global_control_share,
            config.global_control_days,
            config.global_control_start,
        ).lazy()
        targeted = targeted.join(held_out, "customer_id", "left")
    else:  # nobody is held out (`global_control` of any customers): no draw to make
        targeted = targeted.with_columns(in_global_control=pl.lit(False))
    return (
        targeted.join(inp.facts, "customer_id", "left")
        .join(inp.held, ["customer_id", "product"], "left")
        .join(inp.distress, "customer_id", "left")
        .join(customer_stats(inp.history, as_of, config.policy), "customer_id", "left")
        .join(product_stats(inp.history, as_of, config.policy), ["customer_id", "product"], "left")
        .with_columns(reason=_gate_reason(config))
    )


def _options(
    passing: pl.LazyFrame, chan: pl.DataFrame, inp: Inputs, config: ServingConfig
) -> pl.LazyFrame:
    """Every (candidate, channel) with its status: ok, refused, phone_cap or no_capacity."""
    consent = inp.consents.select(
        "customer_id", *[pl.col(c).alias(f"ok_{c}") for c in ("email", "sms", "post", "phone")]
    )
    slim = passing.select(
        "customer_id", "campaign_id", "propensity", "value", "age", "is_current", "n_phone"
    )
    return (
        slim.join(chan.lazy(), "campaign_id")
        .join(consent, "customer_id", "left")
        .with_columns(
            status=_status(config.adult_age, config.policy),
            expected_value=pl.col("propensity") * pl.col("value") * pl.col("factor"),
        )
    )


@lru_cache(maxsize=16)
def _status(adult_age: int, policy: ContactPolicy) -> pl.Expr:
    """A (candidate, channel)'s status: refused, phone_cap, no_capacity or ok."""
    permitted = (
        pl.when(pl.col("channel") == "email")
        .then(pl.col("ok_email"))
        .when(pl.col("channel") == "sms")
        .then(pl.col("ok_sms"))
        .when(pl.col("channel") == "post")
        .then(pl.col("ok_post"))
        .when(pl.col("channel") == "phone")
        .then(pl.col("ok_phone") & pl.col("is_current"))
        .otherwise(pl.lit(False))
        .fill_null(False)
    )
    return (
        pl.when(~permitted | (pl.col("age").fill_null(0) < adult_age))
        .then(pl.lit("refused"))
        .when((pl.col("channel") == "phone") & phone_blocked(policy))
        .then(pl.lit("phone_cap"))
        .when(pl.col("capacity") <= 0)
        .then(pl.lit("no_capacity"))
        .otherwise(pl.lit("ok"))
    )


@lru_cache(maxsize=1)
def _no_channel_reason() -> pl.Expr:
    """Why a candidate had no usable channel (aggregated over its channels)."""
    return (
        pl.when((pl.col("status") == "phone_cap").any())
        .then(reason_lit(Reason.PHONE_CAP))
        .when((pl.col("status") == "no_capacity").any())
        .then(reason_lit(Reason.CAPACITY))
        .otherwise(reason_lit(Reason.CHANNEL_REFUSED))
    )


def _finish(
    frame: pl.LazyFrame, outcome: pl.Expr, reason: pl.Expr, channel: pl.Expr
) -> pl.LazyFrame:
    return frame.with_columns(outcome=outcome, reason=reason, channel=channel).select(
        [pl.col(c).cast(t) for c, t in DECISION_SCHEMA.items()]
    )


def decide(inp: Inputs, campaigns: list[Campaign], config: ServingConfig, as_of: date) -> Decision:
    """Decide one run: every targeted (customer, campaign) with its outcome and reason.

    Four collections (candidates, channel options, arbitration rounds, the outcome frame):
    polars costs ~1 ms per collection whatever the size, which is most of a real-time
    decision on a few events; the batch gets the same plans.
    """
    camp, chan = campaign_frames(campaigns, config)
    below_plan = (
        inp.scores.join(camp.lazy(), "product")
        .filter(pl.col("propensity") < pl.col("min_propensity"))
        .group_by("campaign_id")
        .agg(n=pl.len())
        .sort("campaign_id")
    )
    below, cand = pl.collect_all([below_plan, _candidates(inp, camp, config, as_of)])
    options = _options(cand.lazy().filter(pl.col("reason").is_null()), chan, inp, config)
    usable, no_channel = pl.collect_all(
        [
            options.filter(pl.col("status") == "ok").select(
                "customer_id", "campaign_id", "channel", "expected_value", "preference"
            ),
            options.group_by("customer_id", "campaign_id")
            .agg(ok=(pl.col("status") == "ok").any(), reason=_no_channel_reason())
            .filter(~pl.col("ok"))
            .drop("ok"),
        ]
    )
    capacity = chan.select("campaign_id", "channel", "capacity")
    winners = arbitrate(usable, capacity)
    won = winners.select("customer_id", "campaign_id", "channel", "expected_value")
    shares = camp.select("campaign_id", "control_share")
    won = won.with_columns(in_control(won.join(shares, "campaign_id", "left")))
    keys = ["customer_id", "campaign_id"]
    lazy_cand, lazy_won = cand.lazy(), won.lazy()
    gated = lazy_cand.filter(pl.col("reason").is_not_null())
    refused = lazy_cand.drop("reason").join(no_channel.lazy(), keys)
    best_ev = usable.lazy().group_by(keys).agg(pl.col("expected_value").max())
    losers = (
        lazy_cand.join(best_ev, keys)
        .join(lazy_won.select(keys), keys, "anti")
        .join(lazy_won.select("customer_id", got=pl.lit(True)), "customer_id", "left")
    )
    chosen = lazy_cand.join(lazy_won, keys)
    null_str = pl.lit(None, pl.String())
    picked = (
        pl.when(pl.col("in_control"))
        .then(reason_lit(Reason.CONTROL))
        .otherwise(reason_lit(Reason.SELECTED))
    )
    parts = [
        _finish(
            pl.concat([gated, refused.select(cand.columns)]).with_columns(
                expected_value=pl.lit(None, pl.Float64())
            ),
            pl.lit("suppressed"),
            pl.col("reason"),
            null_str,
        ),
        _finish(
            losers,
            pl.lit("suppressed"),
            pl.when(pl.col("got"))
            .then(reason_lit(Reason.LOST_ARBITRATION))
            .otherwise(reason_lit(Reason.CAPACITY)),
            null_str,
        ),
        _finish(chosen, picked, picked, pl.col("channel")),
    ]
    decisions = pl.concat(parts).sort("customer_id", "campaign_id").collect()
    return Decision(decisions, below)
