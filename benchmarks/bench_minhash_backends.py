"""MinHash signatures: the numpy backend against the torch backend (CPU, or CUDA when asked), same input.

Documents are real English pages (main content) and Chinese Zhihu/Common Crawl texts from the shared
data folder, cycled to `--docs`; shingling (the same numpy code for both) is done once and timed
apart, so the figures compare only the signature arithmetic. Each backend runs `--repeat` times
after one warm-up and the best time counts. "per core": numpy runs on one core (it has no
threads); torch on CPU is measured with `torch.set_num_threads(1)` and with all cores. On CUDA the
ratio that matters is GPU docs/s over numpy docs/s on one core. Signatures are compared for
equality every time (a mismatch fails the run).

Run:
    .venv/bin/python benchmarks/bench_minhash_backends.py [--docs 100000] [--device cpu|cuda] [--data-dir DIR]
Prints one JSON line (also appended to --out when given).
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from stages import minhash, minhash_torch
from stages.shingles import shingle

REPO = Path(__file__).resolve().parents[1]
FILES = (("en-pages-2025-a.truth.jsonl.gz", "main_content", "en"), ("zh-zhihu-and-cc.jsonl.gz", "text", "zh"))


def load_docs(data_dir: Path, n: int) -> tuple[list[str], list[str]]:
    pool = []
    for name, field, lang in FILES:
        with gzip.open(data_dir / name, "rt", encoding="utf-8") as f:
            pool += [(json.loads(line)[field], lang) for line in f]
    pool = [(t, lang) for t, lang in pool if t and t.strip()]
    rows = list(itertools.islice(itertools.cycle(pool), n))
    return [t for t, _ in rows], [lang for _, lang in rows]


def best_of(fn, repeat: int) -> tuple[float, np.ndarray]:
    out = fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--num-perm", type=int, default=128)
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "realweb")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no GPU visible to torch")
    texts, langs = load_docs(args.data_dir, args.docs)
    started = time.perf_counter()
    sh = shingle(pa.array(texts, pa.large_string()), pa.array(langs), word_ngram=5, zh_ngram=5)
    shingle_s = time.perf_counter() - started
    np_s, want = best_of(lambda: minhash.signatures(sh, args.num_perm, 1)[0], args.repeat)
    result = {
        "docs": args.docs,
        "shingles": int(len(sh.hashes)),
        "num_perm": args.num_perm,
        "shingle_docs_per_s": round(args.docs / shingle_s),
        "numpy_docs_per_s_1core": round(args.docs / np_s),
        "cpu_count": os.cpu_count(),
    }
    threads = torch.get_num_threads()
    runs = [("torch_cpu_1thread", "cpu", 1), (f"torch_cpu_{threads}threads", "cpu", threads)]
    if args.device == "cuda":
        runs.append(("torch_cuda", "cuda", threads))
        result["device_name"] = torch.cuda.get_device_name(0)
    else:
        result["device_name"] = "cpu"
    for label, dev, n_threads in runs:
        torch.set_num_threads(n_threads)
        if dev == "cuda":

            def run():
                out = minhash_torch.signatures(sh, args.num_perm, 1, "cuda")[0]
                torch.cuda.synchronize()
                return out

        else:

            def run(dev=dev):
                return minhash_torch.signatures(sh, args.num_perm, 1, dev)[0]

        secs, got = best_of(run, args.repeat)
        if not np.array_equal(got, want):
            raise SystemExit(f"{label}: signatures differ from numpy's")
        result[f"{label}_docs_per_s"] = round(args.docs / secs)
        result[f"{label}_vs_numpy_1core"] = round(np_s / secs, 2)
    torch.set_num_threads(threads)
    line = json.dumps(result)
    print(line)
    if args.out:
        with open(args.out, "a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
