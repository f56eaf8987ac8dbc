"""The `propensity` command: one typer app; each command only parses, loads config and calls
one library function. User mistakes exit 2 with a message and no traceback; internal failures
exit 1.
"""

from __future__ import annotations

import logging
import os
import sys

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
    cmd_run,
    cmd_monitoring,
    cmd_serve,
):
    module.register(app)

err_console = Console(stderr=True)


@app.callback()
def _root() -> None:
    """Lawful, explainable product propensity and campaign selection from payment data."""


def main() -> None:
    """Entry point: user errors exit 2 with a message and no traceback; usage errors exit 2
    (typer's own handling); anything else is an internal failure (exit 1, with traceback).
    """
    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        app()
    except PropensityError as exc:
        err_console.print(
            f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False, soft_wrap=True
        )
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
