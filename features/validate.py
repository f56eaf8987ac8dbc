"""Contract checks: table-level faults stop the load; row-level faults are quarantined.

Table-level faults (missing column, uncastable values, null or duplicate keys) mean the table
cannot be trusted at all, so they raise `ContractError` listing every fault with an example.
Row-level faults (a zero amount, an unknown method, ...) affect single rows: those rows are set
aside, counted and written out, never silently dropped.

Data minimisation: an example names the row number, the row's key and the offending value
only, never the whole row (stderr ends up in cron logs); a rejected row is kept as row number,
key, customer id, column, reason and offending value (`REJECTED_COLUMNS`), never whole.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from features.casting import describe_dtype, to_contract
from features.config import FeatureConfig
from features.errors import Fault
from features.ids import CUSTOMER_ID_MAX, NAME_GRAMMAR, NAME_MAX, NAME_PATTERN
from features.schemas import CHANNELS, METHODS, OUTCOMES, Tables, TableSpec

ROW = "row"  # 1-based row number in the table as read
REJECTED_COLUMNS = (ROW, "column", "reason", "value")  # plus the table's key and customer_id
_VALUE_MAX = 100


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _VALUE_MAX else text[: _VALUE_MAX - 4] + "...'"


def example_row(
    lf: pl.LazyFrame, condition: pl.Expr, key: tuple[str, ...] = (), column: str | None = None
) -> str | None:
    """The first row matching `condition` as `row N, key=..: column=value` (nothing else)."""
    names = lf.collect_schema().names()
    shown = [k for k in key if k in names and k != column]
    if column is not None and column in names:
        shown.append(column)
    rows = lf.with_row_index(ROW, offset=1).filter(condition).select(ROW, *shown).head(1).collect()
    if rows.height == 0:
        return None
    row = rows.row(0, named=True)
    parts = [f"{k}={_short(row[k])}" for k in shown]
    return f"row {row[ROW]}" + (": " + ", ".join(parts) if parts else "")


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
                        example_row(raw, failures[name], spec.key, name),
                    )
                )
    return raw.select(exprs), faults


KEY_HASH_SEED = 0x5EED_C0DE  # any fixed seed: the hashes only live for one check
BYTES_PER_KEY = 16
"""Peak memory per key of the duplicate-key check: its 8-byte hash, sorted in place, plus the
batches being read; the key texts are never held."""


def key_hash_passes(rows: int, budget: int | None = None) -> int:
    """Into how many hash shares the duplicate-key check splits so one share fits `budget`
    (default: a quarter of the memory available now): 1 for every table of a small bank."""
    if budget is None:
        import psutil

        budget = psutil.virtual_memory().available // 4
    return max(1, -(-rows * BYTES_PER_KEY // max(budget, 1)))


_PARALLEL_SORT_MIN = 1 << 22


def sort_in_place(values: np.ndarray) -> None:
    """Sort a large array in place on two threads: a partition at the middle position (linear,
    in place) leaves every value of the lower half at most every value of the upper half,
    then each half is sorted beside the other (numpy releases the GIL while sorting)."""
    if values.size < _PARALLEL_SORT_MIN:
        values.sort()
        return
    middle = values.size // 2
    values.partition(middle)
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(np.ndarray.sort, (values[:middle], values[middle:])))


def _repeated(hashes: np.ndarray) -> np.ndarray:
    """The values found more than once (sorts `hashes` in place: no copy of a large array)."""
    sort_in_place(hashes)
    same = hashes[1:] == hashes[:-1]
    return np.unique(hashes[1:][same])


def _key_hash(key: list[str]) -> pl.Expr:
    return (pl.struct(key) if len(key) > 1 else pl.col(key[0])).hash(KEY_HASH_SEED).alias("_h")


def _scan_keys(lf: pl.LazyFrame, key: list[str], shares: int) -> tuple[dict[str, int], np.ndarray]:
    """(null count per key column, the 64-bit key hashes seen twice) from one read of the key
    columns, batch by batch. With one share the hashes are gathered in memory; with several,
    each batch's hashes go to one spill file per share (`hash % shares`) and only one share is
    in memory at a time. (With nulls the hashes mean nothing: the caller reports the nulls.)"""
    nulls = dict.fromkeys(key, 0)
    flags = [pl.col(k).is_null().alias(f"_null{i}") for i, k in enumerate(key)]
    scan = lf.select(_key_hash(key), *flags)
    if shares > 1:
        scan = scan.with_columns(_share=pl.col("_h") % shares)

    def count(batch: pl.DataFrame) -> None:
        for i, k in enumerate(key):
            nulls[k] += int(batch[f"_null{i}"].sum())

    if shares == 1:
        chunks = []
        for batch in scan.collect_batches(maintain_order=False):
            count(batch)
            chunks.append(batch["_h"].to_numpy())
        hashes = np.concatenate(chunks) if chunks else np.empty(0, np.uint64)
        del chunks
        return nulls, _repeated(hashes)
    with tempfile.TemporaryDirectory(prefix="propensity-keys-") as tmp:
        paths = [Path(tmp) / f"{i}.u64" for i in range(shares)]
        files = [path.open("wb") for path in paths]
        try:
            for batch in scan.collect_batches(maintain_order=False):
                count(batch)
                for (share,), part in batch.partition_by("_share", as_dict=True).items():
                    files[int(share)].write(part["_h"].to_numpy().tobytes())  # type: ignore[arg-type]
        finally:
            for f in files:
                f.close()
        found = [_repeated(np.fromfile(path, dtype=np.uint64)) for path in paths]
    return nulls, np.concatenate(found)


def _duplicates_of(lf: pl.LazyFrame, key: list[str], repeated: np.ndarray) -> pl.DataFrame:
    """The real keys behind the repeated hashes, held by more than one row, with `n`."""
    candidates = pl.Series("_h", repeated, pl.UInt64)
    if candidates.is_empty():
        return pl.DataFrame(schema={**lf.select(key).collect_schema(), "n": pl.UInt32})
    return (
        lf.select(*key, _key_hash(key))
        .filter(pl.col("_h").is_in(candidates.implode()))
        .group_by(key)
        .agg(pl.len().alias("n"))
        .filter(pl.col("n") > 1)
        .collect(engine="streaming")
    )


def duplicate_keys(lf: pl.LazyFrame, key: list[str], passes: int) -> pl.DataFrame:
    """The key values held by more than one row, with their count (`n`); exact and bounded.

    The 64-bit hashes of the keys (never the key texts) are sorted in `passes` shares to find
    the hashes seen twice; only rows with such a hash are then grouped by their real key, so
    a hash collision is never reported as a duplicate.
    """
    _, repeated = _scan_keys(lf, key, max(passes, 1))
    return _duplicates_of(lf, key, repeated)


def key_faults(lf: pl.LazyFrame, spec: TableSpec, passes: int | None = None) -> list[Fault]:
    """Null or duplicate keys: the table has no reliable identity, so this is table-level.

    The uniqueness check is exact but never holds every key (`duplicate_keys`); `passes`
    (default derived from the rows and the memory available) splits it further. The null
    counts come from the same read of the key columns as the hashes.
    """
    if not spec.key:
        return []
    key = list(spec.key)
    rows = lf.select(pl.len()).collect().item()  # Parquet: from the footers
    nulls, repeated = _scan_keys(lf, key, max(passes or key_hash_passes(rows), 1))
    faults = [
        Fault(
            spec.name,
            k,
            f"{nulls[k]} row(s) with a null key",
            example_row(lf, pl.col(k).is_null(), spec.key),
        )
        for k in key
        if nulls[k]
    ]
    if faults:
        return faults
    dups = _duplicates_of(lf, key, repeated)
    if dups.height:
        extra = int(dups["n"].sum()) - dups.height
        first = dups.sort(key).head(1).drop("n")
        hit = pl.all_horizontal(pl.col(k) == first[k][0] for k in key)
        faults.append(
            Fault(
                spec.name,
                ", ".join(key),
                f"{extra} duplicate key(s)",
                example_row(lf, hit, spec.key),
            )
        )
    return faults


def _bad_customer_id() -> pl.Expr:
    ids = pl.col("customer_id")
    return (ids.str.len_chars() > CUSTOMER_ID_MAX) | ids.str.contains(r"[\x00-\x1f\x7f]")


def _bad_name(col: str) -> pl.Expr:
    return ~pl.col(col).str.contains(f"^(?:{NAME_PATTERN.pattern})$") | (
        pl.col(col).str.len_chars() > NAME_MAX
    )


# identifiers that become ledger keys, file names or model names (grammar: `features.ids`)
ID_CHECKS: dict[str, tuple[tuple[str, Callable[[], pl.Expr], str], ...]] = {
    "customers": (
        (
            "customer_id",
            _bad_customer_id,
            f"customer id(s) longer than {CUSTOMER_ID_MAX} characters or with control characters",
        ),
    ),
    "products": (("product", lambda: _bad_name("product"), f"product name(s) not {NAME_GRAMMAR}"),),
}


def id_faults(lf: pl.LazyFrame, spec: TableSpec) -> list[Fault]:
    """Ids that break the grammar of `features.ids`: table-level, before anything is written."""
    faults = []
    for column, bad, problem in ID_CHECKS.get(spec.name, ()):
        condition = bad().fill_null(False)
        n = lf.select(condition.sum()).collect(engine="streaming").item()
        if n:
            example = example_row(lf, condition, (), column)
            faults.append(Fault(spec.name, column, f"{n} {problem}", example))
    return faults


@dataclass(frozen=True)
class RowRule:
    """A row-level check: `rejects(ctx)` is true for rows to quarantine with `reason`;
    `column` holds the offending value."""

    reason: str
    rejects: Callable[[RowContext], pl.Expr]
    column: str | None = None


@dataclass(frozen=True)
class RowContext:
    today: date
    known_customers: pl.Series

    @property
    def tomorrow(self) -> datetime:
        return datetime.combine(self.today + timedelta(days=1), datetime.min.time())


def _null(col: str) -> RowRule:
    return RowRule(f"null_{col}", lambda _ctx: pl.col(col).is_null(), col)


def _unknown_customer() -> RowRule:
    return RowRule(
        "unknown_customer",
        lambda ctx: ~pl.col("customer_id").is_in(ctx.known_customers.implode()),
        column="customer_id",
    )


ROW_RULES: dict[str, tuple[RowRule, ...]] = {
    "customers": (
        _null("birth_date"),
        _null("customer_since"),
        RowRule(
            "birth_date_in_future",
            lambda ctx: pl.col("birth_date") > ctx.today,
            column="birth_date",
        ),
    ),
    "transactions": (
        _null("customer_id"),
        _null("booked_at"),
        _null("amount"),
        _null("method"),
        RowRule("amount_not_finite", lambda _ctx: ~pl.col("amount").is_finite(), column="amount"),
        RowRule("amount_zero", lambda _ctx: pl.col("amount") == 0, column="amount"),
        RowRule("unknown_method", lambda _ctx: ~pl.col("method").is_in(METHODS), column="method"),
        _unknown_customer(),
        RowRule(
            "booked_in_future", lambda ctx: pl.col("booked_at") >= ctx.tomorrow, column="booked_at"
        ),
    ),
    "products": (
        _null("opened_at"),
        RowRule(
            "closed_before_opened",
            lambda _ctx: pl.col("closed_at") < pl.col("opened_at"),
            column="closed_at",
        ),
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
        RowRule(
            "product_too_long",
            lambda _ctx: pl.col("product").str.len_chars() > NAME_MAX,
            column="product",
        ),
        RowRule(
            "campaign_id_too_long",
            lambda _ctx: pl.col("campaign_id").str.len_chars() > NAME_MAX,
            column="campaign_id",
        ),
        RowRule(
            "unknown_channel", lambda _ctx: ~pl.col("channel").is_in(CHANNELS), column="channel"
        ),
        RowRule(
            "unknown_outcome",
            lambda _ctx: pl.col("outcome").is_not_null() & ~pl.col("outcome").is_in(OUTCOMES),
            column="outcome",
        ),
        _unknown_customer(),
    ),
}


def rejected(table: str, ctx: RowContext) -> pl.Expr:
    """True for a row that breaks any rule of `table`: `rejection_reason` is not null exactly
    there, but booleans cost half of building the reason texts over every row."""
    rules = ROW_RULES.get(table, ())
    if not rules:
        return pl.lit(False)
    return pl.any_horizontal([rule.rejects(ctx).fill_null(False) for rule in rules])


def rejection_reason(table: str, ctx: RowContext) -> pl.Expr:
    """The first rule a row breaks (String), or null for a good row."""
    rules = ROW_RULES.get(table, ())
    if not rules:
        return pl.lit(None, pl.String).alias("reason")
    expr = pl.when(rules[0].rejects(ctx).fill_null(False)).then(pl.lit(rules[0].reason))
    for rule in rules[1:]:
        expr = expr.when(rule.rejects(ctx).fill_null(False)).then(pl.lit(rule.reason))
    return expr.otherwise(None).alias("reason")


def rejection_detail(table: str) -> list[pl.Expr]:
    """`column` and `value` (as text) of a row marked by `rejection_reason` (null if good)."""
    rules = [r for r in ROW_RULES.get(table, ()) if r.column is not None]
    if not rules:
        return [pl.lit(None, pl.String).alias("column"), pl.lit(None, pl.String).alias("value")]
    reason = pl.col("reason")
    column = pl.when(reason == rules[0].reason).then(pl.lit(rules[0].column))
    value = pl.when(reason == rules[0].reason).then(pl.col(rules[0].column).cast(pl.String))
    for rule in rules[1:]:
        column = column.when(reason == rule.reason).then(pl.lit(rule.column))
        value = value.when(reason == rule.reason).then(pl.col(rule.column).cast(pl.String))
    return [column.otherwise(None).alias("column"), value.otherwise(None).alias("value")]


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
