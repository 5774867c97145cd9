"""Ingest of real JSONL/Parquet files: stable ids, carried columns, and bad input turned into rejects
or file errors that name the file and line, never a crash or a silent drop."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import BAD, LABELLED, SAMPLE

from stages.ingest import READERS, InputFileError, InputSpec, detect_format, expand_input, make_id, read_chunks


def _read(path, rows=1000, **spec):
    spec = InputSpec(path=str(path), source=spec.pop("source", "test"), **spec)
    docs, rejects = [], []
    for chunk in read_chunks(str(path), path.name, spec, rows):
        docs.append(chunk.docs)
        rejects.extend(chunk.rejects)
    table = pa.concat_tables(docs, promote_options="permissive") if docs else None
    return table, rejects


def test_real_jsonl_keeps_ids_urls_and_other_fields():
    """An input id is kept as it is; other fields travel along; nested ones as JSON text."""
    table, rejects = _read(SAMPLE / "en" / "ccnet-head.jsonl")
    raw = [json.loads(line) for line in (SAMPLE / "en" / "ccnet-head.jsonl").read_text().splitlines() if line.strip()]
    assert not rejects and table.num_rows == len(raw)
    assert table.column("id").to_pylist() == [str(r["id"]) for r in raw]
    assert table.column("text").to_pylist() == [r["text"] for r in raw]
    extra = [k for k in raw[0] if k not in ("id", "text", "url")]
    assert extra and all(k in table.column_names for k in extra)


def test_generated_ids_are_stable_and_unique_per_position():
    """Ids made from (source, path, row) repeat across runs and differ between rows and sources."""
    a, _ = _read(SAMPLE / "zh" / "wikipedia.jsonl.zst", id_field=None)
    b, _ = _read(SAMPLE / "zh" / "wikipedia.jsonl.zst", id_field=None)
    assert a.column("id").to_pylist() == b.column("id").to_pylist()
    assert len(set(a.column("id").to_pylist())) == a.num_rows
    assert make_id("s1", "f", 0) != make_id("s2", "f", 0) != make_id("s1", "f", 1)


def test_chunks_respect_rows_per_shard():
    """Large files are cut into shards of at most rows_per_shard documents, nothing lost."""
    spec = InputSpec(path="x", source="t", url_field=None)
    chunks = list(read_chunks(str(LABELLED / "en" / "tweets.parquet"), "tweets.parquet", spec, 700))
    total = pq.ParquetFile(LABELLED / "en" / "tweets.parquet").metadata.num_rows
    assert sum(c.docs.num_rows for c in chunks) == total
    assert max(c.docs.num_rows for c in chunks) <= 700


def test_malformed_json_lines_become_rejects_naming_file_and_line():
    """Broken JSON lines are rejects with reason malformed-json and detail `file:line`."""
    table, rejects = _read(BAD / "malformed.jsonl")
    assert table.num_rows == 3
    assert [r["reason"] for r in rejects] == ["malformed-json", "malformed-json"]
    assert rejects[0]["detail"].startswith(f"{BAD / 'malformed.jsonl'}:2:")
    assert rejects[1]["detail"].startswith(f"{BAD / 'malformed.jsonl'}:4:")


def test_invalid_utf8_is_a_reject_with_byte_offset():
    """Undecodable bytes reject that line only; the text is kept (with replacement marks) for inspection."""
    table, rejects = _read(BAD / "invalid_utf8.jsonl")
    assert table.num_rows == 2
    assert len(rejects) == 1 and rejects[0]["reason"] == "invalid-utf8"
    assert ":2: invalid UTF-8 at byte" in rejects[0]["detail"]
    assert "\ufffd" in rejects[0]["text"]


def test_missing_or_non_string_text():
    """No text field, or a number in it, is a reject saying which."""
    table, rejects = _read(BAD / "missing_text.jsonl")
    assert table.num_rows == 1
    assert [r["reason"] for r in rejects] == ["missing-text", "text-not-string"]
    assert ":2: no 'text' field" in rejects[0]["detail"] and ":3: 'text' is int" in rejects[1]["detail"]


def test_empty_file_and_blank_lines():
    """An empty file yields nothing (the runner reports it); blank lines are not documents."""
    table, rejects = _read(BAD / "empty.jsonl")
    assert table is None and rejects == []
    table, rejects = _read(BAD / "blank_lines.jsonl")
    assert not rejects and table.num_rows == sum(
        1 for line in (BAD / "blank_lines.jsonl").read_text().splitlines() if line.strip()
    )


def test_truncated_gzip_keeps_what_was_read_and_names_the_line():
    """A gzip cut short raises a file error naming the last good line, after handing over every
    document read before the damage, even when they do not fill a shard."""
    import gzip

    readable = 0
    with gzip.open(BAD / "truncated.jsonl.gz", "rb") as f:
        try:
            for line in f:
                readable += bool(line.strip()) and line.endswith(b"\n")
        except EOFError:
            pass
    assert readable > 0
    spec = InputSpec(path="x", source="t")
    for rows_per_shard in (2, 1000):
        got = []
        with pytest.raises(
            InputFileError, match=rf"truncated\.jsonl\.gz: compressed stream is damaged after line {readable}\b"
        ):
            for chunk in read_chunks(str(BAD / "truncated.jsonl.gz"), "t", spec, rows_per_shard):
                got.append(chunk.docs.num_rows)
        assert sum(got) == readable


def test_parquet_missing_or_mistyped_text_column(tmp_path):
    """A Parquet file without a usable text column is a clear file error."""
    pq.write_table(pa.table({"content": ["a"]}), tmp_path / "no_text.parquet")
    pq.write_table(pa.table({"text": [1, 2]}), tmp_path / "int_text.parquet")
    (tmp_path / "corrupt.parquet").write_bytes(b"PAR1 this is not parquet")
    spec = InputSpec(path="x", source="t")
    with pytest.raises(InputFileError, match=r"no_text\.parquet: no 'text' column"):
        list(read_chunks(str(tmp_path / "no_text.parquet"), "n", spec, 10))
    with pytest.raises(InputFileError, match=r"int_text\.parquet: column 'text' has type int64"):
        list(read_chunks(str(tmp_path / "int_text.parquet"), "n", spec, 10))
    with pytest.raises(InputFileError, match=r"corrupt\.parquet: not a readable Parquet file"):
        list(read_chunks(str(tmp_path / "corrupt.parquet"), "n", spec, 10))


def test_every_reader_is_reached_by_its_suffixes():
    """Each registered reader claims suffixes no other reader claims, and detect_format sends a file
    with any of them (in any case) to that reader; the formats are the ones InputSpec accepts."""
    claimed = [suffix for reader in READERS.values() for suffix in reader.suffixes]
    assert len(claimed) == len(set(claimed))
    for name, reader in READERS.items():
        assert reader.format == name and reader.suffixes
        for suffix in reader.suffixes:
            assert detect_format(f"dir/file{suffix}") == name
            assert detect_format(f"dir/FILE{suffix.upper()}") == name
    assert set(READERS) | {"auto"} == set(InputSpec.model_fields["format"].annotation.__args__)
    assert detect_format("CC-MAIN-x.warc.wet.gz") == "wet"  # the longest suffix decides


def test_expanding_a_folder_of_mixed_files_keeps_only_inputs(tmp_path):
    """A folder (searched recursively) or a glob gives the files some reader claims, sorted; READMEs,
    licences, URL lists and WAT files are not inputs; a file given by name is taken as it is."""
    inputs = [
        "a.jsonl",
        "b.jsonl.zst",
        "c.parquet",
        "d.warc.gz",
        "e.warc.wet.gz",
        "sub/f.html",
        "sub/g.htm",
        "sub/deeper/h.html.gz",
    ]
    others = ["README.md", "LICENSE", "sub/urls.tsv", "notes.txt", "x.warc.wat.gz", "sub/page.html.orig"]
    for name in inputs + others:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert expand_input(str(tmp_path)) == sorted(str(tmp_path / n) for n in inputs)
    assert expand_input(str(tmp_path / "sub" / "**" / "*")) == sorted(str(tmp_path / n) for n in inputs[5:])
    assert expand_input(str(tmp_path / "README.md")) == [str(tmp_path / "README.md")]
    assert expand_input(str(tmp_path / "missing")) == []
