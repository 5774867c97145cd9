"""A labelled semantic-duplicate set from real text: passages, their reordered or reworded copies, and
hard negatives (other passages of the same page), as documents plus a table of labelled pairs.

Originals: passages of 300-1,500 characters cut at line breaks from English web pages (main content
of en-pages-2025-a, Apache-2.0) and Chinese Zhihu / Common Crawl texts (zh-zhihu-and-cc, Apache-2.0);
up to 3 passages per page. Half of the originals get one copy, by one seeded edit:
  - `shuffle`: its sentences in another order;
  - `drop`: about a fifth of its sentences removed, the rest shuffled;
  - `reword`: about a tenth of its words (English) or characters (Chinese) deleted, and two adjacent
    sentences swapped.
Pairs: every (original, copy) pair is a duplicate; (passage, another passage of the same page) and
(passage, a random passage of the same language) are not.

    .venv/bin/python benchmarks/make_paraphrase_set.py --data-dir DIR --out tests/data/semantic
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SOURCES = (("en", "en-pages-2025-a.truth.jsonl.gz", "main_content"), ("zh", "zh-zhihu-and-cc.jsonl.gz", "text"))
SENT = re.compile(r"(?<=[.!?。！？])\s*|\n+")


def passages(text: str, lo: int = 300, hi: int = 1500) -> list[str]:
    out, cur = [], ""
    for line in text.split("\n"):
        if len(cur) + len(line) + 1 > hi and len(cur) >= lo:
            out.append(cur.strip())
            cur = ""
        cur += line + "\n"
    if len(cur.strip()) >= lo:
        out.append(cur.strip()[:hi])
    return [p for p in out if lo <= len(p) <= hi]


def sentences(text: str) -> list[str]:
    return [s.strip() for s in SENT.split(text) if s and s.strip()]


def edit(text: str, kind: str, lang: str, rnd: random.Random) -> str | None:
    sents = sentences(text)
    if len(sents) < 3:
        return None
    sep = "" if lang == "zh" else " "
    if kind == "shuffle":
        order = sents[:]
        while order == sents:
            rnd.shuffle(order)
        return sep.join(order)
    if kind == "drop":
        keep = [s for s in sents if rnd.random() > 0.2] or sents[:1]
        rnd.shuffle(keep)
        return sep.join(keep)
    i = rnd.randrange(len(sents) - 1)
    sents[i], sents[i + 1] = sents[i + 1], sents[i]
    joined = sep.join(sents)
    if lang == "zh":
        return "".join(c for c in joined if rnd.random() > 0.1)
    return " ".join(w for w in joined.split(" ") if rnd.random() > 0.1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--pages", type=int, default=160, help="pages per language")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    docs, pairs = [], []
    for lang, name, field in SOURCES:
        with gzip.open(args.data_dir / name, "rt", encoding="utf-8") as f:
            pages = [json.loads(line)[field] or "" for line in f]
        chosen = [(i, p) for i, t in enumerate(pages) for p in [passages(t)[:3]] if p][: args.pages]
        originals = []
        for page, ps in chosen:
            for k, text in enumerate(ps):
                doc_id = f"{lang}-{page:04d}-{k}"
                docs.append(dict(id=doc_id, text=text, lang=lang, cluster=doc_id, edit="original",
                                 source=f"{name}#{page}"))  # fmt: skip
                originals.append((doc_id, page))
                if len(ps) > 1 and k > 0:
                    pairs.append(dict(a=f"{lang}-{page:04d}-0", b=doc_id, duplicate=False, kind="same-page"))
                if rnd.random() < 0.5:
                    kind = rnd.choice(["shuffle", "drop", "reword"])
                    copy = edit(text, kind, lang, rnd)
                    if copy and copy != text:
                        docs.append(dict(id=doc_id + "-c", text=copy, lang=lang, cluster=doc_id, edit=kind,
                                         source=f"{name}#{page}"))  # fmt: skip
                        pairs.append(dict(a=doc_id, b=doc_id + "-c", duplicate=True, kind=kind))
        for doc_id, page in originals:
            other, other_page = rnd.choice(originals)
            if other_page != page:
                pairs.append(dict(a=doc_id, b=other, duplicate=False, kind="random"))
    rows = pa.Table.from_pylist(docs)
    counts: dict[str, int] = {}
    for c in rows.column("cluster").to_pylist():
        counts[c] = counts.get(c, 0) + 1
    rows = rows.append_column("true_dup", pa.array([counts[c] > 1 for c in rows.column("cluster").to_pylist()]))
    args.out.mkdir(parents=True, exist_ok=True)
    pq.write_table(rows, args.out / "paraphrases.parquet")
    pq.write_table(pa.Table.from_pylist(pairs), args.out / "pairs.parquet")
    kinds: dict[str, int] = {}
    for p in pairs:
        kinds[p["kind"]] = kinds.get(p["kind"], 0) + 1
    print(f"{rows.num_rows} documents, {len(pairs)} pairs: {kinds}")


if __name__ == "__main__":
    main()
