"""Sampling weights: score what survived filtering instead of deleting more of it.

    weight = w_quality * w_cluster * w_safety * w_boost * w_mix

  - `w_quality`: a smooth function of the `quality` score (floor + (1 - floor) * q ** power) or buckets,
    divided by its token-weighted mean within each language (or source) when `normalize_by` says so;
  - `w_cluster`: 1 / k ** cluster_power, k the kept copies of the document's `dup_cluster` across the
    whole corpus (dedup in keep mode), so a cluster of k near-copies is sampled about as one document;
    with semantic dedup too (`sem_cluster`), k counts the documents of the union of both kinds of
    cluster (the connected components of "same near-dup cluster or same semantic cluster"), so a
    document in both is counted once, and near-copies of a paraphrase share with it;
  - `w_safety`: 1 - penalty * safety (and `unsafe_factor` where a keep-mode safety stage set `unsafe`);
  - `w_boost`: the product of `factor` for every boost rule whose column reaches its threshold;
  - `w_mix`: one factor per source (or language), solved so that the expected share of sampled tokens
    of each group equals its target, with the weights scaled so that sum(weight * tokens_est) equals
    the corpus's tokens: a weight is the expected number of times a document is seen per corpus-sized
    pass.

Every term is a column, so a user can see why a document got its weight (docs/weights.md). Terms whose
input column is absent (a pipeline without dedup, quality or safety) are 1.

The mix factors and cluster sizes are corpus-wide, so the stage has three phases: a summary pass over
all shards (`summarize_task`), a combine step on the driver (`combine`), then an ordinary map.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator, model_validator

from pipeline.config import StrictModel
from pipeline.exchange import PhaseTask
from pipeline.stage import MapStage, StageError, StageOutput
from pipeline.storage import AtomicParquetWriter, Storage
from pipeline.tokens import TokenEstimate, estimate_tokens

CLUSTERS_SCHEMA = pa.schema(
    [
        ("dup_cluster", pa.string()),
        ("sem_cluster", pa.string()),
        ("group", pa.string()),
        ("quality_group", pa.string()),
        ("copies", pa.int64()),
        ("base_tokens", pa.float64()),
    ]
)
CLUSTER_COLUMNS = (("dup_cluster", "dup_cluster_size", "d:"), ("sem_cluster", "sem_cluster_size", "s:"))
TERMS = ("w_quality", "w_cluster", "w_safety", "w_boost", "w_mix")


class QualityBucket(StrictModel):
    min: float = Field(ge=0, le=1, description="Lowest quality score of the bucket.")
    weight: float = Field(gt=0, description="w_quality of documents in the bucket.")


class QualityTerm(StrictModel):
    column: str = Field("quality", description="Score column in [0, 1]; absent: w_quality = 1.")
    floor: float = Field(
        0.2,
        gt=0,
        le=1,
        description="Smooth form: w_quality at score 0 (a positive floor keeps every document samplable).",
    )
    power: float = Field(1.0, gt=0, description="Smooth form: w_quality = floor + (1 - floor) * score ** power.")
    buckets: list[QualityBucket] | None = Field(
        None,
        description="Instead of the smooth form: each document gets the weight of the highest bucket whose `min` its score reaches.",
    )
    missing_score: float = Field(
        0.5, ge=0, le=1, description="Score assumed where the column is null (no model for the language)."
    )
    normalize_by: Literal["lang", "source"] | None = Field(
        None,
        description=(
            "Divide w_quality by its token-weighted mean within each group of this column, so the quality "
            "term moves weight between documents of one group, not between groups (each language has its "
            "own model, and their scores are not on one scale). None: one scale for the whole corpus."
        ),
    )

    @field_validator("buckets")
    @classmethod
    def _buckets(cls, v):
        if v is not None and (not v or min(b.min for b in v) > 0):
            raise ValueError("buckets must cover scores from 0: give one bucket with min: 0")
        return v


class SafetyTerm(StrictModel):
    column: str = Field("safety", description="Unsafe probability in [0, 1]; absent: no penalty.")
    penalty: float = Field(
        0.5,
        ge=0,
        lt=1,
        description="w_safety = 1 - penalty * safety: a borderline document kept by the filter counts less.",
    )
    unsafe_factor: float = Field(
        0.1, gt=0, le=1, description="Extra factor where `unsafe` is true (a safety stage in keep mode)."
    )


class Boost(StrictModel):
    column: str = Field(description="A score column from a classifier of positive-value content (e.g. quality_edu).")
    threshold: float = Field(description="Documents whose score reaches this get the factor.")
    factor: float = Field(gt=0, description="Multiplier (> 1 boosts).")


class MixConfig(StrictModel):
    by: Literal["source", "lang"] = Field("source", description="Group documents by this column for the targets.")
    targets: dict[str, float] = Field(
        default_factory=dict,
        description="Group -> share of expected sampled tokens; groups not listed share the remainder in proportion to their weighted tokens. Empty: no targets.",
    )

    @field_validator("targets")
    @classmethod
    def _shares(cls, v: dict[str, float]):
        bad = {k: x for k, x in v.items() if not (0 < x <= 1)}
        if bad:
            raise ValueError(f"targets must be in (0, 1]: {bad}")
        if sum(v.values()) > 1 + 1e-9:
            raise ValueError(
                f"targets sum to {sum(v.values()):.4f}; they are shares of tokens and must sum to at most 1"
            )
        return v


class WeightsConfig(StrictModel):
    quality: QualityTerm = Field(default_factory=QualityTerm)
    cluster_power: float = Field(
        1.0,
        ge=0,
        le=1,
        description="w_cluster = 1 / k ** cluster_power for k kept copies: 1 gives each copy its share, 0.5 a softer discount, 0 none.",
    )
    safety: SafetyTerm = Field(default_factory=SafetyTerm)
    boosts: list[Boost] = Field(
        default_factory=list, description="Multipliers for documents a classifier marks as positive-value content."
    )
    mix: MixConfig = Field(default_factory=MixConfig)
    tokens: TokenEstimate = Field(default_factory=TokenEstimate)

    @model_validator(mode="after")
    def _boost_columns(self):
        reserved = set(TERMS) | {"weight", "tokens_est", "dup_copies"}
        clash = [b.column for b in self.boosts if b.column in reserved]
        if clash:
            raise ValueError(f"boost columns {clash} are written by this stage; boost on a score column")
        return self


# --- the terms, per batch -------------------------------------------------------------------------


def _float(table: pa.Table, column: str, fill: float) -> np.ndarray | None:
    if column not in table.column_names:
        return None
    return pc.fill_null(table.column(column).cast(pa.float64()), fill).to_numpy(zero_copy_only=False)


def quality_term(table: pa.Table, cfg: QualityTerm) -> np.ndarray:
    q = _float(table, cfg.column, cfg.missing_score)
    if q is None:
        return np.ones(table.num_rows)
    q = np.clip(q, 0.0, 1.0)
    if cfg.buckets:
        edges = sorted(cfg.buckets, key=lambda b: b.min)
        mins = np.array([b.min for b in edges])
        weights = np.array([b.weight for b in edges])
        return weights[np.searchsorted(mins, q, side="right") - 1]
    return cfg.floor + (1 - cfg.floor) * q**cfg.power


def safety_term(table: pa.Table, cfg: SafetyTerm) -> np.ndarray:
    w = np.ones(table.num_rows)
    s = _float(table, cfg.column, 0.0)
    if s is not None:
        w = w * (1 - cfg.penalty * np.clip(s, 0.0, 1.0))
    if "unsafe" in table.column_names:
        unsafe = pc.fill_null(table.column("unsafe"), False).to_numpy(zero_copy_only=False).astype(bool)
        w = np.where(unsafe, w * cfg.unsafe_factor, w)
    return w


def boost_term(table: pa.Table, boosts: list[Boost]) -> np.ndarray:
    w = np.ones(table.num_rows)
    for b in boosts:
        score = _float(table, b.column, -math.inf)
        if score is None:
            raise ValueError(
                f"boost on column '{b.column}', which this pipeline does not produce (columns: {', '.join(table.column_names)})"
            )
        # compare at the column's precision, so a float32 score of 0.9 reaches a threshold of 0.9
        threshold = float(np.float32(b.threshold)) if table.column(b.column).type == pa.float32() else b.threshold
        w = np.where(score >= threshold, w * b.factor, w)
    return w


def groups_of(table: pa.Table, by: str) -> np.ndarray:
    return np.asarray(pc.fill_null(table.column(by), "unknown").to_numpy(zero_copy_only=False), dtype=object)


def in_cluster(table: pa.Table, cluster: str, size: str) -> np.ndarray:
    """Rows in a cluster of 2+ of that kind (before later stages dropped any copies)."""
    if cluster not in table.column_names or size not in table.column_names:
        return np.zeros(table.num_rows, dtype=bool)
    sizes = pc.fill_null(table.column(size), 1).to_numpy(zero_copy_only=False)
    return (sizes > 1) & np.asarray(table.column(cluster).is_valid(), dtype=bool)


def cluster_labels(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """(near-dup label, semantic label) per row: `d:<id>` / `s:<id>` where the row is in such a cluster
    of 2+, else None. The two namespaces keep a near-dup survivor id apart from a semantic one."""
    out = []
    for cluster, size, prefix in CLUSTER_COLUMNS:
        inside = in_cluster(table, cluster, size)
        labels = np.full(table.num_rows, None, dtype=object)
        if inside.any():
            values = table.column(cluster).cast(pa.string()).to_numpy(zero_copy_only=False)
            labels[inside] = [prefix + v for v in values[inside]]
        out.append(labels)
    return out[0], out[1]


def clustered_rows(table: pa.Table) -> np.ndarray:
    """Rows in a near-duplicate or a semantic cluster of 2+."""
    return in_cluster(table, "dup_cluster", "dup_cluster_size") | in_cluster(table, "sem_cluster", "sem_cluster_size")


def row_label(dup: np.ndarray, sem: np.ndarray) -> np.ndarray:
    """The label a row looks its kept copies up by: its near-dup label, else its semantic one."""
    return np.where(dup != None, dup, sem)  # noqa: E711 (element-wise on an object array)


def merge_clusters(dup: list, sem: list) -> dict[str, str]:
    """label -> root label of the union of clusters linked by a row in both (union-find; root = the
    smallest label, so the result does not depend on the order of the rows)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for d, s in zip(dup, sem):
        for x in (d, s):
            if x is not None:
                find(x)
        if d is not None and s is not None:
            a, b = find(d), find(s)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return {x: find(x) for x in list(parent)}


ONE_SCALE = "*"  # the quality group of every row when `normalize_by` is None


def quality_groups(table: pa.Table, cfg: QualityTerm) -> np.ndarray:
    """The group each row's w_quality is normalised in (one group for all without `normalize_by`)."""
    if cfg.normalize_by is None:
        return np.full(table.num_rows, ONE_SCALE, dtype=object)
    return groups_of(table, cfg.normalize_by)


def add_into(totals: dict, key: str, values: dict) -> None:
    """totals[key] += values, key by key (a summary's sums, merged)."""
    total = totals.setdefault(key, {})
    for k, v in values.items():
        total[k] = total.get(k, 0) + v


def per_row(lookup: dict[str, float], keys: np.ndarray, what: str) -> np.ndarray:
    """lookup[key] for each row; a key the corpus summary did not see means a stale summary."""
    missing = sorted({str(k) for k in keys} - set(lookup))
    if missing:
        raise ValueError(f"{what} {missing} were not in the corpus summary; rerun the weights stage")
    return np.array([lookup[str(k)] for k in keys], dtype=np.float64)


def quality_scales(stats: dict[str, dict[str, float]], cfg: QualityTerm) -> dict[str, float]:
    """Per quality group, 1 / (token-weighted mean of w_quality): after it, each group's quality-weighted
    tokens equal its tokens. 1 for everything without `normalize_by` (or for a group with no tokens)."""
    if cfg.normalize_by is None:
        return dict.fromkeys(stats, 1.0)
    return {g: (s["tokens"] / s["quality_tokens"] if s["quality_tokens"] > 0 else 1.0) for g, s in stats.items()}


def base_terms(table: pa.Table, cfg: WeightsConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tokens_est, w_quality before normalisation, w_safety * w_boost): the terms that need nothing
    corpus-wide."""
    return (
        estimate_tokens(table, cfg.tokens),
        quality_term(table, cfg.quality),
        safety_term(table, cfg.safety) * boost_term(table, cfg.boosts),
    )


# --- summary pass and combine (corpus-wide) -------------------------------------------------------


def summarize_task(storage: Storage, *, path: str, settings: dict, out: str, batch_rows: int) -> dict:
    """Per shard: docs and tokens per group; base-weighted tokens of documents outside clusters per
    (group, quality group); tokens and quality-weighted tokens per quality group; and one row per
    (cluster, group, quality group) for documents inside one (written to `out`)."""
    cfg = WeightsConfig.model_validate(settings)
    groups: dict[str, dict[str, float]] = {}
    singles: dict[str, dict[str, float]] = {}
    quality: dict[str, dict[str, float]] = {}
    partials = []
    for batch in storage.parquet_file(path).iter_batches(batch_size=batch_rows):
        table = pa.Table.from_batches([batch])
        tokens, w_quality, rest = base_terms(table, cfg)
        base = w_quality * rest
        group = groups_of(table, cfg.mix.by)
        qgroup = quality_groups(table, cfg.quality)
        inside = clustered_rows(table)
        for g in np.unique(group):
            rows = group == g
            add_into(groups, str(g), {"docs": int(rows.sum()), "tokens": int(tokens[rows].sum())})
            single = {
                str(q): float((base * tokens)[rows & ~inside & (qgroup == q)].sum()) for q in np.unique(qgroup[rows])
            }
            add_into(singles, str(g), single)
        for q in np.unique(qgroup):
            rows = qgroup == q
            stats = {"tokens": float(tokens[rows].sum()), "quality_tokens": float((w_quality * tokens)[rows].sum())}
            add_into(quality, str(q), stats)
        if inside.any():
            rows = np.flatnonzero(inside)
            dup, sem = cluster_labels(table)
            partials.append(
                pa.table(
                    {
                        "dup_cluster": pa.array(dup[rows], pa.string()),
                        "sem_cluster": pa.array(sem[rows], pa.string()),
                        "group": pa.array(group[rows].astype(str), pa.string()),
                        "quality_group": pa.array(qgroup[rows].astype(str), pa.string()),
                        "copies": pa.array(np.ones(len(rows), np.int64)),
                        "base_tokens": pa.array((base * tokens)[rows]),
                    }
                )
            )
    if partials:
        t = (
            pa.concat_tables(partials)
            .group_by(["dup_cluster", "sem_cluster", "group", "quality_group"], use_threads=False)
            .aggregate([("copies", "sum"), ("base_tokens", "sum")])
        )
        t = (
            t.rename_columns({"copies_sum": "copies", "base_tokens_sum": "base_tokens"})
            .select(CLUSTERS_SCHEMA.names)
            .cast(CLUSTERS_SCHEMA)
        )
        writer = AtomicParquetWriter(storage, storage.path(out), CLUSTERS_SCHEMA)
        writer.write(t)
        writer.commit()
    return {
        "groups": groups,
        "singles_base_tokens": singles,
        "quality_groups": quality,
        "clusters_file": out if partials else None,
    }


class MixError(ValueError):
    """The targets cannot be met with the documents there are."""


def solve_mix(
    weighted_tokens: dict[str, float], total_tokens: float, targets: dict[str, float]
) -> tuple[dict[str, float], dict[str, float], list[str]]:
    """Per-group factors so that group g's share of sum(weight * tokens) is its target (unlisted groups
    share what is left in proportion to their weighted tokens) and the total equals `total_tokens`.
    Returns (factors, effective shares, warnings)."""
    warnings = []
    present = {g: t for g, t in targets.items() if g in weighted_tokens}
    for g in sorted(set(targets) - set(present)):
        warnings.append(f"mix target for '{g}' ({targets[g]:.3f}) has no documents")
    unlisted = sorted(set(weighted_tokens) - set(present))
    listed_sum = sum(present.values())
    if unlisted and listed_sum >= 1 - 1e-9:
        raise MixError(
            f"groups {unlisted} have documents but no mix target, and the targets already sum to 1; "
            "give them a target or lower the others"
        )
    if not unlisted and present and abs(listed_sum - 1) > 1e-9:
        warnings.append(f"targets of the groups present sum to {listed_sum:.4f}; scaled to 1")
        present = {g: t / listed_sum for g, t in present.items()}
    shares = dict(present)
    rest = 1 - sum(present.values())
    unlisted_total = sum(weighted_tokens[g] for g in unlisted)
    for g in unlisted:
        shares[g] = rest * weighted_tokens[g] / unlisted_total
    factors = {g: shares[g] * total_tokens / weighted_tokens[g] for g in weighted_tokens}
    return factors, shares, warnings


def combine(storage: Storage, *, work: str, results: dict[str, dict], settings: dict) -> dict:
    """Merges the shard summaries: kept copies per cluster (written for the map) and the mix factors."""
    cfg = WeightsConfig.model_validate(settings)
    groups: dict[str, dict[str, float]] = {}
    singles: dict[str, dict[str, float]] = {}
    quality: dict[str, dict[str, float]] = {}
    results = [results[k] for k in sorted(results)]  # float sums in a fixed order: same weights, same bytes
    for r in results:
        for totals, key in ((groups, "groups"), (singles, "singles_base_tokens"), (quality, "quality_groups")):
            for g, values in r[key].items():
                add_into(totals, g, values)
    scales = quality_scales(quality, cfg.quality)
    weighted = dict.fromkeys(groups, 0.0)
    for g, parts in singles.items():
        for q in sorted(parts):
            weighted[g] += parts[q] * scales[q]
    for g in groups:
        groups[g]["singles_base_tokens"] = weighted[g]
    files = sorted(r["clusters_file"] for r in results if r["clusters_file"])
    clusters_path = None
    if files:
        parts = pa.concat_tables([storage.read_parquet(storage.path(f)) for f in files])
        dup = parts.column("dup_cluster").to_pylist()
        sem = parts.column("sem_cluster").to_pylist()
        root_of = merge_clusters(dup, sem)
        roots = [root_of[d if d is not None else s] for d, s in zip(dup, sem)]
        parts = parts.append_column("root", pa.array(roots, pa.string()))
        per_root = (
            parts.group_by("root", use_threads=False)
            .aggregate([("copies", "sum")])
            .rename_columns({"copies_sum": "kept"})
        )
        labels = sorted(root_of)
        per_cluster = pa.table({"dup_cluster": labels, "root": [root_of[x] for x in labels]}).join(
            per_root, "root", use_threads=False
        )
        per_cluster = per_cluster.select(["dup_cluster", "kept"])
        joined = parts.join(per_root, "root", use_threads=False).sort_by(
            [
                ("root", "ascending"),
                ("dup_cluster", "ascending"),
                ("sem_cluster", "ascending"),
                ("group", "ascending"),
                ("quality_group", "ascending"),
            ]
        )
        kept = joined.column("kept").to_numpy().astype(np.float64)
        scale = np.array([scales[q] for q in joined.column("quality_group").to_pylist()], dtype=np.float64)
        share = joined.column("base_tokens").to_numpy() * scale / kept**cfg.cluster_power
        group = joined.column("group").to_numpy(zero_copy_only=False)
        for g in np.unique(group):
            weighted[str(g)] += float(share[group == g].sum())
        clusters_path = f"{work}/clusters.parquet"
        writer = AtomicParquetWriter(storage, storage.path(clusters_path), per_cluster.schema)
        writer.write(per_cluster.sort_by("dup_cluster"))
        writer.commit()
    total_tokens = float(sum(acc["tokens"] for acc in groups.values()))
    factors, shares, warnings = ({}, {}, []) if not groups else solve_mix(weighted, total_tokens, cfg.mix.targets)
    return {
        "by": cfg.mix.by,
        "factors": factors,
        "shares": shares,
        "warnings": warnings,
        "groups": groups,
        "weighted_tokens": weighted,
        "total_tokens": total_tokens,
        "quality_by": cfg.quality.normalize_by,
        "quality_groups": quality,
        "quality_scales": scales,
        "clusters": clusters_path,
    }


# --- the map ----------------------------------------------------------------------------------------


class Weights(MapStage):
    """Adds `tokens_est`, the terms `w_*`, `dup_copies` (kept copies of the cluster) and `weight`; drops nothing.

    Phases: a summary per shard (`summarize_task`), a combine on the driver (`combine`, saved as
    `_summary.json` beside the shards for cards and users), then the map with that context."""

    name = "weights"
    version = "weights_v1"
    Config = WeightsConfig
    corpus_wide: ClassVar[bool] = True

    @classmethod
    def reads(cls, config: WeightsConfig) -> dict[str, tuple]:
        return {b.column: ("boosts", i, "column") for i, b in enumerate(config.boosts)}

    @classmethod
    def writes(cls, config: WeightsConfig) -> set[str]:
        return {*TERMS, "weight", "tokens_est", "dup_copies"}

    @classmethod
    def run_phases(cls, ctx) -> None:
        settings = ctx.config.model_dump(mode="json")
        summary = [
            PhaseTask(
                t.key,
                "stages.weights:summarize_task",
                dict(
                    path=t.input_path,
                    settings=settings,
                    out=f"{ctx.work}/summary/{t.key}.parquet",
                    batch_rows=ctx.batch_rows,
                ),
            )
            for t in ctx.inputs
        ]
        results = ctx.run_tasks("summary", summary)
        try:
            context = combine(ctx.storage, work=ctx.work, results=results, settings=settings)
        except ValueError as err:
            raise StageError(str(err)) from None
        ctx.storage.write_json(ctx.storage.path(ctx.folder, "_summary.json"), context)
        ctx.map_shards(cls, {"config": ctx.config, "context": context, "storage_uri": ctx.storage.uri})

    def __init__(self, config: WeightsConfig, context: dict | None = None, storage_uri: str | None = None):
        super().__init__(config)
        if context is None:
            raise ValueError(
                "the weights stage needs its corpus summary; run it through the pipeline (`winnow run` / `winnow stage weights`)"
            )
        self.factors = context["factors"]
        self.quality_scales = context["quality_scales"]
        self.clusters = None
        if context.get("clusters"):
            storage = Storage(storage_uri)
            self.clusters = storage.read_parquet(storage.path(context["clusters"]))

    def kept_copies(self, table: pa.Table) -> np.ndarray:
        copies = np.ones(table.num_rows, dtype=np.int64)
        inside = clustered_rows(table)
        if self.clusters is None or not inside.any():
            return copies
        label = pa.array(row_label(*cluster_labels(table)), pa.string())
        idx = pc.index_in(label, value_set=self.clusters.column("dup_cluster"))
        found = pc.fill_null(idx, -1).to_numpy(zero_copy_only=False)
        kept = self.clusters.column("kept").to_numpy()
        rows = inside & (found >= 0)
        copies[rows] = kept[found[rows]]
        return copies

    def __call__(self, table: pa.Table) -> StageOutput:
        cfg = self.config
        n = table.num_rows
        tokens = estimate_tokens(table, cfg.tokens)
        terms = {
            "w_quality": quality_term(table, cfg.quality)
            * per_row(self.quality_scales, quality_groups(table, cfg.quality), "quality groups"),
            "w_safety": safety_term(table, cfg.safety),
            "w_boost": boost_term(table, cfg.boosts),
        }
        copies = self.kept_copies(table)
        terms["w_cluster"] = 1.0 / copies.astype(np.float64) ** cfg.cluster_power
        terms["w_mix"] = per_row(self.factors, groups_of(table, cfg.mix.by), "groups")
        weight = np.ones(n)
        for name in TERMS:
            weight = weight * terms[name]
        columns = {
            "tokens_est": pa.array(tokens, pa.int64()),
            "dup_copies": pa.array(copies, pa.int64()),
            **{name: pa.array(terms[name], pa.float64()) for name in TERMS},
            "weight": pa.array(weight, pa.float64()),
        }
        for name, values in columns.items():
            if name in table.column_names:
                table = table.drop_columns([name])
            table = table.append_column(name, values)
        keep = np.ones(n, dtype=bool)
        return StageOutput(
            table, keep, pa.nulls(n, pa.string()), {"weight": weight, "tokens_est": tokens.astype(float)}
        )
