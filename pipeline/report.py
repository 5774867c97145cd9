"""`report.html`: one static page that shows what a run did, for people who cannot open a notebook.

A single file with its plots inside (PNG as base64 data URIs) so it can be mailed, attached to a
ticket or copied off a cluster and still open anywhere: no network, no JavaScript library. Every
number comes from the shared readers (pipeline/inspect.py, pipeline/stats.py, the dataset card), so
the report agrees with `winnow stats` and with the notebooks. A section whose data the run does not
have (no weights stage, no classifiers, no URLs) is replaced by a line saying why, so the report
also works on a half-built pipeline.

Plots use matplotlib's object API (`matplotlib.figure.Figure`, rendered by Agg) rather than pyplot,
so writing a report never touches the global backend or figure state of a notebook that calls it.
"""

from __future__ import annotations

import base64
import html
import io
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

from pipeline.card_reading import CARD_JSON, mix_table
from pipeline.layout import final_folder, read_docs, read_rejects, read_removed
from pipeline.run_tables import count_by, domains
from pipeline.stats import StageFunnel, collect_funnel
from pipeline.storage import Storage

REPORT_NAME = "report.html"
TERMS = ("w_quality", "w_cluster", "w_safety", "w_boost", "w_mix")
MAX_LANGS = 6  # score panels per figure; more languages are listed as left out
MAX_SOURCES = 10  # weight histogram groups; the rest are summed as "other"
TOP_DOMAINS = 15
EXTREME_DOCS = 10
SNIPPET_CHARS = 180


@dataclass
class Run:
    """What every section reads, loaded once: the final folder's columns (no text) and the card."""

    storage: Storage
    output_dir: str
    folder: str | None
    docs: pa.Table
    card: dict | None
    config: dict
    funnel: list[StageFunnel]


class Skip(Exception):
    """A section's data is missing; the message says what is missing and why."""


# --- loading --------------------------------------------------------------------------------------


def _schema(storage: Storage, folder: str) -> pa.Schema | None:
    names = [n for n in storage.list_files(storage.path(folder), suffix=".parquet") if not n.startswith(".")]
    return storage.parquet_file(storage.path(folder, names[0])).schema_arrow if names else None


def score_columns(schema: pa.Schema) -> list[str]:
    """`quality`, `safety` and the per-model `quality_*` / `safety_*` columns that hold numbers."""
    wanted = [
        f.name
        for f in schema
        if (f.name in ("quality", "safety") or f.name.startswith(("quality_", "safety_")))
        and (pa.types.is_floating(f.type) or pa.types.is_integer(f.type))
    ]
    return sorted(wanted, key=lambda c: (not c.startswith("quality"), "_" in c, c))


def load_run(output_dir: str) -> Run:
    """Reads the final folder's small columns (never the text) and the dataset card when there is one."""
    storage = Storage(output_dir)
    folder = final_folder(storage)
    docs, card = pa.table({}), None
    if folder:
        schema = _schema(storage, folder)
        if schema is not None:
            wanted = [
                "id",
                "source",
                "lang",
                "weight",
                "tokens_est",
                *TERMS,
                "dup_cluster_size",
                "dup_copies",
                *score_columns(schema),
            ]
            docs = read_docs(storage, folder, wanted)
        card = storage.read_json_or_none(storage.path(folder, CARD_JSON))
    config = storage.read_json_or_none(storage.path("_config.json")) or {}
    return Run(storage, output_dir, folder, docs, card, config, collect_funnel(output_dir))


def _floats(table: pa.Table, column: str) -> np.ndarray:
    return pc.fill_null(table.column(column).cast(pa.float64()), np.nan).to_numpy(zero_copy_only=False)


def _strings(table: pa.Table, column: str) -> np.ndarray:
    if column not in table.column_names:
        return np.array(["unknown"] * table.num_rows, dtype=object)
    return (
        pc.fill_null(table.column(column).cast(pa.string()), "unknown").to_numpy(zero_copy_only=False).astype(object)
    )


# --- HTML and images ------------------------------------------------------------------------------


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def png(fig: Figure, alt: str) -> str:
    """The figure as an <img> with a data URI, so the page needs no file beside it."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # missing glyphs for an odd source or domain name are not worth a warning
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def table_html(header: list[str], rows: list[list], numeric: set[int] = frozenset(), cls: str = "") -> str:
    """A plain HTML table; every cell is escaped here, so callers pass raw values."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{esc(c)}</td>' if i in numeric else f"<td>{esc(c)}</td>" for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def palette(n: int) -> list:
    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def log_ticks(axis, lo: float, hi: float, fmt: Callable[[float], str]) -> None:
    """Labels at 1, 2 and 5 times powers of ten: matplotlib's default labels overlap on spans under a decade."""
    ticks = [
        m * 10.0**e for e in range(int(np.floor(np.log10(lo))) - 1, int(np.ceil(np.log10(hi))) + 1) for m in (1, 2, 5)
    ]
    ticks = [t for t in ticks if lo / 1.25 <= t <= hi * 1.25] or [lo, hi]  # the axis pads its limits a little
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda v, _: fmt(v)))
    axis.set_minor_formatter(NullFormatter())


def pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


# --- sections -------------------------------------------------------------------------------------


def header(run: Run) -> str:
    """Where the run is and how big its result is: the line a reader checks first."""
    t = (run.card or {}).get("totals") or {}
    docs = t.get("docs", run.docs.num_rows)
    tokens = t.get("tokens_est")
    if tokens is None and "tokens_est" in run.docs.column_names:
        tokens = int(pc.sum(run.docs.column("tokens_est")).as_py() or 0)
    done = sum(1 for f in run.funnel if f.status == "complete")
    where = run.storage.uri if "://" in run.storage.uri else run.storage.root
    facts = [
        ("run folder", where),
        ("final folder", run.folder or "none"),
        ("documents", f"{docs:,}"),
        ("tokens (estimated)", f"{tokens:,}" if tokens is not None else "-"),
        ("text", f"{t['text_bytes'] / 1e6:,.1f} MB" if "text_bytes" in t else "-"),
        (
            "shards",
            t.get("shards")
            or (len(run.storage.list_files(run.storage.path(run.folder), suffix=".parquet")) if run.folder else "-"),
        ),
        ("stages", f"{len(run.funnel)} ({done} complete)"),
        ("written", time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())),
    ]
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts)
    return (
        f'<h1>winnow report: {esc(run.storage.root.rstrip("/").rpartition("/")[2])}</h1><dl class="facts">{items}</dl>'
    )


def funnel_section(run: Run) -> str:
    """Documents in and out of every stage, and why they left: where the corpus went."""
    if not run.funnel:
        raise Skip("no stage folders (NN_name) in this output folder, so there is no funnel.")
    names = [f.folder for f in run.funnel]
    x = np.arange(len(names))
    fig = Figure(figsize=(11, 3.8))
    ax = fig.subplots()
    ins = [f.rows_in for f in run.funnel]
    outs = [f.rows_out for f in run.funnel]
    ax.bar(x - 0.2, ins, 0.4, label="docs in", color="#9ecae1")
    ax.bar(x + 0.2, outs, 0.4, label="docs out", color="#3182bd")
    for xi, n in zip(x, outs):
        ax.annotate(
            f"{n:,}",
            (xi + 0.2, max(n, 1)),
            ha="center",
            va="bottom",
            fontsize=7,
            xytext=(0, 2),
            textcoords="offset points",
        )
    lo, hi = max(1, min([n for n in ins + outs if n > 0], default=1)), max(ins + outs + [1])
    if hi > 20 * lo:  # log only when the funnel spans orders of magnitude; else the small stages would look empty
        ax.set_yscale("log")
        log_ticks(ax.yaxis, lo, hi, lambda v: f"{v:,.0f}")
    else:
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.set_ylim(0, hi * 1.2)  # room for the legend
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylabel("documents" + (" (log)" if ax.get_yscale() == "log" else ""))
    ax.set_title("Funnel: documents in and out per stage")
    ax.legend(frameon=False)
    rows = []
    for f in run.funnel:
        drops = ", ".join(f"{r}: {n:,}" for r, n in sorted(f.drops.items(), key=lambda kv: -kv[1])) or "-"
        kept = f"{100 * f.rows_out / f.rows_in:.1f}%" if f.rows_in else "-"
        rows.append(
            [
                f.folder,
                f.status,
                f"{f.rows_in:,}",
                f"{f.rows_out:,}",
                f"{f.rows_rejected:,}",
                kept,
                f"{f.bytes_in / 1e6:.2f}",
                f"{f.bytes_out / 1e6:.2f}",
                drops,
            ]
        )
    table = table_html(
        ["stage", "status", "docs in", "docs out", "rejected", "kept", "MB in", "MB out", "drops by reason"],
        rows,
        numeric={2, 3, 4, 5, 6, 7},
    )
    return png(fig, "funnel") + table


def scores_section(run: Run) -> str:
    """Score distributions per language: a threshold or a weight curve only makes sense against these."""
    cols = score_columns(run.docs.schema) if run.docs.num_columns else []
    if not cols:
        raise Skip(
            f"no quality or safety score columns in {run.folder or 'the final shards'} (the run has no quality or safety stage)."
        )
    langs = _strings(run.docs, "lang")
    order = [r["lang"] for r in count_by(run.docs, ["lang"])]
    shown, left = order[:MAX_LANGS], order[MAX_LANGS:]
    parts = []
    for col in cols:
        values = _floats(run.docs, col)
        finite = values[np.isfinite(values)]
        if not len(finite):
            parts.append(f'<p class="skip">{esc(col)}: every value is null.</p>')
            continue
        lo, hi = float(finite.min()), float(finite.max())
        bins = np.linspace(0, 1, 41) if lo >= 0 and hi <= 1 else np.linspace(lo, hi if hi > lo else lo + 1, 41)
        fig = Figure(figsize=(min(3.2 * len(shown), 11), 2.6))
        axes = np.atleast_1d(fig.subplots(1, len(shown), sharey=False))
        for ax, lang, color in zip(axes, shown, palette(len(shown))):
            v = values[(langs == lang) & np.isfinite(values)]
            nulls = int(((langs == lang) & ~np.isfinite(values)).sum())
            ax.hist(v, bins=bins, color=color)
            ax.set_title(f"{col}, {lang}: n={len(v):,}" + (f", null {nulls:,}" if nulls else ""), fontsize=9)
            ax.tick_params(labelsize=7)
        parts.append(png(fig, f"{col} by language"))
    note = f"<p>Languages left out (fewest documents): {esc(', '.join(left))}.</p>" if left else ""
    return (
        f"<p>Final shards, columns {esc(', '.join(cols))}; one panel per language (most documents first).</p>"
        + "".join(parts)
        + note
    )


def weights_section(run: Run) -> str:
    """How uneven the sampling is, overall and per source: log scale, since weights are products of factors."""
    if "weight" not in run.docs.column_names or not run.docs.num_rows:
        raise Skip(f"no weight column in {run.folder or 'the final shards'} (the run has no weights stage).")
    w = _floats(run.docs, "weight")
    positive = np.isfinite(w) & (w > 0)
    if not positive.any():
        raise Skip("every weight is zero or null.")
    sources = _strings(run.docs, "source")
    order = [r["source"] for r in count_by(run.docs, ["source"])]
    groups = order[:MAX_SOURCES] + (["other"] if len(order) > MAX_SOURCES else [])
    sources = np.where(np.isin(sources, order[:MAX_SOURCES]), sources, "other")
    lo, hi = w[positive].min(), w[positive].max()
    bins = np.logspace(np.log10(lo), np.log10(hi if hi > lo else lo * 1.01), 41)
    fig = Figure(figsize=(11, 3.8))
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    colors = palette(len(groups))
    data = [w[positive & (sources == g)] for g in groups]
    ax1.hist(data, bins=bins, stacked=True, color=colors, label=groups)
    ax1.set_xscale("log")
    log_ticks(ax1.xaxis, lo, hi, lambda v: f"{v:g}")
    ax1.set_xlabel("weight (log)")
    ax1.set_ylabel("documents")
    ax1.set_title("Weight distribution, stacked by source")
    ax1.legend(fontsize=7, frameon=False)
    box = ax2.boxplot(
        [d if len(d) else [np.nan] for d in data], orientation="horizontal", patch_artist=True, showfliers=True
    )
    for patch, color in zip(box["boxes"], colors):
        patch.set_facecolor(color)
    ax2.set_yticks(range(1, len(groups) + 1), groups, fontsize=8)
    ax2.set_xscale("log")
    log_ticks(ax2.xaxis, lo, hi, lambda v: f"{v:g}")
    ax2.set_xlabel("weight (log)")
    ax2.set_title("Per source")
    q = [0.01, 0.1, 0.5, 0.9, 0.99]
    values = np.quantile(w[positive], q)
    zero = int((~positive).sum())
    stats = table_html(
        ["min", *[f"p{round(p * 100)}" for p in q], "max", "mean", "zero or null"],
        [[f"{lo:.3g}", *[f"{v:.3g}" for v in values], f"{hi:.3g}", f"{np.nanmean(w):.3g}", f"{zero:,}"]],
        numeric=set(range(8)),
    )
    return png(fig, "weights") + stats


def _mix_rows(run: Run) -> tuple[dict, dict, list[str], bool]:
    """Per-group shares from dataset.json when the export wrote one, else computed the same way here."""
    if run.card and run.card.get("mix"):
        mix = run.card["mix"]
        return (
            {c: mix.get(c, {}) for c in ("source", "lang")},
            mix.get("targets") or {},
            mix.get("warnings") or [],
            True,
        )
    if not run.docs.num_rows:
        raise Skip("the final folder has no documents.")
    table = run.docs
    if "tokens_est" not in table.column_names:  # the token estimate reads the text: only then
        table = read_docs(run.storage, run.folder, ["text", "source", "lang", "weight"])
    weights_cfg = next((s for s in run.config.get("stages", []) if s.get("name") == "weights"), {})
    by = (weights_cfg.get("mix") or {}).get("by", "source")
    targets = (weights_cfg.get("mix") or {}).get("targets") or {}
    mix = {c: mix_table(table, c, targets if c == by else {}) for c in ("source", "lang") if c in table.column_names}
    return mix, targets, [], "weight" in table.column_names


def mix_section(run: Run) -> str:
    """Token shares per source and language before and after weighting, against the targets."""
    if not run.folder:
        raise Skip("no stage folders.")
    mix, targets, warns, weighted = _mix_rows(run)
    mix = {c: rows for c, rows in mix.items() if rows}
    if not mix:
        raise Skip("the final shards have neither a source nor a lang column.")
    fig = Figure(figsize=(11, 3.8))
    axes = np.atleast_1d(
        fig.subplots(1, len(mix), gridspec_kw={"width_ratios": [max(len(r), 2) for r in mix.values()]})
    )
    tables = []
    for ax, (col, rows) in zip(axes, mix.items()):
        groups = list(rows)
        x = np.arange(len(groups))
        before = [rows[g]["share_before"] for g in groups]
        width = 0.4 if weighted else 0.6
        ax.bar(x - (0.2 if weighted else 0), before, width, label="before weighting", color="#bdbdbd")
        if weighted:
            ax.bar(x + 0.2, [rows[g]["share_after"] for g in groups], width, label="after weighting", color="#31a354")
        tx = [xi for xi, g in zip(x, groups) if rows[g].get("target") is not None]
        if tx:
            ax.scatter(
                np.asarray(tx) + (0.2 if weighted else 0),
                [rows[groups[i]]["target"] for i in tx],
                marker="_",
                s=600,
                linewidths=2.5,
                color="black",
                zorder=3,
                label="target",
            )
        ax.set_xticks(x, groups, rotation=20, ha="right", fontsize=8)
        ax.set_ylabel("share of tokens")
        top = max(
            [
                *before,
                *[rows[g]["share_after"] for g in groups if weighted],
                *[rows[g].get("target") or 0 for g in groups],
            ],
            default=1,
        )
        ax.set_ylim(0, top * 1.3)  # room for the legend above the bars
        ax.set_title(f"by {col}")
        ax.legend(fontsize=7, frameon=False)
        tables.append(
            f"<h3>by {esc(col)}</h3>"
            + table_html(
                ["group", "docs", "tokens (est.)", "before", "after", "target", "epochs"],
                [
                    [
                        g,
                        f"{r['docs']:,}",
                        f"{r['tokens_est']:,}",
                        pct(r["share_before"]),
                        pct(r["share_after"]) if weighted else "-",
                        pct(r.get("target")),
                        "-" if r.get("epochs") is None or not weighted else f"{r['epochs']:.2f}",
                    ]
                    for g, r in rows.items()
                ],
                numeric={1, 2, 3, 4, 5, 6},
            )
        )
    where = f"{CARD_JSON} of {run.folder}" if run.card else f"the shards of {run.folder}"
    notes = [f"<p>Shares of estimated tokens, from {esc(where)}."]
    if not weighted:
        notes.append(" No weight column, so only the shares before weighting are shown.")
    notes.append("</p>")
    if warns:
        notes.append("<ul>" + "".join(f"<li>{esc(w)}</li>" for w in warns) + "</ul>")
    return "".join(notes) + png(fig, "mix") + "".join(tables)


def domains_section(run: Run) -> str:
    """The sites that lost the most documents, and to which rules: a blocklist or rule gone wrong shows here."""
    rejects = read_rejects(run.storage)
    if not rejects.num_rows:
        raise Skip("no stage rejected anything (no rejects/ files).")
    dom = domains(rejects)
    has = pc.is_valid(dom)
    t = pa.table({"domain": dom, "reason": rejects.column("reason").combine_chunks()}).filter(has)
    if not t.num_rows:
        raise Skip(f"none of the {rejects.num_rows:,} rejected documents has a URL.")
    top = [r["domain"] for r in count_by(t, ["domain"])[:TOP_DOMAINS]]
    t = t.filter(pc.is_in(t.column("domain"), pa.array(top)))
    pairs = count_by(t, ["domain", "reason"])
    reason_totals: dict[str, int] = {}
    for r in pairs:
        reason_totals[r["reason"]] = reason_totals.get(r["reason"], 0) + r["docs"]
    reasons = sorted(reason_totals, key=lambda k: -reason_totals[k])
    shown = reasons[:7]
    fig = Figure(figsize=(11, 0.35 * len(top) + 1.5))
    ax = fig.subplots()
    y = np.arange(len(top))[::-1]
    left = np.zeros(len(top))
    for reason, color in zip(shown + (["other"] if len(reasons) > 7 else []), palette(len(shown) + 1)):
        counts = np.array(
            [
                sum(
                    r["docs"]
                    for r in pairs
                    if r["domain"] == d and (r["reason"] == reason or (reason == "other" and r["reason"] not in shown))
                )
                for d in top
            ],
            dtype=float,
        )
        ax.barh(y, counts, left=left, color=color, label=reason)
        left += counts
    ax.set_yticks(y, top, fontsize=8)
    ax.set_xlabel("rejected documents")
    ax.set_title(f"Top {len(top)} domains by rejected documents, all stages")
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    rows = []
    for d in top:
        mine = [r for r in pairs if r["domain"] == d]
        rows.append([d, f"{sum(r['docs'] for r in mine):,}", ", ".join(f"{r['reason']}: {r['docs']:,}" for r in mine)])
    note = f"<p>{int(pc.sum(pc.invert(has)).as_py() or 0):,} of {rejects.num_rows:,} rejected documents have no URL and are not counted.</p>"
    return note + png(fig, "dropped domains") + table_html(["domain", "rejected", "reasons"], rows, numeric={1})


def extremes_section(run: Run) -> str:
    """The documents the weights favour most and least, with the terms that explain it."""
    if "weight" not in run.docs.column_names or not run.docs.num_rows:
        raise Skip(f"no weight column in {run.folder or 'the final shards'} (the run has no weights stage).")
    if "id" not in run.docs.column_names:
        raise Skip("the final shards have no id column to find the text by.")
    w = _floats(run.docs, "weight")
    order = np.argsort(np.where(np.isfinite(w), w, -np.inf), kind="stable")
    finite = order[np.isfinite(w[order])]
    picks = {"highest": finite[::-1][:EXTREME_DOCS], "lowest": finite[:EXTREME_DOCS]}
    texts = read_docs(run.storage, run.folder, ["id", "text"])
    cols = [c for c in ("source", "lang", *TERMS, "quality", "safety") if c in run.docs.column_names]
    parts = []
    for label, idx in picks.items():
        sub = run.docs.take(pa.array(idx))
        where = pc.index_in(sub.column("id"), value_set=texts.column("id").combine_chunks())
        snippets = [
            (" ".join(str(texts.column("text")[i].as_py() or "").split()))[:SNIPPET_CHARS] if i is not None else ""
            for i in where.to_pylist()
        ]
        rows = []
        for k in range(sub.num_rows):
            vals = [sub.column(c)[k].as_py() for c in cols]
            rows.append(
                [
                    f"{w[idx[k]]:.3g}",
                    *[f"{v:.3g}" if isinstance(v, float) else ("-" if v is None else v) for v in vals],
                    snippets[k],
                ]
            )
        parts.append(
            f"<h3>{label} weights</h3>"
            + table_html(
                ["weight", *cols, "text"],
                rows,
                numeric={0} | {i + 1 for i, c in enumerate(cols) if c not in ("source", "lang")},
                cls="docs",
            )
        )
    return "".join(parts)


TOP_SPANS = 20


def removed_section(run: Run) -> str:
    """What the rewriting stages took out of documents they kept: spans and characters per stage and
    reason (boilerplate lines, personal data by type, benchmark overlaps), and the most removed spans."""
    rows = [
        [
            row.folder,
            reason,
            f"{c['spans']:,}",
            f"{c['chars']:,}",
            f"{100 * c['chars'] / row.chars['in']:.2f}%" if row.chars.get("in") else "-",
        ]
        for row in run.funnel
        for reason, c in sorted(row.removed.items(), key=lambda kv: -kv[1]["chars"])
    ]
    if not rows:
        raise Skip("no rewriting stage (line_clean, line_dedup, pii, decontaminate in span mode) removed anything.")
    parts = [
        table_html(["stage", "reason", "spans", "characters", "of the stage's characters"], rows, numeric={2, 3, 4})
    ]
    spans = read_removed(run.storage, ("reason", "span"))
    if spans.num_rows:
        norm = pc.utf8_trim_whitespace(
            pc.utf8_slice_codeunits(spans.column("span").cast(pa.large_string()), 0, SNIPPET_CHARS)
        )
        t = pa.table({"folder": spans.column("folder"), "reason": spans.column("reason"), "span": norm})
        top = count_by(t, ["folder", "reason", "span"])[:TOP_SPANS]
        parts.append(f"<h3>The {len(top)} most removed spans</h3>")
        parts.append(
            table_html(
                ["stage", "reason", "times", "span"],
                [[r["folder"], r["reason"], f"{r['docs']:,}", r["span"]] for r in top],
                numeric={2},
                cls="docs",
            )
        )
    return "".join(parts)


SECTIONS: list[tuple[str, Callable[[Run], str]]] = [
    ("Funnel", funnel_section),
    ("Scores by language", scores_section),
    ("Weights", weights_section),
    ("Mix before and after weighting", mix_section),
    ("Removed from documents", removed_section),
    ("Top dropped domains", domains_section),
    ("Highest- and lowest-weight documents", extremes_section),
]

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1180px;margin:1.5em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.8em}h3{font-size:1em;margin-bottom:.3em}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:.15em 1em}dt{font-weight:600}dd{margin:0;word-break:break-all}
table{border-collapse:collapse;font-size:.82em;margin:.6em 0}th,td{border:1px solid #ddd;padding:.2em .45em;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}table.docs td:last-child{max-width:32em}
img{max-width:100%;display:block;margin:.6em 0}p.skip{color:#8a5a00;background:#fff8e6;padding:.4em .6em;border-left:3px solid #e0a000}
"""

# Lets a headless browser test check that every plot decoded: counts decoded images on load.
SCRIPT = """
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  document.body.dataset.imagesLoaded = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.dataset.imagesTotal = imgs.length;
});
"""


def render(run: Run) -> str:
    """The whole page; a failing or data-less section becomes a line, never a missing report."""
    body = [header(run)]
    for title, section in SECTIONS:
        try:
            content = section(run)
        except Skip as why:
            content = f'<p class="skip">Skipped: {esc(why)}</p>'
        body.append(f"<section><h2>{esc(title)}</h2>{content}</section>")
    title = f"winnow report: {run.storage.root.rstrip('/').rpartition('/')[2]}"
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>\n'
        f"<body>{''.join(body)}<script>{SCRIPT}</script></body></html>\n"
    )


def write_report(output_dir: str, path: str | None = None) -> str:
    """Writes the report of the run in `output_dir` (default `<output_dir>/report.html`) and returns its path."""
    page = render(load_run(output_dir))
    if path is None:
        path = f"{output_dir.rstrip('/')}/{REPORT_NAME}"
    folder, _, name = path.rpartition("/")
    storage = Storage(folder or ".")
    with storage.atomic_stream(storage.path(name)) as stream:
        stream.write(page.encode("utf-8"))
    return path
