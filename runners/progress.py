"""Rich progress bars for long stages."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator


@contextmanager
def search_progress(budget: int) -> Iterator[Callable[[int, int, float], None]]:
    """A bar of expensive evaluations with the current hypervolume."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("search"), BarColumn(), MofNCompleteColumn(), TextColumn("HV {task.fields[hv]}"),
               TimeElapsedColumn())
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task("search", total=budget, hv="-")

        def update(done: int, total: int, hv: float) -> None:
            bar.update(task, completed=done, total=total, hv=f"{hv:.4f}")

        yield update
