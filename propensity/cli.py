"""The `propensity` command: one typer app; each command only parses, loads config and calls
one library function.

Every failure is one clear line on stderr and an exit code: 2 for a user mistake (bad data,
config, option or id), 1 for the environment (disk full, database gone, lock timeout) or an
internal error. A traceback only with `--debug` (accepted anywhere on the command line).
"""

from __future__ import annotations

import errno
import logging
import os
import sys
import traceback

# Before LightGBM loads (see models/estimator.py): passive OpenMP waiting, so LightGBM's idle
# threads do not spin against polars' thread pool on a 2-core machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import typer
from rich.console import Console
from rich.markup import escape

from features.errors import PropensityError
from propensity import (
    cmd_data,
    cmd_features,
    cmd_generate,
    cmd_monitoring,
    cmd_objection,
    cmd_publish,
    cmd_run,
    cmd_serve,
    cmd_serving,
    cmd_training,
)

app = typer.Typer(
    name="propensity",
    help="Lawful, explainable product propensity and campaign selection from payment data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
for module in (
    cmd_data,
    cmd_generate,
    cmd_features,
    cmd_training,
    cmd_serving,
    cmd_publish,
    cmd_run,
    cmd_monitoring,
    cmd_serve,
    cmd_objection,
):
    module.register(app)

err_console = Console(stderr=True)


DEBUG_FLAG = "--debug"


@app.callback()
def _root(
    debug: bool = typer.Option(
        False, DEBUG_FLAG, help="print the full traceback of a failure (any position)"
    ),
) -> None:
    """Lawful, explainable product propensity and campaign selection from payment data."""


def failure_line(exc: BaseException) -> tuple[str, int]:
    """The one line (and exit code) a failure is reported with; never SQL or a whole row."""
    if isinstance(exc, PropensityError):
        return str(exc), exc.exit_code
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        if exc.errno == errno.ENOSPC:
            return f"disk full{where} ({exc.strerror})", 1
        return f"{exc.strerror or type(exc).__name__}{where}", 1
    from serving.ledger_lock import first_line

    lines = str(exc).strip().splitlines()
    if type(exc).__module__.startswith("sqlalchemy"):
        detail = first_line(exc)
    else:
        detail = lines[0][:300] if lines else ""
    return f"internal error ({type(exc).__name__}): {detail}; rerun with --debug for details", 1


def main() -> None:
    """Entry point: every failure is one line and exit 2 (user) or 1 (environment, internal)."""
    debug = DEBUG_FLAG in sys.argv[1:]
    if debug:
        sys.argv = [sys.argv[0], *(a for a in sys.argv[1:] if a != DEBUG_FLAG)]
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted", highlight=False)
        sys.exit(130)
    except Exception as exc:  # the one place a failure becomes a line and an exit code
        if debug:
            traceback.print_exc()
        line, code = failure_line(exc)
        err_console.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
        sys.exit(code)


if __name__ == "__main__":
    main()
