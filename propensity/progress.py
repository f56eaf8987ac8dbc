"""The one progress bar the long commands show: a spinner, the current step, the fraction done."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


@contextmanager
def step_progress(console: Console, first: str) -> Iterator[Callable[[str, float], None]]:
    """A progress bar starting at `first`; yields `step(message, done)` (done in 0..1)."""
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(first, total=1.0)
        yield lambda message, done: bar.update(task, description=message, completed=done)
