"""Reading the data directory and writing results: the only module here that touches files.

Every command loads its input through `load_tables`, so every command gets the same contract
checks. The input directory is treated as read-only; rejected rows go to a directory of the
caller's choosing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl

from features.casting import localize
from features.config import CsvOptions, InputOptions
from features.consent import with_objections
from features.errors import ContractError, Fault, RejectedRowsError
from features.paths import atomic_file
from features.schemas import SPECS, Tables, TableSpec, empty_frame
from features.validate import (
    ROW,
    RowContext,
    cast_to_contract,
    id_faults,
    key_faults,
    rejected,
    rejection_detail,
    rejection_reason,
)

log = logging.getLogger(__name__)

# Customers first: the other tables are checked against the customers that passed.
LOAD_ORDER = ("customers", "transactions", "products", "consents", "contacts")


def find_table(data_dir: Path, name: str) -> Path | None:
    """`<name>.parquet`, `<name>.csv` or a directory `<name>/` of Parquet files."""
    for candidate in (data_dir / f"{name}.parquet", data_dir / f"{name}.csv", data_dir / name):
        if candidate.exists():
            return candidate
    return None


ZONED_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%#z",
    "%Y-%m-%d %H:%M:%S%#z",
    "%Y-%m-%dT%H:%M:%S%.f%#z",
    "%Y-%m-%d %H:%M:%S%.f%#z",
)
"""ISO timestamps with an offset or Z; they are converted to the bank's local time."""
SEPARATOR_NAMES = {";": "semicolon", "\t": "tab", "|": "pipe", ",": "comma"}


def _read_csv(path: Path, csv: CsvOptions) -> pl.LazyFrame:
    """CSV as text columns (the casts are checked later) in the configured dialect."""
    if csv.encoding in ("latin1", "cp1252"):
        text = path.read_bytes().decode(csv.encoding)
        return pl.read_csv(text.encode(), separator=csv.separator, infer_schema=False).lazy()
    return pl.scan_csv(path, separator=csv.separator, encoding=csv.encoding, infer_schema=False)


def _dialect_hint(lf: pl.LazyFrame, name: str, path: Path, csv: CsvOptions) -> None:
    """A file read as a single column whose header holds another separator is misconfigured."""
    names = lf.collect_schema().names()
    if len(names) != 1:
        return
    for sep, word in SEPARATOR_NAMES.items():
        if sep != csv.separator and sep in names[0]:
            raise ContractError(
                [
                    Fault(
                        name,
                        None,
                        f"{path.name} looks {word}-separated: set [data.csv] separator = "
                        f"{sep!r} in the config",
                        names[0][:80],
                    )
                ]
            )


def scan_table(path: Path, name: str, csv: CsvOptions | None = None) -> pl.LazyFrame:
    """A lazy scan of one table; CSV is read as text so the casts can be checked."""
    csv = csv or CsvOptions()
    try:
        if path.is_dir():
            parts = sorted(path.glob("*.parquet"))
            if not parts:
                raise ContractError(
                    [Fault(name, None, f"directory {path} holds no .parquet files")]
                )
            lf = pl.scan_parquet(parts)
        elif path.suffix == ".csv":
            lf = _read_csv(path, csv)
            _dialect_hint(lf, name, path, csv)
        else:
            lf = pl.scan_parquet(path)
        lf.collect_schema()
        lf.head(1).collect()
    except ContractError:
        raise
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
        kind = "CSV" if path.suffix == ".csv" else "Parquet"
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        if kind == "CSV" and "utf-8" in str(exc).lower():
            first += "; if the file is not UTF-8, set [data.csv] encoding = 'latin1' or 'cp1252'"
        raise ContractError(
            [Fault(name, None, f"{path} is not a readable {kind} file: {first}")]
        ) from None
    return lf


def _localise(raw: pl.LazyFrame, spec: TableSpec, options: InputOptions) -> pl.LazyFrame:
    """Bring a source into the contract's conventions before the casts: zoned timestamps (and
    ISO texts with an offset) become naive local time in `options.timezone`; with a decimal
    comma, "1.234,50" becomes "1234.50"."""
    source = raw.collect_schema()
    exprs: list[pl.Expr] = []
    for col in spec.columns:
        dtype = source.get(col.name)
        if dtype is None:
            continue
        c = pl.col(col.name)
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            exprs.append(localize(c, options.timezone).alias(col.name))
        elif dtype == pl.String and isinstance(col.dtype, pl.Datetime):
            text = c.str.strip_chars()
            zoned = pl.coalesce(
                text.str.to_datetime(f, strict=False, time_zone="UTC", time_unit="us")
                for f in ZONED_FORMATS
            )
            local = localize(zoned, options.timezone).dt.strftime("%Y-%m-%d %H:%M:%S%.f")
            exprs.append(pl.coalesce(local, text).alias(col.name))
        elif dtype == pl.String and col.dtype.is_float() and options.csv.decimal_comma:
            text = c.str.strip_chars().str.replace_all(".", "", literal=True)
            exprs.append(text.str.replace(",", ".", literal=True).alias(col.name))
    return raw.with_columns(exprs) if exprs else raw


def _comma_hint(fault: Fault, raw: pl.LazyFrame, spec: TableSpec, options: InputOptions) -> Fault:
    """A number column that failed on text with a comma: name the option that reads it."""
    dtype = spec.schema.get(fault.column) if fault.column else None
    if dtype is None or not dtype.is_float() or options.csv.decimal_comma:
        return fault
    if raw.collect_schema().get(fault.column) != pl.String:
        return fault
    has_comma = raw.select(pl.col(fault.column).str.contains(",", literal=True).any()).collect()
    if not has_comma.item():
        return fault
    hint = "; if the file uses a decimal comma, set [data.csv] decimal_comma = true"
    return Fault(fault.table, fault.column, fault.problem + hint, fault.example)


@dataclass
class LoadResult:
    """The validated tables plus what was set aside."""

    tables: Tables
    rows: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, pl.DataFrame] = field(default_factory=dict)
    consenting: pl.Series = field(default_factory=lambda: pl.Series("customer_id", [], pl.String))
    withheld: dict[str, int] = field(default_factory=dict)  # rejected rows never written

    @property
    def rejected_counts(self) -> dict[str, dict[str, int]]:
        """Rejected rows per table and reason."""
        return {
            table: dict(df.group_by("reason").len().sort("reason").iter_rows())
            for table, df in self.rejected.items()
            if df.height
        }

    @property
    def n_rejected(self) -> int:
        return sum(df.height for df in self.rejected.values())


def _load_one(
    data_dir: Path, spec: TableSpec, faults: list[Fault], options: InputOptions
) -> pl.LazyFrame | None:
    path = find_table(data_dir, spec.name)
    if path is None:
        stray = sorted(p.name for p in data_dir.glob(f"{spec.name}.*"))
        if stray:
            faults.append(Fault(spec.name, None, "not a Parquet or CSV file", ", ".join(stray)))
        elif spec.required:
            faults.append(
                Fault(
                    spec.name,
                    None,
                    f"missing: expected {spec.name}.parquet, {spec.name}.csv or a {spec.name}/ "
                    f"directory in {data_dir}",
                )
            )
        return None
    try:
        raw = _localise(scan_table(path, spec.name, options.csv), spec, options)
    except ContractError as exc:
        faults.extend(exc.faults)
        return None
    cast, cast_faults = cast_to_contract(raw, spec)
    faults.extend(_comma_hint(f, raw, spec, options) for f in cast_faults)
    if cast_faults:
        return None
    faults.extend(key_faults(cast, spec))
    faults.extend(id_faults(cast, spec))
    return cast


def _quarantine(
    lf: pl.LazyFrame, spec: TableSpec, ctx: RowContext
) -> tuple[pl.LazyFrame, pl.DataFrame, int]:
    """Split a table into good rows (lazy) and rejected rows, kept minimal: row number, key,
    customer id, column, reason and offending value (`features.validate.REJECTED_COLUMNS`)."""
    reason = rejection_reason(spec.name, ctx)
    bad_row = rejected(spec.name, ctx)
    stats = lf.select(pl.len().alias("rows"), bad_row.sum().alias("bad")).collect(
        engine="streaming"
    )
    rows, bad = stats.row(0)
    ids = [c for c in (*spec.key, "customer_id") if c in spec.schema]
    minimal = (
        lf.with_row_index(ROW, offset=1)
        .with_columns(reason)
        .filter(pl.col("reason").is_not_null())
        .with_columns(rejection_detail(spec.name))
        .select(ROW, *dict.fromkeys(ids), "column", "reason", "value")
    )
    if not bad:
        return lf, minimal.head(0).collect(), rows
    rejected_rows = minimal.collect(engine="streaming")
    return lf.filter(~bad_row), rejected_rows, rows


def _consenting(consents: pl.LazyFrame) -> pl.Series:
    """Ids with a consent row allowing payment-data marketing, before any row is rejected."""
    allowed = consents.filter(pl.col("payment_data_marketing").fill_null(False))
    return allowed.select("customer_id").unique().collect()["customer_id"]


def load_tables(
    data_dir: Path,
    *,
    rejected_out: Path | None = None,
    strict: bool = False,
    today: date | None = None,
    options: InputOptions | None = None,
    objections: pl.DataFrame | None = None,
) -> LoadResult:
    """Load, cast and validate the contract tables of `data_dir`.

    Table-level faults raise `ContractError` (all of them at once). Row-level faults are
    quarantined: counted, logged, kept in `LoadResult.rejected` and written to `rejected_out`.
    With `strict`, any rejected row raises `RejectedRowsError` (after writing them aside).
    `options` give the CSV dialect and the local time zone (default: comma, decimal point,
    UTF-8, Europe/Amsterdam). `objections` is the objection register (customer_id,
    recorded_at; `serving.objections.register_frame` reads it from the ledger database): it is
    laid over the consents table here (`features.consent.with_objections`), so that every
    path loading the data sees an objection recorded since the bank's last delivery.
    """
    options = options or InputOptions()
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise ContractError([Fault("(data directory)", None, f"{data_dir} is not a directory")])
    faults: list[Fault] = []
    cast = {name: _load_one(data_dir, SPECS[name], faults, options) for name in LOAD_ORDER}
    if faults:
        raise ContractError(faults)
    result = LoadResult(tables=Tables(**{n: empty_frame(SPECS[n]) for n in LOAD_ORDER}))
    assert cast["consents"] is not None  # a required table: a fault above otherwise
    result.consenting = _consenting(with_objections(cast["consents"], objections))
    frames: dict[str, pl.LazyFrame] = {}
    ctx = RowContext(today or date.today(), pl.Series("customer_id", [], pl.String))
    for name in LOAD_ORDER:
        lf = cast[name] if cast[name] is not None else empty_frame(SPECS[name])
        good, rejected, rows = _quarantine(lf, SPECS[name], ctx)
        if name == "consents":  # after the row checks: the register is not the bank's feed
            good = with_objections(good, objections)
        if name == "customers":
            ids = good.select("customer_id").collect()["customer_id"]
            ctx = RowContext(ctx.today, ids)
        frames[name] = good
        result.rows[name] = rows
        result.rejected[name] = rejected
        if rejected.height:
            log.warning("%s: %d of %d rows rejected", name, rejected.height, rows)
    result.tables = Tables(**frames)
    if rejected_out is not None:
        write_rejected(result, rejected_out, data_dir)
    if strict and result.n_rejected:
        raise RejectedRowsError(
            f"--strict: {result.n_rejected} row(s) were rejected: {result.rejected_counts}"
        )
    return result


def write_rejected(result: LoadResult, out_dir: Path, data_dir: Path | None = None) -> list[Path]:
    """Write each table's rejected rows to `<out_dir>/<table>.rejected.parquet`.

    Rows of customers who objected or have no consent row are never written, only counted
    (`LoadResult.withheld`): the quarantine must not keep what profiling may not use.
    """
    out_dir = Path(out_dir)
    if data_dir is not None and out_dir.resolve() == Path(data_dir).resolve():
        raise ContractError(
            [Fault("(rejected rows)", None, "--rejected-out must not be the input directory")]
        )
    written = []
    for table, df in result.rejected.items():
        path = out_dir / f"{table}.rejected.parquet"
        kept = df
        if "customer_id" in df.columns:
            ids = pl.col("customer_id")
            kept = df.filter(ids.is_null() | ids.is_in(result.consenting.implode()))
        result.withheld[table] = df.height - kept.height
        if result.withheld[table]:
            log.warning(
                "%s: %d rejected row(s) of objectors or customers without consent not written",
                table,
                result.withheld[table],
            )
        if kept.height:
            with atomic_file(path) as tmp:
                kept.write_parquet(tmp)
            written.append(path)
        elif path.exists():
            path.unlink()  # a stale file from an earlier load would misreport this one
    return written
