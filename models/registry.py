"""Load registered models by alias (`models:/propensity-<product>@champion`), never by stage.

Also the small pieces of MLflow setup shared by training and serving: where the tracking store
is, keeping MLflow offline and quiet, and keeping the SQLite store usable after a crash: a new
store is migrated under a temporary name and linked into place only when complete (a kill
during the ~seconds of migrations leaves no half-migrated `mlflow.db`); an existing store
that is half-migrated is set aside and recreated when it holds nothing, refused with a clear
message otherwise; runs left RUNNING by a killed process are marked FAILED on the next start.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from features.errors import ModelNotFoundError, PropensityError
from features.paths import process_alive
from models.bundle import ModelBundle

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

DEFAULT_WORK_DIR = Path("propensity-work")
MODEL_PREFIX = "propensity-"
_QUIET_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_RECORD_ENV_VARS_IN_MODEL_LOGGING": "false",
    "GIT_PYTHON_REFRESH": "quiet",
}


def model_name(product: str) -> str:
    """The registered model name for a product."""
    return f"{MODEL_PREFIX}{product}"


class TrackingStoreError(PropensityError):
    """The MLflow tracking store cannot be used as it is (an environment fault: exit 1)."""

    exit_code = 1


def resolve_tracking_uri(tracking_uri: str | None = None, work_dir: Path | None = None) -> str:
    """Explicit URI, else $MLFLOW_TRACKING_URI, else an embedded SQLite store in the work dir.
    A local SQLite store is created atomically or checked (`ensure_sqlite_store`)."""
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        root = (work_dir or DEFAULT_WORK_DIR).resolve()
        root.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{root / 'mlflow.db'}"
    path = sqlite_path(uri)
    if path is not None:
        ensure_sqlite_store(path)
    return uri


def sqlite_path(uri: str) -> Path | None:
    """The file of a `sqlite:///...` URI (None for other stores and in-memory SQLite)."""
    parsed = urlparse(uri)
    if parsed.scheme != "sqlite" or parsed.path in ("", "/", "/:memory:"):
        return None
    return Path(unquote(parsed.path[1:] if uri.startswith("sqlite:///") else parsed.path))


def _engine(path: Path) -> Engine:
    """An engine without a pool, so disposing it closes the file."""
    import sqlalchemy

    return sqlalchemy.create_engine(f"sqlite:///{path}", poolclass=sqlalchemy.pool.NullPool)


def store_problem(path: Path) -> str | None:
    """Why the SQLite store at `path` cannot be used as it is, or None when it is complete."""
    import sqlalchemy
    from mlflow.store.db import utils

    engine = _engine(path)
    try:
        tables = set(sqlalchemy.inspect(engine).get_table_names())
        leftovers = sorted(t for t in tables if t.startswith("_alembic_tmp"))
        if leftovers:
            return f"an interrupted schema migration left table {leftovers[0]}"
        if not utils._all_tables_exist(engine):
            return "its tables were only partly created"
        found, head = utils._get_schema_version(engine), utils._get_latest_schema_revision()
        if found != head:
            return f"its schema version is {found}, this MLflow needs {head}"
        return None
    except sqlalchemy.exc.DatabaseError as exc:
        _raise_if_locked(path, exc)
        return f"it is not a readable SQLite database ({exc.orig})"
    finally:
        engine.dispose()


def _raise_if_locked(path: Path, exc: Exception) -> None:
    """A store another process holds locked is busy, not broken: never set it aside."""
    if "locked" in str(exc).lower() or "busy" in str(exc).lower():
        raise TrackingStoreError(
            f"the MLflow store {path} is locked by another process; try again when it is done"
        ) from None


def _holdings(path: Path) -> int:
    """Runs plus registered models in a (possibly broken) store; 0 when unreadable."""
    import sqlalchemy

    engine = _engine(path)
    try:
        with engine.connect() as connection:
            tables = set(sqlalchemy.inspect(connection).get_table_names())
            count = 0
            for table in ("runs", "registered_models") if tables else ():
                if table in tables:
                    count += connection.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar()
            return count
    except sqlalchemy.exc.DatabaseError as exc:
        _raise_if_locked(path, exc)
        return 0
    finally:
        engine.dispose()


def _create_store(path: Path) -> None:
    """Migrate a new store under a temporary name, then link it into place: the final name
    only ever holds a complete store, and a store another process created meanwhile wins. A
    failure (a full disk, a read-only directory) is one line, and leaves no file behind."""
    import sqlalchemy
    from mlflow.store.db import utils

    tmp = _temporary(path)
    try:
        engine = _engine(tmp)
        try:
            utils._initialize_tables(engine)
        finally:
            engine.dispose()
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        _link_into_place(tmp, path)
    except (OSError, sqlalchemy.exc.DatabaseError) as exc:
        reason = getattr(exc, "orig", None) or getattr(exc, "strerror", None) or exc
        raise TrackingStoreError(f"could not create the MLflow store {path}: {reason}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _link_into_place(tmp: Path, path: Path) -> None:
    try:
        os.link(tmp, path)
    except FileExistsError:
        log.info("another process created %s first", path)
        return
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    log.info("created the MLflow store %s", path)


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")


def _remove_stale_temporaries(path: Path) -> None:
    """Delete half-made stores (`_temporary`) of processes that no longer run."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp*"):  # with any -journal file
        pid = tmp.name.removeprefix(f".{path.name}.").split(".")[0]
        if pid.isdigit() and not process_alive(int(pid)):
            tmp.unlink(missing_ok=True)


_VERIFIED: set[Path] = set()  # stores this process found complete (checked once each)


def ensure_sqlite_store(path: Path) -> None:
    """Make sure `path` holds a complete MLflow store: create it atomically when missing; a
    broken one (a kill during an earlier set-up, an unreadable file) is renamed aside (never
    deleted) and recreated when no run or model can be read from it, and refused
    (TrackingStoreError) when some can."""
    if path in _VERIFIED and path.exists():
        return
    quiet_mlflow()
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    if path.exists():
        problem = store_problem(path)
        if problem is None:
            _VERIFIED.add(path)
            return
        if _holdings(path) > 0:
            raise TrackingStoreError(
                f"the MLflow store {path} cannot be used: {problem}; it holds runs or models, so "
                f"it was left as it is: restore it from a backup, or run "
                f"`mlflow db upgrade sqlite:///{path}` if only the version is behind"
            )
        aside = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%dT%H%M%S')}")
        os.replace(path, aside)
        log.warning(
            "the MLflow store %s was unusable (%s) and empty: moved to %s and recreated",
            path,
            problem,
            aside.name,
        )
    _create_store(path)
    _VERIFIED.add(path)


def owner_tags() -> dict[str, str]:
    """Tags naming the process that owns a run, so a later start can tell a run whose process
    was killed (`fail_orphaned_runs`) from one still going."""
    return {
        "propensity.host": socket.gethostname(),
        "propensity.pid": str(os.getpid()),
        "propensity.pid_started": _started(os.getpid()),
    }


def _started(pid: int) -> str:
    """The process start time in clock ticks since boot (Linux), to tell a reused pid."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _alive(tags: dict[str, str]) -> bool:
    """Whether the process named by `owner_tags` still runs (other hosts: assumed alive)."""
    if "propensity.pid" not in tags:
        return False  # written before runs were tagged: its process is long gone
    if tags.get("propensity.host") != socket.gethostname():
        return True
    pid = int(tags["propensity.pid"])
    if not process_alive(pid):
        return False
    started = tags.get("propensity.pid_started", "")
    return not started or _started(pid) == started


def fail_orphaned_runs(experiment_id: str, tracking_uri: str) -> list[str]:
    """Mark FAILED every RUNNING run of the experiment whose process is gone (killed);
    returns their run ids."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    running = client.search_runs([experiment_id], "attributes.status = 'RUNNING'", max_results=1000)
    failed = []
    for run in running:
        if not _alive(run.data.tags):
            client.set_terminated(run.info.run_id, status="FAILED")
            failed.append(run.info.run_id)
    if failed:
        log.warning("marked %d run(s) left RUNNING by a killed process as FAILED", len(failed))
    return failed


def quiet_mlflow() -> None:
    """Keep MLflow offline (no telemetry) and its loggers at WARNING."""
    for key, value in _QUIET_ENV.items():
        os.environ.setdefault(key, value)
    import mlflow  # noqa: F401  (sets its loggers' levels when first imported: ours come after)

    for name in ("mlflow", "alembic", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
    pyfunc_log = logging.getLogger("mlflow.pyfunc")
    if not any(isinstance(f, _DropKnownNoise) for f in pyfunc_log.filters):
        pyfunc_log.addFilter(_DropKnownNoise())


class _DropKnownNoise(logging.Filter):
    """Drops MLflow's advice to use models-from-code: our PythonModel class is importable, so
    cloudpickle stores a reference to it, not code."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Passing a Python object as `python_model`")


@contextmanager
def mlflow_session(tracking_uri: str) -> Iterator[None]:
    """Point MLflow's tracking and registry at `tracking_uri` for the block, then restore."""
    quiet_mlflow()
    import mlflow

    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved["MLFLOW_TRACKING_URI"])
        mlflow.set_registry_uri(saved["MLFLOW_REGISTRY_URI"])
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)


def model_version(product: str, alias: str, tracking_uri: str) -> str:
    """The version number behind `alias`; ModelNotFoundError when there is none."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    quiet_mlflow()
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        return str(client.get_model_version_by_alias(model_name(product), alias).version)
    except MlflowException as exc:
        raise ModelNotFoundError(
            f"no model {model_name(product)!r} with alias {alias!r} in {tracking_uri} "
            f"(train it first with `propensity train`)"
        ) from exc


def load_bundle(
    product: str,
    alias: str = "champion",
    tracking_uri: str | None = None,
    work_dir: Path | None = None,
) -> ModelBundle:
    """Load `models:/propensity-<product>@<alias>` as a ModelBundle with its registry version."""
    uri = resolve_tracking_uri(tracking_uri, work_dir)
    version = model_version(product, alias, uri)
    with mlflow_session(uri):
        import mlflow.pyfunc

        loaded = mlflow.pyfunc.load_model(f"models:/{model_name(product)}@{alias}")
    bundle: ModelBundle = loaded.unwrap_python_model().bundle
    log.info("loaded %s@%s (version %s)", model_name(product), alias, version)
    return bundle.with_version(version)
