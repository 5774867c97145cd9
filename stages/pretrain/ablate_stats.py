"""The ablation's verdict per evaluation domain: mean and spread over seeds, and whether the difference
between the sides is larger than that spread.

The rule (docs/ablation.md): with s_raw and s_clean the sample standard deviations (ddof 1) of the
per-seed losses, a difference of the means counts when |mean_clean - mean_raw| > sqrt(s_raw^2 +
s_clean^2), the spread of the difference of two single runs. It is stricter than a t-test on the means
(whose standard error divides by the number of seeds); Welch's t is reported beside it. One seed has
no spread, so nothing counts.
"""

from __future__ import annotations

import math

import numpy as np


def _mean_std(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def welch_t(raw: list[float], clean: list[float]) -> float | None:
    """(mean_clean - mean_raw) / sqrt(s_raw^2 / n_raw + s_clean^2 / n_clean); None without a spread."""
    if len(raw) < 2 or len(clean) < 2:
        return None
    (mr, sr), (mc, sc) = _mean_std(raw), _mean_std(clean)
    se = math.sqrt(sr**2 / len(raw) + sc**2 / len(clean))
    return (mc - mr) / se if se > 0 else None


def compare(name: str, raw: list[dict], clean: list[dict], docs: int, tokens: int, nbytes: int) -> dict:
    """One table row from each side's per-seed results ({loss, bpb}) on one domain."""
    raw_losses, clean_losses = [r["loss"] for r in raw], [r["loss"] for r in clean]
    (raw_loss, raw_std), (clean_loss, clean_std) = _mean_std(raw_losses), _mean_std(clean_losses)
    (raw_bpb, raw_bpb_std), (clean_bpb, clean_bpb_std) = (
        _mean_std([r["bpb"] for r in raw]),
        _mean_std([r["bpb"] for r in clean]),
    )
    delta = clean_loss - raw_loss
    spread = math.sqrt(raw_std**2 + clean_std**2)
    beyond = len(raw) > 1 and len(clean) > 1 and abs(delta) > spread
    return {
        "name": name,
        "docs": docs,
        "tokens": tokens,
        "bytes": nbytes,
        "raw_loss": raw_loss,
        "clean_loss": clean_loss,
        "raw_std": raw_std,
        "clean_std": clean_std,
        "raw_bpb": raw_bpb,
        "clean_bpb": clean_bpb,
        "raw_bpb_std": raw_bpb_std,
        "clean_bpb_std": clean_bpb_std,
        "delta_loss": delta,
        "spread": spread,
        "beyond_spread": beyond,
        "welch_t": welch_t(raw_losses, clean_losses),
        "verdict": ("clean better" if delta < 0 else "raw better") if beyond else "within spread",
        "raw_losses": raw_losses,
        "clean_losses": clean_losses,
    }


def domain_rows(raw_runs: list[dict], clean_runs: list[dict], domains: list[str]) -> tuple[list[dict], dict]:
    """Rows per domain and the `mean` row: per seed, the unweighted mean of the domains' losses (each
    domain counts once, whatever its size), then mean and spread of that over seeds."""
    rows = []
    for name in domains:
        first = clean_runs[0][name]
        rows.append(
            compare(
                name,
                [r[name] for r in raw_runs],
                [r[name] for r in clean_runs],
                first["docs"],
                first["tokens"],
                first["bytes"],
            )
        )

    def per_seed(runs: list[dict]) -> list[dict]:
        return [{k: float(np.mean([r[d][k] for d in domains])) for k in ("loss", "bpb")} for r in runs]

    mean = compare(
        "mean",
        per_seed(raw_runs),
        per_seed(clean_runs),
        sum(r["docs"] for r in rows),
        sum(r["tokens"] for r in rows),
        sum(r["bytes"] for r in rows),
    )
    return rows, mean


def markdown(summary: dict) -> str:
    """The table of ablation.md: one row per domain and the mean, then what each side trained on."""
    labels = summary["labels"]
    raw, clean = labels["raw"], labels["clean"]
    seeds = summary["seeds"]
    lines = [
        f"Held-out loss (nats per token, mean ± std over {seeds} seed(s)) after {summary['train_tokens']:,} training "
        f"tokens per run ({summary['params']:,} parameters); lower is better. raw = {raw}, clean = {clean}; "
        "delta = clean - raw; it counts when |delta| > sqrt(std_raw² + std_clean²).",
        "",
        f"| domain | docs | tokens | {raw} loss | {clean} loss | delta | beyond spread | Welch t "
        f"| {raw} bits/byte | {clean} bits/byte |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in [*summary["domains"], summary["mean"]]:
        t = "" if r["welch_t"] is None else f"{r['welch_t']:+.1f}"
        lines.append(
            f"| {r['name']} | {r['docs']:,} | {r['tokens']:,} | {r['raw_loss']:.3f} ± {r['raw_std']:.3f} "
            f"| {r['clean_loss']:.3f} ± {r['clean_std']:.3f} | {r['delta_loss']:+.3f} | "
            f"{'yes: ' + r['verdict'] if r['beyond_spread'] else 'no'} | {t} "
            f"| {r['raw_bpb']:.3f} | {r['clean_bpb']:.3f} |"
        )
    lines += [
        "",
        "| side | label | docs in | dropped by decontamination | docs trained on | tokens | weighted tokens |",
        "|---|---|---:|---|---:|---:|---:|",
    ]
    for side in ("raw", "clean"):
        s = summary["sides"][side]
        dropped = ", ".join(f"{k} {v}" for k, v in s["decontaminated"].items()) or "-"
        weighted = f"{s['weighted_tokens']:,}" if s["weighted"] else "(no weights)"
        lines.append(
            f"| {side} | {labels[side]} | {s['docs_in']:,} | {dropped} | {s['docs']:,} | {s['tokens']:,} "
            f"| {weighted} |"
        )
    return "\n".join(lines) + "\n"
