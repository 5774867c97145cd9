"""line_dedup on real e-mails through the real runner: boilerplate shared by many documents goes, the
documents stay; characters and documents are conserved; the result is the same for any worker count."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import REPO, write_config

from pipeline.layout import read_docs, read_removed, read_sidecars
from pipeline.runner import Runner
from pipeline.storage import Storage
from stages.line_dedup.units import normal_form, split_units
from winnow.config import load_config

DATA = REPO / "tests" / "data" / "line_dedup"
INPUTS = [
    {"path": str(DATA / "en-emails.jsonl.gz"), "source": "en-email", "lang": "en"},
    {"path": str(DATA / "zh-emails.jsonl.gz"), "source": "zh-email", "lang": "zh"},
]


def _texts(path: Path) -> list[str]:
    return [json.loads(line)["text"] for line in gzip.open(path, "rt", encoding="utf-8")]


def _run(tmp: Path, workers: int | None = None, **settings) -> Storage:
    stage = {"name": "line_dedup", **settings}
    config = write_config(tmp, INPUTS, [stage], ingest={"rows_per_shard": 200})
    Runner(load_config(config), workers=workers, progress=False).run_all()
    return Storage(str(tmp / "out"))


def _doc_counts(texts: list[str], zh: bool, min_chars: int = 10) -> Counter:
    counts: Counter = Counter()
    for t in texts:
        counts.update({normal_form(u) for u in split_units(t, "line", zh) if len(normal_form(u)) >= min_chars})
    return counts


@pytest.fixture(scope="module")
def run(tmp_path_factory, ray_local) -> Storage:
    return _run(tmp_path_factory.mktemp("line_dedup"))


def test_units_join_back_to_the_text():
    for text in _texts(DATA / "zh-emails.jsonl.gz")[:100] + _texts(DATA / "en-emails.jsonl.gz")[:100]:
        for unit, zh in (("line", True), ("line", False), ("paragraph", False)):
            assert "".join(split_units(text, unit, zh)) == text
    assert split_units("第一句。第二句！\n转发微博\n", "line", True) == ["第一句。", "第二句！\n", "转发微博\n"]


def test_lines_in_many_documents_are_removed_everywhere_and_nothing_else(run):
    en = _texts(DATA / "en-emails.jsonl.gz")
    counts = _doc_counts(en, zh=False) + _doc_counts(
        _texts(DATA / "zh-emails.jsonl.gz"), zh=True
    )  # counted corpus-wide
    mine = _doc_counts(en, zh=False)
    boiler = {line for line, n in counts.items() if n >= 5 and line in mine}
    rare = {line for line, n in counts.items() if n == 1 and line in mine}
    assert len(boiler) >= 20  # the mailing-list footers of the real set
    removed = read_removed(Storage(run.root), ("id", "span", "reason", "source"))
    removed_en = {
        normal_form(s)
        for s, src in zip(removed.column("span").to_pylist(), removed.column("source").to_pylist())
        if src == "en-email"
    }
    assert removed_en == boiler  # exactly the units seen in >= 5 documents, no other
    out = read_docs(run, "01_line_dedup", ["text", "source"])
    left = _doc_counts(
        [t for t, s in zip(out.column("text").to_pylist(), out.column("source").to_pylist()) if s == "en-email"],
        zh=False,
    )
    assert not boiler & set(left)
    assert len(rare & set(left)) / len(rare) > 0.99  # a line of one document stays (unless its document was dropped)


def test_chinese_sentences_are_units(run):
    zh = _texts(DATA / "zh-emails.jsonl.gz")
    counts = _doc_counts(zh, zh=True) + _doc_counts(_texts(DATA / "en-emails.jsonl.gz"), zh=False)
    boiler = {s for s, n in counts.items() if n >= 5} & set(_doc_counts(zh, zh=True))
    assert boiler
    out = read_docs(run, "01_line_dedup", ["text", "source"])
    left = _doc_counts(
        [t for t, s in zip(out.column("text").to_pylist(), out.column("source").to_pylist()) if s == "zh-email"],
        zh=True,
    )
    assert not boiler & set(left)


def test_documents_and_characters_are_conserved(run):
    sidecars = read_sidecars(run, "01_line_dedup")
    ingested = sum(sc["rows_out"] for sc in read_sidecars(run, "00_ingest"))
    assert sum(sc["rows_out"] + sc["rows_rejected"] for sc in sidecars) == ingested
    removed_chars = 0
    for sc in sidecars:
        c = sc["chars"]
        assert c["in"] == c["out"] + c.get("rejected", 0) + c["removed"]
        removed_chars += c["removed"]
    spans = read_removed(run, ("span",)).column("span").to_pylist()
    assert removed_chars == sum(len(s) for s in spans) > 10_000
    report = json.loads(Path(run.path("01_line_dedup", "_line_dedup.json")).read_text())
    assert report["top"][0]["docs"] >= report["top"][-1]["docs"] >= 5 and report["top"][0]["text"]
    too_short = sum(sc["drops"].get("line-dedup-too-short", 0) for sc in sidecars)
    assert too_short == sum(sc["rows_rejected"] for sc in sidecars)


def test_same_bytes_for_one_and_two_workers_and_rerun_does_nothing(run, tmp_path):
    one = _run(tmp_path, workers=1)
    for name in sorted(Path(run.path("01_line_dedup")).glob("**/*.parquet")):
        twin = Path(one.path("01_line_dedup")) / name.relative_to(run.path("01_line_dedup"))
        assert twin.read_bytes() == name.read_bytes(), name.name
    config = tmp_path / "pipeline.yaml"
    again = Runner(load_config(config), progress=False).run_all()
    assert [r.ran for r in again] == [0, 0]


def test_keep_first_keeps_one_copy(tmp_path, ray_local):
    storage = _run(tmp_path, mode="keep_first", min_unit_chars=20)
    out = read_docs(storage, "01_line_dedup", ["text", "source"])
    left: Counter = Counter()
    for text, source in zip(out.column("text").to_pylist(), out.column("source").to_pylist()):
        left.update(
            {normal_form(u) for u in split_units(text, "line", source == "zh-email") if len(normal_form(u)) >= 20}
        )
    assert left and max(left.values()) == 1  # every long line now in one document at most
    before = _doc_counts(_texts(DATA / "en-emails.jsonl.gz"), zh=False, min_chars=20)
    repeated = {line for line, n in before.items() if n >= 2}
    assert repeated and len(repeated & set(left)) / len(repeated) > 0.9  # ... and its first copy stays


def test_bad_input_empty_after_cleaning_long_lines_and_mixed_scripts(tmp_path, ray_local):
    footer = "To unsubscribe from this list send an e-mail to the list owner today"
    docs = [{"id": f"d{i}", "text": footer + "\n" + footer.upper()} for i in range(6)]  # nothing but boilerplate
    docs.append(
        {
            "id": "long",
            "text": "x" * (1 << 20) + "\n" + footer + "\n" + "一段中文和English混合的正文内容，足够长的一行。" * 5,
        }
    )
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs))
    config = write_config(tmp_path, [{"path": str(path), "source": "bad"}], [{"name": "line_dedup", "min_docs": 5}])
    Runner(load_config(config), progress=False).run_all()
    storage = Storage(str(tmp_path / "out"))
    out = read_docs(storage, "01_line_dedup", ["id", "text"])
    assert out.column("id").to_pylist() == ["long"]
    kept = out.column("text").to_pylist()[0]
    assert footer not in kept and kept.startswith("x" * 1000) and "English混合" in kept
    rejects = pq.read_table(next(Path(storage.path("01_line_dedup", "rejects")).glob("*.parquet")))
    assert set(rejects.column("reason").to_pylist()) == {"line-dedup-too-short"} and rejects.num_rows == 6


def test_default_order_redacts_before_line_dedup_so_address_variants_are_one_line():
    """A spam run of real TREC mails sends "From: Tran Quang Anh <NAME@cernet.edu.cn>" with a new address each
    time: as found no variant is in `min_docs` documents, so line_dedup keeps every one; pii runs first in the
    default pipeline (after heuristics, whose zh-spam-contact rule counts the numbers pii replaces), and the
    redacted line is one line in enough documents to go."""
    import re

    import pyarrow as pa
    import yaml

    from stages.pii.stage import Pii, PiiConfig

    stages = yaml.safe_load((REPO / "configs" / "default.yaml").read_text(encoding="utf-8"))["stages"]
    names = [s["name"] for s in stages]
    assert names.index("heuristics") < names.index("pii") < names.index("line_dedup") < names.index("exact_dedup")
    min_docs = next(s for s in stages if s["name"] == "line_dedup")["min_docs"]
    pii_config = {k: v for k, v in next(s for s in stages if s["name"] == "pii").items() if k != "name"}

    texts = _texts(DATA / "zh-emails.jsonl.gz")
    sender = re.compile(r"^from: tran quang anh")
    before = {line: n for line, n in _doc_counts(texts, zh=True).items() if sender.match(line)}
    assert len(before) >= min_docs and max(before.values()) < min_docs
    table = pa.table({"id": [str(i) for i in range(len(texts))], "text": pa.array(texts, pa.large_string())})
    out = Pii(PiiConfig(**pii_config))(table)
    redacted = [t for t, keep in zip(out.table.column("text").to_pylist(), out.keep, strict=True) if keep]
    after = {line: n for line, n in _doc_counts(redacted, zh=True).items() if sender.match(line)}
    assert list(after.values()) == [len(before)] and max(after.values()) >= min_docs
