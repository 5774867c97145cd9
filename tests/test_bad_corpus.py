"""The whole default pipeline (configs/default.yaml, every stage through export) on a corpus made only
of bad input: every file of tests/data/bad/ as its own input, plus one 50 MB document generated here.

What it holds to: the run finishes; every stage conserves rows; every document that ingest read ends
exactly once, in the exported shards or in one stage's rejects with a reason; rows that could not be
read are ingest rejects naming file and line; files that cannot be read at all are named in the
ingest sidecars' errors and in `winnow stats`; the giant document is a `too-long` reject; hostile
URLs pass the URL filter without failing a shard and their documents are all accounted for.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from conftest import BAD, REPO, SAMPLE, default_folder_list, default_folders, write_config

from pipeline.layout import read_manifest, read_sidecars
from pipeline.runner import Runner
from pipeline.stats import collect_funnel
from pipeline.storage import Storage
from stages.ingest import detect_format
from winnow.config import load_config

GIANT_BYTES = 50_000_000
GIANT_ID = "giant-50mb"
STAGES = default_folder_list()

# Files that give no document at all, and what their ingest error says after the file's path.
UNREADABLE = {
    "corrupt_footer.parquet": "not a readable Parquet file",
    "truncated.parquet": "not a readable Parquet file",
    "corrupt_page.parquet": "unreadable after row 0",
    "no_text_column.parquet": "no 'text' column",
    "text_int.parquet": "column 'text' has type int64",
    "url_list.parquet": "unreadable after row 0",
    "empty.jsonl": "no documents (empty file)",
}
# Read up to the damage, then a file error: the rows before it are kept.
DAMAGED = {"truncated.jsonl.gz": "compressed stream is damaged after line 9"}
# Row-level rejects at ingest, by file: (reason, line) in file order.
ROW_REJECTS = {
    "malformed.jsonl": [("malformed-json", 2), ("malformed-json", 4)],
    "invalid_utf8.jsonl": [("invalid-utf8", 2)],
    "missing_text.jsonl": [("missing-text", 2), ("text-not-string", 3)],
}


def _source(name: str) -> str:
    return "bad-" + re.sub(r"[^a-z0-9]+", "-", name.lower())


def _bad_files() -> list[Path]:
    return sorted(p for p in BAD.iterdir() if p.is_file() and detect_format(str(p)) is not None)


def _write_giant(path: Path) -> None:
    """One JSONL line: real sample text (the ccnet documents, joined) repeated to 50 MB of UTF-8."""
    recs = [
        json.loads(line)
        for line in (SAMPLE / "en" / "ccnet-head.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    block = "\n\n".join(r["text"] for r in recs) + "\n\n"
    text = block * (GIANT_BYTES // len(block.encode("utf-8")) + 1)
    rec = {"id": GIANT_ID, "text": text, "url": recs[0]["url"]}
    path.write_bytes(json.dumps(rec, ensure_ascii=False).encode("utf-8") + b"\n")


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory, ray_local):
    tmp = tmp_path_factory.mktemp("bad_corpus")
    giant = tmp / "giant.jsonl"
    _write_giant(giant)
    assert giant.stat().st_size > GIANT_BYTES

    data = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    data["input"] = [{"path": str(p), "source": _source(p.name)} for p in _bad_files()]
    data["input"].append({"path": str(giant), "source": "giant"})
    for stage in data["stages"]:
        for extra in stage.get("extra_lists", []):
            extra["path"] = str(REPO / extra["path"])
        if stage["name"] == "safety":
            stage["members"] = [m for m in stage["members"] if m["name"] not in ("minilm", "e5")]
        if stage["name"] == "export":
            stage["shard_docs"] = 20
    data["output"] = str(tmp / "out")
    config = tmp / "pipeline.yaml"
    config.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    started = time.perf_counter()
    reports = Runner(load_config(config), progress=False).run_all()
    yield {
        "out": tmp / "out",
        "config": config,
        "reports": reports,
        "giant": giant,
        "seconds": time.perf_counter() - started,
    }
    giant.unlink()  # 50 MB; the (compressed) outputs stay for inspection


def _ingest_sidecars(out: Path) -> dict[str, dict]:
    """Ingest sidecars by input file name (each bad file is its own input)."""
    by_name = {Path(sc["input"]).name: sc for sc in read_sidecars(Storage(str(out)), "00_ingest")}
    assert len(by_name) == len(_bad_files()) + 1
    return by_name


def _read(path: Path, columns: list[str]) -> list[dict]:
    return pq.ParquetFile(path).read(columns=columns).to_pylist()


def test_run_finishes_and_every_stage_conserves_rows(bad_run):
    """Every stage of the default pipeline ran to `complete`; for each stage (summed over its sidecars)
    and each sidecar, rows in = kept + rejected = kept + sum of drops; each stage takes what the one
    before it kept."""
    out = bad_run["out"]
    assert [r.folder for r in bad_run["reports"]] == STAGES
    assert all(not r.failures for r in bad_run["reports"])
    funnel = collect_funnel(str(out))
    assert [f.folder for f in funnel] == STAGES
    storage = Storage(str(out))
    for stage in funnel:
        assert stage.status == "complete", stage.folder
        assert read_manifest(storage, stage.folder)["status"] == "complete"
        assert stage.rows_in == stage.rows_out + stage.rows_rejected, stage.folder
        assert stage.rows_rejected == sum(stage.drops.values()), stage.folder
        for sc in read_sidecars(storage, stage.folder):
            assert (
                sc["rows_in"]
                == sc["rows_out"] + sc["rows_rejected"]
                == sum(o["rows"] for o in sc["outputs"]) + sc["rows_rejected"]
            )
    for before, after in zip(funnel, funnel[1:]):
        assert after.rows_in == before.rows_out, after.folder
    assert funnel[-1].rows_out > 0  # some real text survives all of it


def test_every_ingested_document_ends_exactly_once(bad_run):
    """Each document ingest kept, keyed by (source, id), is found exactly once: in the exported shards,
    or in the rejects of one later stage with that stage's name and a non-empty reason."""
    out = bad_run["out"]
    storage = Storage(str(out))
    ingested = Counter()
    for sc in read_sidecars(storage, "00_ingest"):
        for o in sc["outputs"]:
            ingested.update((r["source"], r["id"]) for r in _read(out / "00_ingest" / o["name"], ["source", "id"]))
    # keyed by source too: several fixtures carry the same ccnet lines, so the same input ids
    assert ingested and max(ingested.values()) == 1

    ended = Counter()
    reasons: dict[tuple, tuple[str, str]] = {}
    for shard in sorted((out / default_folders()["export"]).glob("shard-*.parquet")):
        ended.update((r["source"], r["id"]) for r in _read(shard, ["source", "id"]))
    for folder in STAGES[1:]:
        for rej in sorted((out / folder / "rejects").glob("*.parquet")):
            for r in _read(rej, ["source", "id", "stage", "reason"]):
                key = (r["source"], r["id"])
                ended[key] += 1
                reasons[key] = (folder, r["reason"])
                assert r["stage"] == folder[3:] and r["reason"], (folder, r)
    duplicated = {k: n for k, n in ended.items() if n != 1}
    assert not duplicated, f"documents that ended more than once: {sorted(duplicated)[:10]}"
    assert set(ended) == set(ingested), (
        f"lost: {sorted(set(ingested) - set(ended))[:10]}; appeared from nowhere: {sorted(set(ended) - set(ingested))[:10]}"
    )
    assert sum(1 for k in ended if k not in reasons) == collect_funnel(str(out))[-1].rows_out


def test_unreadable_rows_are_ingest_rejects_naming_file_and_line(bad_run):
    """Rows that never became documents (no id to follow) are counted by the ingest sidecars, and each
    reject's detail is `<path>:<line>: ...` for its own input file."""
    out = bad_run["out"]
    sidecars = _ingest_sidecars(out)
    total = 0
    for name, sc in sorted(sidecars.items()):
        expected = ROW_REJECTS.get(name, [])
        assert sc["rows_rejected"] == len(expected), name
        assert sc["drops"] == dict(Counter(reason for reason, _ in expected)), name
        if not expected:
            assert sc["rejects"] is None, name
            continue
        rows = _read(out / "00_ingest" / "rejects" / sc["rejects"]["name"], ["reason", "detail", "stage", "source"])
        assert [r["reason"] for r in rows] == [reason for reason, _ in expected], name
        assert all(r["stage"] == "ingest" and r["source"] == _source(name) for r in rows)
        assert all(r["detail"].startswith(f"{sc['input']}:{line}: ") for r, (_, line) in zip(rows, expected))
        total += len(rows)
    assert total == collect_funnel(str(out))[0].rows_rejected == sum(len(v) for v in ROW_REJECTS.values())


def test_unreadable_files_are_named_and_do_not_stop_the_run(bad_run):
    """Corrupt or truncated Parquet, a damaged page, a missing or mistyped column, an empty file and a
    truncated gzip are errors in their ingest sidecar naming the file; documents read before the damage
    are kept; every other file is read without an error."""
    sidecars = _ingest_sidecars(bad_run["out"])
    for name, sc in sorted(sidecars.items()):
        message = UNREADABLE.get(name) or DAMAGED.get(name)
        if message is None:
            assert sc["errors"] == [], name
            continue
        assert len(sc["errors"]) == 1 and sc["errors"][0].startswith(f"{sc['input']}: {message}"), (name, sc["errors"])
        if name in UNREADABLE:
            assert sc["rows_out"] == sc["rows_in"] == 0 and sc["outputs"] == [], name
    assert sidecars["truncated.jsonl.gz"]["rows_out"] == 9  # the whole lines before the damage
    # mistyped but usable columns are cast to strings; a null id gets a generated one
    id_int = _read(bad_run["out"] / "00_ingest" / sidecars["id_int.parquet"]["outputs"][0]["name"], ["id"])
    assert (
        [r["id"] for r in id_int][:3] == ["7", "8", "9"]
        and len({r["id"] for r in id_int}) == 6
        and all(r["id"] for r in id_int)
    )
    url_int = _read(bad_run["out"] / "00_ingest" / sidecars["url_int.parquet"]["outputs"][0]["name"], ["url"])
    assert [r["url"] for r in url_int] == ["1000", "1001", None, "1003", "1004", "1005"]


def test_giant_document_is_rejected_as_too_long(bad_run):
    """The 50 MB single-document file is ingested whole and passes the URL filter and normalisation,
    then min_length drops it as `too-long` with its text intact; nothing later sees it."""
    out = bad_run["out"]
    sc = _ingest_sidecars(out)["giant.jsonl"]
    assert (sc["rows_in"], sc["rows_out"], sc["errors"]) == (1, 1, []) and sc["bytes_out"] >= GIANT_BYTES
    table = pq.read_table(
        out / "03_min_length" / "rejects",
        filters=[("id", "=", GIANT_ID)],
        columns=["id", "source", "stage", "reason", "text"],
    )
    assert table.num_rows == 1
    row = table.slice(0, 1).drop_columns(["text"]).to_pylist()[0]
    assert row == {"id": GIANT_ID, "source": "giant", "stage": "min_length", "reason": "too-long"}
    assert len(table.column("text")[0].as_py()) > 1_000_000
    key = sc["outputs"][0]["name"].removesuffix(".parquet")
    for folder in STAGES[1:3]:  # kept by the URL filter and normalize
        assert [s["rows_out"] for s in read_sidecars(Storage(str(out)), folder) if s["key"] == key] == [1], folder


def test_hostile_urls_pass_the_url_filter_and_are_accounted_for(bad_run):
    """javascript:/data: schemes, homographs, userinfo, IP literals, bad ports, percent garbage, a 10 KB
    URL, controls and NUL, empty and non-string values: the URL filter finishes the shard, the URL
    travels unchanged, and each document is kept or rejected with a reason."""
    out = bad_run["out"]
    raw = [json.loads(line) for line in (BAD / "hostile_urls.jsonl").read_bytes().splitlines()]
    assert len(raw) >= 40 and max(len(r["url"]) for r in raw if isinstance(r["url"], str)) > 10_000
    shard = _ingest_sidecars(out)["hostile_urls.jsonl"]["outputs"][0]["name"]
    sc = next(
        s for s in read_sidecars(Storage(str(out)), "01_url_filter") if s["key"] == shard.removesuffix(".parquet")
    )
    assert sc["rows_in"] == len(raw) and sc["errors"] == []
    kept = _read(out / "01_url_filter" / shard, ["id", "url", "url_norm", "url_domain"])
    rejects = _read(out / "01_url_filter" / "rejects" / shard, ["id", "url", "reason"]) if sc["rejects"] else []
    assert sorted(r["id"] for r in kept + rejects) == sorted(r["id"] for r in raw)
    assert all(r["reason"] for r in rejects)
    got = {r["id"]: r for r in kept + rejects}
    for r in raw:
        if isinstance(r["url"], str):
            assert got[r["id"]]["url"] == r["url"], r["id"]  # byte for byte, NUL and 10 KB included
        elif r["url"] is None:
            assert got[r["id"]]["url"] is None
        else:
            assert isinstance(got[r["id"]]["url"], str), r["id"]  # numbers, lists, objects: as text
    by_url = {got[r["id"]]["url"]: got[r["id"]] for r in raw if isinstance(r["url"], str)}
    assert by_url["javascript:alert(document.cookie)//http://example.com/"].get("url_norm") is None
    assert by_url["http://www.example.com@evil.example.net/"].get("url_domain") == "evil.example.net"


def test_stats_command_names_the_bad_files(bad_run):
    """`winnow stats OUT` exits 0 and lists every file that could not be read."""
    env = dict(os.environ, COLUMNS="2000", NO_COLOR="1", TERM="dumb")
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "winnow", "stats", str(bad_run["out"])],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = proc.stdout
    assert "input file problem(s)" in text
    for name, message in {**UNREADABLE, **DAMAGED}.items():
        assert any(name in line and message in line for line in text.splitlines()), (name, text[-3000:])
    for stage in STAGES:
        assert stage in text


def test_lone_surrogate_escape_is_a_reject_not_a_crash(tmp_path, ray_local):
    """A JSON string may escape a lone UTF-16 surrogate (`\\ud800`): valid JSON syntax, but no Unicode
    text. That line should be a reject naming file and line, and the run should go on."""
    line = json.loads((SAMPLE / "en" / "ccnet-head.jsonl").read_text(encoding="utf-8").splitlines()[0])
    good = json.dumps({"id": "good", "text": line["text"], "url": line["url"]})
    bad = json.dumps({"id": "surrogate", "text": line["text"], "url": "http://example.com/"}).replace(
        "example.com/", "example.com/\\ud800"
    )
    assert "\\ud800" in bad
    path = tmp_path / "surrogate.jsonl"
    path.write_text(good + "\n" + bad + "\n")
    config = write_config(tmp_path, [{"path": str(path), "source": "s"}], stages=[{"name": "normalize"}])
    Runner(load_config(config), progress=False).run_all()
    ingest = collect_funnel(str(tmp_path / "out"))[0]
    assert ingest.rows_in == 2 and ingest.rows_out == 1 and ingest.rows_rejected == 1
    rejects = pq.read_table(tmp_path / "out" / "00_ingest" / "rejects")
    assert rejects.column("reason").to_pylist() == ["invalid-utf8"]
    assert rejects.column("detail").to_pylist() == [f"{path}:2: lone surrogate escape in 'url'"]
