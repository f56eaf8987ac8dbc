"""The reason codes of every decision, in the order the gates are applied: their one home.

The decision engine (`serving.decide`), the ledger, the run summary, the report, `explain`
and the HTTP service all import `Reason` and `GATE_ORDER` from here; no other module spells
a reason code as a string. A candidate gets the first reason that applies, in this order.

Codes never name a configurable window (the contact cap is `contact_cap`, whatever its
window). Ledgers written before this module used `cap_30d` and `cap_phone_90d`;
`normalise` maps them to today's codes so old runs stay readable and auditable.
"""

from __future__ import annotations

from enum import StrEnum

import polars as pl


class Reason(StrEnum):
    """Why a (customer, campaign) pair was or was not contacted, in gate order."""

    # before any feature is built (counted, never stored per customer)
    OBJECTED = "objected"
    NO_CONSENT_ROW = "no_consent_row"
    # targeting: the score is below the campaign's minimum (counted per campaign)
    BELOW_THRESHOLD = "below_threshold"
    # real-time events that trigger no campaign (see serving.online)
    NO_TRIGGER = "no_trigger"
    SPECIAL_CATEGORY = "special_category"
    NO_PROFILE = "no_profile"  # consenting, but not in the last batch run's online snapshot
    # eligibility (serving.decide._gate_reason)
    MINOR = "minor"
    HOLDS_PRODUCT = "holds_product"
    DISTRESS = "distress"
    NO_CHILD_BENEFIT = "no_child_benefit"
    # contact policy (serving.contact_policy.policy_reason)
    COOLDOWN_DECLINE = "cooldown_decline"
    COOLDOWN_PRODUCT = "cooldown_product"
    CONTACT_CAP = "contact_cap"
    # the optional global control group: eligible customers held out of every campaign for a
    # period (serving.arbitration.global_control), so the whole programme's uplift is measured
    GLOBAL_CONTROL = "global_control"
    # channels (serving.decide: no usable channel)
    CHANNEL_REFUSED = "channel_refused"
    PHONE_CAP = "phone_cap"
    # arbitration and capacity (serving.arbitration)
    CAPACITY = "capacity"
    LOST_ARBITRATION = "lost_arbitration"
    # outcomes of the candidates who won a slot
    CONTROL = "control"
    SELECTED = "selected"


GATE_ORDER: tuple[str, ...] = tuple(r.value for r in Reason)
# the gates that only suppress (everything but the two outcomes of a won slot)
SUPPRESSING: tuple[str, ...] = tuple(
    r.value for r in Reason if r not in (Reason.CONTROL, Reason.SELECTED)
)
# the codes of candidates who reached the global control draw (passed eligibility and the
# contact policy): the population whose programme uplift the global control group measures
REACHED_GLOBAL_CONTROL: tuple[str, ...] = GATE_ORDER[GATE_ORDER.index(Reason.GLOBAL_CONTROL) :]
# reason codes written by earlier versions of the ledger -> today's code
LEGACY_CODES: dict[str, str] = {
    "cap_30d": Reason.CONTACT_CAP.value,
    "cap_phone_90d": Reason.PHONE_CAP.value,
}


def normalise(code: str) -> str:
    """Today's code for a stored reason code (old ledgers used window-specific names)."""
    return LEGACY_CODES.get(code, code)


def normalise_expr(column: str = "reason") -> pl.Expr:
    """`normalise` as a polars expression over a column of stored reason codes."""
    return pl.col(column).replace(LEGACY_CODES)


def order_expr(column: str = "reason") -> pl.Expr:
    """The gate position of each code (unknown codes last), for sorting counts."""
    order = {code: i for i, code in enumerate(GATE_ORDER)}
    return (
        normalise_expr(column)
        .replace_strict(order, default=len(GATE_ORDER), return_dtype=pl.Int32)
        .alias(f"_{column}_order")
    )


def lit(reason: Reason) -> pl.Expr:
    """A reason code as a polars literal (keeps call sites free of string literals)."""
    return pl.lit(reason.value, pl.String())
