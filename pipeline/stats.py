"""The funnel: documents and bytes in and out of every stage, and why documents left."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table

from pipeline.shards import read_manifest, read_sidecars
from pipeline.storage import Storage


@dataclass
class StageFunnel:
    folder: str
    status: str
    shards: int = 0
    rows_in: int = 0
    rows_out: int = 0
    rows_rejected: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    seconds: float = 0.0
    drops: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def stage_folders(storage: Storage) -> list[str]:
    """Stage folders of an output root in pipeline order (their NN_ prefix)."""
    if not storage.exists(storage.root):
        return []
    import pyarrow.fs as pafs

    infos = storage.fs.get_file_info(pafs.FileSelector(storage.root, recursive=False))
    names = [i.base_name for i in infos if i.type == pafs.FileType.Directory]
    return sorted(n for n in names if len(n) > 3 and n[:2].isdigit() and n[2] == "_")


def collect_funnel(output_dir: str) -> list[StageFunnel]:
    storage = Storage(output_dir)
    funnel = []
    for folder in stage_folders(storage):
        manifest = read_manifest(storage, folder) or {}
        row = StageFunnel(folder=folder, status=manifest.get("status", "unknown"))
        for sidecar in read_sidecars(storage, folder):
            row.shards += len(sidecar["outputs"])
            for key in ("rows_in", "rows_out", "rows_rejected", "bytes_in", "bytes_out"):
                setattr(row, key, getattr(row, key) + sidecar[key])
            row.seconds += sidecar["seconds"]
            for reason, n in sidecar["drops"].items():
                row.drops[reason] = row.drops.get(reason, 0) + n
            row.errors.extend(sidecar.get("errors", []))
        funnel.append(row)
    return funnel


def funnel_table(funnel: list[StageFunnel], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for name, justify in [("stage", "left"), ("status", "left"), ("shards", "right"), ("docs in", "right"), ("docs out", "right"),
                          ("rejected", "right"), ("MB in", "right"), ("MB out", "right"), ("kept %", "right"), ("drops by reason", "left")]:
        table.add_column(name, justify=justify)
    for row in funnel:
        drops = ", ".join(f"{r}: {n:,}" for r, n in sorted(row.drops.items(), key=lambda kv: -kv[1]))
        kept = f"{100 * row.rows_out / row.rows_in:.1f}" if row.rows_in else "-"
        status = row.status if row.status == "complete" else f"[yellow]{row.status}[/yellow]"
        table.add_row(row.folder, status, f"{row.shards:,}", f"{row.rows_in:,}", f"{row.rows_out:,}", f"{row.rows_rejected:,}",
                      f"{row.bytes_in / 1e6:.2f}", f"{row.bytes_out / 1e6:.2f}", kept, drops)
    return table


def print_funnel(output_dir: str, console: Console | None = None) -> list[StageFunnel]:
    console = console or Console()
    funnel = collect_funnel(output_dir)
    if not funnel:
        console.print(f"[red]{output_dir}: no stage folders found; is this a winnow output folder?[/red]")
        return funnel
    console.print(funnel_table(funnel, f"winnow funnel: {output_dir}"))
    errors = [e for row in funnel for e in row.errors]
    if errors:
        console.print(f"[yellow]{len(errors)} input file problem(s):[/yellow]")
        for e in errors:
            console.print(f"  - {e}")
    return funnel
