"""What `winnow ablate` trains and scores on: the evaluation domains, both sides decontaminated against
them by the real `decontaminate` stage, and one tokenizer learnt from an equal mix of the two sides.

The evaluation text must be text neither side trained on. Dropping eval documents by id only works
when they were drawn from the data itself; files from elsewhere can sit in a crawl under any id, or
pasted into a longer page. So both sides go through the pipeline's own `decontaminate` stage (ingest,
then the stage, on Ray) with every eval file as a benchmark, and what it drops is left out of training.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash
import yaml

from pipeline.config import load_config
from pipeline.layout import read_rejects
from pipeline.ray_setup import ensure_ray
from pipeline.runner import Runner
from pipeline.storage import Storage
from stages.decontaminate.index import read_texts as read_benchmark_texts
from stages.pretrain.config import DataConfig
from stages.pretrain.data import choose_heldout, is_shuffled, list_shards, read_meta, reshuffle
from stages.pretrain.tokenizer import train_tokenizer
from stages.registry import STAGES

NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
SIDE_COLUMNS = ("id", "text", "source", "lang", "weight")


def parse_evals(specs: list[str]) -> dict[str, str]:
    """`NAME=PATH` pairs: a name (letters, digits, `_.-`; it names the domain and the decontamination reason)
    and an existing JSONL, JSONL.gz or Parquet file with a `text` field."""
    evals: dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not NAME.match(name) or not path:
            raise ValueError(f"--eval {spec!r}: expected NAME=PATH, NAME of letters, digits and _.-")
        if name in evals:
            raise ValueError(f"--eval {name}: given twice")
        if not Path(path).is_file():
            raise FileNotFoundError(f"--eval {name}: {path}: no such file")
        evals[name] = str(Path(path).resolve())
    return evals


def parse_also(specs: list[str], taken: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """`NAME=DIR` pairs for more sides compared with --clean: a name (letters, digits, `_.-`; it names the
    comparison's folder and its side in the table) and an existing folder of Parquet shards."""
    also: dict[str, list[str]] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not NAME.match(name) or not path:
            raise ValueError(f"--also {spec!r}: expected NAME=DIR, NAME of letters, digits and _.-")
        if name in also or name in taken:
            raise ValueError(f"--also {name}: the name is taken (given twice, or a label of --raw/--clean)")
        if not Path(path).is_dir():
            raise FileNotFoundError(f"--also {name}: {path}: no such folder")
        also[name] = [str(Path(path).resolve())]
    return also


def sample_domain(name: str, path: str, out: Path, limit: int, seed: int) -> tuple[Path, int]:
    """Up to `limit` non-empty documents of one eval file (smallest seeded hash of the text, so the choice
    is stable and independent of file order), written to `out/<name>.parquet`; also the file's count."""
    texts = [t for t in read_benchmark_texts(name, path, "text") if t and t.strip()]
    if not texts:
        raise ValueError(f"--eval {name}: {path} has no non-empty `text`")
    keys = [xxhash.xxh3_64_intdigest(t.encode(), seed=seed) for t in texts]
    chosen = [texts[i] for i in sorted(np.argsort(np.array(keys, np.uint64), kind="stable")[:limit])]
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{name}.parquet"
    pq.write_table(pa.table({"text": pa.array(chosen, pa.large_string())}), target)
    return target, len(texts)


def heldout_domains(clean: list[str], prep: DataConfig, out: Path) -> dict[str, str]:
    """Without --eval: held-out documents of the clean side, one domain per source/lang group, as files.
    Decontamination then removes them (and their raw copies) from both sides, like any eval file."""
    files = list_shards(clean)
    chosen = choose_heldout(
        read_meta(files),
        fraction=prep.heldout_fraction,
        min_docs=prep.heldout_min_docs,
        max_docs=prep.heldout_max_docs,
        seed=prep.seed,
    )
    wanted = {i: group for group, ids in chosen.items() for i in ids}
    texts: dict[str, list[str]] = {group: [] for group in chosen}
    for f in files:
        t = pq.read_table(f, columns=["id", "text"])
        for doc_id, text in zip(t.column("id").to_pylist(), t.column("text").to_pylist()):
            if doc_id in wanted:
                texts[wanted[doc_id]].append(text)
    out.mkdir(parents=True, exist_ok=True)
    domains = {}
    for group, rows in texts.items():
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", group)
        path = out / f"{name}.jsonl"
        path.write_text("".join(json.dumps({"text": r}, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        domains[name] = str(path)
    return domains


def slim_copy(files: list[str], out: Path) -> None:
    """id, text and lang of one side's shards, as the decontamination pipeline's input."""
    out.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(files):
        names = pq.ParquetFile(f).schema_arrow.names
        t = pq.read_table(f, columns=[c for c in ("id", "text", "lang") if c in names])
        pq.write_table(t, out / f"part-{i:05d}.parquet")


def decontaminate(
    sides: dict[str, list[str]], evals: dict[str, str], settings: dict, work: Path, workers: int | None = None
) -> tuple[dict[str, set[str]], dict[str, dict[str, int]]]:
    """Runs ingest + `decontaminate` on both sides with every eval file as a benchmark. Returns, per side,
    the ids the stage dropped, and per side and eval domain how many documents it dropped."""
    shutil.rmtree(work, ignore_errors=True)  # its inputs are this call's; a last run's must not be resumed
    inputs = []
    for side, files in sides.items():
        slim_copy(files, work / "input" / side)
        inputs.append(
            {
                "path": str(work / "input" / side),
                "source": side,
                "format": "parquet",
                "id_field": "id",
                "url_field": None,
                "lang_field": "lang",
            }
        )
    stage = {
        **settings,
        "name": "decontaminate",
        "benchmarks": [{"name": n, "path": p, "text_field": "text"} for n, p in evals.items()],
    }
    config = {"input": inputs, "output": str(work / "out"), "stages": [stage]}
    path = work / "decontaminate.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    cfg = load_config(path, STAGES)
    ensure_ray(cfg.pipeline.ray)
    Runner(cfg, workers=workers, progress=False).run_all()
    rejects = read_rejects(Storage(str(work / "out")), ("stage", "reason", "source", "id")).to_pylist()
    dropped: dict[str, set[str]] = {side: set() for side in sides}
    counts: dict[str, dict[str, int]] = {side: dict.fromkeys(evals, 0) for side in sides}
    for r in rejects:
        if r["stage"] == "decontaminate":
            dropped[r["source"]].add(r["id"])
            counts[r["source"]][r["reason"].removeprefix("contaminated:")] += 1
    return dropped, counts


def write_side(files: list[str], drop: set[str], out: Path, seed: int) -> list[str]:
    """The side's shards without the dropped ids (columns the trainer reads), shuffled across files when
    they are not export shards (the sampler streams files in order)."""
    shutil.rmtree(out, ignore_errors=True)  # a rerun with other inputs must not find the last run's shards
    kept_dir = out / "kept"
    kept_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for i, f in enumerate(files):
        names = pq.ParquetFile(f).schema_arrow.names
        t = pq.read_table(f, columns=[c for c in SIDE_COLUMNS if c in names])
        if "source" not in t.column_names:
            t = t.append_column("source", pa.array(["unknown"] * t.num_rows, pa.string()))
        if drop:
            t = t.filter(pa.array([doc_id not in drop for doc_id in t.column("id").to_pylist()], pa.bool_()))
        prefix = "shard" if is_shuffled(files) else "part"
        target = kept_dir / f"{prefix}-{i:05d}.parquet"
        pq.write_table(t, target)
        written.append(str(target))
    if is_shuffled(written):
        return written
    return reshuffle(written, str(out / "shuffled"), seed=seed)


def side_stats(files: list[str], tokenizer) -> dict:
    """Documents, characters and tokens a side trains on; with weights, also the weighted token count
    (what the sampler's Poisson(weight) passes see per pass)."""
    docs = chars = tokens = 0
    weighted = 0.0
    has_weight = False
    for f in files:
        t = pq.read_table(f)
        texts = t.column("text").to_pylist()
        counts = [len(e.ids) for e in tokenizer.encode_batch(texts)]
        docs, chars, tokens = docs + len(texts), chars + sum(map(len, texts)), tokens + sum(counts)
        if "weight" in t.column_names:
            has_weight = True
            w = [float(x or 0.0) for x in t.column("weight").to_pylist()]
            weighted += sum(c * x for c, x in zip(counts, w))
        else:
            weighted += sum(counts)
    return {"docs": docs, "chars": chars, "tokens": tokens, "weighted_tokens": round(weighted), "weighted": has_weight}


def mixed_tokenizer(sides: dict[str, list[str]], prep: DataConfig, path: Path):
    """One BPE for every side, learnt from an equal share of each: up to tokenizer_docs / (number of sides)
    seeded documents per side, every sample cut to the smallest one's characters, so no side's text gets
    the cheaper tokens."""
    samples = [_sample(files, math.ceil(prep.tokenizer_docs / len(sides)), prep.seed) for files in sides.values()]
    budget = min(sum(map(len, s)) for s in samples)
    mixed = [t for s in samples for t in _cut(s, budget)]
    return train_tokenizer(mixed, prep.vocab_size, str(path))


def _sample(files: list[str], limit: int, seed: int) -> list[str]:
    texts: list[str] = []
    for i in np.random.Generator(np.random.PCG64(seed)).permutation(len(files)):
        texts.extend(pq.read_table(files[int(i)], columns=["text"]).column("text").to_pylist())
        if len(texts) >= limit:
            break
    order = np.random.Generator(np.random.PCG64(seed + 1)).permutation(len(texts))
    return [texts[int(i)] for i in order[:limit]]


def _cut(texts: list[str], budget: int) -> list[str]:
    kept, used = [], 0
    for t in texts:
        if used >= budget:
            break
        kept.append(t[: budget - used])
        used += len(kept[-1])
    return kept
