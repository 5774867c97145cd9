"""Progress bars on the driver: one per stage (shards done, documents kept) and one per phase of tasks.

Phase bars are transient and shown only on a terminal: in logs they would only leave blank lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


@contextmanager
def phase_bar(console: Console, enabled: bool, label: str, total: int, done: int) -> Iterator[Callable[[], None]]:
    """A transient bar for a phase of tasks; yields the function that ticks it."""
    if not enabled or not console.is_terminal:
        yield lambda: None
        return
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("tasks"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, transient=True) as bar:
        job = bar.add_task(label, total=total, completed=done)
        yield lambda: bar.update(job, advance=1)


def shard_bar(
    console: Console, enabled: bool, folder: str, already: int, total: int, results: Iterator[dict]
) -> Iterator[dict]:
    """Passes shard results through while a bar counts shards and the documents they kept."""
    if not enabled:
        yield from results
        return
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("shards"),
        TextColumn("{task.fields[docs]} docs kept"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, transient=False) as bar:
        job = bar.add_task(folder, total=total, completed=already, docs=0)
        kept = 0
        for result in results:
            if result["ok"]:
                kept += result["sidecar"]["rows_out"]
            bar.update(job, advance=1, docs=f"{kept:,}")
            yield result
