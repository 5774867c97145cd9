"""`winnow eval extraction` and its metric, on real pages (tests/data/extraction, README there)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stages.ingest.stage import IngestSettings
from stages.ingest.web.extract import DEFAULT_EXTRACTOR, EXTRACTORS
from stages.ingest.web.tokens import token_list, tokens
from winnow.cli import app
from winnow.eval_extraction import NOT_IN_INPUT, TruthFileError, evaluate, load_truth
from winnow.token_overlap import overlap

DATA = Path(__file__).resolve().parent / "data" / "extraction"
WARC = DATA / "pages.warc.gz"
TRUTH = DATA / "pages.truth.jsonl"


def truth_rows() -> list[dict]:
    return [json.loads(line) for line in TRUTH.read_text(encoding="utf-8").splitlines()]


def test_tokens_are_words_for_latin_and_characters_for_han():
    assert tokens("Isn't COVID-19 ＡＢＣ, 中文 text!") == {
        "isn": 1,
        "t": 1,
        "covid": 1,
        "19": 1,
        "abc": 1,
        "中": 1,
        "文": 1,
        "text": 1,
    }
    assert tokens("— … ，。！") == {}


@pytest.mark.parametrize("row", [0, 6], ids=["english", "chinese"])
def test_overlap_of_a_real_truth_with_itself_and_with_half_of_it(row):
    truth = truth_rows()[row]["main_content"]
    whole = overlap(truth, truth)
    assert whole.precision == whole.recall == whole.f1 == 1.0
    # the extraction keeps the first half of the truth's tokens, in order
    total = len(token_list(truth))
    first_half = token_list(truth)[: total // 2]
    half = overlap(" ".join(first_half), truth)
    assert half.truth == total and half.extracted == total // 2
    assert half.precision == 1.0
    assert half.recall == pytest.approx((total // 2) / total)
    assert half.f1 == pytest.approx(2 * half.recall / (1 + half.recall))
    # boilerplate added to the whole truth costs precision only
    noisy = overlap(truth + "\nHome | About | Contact | Privacy policy", truth)
    assert noisy.recall == 1.0 and noisy.precision == pytest.approx(total / (total + 5))


def test_evaluate_joins_pages_by_url_and_lists_the_missing_one():
    result = evaluate(str(WARC), str(TRUTH), "resiliparse")
    rows = truth_rows()
    assert [p.url for p in result.pages] == [r["url"] for r in rows]
    # resiliparse's main-content pass finds no text in the kill-the-newsletter page: ingest rejects it
    assert [(p.url, p.missing) for p in result.missing] == [
        (rows[3]["url"], "warc-empty-extraction"),
        ("https://missing-url.invalid/wceb/0551", NOT_IN_INPUT),
    ]
    for page, row in zip(result.missing, (rows[3], rows[5])):
        assert page.scores.recall == 0.0 and page.scores.truth == len(token_list(row["main_content"]))
    # macro: F1 averaged over all 9 truth pages, the missing ones as 0; precision over the 7 extracted
    extracted = [p.scores for p in result.pages if not p.missing]
    assert result.macro["f1"] == pytest.approx(sum(s.f1 for s in extracted) / 9)
    assert result.macro["precision"] == pytest.approx(sum(s.precision for s in extracted) / 7)
    micro = result.micro
    assert micro.truth == sum(sum(tokens(r["main_content"]).values()) for r in rows)
    assert 0 < micro.f1 < 1


def test_extractors_differ_on_real_pages_and_the_default_is_not_worse():
    old = evaluate(str(WARC), str(TRUTH), "resiliparse")
    new = evaluate(str(WARC), str(TRUTH))
    assert new.extractor == DEFAULT_EXTRACTOR
    # the kill-the-newsletter page: resiliparse keeps nothing of it, trafilatura its text
    url = truth_rows()[3]["url"]
    assert [p.url for p in new.missing] == ["https://missing-url.invalid/wceb/0551"]
    assert next(p.scores.f1 for p in new.pages if p.url == url) > 0.8
    assert new.macro["f1"] > old.macro["f1"]


def test_cli_prints_the_table_and_writes_the_json(tmp_path):
    out = tmp_path / "scores.json"
    result = CliRunner().invoke(
        app, ["eval", "extraction", str(WARC), "--truth", str(TRUTH), "--json", str(out), "-e", "resiliparse"]
    )
    assert result.exit_code == 0, result.output
    assert "micro" in result.output and "macro" in result.output
    assert "https://missing-url.invalid/wceb/0551" in result.output and NOT_IN_INPUT in result.output
    report = json.loads(out.read_text())
    assert set(report) == {
        "input",
        "truth",
        "extractor",
        "pages",
        "extracted",
        "missing",
        "extra_documents",
        "micro",
        "macro",
        "seconds",
        "per_page",
    }
    assert report["extractor"] == "resiliparse"
    assert (report["pages"], report["extracted"], report["extra_documents"]) == (9, 7, 0)
    assert report["missing"] == [
        {"url": truth_rows()[3]["url"], "truth_line": 4, "reason": "warc-empty-extraction"},
        {"url": "https://missing-url.invalid/wceb/0551", "truth_line": 6, "reason": NOT_IN_INPUT},
    ]
    assert set(report["micro"]) == {
        "precision",
        "recall",
        "f1",
        "matched_tokens",
        "extracted_tokens",
        "truth_tokens",
    }
    assert set(report["macro"]) == {"precision", "recall", "f1"}
    assert len(report["per_page"]) == 9
    assert f"{report['macro']['f1']:.3f}" in result.output
    page = report["per_page"][0]
    assert page["status"] == "extracted" and page["matched_tokens"] <= page["truth_tokens"]


def test_a_page_counted_once_per_truth_line_when_a_url_repeats(tmp_path):
    """Two truth lines for one URL but one capture: the second has no page to join and is missing."""
    rows = truth_rows()
    truth = tmp_path / "t.jsonl.gz"
    with gzip.open(truth, "wt", encoding="utf-8") as f:
        for row in (rows[0], rows[0]):
            f.write(json.dumps(row) + "\n")
    result = evaluate(str(WARC), str(truth), "resiliparse")
    assert [p.missing for p in result.pages] == [None, NOT_IN_INPUT]
    assert result.extra_documents == 6  # 8 pages, one joined, one rejected


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"url": "a", "main_content": "x"}\n\n{"url": "b", "main_content": "y"\n', ":3: not JSON"),
        ('{"url": "a", "main_content": "x"}\n{"url": "b"}\n', ":2: `main_content` must be a string, got nothing"),
        ('{"url": 3, "main_content": "x"}\n', ":1: `url` must be a string, got int"),
        ('["url", "main_content"]\n', ":1: expected a JSON object, got list"),
        ("\n", ": no truth pages"),
    ],
)
def test_bad_truth_files_are_named_with_their_line(tmp_path, content, message):
    path = tmp_path / "truth.jsonl"
    path.write_text(content)
    with pytest.raises(TruthFileError) as err:
        load_truth(path)
    assert str(err.value).startswith(f"{path}") and message in str(err.value)
    result = CliRunner().invoke(app, ["eval", "extraction", str(WARC), "--truth", str(path)])
    assert result.exit_code == 2 and str(path) in result.output and message in result.output


def test_missing_and_damaged_truth_files(tmp_path):
    with pytest.raises(TruthFileError, match="no such truth file"):
        load_truth(tmp_path / "absent.jsonl")
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(gzip.compress(TRUTH.read_bytes())[:3000])
    with pytest.raises(TruthFileError, match=rf"{cut}:\d+: cannot read"):
        load_truth(cut)


def test_unknown_extractor_is_an_error():
    result = CliRunner().invoke(app, ["eval", "extraction", str(WARC), "--truth", str(TRUTH), "-e", "lynx"])
    assert result.exit_code == 2 and "unknown extractor 'lynx'" in result.output


def test_the_ingest_setting_names_every_extractor():
    field = IngestSettings.model_fields["extractor"]
    assert set(field.annotation.__args__) == set(EXTRACTORS) and field.default == DEFAULT_EXTRACTOR
    assert IngestSettings(extractor="resiliparse").extractor == "resiliparse"
    with pytest.raises(ValueError):
        IngestSettings(extractor="lynx")


def test_input_without_web_pages_is_an_error(tmp_path):
    result = CliRunner().invoke(app, ["eval", "extraction", str(tmp_path / "*.warc.gz"), "--truth", str(TRUTH)])
    assert result.exit_code == 2 and "no WARC or HTML files there" in result.output
