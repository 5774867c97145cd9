"""Writes the bad-input fixtures in this folder (see README.md here for what each file tests).

Usage:
    python tests/data/bad/make_bad_inputs.py [--sample PATH] [--refined PATH] [--out DIR]

The documents are real: whole lines of the bundled sample data/sample/en/ccnet-head.jsonl (build it
first with data/sample/build_sample.py), damaged in one known way per file; the hostile-URL file
pairs each URL with a real text of data/sample/en/refined.jsonl.gz. Deterministic: the same sample
gives the same bytes (fixed line choice, sorted keys, gzip without a timestamp; the Parquet files are
uncompressed, without dictionaries, and the same for one pyarrow version, whose name Parquet records).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
DEFAULT_SAMPLE = REPO / "data" / "sample" / "en" / "ccnet-head.jsonl"
DEFAULT_REFINED = REPO / "data" / "sample" / "en" / "refined.jsonl.gz"

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


def cut_at_sentence(text: str, limit: int) -> str:
    """The text up to the last sentence end (`. `, `.` + newline, `? `, `! `) before `limit` characters;
    whole when shorter; a word boundary when no sentence ends there. Whole sentences keep the texts
    real enough for the language and quality rules downstream."""
    if len(text) <= limit:
        return text
    ends = [text.rfind(p, 0, limit) for p in (". ", ".\n", "? ", "! ")]
    end = max(ends)
    if end >= limit // 3:
        return text[: end + 1]
    return text[: cut_after_word(text, limit - 100)]


def parquet_bytes(table: pa.Table) -> bytes:
    """Uncompressed, no dictionary pages: damage lands on known bytes, and the bytes are stable."""
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="none", use_dictionary=False)
    return buf.getvalue()


# Hostile URLs, one per document of hostile_urls.jsonl (README.md here has the list with what each
# tries). Non-string values are JSON numbers, lists, objects and null where a string belongs.
# Non-ASCII and control characters are Python escapes, so this file stays plain ASCII.
LONG_URL = "http://example.com/" + "a/" * 5_000 + "end"  # 10,022 characters
HOSTILE_URLS: list = [
    "javascript:alert(document.cookie)//http://example.com/",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "file:///etc/passwd",
    "http://xn--pple-43d.com/login",  # punycode of "apple" with a Cyrillic a (U+0430)
    "http://\u0430\u0440\u0440\u04cf\u0435.com/",  # Cyrillic letters that look like apple.com
    "http://g\u043e\u043egle.com/",  # two Cyrillic o (U+043E) in google
    "http://user:pass@example.com:8080/private",
    "http://www.example.com@evil.example.net/",  # the host is evil.example.net
    "http://127.0.0.1/admin",
    "http://0x7f.1/",
    "http://2130706433/",
    "http://[::1]:8080/x",
    "http://[2001:db8::1/",  # unclosed bracket
    "http://example.com:99999/",
    "http://example.com:-1/",
    "http://example.com:port/",
    "http://example.com/%zz%%25%E2%28%A1%ED%A0%80%FF%2",  # bad escapes, a UTF-8 surrogate, stray %
    "http://%ff%fe.example.com/",
    "http://example.com/%2e%2e/%2e%2e/etc/passwd",
    "http://example.com/../../../etc/passwd",
    LONG_URL,
    "http://exa mple.com/a b\tc\r\nd",
    "http://example.com/\u0000evil\u0000",
    "http://example.com/\u0001\u001b[31m\u007f\u0085",
    "",
    "   ",
    "example.com/no/scheme",
    "//example.com/protocol-relative",
    "http://",
    "http://example\u3002com/ideographic-dot",
    "http://example\uff0ecom/fullwidth-dot",
    "http://example\uff61com/halfwidth-dot",
    "http://example.com\u2024evil.com/one-dot-leader",
    "http://\u202eexample.com/rtl-override",
    "http://a..b.com/",
    "http://" + "a" * 300 + ".com/",
    12345,
    ["http://example.com/a", "http://example.com/b"],
    {"href": "http://example.com/"},
    None,
]


def build(sample: Path, refined: Path | None = None) -> dict[str, bytes]:
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
    files["malformed.jsonl"] = (
        b"\n".join(
            [
                good[0],
                prefix,
                good[1],
                b'{"text": ' + b"garbage, not JSON ]] {{",
                good[2],
            ]
        )
        + b"\n"
    )

    # 3 lines; line 2 is a real record whose text has raw invalid UTF-8 bytes spliced in
    rec = dict(recs[1])
    k = cut_after_word(rec["text"], 40)
    rec["text"] = rec["text"][:k] + MARK + rec["text"][k:]
    raw = dumps(rec)
    assert raw.count(MARK.encode("utf-8")) == 1
    files["invalid_utf8.jsonl"] = (
        b"\n".join([good[0], raw.replace(MARK.encode("utf-8"), INVALID_UTF8), good[2]]) + b"\n"
    )

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
    ctl["text"] = "\x01\x02" + t[:a] + "\x07\x08\x0b\x0c\x1b[31m" + t[a:b] + "\x1b[0m\x7f\x85\x9b\x00" + t[b:] + "\x1f"
    files["nul_bytes.jsonl"] = dumps(nul) + b"\n" + dumps(ctl) + b"\n"

    # good lines between empty and whitespace-only lines (spaces, tabs, a CRLF blank line);
    # the last line is whitespace without a final newline
    files["blank_lines.jsonl"] = b"\n".join(
        [
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
        ]
    )

    # --- Parquet: six of the shortest real documents, damaged or mistyped ---------------------------
    six = sorted(sorted(range(len(lines)), key=lambda i: (len(lines[i]), i))[:6])
    docs = [json.loads(lines[i]) for i in six]
    ids = [d["id"] for d in docs]
    texts = [d["text"] for d in docs]
    urls = [d["url"] for d in docs]
    good_pq = parquet_bytes(pa.table({"id": ids, "text": texts, "url": urls}))
    meta = pq.ParquetFile(io.BytesIO(good_pq)).metadata
    assert good_pq[:4] == good_pq[-4:] == b"PAR1"

    # footer: the Thrift FileMetaData (between the column chunks and the length + magic) overwritten
    footer_len = int.from_bytes(good_pq[-8:-4], "little")
    bad = bytearray(good_pq)
    start = len(bad) - 8 - footer_len
    bad[start : start + footer_len] = bytes((i * 37 + 11) & 0xFF for i in range(footer_len))
    files["corrupt_footer.parquet"] = bytes(bad)
    # cut at 60%: no footer and no closing magic (an interrupted copy)
    files["truncated.parquet"] = good_pq[: int(len(good_pq) * TRUNCATE_AT)]
    # footer intact, the `text` column's page header overwritten: opens, fails when read
    bad = bytearray(good_pq)
    off = meta.row_group(0).column(1).data_page_offset
    bad[off : off + 16] = b"\xff" * 16
    files["corrupt_page.parquet"] = bytes(bad)

    files["no_text_column.parquet"] = parquet_bytes(pa.table({"id": ids, "content": texts, "url": urls}))
    files["text_int.parquet"] = parquet_bytes(
        pa.table({"id": ids, "text": pa.array([len(t) for t in texts], pa.int64()), "url": urls})
    )
    # url as integers (one null), id as integers (one null): both cast to strings at ingest
    files["url_int.parquet"] = parquet_bytes(
        pa.table(
            {
                "id": [f"url-int-{i}" for i in range(len(texts))],
                "text": texts,
                "url": pa.array([None if i == 2 else 1000 + i for i in range(len(texts))], pa.int64()),
            }
        )
    )
    files["id_int.parquet"] = parquet_bytes(
        pa.table(
            {
                "id": pa.array([None if i == 3 else 7 + i for i in range(len(texts))], pa.int64()),
                "text": texts,
                "url": urls,
            }
        )
    )
    # url as a list of strings: no cast to a string exists; the file is an error, not a crash
    files["url_list.parquet"] = parquet_bytes(
        pa.table(
            {
                "id": [f"url-list-{i}" for i in range(len(texts))],
                "text": texts,
                "url": pa.array([[u] for u in urls], pa.list_(pa.string())),
            }
        )
    )

    # --- hostile URLs, each with a real text (a distinct document of the refined sample) ------------
    if refined is not None:
        with gzip.open(refined, "rb") as f:
            ref = [json.loads(ln) for ln in f if ln.strip()]
        # English subsets only (the stackexchange one is Spanish), in file order
        ref = [r for r in ref if "stackexchange" not in r.get("subset", "") and len(r["text"]) >= 300][
            : len(HOSTILE_URLS)
        ]
        if len(ref) < len(HOSTILE_URLS):
            raise SystemExit(
                f"{refined}: need {len(HOSTILE_URLS)} English documents of 300+ characters, found {len(ref)}"
            )
        rows = []
        for i, (url, r) in enumerate(zip(HOSTILE_URLS, ref)):
            rows.append(dumps({"id": f"hostile-url-{i:02d}", "text": cut_at_sentence(r["text"], 700), "url": url}))
        files["hostile_urls.jsonl"] = b"\n".join(rows) + b"\n"

    for name, data in files.items():
        if len(data) > MAX_BYTES:
            raise SystemExit(f"{name}: {len(data)} bytes, over the {MAX_BYTES} limit")
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--sample",
        type=Path,
        default=DEFAULT_SAMPLE,
        help="the ccnet sample JSONL (default: data/sample/en/ccnet-head.jsonl)",
    )
    ap.add_argument(
        "--refined",
        type=Path,
        default=DEFAULT_REFINED,
        help="texts for hostile_urls.jsonl (default: data/sample/en/refined.jsonl.gz)",
    )
    ap.add_argument("--out", type=Path, default=HERE, help="output folder (default: this script's folder)")
    args = ap.parse_args(argv)
    if not args.sample.is_file():
        raise SystemExit(f"{args.sample}: not found; run data/sample/build_sample.py SHARED_DATA_DIR first")
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.refined.is_file():
        raise SystemExit(f"{args.refined}: not found; run data/sample/build_sample.py SHARED_DATA_DIR first")
    for name, data in build(args.sample, args.refined).items():
        (args.out / name).write_bytes(data)
        print(f"{name}: {len(data):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
