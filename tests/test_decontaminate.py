"""decontaminate: benchmark items planted in real raw inputs are found and dropped (or cut out), real
documents are left alone, and the stage keeps the contract (conservation, same bytes for any worker
count, rerun, a changed benchmark redoes it)."""

from __future__ import annotations

import gzip
import io
import json
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import yaml
import zstandard
from conftest import LABELLED, SAMPLE, write_config
from rich.console import Console

from pipeline.config import ConfigError, load_config
from pipeline.layout import read_docs, read_rejects, read_removed, read_sidecars
from pipeline.runner import PipelineError, Runner
from pipeline.stats import print_funnel
from pipeline.storage import Storage
from stages.decontaminate.grams import batch_ngrams, chinese_mask, located_ngrams
from stages.decontaminate.index import BenchmarkError, build_index, read_texts, write_index
from stages.decontaminate.stage import Decontaminate, DecontaminateConfig
from stages.registry import STAGES

DATA = Path(__file__).parent / "data" / "decontaminate"
BENCH_EN = DATA / "wikitext2-paragraphs.jsonl.gz"  # English Wikipedia paragraphs (CC BY-SA), see README
BENCH_ZH = DATA / "drcd-paragraphs.jsonl.gz"  # Chinese Wikipedia paragraphs, traditional script (CC BY-SA)
STAGE = "02_decontaminate"


def _jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _zst_jsonl(path: Path, limit: int) -> list[dict]:
    with zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True) as raw:
        lines = io.TextIOWrapper(raw, encoding="utf-8")
        return [json.loads(line) for line, _ in zip(lines, range(limit), strict=False)]


def _write(path: Path, rows: list[dict], extra_lines: tuple[str, ...] = ()) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        for line in extra_lines:
            f.write(line + "\n")
    return path


def _benchmarks(en=BENCH_EN, zh=BENCH_ZH) -> list[dict]:
    return [
        {"name": "wikitext2", "path": str(en), "text_field": "text"},
        {"name": "drcd", "path": str(zh), "text_field": "text"},
    ]


@pytest.fixture(scope="module")
def planted_inputs(tmp_path_factory) -> list[dict]:
    """Real English (CCNet) and Chinese (Wikipedia) documents, with 100 English and 30 Chinese benchmark
    paragraphs planted among them as documents of their own, and a line with a lone surrogate escape."""
    tmp = tmp_path_factory.mktemp("planted")
    en_real = [
        {"id": f"ccnet-{i}", "text": r["raw_content"] if "raw_content" in r else r["text"], "origin": "real"}
        for i, r in enumerate(_jsonl(SAMPLE / "en" / "ccnet-head.jsonl"))
    ]
    en_bench = _jsonl(BENCH_EN)[:100]
    en_rows = list(en_real)
    for i, item in enumerate(en_bench):  # interleaved, so planted documents land in every shard
        plant = {"id": f"planted-{item['id']}", "text": item["text"], "origin": "wikitext2"}
        en_rows.insert(min(len(en_rows), 2 * i + 1), plant)
    zh_real = [
        {"id": f"zhwiki-{i}", "text": r["text"], "origin": "real"}
        for i, r in enumerate(_zst_jsonl(SAMPLE / "zh" / "wikipedia.jsonl.zst", 150))
    ]
    zh_rows = zh_real + [
        {"id": f"planted-{item['id']}", "text": item["text"], "origin": "drcd"} for item in _jsonl(BENCH_ZH)[:30]
    ]
    surrogate = '{"id": "surrogate", "text": "lone \\ud800 surrogate escape", "origin": "real"}'
    return [
        {"path": str(_write(tmp / "en.jsonl", en_rows, (surrogate,))), "source": "en-raw", "lang": "en"},
        {"path": str(_write(tmp / "zh.jsonl", zh_rows)), "source": "zh-raw", "lang": "zh"},
    ]


def _run(tmp_path: Path, inputs: list[dict], stage: dict, workers: int | None = None) -> tuple[Storage, list]:
    stages = [{"name": "normalize"}, {"name": "decontaminate", **stage}]
    config = write_config(
        tmp_path, inputs, stages, ingest={"rows_per_shard": 60}, **({"ray": {"workers": workers}} if workers else {})
    )
    reports = Runner(load_config(config, STAGES), progress=False).run_all()
    return Storage(str(tmp_path / "out")), reports


def test_planted_benchmark_documents_are_all_dropped_and_nothing_else(ray_local, tmp_path, planted_inputs):
    """All 130 planted items go with `contaminated:<their benchmark>`; no real document is touched; hits
    show in the sidecars, the stage report and `winnow stats`."""
    storage, _ = _run(tmp_path, planted_inputs, {"benchmarks": _benchmarks()})
    rejects = read_rejects(storage, ("stage", "reason", "origin", "id"))
    mine = rejects.filter(pa.compute.equal(rejects.column("stage"), "decontaminate")).to_pylist()
    assert sorted(r["origin"] for r in mine) == ["drcd"] * 30 + ["wikitext2"] * 100
    assert all(r["reason"] == f"contaminated:{r['origin']}" for r in mine)
    kept = read_docs(storage, STAGE, ["origin"]).column("origin").to_pylist()
    before = read_docs(storage, "01_normalize", ["origin"]).column("origin").to_pylist()
    assert set(kept) == {"real"} and len(kept) == before.count("real")  # nothing real dropped
    sidecars = read_sidecars(storage, STAGE)
    assert len(sidecars) >= 3
    assert sum(s["rows_in"] for s in sidecars) == sum(s["rows_out"] + s["rows_rejected"] for s in sidecars)
    chars = [s["chars"] for s in sidecars]
    assert sum(c["in"] for c in chars) == sum(c["out"] + c.get("rejected", 0) for c in chars)
    assert not any(c.get("removed") for c in chars)
    report = json.loads((tmp_path / "out" / STAGE / "_decontaminate.json").read_text())
    per = report["benchmarks"]
    assert per["wikitext2"]["documents_hit"] == 100 and per["drcd"]["documents_hit"] == 30
    assert per["wikitext2"]["items"] == len(_jsonl(BENCH_EN)) and per["drcd"]["ngrams_indexed"] > 0
    console = Console(record=True, width=250)
    print_funnel(str(tmp_path / "out"), console)
    shown = console.export_text()
    assert "contaminated:wikitext2: 100" in shown and "contaminated:drcd: 30" in shown
    details = read_rejects(storage, ("stage", "detail")).to_pylist()  # the surrogate line: an ingest reject, not lost
    assert [d["stage"] for d in details if "surrogate" in (d["detail"] or "")] == ["ingest"]


def _embedded(tmp: Path) -> tuple[list[dict], dict[str, str]]:
    """Real documents each with a benchmark paragraph pasted between two of their own paragraphs."""
    en_real = [r.get("raw_content", r.get("text")) for r in _jsonl(SAMPLE / "en" / "ccnet-head.jsonl")]
    zh_real = [r["text"] for r in _zst_jsonl(SAMPLE / "zh" / "wikipedia.jsonl.zst", 300)]
    en_items, zh_items = _jsonl(BENCH_EN)[200:205], _jsonl(BENCH_ZH)[100:105]
    rows, expected = [], {}
    for lang, docs, items in (("en", en_real, en_items), ("zh", zh_real, zh_items)):
        halves = [_halves(text) for text in docs]
        for i, ((head, tail), item) in enumerate(zip([h for h in halves if h][:5], items, strict=True)):
            doc_id = f"{lang}-embed-{i}"
            rows.append({"id": doc_id, "text": f"{head}\n\n{item['text']}\n\n{tail}", "lang": lang})
            expected[doc_id] = item["text"]
    return rows, expected


def _halves(text: str) -> tuple[str, str] | None:
    """The document split at the line break (or, for one-line Chinese text, the 。) nearest its middle,
    when both halves have 100+ characters."""
    text = text.strip()
    breaks = [i for i, ch in enumerate(text) if ch == "\n"] or [i + 1 for i, ch in enumerate(text) if ch == "。"]
    if not breaks:
        return None
    cut = min(breaks, key=lambda i: abs(i - len(text) // 2))
    head, tail = text[:cut].strip(), text[cut:].strip()
    return (head, tail) if len(head) >= 100 and len(tail) >= 100 else None


def test_remove_spans_cuts_the_planted_paragraph_and_keeps_the_rest(ray_local, tmp_path):
    """remove_spans: the pasted paragraph goes (with its separators) to removed/ as contaminated:<name>;
    the document's own text stays; characters in = out + rejected + removed per shard."""
    rows, expected = _embedded(tmp_path)
    inputs = [{"path": str(_write(tmp_path / "embedded.jsonl", rows)), "source": "embedded"}]
    storage, _ = _run(tmp_path, inputs, {"benchmarks": _benchmarks(), "mode": "remove_spans", "min_chars": 50})
    docs = read_docs(storage, STAGE, ["id", "text"]).to_pylist()
    assert sorted(d["id"] for d in docs) == sorted(expected)  # nothing dropped: enough text is left
    normalized = {d["id"]: d["text"] for d in read_docs(storage, "01_normalize", ["id", "text"]).to_pylist()}
    for doc in docs:
        item, before = expected[doc["id"]], normalized[doc["id"]]
        start, end = before.index(item[:40]), before.index(item[-40:]) + 40
        assert end - start == len(item)
        # exactly the paragraph and the line breaks after it went; the document's own text is all there
        assert doc["text"] == before[:start] + before[end:].lstrip()
    removed = read_removed(storage, ("stage", "reason", "span", "id")).to_pylist()
    by_reason = {r["reason"] for r in removed}
    assert by_reason == {"contaminated:wikitext2", "contaminated:drcd"}
    assert sorted({r["id"] for r in removed}) == sorted(expected)
    for sidecar in read_sidecars(storage, STAGE):
        chars = sidecar["chars"]
        assert chars["in"] == chars["out"] + chars.get("rejected", 0) + chars["removed"] and chars["removed"] > 0
    report = json.loads((tmp_path / "out" / STAGE / "_decontaminate.json").read_text())["benchmarks"]
    assert report["wikitext2"]["documents_cut"] == 5 and report["drcd"]["documents_cut"] == 5
    assert report["wikitext2"]["spans_removed"] >= 5


def test_empty_benchmark_list_keeps_everything_and_builds_nothing(ray_local, tmp_path, planted_inputs):
    storage, _ = _run(tmp_path, planted_inputs, {"benchmarks": []})
    assert read_docs(storage, STAGE, ["id"]).num_rows == read_docs(storage, "01_normalize", ["id"]).num_rows
    assert not (tmp_path / "out" / STAGE / "_decontaminate.json").exists()
    assert not (tmp_path / "out" / STAGE / "rejects").exists()


def test_bad_benchmark_files_are_named(tmp_path):
    """A missing file fails at load; a file without the field, or an unreadable one, when the index is built;
    each message names the file."""
    missing = tmp_path / "nope.jsonl"
    config = write_config(
        tmp_path,
        [{"path": str(SAMPLE / "en" / "ccnet-head.jsonl"), "source": "x"}],
        [{"name": "decontaminate", "benchmarks": [{"name": "b", "path": str(missing)}]}],
    )
    with pytest.raises(ConfigError, match=str(missing)):
        load_config(config, STAGES)
    no_field = _write(tmp_path / "nofield.jsonl", [{"question": "what?"}])
    with pytest.raises(BenchmarkError, match=f"{no_field} line 1 has no field 'text'"):
        read_texts("b", str(no_field), "text")
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(BENCH_EN.read_bytes()[:5000])
    with pytest.raises(BenchmarkError, match=str(broken)):
        read_texts("b", str(broken), "text")
    table = pa.table({"question": ["a", "b"]})
    pq.write_table(table, tmp_path / "q.parquet")
    with pytest.raises(BenchmarkError, match=f"{tmp_path / 'q.parquet'} has no column 'text'"):
        read_texts("b", str(tmp_path / "q.parquet"), "text")


def test_parquet_csv_glob_and_list_give_the_same_index(tmp_path):
    items = _jsonl(BENCH_EN)
    table = pa.table({"passage": [r["text"] for r in items]})
    pq.write_table(table.slice(0, 150), tmp_path / "part-0.parquet")
    pq.write_table(table.slice(150), tmp_path / "part-1.parquet")
    pacsv.write_csv(table, tmp_path / "all.csv")
    as_jsonl = DecontaminateConfig(benchmarks=[{"name": "b", "path": str(BENCH_EN)}])
    as_glob = DecontaminateConfig(
        benchmarks=[{"name": "b", "path": str(tmp_path / "part-*.parquet"), "text_field": "passage"}]
    )
    as_list = DecontaminateConfig(
        benchmarks=[{"name": "b", "path": [str(tmp_path / "all.csv")], "text_field": "passage"}]
    )
    built = [build_index(c.benchmarks, ngram=13, zh_ngram=20) for c in (as_jsonl, as_glob, as_list)]
    assert built[0][0].num_rows > 10_000
    assert built[0][0].equals(built[1][0]) and built[0][0].equals(built[2][0])
    assert built[1][2][0].files == 2


def test_each_located_range_hashes_to_its_ngram_on_real_mixed_text():
    """The span path cuts text[start:end] for a matched n-gram: that range, hashed alone, must be the same
    n-gram, or the wrong text would go. English, Chinese, tweets with emoji and mixed scripts."""
    texts = [r["text"] for r in _jsonl(BENCH_ZH)[:20]] + [
        r.get("raw_content", r.get("text")) for r in _jsonl(SAMPLE / "en" / "ccnet-head.jsonl")[:20]
    ]
    tweets = pq.read_table(LABELLED / "en" / "tweets.parquet").column("text").to_pylist()[:200]
    texts += tweets + [
        "İstanbul ÇAĞ straße ΟΔΥΣΣΕΥΣ 東京タワー Ωμέγα " * 3,
        "",
        "...!!!",
        "中文English混合12345字符" * 4,
    ]
    array = pa.array(texts, pa.large_string())
    zh = chinese_mask(array, None)
    assert zh[:20].all() and not zh[20:40].any()
    grams = batch_ngrams(array, zh, ngram=13, zh_ngram=20)
    rng = np.random.default_rng(0)
    pieces, expected, chinese, checked_short = [], [], [], 0
    for i, text in enumerate(texts):
        located = located_ngrams(text, bool(zh[i]), ngram=13, zh_ngram=20)
        assert np.array_equal(located.hashes, grams.hashes[grams.doc == i])
        assert all(0 <= s < e <= len(text) for s, e in zip(located.start, located.end, strict=True))
        for j in rng.choice(len(located.hashes), size=min(10, len(located.hashes)), replace=False):
            pieces.append(text[located.start[j] : located.end[j]])
            expected.append(located.hashes[j])
            chinese.append(bool(zh[i]))
        checked_short += len(located.hashes) == 1
    alone = batch_ngrams(pa.array(pieces, pa.large_string()), np.array(chinese), ngram=13, zh_ngram=20)
    assert alone.counts().tolist() == [1] * len(pieces)
    assert alone.hashes.tolist() == [int(h) for h in expected]
    assert len(pieces) > 1000 and checked_short > 10  # long documents and short tweets both checked


@pytest.fixture(scope="module")
def loaded_stage(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("index")
    config = DecontaminateConfig(benchmarks=_benchmarks(), mode="remove_spans")
    ngrams, items, _ = build_index(config.benchmarks, ngram=13, zh_ngram=20)
    storage = Storage(str(tmp))
    write_index(storage, storage.path("index"), ngrams, items)
    return config, str(tmp), storage.path("index")


def test_bad_documents_in_a_batch(loaded_stage):
    """Empty text, a 50 MB document with a benchmark paragraph at its end, 1 MB lines, mixed scripts: the
    big one is found and cut, the others kept as they are, characters conserve."""
    config, root, folder = loaded_stage
    stage = Decontaminate(config, root, folder)
    real = " ".join(r.get("raw_content", r.get("text")) for r in _jsonl(SAMPLE / "en" / "ccnet-head.jsonl"))
    item = _jsonl(BENCH_EN)[250]["text"]
    big = (real * (50_000_000 // len(real) + 1))[:50_000_000] + "\n" + item
    line = ("x" * 1_000_000 + "\n") * 2
    texts = ["", big, line, "中文English混合 " * 1000, item]
    table = pa.table(
        {
            "id": [str(i) for i in range(5)],
            "text": pa.array(texts, pa.large_string()),
            "lang": ["en", "en", "en", None, "en"],
            "source": ["s"] * 5,
        }
    )
    started = time.perf_counter()
    out = stage(table)
    assert time.perf_counter() - started < 120
    assert out.keep.tolist() == [True, True, True, True, False]  # the bare item is too short once cut: dropped
    assert out.reasons.to_pylist()[4] == "contaminated:wikitext2"
    assert out.table.column("text")[1].as_py() == big[: -len(item)]  # the paragraph went (the newline stays)
    assert [out.table.column("text")[i].as_py() for i in (0, 2, 3)] == [texts[i] for i in (0, 2, 3)]
    removed = sum(len(s) for s in out.removed.column("span").to_pylist())
    kept = sum(len(t) for t, k in zip(out.table.column("text").to_pylist(), out.keep, strict=True) if k)
    assert sum(len(t) for t in texts) == kept + len(item) + removed


def test_same_bytes_for_one_and_two_workers_rerun_and_changed_benchmark(ray_local, tmp_path, planted_inputs):
    bench = tmp_path / "bench.jsonl"
    _write(bench, _jsonl(BENCH_EN)[:100])
    stage = {"benchmarks": [{"name": "wikitext2", "path": str(bench)}], "mode": "remove_spans"}
    outputs = []
    for workers in (1, 2):
        where = tmp_path / f"w{workers}"
        where.mkdir()
        _run(where, planted_inputs, stage, workers=workers)
        folder = where / "out" / STAGE
        outputs.append({p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*.parquet"))})
    assert outputs[0] == outputs[1] and len(outputs[0]) >= 3
    where = tmp_path / "w1"
    config = where / "pipeline.yaml"
    again = Runner(load_config(config, STAGES), progress=False).run_all()
    assert all(r.ran == 0 for r in again)
    _write(bench, _jsonl(BENCH_EN)[:50])  # half the benchmark: the stage is redone, upstream is not
    redo = Runner(load_config(config, STAGES), progress=False).run_all()
    assert redo[2].ran == redo[2].total > 0 and redo[1].ran == 0
    reasons = read_rejects(Storage(str(where / "out")), ("stage", "reason")).column("reason").to_pylist()
    assert reasons.count("contaminated:wikitext2") == 50
    data = yaml.safe_load(config.read_text())
    data["stages"][1]["benchmarks"][0]["path"] = str(tmp_path / "gone.jsonl")
    config.write_text(yaml.safe_dump(data))
    with pytest.raises((ConfigError, PipelineError), match="gone.jsonl"):
        Runner(load_config(config, STAGES), progress=False).run_all()
