"""WARC records: a gzip reader that knows where each member starts, and a record parser over it.

Records are read with a small parser of our own (the format is a version line, headers, a blank line
and `Content-Length` bytes), because what a crawl file needs most is exact failure: a file cut short,
a damaged gzip member or bytes that are not a WARC record raise `WarcDamage` naming the record number
and the byte offset, and a record whose block is shorter than its `Content-Length` is never yielded.
"""

from __future__ import annotations

import io
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

MAX_LINE = 64 << 10  # a WARC or HTTP header line longer than this is not a header
MAX_HEADER_BYTES = 256 << 10
MAX_BLOCK_BYTES = 8 << 20  # HTML beyond 8 MiB is cut before extraction (Common Crawl itself cuts at 1 MiB)


class WarcDamage(Exception):
    """The byte stream cannot be read on (truncated, corrupt gzip, not WARC): ends the file."""


class GzipMembers(io.RawIOBase):
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
                raise WarcDamage(
                    f"the file ends inside the gzip member that starts at byte {self._member_start} (truncated)"
                )
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


class WarcStream:
    """Buffered reading with `tell()` in the (decompressed) record stream and a printable place."""

    def __init__(self, path: str):
        self.path = path
        self.gzip = GzipMembers(path) if path.lower().endswith(".gz") else None
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

    def __enter__(self) -> WarcStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class Record:
    number: int  # position in the file, counting every record from 0
    place: str  # `byte N` (of the gzip member for .gz files)
    type: str  # `response`, `conversion`, ... (lowercase)
    headers: dict[str, str]  # WARC headers, names lowercased; the last of repeated names wins
    block: bytes | None  # the content block: read only for records that may be documents, cut at MAX_BLOCK_BYTES


def _may_be_document(warc_type: str) -> bool:
    return warc_type in ("response", "conversion")


def iter_records(stream: WarcStream, want_block=_may_be_document) -> Iterator[Record]:
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


def _read_headers(stream: WarcStream, number: int, place: str) -> dict[str, str]:
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
