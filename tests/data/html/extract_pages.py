"""Writes the HTML reader's test pages from the bundled sample's WARC files (data/sample/web/).

Run from the repository root: `python tests/data/html/extract_pages.py`. Each page is the HTTP body of
one WARC `response` record, byte for byte (the HTTP headers dropped, so the reader finds the charset
in the page itself, as it must for saved files); README.md names the records.
"""

import gzip
from pathlib import Path

from stages.ingest.web.http import decode_transfer, parse_http
from stages.ingest.web.records import WarcStream, iter_records

REPO = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
WEB = REPO / "data" / "sample" / "web"
CC = WEB / "cc-main-2020-34-excerpt.warc.gz"
DOLMA = WEB / "dolma-crawl-sample-0000.warc.gz"
DOLMA_1 = WEB / "dolma-crawl-sample-0001.warc.gz"

PAGES = [  # (WARC file, record number, output file, gzip it)
    (DOLMA, 6, "soldaini.html", False),  # https://soldaini.net/, UTF-8
    (CC, 5, "01spb-company.html.gz", True),  # http://01spb.ru/company/, windows-1251 in <meta> only
    (DOLMA_1, 24, "pages/ccbot.htm", False),  # https://commoncrawl.org/ccbot, no sidecar URL
    (CC, 14, "pages/041696-list.html", False),  # http://041696.com/15477/list_6_4.html, gbk in <meta> only
]
RESOURCE = (DOLMA, 47, "wget-log.html")  # wget's log (a plain-text `resource` record) under an .html name


def record_blocks(path: Path, numbers: set[int]) -> dict[int, bytes]:
    with WarcStream(str(path)) as stream:
        return {r.number: r.block for r in iter_records(stream, want_block=lambda _: True) if r.number in numbers}


def main() -> None:
    for warc, number, name, compress in PAGES:
        body = decode_transfer(parse_http(record_blocks(warc, {number})[number]))
        out = HERE / name
        out.parent.mkdir(exist_ok=True)
        out.write_bytes(gzip.compress(body, mtime=0) if compress else body)
    warc, number, name = RESOURCE
    (HERE / name).write_bytes(record_blocks(warc, {number})[number])
    (HERE / "binary.html").write_bytes(CC.read_bytes()[:4096])  # gzip-compressed bytes: binary, not text
    (HERE / "empty.html").write_bytes(b"")


if __name__ == "__main__":
    main()
