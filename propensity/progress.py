"""How the long commands talk: a progress bar in a terminal, plain complete lines in a log.

Cron and orchestrators capture stdout, so when it is not a terminal every step is one line
with its name and duration, and tables are printed at full width (nothing cut to `sav…`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


def make_console(stderr: bool = False) -> Console:
    """Rich in a terminal; without one, no colour and lines as wide as their content."""
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr)
    return Console(stderr=stderr, width=1000, no_color=True, highlight=False, soft_wrap=True)


@contextmanager
def step_progress(console: Console, first: str) -> Iterator[Callable[[str, float], None]]:
    """Yields `step(message, done)` (done in 0..1): a bar in a terminal, else one line a step."""
    if console.is_terminal:
        columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn())
        with Progress(*columns, TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task(first, total=1.0)
            yield lambda message, done: bar.update(task, description=message, completed=done)
        return
    current = {"name": first, "start": time.perf_counter()}
    console.print(f"step started: {first}")

    def finish() -> None:
        took = time.perf_counter() - current["start"]  # type: ignore[operator]
        console.print(f"step finished: {current['name']} in {took:.1f} s")

    def step(message: str, done: float) -> None:
        if message == current["name"]:
            return
        finish()
        current.update(name=message, start=time.perf_counter())
        console.print(f"step started: {message} ({done:.0%} done)")

    yield step
    finish()
