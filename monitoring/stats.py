"""Treated-vs-control statistics: rates, uplift, its confidence interval, the detectable effect.

Relative uplift is `treated_rate / control_rate - 1`. Its interval comes from the delta method
on the log of the rate ratio: Var(log p) ~ (1 - p) / (n p), so for one group of customers the
standard error is sqrt(1/x_t - 1/n_t + 1/x_c - 1/n_c) (Katz's log interval), and the bounds are
exp(log RR +- z se) - 1. When several strata are pooled (runs, campaigns, channels with their
own control groups), the control rate is standardised to the treated customers' mix,
sum_i n_t,i p_c,i / n_t, so a campaign with a larger control share cannot bias the comparison;
the variance of that weighted rate is sum_i w_i^2 p_c,i (1 - p_c,i) / n_c,i. With no
conversion in a group the ratio is undefined and reported as null. See docs/monitoring.md.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist

import polars as pl

CELL_COLUMNS = ("n_t", "x_t", "n_c", "x_c")


@dataclass(frozen=True)
class Uplift:
    """One comparison of treated and control customers."""

    treated_n: int
    control_n: int
    treated_conversions: int
    control_conversions: int
    treated_rate: float | None
    control_rate: float | None
    uplift_abs: float | None
    uplift_rel: float | None
    ci_low: float | None
    ci_high: float | None
    incremental_conversions: float | None
    incremental_value: float | None
    mde_rel: float | None  # smallest relative uplift these group sizes detect (see docs)
    final: bool

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def estimate(
    cells: pl.DataFrame,
    *,
    final: bool,
    confidence: float = 0.95,
    power: float = 0.8,
) -> Uplift:
    """Pool strata (rows with n_t, x_t, n_c, x_c and an optional `value` per conversion)."""
    cells = cells.filter((pl.col("n_t") > 0) & (pl.col("n_c") > 0))
    n_t, x_t = int(cells["n_t"].sum()), int(cells["x_t"].sum())
    n_c, x_c = int(cells["n_c"].sum()), int(cells["x_c"].sum())
    empty = Uplift(n_t, n_c, x_t, x_c, *([None] * 9), final=final)  # type: ignore[arg-type]
    if n_t == 0 or n_c == 0:
        return empty
    w = cells["n_t"] / n_t
    pc_i = cells["x_c"] / cells["n_c"]
    p_t = x_t / n_t
    p_c = float((w * pc_i).sum())
    var_c = float((w**2 * pc_i * (1 - pc_i) / cells["n_c"]).sum())
    value = cells["value"] if "value" in cells.columns else None
    incremental = float((cells["n_t"] * (cells["x_t"] / cells["n_t"] - pc_i)).sum())
    inc_value = (
        float((cells["n_t"] * (cells["x_t"] / cells["n_t"] - pc_i) * value).sum())
        if value is not None and value.null_count() == 0
        else None
    )
    z = _z(confidence)
    mde = _mde(p_c, var_c, n_t, z, NormalDist().inv_cdf(power)) if p_c > 0 else None
    rel = low = high = None
    if p_t > 0 and p_c > 0:
        rel = p_t / p_c - 1
        se = math.sqrt((1 - p_t) / (n_t * p_t) + var_c / p_c**2)
        low, high = (
            math.exp(math.log(p_t / p_c) - z * se) - 1,
            math.exp(math.log(p_t / p_c) + z * se) - 1,
        )
    return Uplift(
        n_t, n_c, x_t, x_c, p_t, p_c, p_t - p_c, rel, low, high, incremental, inc_value, mde, final
    )


def _mde(p_c: float, var_c: float, n_t: int, z_alpha: float, z_power: float) -> float:
    """Relative uplift detectable with the given power: (z_a + z_b) * se(difference) / p_c,
    the standard error taken under no effect (treated rate = control rate)."""
    se = math.sqrt(p_c * (1 - p_c) / n_t + var_c)
    return (z_alpha + z_power) * se / p_c
