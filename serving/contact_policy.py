"""Contact caps and cooldowns from the contact history (imported history + every ledger run).

A window of N days counts every contact whose date lies less than N days from the run date,
on either side. Counting later contacts too keeps a back-dated run from creating a burst
that any rolling N-day window would see; for ordinary runs there are no later contacts.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from serving.config import ContactPolicy
from serving.reasons import Reason
from serving.reasons import lit as reason_lit

HISTORY_SCHEMA = {
    "customer_id": pl.String(),
    "product": pl.String(),
    "channel": pl.String(),
    "contacted_at": pl.Datetime("us"),
    "outcome": pl.String(),
}


def _within(days: int, as_of: date) -> pl.Expr:
    """Contact date less than `days` days from `as_of` (either side)."""
    gap = (pl.col("contacted_at").dt.date() - pl.lit(as_of)).dt.total_days().abs()
    return gap < days


def customer_stats(history: pl.LazyFrame, as_of: date, policy: ContactPolicy) -> pl.LazyFrame:
    """customer_id, n_window (all channels), n_phone (phone) within the policy windows."""
    return (
        history.filter(
            _within(policy.contacts_window_days, as_of) | _within(policy.phone_window_days, as_of)
        )
        .group_by("customer_id")
        .agg(
            n_window=_within(policy.contacts_window_days, as_of).sum().cast(pl.Int64),
            n_phone=(_within(policy.phone_window_days, as_of) & (pl.col("channel") == "phone"))
            .sum()
            .cast(pl.Int64),
        )
    )


def product_stats(history: pl.LazyFrame, as_of: date, policy: ContactPolicy) -> pl.LazyFrame:
    """customer_id, product, recent_offer, recent_decline (bools) for the product cooldowns."""
    declined = pl.col("outcome") == "declined"
    offer = _within(policy.product_cooldown_days, as_of)
    decline = _within(policy.decline_cooldown_days, as_of) & declined
    return (
        history.filter(offer | decline)
        .group_by("customer_id", "product")
        .agg(recent_offer=offer.any(), recent_decline=decline.fill_null(False).any())
    )


def policy_reason(policy: ContactPolicy) -> pl.Expr:
    """The first contact-policy rule a (customer, product) candidate breaks, else null.

    Needs columns recent_decline, recent_offer, n_window (joined from the stats above).
    """
    return (
        pl.when(pl.col("recent_decline").fill_null(False))
        .then(reason_lit(Reason.COOLDOWN_DECLINE))
        .when(pl.col("recent_offer").fill_null(False))
        .then(reason_lit(Reason.COOLDOWN_PRODUCT))
        .when(pl.col("n_window").fill_null(0) >= policy.max_contacts)
        .then(reason_lit(Reason.CONTACT_CAP))
        .otherwise(pl.lit(None, pl.String()))
    )


def phone_blocked(policy: ContactPolicy) -> pl.Expr:
    """True where another phone call would break the phone cap (needs column n_phone)."""
    return pl.col("n_phone").fill_null(0) >= policy.max_phone
