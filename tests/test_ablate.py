"""`winnow ablate` through the command line on a real local Ray, on real text: two sides built from the
bundled sample (English CCNet and refined web text, Chinese Wikipedia), with real Wikipedia paragraphs
of the two eval domains (tests/data/decontaminate, CC BY-SA) planted into both sides. Checks the JSON
contract, that decontamination took the planted copies out of both sides before training, that no eval
paragraph reaches a training shard, that seeds give different runs and one tokenizer serves them all."""

from __future__ import annotations

import gzip
import io
import json
import math
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
import zstandard
from conftest import REPO, SAMPLE
from typer.testing import CliRunner

from winnow.cli import app

EVALS = REPO / "tests" / "data" / "decontaminate"
FIELDS = ("name", "raw_loss", "clean_loss", "raw_std", "clean_std", "raw_bpb", "clean_bpb", "docs", "tokens")


def _jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _zh_wikipedia() -> list[dict]:
    raw = zstandard.ZstdDecompressor().stream_reader(open(SAMPLE / "zh" / "wikipedia.jsonl.zst", "rb"))
    return [json.loads(line) for line in io.TextIOWrapper(raw, encoding="utf-8") if line.strip()]


def _table(rows: list[dict], weight: bool = False) -> pa.Table:
    columns = {
        "id": [r["id"] for r in rows],
        "text": pa.array([r["text"] for r in rows], pa.large_string()),
        "source": [r["source"] for r in rows],
        "lang": [r["lang"] for r in rows],
    }
    if weight:
        columns["weight"] = [0.5 + 0.5 * (i % 3) for i in range(len(rows))]
    return pa.table(columns)


@pytest.fixture(scope="module")
def sides(tmp_path_factory) -> dict:
    """raw: ingest-like parts, one source per file, with 6 planted eval paragraphs (alone and pasted into
    a web page); clean: the longer documents as one export-like shard with weights, 2 planted."""
    tmp = tmp_path_factory.mktemp("sides")
    en = [
        {"id": f"ccnet-{i}", "text": r["text"], "source": "ccnet-en", "lang": "en"}
        for i, r in enumerate(_jsonl(SAMPLE / "en" / "ccnet-head.jsonl"))
    ]
    en += [
        {"id": f"refined-{i}", "text": r["text"], "source": "refined-en", "lang": "en"}
        for i, r in enumerate(_jsonl(SAMPLE / "en" / "refined.jsonl.gz"))
    ]
    zh = [
        {"id": f"wiki-zh-{i}", "text": r["text"], "source": "wikipedia-zh", "lang": "zh"}
        for i, r in enumerate(_zh_wikipedia())
    ]
    wikitext = [r["text"] for r in _jsonl(EVALS / "wikitext2-paragraphs.jsonl.gz")]
    drcd = [r["text"] for r in _jsonl(EVALS / "drcd-paragraphs.jsonl.gz")]
    planted_raw = [
        {"id": "planted-en-0", "text": wikitext[3], "source": "planted", "lang": "en"},
        {"id": "planted-en-1", "text": wikitext[50], "source": "planted", "lang": "en"},
        {
            "id": "planted-en-2",
            "text": f"{en[0]['text']}\n\n{wikitext[120]}\n\n{en[1]['text']}",
            "source": "planted",
            "lang": "en",
        },
        {"id": "planted-zh-0", "text": drcd[7], "source": "planted", "lang": "zh"},
        {"id": "planted-zh-1", "text": drcd[60], "source": "planted", "lang": "zh"},
        {"id": "planted-zh-2", "text": f"{zh[0]['text']}\n{drcd[90]}", "source": "planted", "lang": "zh"},
    ]
    planted_clean = [
        {"id": "planted-clean-en", "text": wikitext[200], "source": "planted", "lang": "en"},
        {"id": "planted-clean-zh", "text": drcd[100], "source": "planted", "lang": "zh"},
    ]
    raw, clean = tmp / "00_ingest", tmp / "export"
    raw.mkdir()
    clean.mkdir()
    pq.write_table(_table(en + planted_raw[:3]), raw / "part-00000.parquet")
    pq.write_table(_table(zh + planted_raw[3:]), raw / "part-00001.parquet")
    long_docs = [r for r in en + zh if len(r["text"]) >= 300]
    pq.write_table(
        _table(long_docs[::2] + planted_clean + long_docs[1::2], weight=True), clean / "shard-00000.parquet"
    )
    return {
        "raw": raw,
        "clean": clean,
        "planted": {"raw": {r["id"] for r in planted_raw}, "clean": {r["id"] for r in planted_clean}},
        "eval_texts": wikitext + drcd,
    }


EVAL_FILES = {"wiki-en": EVALS / "wikitext2-paragraphs.jsonl.gz", "wiki-zh": EVALS / "drcd-paragraphs.jsonl.gz"}


def _ablate(raw: Path, clean: Path, evals: tuple[str, ...], seeds: int, config: Path, out: Path, *extra: str):
    """`winnow ablate` through the CLI on the tiny model, 16,000 tokens a run."""
    args = ["ablate", "--raw", str(raw), "--clean", str(clean), *extra]
    for name in evals:
        args += ["--eval", f"{name}={EVAL_FILES[name]}"]
    args += ["--seeds", str(seeds), "--tokens", "16000", "--config", str(config), "--output", str(out)]
    return CliRunner().invoke(app, args)


@pytest.fixture(scope="module")
def ablation(sides, tmp_path_factory, ray_local) -> tuple[Path, object]:
    tmp = tmp_path_factory.mktemp("ablation")
    cfg = yaml.safe_load((REPO / "configs" / "pretrain_tiny.yaml").read_text())
    cfg["ablate"] = {"eval_docs": 40}
    config = tmp / "tiny.yaml"
    config.write_text(yaml.safe_dump(cfg))
    out = tmp / "abl"
    result = _ablate(sides["raw"], sides["clean"], ("wiki-en", "wiki-zh"), 2, config, out)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return out, result


def test_json_has_every_domain_with_means_and_spreads(ablation):
    out, result = ablation
    summary = json.loads((out / "ablation.json").read_text())
    assert [d["name"] for d in summary["domains"]] == ["wiki-en", "wiki-zh"]
    for d in [*summary["domains"], summary["mean"]]:
        assert set(FIELDS) <= set(d), d.keys()
        assert len(d["raw_losses"]) == len(d["clean_losses"]) == 2
        assert d["raw_loss"] == pytest.approx(sum(d["raw_losses"]) / 2)
        assert d["clean_loss"] == pytest.approx(sum(d["clean_losses"]) / 2)
        spread = abs(d["raw_losses"][0] - d["raw_losses"][1]) / math.sqrt(2)  # sample std of two values
        assert d["raw_std"] == pytest.approx(spread)
        assert d["beyond_spread"] == (abs(d["clean_loss"] - d["raw_loss"]) > math.hypot(d["raw_std"], d["clean_std"]))
        for key in ("raw_loss", "clean_loss", "raw_bpb", "clean_bpb"):
            assert math.isfinite(d[key]) and d[key] > 0
    for d in summary["domains"]:
        assert d["docs"] == 40 and d["tokens"] > 40  # the seeded sample of each eval file
    assert summary["mean"]["raw_loss"] == pytest.approx(sum(d["raw_loss"] for d in summary["domains"]) / 2)
    assert summary["seeds"] == 2 and summary["train_tokens"] >= 16000
    table = (out / "ablation.md").read_text()
    assert "| wiki-en |" in table and "| mean |" in table
    assert "wiki-zh" in result.output and "beyond spread" in result.output


def test_decontamination_drops_planted_copies_from_both_sides(ablation, sides):
    out, _ = ablation
    summary = json.loads((out / "ablation.json").read_text())
    for side in ("raw", "clean"):
        dropped = summary["sides"][side]["decontaminated"]
        assert sum(dropped.values()) == len(sides["planted"][side]), (side, dropped)
        trained = _trained(out, side)
        assert not sides["planted"][side] & set(trained)
        assert summary["sides"][side]["docs"] == len(trained)
        assert summary["sides"][side]["docs_in"] == len(trained) + len(sides["planted"][side])
    assert summary["sides"]["raw"]["decontaminated"] == {"wiki-en": 3, "wiki-zh": 3}
    assert summary["sides"]["clean"]["decontaminated"] == {"wiki-en": 1, "wiki-zh": 1}
    assert summary["sides"]["clean"]["weighted"] and not summary["sides"]["raw"]["weighted"]


def test_no_eval_text_reaches_training(ablation, sides):
    out, _ = ablation
    for side in ("raw", "clean"):
        texts = "\n".join(_trained(out, side).values())
        assert not [t for t in sides["eval_texts"] if t in texts]


def test_seeds_differ_and_one_tokenizer_serves_every_run(ablation):
    out, _ = ablation
    summary = json.loads((out / "ablation.json").read_text())
    for d in summary["domains"]:
        assert d["raw_losses"][0] != d["raw_losses"][1] and d["clean_losses"][0] != d["clean_losses"][1]
    runs = sorted((out / "runs").iterdir())
    assert [r.name for r in runs] == ["clean-seed0", "clean-seed1", "raw-seed0", "raw-seed1"]
    assert not any((r / "tokenizer.json").exists() for r in runs) and (out / "tokenizer.json").exists()
    evals = [json.loads((r / "eval.json").read_text())["eval"] for r in runs]
    for name in ("wiki-en", "wiki-zh"):  # the same text and tokenizer: the same tokens in every run
        assert len({e[name]["tokens"] for e in evals}) == 1 and len({e[name]["loss"] for e in evals}) == 4


def test_bad_eval_spec_is_refused_before_any_work(tmp_path):
    result = CliRunner().invoke(
        app,
        ["ablate", "--raw", str(tmp_path), "--clean", str(tmp_path), "--eval", "no-equals-sign"]
        + ["--config", str(REPO / "configs" / "pretrain_tiny.yaml"), "-o", str(tmp_path / "o")],
    )
    assert result.exit_code == 2 and "NAME=PATH" in result.output


def _trained(out: Path, side: str) -> dict[str, str]:
    """id -> text of what the side's runs train on."""
    files = json.loads((out / "ablation.json").read_text())["sides"][side]["train_files"]
    rows = {}
    for f in files:
        t = pq.read_table(f, columns=["id", "text"])
        rows.update(zip(t.column("id").to_pylist(), t.column("text").to_pylist()))
    return rows


def test_a_second_call_into_the_same_folder_trains_afresh(ablation, sides, tmp_path):
    """The same folder on both sides, into a copy of the first call's output: the runs of the first call
    (other data, another tokenizer) must not be resumed, and equal data with equal seeds trains equal models."""
    first, _ = ablation
    out = tmp_path / "abl"
    shutil.copytree(first, out)
    config = first.parent / "tiny.yaml"
    result = _ablate(sides["clean"], sides["clean"], ("wiki-en",), 1, config, out)
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert sorted(r.name for r in (out / "runs").iterdir()) == ["clean-seed0", "raw-seed0"]
    (domain,) = json.loads((out / "ablation.json").read_text())["domains"]
    assert domain["name"] == "wiki-en"
    assert domain["raw_losses"] == pytest.approx(domain["clean_losses"], abs=1e-4), domain


def test_also_compares_more_sides_against_one_clean_training(ablation, sides, tmp_path):
    """`--also NAME=DIR` twice: the clean side is trained once for three comparisons, every side is
    decontaminated and scored the same way, and equal data with equal seeds gives equal rows."""
    first, _ = ablation
    out = tmp_path / "abl"
    extra = ("--also", f"clean-again={sides['clean']}", "--also", f"raw-again={sides['raw']}")
    result = _ablate(sides["raw"], sides["clean"], ("wiki-en", "wiki-zh"), 1, first.parent / "tiny.yaml", out, *extra)
    assert result.exit_code == 0, result.output + repr(result.exception)
    runs = sorted(r.name for r in (out / "runs").iterdir())
    assert runs == ["also-clean-again-seed0", "also-raw-again-seed0", "clean-seed0", "raw-seed0"]
    main = json.loads((out / "ablation.json").read_text())
    again = json.loads((out / "also" / "raw-again" / "ablation.json").read_text())
    same = json.loads((out / "also" / "clean-again" / "ablation.json").read_text())
    assert again["labels"] == {"raw": "raw-again", "clean": "clean"} and main["tokenizer_sides"] == 4
    assert (
        again["sides"]["raw"]["decontaminated"]
        == main["sides"]["raw"]["decontaminated"]
        == {"wiki-en": 3, "wiki-zh": 3}
    )
    assert same["sides"]["raw"]["decontaminated"] == {"wiki-en": 1, "wiki-zh": 1}
    for a, m, c in zip(again["domains"], main["domains"], same["domains"]):
        assert set(FIELDS) <= set(a) and a["name"] == m["name"] == c["name"]
        assert a["clean_losses"] == m["clean_losses"] == c["clean_losses"]  # the one clean training
        assert a["raw_losses"] == pytest.approx(m["raw_losses"], abs=1e-4)
        assert c["raw_losses"] == pytest.approx(c["clean_losses"], abs=1e-4)
    assert "raw-again: mean" in result.output and (out / "also" / "raw-again" / "ablation.md").exists()


@pytest.mark.parametrize(
    ("spec", "message"), [("no-equals", "NAME=DIR"), ("raw=.", "taken"), ("x=/nowhere", "no such")]
)
def test_bad_also_spec_is_refused_before_any_work(tmp_path, spec, message):
    result = CliRunner().invoke(
        app,
        ["ablate", "--raw", str(tmp_path), "--clean", str(tmp_path), "--also", spec]
        + ["--config", str(REPO / "configs" / "pretrain_tiny.yaml"), "-o", str(tmp_path / "o")],
    )
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "o").exists()
