"""WARC and WET ingest: Common Crawl style archives into the document schema.

One input file is one task, as for JSONL. Records are read with a small parser of our own (the
format is a version line, headers, a blank line and `Content-Length` bytes) over a gzip reader that
knows where each gzip member starts, because what a crawl file needs most is exact failure:
- a file cut short, a damaged gzip member or bytes that are not a WARC record end the file with an
  `InputFileError` naming the file, the record number and the byte offset, after every document read
  before the damage has been handed over (as JSONL does with a truncated gzip);
- a record whose block is shorter than its `Content-Length` is never turned into a document.

What becomes a document:
- `response` records with an HTTP 2xx status and an HTML content type (`text/html`,
  `application/xhtml+xml`; or no/generic type when the body starts like HTML): charset repaired
  (see `decode_html`), main text extracted with resiliparse (`extract_plain_text(main_content=True)`,
  chosen over trafilatura for being 14-18x faster while keeping 92% of what trafilatura keeps;
  docs/ingest_web.md has the measurement);
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

import codecs
import io
import re
import zlib
from collections import Counter, deque
from dataclasses import dataclass
from typing import Iterator

import pyarrow as pa

from stages.ingest import Chunk, InputFileError, make_id
from stages.ingest_inputs import InputSpec

MAX_LINE = 64 << 10  # a WARC or HTTP header line longer than this is not a header
MAX_HEADER_BYTES = 256 << 10
MAX_BLOCK_BYTES = 8 << 20  # HTML beyond 8 MiB is cut before extraction (Common Crawl itself cuts at 1 MiB)
BAD_CHAR_SHARE = 0.05  # more replacement/control characters than this: binary or hopeless mis-decoding
REJECT_TEXT_CHARS = 1000  # how much of a rejected page's decoded bytes the reject keeps for inspection
MAX_DEPTH = 3000  # deeper element nesting is refused: extraction time grows with the square of depth
MAX_MIME_KEYS = 30  # distinct `response-non-html:<mime>` counters per file before folding into `...:other`

HTML_TYPES = {"text/html", "application/xhtml+xml", "application/vnd.wap.xhtml+xml"}
GENERIC_TYPES = {"", "text/plain", "application/octet-stream", "unknown/unknown", "application/unknown"}

SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False),
    pa.field("text", pa.large_string(), nullable=False),
    pa.field("url", pa.string()),
    pa.field("source", pa.string(), nullable=False),
    pa.field("lang", pa.string()),
    pa.field("fetch_date", pa.string()),
    pa.field("warc_record_id", pa.string()),
    pa.field("charset", pa.string()),
])


class WarcDamage(Exception):
    """The byte stream cannot be read on (truncated, corrupt gzip, not WARC): ends the file."""


# --------------------------------------------------------------------------------------------------
# Byte streams


class _GzipMembers(io.RawIOBase):
    """A multi-member gzip file as a raw stream, remembering where each member starts.

    Common Crawl compresses every record as its own gzip member, and its indexes point at member
    offsets; keeping them lets a reject's `detail` name the byte a user can seek to. Unlike
    `gzip.GzipFile` it says which member is damaged, and it never loses the bytes decoded before a
    failure (the records before it stay readable).
    """

    def __init__(self, path: str):
        self._file = open(path, "rb")
        self._in = b""  # compressed bytes read but not yet decompressed
        self._in_pos = 0  # compressed offset of self._in[0]
        self._out_pos = 0
        self._decomp = None
        self._member_start = 0
        self._starts: deque[tuple[int, int]] = deque()  # (uncompressed, compressed) offset per member

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._out_pos

    def close(self) -> None:
        self._file.close()
        super().close()

    def compressed_offset(self, offset: int) -> int | None:
        """The compressed offset of the member that starts at uncompressed `offset`, if one does."""
        while self._starts and self._starts[0][0] < offset:
            self._starts.popleft()
        if self._starts and self._starts[0][0] == offset:
            return self._starts[0][1]
        return None

    def _fill(self) -> bool:
        data = self._file.read(1 << 16)
        self._in += data
        return bool(data)

    def readinto(self, buffer) -> int:
        while True:
            if self._decomp is None:
                while len(self._in) < 2 and self._fill():
                    pass
                if not self._in:
                    return 0
                if self._in[:2] != b"\x1f\x8b":
                    if self._in.strip(b"\x00") or not self._rest_is_zero():
                        raise WarcDamage(f"bytes that are not gzip at byte {self._in_pos}")
                    return 0  # zero padding after the last member, as some writers leave
                self._decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)
                self._member_start = self._in_pos
                self._starts.append((self._out_pos, self._in_pos))
            if not self._in and not self._fill():
                raise WarcDamage(f"the file ends inside the gzip member that starts at byte {self._member_start} (truncated)")
            before = len(self._in)
            try:
                data = self._decomp.decompress(self._in, len(buffer))
            except zlib.error as err:
                raise WarcDamage(f"gzip member at byte {self._member_start} is corrupt ({err})") from None
            if self._decomp.eof:
                self._in = self._decomp.unused_data
                self._decomp = None
            else:
                self._in = self._decomp.unconsumed_tail
            self._in_pos += before - len(self._in)
            if data:
                buffer[: len(data)] = data
                self._out_pos += len(data)
                return len(data)

    def _rest_is_zero(self) -> bool:
        while self._fill():
            if self._in.strip(b"\x00"):
                return False
            self._in_pos += len(self._in)
            self._in = b""
        return True


class _Stream:
    """Buffered reading with `tell()` in the (decompressed) record stream and a printable place."""

    def __init__(self, path: str):
        self.path = path
        self.gzip = _GzipMembers(path) if path.lower().endswith(".gz") else None
        self.reader = io.BufferedReader(self.gzip, buffer_size=1 << 16) if self.gzip else open(path, "rb")

    def place(self, offset: int) -> str:
        if self.gzip is None:
            return f"byte {offset}"
        compressed = self.gzip.compressed_offset(offset)
        return f"byte {compressed}" if compressed is not None else f"byte {offset} of the decompressed stream"

    def read(self, n: int) -> bytes:
        try:
            return self.reader.read(n)
        except (OSError, EOFError) as err:
            raise WarcDamage(f"read error ({err})") from None

    def readline(self, limit: int) -> bytes:
        try:
            return self.reader.readline(limit)
        except (OSError, EOFError) as err:
            raise WarcDamage(f"read error ({err})") from None

    def skip(self, n: int) -> int:
        done = 0
        while done < n:
            got = len(self.read(min(1 << 20, n - done)))
            if not got:
                break
            done += got
        return done

    def close(self) -> None:
        self.reader.close()


# --------------------------------------------------------------------------------------------------
# Records


@dataclass
class Record:
    number: int  # position in the file, counting every record from 0
    place: str  # `byte N` (of the gzip member for .gz files)
    type: str  # `response`, `conversion`, ... (lowercase)
    headers: dict[str, str]  # WARC headers, names lowercased; the last of repeated names wins
    block: bytes | None  # the content block (read only for records that may be documents; cut at MAX_BLOCK_BYTES)


def iter_records(stream: _Stream, want_block=lambda warc_type: warc_type in ("response", "conversion")) -> Iterator[Record]:
    """Yields every record; raises WarcDamage (with the record number) where the stream breaks."""
    number = 0
    while True:
        offset = stream.reader.tell()
        line = stream.readline(MAX_LINE)
        if not line:
            return
        if not line.strip():  # the blank lines that end the previous record
            continue
        place = stream.place(offset)
        if not line.startswith(b"WARC/"):
            raise WarcDamage(f"record {number} at {place}: expected a 'WARC/1.x' version line, got {line[:60]!r}")
        headers = _read_headers(stream, number, place)
        warc_type = headers.get("warc-type", "").strip().lower() or "unknown"
        length = _content_length(headers, number, place)
        if want_block(warc_type):
            block = stream.read(min(length, MAX_BLOCK_BYTES))
            got = len(block) + (stream.skip(length - MAX_BLOCK_BYTES) if length > MAX_BLOCK_BYTES else 0)
        else:
            block = None
            got = stream.skip(length)
        if got < length:
            raise WarcDamage(f"record {number} at {place} is cut short: {got} of its {length} bytes (truncated file)")
        yield Record(number, place, warc_type, headers, block)
        number += 1


def _read_headers(stream: _Stream, number: int, place: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    last = None
    size = 0
    while True:
        line = stream.readline(MAX_LINE)
        if not line:
            raise WarcDamage(f"record {number} at {place}: the file ends inside its headers (truncated)")
        size += len(line)
        if size > MAX_HEADER_BYTES:
            raise WarcDamage(f"record {number} at {place}: headers longer than {MAX_HEADER_BYTES} bytes")
        if line in (b"\r\n", b"\n"):
            return headers
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        if text[:1] in (" ", "\t") and last is not None:  # folded continuation line (WARC 1.0 allows it)
            headers[last] += " " + text.strip()
            continue
        name, sep, value = text.partition(":")
        if not sep:
            raise WarcDamage(f"record {number} at {place}: malformed header line {line[:60]!r}")
        last = name.strip().lower()
        headers[last] = value.strip()


def _content_length(headers: dict[str, str], number: int, place: str) -> int:
    raw = headers.get("content-length")
    if raw is None:
        raise WarcDamage(f"record {number} at {place}: no Content-Length header")
    if not raw.isdigit() or len(raw) > 15:
        raise WarcDamage(f"record {number} at {place}: bad Content-Length {raw[:30]!r}")
    return int(raw)


def clean_uri(value: str | None) -> str | None:
    """`<https://x.org/>` (as wget and the dolma sample write it, after WARC 1.0's grammar) -> `https://x.org/`."""
    if value is None:
        return None
    value = value.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    return value or None


# --------------------------------------------------------------------------------------------------
# HTTP


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]  # lowercased names
    body: bytes


class HttpError(ValueError):
    pass


def parse_http(block: bytes) -> HttpResponse:
    """Status line, headers and body of an HTTP response block; tolerates bare `\\n` line ends."""
    ends = [i for i in (block.find(b"\r\n\r\n"), block.find(b"\n\n")) if i >= 0]
    if not ends:
        raise HttpError("no end of HTTP headers")
    end = min(ends)
    head = block[:end]
    body = block[end + (4 if block[end:end + 4] == b"\r\n\r\n" else 2):]
    lines = head.decode("latin-1").replace("\r\n", "\n").split("\n")
    match = re.match(r"HTTP/\d(?:\.\d)?\s+(\d{3})", lines[0])
    if not match:
        raise HttpError(f"no HTTP status line (got {lines[0][:40]!r})")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return HttpResponse(int(match.group(1)), headers, body)


def decode_transfer(response: HttpResponse) -> bytes:
    """Undoes chunked transfer and gzip/deflate content encodings (Common Crawl stores bodies already
    decoded and renames those headers to `X-Crawler-*`; wget and other crawlers do not)."""
    body = response.body
    if "chunked" in response.headers.get("transfer-encoding", "").lower():
        body = _dechunk(body)
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity", "none"):
        return body
    if encoding in ("gzip", "x-gzip"):
        return _inflate(body, 16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        try:
            return _inflate(body, zlib.MAX_WBITS)
        except HttpError:
            return _inflate(body, -zlib.MAX_WBITS)  # raw deflate, as some servers send it
    raise HttpError(f"unsupported Content-Encoding {encoding!r}")


def _dechunk(body: bytes) -> bytes:
    out, pos = [], 0
    while pos < len(body):
        eol = body.find(b"\n", pos)
        if eol < 0:
            break
        size_text = body[pos:eol].split(b";")[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise HttpError(f"bad chunk size {size_text[:20]!r}") from None
        if size == 0:
            break
        out.append(body[eol + 1: eol + 1 + size])
        pos = eol + 1 + size
        if body[pos:pos + 2] == b"\r\n":
            pos += 2
        elif body[pos:pos + 1] == b"\n":
            pos += 1
    return b"".join(out)


def _inflate(data: bytes, wbits: int) -> bytes:
    d = zlib.decompressobj(wbits)
    try:
        out = d.decompress(data, MAX_BLOCK_BYTES)
    except zlib.error as err:
        raise HttpError(f"content encoding is corrupt ({err})") from None
    return out  # a body cut by the crawler's size limit decodes as far as it goes


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def header_charset(content_type: str | None) -> str | None:
    match = re.search(r"charset\s*=\s*[\"']?\s*([\w.:\-]+)", content_type or "", re.I)
    return match.group(1) if match else None


def looks_like_html(body: bytes) -> bool:
    head = body[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<!doctype html", b"<html", b"<?xml")) or b"<html" in head or b"<body" in head


# --------------------------------------------------------------------------------------------------
# Charsets

# WHATWG's label table, for the labels that matter in CJK and Western crawls: a declared charset is
# read as the superset browsers use. gb2312/gbk pages routinely hold characters outside GB2312, so
# they are decoded as GB18030; big5 as Big5-HKSCS; latin-1 and ascii as windows-1252.
_CHARSET_ALIASES = {
    **dict.fromkeys(["gb2312", "gbk", "x-gbk", "cp936", "ms936", "windows-936", "euc-cn", "x-euc-cn", "csgb2312", "gb_2312-80", "gb_2312", "iso-ir-58", "chinese", "gb18030"], "gb18030"),
    **dict.fromkeys(["big5", "big5-hkscs", "cn-big5", "csbig5", "x-x-big5", "big5hkscs", "cp950"], "big5hkscs"),
    **dict.fromkeys(["iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "latin-1", "l1", "us-ascii", "ascii", "windows-1252", "cp1252", "x-cp1252", "cp819", "ibm819"], "cp1252"),
    **dict.fromkeys(["shift_jis", "shift-jis", "sjis", "x-sjis", "ms_kanji", "windows-31j", "csshiftjis", "cp932"], "cp932"),
    **dict.fromkeys(["euc-kr", "ks_c_5601-1987", "ksc5601", "korean", "windows-949", "cp949"], "cp949"),
    **dict.fromkeys(["tis-620", "iso-8859-11", "windows-874", "cp874"], "cp874"),
    **dict.fromkeys(["x-mac-cyrillic", "x-mac-ukrainian"], "mac-cyrillic"),
    **dict.fromkeys(["macintosh", "x-mac-roman", "mac"], "mac-roman"),
    **dict.fromkeys(["iso-8859-9", "latin5", "windows-1254"], "cp1254"),
    **dict.fromkeys(["utf8", "utf-8", "unicode-1-1-utf-8", "x-unicode20utf8"], "utf-8"),
}

# The encodings of the WHATWG Encoding standard, as Python names them: a declared or detected label
# must land on one of these. It keeps out what Python can "decode" but no page is written in (rot13,
# base64, unicode_escape) and UTF-7, which browsers refuse.
WEB_CODECS = {"utf-8", "utf-16-le", "utf-16-be", "cp866", "koi8-r", "koi8-u", "mac-roman", "mac-cyrillic", "cp874",
              "gb18030", "big5hkscs", "euc_jp", "iso2022_jp", "cp932", "cp949",
              *(f"iso8859-{i}" for i in (2, 3, 4, 5, 6, 7, 8, 10, 13, 14, 15, 16)), *(f"cp{i}" for i in range(1250, 1259))}

_META_CHARSET = re.compile(rb"""<meta[^>]{0,512}?charset\s*=\s*["']?\s*([\w.:\-]+)|<\?xml[^>]{0,200}?encoding\s*=\s*["']([\w.:\-]+)""", re.I)
_BAD_CHARS = re.compile(r"[\ufffd\x00-\x08\x0b\x0e-\x1f]")


def codec_name(label: str | None) -> str | None:
    """A Python codec for a charset label, mapped as browsers do; None when unknown."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    label = _CHARSET_ALIASES.get(label, label)
    if label in ("utf-16", "utf-16le", "utf-16be"):  # a page declaring UTF-16 in ASCII bytes is not UTF-16
        return None
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    return name if name in WEB_CODECS else None


def meta_charset(body: bytes) -> str | None:
    """The charset of a `<meta charset>`, `<meta http-equiv=Content-Type>` or XML declaration in the
    first 8 KiB (longer than HTML5's 1 KiB prescan: Chinese pages often put long scripts first)."""
    match = _META_CHARSET.search(body[:8192])
    if not match:
        return None
    return (match.group(1) or match.group(2)).decode("ascii", "replace")


def _strict(body: bytes, codec: str) -> str | None:
    """Decodes with no error allowed, except an incomplete character at the very end (crawlers cut
    pages at a byte limit, often inside a multibyte character)."""
    try:
        return codecs.getincrementaldecoder(codec)("strict").decode(body, final=False)
    except (UnicodeDecodeError, LookupError):
        return None


def decode_html(body: bytes, declared: str | None, sniff_meta: bool = True) -> tuple[str, str, float]:
    """(text, codec, share of bad characters) for a page's bytes.

    Order: a byte-order mark; then UTF-8 when the bytes are valid UTF-8 (valid multibyte UTF-8 by
    accident is vanishingly rare, while pages declaring latin-1 or gb2312 but serving UTF-8 are
    common); then the HTTP Content-Type charset; then `<meta charset>`; then detection (resiliparse's
    uchardet-based detector). The first that decodes without error wins. If none does, the one with
    the fewest replacement characters is used, errors replaced by U+FFFD; the caller rejects the page
    when bad characters pass BAD_CHAR_SHARE.
    """
    for bom, codec in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if body.startswith(bom):
            text = body[len(bom):].decode(codec, "replace")
            return text, codec, _bad_share(text)
    if body.isascii():
        text = body.decode("ascii")
        return text, "utf-8", _bad_share(text)
    def candidates():  # lazily: detection costs more than the rest, and most pages are UTF-8
        yield "utf-8"
        yield codec_name(declared)
        if sniff_meta:
            yield codec_name(meta_charset(body))
        yield _detected(body)

    tried = []
    for codec in candidates():
        if codec is None or codec in tried:
            continue
        tried.append(codec)
        text = _strict(body, codec)
        if text is not None:
            return text, codec, _bad_share(text)
    best = min(((body.decode(c, "replace"), c) for c in tried), key=lambda tc: tc[0].count("\ufffd"))
    return best[0], best[1], _bad_share(best[0])


def _detected(body: bytes) -> str | None:
    from resiliparse.parse.encoding import detect_encoding

    return codec_name(detect_encoding(body))


def _bad_share(text: str) -> float:
    sample = text[:16384]  # binary data shows within the first few kilobytes
    return len(_BAD_CHARS.findall(sample)) / max(1, len(sample))


# Elements that are void or close themselves implicitly, so their start tags add no depth.
_FLAT_ELEMENTS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr", "param",
                  "keygen", "p", "li", "td", "th", "tr", "dt", "dd", "option", "optgroup", "rb", "rt", "rp", "colgroup",
                  "tbody", "thead", "tfoot", "!doctype"}
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)")


def nesting_depth(html: str) -> int:
    """An upper estimate of element nesting depth, from start and end tags (linear time).

    resiliparse's parser and main-content pass take time quadratic in depth (8,000 nested `<div>`s:
    1.4 s; 100,000: minutes), so a hostile or broken page could stall a worker. Real pages nest a few
    hundred deep at most (browsers stop nesting at 512)."""
    depth = deepest = 0
    for match in _TAG.finditer(html):
        name = match.group(2).lower()
        if name in _FLAT_ELEMENTS:
            continue
        if match.group(1):
            depth = max(0, depth - 1)
        else:
            depth += 1
            deepest = max(deepest, depth)
    return deepest


def extract_text(html: str) -> str:
    """Main text of a page: resiliparse with boilerplate removal (navigation, footers, sidebars)."""
    from resiliparse.extract.html2text import extract_plain_text

    return extract_plain_text(html, main_content=True).strip().lstrip("\ufeff").strip()


# --------------------------------------------------------------------------------------------------
# Records to documents


@dataclass
class _Outcome:
    doc: dict | None = None
    reject: dict | None = None
    skipped: str | None = None


def record_to_doc(record: Record, path: str, relpath: str, spec: InputSpec) -> _Outcome:
    """One record: a document, a reject, or the kind it is skipped as."""
    if record.type == "conversion":
        content_type = record.headers.get("content-type")
        text, codec, bad = decode_html(record.block or b"", header_charset(content_type), sniff_meta=False)
        return _finish(record, path, relpath, spec, text.strip(), codec, bad, source_text=text)
    if record.type != "response":
        return _Outcome(skipped=record.type)
    block = record.block or b""
    if not block.startswith(b"HTTP/"):
        if media_type(record.headers.get("content-type")).startswith("application/http"):
            return _Outcome(reject=_reject(record, path, relpath, spec, "warc-undecodable", "no HTTP status line", block))
        return _Outcome(skipped="response-non-http")  # dns:, ftp: and other non-HTTP captures
    try:
        response = parse_http(block)
    except HttpError as err:
        return _Outcome(reject=_reject(record, path, relpath, spec, "warc-undecodable", str(err), block))
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
        return _Outcome(reject=_reject(record, path, relpath, spec, "warc-undecodable", str(err), response.body))
    html, codec, bad = decode_html(body, header_charset(response.headers.get("content-type")))
    if bad > BAD_CHAR_SHARE:
        return _Outcome(reject=_reject(record, path, relpath, spec, "warc-undecodable", f"{bad:.0%} of characters are replacement or control characters after decoding as {codec} (binary data?)", html))
    if html.count("<") > MAX_DEPTH:  # only pages with that many tags can be that deep
        depth = nesting_depth(html)
        if depth > MAX_DEPTH:
            return _Outcome(reject=_reject(record, path, relpath, spec, "warc-extraction-failed", f"elements nested about {depth} deep (over {MAX_DEPTH}); extraction time grows with the square of depth", html))
    try:
        text = extract_text(html)
    except Exception as err:  # the extractor is C++ and robust; this keeps one odd page from ending the file
        return _Outcome(reject=_reject(record, path, relpath, spec, "warc-extraction-failed", f"{type(err).__name__}: {err}", html))
    return _finish(record, path, relpath, spec, text, codec, 0.0, source_text=html)


def _finish(record: Record, path: str, relpath: str, spec: InputSpec, text: str, codec: str, bad: float, source_text: str) -> _Outcome:
    if bad > BAD_CHAR_SHARE:
        return _Outcome(reject=_reject(record, path, relpath, spec, "warc-undecodable", f"{bad:.0%} of characters are replacement or control characters after decoding as {codec}", source_text))
    if not text:
        return _Outcome(reject=_reject(record, path, relpath, spec, "warc-empty-extraction", f"no text in {len(source_text)} characters of {'HTML' if record.type == 'response' else 'content'}", source_text))
    return _Outcome(doc={
        "id": make_id(spec.source, relpath, record.number),
        "text": text,
        "url": clean_uri(record.headers.get("warc-target-uri")),
        "source": spec.source,
        "lang": spec.lang,
        "fetch_date": record.headers.get("warc-date"),
        "warc_record_id": clean_uri(record.headers.get("warc-record-id")),
        "charset": codec,
    })


def _mime_key(mime: str) -> str:
    mime = re.sub(r"[^a-z0-9.+/\-]", "", mime)[:60]
    return mime or "none"


def _reject(record: Record, path: str, relpath: str, spec: InputSpec, reason: str, why: str, content: bytes | str) -> dict:
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


def read_warc_chunks(path: str, relpath: str, spec: InputSpec, rows_per_shard: int) -> Iterator[Chunk]:
    """Reads a WARC or WET file (plain or gzip, one or many members) as chunks of documents."""
    docs: list[dict] = []
    rejects: list[dict] = []
    skipped: Counter = Counter()
    kept = 0
    last = -1

    def flush() -> Chunk:
        return Chunk(pa.Table.from_pylist(docs, schema=SCHEMA), rejects, dict(sorted(skipped.items())))

    try:
        stream = _Stream(path)
    except OSError as err:
        raise InputFileError(f"{path}: cannot open ({err})") from None
    try:
        for record in iter_records(stream):
            last = record.number
            outcome = record_to_doc(record, path, relpath, spec)
            if outcome.doc is not None:
                docs.append(outcome.doc)
                kept += 1
            elif outcome.reject is not None:
                rejects.append(outcome.reject)
            else:
                key = outcome.skipped
                if key.startswith("response-non-html:") and key not in skipped and sum(k.startswith("response-non-html:") for k in skipped) >= MAX_MIME_KEYS:
                    key = "response-non-html:other"
                skipped[key] += 1
            if len(docs) >= rows_per_shard:
                yield flush()
                docs, rejects, skipped = [], [], Counter()
    except WarcDamage as err:
        if docs or rejects or skipped:
            yield flush()
        after = f"after record {last}" if last >= 0 else "before the first record"
        raise InputFileError(f"{path}: WARC stream is damaged {after}: {err}; the {kept} documents before it were kept") from None
    finally:
        stream.close()
    if docs or rejects or skipped:
        yield flush()
