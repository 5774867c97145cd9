"""The default pipeline's keep decision against human keep/drop labels on real documents.

`benchmarks/data/realweb_labels.jsonl` labels a stratified sample of the developers' half of the
real-web corpus (criteria: docs/labelled_sample.md); it holds keys, not text. This re-finds each
labelled document in the shared data (pages: ingest's extracted main text, keyed by URL; JSONL sets:
the line number), runs `configs/default.yaml` on those documents only (mix targets dropped, the
encoder safety members left out unless `--encoders`), and prints precision and recall of "kept"
against "label keep", per language and per source, with every disagreement.

Corpus-wide stages (line_dedup, exact and MinHash dedup) see only the sample here, so they remove
less than on the whole corpus: the figures are those of the per-document stages.

    python benchmarks/bench_labelled_sample.py --data DATA/realweb --out /tmp/labelled
    python benchmarks/bench_labelled_sample.py --data DATA/realweb --draw /tmp/sample.jsonl   # the sample
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
LABELS = REPO / "benchmarks" / "data" / "realweb_labels.jsonl"
# file -> (documents drawn, language given to the pipeline: None lets langid decide, as for a crawl)
SOURCES = {
    "en-pages-2025-a.warc.gz": (90, None),
    "zh-pages-cwced.warc.gz": (30, None),
    "zh-weibo-threads-a.jsonl.gz": (40, "zh"),
    "zh-emails-trec06c-a.jsonl.gz": (45, "zh"),
    "en-emails-spamassassin-a.jsonl.gz": (70, "en"),
    "zh-zhihu-and-cc.jsonl.gz": (45, "zh"),
}
SAMPLE_LANG = {"en-pages-2025-a.warc.gz": "en", "zh-pages-cwced.warc.gz": "zh"}


def rank(file: str, key: str) -> str:
    """Order of the draw: a hash of the document's key, so the sample does not follow file order."""
    return hashlib.sha1(f"{file}|{key}".encode()).hexdigest()


def warc_pages(path: Path, extractor: str, wanted: set[str] | None = None) -> dict[str, str]:
    """URL -> main text as ingest extracts it (the pipeline's view); pages ingest rejects are absent."""
    from stages.ingest.readers.warc import record_to_doc
    from stages.ingest.spec import InputSpec
    from stages.ingest.web.records import WarcStream, iter_records

    spec = InputSpec(path=str(path), source="sample")
    pages: dict[str, str] = {}
    stream = WarcStream(str(path))
    try:
        for record in iter_records(stream):
            url = (record.headers.get("warc-target-uri") or "").strip("<>")
            if record.type != "response" or (wanted is not None and url not in wanted):
                continue
            doc = record_to_doc(record, str(path), path.name, spec, extractor).doc
            if doc is not None:
                pages.setdefault(doc["url"], doc["text"])
    finally:
        stream.close()
    return pages


def jsonl_docs(path: Path, wanted: set[str] | None = None) -> dict[str, dict]:
    """Line number (as a string key) -> record."""
    docs = {}
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f):
            if wanted is None or str(n) in wanted:
                docs[str(n)] = json.loads(line)
    return docs


def texts(data: Path, file: str, extractor: str, wanted: set[str] | None = None) -> dict[str, str]:
    if file.endswith(".warc.gz"):
        return warc_pages(data / file, extractor, wanted)
    return {k: rec.get("text") or "" for k, rec in jsonl_docs(data / file, wanted).items()}


def default_config(path: Path = REPO / "configs" / "default.yaml") -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def draw(data: Path, out: Path) -> None:
    """Writes the sample (file, key, lang, text) for reading; text stays outside the repository."""
    extractor = default_config()["ingest"]["extractor"]
    with out.open("w", encoding="utf-8") as f:
        for file, (n, _) in SOURCES.items():
            docs = texts(data, file, extractor)
            for key in sorted(docs, key=lambda k: rank(file, k))[:n]:
                lang = SAMPLE_LANG.get(file) or SOURCES[file][1]
                f.write(json.dumps({"file": file, "key": key, "lang": lang, "text": docs[key]}, ensure_ascii=False))
                f.write("\n")


def write_inputs(data: Path, labels: list[dict], folder: Path, extractor: str) -> list[dict]:
    """One JSONL input per source file holding the labelled documents, id = file#key."""
    folder.mkdir(parents=True, exist_ok=True)
    by_file = defaultdict(set)
    for row in labels:
        by_file[row["file"]].add(row["key"])
    inputs = []
    for file, keys in by_file.items():
        found = texts(data, file, extractor, keys)
        missing = keys - set(found)
        if missing:
            raise SystemExit(f"{file}: {len(missing)} labelled documents not found, e.g. {sorted(missing)[:3]}")
        path = folder / f"{file.split('.')[0]}.jsonl"
        with path.open("w", encoding="utf-8") as f:
            for key in sorted(keys):
                url = key if file.endswith(".warc.gz") else None
                rec = {"id": f"{file}#{key}", "text": found[key], "url": url}
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        lang = SOURCES[file][1]
        inputs.append({"path": str(path), "source": file.split(".")[0], **({"lang": lang} if lang else {})})
    return inputs


def run_pipeline(inputs: list[dict], out: Path, encoders: bool, config: Path) -> None:
    cfg = default_config(config)
    cfg["input"] = inputs
    cfg["output"] = str(out / "run")
    for stage in cfg["stages"]:
        for extra in stage.get("extra_lists", []):
            extra["path"] = str(REPO / extra["path"])
        if stage["name"] == "safety" and not encoders:
            stage["members"] = [m for m in stage["members"] if m["name"] not in ("minilm", "e5")]
        if stage["name"] == "weights":
            stage.get("mix", {})["targets"] = {}
    path = out / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-m", "winnow", "run", str(path), "--no-report"], cwd=REPO, env=env, check=True)


def decisions(run: Path, ignore: tuple[str, ...] = ()) -> dict[str, str | None]:
    """id -> None when the document reaches the final shards, else the stage:reason that dropped it;
    rejects of the `ignore` stages count as kept (what the other stages decide)."""
    from pipeline.layout import final_folder, read_docs, read_rejects
    from pipeline.storage import Storage

    storage = Storage(str(run))
    out: dict[str, str | None] = {}
    rejects = read_rejects(storage, ("id", "stage", "reason")).to_pylist()
    for r in rejects:
        out[r["id"]] = None if r["stage"] in ignore else f"{r['stage']}:{r['reason']}"
    for doc_id in read_docs(storage, final_folder(storage), ["id"]).column("id").to_pylist():
        out[doc_id] = None
    return out


def pr(rows: list[tuple[bool, bool]]) -> str:
    """Precision and recall of `kept` (pipeline) against `keep` (label); also drop-side figures."""
    tp = sum(1 for label, kept in rows if label and kept)
    fp = sum(1 for label, kept in rows if not label and kept)
    fn = sum(1 for label, kept in rows if label and not kept)
    tn = len(rows) - tp - fp - fn
    p = tp / (tp + fp) if tp + fp else float("nan")
    r = tp / (tp + fn) if tp + fn else float("nan")
    acc = (tp + tn) / len(rows) if rows else float("nan")
    return f"{len(rows):4d} {tp + fn:5d} {tp + fp:5d} {p:6.3f} {r:6.3f} {acc:6.3f}   tp {tp} fp {fp} fn {fn} tn {tn}"


def report(labels: list[dict], decided: dict[str, str | None]) -> None:
    groups: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    confusions = []
    for row in labels:
        doc_id = f"{row['file']}#{row['key']}"
        if doc_id not in decided:
            raise SystemExit(f"{doc_id}: neither kept nor rejected by the run")
        kept, label = decided[doc_id] is None, row["label"] == "keep"
        for g in ("all", f"lang={row['lang']}", f"source={row['file'].split('.')[0]}"):
            groups[g].append((label, kept))
        if kept != label:
            confusions.append((row, decided[doc_id]))
    print(f"{'group':36s} docs label+ kept+  prec  recall  acc")
    for g in sorted(groups, key=lambda g: (g != "all", g)):
        print(f"{g:36s} {pr(groups[g])}")
    by_stage = Counter((row["lang"], (why or "kept").split(":")[0]) for row, why in confusions)
    print("\nlabel keep, dropped / label drop, kept, by language and stage:", dict(sorted(by_stage.items())))
    print("\ndisagreements (label reason -> pipeline decision):")
    for row, why in sorted(confusions, key=lambda c: (c[0]["label"], c[0]["file"], c[0]["key"])):
        print(f"  {row['label']:4s} {row['reason']:20s} {why or 'kept':40s} {row['file'].split('.')[0]} {row['key']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "realweb")
    ap.add_argument("--out", type=Path, default=Path("out/labelled-sample"))
    ap.add_argument("--labels", type=Path, default=LABELS)
    ap.add_argument("--config", type=Path, default=REPO / "configs" / "default.yaml", help="another config to judge")
    ap.add_argument("--draw", type=Path, help="write the sample with its text here (for labelling) and stop")
    ap.add_argument("--encoders", action="store_true", help="keep the e5 and MiniLM safety members (slow on CPU)")
    ap.add_argument("--reuse", action="store_true", help="read the decisions of an earlier run in --out")
    ap.add_argument("--ignore", nargs="*", default=[], help="stages whose rejects count as kept, e.g. safety")
    args = ap.parse_args()
    if args.draw:
        draw(args.data, args.draw)
        return
    labels = [json.loads(line) for line in args.labels.read_text(encoding="utf-8").splitlines() if line.strip()]
    out = args.out.resolve()
    if not args.reuse:
        inputs = write_inputs(args.data, labels, out / "inputs", default_config()["ingest"]["extractor"])
        run_pipeline(inputs, out, args.encoders, args.config)
    report(labels, decisions(out / "run", tuple(args.ignore)))


if __name__ == "__main__":
    main()
