"""Transaction categorisation from rules in a TOML file, with user additions and overrides.

Rules are data, not code: the built-in set ships as `categories.toml`; a bank adds or replaces
rules inline in `FeatureConfig.rules` or in its own TOML file (`FeatureConfig.rules_file`,
same format). The rules are evaluated once per distinct combination of the columns they read
and joined back by a hash of that combination, so the cost grows with the number of distinct
counterparties, not with the number of rows.
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from pydantic import ValidationError

from features.config import Rule
from features.errors import ConfigError

if TYPE_CHECKING:
    from features.config import FeatureConfig

log = logging.getLogger(__name__)

# The columns the rules read; categorisation happens once per distinct combination of them.
KEY_COLUMNS = ("counterparty_name", "counterparty_iban", "mcc", "method", "description", "location")
FALLBACK = "other"
# When no rule matches, the booking method still says what a row is (a foreign bank's text
# matches none of the Dutch rules): method -> category, tried before `other`.
METHOD_FALLBACK = {"interest": "interest", "fee": "fees", "cash": "cash", "atm": "cash"}
METHOD_MEANINGS = {"interest": "interest credited or charged (from the booking method)"}
CHILD_BENEFIT = "child_benefit"  # the category whose rule is the one definition of child benefit


@dataclass(frozen=True)
class RuleSet:
    """The effective categories and rules (special rules first, then user, then built-in)."""

    categories: tuple[str, ...]
    special: frozenset[str]
    meanings: dict[str, str]
    rules: tuple[Rule, ...]
    airport_location: tuple[str, ...]
    airport_mcc: tuple[int, ...]
    eligibility_only: frozenset[str] = frozenset()

    @property
    def excluded(self) -> frozenset[str]:
        """Categories whose rows never reach a feature: special data (art. 9) and the
        eligibility-only families (read by the responsible-lending check alone)."""
        return self.special | self.eligibility_only

    @property
    def feature_categories(self) -> tuple[str, ...]:
        """The categories that may become features (special and eligibility-only never do)."""
        return tuple(c for c in self.categories if c not in self.excluded)

    @property
    def dtype(self) -> pl.Enum:
        return pl.Enum(self.categories)

    @property
    def key_columns(self) -> tuple[str, ...]:
        """The columns some rule or flag reads: the key of the distinct combinations."""
        used = {
            "counterparty_name": any(r.counterparty for r in self.rules),
            "counterparty_iban": any(r.iban for r in self.rules),
            "mcc": bool(self.airport_mcc) or any(r.mcc or r.mcc_range for r in self.rules),
            "method": True,  # the method fallback reads it when no rule matches
            "description": any(r.description for r in self.rules),
            "location": bool(self.airport_location),
        }
        return tuple(c for c in KEY_COLUMNS if used[c])

    def excluded_columns(self, names: list[str] | tuple[str, ...]) -> list[str]:
        """The column names in `names` that belong to an excluded family (the category name
        as a whole `_`-separated part, e.g. `debt_collection_txn_count_30d`,
        `days_since_last_gambling`; a feature category that contains one, such as
        `health_insurance`, is not a match): none may ever be a model feature."""
        if not self.excluded:
            return []

        def part(categories: frozenset[str] | tuple[str, ...]) -> str:
            alternatives = "|".join(re.escape(c) for c in sorted(categories, key=len)[::-1])
            return rf"(?:^|_)(?:{alternatives})(?=_|$)"

        allowed = re.compile(part(self.feature_categories)) if self.feature_categories else None
        excluded = re.compile(part(self.excluded))
        masked = {n: allowed.sub("_#", n) if allowed else n for n in names}
        return [n for n in names if excluded.search(masked[n])]


def _read_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None


def _parse_rules(doc: dict[str, Any], source: str) -> list[Rule]:
    rules = []
    for i, raw in enumerate(doc.get("rule", [])):
        try:
            rules.append(Rule(**raw))
        except (ValidationError, TypeError) as exc:
            msg = f"{source}: rule #{i + 1} ({raw.get('name')!r}) is invalid: {exc}"
            raise ConfigError(msg) from None
    return rules


def _check_regexes(rule: Rule, source: str) -> None:
    probe = pl.Series([""], dtype=pl.String)
    for pattern in rule.counterparty:
        try:
            probe.str.contains(pattern)
        except pl.exceptions.ComputeError as exc:
            msg = f"{source}: rule {rule.name!r}: bad counterparty regex {pattern!r}: {exc}"
            raise ConfigError(msg) from None


def builtin_document() -> dict[str, Any]:
    """The shipped rule file, parsed."""
    text = resources.files("features").joinpath("categories.toml").read_text(encoding="utf-8")
    return _read_toml(text, "features/categories.toml")


def _user_documents(config: FeatureConfig) -> list[tuple[dict[str, Any], list[Rule], str]]:
    docs: list[tuple[dict[str, Any], list[Rule], str]] = []
    if config.rules_file is not None:
        path = Path(config.rules_file)
        if not path.is_file():
            raise ConfigError(f"rules_file {path} does not exist")
        doc = _read_toml(path.read_text(encoding="utf-8"), str(path))
        docs.append((doc, _parse_rules(doc, str(path)), str(path)))
    if config.rules:
        docs.append(({}, list(config.rules), "config.rules"))
    return docs


def _merge_categories(
    base: dict[str, Any], user_docs: list[tuple[dict[str, Any], list[Rule], str]]
) -> tuple[list[str], set[str], set[str], dict[str, str]]:
    order = list(base)
    special = {name for name, spec in base.items() if spec.get("special", False)}
    only = {name for name, spec in base.items() if spec.get("eligibility_only", False)}
    meanings = {name: str(spec.get("meaning", name)) for name, spec in base.items()}
    for doc, rules, source in user_docs:
        for name, spec in doc.get("categories", {}).items():
            for flag, marked in (("special", special), ("eligibility_only", only)):
                if name in marked and not spec.get(flag, True):
                    raise ConfigError(f"{source}: category {name!r} is {flag} and stays {flag}")
                if spec.get(flag, False):
                    marked.add(name)
            if name not in meanings:
                order.append(name)
            meanings[name] = str(spec.get("meaning", meanings.get(name, name)))
        for rule in rules:
            if rule.category not in meanings:
                order.append(rule.category)
                meanings[rule.category] = f"{rule.category} (user category)"
    return order, special, only, meanings


def load_ruleset(config: FeatureConfig) -> RuleSet:
    """The built-in rules merged with the user's: user rules replace built-in rules of the same
    name and are tried before the built-in ones; special rules are always tried first and
    cannot be replaced or disabled."""
    base = builtin_document()
    builtin = _parse_rules(base, "features/categories.toml")
    user_docs = _user_documents(config)
    order, special, only, meanings = _merge_categories(base.get("categories", {}), user_docs)
    user_rules = [r for _, rules, _ in user_docs for r in rules]
    special_names = {r.name for r in builtin if r.category in special}
    replaced = {r.name for r in user_rules} | set(config.disabled_rules)
    clash = special_names & replaced
    if clash:
        raise ConfigError(f"rules {sorted(clash)} exclude special data and cannot be changed")
    ordered = (
        [r for r in builtin if r.category in special]
        + [r for r in user_rules if r.category in special]
        + [r for r in user_rules if r.category not in special]
        + [r for r in builtin if r.category not in special and r.name not in replaced]
    )
    for rule in user_rules:
        _check_regexes(rule, "user rules")
    flags = base.get("flags", {})
    for category in [*METHOD_FALLBACK.values(), FALLBACK]:
        if category not in order:
            order.append(category)
            meanings[category] = METHOD_MEANINGS.get(category, "anything no rule matched")
    return RuleSet(
        categories=tuple(order),
        special=frozenset(special),
        meanings=meanings,
        rules=tuple(ordered),
        airport_location=tuple(flags.get("airport_location", ())),
        airport_mcc=tuple(int(m) for m in flags.get("airport_mcc", ())),
        eligibility_only=frozenset(only),
    )


def _any_regex(patterns: tuple[str, ...]) -> str:
    return "(?i)" + "|".join(f"(?:{p})" for p in patterns)


def rule_expr(rule: Rule) -> pl.Expr:
    """True where every criterion of the rule holds (nulls never match)."""
    conds: list[pl.Expr] = []
    if rule.counterparty:
        conds.append(pl.col("counterparty_name").str.contains(_any_regex(rule.counterparty)))
    if rule.iban:
        wanted = [i.replace(" ", "").upper() for i in rule.iban]
        iban = pl.col("counterparty_iban").str.replace_all(" ", "", literal=True)
        conds.append(iban.str.to_uppercase().is_in(wanted))
    if rule.mcc or rule.mcc_range:
        mcc = pl.col("mcc").is_in(list(rule.mcc))
        for low, high in rule.mcc_range:
            mcc = mcc | pl.col("mcc").is_between(low, high)
        conds.append(mcc)
    if rule.method:
        conds.append(pl.col("method").is_in(list(rule.method)))
    if rule.description:
        words = "|".join(re.escape(w) for w in rule.description)
        conds.append(pl.col("description").str.contains(rf"(?i)\b(?:{words})\b"))
    if rule.direction != "any":
        conds.append(pl.col("credit") if rule.direction == "in" else ~pl.col("credit"))
    return pl.all_horizontal(c.fill_null(False) for c in conds)


def _first_match(ruleset: RuleSet, value: Callable[[Rule], pl.Expr], none: pl.Expr) -> pl.Expr:
    """`value` of the first rule that matches (rules in order), `none` when none does."""
    chain: Any = pl
    for rule in ruleset.rules:
        chain = chain.when(rule_expr(rule)).then(value(rule))
    return chain.otherwise(none) if ruleset.rules else none


def method_fallback() -> pl.Expr:
    """The category the booking method implies (`METHOD_FALLBACK`), `other` for the rest."""
    method = pl.col("method")
    chain: Any = pl
    for name, category in METHOD_FALLBACK.items():
        chain = chain.when(method == name).then(pl.lit(category))
    return chain.otherwise(pl.lit(FALLBACK))


def category_expr(ruleset: RuleSet) -> pl.Expr:
    """The first matching rule's category; when none matches, the method's (interest, fee,
    cash, atm), else `other`."""
    category = _first_match(ruleset, lambda r: pl.lit(r.category), method_fallback())
    return category.cast(ruleset.dtype)


def rule_name_expr(ruleset: RuleSet) -> pl.Expr:
    """The name of the first matching rule (null when none): for explaining a category."""
    return _first_match(ruleset, lambda r: pl.lit(r.name), pl.lit(None, pl.String))


def airport_expr(ruleset: RuleSet) -> pl.Expr:
    """A payment at an airport: by location text or the airport MCC."""
    by_place = pl.col("location").str.contains(_any_regex(ruleset.airport_location))
    by_mcc = pl.col("mcc").is_in(list(ruleset.airport_mcc))
    return (by_place.fill_null(False) | by_mcc.fill_null(False)).alias("airport")


def rule_key(columns: tuple[str, ...] = KEY_COLUMNS) -> pl.Expr:
    """A 64-bit hash of the columns the rules read (and the direction): XOR of per-column
    hashes with distinct seeds, cheaper than hashing a struct of them."""
    key = (pl.col("amount") > 0).cast(pl.UInt64)
    for i, column in enumerate(columns):
        key = key ^ pl.col(column).hash(seed=101 + i)
    return key.alias("_rule_key")


def split_rules(rows: pl.LazyFrame, ruleset: RuleSet) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """The rows with `_rule_key` (a 64-bit hash of the columns the rules read) instead of
    those columns, and the distinct combinations with their text and direction. Collect the
    combinations first (a small frame), then stream the rows: they never carry text past the
    hash. (One scan with two sinks was tried: polars buffers the shared scan in memory.)"""
    columns = ruleset.key_columns
    keyed = rows.with_columns(rule_key(columns))
    credit = (pl.col("amount") > 0).alias("credit")
    combos = keyed.select("_rule_key", *columns, credit).unique(subset=["_rule_key"], keep="any")
    return keyed.drop(columns), combos


def scan_categorised(
    rows: pl.LazyFrame, ruleset: RuleSet, keep: list[str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One streaming scan of `rows`: the `keep` columns plus `_rule_key` of every row, and
    the mapping `_rule_key` -> `category`, `airport` of every combination in them. Text never
    stays in memory: each batch keeps only `keep` and the key, and the combinations a batch
    brings that no earlier batch had are categorised on the spot (so the rules run about
    once per distinct combination). One scan instead of two (distinct combinations first,
    then the rows) saves reading and hashing the text columns twice; `collect_all` over the
    two queries instead buffered the whole scan in memory."""
    columns = ruleset.key_columns
    credit = (pl.col("amount") > 0).alias("credit")
    scan = rows.select(*keep, rule_key(columns), *columns, credit)
    kept = [scan.select(*keep, "_rule_key").clear().collect()]
    mapping = rules_applied(scan.clear().collect(), ruleset)
    for batch in scan.collect_batches(maintain_order=False):
        unseen = batch.filter(~pl.col("_rule_key").is_in(mapping["_rule_key"].implode()))
        if unseen.height:
            new = rules_applied(unseen.unique("_rule_key", keep="any"), ruleset)
            mapping = pl.concat([mapping, new])
        kept.append(batch.select(*keep, "_rule_key"))
    return pl.concat(kept, rechunk=False), mapping


def rules_applied(distinct: pl.DataFrame, ruleset: RuleSet) -> pl.DataFrame:
    """`_rule_key` -> `category`, `airport` for the distinct combinations (a small frame)."""
    return distinct.select(
        "_rule_key", category_expr(ruleset).alias("category"), airport_expr(ruleset)
    )


def categorise(transactions: pl.LazyFrame, ruleset: RuleSet) -> pl.LazyFrame:
    """Add `category` (Enum) and `airport` (bool) and drop the columns the rules read. The
    rules run once per distinct combination of those columns (collected first, in a separate
    small pass) and are joined back on the integer hash of the combination (much cheaper than
    a join on several strings)."""
    rows, combos = split_rules(transactions, ruleset)
    mapping = rules_applied(combos.collect(engine="streaming"), ruleset).lazy()
    return rows.join(mapping, on="_rule_key", how="left").drop("_rule_key")


def explain_categories(transactions: pl.LazyFrame, ruleset: RuleSet) -> pl.LazyFrame:
    """Row-level category and the rule that chose it (slow path, for inspection and tests)."""
    return transactions.with_columns(pl.col("amount").gt(0).alias("credit")).with_columns(
        category_expr(ruleset).alias("category"),
        rule_name_expr(ruleset).alias("rule"),
        airport_expr(ruleset),
    )


def child_benefit_flags(
    transactions: pl.LazyFrame, start: date, end: date, ruleset: RuleSet
) -> pl.LazyFrame:
    """`customer_id`, `child_benefit`: for every customer with a booking in [start, end),
    whether one of them is child benefit by the categorisation rules (the one definition:
    the first matching rule's category is `child_benefit`, so an AOW pension from the SVB is
    not). Customers without a booking in the window are absent: left-join and fill False."""
    booked = pl.col("booked_at")
    window = booked.is_between(
        datetime.combine(start, time()), datetime.combine(end, time()), closed="left"
    )
    rows = transactions.filter(window).select("customer_id", "amount", *ruleset.key_columns)
    return (
        categorise(rows, ruleset)
        .group_by("customer_id")
        .agg((pl.col("category") == CHILD_BENEFIT).any().alias(CHILD_BENEFIT))
    )
