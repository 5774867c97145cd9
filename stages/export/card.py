"""The dataset card beside the final shards: `dataset.json` for programs, `README.md` for people.

It says what went in and what came out (the funnel and its drop reasons), what the mix of tokens is
before and after weighting (per source and per language, against the targets), how the weights are
spread, and the exact configuration that made it, so the shards can be understood without the run.
"""

from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np
import yaml

from pipeline import __version__
from pipeline.card_reading import CARD_JSON, CARD_MD, mix_table, token_counts, weights_summary
from pipeline.layout import read_run_config, read_sidecars
from pipeline.stats import collect_funnel
from pipeline.storage import Storage
from stages.export.shuffle import read_exported

QUANTILES = (0.01, 0.1, 0.5, 0.9, 0.99)


def build_card(storage: Storage, folder: str, upstream: str, name: str | None = None) -> dict:
    # Only the small columns: the text is read only when there is no token estimate to use (no weights stage).
    table = read_exported(storage, folder, ["source", "lang", "weight", "tokens_est"])
    if "tokens_est" not in table.column_names:
        table = read_exported(storage, folder, ["text", "source", "lang", "weight"])
    summary = weights_summary(storage) or {}
    targets = summary.get("shares", {}) if summary.get("by") else {}
    config = read_run_config(storage)
    stages = {s.get("name"): s for s in config.get("stages", [])}
    user_targets = (stages.get("weights") or {}).get("mix", {}).get("targets", {})
    by = summary.get("by", "source")
    mix = {}
    for column in ("source", "lang"):
        mix[column] = mix_table(table, column, user_targets if column == by else {})
    weights = table.column("weight").to_numpy() if "weight" in table.column_names else np.ones(table.num_rows)
    shards = []
    for n in sorted(storage.list_files(storage.path(folder), prefix="shard-", suffix=".parquet")):
        meta = storage.parquet_file(storage.path(folder, n)).metadata
        shards.append({"name": n, "rows": meta.num_rows, "file_bytes": storage.file_size(storage.path(folder, n))})
    funnel = [asdict(row) for row in collect_funnel(storage.root)]
    return {
        "name": name or storage.root.rstrip("/").rpartition("/")[2],
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "winnow_version": __version__,
        "totals": {
            "docs": table.num_rows,
            "tokens_est": int(token_counts(table).sum()),
            "text_bytes": sum(sc["bytes_out"] for sc in read_sidecars(storage, folder)),
            "shards": len(shards),
        },
        "shards": shards,
        "funnel": funnel,
        "mix": {
            "by": by,
            "targets": user_targets,
            "effective_shares": targets,
            "warnings": summary.get("warnings", []),
            **mix,
        },
        "weights": {
            "min": float(weights.min()) if len(weights) else None,
            "max": float(weights.max()) if len(weights) else None,
            "mean": float(weights.mean()) if len(weights) else None,
            "quantiles": {str(q): float(np.quantile(weights, q)) for q in QUANTILES} if len(weights) else {},
        },
        "config": config,
        "columns": storage.parquet_file(storage.path(folder, shards[0]["name"])).schema_arrow.names if shards else [],
        "upstream": upstream,
    }


def write_card(storage: Storage, folder: str, upstream: str, name: str | None = None) -> dict:
    card = build_card(storage, folder, upstream, name)
    storage.write_json(storage.path(folder, CARD_JSON), card)
    with storage.atomic_stream(storage.path(folder, CARD_MD)) as f:
        f.write(card_markdown(card).encode())
    return card


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def card_markdown(card: dict) -> str:
    t = card["totals"]
    lines = [
        f"# {card['name']}",
        "",
        f"Made by winnow {card['winnow_version']} on {card['created_at']}: {t['docs']:,} documents, about {t['tokens_est']:,} tokens "
        f"(estimated), {t['text_bytes'] / 1e6:,.1f} MB of text in {t['shards']} Parquet shard(s), shuffled.",
        "",
        "Each row has a `weight`: the expected number of times to see it per pass of the corpus's size. Sampling documents "
        "with probability proportional to `weight` gives, in expectation, the shares of tokens under 'share after' below; "
        "the `w_*` columns are the terms `weight` is the product of (quality, duplicate cluster share, safety, boosts, mix).",
        "",
        "## Funnel",
        "",
        "| stage | docs in | docs out | kept | main drop reasons |",
        "|---|---:|---:|---:|---|",
    ]
    for row in card["funnel"]:
        kept = f"{100 * row['rows_out'] / row['rows_in']:.1f}%" if row["rows_in"] else "-"
        reasons = ", ".join(f"{r} {n:,}" for r, n in sorted(row["drops"].items(), key=lambda kv: -kv[1])[:4])
        lines.append(f"| {row['folder']} | {row['rows_in']:,} | {row['rows_out']:,} | {kept} | {reasons} |")
    mix = card["mix"]
    for column in ("source", "lang"):
        target_note = " (targets by this column)" if column == mix["by"] and mix["targets"] else ""
        lines += [
            "",
            f"## Mix by {column}{target_note}",
            "",
            "| group | docs | tokens (est.) | share before weighting | share after | target | epochs |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for g, r in mix[column].items():
            epochs = "-" if r["epochs"] is None else f"{r['epochs']:.2f}"
            lines.append(
                f"| {g} | {r['docs']:,} | {r['tokens_est']:,} | {_pct(r['share_before'])} | {_pct(r['share_after'])} | {_pct(r['target'])} | {epochs} |"
            )
    if mix["warnings"]:
        lines += ["", "Mix warnings:", ""] + [f"- {w}" for w in mix["warnings"]]
    w = card["weights"]
    if w["quantiles"]:
        q = ", ".join(f"p{round(float(k) * 100)} {v:.3g}" for k, v in w["quantiles"].items())
        lines += ["", "## Weights", "", f"min {w['min']:.3g}, mean {w['mean']:.3g}, max {w['max']:.3g}; {q}."]
    lines += ["", "## Files", "", "| shard | documents | bytes |", "|---|---:|---:|"]
    lines += [f"| {s['name']} | {s['rows']:,} | {s['file_bytes']:,} |" for s in card["shards"]]
    lines += [
        "",
        "Columns: " + ", ".join(f"`{c}`" for c in card["columns"]) + ".",
        "",
        "```python",
        "import glob, pandas as pd",
        "docs = pd.concat(pd.read_parquet(f) for f in sorted(glob.glob('shard-*.parquet')))",
        "```",
        "",
        "## Configuration",
        "",
        "```yaml",
        yaml.safe_dump(card["config"], sort_keys=False, allow_unicode=True).rstrip(),
        "```",
        "",
    ]
    return "\n".join(lines)
