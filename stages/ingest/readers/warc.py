"""WARC and WET reader: Common Crawl style archives into the document schema.

One input file is one task, as for JSONL. Records come from `web.records`, whose failures are exact:
- a file cut short, a damaged gzip member or bytes that are not a WARC record end the file with an
  `InputFileError` naming the file, the record number and the byte offset, after every document read
  before the damage has been handed over (as JSONL does with a truncated gzip);
- a record whose block is shorter than its `Content-Length` is never turned into a document.

What becomes a document:
- `response` records with an HTTP 2xx status and an HTML content type (`text/html`,
  `application/xhtml+xml`; or no/generic type when the body starts like HTML): charset repaired
  (see `web.charset.decode_html`), main text extracted by the configured extractor (`web.extract`);
- `conversion` records (WET files): the text as it is, decoded as UTF-8 unless declared otherwise.

Everything else is not a document: `warcinfo`, `request`, `metadata`, `resource`, `revisit` records,
responses that are not HTML (images, PDF, ...) or not 2xx. These are *skipped and counted* (in
`Chunk.skipped`, by kind), not rejected: a reject is a document we failed to read, and these never
were documents. Documents that fail are rejects with a reason and a `detail` naming file, record
number and byte offset:
- `warc-undecodable`: no charset decodes the bytes (over 5% replacement or control characters, the
  sign of binary data served as HTML), a broken HTTP header block, or a content encoding that fails;
- `warc-empty-extraction`: the page decoded but has no text (script-only pages, framesets, empty
  bodies);
- `warc-extraction-failed`: elements nested over MAX_DEPTH deep (extraction time is quadratic in
  depth, so such a page would stall a worker), or the extractor raised.

Ids are `make_id(source, relpath, record number)`, the record number counting every record of the
file from 0, so an id points at one place in one file (as row numbers do for JSONL). The crawl's own
`WARC-Record-ID` is kept in `warc_record_id` for joins back to the archive: it is not the id because
the same capture is often stored twice (the dolma sample holds three copies of https://allenai.org/
with three record ids), and a UUID says nothing about where the record is.

Extra columns: `fetch_date` (the `WARC-Date` string as written, ISO 8601), `warc_record_id`, and
`charset` (the codec the page was decoded with; `utf-8` for WET).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

from stages.ingest.base import REJECT_TEXT_CHARS, Chunk, InputFileError, Reader, make_id
from stages.ingest.web.charset import BAD_CHAR_SHARE, decode_html
from stages.ingest.web.extract import DEFAULT_EXTRACTOR, ExtractionFailed, main_text
from stages.ingest.web.http import (
    GENERIC_TYPES,
    HTML_TYPES,
    HttpError,
    decode_transfer,
    header_charset,
    looks_like_html,
    media_type,
    parse_http,
)
from stages.ingest.web.records import Record, WarcDamage, WarcStream, clean_uri, iter_records

MAX_MIME_KEYS = 30  # distinct `response-non-html:<mime>` counters per file before folding into `...:other`

SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("text", pa.large_string(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("source", pa.string(), nullable=False),
        pa.field("lang", pa.string()),
        pa.field("fetch_date", pa.string()),
        pa.field("warc_record_id", pa.string()),
        pa.field("charset", pa.string()),
    ]
)


@dataclass
class _Outcome:
    doc: dict | None = None
    reject: dict | None = None
    skipped: str | None = None


def record_to_doc(record: Record, path: str, relpath: str, spec, extractor: str = DEFAULT_EXTRACTOR) -> _Outcome:
    """One record: a document, a reject, or the kind it is skipped as."""
    if record.type == "conversion":
        content_type = record.headers.get("content-type")
        text, codec, bad = decode_html(record.block or b"", header_charset(content_type), sniff_meta=False)
        return _finish(record, path, relpath, spec, text.strip(), codec, bad, source_text=text)
    if record.type != "response":
        return _Outcome(skipped=record.type)

    def rejected(reason: str, why: str, content: bytes | str) -> _Outcome:
        return _Outcome(reject=_reject(record, path, relpath, spec, reason, why, content))

    block = record.block or b""
    if not block.startswith(b"HTTP/"):
        if media_type(record.headers.get("content-type")).startswith("application/http"):
            return rejected("warc-undecodable", "no HTTP status line", block)
        return _Outcome(skipped="response-non-http")  # dns:, ftp: and other non-HTTP captures
    try:
        response = parse_http(block)
    except HttpError as err:
        return rejected("warc-undecodable", str(err), block)
    if not 200 <= response.status < 300:
        return _Outcome(skipped=f"response-status-{response.status}")
    mime = media_type(response.headers.get("content-type"))
    if mime not in HTML_TYPES:
        identified = media_type(record.headers.get("warc-identified-payload-type"))
        if not (mime in GENERIC_TYPES and (identified in HTML_TYPES or looks_like_html(response.body))):
            return _Outcome(skipped=f"response-non-html:{_mime_key(mime)}")
    try:
        body = decode_transfer(response)
    except HttpError as err:
        return rejected("warc-undecodable", str(err), response.body)
    html, codec, bad = decode_html(body, header_charset(response.headers.get("content-type")))
    if bad > BAD_CHAR_SHARE:
        why = f"{bad:.0%} of characters are replacement or control characters after decoding as {codec} (binary data?)"
        return rejected("warc-undecodable", why, html)
    try:
        text = main_text(html, extractor)
    except ExtractionFailed as err:
        return rejected("warc-extraction-failed", str(err), html)
    return _finish(record, path, relpath, spec, text, codec, 0.0, source_text=html)


def _finish(
    record: Record, path: str, relpath: str, spec, text: str, codec: str, bad: float, source_text: str
) -> _Outcome:
    if bad > BAD_CHAR_SHARE:
        why = f"{bad:.0%} of characters are replacement or control characters after decoding as {codec}"
        return _Outcome(reject=_reject(record, path, relpath, spec, "warc-undecodable", why, source_text))
    if not text:
        kind = "HTML" if record.type == "response" else "content"
        why = f"no text in {len(source_text)} characters of {kind}"
        return _Outcome(reject=_reject(record, path, relpath, spec, "warc-empty-extraction", why, source_text))
    return _Outcome(
        doc={
            "id": make_id(spec.source, relpath, record.number),
            "text": text,
            "url": clean_uri(record.headers.get("warc-target-uri")),
            "source": spec.source,
            "lang": spec.lang,
            "fetch_date": record.headers.get("warc-date"),
            "warc_record_id": clean_uri(record.headers.get("warc-record-id")),
            "charset": codec,
        }
    )


def _mime_key(mime: str) -> str:
    mime = re.sub(r"[^a-z0-9.+/\-]", "", mime)[:60]
    return mime or "none"


def _reject(record: Record, path: str, relpath: str, spec, reason: str, why: str, content: bytes | str) -> dict:
    if isinstance(content, bytes):
        content = content[: REJECT_TEXT_CHARS * 4].decode("utf-8", "replace")
    return {
        "id": make_id(spec.source, relpath, record.number),
        "text": content[:REJECT_TEXT_CHARS],
        "url": clean_uri(record.headers.get("warc-target-uri")),
        "source": spec.source,
        "lang": spec.lang,
        "stage": "ingest",
        "reason": reason,
        "detail": f"{path}: record {record.number} at {record.place}: {why}",
    }


def read_warc_chunks(
    path: str, relpath: str, spec, rows_per_shard: int, extractor: str = DEFAULT_EXTRACTOR
) -> Iterator[Chunk]:
    """Reads a WARC or WET file (plain or gzip, one or many members) as chunks of documents; HTML pages'
    main text comes from `extractor` (a name in `web.extract.EXTRACTORS`)."""
    docs: list[dict] = []
    rejects: list[dict] = []
    skipped: Counter = Counter()
    kept = 0
    last = -1

    def flush() -> Chunk:
        return Chunk(pa.Table.from_pylist(docs, schema=SCHEMA), rejects, dict(sorted(skipped.items())))

    try:
        stream = WarcStream(path)
    except OSError as err:
        raise InputFileError(f"{path}: cannot open ({err})") from None
    try:
        for record in iter_records(stream):
            last = record.number
            outcome = record_to_doc(record, path, relpath, spec, extractor)
            if outcome.doc is not None:
                docs.append(outcome.doc)
                kept += 1
            elif outcome.reject is not None:
                rejects.append(outcome.reject)
            else:
                skipped[_skip_key(outcome.skipped, skipped)] += 1
            if len(docs) >= rows_per_shard:
                yield flush()
                docs, rejects, skipped = [], [], Counter()
    except WarcDamage as err:
        if docs or rejects or skipped:
            yield flush()
        after = f"after record {last}" if last >= 0 else "before the first record"
        raise InputFileError(
            f"{path}: WARC stream is damaged {after}: {err}; the {kept} documents before it were kept"
        ) from None
    finally:
        stream.close()
    if docs or rejects or skipped:
        yield flush()


def _skip_key(key: str, skipped: Counter) -> str:
    """The counter for a skipped record; past MAX_MIME_KEYS non-HTML types, new ones fold into `...:other`."""
    if not key.startswith("response-non-html:") or key in skipped:
        return key
    if sum(k.startswith("response-non-html:") for k in skipped) >= MAX_MIME_KEYS:
        return "response-non-html:other"
    return key


# Common Crawl names WET files *.warc.wet.gz: the longer suffix makes them WET, not WARC.
WARC = Reader("warc", (".warc", ".warc.gz"), read_warc_chunks, extracts_html=True)
WET = Reader("wet", (".wet", ".wet.gz"), read_warc_chunks, extracts_html=True)
