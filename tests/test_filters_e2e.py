"""The cheap filters together, as configs/default.yaml runs them, on real crawl and reference text:
spam goes with a reason, good text stays."""

import subprocess
import sys

import pyarrow.dataset as pads
import pytest
import yaml
from conftest import REPO, SAMPLE

from pipeline.runner import Runner
from pipeline.stats import collect_funnel, stage_detail
from winnow.config import load_config


def _kept(folder):
    return pads.dataset(
        str(folder), format="parquet", exclude_invalid_files=False, ignore_prefixes=["_", ".", "rejects"]
    ).to_table()


@pytest.fixture(scope="module")
def default_run(tmp_path_factory, ray_local):
    tmp = tmp_path_factory.mktemp("filters")
    data = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    data["input"] = [
        {"path": str(SAMPLE / "web" / "cc-main-2020-34-excerpt.warc.gz"), "source": "cc"},
        {"path": str(SAMPLE / "zh" / "wikipedia.jsonl.zst"), "source": "wikipedia-zh"},
        {"path": str(SAMPLE / "en" / "ccnet-head.jsonl"), "source": "ccnet-en"},
    ]
    data["output"] = str(tmp / "out")
    data["stages"] = [
        s
        for s in data["stages"]
        if not s["name"].endswith("_dedup")
        and s["name"] not in ("pii", "decontaminate", "quality", "safety", "weights", "export")
    ]  # the rule filters only (line cleaning, then the whole-document rules); the rest have their own tests
    for stage in data["stages"]:  # the lists are relative to the repository root
        for extra in stage.get("extra_lists", []):
            extra["path"] = str(REPO / extra["path"])
    config = tmp / "default.yaml"
    config.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    Runner(load_config(config), progress=False).run_all()
    out = tmp / "out"
    last = collect_funnel(str(out))[-1].folder
    return out, last


def _rejects(out):
    """Rejected rows of every stage after ingest."""
    paths = sorted(str(p) for p in out.glob("0[1-9]_*/rejects/*.parquet"))
    return pads.dataset(paths, format="parquet").to_table(columns=["id", "source", "stage", "reason"]).to_pylist()


def test_chinese_crawl_spam_is_dropped_with_a_reason(default_run):
    """Every Chinese page of the Common Crawl excerpt (gambling, porn and SEO pages) ends in rejects, each with a reason."""
    out, last = default_run
    ingested = _kept(out / "00_ingest").to_pylist()
    chinese = {
        r["id"] for r in ingested if r["source"] == "cc" and sum("\u4e00" <= c <= "\u9fff" for c in r["text"]) >= 10
    }
    assert len(chinese) >= 10
    rejected = {r["id"]: (r["stage"], r["reason"]) for r in _rejects(out)}
    assert chinese <= set(rejected), chinese - set(rejected)
    assert all(reason for _, reason in rejected.values())
    assert not chinese & set(_kept(out / last).column("id").to_pylist())


@pytest.mark.parametrize("source", ["wikipedia-zh", "ccnet-en"])
def test_good_reference_text_is_kept(default_run, source):
    """At least 95% of Chinese Wikipedia paragraphs and of CCNet English head documents survive every filter."""
    out, last = default_run
    ingested = [r for r in _kept(out / "00_ingest").select(["id", "source"]).to_pylist() if r["source"] == source]
    kept = [r for r in _kept(out / last).select(["id", "source"]).to_pylist() if r["source"] == source]
    assert len(ingested) >= 20
    assert len(kept) / len(ingested) >= 0.95, f"{source}: kept {len(kept)} of {len(ingested)}"


def test_conservation_through_all_filters(default_run):
    """Every stage's input equals kept plus rejected, and flows into the next stage."""
    out, _ = default_run
    funnel = collect_funnel(str(out))
    assert [f.folder[3:] for f in funnel] == [
        "ingest",
        "url_filter",
        "normalize",
        "min_length",
        "langid",
        "line_clean",
        "heuristics",
        "line_clean",
    ]
    for stage in funnel:
        assert stage.rows_in == stage.rows_out + stage.rows_rejected
    for before, after in zip(funnel, funnel[1:]):
        assert after.rows_in == before.rows_out


def test_stats_show_rule_drops_and_signal_histograms_per_language(default_run):
    """`winnow stats --stage heuristics` has per-rule drop counts and per-language histograms of the signals."""
    out, _ = default_run
    heuristics = next(f.folder for f in collect_funnel(str(out)) if f.folder.endswith("_heuristics"))
    drops, hists, edges = stage_detail(str(out), heuristics)
    assert any(r.startswith(("zh-", "gopher-")) for rs in drops.values() for r in rs)
    assert {"zh", "en"} <= set(hists["h_words"])
    assert sum(hists["h_words"]["zh"]) > 200 and len(edges) == len(hists["h_words"]["zh"]) + 1
    done = subprocess.run(
        [sys.executable, "-m", "winnow", "stats", str(out), "--stage", "heuristics"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
