"""HTML reader: web pages saved as files (.html, .htm, .html.gz, .htm.gz), one document per file.

For pages that arrive as a folder (a wget mirror, a scrape, a vendor dump) rather than in a WARC. The
text comes out as it would from a WARC response: charset repaired by `web.charset.decode_html` (a
byte-order mark, valid UTF-8, `<meta charset>`, then detection; a file has no HTTP header), main text
extracted by `web.extract.main_text` (the configured extractor). Pages over 8 MiB are cut to
their first 8 MiB, as WARC blocks are.

URL: a file named `urls.tsv` in the page's own folder maps file names to URLs, one page per line:
`<file name><TAB><url>`, the file name as it is in that folder (`index.html`, `about.html.gz`);
blank lines and lines starting with `#` are ignored. A page that urls.tsv does not list, or in a
folder without one, gets its relpath (its path below the input folder, as ids see it) as url. One
file per folder, not one per page, because folders of pages run to millions of files. `fetch_date`
is null: a saved file does not say when it was fetched.

The id is make_id(source, relpath, 0): a file is one row. Files that give no document are rejects
whose `detail` starts with the file's path:
- `html-unreadable`: the file cannot be read (permissions, a damaged or truncated .gz);
- `html-empty-file`: nothing but whitespace in it;
- `html-undecodable`: over 5% replacement or control characters after the best decoding (binary
  data, an image or a PDF under an .html name);
- `html-not-html`: text without a single HTML tag at its start;
- `html-extraction-failed`: nested over MAX_DEPTH deep, or the extractor raised;
- `html-empty-extraction`: the page has no main text (script-only pages, framesets, redirects).
A malformed urls.tsv is a file error (InputFileError) naming its line, for every page of its folder.
"""

from __future__ import annotations

import functools
import gzip
import os
import re
import zlib
from collections.abc import Iterator

import pyarrow as pa

from stages.ingest.base import REJECT_TEXT_CHARS, Chunk, InputFileError, Reader, make_id, reject_row
from stages.ingest.web.charset import BAD_CHAR_SHARE, decode_html
from stages.ingest.web.extract import DEFAULT_EXTRACTOR, ExtractionFailed, main_text
from stages.ingest.web.records import MAX_BLOCK_BYTES

URLS_FILE = "urls.tsv"
MARKUP_PREFIX_CHARS = 65536  # a page with no tag this far in is not HTML
_MARKUP = re.compile(r"<(?:!doctype|!--|/?[a-zA-Z][a-zA-Z0-9-]*[\s/>])", re.I)

SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("text", pa.large_string(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("source", pa.string(), nullable=False),
        pa.field("lang", pa.string()),
        pa.field("fetch_date", pa.string()),
        pa.field("charset", pa.string()),
    ]
)


def read_html_chunks(
    path: str, relpath: str, spec, rows_per_shard: int, extractor: str = DEFAULT_EXTRACTOR
) -> Iterator[Chunk]:
    """One chunk holding the page's document or its reject (rows_per_shard cannot be exceeded by one row)."""
    url = page_url(path, relpath)

    def rejected(reason: str, why: str, content: str = "") -> Chunk:
        detail = f"{path}: {why}"
        reject = reject_row(spec, relpath, 0, reason, detail, content[:REJECT_TEXT_CHARS], url=url)
        return Chunk(SCHEMA.empty_table(), [reject])

    try:
        body = _read_page(path)
    except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
        yield rejected("html-unreadable", f"cannot read ({type(err).__name__}: {err})")
        return
    if not body.strip():
        yield rejected("html-empty-file", f"empty file ({len(body)} bytes)")
        return
    html, codec, bad = decode_html(body, None)
    if bad > BAD_CHAR_SHARE:
        why = f"{bad:.0%} of characters are replacement or control characters after decoding as {codec} (binary data?)"
        yield rejected("html-undecodable", why, html)
        return
    if not _MARKUP.search(html, 0, MARKUP_PREFIX_CHARS):
        yield rejected("html-not-html", f"no HTML tag in the first {MARKUP_PREFIX_CHARS:,} characters", html)
        return
    try:
        text = main_text(html, extractor)
    except ExtractionFailed as err:
        yield rejected("html-extraction-failed", str(err), html)
        return
    if not text:
        yield rejected("html-empty-extraction", f"no text in {len(html)} characters of HTML", html)
        return
    doc = {
        "id": make_id(spec.source, relpath, 0),
        "text": text,
        "url": url,
        "source": spec.source,
        "lang": spec.lang,
        "fetch_date": None,
        "charset": codec,
    }
    yield Chunk(pa.Table.from_pylist([doc], schema=SCHEMA))


def _read_page(path: str) -> bytes:
    opener = gzip.open if path.lower().endswith(".gz") else open
    with opener(path, "rb") as f:
        return f.read(MAX_BLOCK_BYTES)


def page_url(path: str, relpath: str) -> str:
    """The page's URL from the urls.tsv beside it, else its relpath (`/`-separated on every system)."""
    folder, name = os.path.split(path)
    urls_path = os.path.join(folder, URLS_FILE)
    try:
        stat = os.stat(urls_path)
    except FileNotFoundError:
        return relpath.replace(os.sep, "/")
    urls = _sidecar_urls(urls_path, stat.st_mtime_ns, stat.st_size)
    return urls.get(name) or relpath.replace(os.sep, "/")


@functools.lru_cache(maxsize=64)
def _sidecar_urls(urls_path: str, mtime_ns: int, size: int) -> dict[str, str]:
    """file name -> URL from one urls.tsv; read once per worker per version of the file (mtime and size
    are part of the cache key), since every page of the folder asks for it."""
    urls: dict[str, str] = {}
    try:
        with open(urls_path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputFileError(f"{urls_path}: cannot read the URL list ({type(err).__name__}: {err})") from None
    for line_no, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, url = line.partition("\t")
        if not sep or not name or not url.strip():
            raise InputFileError(
                f"{urls_path}:{line_no}: expected `<file name><TAB><url>`, got {line[:80]!r}; fix or remove the line"
            )
        urls[name] = url.strip()
    return urls


HTML = Reader("html", (".html", ".htm", ".html.gz", ".htm.gz"), read_html_chunks, extracts_html=True)
