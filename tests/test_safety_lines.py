"""The safety stage's `remove_lines` on real Weibo threads and e-mails, on a real local Ray: an unsafe
document of several lines loses only its unsafe lines when the rest is safe, every cut line is kept with
its reason, and nothing else changes."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import yaml
from conftest import REPO, write_config

from pipeline.runner import Runner
from stages.safety import Safety, SafetyConfig
from winnow.config import load_config

DOCS = REPO / "tests" / "data" / "safety_lines" / "docs.jsonl"


def default_safety(**overrides) -> dict:
    """The default config's safety stage, without the encoder members (slow on CPU)."""
    config = yaml.safe_load((REPO / "configs" / "default.yaml").read_text(encoding="utf-8"))
    stage = next(s for s in config["stages"] if s["name"] == "safety")
    stage["members"] = [m for m in stage["members"] if m["name"] in ("lexicon", "fasttext")]
    return {**stage, **overrides}


def run(tmp_path, name: str, **overrides) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Kept rows, rejects and removed lines of a safety stage run over the test documents."""
    spec = {"path": str(DOCS), "source": "safety-lines", "lang_field": "lang", "url_field": None}
    folder = tmp_path / name
    folder.mkdir()
    Runner(load_config(write_config(folder, [spec], [default_safety(**overrides)])), progress=False).run_all()
    out = folder / "out" / "01_safety"

    def read(path, columns=None):
        if not path.exists():
            return pd.DataFrame(columns=columns or [])
        return pads.dataset(str(path), ignore_prefixes=["_", ".", "rejects", "removed"]).to_table().to_pandas()

    return read(out), read(out / "rejects", ["id", "reason"]), read(out / "removed", ["id", "span", "reason"])


def test_unsafe_lines_go_and_the_safe_rest_stays(ray_local, tmp_path):
    originals = {d["id"]: d for d in map(json.loads, DOCS.read_text(encoding="utf-8").splitlines())}
    whole_kept, whole_rejects, whole_removed = run(tmp_path, "whole", remove_lines=False)
    kept, rejects, removed = run(tmp_path, "lines", remove_lines=True)
    assert whole_removed.empty and (whole_kept["safety_lines_removed"] == 0).all()
    assert len(whole_kept) + len(whole_rejects) == len(kept) + len(rejects) == len(originals)

    # Only documents unsafe as a whole change; fewer are dropped, and the rest are dropped as before.
    assert set(rejects["id"]) < set(whole_rejects["id"])
    assert all(r.startswith("unsafe:") for r in rejects["reason"])
    for _, row in rejects.iterrows():  # a dropped document goes whole, as it came
        assert row["text"] == originals[row["id"]]["text"]
    rewritten = kept[kept["safety_lines_removed"] > 0]
    assert set(rewritten["id"]) == set(whole_rejects["id"]) - set(rejects["id"])
    untouched = kept[kept["safety_lines_removed"] == 0].set_index("id")
    assert set(untouched.index) == set(whole_kept["id"])
    for doc_id, row in untouched.iterrows():
        assert row["text"] == originals[doc_id]["text"]

    assert set(removed["id"]) == set(rewritten["id"])
    threshold = default_safety()["threshold"]
    for _, row in rewritten.iterrows():
        original = originals[row["id"]]["text"]
        cut = removed[removed["id"] == row["id"]]
        assert len(cut) == row["safety_lines_removed"]
        assert all(r.startswith("unsafe-line:") for r in cut["reason"])
        # The new text is the original without the cut lines, in order, and holds at least half of it.
        lines, spans = original.splitlines(keepends=True), list(cut["span"])
        rest = []
        for line in lines:
            if spans and line == spans[0]:
                spans.pop(0)
            else:
                rest.append(line)
        assert not spans and "".join(rest) == row["text"]
        assert len(row["text"]) >= 0.5 * len(original)
        # The rest is safe as a document, and its scores are the rest's.
        assert not row["unsafe"] and row["safety"] < threshold

    # Each cut line is unsafe on its own, by the same ensemble.
    stage = Safety(SafetyConfig(**{k: v for k, v in default_safety().items() if k != "name"}))
    langs = [originals[i]["lang"] for i in removed["id"]]
    _, _, verdict = stage.ensemble(pa.array(list(removed["span"]), pa.large_string()), pa.array(langs, pa.string()))
    assert verdict.unsafe.all()


def test_min_kept_frac_one_keeps_whole_document_decisions(ray_local, tmp_path):
    """A document must keep every character to stay: no line can go, so the decisions are the whole
    document's."""
    _, whole_rejects, _ = run(tmp_path, "whole", remove_lines=False)
    kept, rejects, removed = run(tmp_path, "strict", remove_lines=True, min_kept_frac=1.0)
    assert removed.empty and (kept["safety_lines_removed"] == 0).all()
    assert set(rejects["id"]) == set(whole_rejects["id"])
