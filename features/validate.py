"""Contract checks: table-level faults stop the load; row-level faults are quarantined.

Table-level faults (missing column, uncastable values, null or duplicate keys) mean the table
cannot be trusted at all, so they raise `ContractError` listing every fault with an example row.
Row-level faults (a zero amount, an unknown method, ...) affect single rows: those rows get a
`reason` and are set aside, counted and written out, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import polars as pl

from features.casting import describe_dtype, to_contract
from features.config import FeatureConfig
from features.errors import Fault
from features.schemas import CHANNELS, METHODS, OUTCOMES, Tables, TableSpec

_EXAMPLE_COLUMNS = 6


def example_row(lf: pl.LazyFrame, condition: pl.Expr) -> str | None:
    """The first row matching `condition`, as short `column=value` text for an error message."""
    rows = lf.filter(condition).head(1).collect()
    if rows.height == 0:
        return None
    items = list(rows.row(0, named=True).items())[:_EXAMPLE_COLUMNS]
    return "{" + ", ".join(f"{k}={v!r}" for k, v in items) + "}"


def cast_to_contract(raw: pl.LazyFrame, spec: TableSpec) -> tuple[pl.LazyFrame, list[Fault]]:
    """Select the contract columns cast to their dtypes; fault on missing or uncastable ones.

    Optional columns absent from the source become nulls of the right type; extras are dropped.
    """
    source = raw.collect_schema()
    faults: list[Fault] = []
    exprs: list[pl.Expr] = []
    failures: dict[str, pl.Expr] = {}
    for col in spec.columns:
        if col.name not in source:
            if col.required:
                present = ", ".join(source.names())
                faults.append(Fault(spec.name, col.name, "required column missing", present))
            exprs.append(pl.lit(None, col.dtype).alias(col.name))
            continue
        expr = to_contract(col.name, source[col.name], col.dtype)
        if expr is None:
            faults.append(
                Fault(spec.name, col.name, f"type {source[col.name]} cannot be cast to {col.dtype}")
            )
            exprs.append(pl.lit(None, col.dtype).alias(col.name))
            continue
        exprs.append(expr)
        if source[col.name] != col.dtype:
            present = pl.col(col.name).is_not_null()
            if source[col.name] == pl.String:
                present = present & (pl.col(col.name).str.strip_chars() != "")
            failures[col.name] = present & expr.is_null()
    if failures:
        counts = raw.select(f.sum().alias(name) for name, f in failures.items()).collect(
            engine="streaming"
        )
        for name, n in counts.row(0, named=True).items():
            if n:
                dtype = describe_dtype(spec.schema[name])
                faults.append(
                    Fault(
                        spec.name,
                        name,
                        f"{n} value(s) cannot be read as {dtype}",
                        example_row(raw, failures[name]),
                    )
                )
    return raw.select(exprs), faults


def key_faults(lf: pl.LazyFrame, spec: TableSpec) -> list[Fault]:
    """Null or duplicate keys: the table has no reliable identity, so this is table-level."""
    if not spec.key:
        return []
    key = list(spec.key)
    stats = lf.select(
        *(pl.col(k).null_count().alias(f"null_{k}") for k in key),
        pl.len().alias("rows"),
        (pl.struct(key).n_unique() if len(key) > 1 else pl.col(key[0]).n_unique()).alias("uniq"),
    ).collect(engine="streaming")
    row = stats.row(0, named=True)
    faults = [
        Fault(
            spec.name,
            k,
            f"{row[f'null_{k}']} row(s) with a null key",
            example_row(lf, pl.col(k).is_null()),
        )
        for k in key
        if row[f"null_{k}"]
    ]
    if not faults and row["uniq"] < row["rows"]:
        dup = pl.len().over(key) > 1
        faults.append(
            Fault(
                spec.name,
                ", ".join(key),
                f"{row['rows'] - row['uniq']} duplicate key(s)",
                example_row(lf, dup),
            )
        )
    return faults


@dataclass(frozen=True)
class RowRule:
    """A row-level check: `rejects(ctx)` is true for rows to quarantine with `reason`."""

    reason: str
    rejects: Callable[[RowContext], pl.Expr]


@dataclass(frozen=True)
class RowContext:
    today: date
    known_customers: pl.Series

    @property
    def tomorrow(self) -> datetime:
        return datetime.combine(self.today + timedelta(days=1), datetime.min.time())


def _null(col: str) -> RowRule:
    return RowRule(f"null_{col}", lambda _ctx: pl.col(col).is_null())


def _unknown_customer() -> RowRule:
    return RowRule(
        "unknown_customer", lambda ctx: ~pl.col("customer_id").is_in(ctx.known_customers.implode())
    )


ROW_RULES: dict[str, tuple[RowRule, ...]] = {
    "customers": (
        _null("birth_date"),
        _null("customer_since"),
        RowRule("birth_date_in_future", lambda ctx: pl.col("birth_date") > ctx.today),
    ),
    "transactions": (
        _null("customer_id"),
        _null("booked_at"),
        _null("amount"),
        _null("method"),
        RowRule("amount_not_finite", lambda _ctx: ~pl.col("amount").is_finite()),
        RowRule("amount_zero", lambda _ctx: pl.col("amount") == 0),
        RowRule("unknown_method", lambda _ctx: ~pl.col("method").is_in(METHODS)),
        _unknown_customer(),
        RowRule("booked_in_future", lambda ctx: pl.col("booked_at") >= ctx.tomorrow),
    ),
    "products": (
        _null("opened_at"),
        RowRule("closed_before_opened", lambda _ctx: pl.col("closed_at") < pl.col("opened_at")),
        _unknown_customer(),
    ),
    "consents": (
        *(_null(c) for c in ("payment_data_marketing", *CHANNELS)),
        _unknown_customer(),
    ),
    "contacts": (
        _null("customer_id"),
        _null("product"),
        _null("channel"),
        _null("contacted_at"),
        RowRule("unknown_channel", lambda _ctx: ~pl.col("channel").is_in(CHANNELS)),
        RowRule(
            "unknown_outcome",
            lambda _ctx: pl.col("outcome").is_not_null() & ~pl.col("outcome").is_in(OUTCOMES),
        ),
        _unknown_customer(),
    ),
}


def rejection_reason(table: str, ctx: RowContext) -> pl.Expr:
    """The first rule a row breaks (String), or null for a good row."""
    rules = ROW_RULES.get(table, ())
    if not rules:
        return pl.lit(None, pl.String).alias("reason")
    expr = pl.when(rules[0].rejects(ctx).fill_null(False)).then(pl.lit(rules[0].reason))
    for rule in rules[1:]:
        expr = expr.when(rule.rejects(ctx).fill_null(False)).then(pl.lit(rule.reason))
    return expr.otherwise(None).alias("reason")


# ---- coverage warnings: problems a foreign bank's export hits (warnings, not faults) ----

COVERAGE_GAP_DAYS = 62


def transaction_gap_warnings(
    last_booking: date, ends: dict[str, date | None], gap_days: int = COVERAGE_GAP_DAYS
) -> list[str]:
    """Transactions that end long before another table does (`ends`: table -> its last date):
    dates after the last booking have no payments behind them."""
    return [
        f"transactions end {last_booking} but {table} run to {until}: dates after "
        f"{last_booking} have no payments behind them (the calendar uses the transactions)"
        for table, until in ends.items()
        if until is not None and (until - last_booking).days > gap_days
    ]


def uncategorised_share(tables: Tables, config: FeatureConfig) -> tuple[float, int]:
    """(share, rows) of transactions that no rule categorises beyond how the money moved: no
    rule matched, or only a rule that reads nothing but a transfer or card method (e.g.
    `transfers`, `shopping_other_card`). Cash, fee and interest by method are categorised."""
    from features.categories import METHOD_FALLBACK, load_ruleset, rule_name_expr, split_rules

    ruleset = load_ruleset(config)
    generic = [
        r.name
        for r in ruleset.rules
        if r.method
        and not (r.counterparty or r.iban or r.mcc or r.mcc_range or r.description)
        and not set(r.method) & set(METHOD_FALLBACK)
    ]
    rows, combos = split_rules(tables.transactions, ruleset)
    named = combos.select("_rule_key", rule_name_expr(ruleset).alias("rule")).collect()
    vague = named.filter(pl.col("rule").is_null() | pl.col("rule").is_in(generic))
    counts = rows.select(pl.len(), pl.col("_rule_key").is_in(vague["_rule_key"].implode()).sum())
    n, bad = counts.collect().row(0)
    return (bad / n if n else 0.0), n


def coverage_warnings(
    tables: Tables, config: FeatureConfig, described_products: Iterable[str] | None = None
) -> list[str]:
    """Warnings for `propensity validate`: transactions ending long before the products or
    customers tables, a share of uncategorised transactions above
    `config.uncategorised_warning`, and products in the data no `[[products]]` entry describes."""
    last = tables.transactions.select(pl.col("booked_at").max()).collect().item()
    out: list[str] = []
    if last is not None:
        ends = {
            "products": tables.products.select(pl.col("opened_at").max()).collect().item(),
            "customers": tables.customers.select(pl.col("customer_since").max()).collect().item(),
        }
        out += transaction_gap_warnings(last.date(), ends)
    share, n = uncategorised_share(tables, config)
    if n and share > config.uncategorised_warning:
        out.append(
            f"transactions: {share:.0%} of {n:,} rows match no categorisation rule beyond "
            f"their booking method (above {config.uncategorised_warning:.0%}): add rules for "
            "this bank's counterparties and descriptions in [features] rules or rules_file"
        )
    if described_products is not None:
        known = set(described_products)
        found = tables.products.select(pl.col("product").unique()).collect()["product"]
        unknown = sorted(p for p in found.to_list() if p not in known)
        if unknown:
            out.append(
                f"products: {', '.join(unknown)} have no [[products]] entry, so they are "
                "neither trained nor offered; add entries (with credit = true/false) to use them"
            )
    return out
