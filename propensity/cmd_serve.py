"""CLI commands: `propensity serve` (the real-time HTTP service) and `propensity token create`."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import typer

from features.errors import ConfigError
from propensity.config import AppConfig, load_config

DEFAULT_CONFIG = Path("propensity.toml")


def build_service(config: AppConfig):  # type: ignore[no-untyped-def]  # -> FastAPI
    """The app of `propensity serve` for a config: models by alias, ledger, online store."""
    _check_tokens(config)
    _latency_settings()
    from models.registry import resolve_tracking_uri
    from propensity.api import create_app
    from serving import ledger as lg
    from serving.online import OnlineEngine, ServedModels

    ledger_url = lg.ledger_url(config.ledger.url, config.work_dir)
    _check_ledger(ledger_url)
    tracking_uri = resolve_tracking_uri(config.mlflow.tracking_uri, config.work_dir)
    products = sorted({c.product for c in config.campaigns})
    models = ServedModels(products, config.online.alias, tracking_uri, config.features)
    engine = OnlineEngine(
        ledger_url,
        config.serving_config(),
        list(config.campaigns),
        config.features,
        config.online,
        models,
    )
    return create_app(engine, config.online.tokens, ledger_url, timezone=config.data.timezone)


_CONFIG_ENV = "PROPENSITY_SERVE_CONFIG"
WORKER_STARTUP_SECONDS = 120


def _latency_settings() -> None:
    """Process settings for low latency. Every frame of a real-time decision has a few rows:
    polars' in-memory engine runs such a plan in about half the time of the streaming engine
    `collect()` picks by default (measured: 1.0 vs 2.2 ms for the candidates of a decision).
    The server process only decides small batches; a `POLARS_ENGINE_AFFINITY` set by the user
    wins."""
    if "POLARS_ENGINE_AFFINITY" not in os.environ:
        import polars as pl

        pl.Config.set_engine_affinity("in-memory")
    # the event loop and the decision thread share the GIL: a 1 ms switch interval (Python's
    # default is 5 ms) lets the loop hand over requests and send answers while a batch runs
    sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))


def _check_tokens(config: AppConfig) -> None:
    if not config.online.tokens:
        raise ConfigError(
            "online.tokens: no API token configured; create one with "
            "`propensity token create kafka-consumer --role events --config propensity.toml`"
        )


def _quiet_logs() -> None:
    logging.getLogger().setLevel(logging.INFO)
    for name in ("mlflow", "alembic", "urllib3", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)


def lg_url(config: AppConfig) -> str:
    from serving import ledger as lg

    return lg.ledger_url(config.ledger.url, config.work_dir)


def service_from_env():  # type: ignore[no-untyped-def]
    """The app of one worker process of `propensity serve --workers N` (uvicorn factory):
    each process loads the models and runs its own decision worker; they share the ledger
    (and its locks). Prometheus counts are per process."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    _quiet_logs()
    where = json.loads(os.environ[_CONFIG_ENV])
    path = where["config"] and Path(where["config"])
    work_dir = where["work_dir"] and Path(where["work_dir"])
    return build_service(load_config(path or None).override(work_dir=work_dir or None))


def _check_ledger(url: str) -> None:
    """An unreachable or malformed ledger URL is a config error (exit 2), never a traceback."""
    import sqlalchemy as sa

    from serving import ledger as lg

    try:
        engine = lg.make_engine(url)
        with engine.connect():
            pass
        engine.dispose()
    except (sa.exc.SQLAlchemyError, ImportError) as exc:
        raise ConfigError(
            f"ledger.url: cannot open the ledger ({type(exc).__name__}); "
            "e.g. postgresql+psycopg://user@127.0.0.1:5432/db or sqlite:///ledger.sqlite"
        ) from None


def register(app: typer.Typer) -> None:
    """Add `serve` and the `token` group to the app."""

    @app.command()
    def serve(
        config_path: Path = typer.Option(None, "--config", help="propensity.toml"),
        host: str = typer.Option("127.0.0.1", "--host", help="address to bind (loopback)"),
        port: int = typer.Option(8000, "--port", help="TCP port"),
        work_dir: Path = typer.Option(None, "--work-dir", help="ledger and models live here"),
        workers: int = typer.Option(
            1, "--workers", min=1, help="server processes sharing the port and the ledger"
        ),
    ) -> None:
        """Serve real-time decisions on events over HTTP (docs at /docs)."""
        config = load_config(config_path).override(work_dir=work_dir)
        _quiet_logs()
        import uvicorn

        if workers == 1:
            service = build_service(config)
            print(f"serving on http://{host}:{port} (docs at /docs)", file=sys.stderr, flush=True)
            uvicorn.run(service, host=host, port=port, access_log=False, log_config=None)
            return
        _check_tokens(config)  # fail here, once, not in every worker
        _check_ledger(lg_url(config))
        print(f"serving on http://{host}:{port} (docs at /docs)", file=sys.stderr, flush=True)
        where = {"config": config_path and str(config_path), "work_dir": work_dir and str(work_dir)}
        os.environ[_CONFIG_ENV] = json.dumps(where)
        uvicorn.run(
            "propensity.cmd_serve:service_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            access_log=False,
            log_config=None,
            # a worker first imports this CLI and loads the models before it can answer
            # uvicorn's health ping; at the default 5 s a busy machine's workers were killed
            # as hung, over and over, and nothing was served
            timeout_worker_healthcheck=WORKER_STARTUP_SECONDS,
        )

    tokens = typer.Typer(help="API tokens for `propensity serve`.", no_args_is_help=True)
    app.add_typer(tokens, name="token")

    @tokens.command("create")
    def create(
        name: str = typer.Argument(..., help="who uses the token, e.g. kafka-consumer"),
        role: str = typer.Option(..., "--role", help="events or service_desk"),
        config_path: Path = typer.Option(DEFAULT_CONFIG, "--config", help="file to store it in"),
    ) -> None:
        """Print a new token once; only its salted hash is stored in the config file."""
        from propensity.tokens import create_token

        load_config(config_path if config_path.exists() else None)  # refuse a broken file
        secret = create_token(config_path, name, role)
        load_config(config_path)  # the file still validates with the new token
        print(secret)
