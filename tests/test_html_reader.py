"""The HTML folder reader on real saved pages (tests/data/html, cut from the sample's WARC files): one
document per file, text as the WARC reader extracts it, URL from urls.tsv or else the relpath, and
files that hold no page (empty, binary, plain text) as rejects naming the file, never a crash."""

import gzip
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from stages.ingest import InputFileError, InputSpec, detect_format, expand_input, make_id, read_chunks

HTML = Path(__file__).parent / "data" / "html"
WARC = Path(__file__).parent / "data" / "warc"


def _read_folder(folder: Path, source: str = "pages") -> tuple[dict[str, dict], dict[str, dict]]:
    """({relpath: document}, {relpath: reject}) for every input file under folder, as the runner reads them."""
    docs, rejects = {}, {}
    for path in expand_input(str(folder)):
        relpath = str(Path(path).relative_to(folder))
        chunks = list(read_chunks(path, relpath, InputSpec(path=str(folder), source=source), 5000))
        assert len(chunks) == 1, relpath
        rows = chunks[0].docs.to_pylist()
        assert len(rows) + len(chunks[0].rejects) == 1, relpath  # a file is exactly one row
        if rows:
            docs[relpath] = rows[0]
        else:
            rejects[relpath] = chunks[0].rejects[0]
    return docs, rejects


def _warc_documents() -> dict[str, dict]:
    """The WARC reader's documents of the archives the pages were cut from, by URL."""
    out = {}
    for path in sorted(WARC.glob("*.warc.gz")):
        for chunk in read_chunks(str(path), path.name, InputSpec(path=str(path), source="w"), 5000):
            out.update({row["url"]: row for row in chunk.docs.to_pylist()})
    return out


def test_pages_become_documents_with_the_text_of_the_page():
    """Each real page is one document whose main text holds known sentences of the page, decoded from
    the charset its <meta> declares (Russian windows-1251, Chinese gbk), with no navigation chrome lost
    to mojibake and no fetch date (a saved file has none)."""
    docs, _ = _read_folder(HTML)
    assert sorted(docs) == ["01spb-company.html.gz", "pages/041696-list.html", "pages/ccbot.htm", "soldaini.html"]
    soldaini = docs["soldaini.html"]["text"]
    assert "Hello, visitor! 👋 My name is Luca Soldaini and I use they/them pronouns." in soldaini
    russian = docs["01spb-company.html.gz"]
    assert russian["charset"] == "cp1251" and russian["text"].startswith("О компании")
    assert "Стратегия пожарной безопасности" in russian["text"]
    assert (
        "Common Crawl is a non-profit foundation founded with the goal of democratizing access to web information"
        in docs["pages/ccbot.htm"]["text"]
    )
    chinese = docs["pages/041696-list.html"]
    # the post list is the main text (the company's card and footer are sidebar chrome, which trafilatura drops)
    assert chinese["charset"] == "gb18030" and "发布博文香港最快开奖现场直84期" in chinese["text"]
    assert all(d["fetch_date"] is None and d["source"] == "pages" and "\ufffd" not in d["text"] for d in docs.values())


def test_text_is_what_the_warc_reader_extracts_from_the_same_response():
    """Same charset and extraction code as WARC: a page saved to a file gives the text its WARC record gave,
    even where the archive declared the charset in the HTTP header and the file only in <meta>."""
    docs, _ = _read_folder(HTML)
    warc = _warc_documents()
    assert docs["soldaini.html"]["text"] == warc["https://soldaini.net/"]["text"]
    assert docs["01spb-company.html.gz"]["text"] == warc["http://01spb.ru/company/"]["text"]
    assert docs["pages/ccbot.htm"]["text"] == warc["https://commoncrawl.org/ccbot"]["text"]
    assert docs["pages/041696-list.html"]["text"] == warc["http://041696.com/15477/list_6_4.html"]["text"]


def test_url_from_the_sidecar_else_from_the_relative_path():
    """A page listed in the urls.tsv of its own folder gets that URL; a page in a folder without one
    gets its relpath (the path ids see); urls.tsv itself is not an input."""
    docs, _ = _read_folder(HTML)
    assert docs["soldaini.html"]["url"] == "https://soldaini.net/"
    assert docs["01spb-company.html.gz"]["url"] == "http://01spb.ru/company/"
    assert docs["pages/ccbot.htm"]["url"] == "pages/ccbot.htm"
    assert docs["pages/041696-list.html"]["url"] == "pages/041696-list.html"
    assert not any(p.endswith("urls.tsv") for p in expand_input(str(HTML)))


def test_files_without_a_page_are_rejects_naming_the_file():
    """Empty, binary and plain-text files are rejects with a reason and a detail that starts with the
    file's path; the reject keeps the id and URL the document would have had."""
    _, rejects = _read_folder(HTML)
    assert {k: r["reason"] for k, r in rejects.items()} == {
        "empty.html": "html-empty-file",
        "binary.html": "html-undecodable",
        "wget-log.html": "html-not-html",
    }
    for relpath, reject in rejects.items():
        assert reject["detail"].startswith(f"{HTML / relpath}: ")
        assert reject["id"] == make_id("pages", relpath, 0) and reject["url"] == relpath
        assert reject["stage"] == "ingest"
    assert "binary data?" in rejects["binary.html"]["detail"]
    assert rejects["wget-log.html"]["text"].startswith("2024-04-25 09:24:44 URL:https://www.semanticscholar.org/")


def test_ids_are_stable_and_follow_source_and_path():
    """Two reads give the same ids, make_id(source, relpath, 0); another source gives other ids."""
    first, _ = _read_folder(HTML)
    again, _ = _read_folder(HTML)
    other, _ = _read_folder(HTML, source="other")
    assert {k: d["id"] for k, d in first.items()} == {k: d["id"] for k, d in again.items()}
    assert all(d["id"] == make_id("pages", k, 0) for k, d in first.items())
    assert not {d["id"] for d in first.values()} & {d["id"] for d in other.values()}


def test_damaged_gzip_script_only_and_deep_pages(tmp_path):
    """A truncated .html.gz is html-unreadable; a page with no main text is html-empty-extraction; a page
    nested 50,000 deep is refused (html-extraction-failed) rather than stalling the worker."""
    page = (HTML / "soldaini.html").read_bytes()
    (tmp_path / "cut.html.gz").write_bytes(gzip.compress(page)[:3000])
    (tmp_path / "script.html").write_bytes(b"<html><head><script>var x = 1;</script></head><body></body></html>")
    (tmp_path / "deep.html").write_bytes(b"<html><body>" + b"<div>" * 50000 + page + b"</div>" * 50000)
    docs, rejects = _read_folder(tmp_path)
    assert not docs
    assert {k: r["reason"] for k, r in rejects.items()} == {
        "cut.html.gz": "html-unreadable",
        "script.html": "html-empty-extraction",
        "deep.html": "html-extraction-failed",
    }
    assert "nested" in rejects["deep.html"]["detail"]


def test_a_malformed_url_sidecar_is_a_file_error_naming_its_line(tmp_path):
    """A urls.tsv line without a tab cannot be guessed at: reading a page of that folder fails, naming the line."""
    shutil.copy(HTML / "soldaini.html", tmp_path / "soldaini.html")
    (tmp_path / "urls.tsv").write_text("# comment\n\nsoldaini.html https://soldaini.net/\n")
    with pytest.raises(InputFileError, match=r"urls\.tsv:3: expected `<file name><TAB><url>`"):
        list(read_chunks(str(tmp_path / "soldaini.html"), "soldaini.html", InputSpec(path="x", source="t"), 10))
    (tmp_path / "urls.tsv").write_text("soldaini.html\thttps://example.org/fixed\n")  # rewritten: read again
    (chunk,) = read_chunks(str(tmp_path / "soldaini.html"), "soldaini.html", InputSpec(path="x", source="t"), 10)
    assert chunk.docs.column("url").to_pylist() == ["https://example.org/fixed"]


def test_html_suffixes_and_forced_format(tmp_path):
    """.html, .htm, .html.gz are found as html; format: html reads a page whatever its name."""
    assert [detect_format(n) for n in ("a.html", "A.HTM", "a.html.gz", "a.htm.gz")] == ["html"] * 4
    assert detect_format("a.xhtml") is None and detect_format("a.html.bak") is None
    shutil.copy(HTML / "soldaini.html", tmp_path / "page.txt")
    (chunk,) = read_chunks(str(tmp_path / "page.txt"), "page.txt", InputSpec(path="x", source="t", format="html"), 10)
    assert chunk.docs.num_rows == 1 and chunk.docs.schema.field("text").type == pa.large_string()


def test_a_folder_of_pages_through_the_pipeline_is_few_shards(tmp_path, ray_local):
    """On the real runner: small page files are read in groups per folder (not a shard per page); every
    page ends as a document or a reject, with URLs from urls.tsv and the relative path."""
    import shutil

    import pyarrow.parquet as pq
    from conftest import write_config

    from pipeline.layout import read_docs, read_rejects, read_sidecars
    from pipeline.runner import Runner
    from pipeline.storage import Storage
    from winnow.config import load_config

    pages = tmp_path / "pages"
    shutil.copytree(HTML, pages, ignore=shutil.ignore_patterns("*.md", "*.py"))
    files = [p for p in pages.rglob("*") if p.is_file() and p.name != "urls.tsv"]
    config = write_config(tmp_path, [{"path": str(pages), "source": "pages"}], [], ingest={"rows_per_shard": 3})
    Runner(load_config(config), progress=False).run_all()
    storage = Storage(str(tmp_path / "out"))
    sidecars = read_sidecars(storage, "00_ingest")
    assert len(sidecars) == 3  # the top folder's 5 pages in groups of 3, the subfolder's 2 in one
    docs = read_docs(storage, "00_ingest", ["id", "url", "text"])
    rejects = read_rejects(storage, ("reason", "detail"))
    assert docs.num_rows + rejects.num_rows == len(files)
    assert all(
        pq.ParquetFile(tmp_path / "out" / "00_ingest" / o["name"]).metadata.num_rows <= 3
        for sc in sidecars
        for o in sc["outputs"]
    )
    urls = set(docs.column("url").to_pylist())
    assert "https://soldaini.net/" in urls and "pages/ccbot.htm" in urls
    assert {"html-empty-file", "html-undecodable"} <= set(rejects.column("reason").to_pylist())
    again = Runner(load_config(config), progress=False).run_all()
    assert again[0].ran == 0  # a group is resumed like a file
