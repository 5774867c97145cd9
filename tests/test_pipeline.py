"""The runner on a real local Ray over real data: conservation, reruns, staleness, determinism, bad input."""

from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from conftest import BAD, LABELLED, sample_inputs, write_config

from pipeline.layout import read_manifest, read_sidecars
from pipeline.runner import Runner
from pipeline.stats import collect_funnel
from pipeline.storage import Storage
from winnow.config import load_config


def _run(config_path, workers=None):
    runner = Runner(load_config(config_path), workers=workers, progress=False)
    return runner, runner.run_all()


def _rows(path: Path) -> int:
    return pq.ParquetFile(path).metadata.num_rows if path.exists() else 0


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory, ray_local):
    tmp = tmp_path_factory.mktemp("sample")
    config = write_config(tmp, sample_inputs(), ingest={"rows_per_shard": 1500})
    runner, reports = _run(config)
    return tmp / "out", config, reports


def test_conservation_per_stage_and_shard(sample_run):
    """For every stage and every shard, rows in = rows kept + rows rejected, counted from the files themselves."""
    out, _, _ = sample_run
    for stage in ("01_normalize", "02_min_length"):
        upstream = "00_ingest" if stage == "01_normalize" else "01_normalize"
        sidecars = read_sidecars(Storage(str(out)), stage)
        assert sidecars
        for sc in sidecars:
            key = sc["key"]
            rows_in = _rows(out / upstream / f"{key}.parquet")
            kept = _rows(out / stage / f"{key}.parquet")
            rejected = _rows(out / stage / "rejects" / f"{key}.parquet")
            assert rows_in == kept + rejected == sc["rows_in"]
            assert sc["rows_rejected"] == rejected == sum(sc["drops"].values())


def test_rejects_say_stage_and_reason(sample_run):
    """Dropped rows keep their columns and gain `stage` and `reason`; short tweets are the expected drops."""
    out, _, _ = sample_run
    rejects = pq.read_table(out / "02_min_length" / "rejects")
    assert rejects.num_rows > 0
    assert set(rejects.column("stage").to_pylist()) == {"min_length"}
    assert set(rejects.column("reason").to_pylist()) <= {"too-short", "too-long"}
    assert {"id", "text", "source", "lang"} <= set(rejects.column_names)
    assert "tweets-en" in set(rejects.column("source").to_pylist())


def test_funnel_is_consistent_across_stages(sample_run):
    """Each stage's docs in equal the previous stage's docs out; ingest saw every input row."""
    out, _, _ = sample_run
    funnel = collect_funnel(str(out))
    assert [f.folder for f in funnel] == ["00_ingest", "01_normalize", "02_min_length"]
    for before, after in zip(funnel, funnel[1:]):
        assert after.rows_in == before.rows_out
    total = pq.ParquetFile(LABELLED / "en" / "tweets.parquet").metadata.num_rows
    assert funnel[0].rows_in >= total
    assert all(f.status == "complete" for f in funnel)


def test_rerun_skips_then_config_change_redoes_and_marks_later_stale(tmp_path, ray_local):
    """`winnow stage normalize` twice: the second does nothing; a changed setting redoes it and marks later stages stale."""
    inputs = sample_inputs()[:2]
    config = write_config(tmp_path, inputs, ingest={"rows_per_shard": 40})
    runner, _ = _run(config)
    report, stale = runner.run_one("normalize")
    assert report.ran == 0 and report.skipped == report.total > 1 and stale == []

    data = yaml.safe_load(config.read_text())
    data["stages"][0]["fullwidth_punctuation"] = True
    config.write_text(yaml.safe_dump(data, allow_unicode=True))
    runner = Runner(load_config(config), progress=False)
    report, stale = runner.run_one("normalize")
    assert report.ran == report.total
    assert [folder for folder, _ in stale] == ["02_min_length"]
    assert read_manifest(runner.storage, "02_min_length")["status"] == "stale"
    report, stale = runner.run_one("min_length")
    assert report.ran == report.total and read_manifest(runner.storage, "02_min_length")["status"] == "complete"


def test_same_output_with_one_and_two_workers(tmp_path, ray_local):
    """Determinism: the same input and config give byte-identical shards whatever the worker count."""
    outputs = []
    for workers in (1, 2):
        sub = tmp_path / f"w{workers}"
        sub.mkdir()
        config = write_config(sub, sample_inputs()[:2], ingest={"rows_per_shard": 60})
        _run(config, workers=workers)
        outputs.append(sub / "out")
    files = sorted(p.relative_to(outputs[0]) for p in outputs[0].rglob("*.parquet"))
    assert len(files) > 10
    assert files == sorted(p.relative_to(outputs[1]) for p in outputs[1].rglob("*.parquet"))
    for rel in files:
        assert (outputs[0] / rel).read_bytes() == (outputs[1] / rel).read_bytes(), rel


def test_bad_input_run_finishes_and_accounts_for_everything(tmp_path, ray_local):
    """A folder of broken files runs to the end: bad rows are rejects with reasons, bad files are named."""
    config = write_config(tmp_path, [{"path": str(BAD), "source": "bad"}])
    runner, reports = _run(config)
    ingest = collect_funnel(str(tmp_path / "out"))[0]
    assert ingest.drops.get("malformed-json") == 2
    assert ingest.drops.get("invalid-utf8") == 1
    assert ingest.drops.get("missing-text") == 1 and ingest.drops.get("text-not-string") == 1
    assert any("truncated.jsonl.gz: compressed stream is damaged" in e for e in ingest.errors)
    assert any("empty.jsonl: no documents (empty file)" in e for e in ingest.errors)
    rejects = pq.read_table(tmp_path / "out" / "00_ingest" / "rejects")
    assert all(d and ":" in d for d in rejects.column("detail").to_pylist())
    for stage in collect_funnel(str(tmp_path / "out")):
        assert stage.rows_in == stage.rows_out + stage.rows_rejected
    normalized = pq.read_table(tmp_path / "out" / "01_normalize").column("text").to_pylist()
    assert normalized and not any("\x00" in t or "\x07" in t for t in normalized)  # nul_bytes.jsonl cleaned
