"""Writes the bad-input fixtures in this folder (see README.md here for what each file tests).

Usage:
    python tests/data/bad/make_bad_inputs.py [--sample PATH] [--out DIR]

The documents are real: whole lines of the bundled sample data/sample/en/ccnet-head.jsonl (build it
first with data/sample/build_sample.py), damaged in one known way per file. Deterministic: the same
sample gives the same bytes (fixed line choice, sorted keys, gzip without a timestamp).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
DEFAULT_SAMPLE = REPO / "data" / "sample" / "en" / "ccnet-head.jsonl"

INVALID_UTF8 = b"\xff\xfe\xc3\x28"  # 0xFF/0xFE never occur in UTF-8; 0xC3 0x28 is a broken 2-byte sequence
MARK = "\ue000"  # private-use placeholder, swapped for raw bytes after JSON encoding
TRUNCATE_AT = 0.6  # keep this fraction of the compressed bytes
MAX_BYTES = 50_000


def dumps(rec: dict) -> bytes:
    return json.dumps(rec, ensure_ascii=False, sort_keys=True).encode("utf-8")


def cut_after_word(text: str, near: int) -> int:
    """A split point at the first space at or after `near` (so damage lands between words)."""
    i = text.find(" ", near)
    return i if i > 0 else min(near, len(text))


def build(sample: Path) -> dict[str, bytes]:
    lines = [ln for ln in sample.read_bytes().split(b"\n") if ln.strip()]
    if len(lines) < 6:
        raise SystemExit(f"{sample}: expected the 20-line ccnet sample, found {len(lines)} lines")
    # the three shortest real documents (ties by position), kept in file order: small fixtures
    short = sorted(sorted(range(len(lines)), key=lambda i: (len(lines[i]), i))[:3])
    good = [lines[i] for i in short]
    recs = [json.loads(ln) for ln in good]
    files: dict[str, bytes] = {}

    # 5 lines: good, truncated JSON (first 40 bytes of a real line), good, `{"text": ` + garbage, good
    prefix = good[1][:40]
    prefix.decode("utf-8")  # a whole-character cut, so the only fault on line 2 is the JSON
    files["malformed.jsonl"] = b"\n".join([
        good[0],
        prefix,
        good[1],
        b'{"text": ' + b"garbage, not JSON ]] {{",
        good[2],
    ]) + b"\n"

    # 3 lines; line 2 is a real record whose text has raw invalid UTF-8 bytes spliced in
    rec = dict(recs[1])
    k = cut_after_word(rec["text"], 40)
    rec["text"] = rec["text"][:k] + MARK + rec["text"][k:]
    raw = dumps(rec)
    assert raw.count(MARK.encode("utf-8")) == 1
    files["invalid_utf8.jsonl"] = b"\n".join([good[0], raw.replace(MARK.encode("utf-8"), INVALID_UTF8), good[2]]) + b"\n"

    files["empty.jsonl"] = b""

    # all sample lines, gzipped, cut at 60% of the compressed bytes (no end-of-stream marker, no CRC)
    whole = b"\n".join(lines) + b"\n"
    gz = gzip.compress(whole, compresslevel=9, mtime=0)
    files["truncated.jsonl.gz"] = gz[: int(len(gz) * TRUNCATE_AT)]

    # 3 lines: good; `content` instead of `text`; `text` is a number
    no_text = dict(recs[1])
    no_text["content"] = no_text.pop("text")
    int_text = dict(recs[2])
    int_text["text"] = 12345
    files["missing_text.jsonl"] = b"\n".join([good[0], dumps(no_text), dumps(int_text)]) + b"\n"

    # 2 lines whose text holds NUL and other control characters. C0 controls (< 0x20) are written
    # as JSON escapes (\u0000, \u0007, ...); DEL and the C1 controls U+0085 (NEL) and U+009B (CSI)
    # are raw UTF-8 bytes, which JSON allows. U+0085 is a line break to str.splitlines().
    nul = dict(recs[0])
    t = nul["text"]
    k = cut_after_word(t, 30)
    nul["text"] = "\x00" + t[:k] + "\x00\x00" + t[k:] + "\x00"
    ctl = dict(recs[2])
    t = ctl["text"]
    a, b = cut_after_word(t, 30), cut_after_word(t, 90)
    ctl["text"] = (
        "\x01\x02" + t[:a] + "\x07\x08\x0b\x0c\x1b[31m" + t[a:b] + "\x1b[0m\x7f\x85\x9b\x00" + t[b:] + "\x1f"
    )
    files["nul_bytes.jsonl"] = dumps(nul) + b"\n" + dumps(ctl) + b"\n"

    # good lines between empty and whitespace-only lines (spaces, tabs, a CRLF blank line);
    # the last line is whitespace without a final newline
    files["blank_lines.jsonl"] = b"\n".join([
        b"",
        good[0],
        b"",
        b"   ",
        good[1],
        b"\t",
        b"  \t  ",
        b"\r",
        good[2],
        b"",
        b"",
        b"    ",
    ])

    for name, data in files.items():
        if len(data) > MAX_BYTES:
            raise SystemExit(f"{name}: {len(data)} bytes, over the {MAX_BYTES} limit")
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sample", type=Path, default=DEFAULT_SAMPLE, help="the ccnet sample JSONL (default: data/sample/en/ccnet-head.jsonl)")
    ap.add_argument("--out", type=Path, default=HERE, help="output folder (default: this script's folder)")
    args = ap.parse_args(argv)
    if not args.sample.is_file():
        raise SystemExit(f"{args.sample}: not found; run data/sample/build_sample.py SHARED_DATA_DIR first")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in build(args.sample).items():
        (args.out / name).write_bytes(data)
        print(f"{name}: {len(data):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
