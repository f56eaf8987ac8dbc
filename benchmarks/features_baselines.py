"""The core feature aggregates three ways, for `benchmarks/features.py`: the project's polars
pipeline, straightforward pandas, and DuckDB written as well as DuckDB allows (categorise the
distinct rule-key combinations once with a CASE generated from the same rules, one pass over
the rows with FILTER clauses per window, then PIVOT).

Core aggregates, per customer who was a customer before `as_of`, from the non-special
transactions booked before it: for every window, inflow/outflow counts and sums and the net
flow; for every (non-special) category and window, the count and the signed sum. Rows older
than the largest window feed none of these, so every engine reads only the last
`max_window` days (a filter on `booked_at` the Parquet readers can push down).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl

from features.categories import CHILD_BENEFIT, METHOD_FALLBACK, RuleSet, load_ruleset
from features.config import FeatureConfig, Rule
from features.consent import profilable_ids
from features.pipeline import narrow_rows
from features.schemas import Tables
from features.transactions import (
    bucketed,
    category_features,
    category_infos,
    customer_index,
    customer_keys,
    flow_infos,
    flow_table,
    recency_features,
)

FLOW_KINDS = ("inflow_txn_count", "inflow_amount_sum", "outflow_txn_count", "outflow_amount_sum")


def core_columns(config: FeatureConfig, ruleset: RuleSet) -> list[str]:
    """The compared columns, in a fixed order."""
    flows = [f"{k}_{w}d" for w in config.windows for k in (*FLOW_KINDS, "net_flow_amount_sum")]
    cats = [
        f"{c}_{m}_{w}d"
        for c in ruleset.feature_categories
        for m in ("txn_count", "amount_sum")
        for w in config.windows
    ]
    return ["customer_id", *flows, *cats]


def oldest_read(as_of: date, config: FeatureConfig) -> date:
    """The first booking day any core aggregate reads (every engine reads from here on)."""
    return as_of - timedelta(days=config.max_window)


def scan_tables(data: Path) -> Tables:
    tx = data / "transactions"
    source = sorted(tx.glob("*.parquet")) if tx.is_dir() else data / "transactions.parquet"
    return Tables.from_frames(
        transactions=pl.scan_parquet(source),
        customers=pl.scan_parquet(data / "customers.parquet"),
        products=pl.scan_parquet(data / "products.parquet"),
        consents=pl.scan_parquet(data / "consents.parquet"),
    )


def polars_core(data: Path, as_of: date, config: FeatureConfig) -> pl.DataFrame:
    """The project's own stages (categorise the distinct combinations, then one streaming
    pass: join rows to category and customer on integer keys, drop special rows, bucket;
    then the two-stage aggregate), asked for the core aggregates only (`detail=False`: no
    airport/abroad split, no max or first/last day), the same work as the other engines."""
    tables = scan_tables(data)
    ruleset = load_ruleset(config)
    cols = core_columns(config, ruleset)
    profiled = tables.customers.join(profilable_ids(tables), on="customer_id", how="semi")
    index = customer_index(profiled, as_of).collect()
    since = oldest_read(as_of, config)
    customer = customer_keys(tables.customers, index)
    rows = narrow_rows(tables, ruleset, as_of, customer, config, since=since)
    agg = bucketed(rows.lazy(), as_of, config.windows, ruleset, detail=False)
    agg = agg.collect(engine="streaming")
    flows = flow_table(agg, config, index.height, detail=False)
    cats = category_features(agg, ruleset, config, index.height)
    out = (
        index.lazy()
        .select("customer_id", "cix")
        .join(flows.lazy(), on="cix", how="left")
        .join(cats.lazy(), on="cix", how="left")
    )
    return out.select(pl.col(cols).fill_null(0)).collect(engine="streaming")


def tx_columns(config: FeatureConfig, ruleset: RuleSet) -> list[str]:
    """The transaction families of the full set, compared between polars-tx, duckdb-tx and
    polars-full: every flow total (airport and abroad splits, largest inflow), the
    customer x category table and the recency features, in catalogue order."""
    names = [i.name for i in (*flow_infos(config), *category_infos(ruleset, config))]
    names += [i.name for i, _ in recency_features(ruleset, config, as_of=date(2000, 1, 1))]
    return ["customer_id", *names]


def polars_tx(data: Path, as_of: date, config: FeatureConfig) -> pl.DataFrame:
    """The project's stages for the transaction families (`tx_columns`): the same scan of
    the whole history as the full set, the bucketed group-by with its detail, the two
    pivots and recency; no balances, income or life events."""
    tables = scan_tables(data)
    ruleset = load_ruleset(config)
    profiled = tables.customers.join(profilable_ids(tables), on="customer_id", how="semi")
    index = customer_index(profiled, as_of).collect()
    customer = customer_keys(tables.customers, index)
    rows = narrow_rows(tables, ruleset, as_of, customer, config)
    agg = bucketed(rows.lazy(), as_of, config.windows, ruleset).collect(engine="streaming")
    recency = agg.lazy().group_by("cix").agg(e for _, e in recency_features(ruleset, config, as_of))
    out = (
        index.lazy()
        .select("customer_id", "cix")
        .join(flow_table(agg, config, index.height).lazy(), on="cix", how="left")
        .join(category_features(agg, ruleset, config, index.height).lazy(), on="cix", how="left")
        .join(recency, on="cix", how="left")
    )
    return out.select(tx_columns(config, ruleset)).collect(engine="streaming")


# ---------------------------------------------------------------- DuckDB
def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sql_words(words: tuple[str, ...]) -> str:
    return "|".join(re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", w) for w in words)


def _sql_rule(rule: Rule) -> str:
    conds = []
    if rule.counterparty:
        pattern = "|".join(f"(?:{p})" for p in rule.counterparty)
        conds.append(f"regexp_matches(counterparty_name, {_sql_str(pattern)}, 'i')")
    if rule.iban:
        ibans = ", ".join(_sql_str(i.replace(" ", "").upper()) for i in rule.iban)
        conds.append(f"upper(replace(counterparty_iban, ' ', '')) IN ({ibans})")
    if rule.mcc or rule.mcc_range:
        parts = [f"mcc IN ({', '.join(map(str, rule.mcc))})"] if rule.mcc else []
        parts += [f"mcc BETWEEN {lo} AND {hi}" for lo, hi in rule.mcc_range]
        conds.append("(" + " OR ".join(parts) + ")")
    if rule.method:
        conds.append(f"method IN ({', '.join(map(_sql_str, rule.method))})")
    if rule.description:
        pattern = rf"\b(?:{_sql_words(rule.description)})\b"
        conds.append(f"regexp_matches(description, {_sql_str(pattern)}, 'i')")
    if rule.direction != "any":
        conds.append("credit" if rule.direction == "in" else "NOT credit")
    return " AND ".join(f"coalesce({c}, false)" for c in conds)


def duckdb_sql(data: Path, as_of: date, config: FeatureConfig, ruleset: RuleSet) -> list[str]:
    """The categorised distinct combinations (small temp tables, so the regex CASE runs once
    per combination), then one aggregate pass with FILTER clauses and a PIVOT."""
    tx = data / "transactions"
    source = f"{tx}/*.parquet" if tx.is_dir() else f"{data}/transactions.parquet"
    case = " ".join(f"WHEN {_sql_rule(r)} THEN {_sql_str(r.category)}" for r in ruleset.rules)
    keys = ", ".join(ruleset.key_columns)
    special = ", ".join(map(_sql_str, sorted(ruleset.excluded)))
    since = oldest_read(as_of, config)
    cut = f"TIMESTAMP '{datetime.combine(since, datetime.min.time())}' <= booked_at"
    cut += f" AND booked_at < TIMESTAMP '{datetime.combine(as_of, datetime.min.time())}'"
    win = config.windows
    per_cat = ", ".join(
        f"count(*) FILTER (WHERE age < {w}) AS n{w}, "
        f"coalesce(sum(amount) FILTER (WHERE age < {w}), 0) AS s{w}"
        for w in win
    )
    flows = ", ".join(
        f"sum(n{w}) FILTER (WHERE credit) AS inflow_txn_count_{w}d, "
        f"coalesce(sum(s{w}) FILTER (WHERE credit), 0) AS inflow_amount_sum_{w}d, "
        f"sum(n{w}) FILTER (WHERE NOT credit) AS outflow_txn_count_{w}d, "
        f"coalesce(-sum(s{w}) FILTER (WHERE NOT credit), 0) AS outflow_amount_sum_{w}d, "
        f"coalesce(sum(s{w}), 0) AS net_flow_amount_sum_{w}d"
        for w in win
    )
    using = ", ".join(f"sum(n{w}) AS txn_count_{w}d, sum(s{w}) AS amount_sum_{w}d" for w in win)
    combos = f"""
    CREATE OR REPLACE TEMP TABLE distinct_keys AS
    SELECT DISTINCT ON (k) hash({keys}, amount > 0) AS k, {keys}, amount > 0 AS credit
    FROM read_parquet('{source}') WHERE {cut};
    CREATE OR REPLACE TEMP TABLE combos AS
    SELECT * FROM (SELECT k, CASE {case} ELSE 'other' END AS category FROM distinct_keys)
    WHERE category NOT IN ({special})
    """
    main = f"""
    WITH cust AS (SELECT customer_id FROM read_parquet('{data}/customers.parquet')
                  WHERE customer_since < DATE '{as_of}' AND customer_id IN (
                      SELECT customer_id FROM read_parquet('{data}/consents.parquet')
                      WHERE coalesce(payment_data_marketing, false))),
    by_cat AS (
        SELECT t.customer_id, c.category, t.amount > 0 AS credit, {per_cat}
        FROM (SELECT customer_id, amount, hash({keys}, amount > 0) AS k,
                     date_diff('day', CAST(booked_at AS DATE), DATE '{as_of}') AS age
              FROM read_parquet('{source}') WHERE {cut}) t
        JOIN combos c USING (k) SEMI JOIN cust USING (customer_id)
        GROUP BY ALL
    )
    SELECT * FROM (SELECT customer_id, {flows} FROM by_cat GROUP BY customer_id) f
    FULL JOIN (PIVOT (SELECT * EXCLUDE (credit) FROM by_cat) ON category USING {using}
               GROUP BY customer_id) p USING (customer_id)
    RIGHT JOIN cust USING (customer_id)
    """
    return [combos, main]


def duckdb_core(data: Path, as_of: date, config: FeatureConfig) -> pl.DataFrame:
    import duckdb

    ruleset = load_ruleset(config)
    with duckdb.connect() as con:
        con.execute("SET threads = 2")
        con.execute("SET preserve_insertion_order = false")  # order is not needed here
        combos, main = duckdb_sql(data, as_of, config, ruleset)
        con.execute(combos)
        out = pl.from_arrow(con.sql(main).to_arrow_table())
    return _complete(out, config, ruleset)


def _complete(out: pl.DataFrame, config: FeatureConfig, ruleset: RuleSet) -> pl.DataFrame:
    """Add all-zero columns for categories absent from the data; fixed order and dtypes."""
    cols = core_columns(config, ruleset)
    missing = [pl.lit(0).alias(c) for c in cols if c not in out.columns]
    return out.with_columns(missing).select(pl.col(cols).fill_null(0))


def duckdb_tx_sql(data: Path, as_of: date, config: FeatureConfig, ruleset: RuleSet) -> list[str]:
    """The transaction families (`tx_columns`) in DuckDB, the same work as polars-tx: the
    categorised distinct combinations with their airport flag (a temp table, so the regex
    CASE runs once per combination), one aggregate pass over the whole history by customer,
    category, direction and the airport and abroad flags (counts, sums and largest amounts per
    window with FILTER, first and last day), then the flow totals, recency and a PIVOT."""
    tx = data / "transactions"
    source = f"{tx}/*.parquet" if tx.is_dir() else f"{data}/transactions.parquet"
    case = " ".join(f"WHEN {_sql_rule(r)} THEN {_sql_str(r.category)}" for r in ruleset.rules)
    fallback = " ".join(
        f"WHEN method = {_sql_str(m)} THEN {_sql_str(c)}" for m, c in METHOD_FALLBACK.items()
    )
    places = "|".join(f"(?:{p})" for p in ruleset.airport_location)
    airport_mcc = ", ".join(map(str, ruleset.airport_mcc)) or "NULL"
    airport = (
        f"coalesce(regexp_matches(location, {_sql_str(places)}, 'i'), false)"
        f" OR coalesce(mcc IN ({airport_mcc}), false)"
    )
    keys = ", ".join(ruleset.key_columns)
    special = ", ".join(map(_sql_str, sorted(ruleset.excluded)))
    cut = f"booked_at < TIMESTAMP '{datetime.combine(as_of, datetime.min.time())}'"
    win = config.windows
    per_group = ", ".join(
        f"count(*) FILTER (WHERE age < {w}) AS n{w}, "
        f"coalesce(sum(amount) FILTER (WHERE age < {w}), 0) AS s{w}, "
        f"max(amount) FILTER (WHERE age < {w}) AS mx{w}"
        for w in win
    )
    flows = []
    for w in win:
        flows += [
            f"sum(n{w}) FILTER (WHERE credit) AS inflow_txn_count_{w}d",
            f"coalesce(sum(s{w}) FILTER (WHERE credit), 0) AS inflow_amount_sum_{w}d",
            f"sum(n{w}) FILTER (WHERE NOT credit) AS outflow_txn_count_{w}d",
            f"coalesce(-sum(s{w}) FILTER (WHERE NOT credit), 0) AS outflow_amount_sum_{w}d",
            f"coalesce(sum(s{w}), 0) AS net_flow_amount_sum_{w}d",
            f"max(mx{w}) FILTER (WHERE credit) AS inflow_amount_max_{w}d",
        ]
        for flag in ("airport", "abroad"):
            flows += [
                f"sum(n{w}) FILTER (WHERE {flag}) AS {flag}_txn_count_{w}d",
                f"coalesce(sum(s{w}) FILTER (WHERE {flag}), 0) AS {flag}_amount_sum_{w}d",
            ]
    days = f"date_diff('day', {{}}, DATE '{as_of}')"
    recency = [f"{days.format('max(last)')} AS days_since_last_txn"]
    for c in config.recency_categories:
        if c in ruleset.feature_categories:
            edge = f"max(last) FILTER (WHERE category = {_sql_str(c)})"
            recency.append(f"{days.format(edge)} AS days_since_last_{c}")
    for flag in ("airport", "abroad"):
        last = f"max(last) FILTER (WHERE {flag})"
        first = f"min(first) FILTER (WHERE {flag})"
        recency += [
            f"{days.format(last)} AS days_since_last_{flag}",
            f"{days.format(first)} AS days_since_first_{flag}",
        ]
    if CHILD_BENEFIT in ruleset.feature_categories:
        first = f"min(first) FILTER (WHERE category = {_sql_str(CHILD_BENEFIT)})"
        recency.append(f"{days.format(first)} AS days_since_first_{CHILD_BENEFIT}")
    using = ", ".join(f"sum(n{w}) AS txn_count_{w}d, sum(s{w}) AS amount_sum_{w}d" for w in win)
    combos = f"""
    CREATE OR REPLACE TEMP TABLE distinct_keys AS
    SELECT DISTINCT ON (k) hash({keys}, amount > 0) AS k, {keys}, amount > 0 AS credit
    FROM read_parquet('{source}') WHERE {cut};
    CREATE OR REPLACE TEMP TABLE combos AS
    SELECT * FROM (SELECT k, CASE {case} {fallback} ELSE 'other' END AS category,
                          {airport} AS airport FROM distinct_keys)
    WHERE category NOT IN ({special})
    """
    main = f"""
    WITH cust AS (SELECT customer_id FROM read_parquet('{data}/customers.parquet')
                  WHERE customer_since < DATE '{as_of}' AND customer_id IN (
                      SELECT customer_id FROM read_parquet('{data}/consents.parquet')
                      WHERE coalesce(payment_data_marketing, false))),
    by_group AS (
        SELECT t.customer_id, c.category, t.amount > 0 AS credit, c.airport, t.abroad,
               {per_group}, min(day) AS first, max(day) AS last
        FROM (SELECT customer_id, amount, hash({keys}, amount > 0) AS k,
                     CAST(booked_at AS DATE) AS day,
                     date_diff('day', CAST(booked_at AS DATE), DATE '{as_of}') AS age,
                     coalesce(country IS NOT NULL AND country <> {_sql_str(config.home_country)},
                              false) AS abroad
              FROM read_parquet('{source}') WHERE {cut}) t
        JOIN combos c USING (k) SEMI JOIN cust USING (customer_id)
        GROUP BY ALL
    )
    SELECT * FROM (SELECT customer_id, {", ".join(flows + recency)}
                   FROM by_group GROUP BY customer_id) f
    FULL JOIN (PIVOT (SELECT customer_id, category, {", ".join(f"n{w}, s{w}" for w in win)}
                      FROM by_group) ON category USING {using}
               GROUP BY customer_id) p USING (customer_id)
    RIGHT JOIN cust USING (customer_id)
    """
    return [combos, main]


def duckdb_tx(data: Path, as_of: date, config: FeatureConfig) -> pl.DataFrame:
    import duckdb

    ruleset = load_ruleset(config)
    with duckdb.connect() as con:
        con.execute("SET threads = 2")
        con.execute("SET preserve_insertion_order = false")
        combos, main = duckdb_tx_sql(data, as_of, config, ruleset)
        con.execute(combos)
        out = pl.from_arrow(con.sql(main).to_arrow_table())
    cols = tx_columns(config, ruleset)
    infos = {i.name: i for i in (*flow_infos(config), *category_infos(ruleset, config))}
    missing = [pl.lit(None).alias(c) for c in cols if c not in out.columns]
    fills = [pl.col(n).fill_null(i.fill) for n, i in infos.items() if i.fill is not None]
    return out.with_columns(missing).with_columns(fills).select(cols)


# ---------------------------------------------------------------- pandas
def _pandas_categories(combos, ruleset: RuleSet) -> list[str]:
    """First matching rule per distinct combination, with Python's `re` (same rules)."""
    compiled = []
    for r in ruleset.rules:
        cp = (
            re.compile("|".join(f"(?:{p})" for p in r.counterparty), re.I)
            if r.counterparty
            else None
        )
        words = "|".join(re.escape(w) for w in r.description)
        desc = re.compile(rf"\b(?:{words})\b", re.I) if r.description else None
        compiled.append((r, cp, desc))
    out = []
    for row in combos.itertuples(index=False):
        out.append(
            next((r.category for r, cp, desc in compiled if _matches(r, cp, desc, row)), "other")
        )
    return out


def _matches(rule: Rule, cp, desc, row) -> bool:
    def text(v) -> str | None:
        return v if isinstance(v, str) else None

    import pandas as pd

    mcc = None if pd.isna(row.mcc) else int(row.mcc)
    checks = [
        cp is None
        or (text(row.counterparty_name) is not None and cp.search(row.counterparty_name)),
        not rule.iban
        or (text(row.counterparty_iban) or "").replace(" ", "").upper()
        in {i.replace(" ", "").upper() for i in rule.iban},
        not (rule.mcc or rule.mcc_range)
        or (
            mcc is not None
            and (mcc in rule.mcc or any(lo <= mcc <= hi for lo, hi in rule.mcc_range))
        ),
        not rule.method or row.method in rule.method,
        desc is None or (text(row.description) is not None and desc.search(row.description)),
        rule.direction == "any" or (rule.direction == "in") == bool(row.credit),
    ]
    return all(bool(c) for c in checks)


def pandas_core(data: Path, as_of: date, config: FeatureConfig) -> pl.DataFrame:
    import pandas as pd

    ruleset = load_ruleset(config)
    tx_dir = data / "transactions"
    cols = ["customer_id", "booked_at", "amount", *ruleset.key_columns]
    tx = pd.read_parquet(tx_dir if tx_dir.is_dir() else data / "transactions.parquet", columns=cols)
    since = oldest_read(as_of, config)
    tx = tx[(tx["booked_at"] >= pd.Timestamp(since)) & (tx["booked_at"] < pd.Timestamp(as_of))]
    tx["credit"] = tx["amount"] > 0
    keys = [*ruleset.key_columns, "credit"]
    combos = tx[keys].drop_duplicates()
    combos["category"] = _pandas_categories(combos, ruleset)
    tx = tx.merge(combos, on=keys, how="left")
    tx = tx[~tx["category"].isin(ruleset.excluded)]
    cust = pd.read_parquet(data / "customers.parquet", columns=["customer_id", "customer_since"])
    cust = cust[pd.to_datetime(cust["customer_since"]) < pd.Timestamp(as_of)][["customer_id"]]
    consents = pd.read_parquet(data / "consents.parquet")
    profilable = consents.loc[consents["payment_data_marketing"].fillna(False), "customer_id"]
    cust = cust[cust["customer_id"].isin(profilable)]
    tx = tx[tx["customer_id"].isin(cust["customer_id"])]
    age = (pd.Timestamp(as_of) - tx["booked_at"].dt.normalize()).dt.days
    parts = []
    for w in config.windows:
        win = tx[age < w]
        flows = (
            win.groupby(["customer_id", "credit"])["amount"].agg(["count", "sum"]).unstack("credit")
        )
        f = pd.DataFrame(index=flows.index)
        f[f"inflow_txn_count_{w}d"] = flows.get(("count", True))
        f[f"inflow_amount_sum_{w}d"] = flows.get(("sum", True))
        f[f"outflow_txn_count_{w}d"] = flows.get(("count", False))
        f[f"outflow_amount_sum_{w}d"] = -flows.get(("sum", False))
        f[f"net_flow_amount_sum_{w}d"] = win.groupby("customer_id")["amount"].sum()
        per_cat = win.groupby(["customer_id", "category"])["amount"].agg(["count", "sum"])
        wide = per_cat.unstack("category")
        wide.columns = [
            f"{c}_{'txn_count' if m == 'count' else 'amount_sum'}_{w}d" for m, c in wide.columns
        ]
        parts += [f, wide]
    out = cust.set_index("customer_id").join(pd.concat(parts, axis=1)).reset_index()
    return _complete(pl.from_pandas(out), config, ruleset)
