"""HTTP responses as WARC stores them: status, headers and body, and undoing transfer encodings."""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

from stages.ingest.web.records import MAX_BLOCK_BYTES

HTML_TYPES = {"text/html", "application/xhtml+xml", "application/vnd.wap.xhtml+xml"}
GENERIC_TYPES = {"", "text/plain", "application/octet-stream", "unknown/unknown", "application/unknown"}


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
    body = block[end + (4 if block[end : end + 4] == b"\r\n\r\n" else 2) :]
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
        out.append(body[eol + 1 : eol + 1 + size])
        pos = eol + 1 + size
        if body[pos : pos + 2] == b"\r\n":
            pos += 2
        elif body[pos : pos + 1] == b"\n":
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
