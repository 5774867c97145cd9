"""line_dedup: linear in the corpus (100k vs 1M documents), flat worker memory, and against DataTrove's
SentenceDedup on the same documents in one run.

Corpus (`build`): documents of 4-10 lines, each line one or two real sentences (English from the
bundled sample's CCNet and refined text, Chinese from its Wikipedia, as benchmarks/bench_pipeline_scaling.py
draws them), half English, half Chinese; 40% of the documents end with a footer block of three lines
drawn from a pool of 300 blocks made of other real sentences (the boilerplate), so every footer line
is in about n * 0.4 / 300 documents. Written as JSONL.zst files of 100,000 documents.

Part `scaling`: `python -m winnow run` with ingest (20,000 rows per shard) then `line_dedup` at its
defaults, `--num-cpus 2`, for each size; reported per size: the line_dedup stage's wall span, the sum
of its tasks' seconds, docs/s and MB/s per core of the stage, the largest resident set of any Ray
worker and of the driver (VmHWM, sampled every 0.5 s), units removed.

Part `peer` (`--peer-python` with datatrove==0.10.1): the English documents of a generated corpus
(and, when present, the real SpamAssassin e-mails of the real-web corpus) through (a) winnow
`line_dedup` in `keep_first` mode on lines, (b) DataTrove's SentenceDedupSignature ->
SentenceFindDedups -> SentenceDedupFilter configured for the same job (`split_sentences: False`, so
its "sentences" are lines, `n_sentences: 1`, no minimum words or sentences afterwards), both on 2
CPUs with start-up included; reported: wall time of each, the ratio, and agreement: per document,
whether each tool changed it, and the characters each removed.

    .venv/bin/python benchmarks/bench_line_dedup.py --part scaling --sizes 100000 1000000
    .venv/bin/python benchmarks/bench_line_dedup.py --part peer --peer-python /path/to/datatrove-venv/bin/python --peer-docs 50000
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
import yaml
import zstandard

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "tests"))

from bench_dedup_scaling import sentence_pool  # noqa: E402
from bench_pipeline_scaling import Sampler, is_ray_worker, zh_sentence_pool  # noqa: E402
from ray_cluster import cluster_env, stop_marked  # noqa: E402

FILE_DOCS = 100_000
FOOTERS = 300
REALWEB = REPO.parent / "shared" / "data" / "realweb"


def build(n: int, folder: Path, langs=("en", "zh"), seed: int = 0) -> dict:
    pools = {"en": sentence_pool(), "zh": zh_sentence_pool()}
    rnd = random.Random(seed)
    footers = {lang: [[rnd.choice(pools[lang]) for _ in range(3)] for _ in range(FOOTERS)] for lang in langs}
    folder.mkdir(parents=True, exist_ok=True)
    stats = {"docs": 0, "bytes": 0, "files": 0}
    writer = out = None
    for i in range(n):
        if i % FILE_DOCS == 0:
            if writer is not None:
                writer.close()
                out.close()
            out = open(folder / f"part-{i // FILE_DOCS:04d}.jsonl.zst", "wb")
            writer = zstandard.ZstdCompressor(level=3).stream_writer(out)
            stats["files"] += 1
        lang = langs[i % len(langs)]
        sep = " " if lang == "en" else ""
        lines = [
            sep.join(rnd.choice(pools[lang]) for _ in range(rnd.randint(1, 2))) for _ in range(rnd.randint(4, 10))
        ]
        if rnd.random() < 0.4:
            lines += rnd.choice(footers[lang])
        text = "\n".join(lines)
        writer.write(orjson.dumps({"id": f"{lang}-{i:08d}", "text": text, "lang": lang}) + b"\n")
        stats["docs"] += 1
        stats["bytes"] += len(text.encode())
    writer.close()
    out.close()
    return stats


def run_winnow(inputs: list[dict], out: Path, stage: dict, workdir: Path) -> dict:
    config = {"input": inputs, "output": str(out), "ingest": {"rows_per_shard": 20_000}, "stages": [stage]}
    path = workdir / f"line_dedup-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(config))
    marker = uuid.uuid4().hex
    env = cluster_env(marker)
    sampler = Sampler(marker)
    sampler.start()
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "winnow", "run", str(path), "--no-report", "--num-cpus", "2"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    sampler.stop()
    stop_marked(marker, grace_s=10)
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout[-3000:] + proc.stderr[-3000:])
    folder = out / "01_line_dedup"
    sidecars = [json.loads(p.read_text()) for p in (folder / "_stats").glob("*.json")]
    ingest_manifest = (out / "00_ingest" / "_manifest.json").stat().st_mtime
    span = (folder / "_manifest.json").stat().st_mtime - ingest_manifest
    report = json.loads((folder / "_line_dedup.json").read_text())
    workers = [p for p in sampler.procs.values() if is_ray_worker(p)]
    drivers = [p for p in sampler.procs.values() if "winnow" in p["cmd"] and not is_ray_worker(p)]
    return {
        "wall_s": round(wall, 1),
        "stage_span_s": round(span, 1),
        "stage_task_s": round(sum(s["seconds"] for s in sidecars), 1),
        "bytes_in": sum(s["bytes_in"] for s in sidecars),
        "docs": report["docs"],
        "units_removed": report["units_removed"],
        "chars_removed": sum(s["chars"]["removed"] for s in sidecars),
        "worker_peak_mb": round(max((p["hwm_kb"] for p in workers), default=0) / 1024),
        "driver_peak_mb": round(max((p["hwm_kb"] for p in drivers), default=0) / 1024),
    }


def part_scaling(sizes: list[int], workdir: Path) -> list[dict]:
    rows = []
    for n in sizes:
        corpus = workdir / f"corpus-{n}"
        built = build(n, corpus)
        r = run_winnow([{"path": str(corpus), "source": "web"}], workdir / f"out-{n}", {"name": "line_dedup"}, workdir)
        r.update(
            size=n,
            mb=built["bytes"] / 1e6,
            docs_s_core=n / r["stage_span_s"] / 2,
            mb_s_core=built["bytes"] / 1e6 / r["stage_span_s"] / 2,
        )
        rows.append(r)
        print(json.dumps(r), flush=True)
    print(
        "\n| docs | MB | line_dedup span s | task s | docs/s per core | MB/s per core | units removed | worker peak MB | driver peak MB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['size']:,} | {r['mb']:,.0f} | {r['stage_span_s']:,.1f} | {r['stage_task_s']:,.1f} | {r['docs_s_core']:,.0f} | "
            f"{r['mb_s_core']:.2f} | {r['units_removed']:,} | {r['worker_peak_mb']:,} | {r['driver_peak_mb']:,} |"
        )
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        print(
            f"\ntime({b['size']:,}) / time({a['size']:,}) = {b['stage_span_s'] / a['stage_span_s']:.2f} "
            f"for {b['size'] / a['size']:.0f}x the documents"
        )
    return rows


PEER = r"""
import sys, time
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter
from datatrove.pipeline.dedup.sentence_dedup import SentDedupConfig, SentenceDedupSignature, SentenceFindDedups, SentenceDedupFilter

if __name__ == "__main__":
    src, work = sys.argv[1], sys.argv[2]
    cfg = SentDedupConfig(n_sentences=1, split_sentences=False, min_doc_words=0, min_num_sentences=0)
    t0 = time.perf_counter()
    LocalPipelineExecutor(pipeline=[JsonlReader(src), SentenceDedupSignature(output_folder=f"{work}/sigs", config=cfg, finder_workers=2)],
                          tasks=2, workers=2, logging_dir=f"{work}/logs1").run()
    LocalPipelineExecutor(pipeline=[SentenceFindDedups(data_folder=f"{work}/sigs", output_folder=f"{work}/dups", config=cfg)],
                          tasks=2, workers=2, logging_dir=f"{work}/logs2").run()
    LocalPipelineExecutor(pipeline=[JsonlReader(src), SentenceDedupFilter(data_folder=f"{work}/dups", config=cfg),
                                    JsonlWriter(f"{work}/out", compression=None)], tasks=2, workers=2, logging_dir=f"{work}/logs3").run()
    print("PEER_WALL", time.perf_counter() - t0)
"""


def peer_run(peer_python: str, src: Path, work: Path) -> tuple[float, dict[str, str]]:
    script = work / "peer_sentence_dedup.py"
    script.write_text(PEER)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [peer_python, str(script), str(src), str(work / "dt")], capture_output=True, text=True, cwd=work
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    texts = {}
    for f in sorted((work / "dt" / "out").glob("*.jsonl*")):
        opener = gzip.open if f.name.endswith(".gz") else open
        with opener(f, "rt", encoding="utf-8") as fh:
            for line in fh:
                d = json.loads(line)
                texts[d["id"]] = d["text"]
    return wall, texts


def compare(name: str, src_files: list[Path], peer_python: str, workdir: Path) -> dict:
    import pyarrow.dataset as ds

    work = workdir / f"peer-{name}"
    work.mkdir(parents=True, exist_ok=True)
    originals = {}
    for f in src_files:
        for line in (
            gzip.open(f, "rt", encoding="utf-8") if f.suffix == ".gz" else zstandard.open(f, "rt", encoding="utf-8")
        ):
            d = json.loads(line)
            originals[d["id"]] = d["text"]
    src = work / "input"
    src.mkdir(exist_ok=True)
    with open(src / "docs.jsonl", "w", encoding="utf-8") as fh:
        for i, t in originals.items():
            fh.write(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n")
    stage = {"name": "line_dedup", "mode": "keep_first", "unit": "line", "min_unit_chars": 1, "min_doc_chars": 0}
    w = run_winnow([{"path": str(src / "docs.jsonl"), "source": name, "lang": "en"}], work / "winnow-out", stage, work)
    kept = ds.dataset(
        str(work / "winnow-out" / "01_line_dedup"), ignore_prefixes=["_", ".", "rejects", "removed"]
    ).to_table(columns=["id", "text"])
    ours = dict(zip(kept.column("id").to_pylist(), kept.column("text").to_pylist()))
    peer_wall, theirs = peer_run(peer_python, src, work)
    changed_ours = {i for i, t in originals.items() if ours.get(i, "") != t}
    changed_theirs = {i for i, t in originals.items() if theirs.get(i, "") != t}
    both = changed_ours & changed_theirs
    either = changed_ours | changed_theirs
    agree = sum(1 for i in originals if (i in changed_ours) == (i in changed_theirs)) / len(originals)
    removed_ours = sum(len(originals[i]) - len(ours.get(i, "")) for i in originals)
    removed_theirs = sum(len(originals[i]) - len(theirs.get(i, "")) for i in originals)
    row = {
        "set": name,
        "docs": len(originals),
        "winnow_wall_s": w["wall_s"],
        "datatrove_wall_s": round(peer_wall, 1),
        "speedup": round(peer_wall / w["wall_s"], 2),
        "changed_winnow": len(changed_ours),
        "changed_datatrove": len(changed_theirs),
        "changed_both": len(both),
        "jaccard_changed": round(len(both) / max(1, len(either)), 3),
        "agreement": round(agree, 4),
        "chars_removed_winnow": removed_ours,
        "chars_removed_datatrove": removed_theirs,
    }
    print(json.dumps(row), flush=True)
    return row


def part_peer(peer_python: str, docs: int, workdir: Path) -> list[dict]:
    corpus = workdir / "peer-corpus"
    build(docs, corpus, langs=("en",))
    rows = [compare("generated-en", sorted(corpus.glob("*.jsonl.zst")), peer_python, workdir)]
    emails = REALWEB / "en-emails-spamassassin-a.jsonl.gz"
    if emails.exists():
        real = workdir / "emails.jsonl.gz"
        with gzip.open(emails, "rt", encoding="utf-8") as src, gzip.open(real, "wt", encoding="utf-8") as dst:
            for i, line in enumerate(src):
                dst.write(json.dumps({"id": f"mail-{i:05d}", "text": json.loads(line)["text"]}) + "\n")
        rows.append(compare("spamassassin-emails", [real], peer_python, workdir))
    print(
        "\n| set | docs | winnow s | DataTrove s | DataTrove / winnow | docs changed (winnow / DataTrove / both) | "
        "same decision | chars removed (winnow / DataTrove) |"
    )
    print("|---|---:|---:|---:|---:|---|---:|---|")
    for r in rows:
        print(
            f"| {r['set']} | {r['docs']:,} | {r['winnow_wall_s']} | {r['datatrove_wall_s']} | {r['speedup']}x | "
            f"{r['changed_winnow']:,} / {r['changed_datatrove']:,} / {r['changed_both']:,} | {100 * r['agreement']:.1f}% | "
            f"{r['chars_removed_winnow']:,} / {r['chars_removed_datatrove']:,} |"
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["scaling", "peer"], default="scaling")
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--peer-python", default=None, help="interpreter with datatrove==0.10.1 installed")
    ap.add_argument("--peer-docs", type=int, default=50_000)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-line-dedup-"))
    if args.part == "scaling":
        rows = part_scaling(args.sizes, workdir)
    else:
        if not args.peer_python:
            raise SystemExit("--peer-python is needed for the peer part")
        rows = part_peer(args.peer_python, args.peer_docs, workdir)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
