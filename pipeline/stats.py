"""The funnel: documents and bytes in and out of every stage, and why documents left."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from rich.console import Console
from rich.table import Table

from pipeline.card_reading import CARD_JSON
from pipeline.layout import final_folder, read_docs, read_manifest, read_rejects, read_sidecars, stage_folders
from pipeline.run_tables import count_by
from pipeline.storage import Storage
from pipeline.tokens import token_counts


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
    skipped: dict[str, int] = field(default_factory=dict)  # input records that are not documents (WARC requests, ...)
    errors: list[str] = field(default_factory=list)
    chars: dict[str, int] = field(default_factory=dict)  # rewriting stages: in, out, rejected, removed, inserted
    removed: dict[str, dict[str, int]] = field(default_factory=dict)  # reason -> spans, chars


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
            for kind, n in sidecar.get("skipped", {}).items():
                row.skipped[kind] = row.skipped.get(kind, 0) + n
            row.errors.extend(sidecar.get("errors", []))
            for kind, n in (sidecar.get("chars") or {}).items():
                row.chars[kind] = row.chars.get(kind, 0) + n
            for reason, counts in (sidecar.get("removed_by_reason") or {}).items():
                acc = row.removed.setdefault(reason, {"spans": 0, "chars": 0})
                for k in acc:
                    acc[k] += counts.get(k, 0)
        funnel.append(row)
    return funnel


def funnel_table(funnel: list[StageFunnel], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for name, justify in [
        ("stage", "left"),
        ("status", "left"),
        ("shards", "right"),
        ("docs in", "right"),
        ("docs out", "right"),
        ("rejected", "right"),
        ("MB in", "right"),
        ("MB out", "right"),
        ("kept %", "right"),
        ("drops by reason", "left"),
    ]:
        table.add_column(name, justify=justify)
    for row in funnel:
        drops = ", ".join(f"{r}: {n:,}" for r, n in sorted(row.drops.items(), key=lambda kv: -kv[1]))
        kept = f"{100 * row.rows_out / row.rows_in:.1f}" if row.rows_in else "-"
        status = row.status if row.status == "complete" else f"[yellow]{row.status}[/yellow]"
        table.add_row(
            row.folder,
            status,
            f"{row.shards:,}",
            f"{row.rows_in:,}",
            f"{row.rows_out:,}",
            f"{row.rows_rejected:,}",
            f"{row.bytes_in / 1e6:.2f}",
            f"{row.bytes_out / 1e6:.2f}",
            kept,
            drops,
        )
    return table


def print_funnel(output_dir: str, console: Console | None = None) -> list[StageFunnel]:
    console = console or Console()
    funnel = collect_funnel(output_dir)
    if not funnel:
        console.print(f"[red]{output_dir}: no stage folders found; is this a winnow output folder?[/red]")
        return funnel
    console.print(funnel_table(funnel, f"winnow funnel: {output_dir}"))
    for row in funnel:
        if row.skipped:
            kinds = ", ".join(f"{k}: {n:,}" for k, n in sorted(row.skipped.items(), key=lambda kv: -kv[1]))
            console.print(f"{row.folder}: input records that are not documents, skipped: {kinds}")
    errors = [e for row in funnel for e in row.errors]
    if errors:
        console.print(f"[yellow]{len(errors)} input file problem(s):[/yellow]")
        for e in errors:
            console.print(f"  - {e}")
    return funnel


# --- per-stage detail: drops per language and signal histograms ---------------------------------

SPARK = " ▁▂▃▄▅▆▇█"


def stage_detail(
    output_dir: str, folder: str
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, list[int]]], list[float]]:
    """Drops by language and reason, and signal histograms by language, summed over a stage's shards."""
    storage = Storage(output_dir)
    drops: dict[str, dict[str, int]] = {}
    hists: dict[str, dict[str, list[int]]] = {}
    edges: list[float] = []
    for sidecar in read_sidecars(storage, folder):
        for lang, reasons in sidecar.get("drops_by_lang", {}).items():
            for reason, n in reasons.items():
                drops.setdefault(lang, {}).setdefault(reason, 0)
                drops[lang][reason] += n
        for signal, hist in sidecar.get("signals", {}).items():
            edges = hist["edges"]
            for lang, counts in hist["counts"].items():
                acc = hists.setdefault(signal, {}).setdefault(lang, [0] * len(counts))
                hists[signal][lang] = [a + c for a, c in zip(acc, counts)]
    return drops, hists, edges


def quantile_from_hist(counts: list[int], edges: list[float], q: float) -> float:
    """Upper edge of the bin where the q-quantile falls: coarse, but needs no second pass over data."""
    total = sum(counts)
    if not total:
        return float("nan")
    running = 0
    for i, c in enumerate(counts):
        running += c
        if running >= q * total:
            return edges[i + 1]
    return edges[-1]


def sparkline(counts: list[int]) -> str:
    top = max(counts) or 1
    return "".join(SPARK[min(len(SPARK) - 1, round(8 * c / top))] if c else " " for c in counts)


def print_stage_detail(output_dir: str, folder: str, console: Console) -> None:
    drops, hists, edges = stage_detail(output_dir, folder)
    table = Table(title=f"{folder}: drops by language and reason", title_justify="left")
    for col in ("lang", "reason", "docs"):
        table.add_column(col, justify="right" if col == "docs" else "left")
    for lang in sorted(drops):
        for reason, n in sorted(drops[lang].items(), key=lambda kv: -kv[1]):
            table.add_row(lang, reason, f"{n:,}")
    console.print(table)
    if not hists:
        return
    table = Table(
        title=f"{folder}: signals by language (log-spaced bins 0, 1e-3 .. 1e7; quantiles are bin upper edges)",
        title_justify="left",
    )
    for col in ("signal", "lang", "docs", "p10 ≤", "p50 ≤", "p90 ≤", "histogram"):
        table.add_column(col, justify="left" if col in ("signal", "lang", "histogram") else "right")
    for signal in sorted(hists):
        for lang, counts in sorted(hists[signal].items()):
            q = [quantile_from_hist(counts, edges, p) for p in (0.1, 0.5, 0.9)]
            table.add_row(signal, lang, f"{sum(counts):,}", *[f"{v:.3g}" for v in q], sparkline(counts))
    console.print(table)


# --- drops by reason, and the corpus per source and language ----------------------------------------


def drops_table(funnel: list[StageFunnel]) -> Table:
    table = Table(title="drops by reason", title_justify="left")
    for col, justify in [("stage", "left"), ("reason", "left"), ("docs", "right"), ("% of stage input", "right")]:
        table.add_column(col, justify=justify)
    for row in funnel:
        for reason, n in sorted(row.drops.items(), key=lambda kv: -kv[1]):
            table.add_row(row.folder, reason, f"{n:,}", f"{100 * n / row.rows_in:.2f}" if row.rows_in else "-")
    return table


def removed_table(funnel: list[StageFunnel]) -> Table | None:
    """Spans the rewriting stages took out of documents they kept, by reason (None when none did)."""
    rows = [
        (row, reason, c) for row in funnel for reason, c in sorted(row.removed.items(), key=lambda kv: -kv[1]["chars"])
    ]
    if not rows:
        return None
    table = Table(title="removed from documents (rewriting stages), by reason", title_justify="left")
    for col, justify in [
        ("stage", "left"),
        ("reason", "left"),
        ("spans", "right"),
        ("characters", "right"),
        ("% of stage's characters in", "right"),
    ]:
        table.add_column(col, justify=justify)
    for row, reason, c in rows:
        share = f"{100 * c['chars'] / row.chars['in']:.2f}" if row.chars.get("in") else "-"
        table.add_row(row.folder, reason, f"{c['spans']:,}", f"{c['chars']:,}", share)
    return table


def group_rows(output_dir: str, by: str) -> list[dict]:
    """Per source or language: documents in (as ingested, or as first seen for languages), out (final),
    tokens and expected share of sampled tokens out, the target, and the main reasons documents left."""
    storage = Storage(output_dir)
    final = final_folder(storage)
    docs = read_docs(storage, final, [by, "tokens_est", "weight", "text"])
    tokens = token_counts(docs) if docs.num_rows else np.zeros(0)
    weight = docs.column("weight").to_numpy() if "weight" in docs.column_names else np.ones(docs.num_rows)
    out = {r[by]: r for r in count_by(docs, [by], tokens)}
    weighted = {r[by]: r["value"] for r in count_by(docs, [by], weight * tokens)}
    rejects = read_rejects(storage, ("stage", "reason", by))
    reasons: dict[str, list] = {}
    for r in count_by(rejects, [by, "reason"]):
        reasons.setdefault(r[by], []).append((r["reason"], r["docs"]))
    summary = storage.read_json_or_none(storage.path(final, CARD_JSON)) or {}
    targets = summary.get("mix", {}).get("targets", {}) if summary.get("mix", {}).get("by") == by else {}
    total_tokens, total_weighted = sum(tokens) or 1.0, sum(weighted.values()) or 1.0
    rows = []
    for group in sorted(set(out) | set(reasons), key=lambda g: -(out.get(g, {}).get("value", 0))):
        kept = out.get(group, {}).get("docs", 0)
        dropped = sum(n for _, n in reasons.get(group, []))
        rows.append(
            {
                by: group,
                "docs_in": kept + dropped,
                "docs_out": kept,
                "tokens_out": out.get(group, {}).get("value", 0.0),
                "share_before": out.get(group, {}).get("value", 0.0) / total_tokens,
                "share_after": weighted.get(group, 0.0) / total_weighted,
                "target": targets.get(group),
                "reasons": reasons.get(group, []),
            }
        )
    return rows


def groups_table(rows: list[dict], by: str) -> Table:
    table = Table(title=f"per {by}: in, out, and share of tokens before/after weighting", title_justify="left")
    for col in (
        by,
        "docs in",
        "docs out",
        "kept %",
        "tokens out (est.)",
        "share before",
        "share after",
        "target",
        "main drop reasons",
    ):
        table.add_column(col, justify="left" if col in (by, "main drop reasons") else "right")
    for r in rows:
        kept = f"{100 * r['docs_out'] / r['docs_in']:.1f}" if r["docs_in"] else "-"
        reasons = ", ".join(f"{reason}: {n:,}" for reason, n in r["reasons"][:3])
        target = "-" if r["target"] is None else f"{100 * r['target']:.1f}%"
        table.add_row(
            r[by],
            f"{r['docs_in']:,}",
            f"{r['docs_out']:,}",
            kept,
            f"{r['tokens_out']:,.0f}",
            f"{100 * r['share_before']:.1f}%",
            f"{100 * r['share_after']:.1f}%",
            target,
            reasons,
        )
    return table


def print_groups(output_dir: str, console: Console) -> None:
    for by in ("source", "lang"):
        console.print(groups_table(group_rows(output_dir, by), by))
