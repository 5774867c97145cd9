"""WARC/WET ingest on real crawl files: HTML responses become documents with url, fetch date and record
id; Chinese pages in gb2312/gbk come out as real Chinese; damaged files keep what was read and name the
record; odd records (broken HTML, binary junk, non-HTML, errors) are rejects or counted skips, never a
crash or a silent drop. The odd cases are built from the real records, in a temporary folder."""

import gzip
import re
import uuid
import zlib
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest

from stages.ingest import InputFileError, InputSpec, detect_format, make_id, read_chunks
from stages.ingest.web.charset import decode_html
from stages.ingest.web.records import WarcStream, iter_records

WARC = Path(__file__).parent / "data" / "warc"
CC = WARC / "cc-main-2020-34-excerpt.warc.gz"
DOLMA = [WARC / "dolma-crawl-sample-0000.warc.gz", WARC / "dolma-crawl-sample-0001.warc.gz"]
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
MOJIBAKE = re.compile(r"[\u00c0-\u00ff\ufffd]")  # what gbk read as latin-1 (or as utf-8) looks like


def _read(path, rows=1000, source="test", relpath=None):
    spec = InputSpec(path=str(path), source=source)
    docs, rejects, skipped = [], [], Counter()
    for chunk in read_chunks(str(path), relpath or Path(path).name, spec, rows):
        docs.append(chunk.docs)
        rejects.extend(chunk.rejects)
        skipped.update(chunk.skipped)
    table = pa.concat_tables(docs) if docs else None
    return table, rejects, dict(skipped)


def _record(
    block: bytes,
    warc_type="response",
    uri="<http://example.com/>",
    nl=b"\r\n",
    content_type=b"application/http; msgtype=response",
) -> bytes:
    head = [
        b"WARC/1.0",
        b"WARC-Type: " + warc_type.encode(),
        b"WARC-Target-URI: " + uri.encode(),
        b"WARC-Date: 2020-08-08T17:27:41Z",
        b"WARC-Record-ID: <urn:uuid:%s>" % str(uuid.UUID(int=len(block))).encode(),
        b"Content-Type: " + content_type,
        b"Content-Length: %d" % len(block),
        b"",
        b"",
    ]
    return nl.join(head) + block + b"\r\n\r\n"


def _http(body: bytes, content_type=b"text/html", status=b"200 OK", extra=b"") -> bytes:
    return b"HTTP/1.1 " + status + b"\r\nContent-Type: " + content_type + b"\r\n" + extra + b"\r\n" + body


def _real_blocks(path=CC) -> list[bytes]:
    with WarcStream(str(path)) as stream:
        return [r.block for r in iter_records(stream) if r.type == "response"]


def _members(path: Path) -> list[int]:
    """Compressed offsets of the gzip members of a file, found with zlib alone."""
    data, starts, pos = path.read_bytes(), [], 0
    while pos < len(data):
        starts.append(pos)
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        d.decompress(data[pos:])
        pos = len(data) - len(d.unused_data)
    return starts


def test_common_crawl_excerpt_documents_and_skips():
    """The 16 HTML responses of a real CC WARC become documents; its warcinfo, request and metadata records
    are counted as skipped, not rejected; every document has url, fetch date, record id and a stable id."""
    table, rejects, skipped = _read(CC, source="cc")
    assert table.num_rows == 16 and rejects == []
    assert skipped == {"warcinfo": 1, "request": 17, "metadata": 16}
    rows = table.to_pylist()
    assert all(r["url"].startswith("http://") for r in rows)
    assert all(re.fullmatch(r"2020-08-08T\d\d:\d\d:\d\dZ", r["fetch_date"]) for r in rows)
    assert all(re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", r["warc_record_id"]) for r in rows)
    assert rows[0]["id"] == make_id("cc", CC.name, 2)  # record 2: after warcinfo and the request
    again, _, _ = _read(CC, rows=3, source="cc")
    assert again.column("id").to_pylist() == table.column("id").to_pylist()
    assert len(set(table.column("id").to_pylist())) == 16
    assert table.schema.field("text").type == pa.large_string()


def test_chinese_gb2312_and_gbk_pages_decode_to_real_chinese():
    """Pages declared gb2312 (HTTP header) or gbk (only in <meta>) are decoded as GB18030, their superset:
    the text is Chinese, with no replacement characters and no Latin-1 mojibake."""
    table, _, _ = _read(CC)
    rows = {r["url"]: r for r in table.to_pylist()}
    assert rows["http://0760.jxtdw.com/area/sanxiang/"]["charset"] == "gb18030"  # HTTP: charset=gb2312
    assert rows["http://041696.com/15477/list_6_4.html"]["charset"] == "gb18030"  # no HTTP charset, <meta> gbk
    chinese = [r for r in rows.values() if len(CJK.findall(r["text"])) > 0.25 * len(re.sub(r"\s", "", r["text"]))]
    assert len(chinese) >= 10
    gb = [r for r in chinese if r["charset"] == "gb18030"]
    assert len(gb) == 5
    for r in gb:
        assert not MOJIBAKE.search(r["text"]), r["url"]
        assert "\ufffd" not in r["text"]
    assert all("\ufffd" not in r["text"] for r in rows.values())
    russian = rows["http://01spb.ru/company/"]  # windows-1251, declared in the HTTP header
    assert russian["charset"] == "cp1251" and russian["text"].startswith("О компании")


def test_dolma_bracketed_uris_are_cleaned():
    """wget writes `WARC-Target-URI: <https://...>`; the url column has no brackets; 37 English pages in all."""
    total = 0
    for path in DOLMA:
        table, rejects, skipped = _read(path)
        assert rejects == [] and skipped["resource"] == 2 and skipped["warcinfo"] == 1
        urls = table.column("url").to_pylist()
        assert all(u.startswith("https://") and "<" not in u and ">" not in u for u in urls)
        assert all(d.startswith("2024-04-25T") for d in table.column("fetch_date").to_pylist())
        total += table.num_rows
    assert total == 37


def test_charset_detection_order_on_real_pages():
    """Without any declaration a gbk page is detected as GB18030; a wrong HTTP charset loses to the bytes
    (valid UTF-8 is UTF-8, invalid UTF-8 falls through to <meta> and detection); a multibyte character
    cut by the crawler's size limit at the end is not an error."""
    blocks = _real_blocks()
    gbk_block = next(b for b in blocks if b"charset=gbk" in b)
    body = gbk_block.split(b"\r\n\r\n", 1)[1]
    expected = body.decode("gb18030")
    no_meta = re.sub(rb"<meta[^>]*charset[^>]*>", b"", body, flags=re.I)
    text, codec, bad = decode_html(no_meta, None)
    assert codec == "gb18030" and bad == 0 and "\ufffd" not in text
    assert decode_html(body, "utf-8")[1] == "gb18030"  # HTTP lies (utf-8); the meta/detection win
    utf8_body = next(b for b in blocks if b"charset=utf-8" in b.lower()).split(b"\r\n\r\n", 1)[1]
    assert decode_html(utf8_body, "iso-8859-1")[1] == "utf-8"
    text, codec, _ = decode_html(utf8_body.rstrip()[:-1] + "中".encode()[:2], None)
    assert codec == "utf-8" and "\ufffd" not in text
    assert decode_html(body, "gb2312")[0] == expected


def test_single_member_and_uncompressed_files_read_the_same(tmp_path):
    """One gzip member for the whole file, a record per member (as CC writes), or no gzip at all: same documents."""
    raw = gzip.decompress(CC.read_bytes())
    (tmp_path / "one.warc.gz").write_bytes(gzip.compress(raw))
    (tmp_path / "plain.warc").write_bytes(raw)
    reference, _, _ = _read(CC, relpath="x")
    for name in ("one.warc.gz", "plain.warc"):
        table, rejects, skipped = _read(tmp_path / name, relpath="x")
        assert table.equals(reference) and not rejects and skipped["request"] == 17


@pytest.mark.parametrize("rows_per_shard", [2, 1000])
def test_truncated_gzip_keeps_complete_records_and_names_the_damage(tmp_path, rows_per_shard):
    """A WARC cut inside a gzip member hands over every document before it, then fails naming the file,
    the last good record and the byte where the damaged member starts."""
    starts = _members(CC)
    assert len(starts) == 50  # one member per record
    cut_record = 23  # a response; 7 responses (records 2, 5, ..., 20) come before it
    data = CC.read_bytes()
    path = tmp_path / "cut.warc.gz"
    path.write_bytes(data[: starts[cut_record] + 100])
    got = []
    with pytest.raises(
        InputFileError,
        match=rf"cut\.warc\.gz: WARC stream is damaged after record {cut_record - 1}: .*gzip member that starts at byte {starts[cut_record]} \(truncated\); the 7 documents",
    ):
        for chunk in read_chunks(str(path), "cut", InputSpec(path="x", source="t"), rows_per_shard):
            got.append(chunk.docs.num_rows)
    assert sum(got) == 7


def test_truncated_plain_warc_and_cut_record(tmp_path):
    """In an uncompressed WARC a record shorter than its Content-Length is not a document: the error names it."""
    raw = gzip.decompress(CC.read_bytes())
    path = tmp_path / "cut.warc"
    path.write_bytes(raw[:60000])
    table, got = None, []
    with pytest.raises(
        InputFileError,
        match=r"cut\.warc: WARC stream is damaged after record \d+: record (\d+) at byte \d+ is cut short",
    ):
        for chunk in read_chunks(str(path), "cut", InputSpec(path="x", source="t"), 1000):
            got.append(chunk.docs)
    table = pa.concat_tables(got)
    assert table.num_rows >= 1 and all(len(t) > 0 for t in table.column("text").to_pylist())


def test_wet_conversion_records(tmp_path):
    """WET files (conversion records, text/plain, one gzip member each) give one document per record with
    the text as written, in UTF-8 whatever the page's original charset."""
    table, _, _ = _read(CC)
    rows = table.to_pylist()
    members = [
        gzip.compress(
            _record(b"software: winnow test\r\n", warc_type="warcinfo", content_type=b"application/warc-fields")
        )
    ]
    for r in rows:
        members.append(
            gzip.compress(
                _record(r["text"].encode(), warc_type="conversion", uri=r["url"], content_type=b"text/plain")
            )
        )
    path = tmp_path / "CC-MAIN-test.warc.wet.gz"
    path.write_bytes(b"".join(members))
    assert detect_format(str(path)) == "wet"
    wet, rejects, skipped = _read(path)
    assert not rejects and skipped == {"warcinfo": 1}
    assert wet.column("text").to_pylist() == [r["text"] for r in rows]
    assert wet.column("url").to_pylist() == [r["url"] for r in rows]
    assert set(wet.column("charset").to_pylist()) == {"utf-8"}


def test_broken_html_binary_junk_and_odd_records(tmp_path):
    """Broken HTML still yields its text; binary bytes served as HTML, garbage HTTP headers, pages with
    no text and pages nested 50,000 deep (whose extraction would take minutes) are rejects whose detail
    names file and record; images and 404s are skipped and counted; chunked+gzip bodies are decoded;
    bare-LF WARC headers are read."""
    page = next(b for b in _real_blocks(DOLMA[0]) if b"soldaini.net" in b or b"<html" in b)
    page_body = page.split(b"\r\n\r\n", 1)[1]
    half = page_body[: len(page_body) // 2] + b'<div class="unclosed'  # cut mid-document, inside a tag
    junk = CC.read_bytes()[:20000]  # compressed bytes: binary
    gz = gzip.compress(page_body)
    chunked = (
        b"".join(b"%x\r\n%s\r\n" % (len(gz[i : i + 4000]), gz[i : i + 4000]) for i in range(0, len(gz), 4000))
        + b"0\r\n\r\n"
    )
    records = [
        _record(_http(half)),  # 0 broken HTML -> document
        _record(_http(junk)),  # 1 binary junk -> warc-undecodable
        _record(
            _http(b"<html><head><script>var x = 1;</script></head><body></body></html>")
        ),  # 2 -> warc-empty-extraction
        _record(_http(b"\x89PNG\r\n\x1a\n" + junk[:500], content_type=b"image/png")),  # 3 -> skipped
        _record(_http(page_body, status=b"404 Not Found")),  # 4 -> skipped
        _record(b"\x00\x01garbage instead of HTTP\r\n\r\n<html>"),  # 5 -> warc-undecodable
        _record(_http(chunked, extra=b"Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n")),  # 6 -> document
        _record(_http(page_body), uri="<https://lf.example/>", nl=b"\n"),  # 7 -> document
        _record(b"", warc_type="revisit"),  # 8 -> skipped
        _record(
            _http(b"<html><body>" + b"<div>" * 50000 + page_body + b"</div>" * 50000)
        ),  # 9 -> refused: would take minutes
    ]
    path = tmp_path / "odd.warc.gz"
    path.write_bytes(b"".join(gzip.compress(r) for r in records))
    table, rejects, skipped = _read(path)
    assert table.num_rows == 3
    texts = table.column("text").to_pylist()
    assert len(texts[0]) > 50 and texts[1] == texts[2]
    assert table.column("url").to_pylist()[2] == "https://lf.example/"
    assert [r["reason"] for r in rejects] == [
        "warc-undecodable",
        "warc-empty-extraction",
        "warc-undecodable",
        "warc-extraction-failed",
    ]
    assert rejects[0]["detail"].startswith(
        f"{path}: record 1 at byte {len(gzip.compress(records[0]))}: "
    )  # the member's offset
    assert [r["detail"].split(": ")[1].split(" at ")[0] for r in rejects] == [
        "record 1",
        "record 2",
        "record 5",
        "record 9",
    ]
    assert (
        "binary" in rejects[0]["detail"]
        and "no HTTP status line" in rejects[2]["detail"]
        and "nested" in rejects[3]["detail"]
    )
    assert skipped == {"response-non-html:image/png": 1, "response-status-404": 1, "revisit": 1}


def test_files_that_are_not_warc(tmp_path):
    """A gzip file of something else, or a .gz name on plain bytes, fail as a whole with a clear message."""
    (tmp_path / "a.warc.gz").write_bytes(gzip.compress(b'{"text": "a JSON line, not a WARC record"}\n'))
    (tmp_path / "b.warc.gz").write_bytes(b"WARC/1.0\r\nplain bytes with a .gz name\r\n")
    (tmp_path / "c.warc").write_bytes(b"")
    spec = InputSpec(path="x", source="t")
    with pytest.raises(
        InputFileError,
        match=r"a\.warc\.gz: WARC stream is damaged before the first record: record 0 at byte 0: expected a 'WARC/1.x' version line",
    ):
        list(read_chunks(str(tmp_path / "a.warc.gz"), "a", spec, 10))
    with pytest.raises(InputFileError, match=r"b\.warc\.gz: .*bytes that are not gzip at byte 0"):
        list(read_chunks(str(tmp_path / "b.warc.gz"), "b", spec, 10))
    assert list(read_chunks(str(tmp_path / "c.warc"), "c", spec, 10)) == []


def test_format_detection():
    """Web archives are found by extension, Common Crawl's `.warc.wet.gz` included; WAT files are not inputs."""
    assert detect_format("CC-MAIN-x.warc.gz") == "warc" and detect_format("a.warc") == "warc"
    assert detect_format("CC-MAIN-x.warc.wet.gz") == "wet" and detect_format("a.wet") == "wet"
    assert detect_format("CC-MAIN-x.warc.wat.gz") is None


def test_web_archives_through_the_pipeline(tmp_path, ray_local):
    """A folder of WARC files is an input like any other: ingest finds them by extension, writes their
    documents with the extra columns, and normalize runs on them; conservation holds."""
    import pyarrow.parquet as pq
    from conftest import write_config

    from pipeline.runner import Runner
    from pipeline.shards import read_sidecars
    from pipeline.storage import Storage
    from winnow.config import load_config

    config = write_config(tmp_path, [{"path": str(WARC), "source": "web"}], stages=[{"name": "normalize"}])
    Runner(load_config(config), progress=False).run_all()
    out = tmp_path / "out"
    sidecars = read_sidecars(Storage(str(out)), "00_ingest")
    assert len(sidecars) == 3 and all(not sc["errors"] for sc in sidecars)
    assert sum(sc["rows_out"] for sc in sidecars) == 53
    table = pa.concat_tables([pq.read_table(p) for p in sorted((out / "01_normalize").glob("part-*.parquet"))])
    assert table.num_rows == 53
    assert {"fetch_date", "warc_record_id", "charset"} <= set(table.column_names)
