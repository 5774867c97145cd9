"""Normalisation: one canonical text form, without damaging Chinese typography or code."""

import unicodedata

import pyarrow as pa
import pyarrow.parquet as pq
from conftest import LABELLED, SAMPLE

from stages.normalize import Normalize, NormalizeConfig


def _norm(texts, **cfg):
    table = pa.table({"text": pa.array(texts, pa.large_string())})
    return Normalize(NormalizeConfig(**cfg))(table).table.column("text").to_pylist()


def test_fullwidth_letters_and_digits_fold_but_chinese_punctuation_stays():
    """Ｗｉｎｄｏｗｓ１０ becomes Windows10; ，。！ are correct Chinese and stay unless asked."""
    assert _norm(["Ｗｉｎｄｏｗｓ１０很好，对吗？"]) == ["Windows10很好，对吗？"]
    assert _norm(["很好，对吗？"], fullwidth_punctuation=True) == ["很好,对吗?"]


def test_control_characters_and_unicode_spaces():
    """NUL and other controls go, exotic spaces become ASCII, CRLF becomes LF, blank runs shrink."""
    assert _norm(["a\x00b\x07c\u200bd\ufeff"]) == ["abcd"]
    assert _norm(["x\u00a0y\u3000z"]) == ["x y z"]
    assert _norm(["l1\r\nl2\rl3   \n\n\n\n\nl4\t \n"]) == ["l1\nl2\nl3\n\nl4"]


def test_code_indentation_survives():
    """Runs of spaces inside a line are kept: code and tables need them."""
    code = "def f():\n    return  1"
    assert _norm([code]) == [code]


def test_nfc_and_idempotence_on_real_text():
    """On real zh and en documents the output is NFC and normalising twice changes nothing."""
    texts = pq.read_table(LABELLED / "en" / "tweets.parquet", columns=["text"]).column("text").to_pylist()[:2000]
    import json

    import zstandard

    with zstandard.open(SAMPLE / "zh" / "wikipedia.jsonl.zst", "rt", encoding="utf-8") as f:
        texts += [json.loads(line)["text"] for _, line in zip(range(300), f)]
    once = _norm(texts)
    assert all(unicodedata.is_normalized("NFC", t) for t in once)
    assert _norm(once) == once
    assert sum(a != b for a, b in zip(texts, once)) > 0  # real web text does need it


def test_empty_table_keeps_schema():
    """Stages must accept empty batches (empty shards) and keep the schema."""
    table = pa.table({"text": pa.array([], pa.large_string())})
    assert Normalize(NormalizeConfig())(table).table.schema == table.schema
