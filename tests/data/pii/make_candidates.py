"""Draws the snippets of the PII labelled set from the real-web sets (deterministic: same output every time).

A snippet is the real text around a candidate: the lines holding it, cut to at most `WINDOW` characters
on each side at a line break or a space. Candidates are of two families, drawn in fixed quotas per set:
- personal data as a broad regex sees it (anything @-shaped, runs of 5+ digits, dotted quads,
  colon-hex groups, `QQ`/`微信` followed by digits, `://user:pass@`);
- hard negatives: dates, times, prices, version strings, ISBNs, order and tracking numbers, product
  codes and long numeric IDs.
Each snippet is written with the spans the detectors find as a first proposal (`proposed`); the labels
in `labelled.jsonl` are those proposals after reading every snippet by hand (README.md).

    python tests/data/pii/make_candidates.py DATA_DIR > candidates.jsonl
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import sys
from pathlib import Path

WINDOW = 110
SETS = {  # file -> text field
    "zh-emails-trec06c-a.jsonl.gz": "text",
    "en-emails-spamassassin-a.jsonl.gz": "text",
    "zh-weibo-threads-a.jsonl.gz": "text",
    "zh-zhihu-and-cc.jsonl.gz": "text",
    "en-pages-2025-a.truth.jsonl.gz": "main_content",
    "zh-pages-cwced.truth.jsonl.gz": "main_content",
}
CANDIDATES = {
    "email-like": r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+",
    "digits-5+": r"(?<![0-9])[0-9]{5,}(?![0-9])",
    "grouped-digits": r"(?<![0-9])[0-9]{2,4}[ \-.)][0-9]{3,4}[ \-.][0-9]{3,4}(?![0-9])",
    "plus-number": r"\+[0-9]{1,3}[ \-]?\(?[0-9]",
    "dotted-quad": r"(?<![0-9.])[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(?![0-9])",
    "colon-hex": r"[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{1,4}",
    "qq-wechat": r"(?i)(?:qq|微信|wechat|weixin|vx)[^\n]{0,6}[0-9A-Za-z]",
    "url-userinfo": r"://[^\s/@]+:[^\s/@]*@",
    "date": r"(?<![0-9])(?:19|20)[0-9]{2}[\-/年.][0-9]{1,2}[\-/月.][0-9]{1,2}",
    "time": r"(?<![0-9])[0-2]?[0-9]:[0-5][0-9](?::[0-5][0-9])?",
    "price": r"(?:[$¥￥€£]\s?[0-9][0-9,.]*|[0-9][0-9,.]*\s?(?:元|美元|万元|USD|RMB))",
    "version": r"(?i)(?:v|version|ver\.?|版本)\s?[0-9]+(?:\.[0-9]+){1,3}",
    "isbn": r"(?i)isbn[^\n]{0,20}",
    "order-tracking": (
        r"(?i)(?:订单|单号|运单|快递|order|tracking|invoice|serial|编号|型号|货号)"
        r"[^\n]{0,4}[#:：]?\s?[A-Z0-9\-]{5,}"
    ),
    "product-code": r"(?<![A-Za-z0-9])[A-Z]{1,4}-?[0-9]{4,}[A-Z]?(?![A-Za-z0-9])",
    "long-id": r"(?<![0-9])[0-9]{12,}(?![0-9])",
}
PER_SET = {
    "email-like": 12,
    "digits-5+": 12,
    "grouped-digits": 8,
    "plus-number": 4,
    "dotted-quad": 5,
    "colon-hex": 2,
    "qq-wechat": 5,
    "url-userinfo": 2,
    "date": 3,
    "time": 2,
    "price": 3,
    "version": 3,
    "isbn": 2,
    "order-tracking": 3,
    "product-code": 3,
    "long-id": 4,
}


def snippet(text: str, start: int, end: int) -> tuple[int, int]:
    """Bounds of a readable window around [start, end): cut at a line break, else a space, else hard."""
    lo, hi = max(0, start - WINDOW), min(len(text), end + WINDOW)
    cut = max(text.rfind("\n", lo, start), -1)
    if cut >= 0 and start - cut > 20:
        lo = cut + 1
    nl = text.find("\n", end, hi)
    if nl >= 0 and nl - end > 20:
        hi = nl
    return lo, hi


def rank(*parts) -> str:
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()


def main(data: Path) -> None:
    from stages.pii.detectors import KINDS, build_detectors, find_all
    from stages.pii.stage import RESERVED_DOMAINS

    detectors = build_detectors(list(KINDS), tuple(RESERVED_DOMAINS), True)
    seen: set[str] = set()
    for name, field in SETS.items():
        with gzip.open(data / name, "rt", encoding="utf-8") as f:
            docs = [json.loads(line)[field] for line in f]
        for family, pattern in CANDIDATES.items():
            found = []
            for i, doc in enumerate(docs):
                for m in re.finditer(pattern, doc):
                    found.append((rank(name, family, i, m.start()), i, m.start(), m.end()))
            taken = 0
            for _, i, start, end in sorted(found):
                if taken == PER_SET[family]:
                    break
                lo, hi = snippet(docs[i], start, end)
                text = docs[i][lo:hi]
                if text in seen or len(text) < 20:
                    continue
                seen.add(text)
                taken += 1
                spans = [{"start": s, "end": e, "type": k} for s, e, k in find_all(text, detectors)]
                print(
                    json.dumps(
                        {"source": name, "doc": i, "offset": lo, "family": family, "text": text, "proposed": spans},
                        ensure_ascii=False,
                    )
                )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
