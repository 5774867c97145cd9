"""line_clean on real pages, Weibo threads and e-mails (tests/data/line_clean): each rule removes its
boilerplate and keeps the article, the counts add up on a real local Ray run, and bad input is handled."""

from __future__ import annotations

import gzip
import json
import re
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import SAMPLE, write_config

from pipeline.config import load_config
from pipeline.layout import read_docs, read_removed, read_sidecars
from pipeline.runner import Runner
from pipeline.storage import Storage
from stages.line_clean import LineClean, LineCleanConfig
from stages.line_clean.rules import _END as TERMINAL_END
from stages.line_clean.stage import clean, is_chinese
from stages.registry import STAGES

DATA = Path(__file__).parent / "data" / "line_clean"


def _rows(name: str) -> list[dict]:
    with open(DATA / f"{name}.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


PAGES, WEIBO, EMAILS = _rows("pages"), _rows("weibo"), _rows("emails")


def _key(text: str) -> str:
    return " ".join(text.split())


def _clean(text: str, lang: str | None = None, **config):
    cfg = LineCleanConfig(**config)
    return clean(
        text,
        is_chinese(text, lang),
        cfg.enabled(),
        cfg.settings(),
        cfg.chain(),
        cfg.max_analyzed_chars,
    )


def _removed_by(text: str, lang: str | None = None, **config) -> dict[str, str]:
    """Each removed line (whitespace collapsed) with the rule that removed it."""
    return {_key(span): rule for span, rule in _clean(text, lang, **config)[1] if _key(span)}


def _page(url_part: str) -> dict:
    return next(p for p in PAGES if url_part in p["url"])


def test_main_content_of_real_pages_survives_and_what_goes_is_boilerplate():
    """Against the annotated main text: >= 95% of its characters that reached the stage stay, and >= 90% of
    the removed characters lie outside it (a removed copy counts as main content only when the truth holds
    the line more often than the cleaned text still does)."""
    main = lost = removed = outside = 0
    for page in PAGES:
        truth = _key(page["main_content"])
        cleaned, spans, _ = _clean(page["text"], page["lang"])
        kept = _key(cleaned)
        main += sum(len(k) for k in map(_key, page["text"].split("\n")) if k and k in truth)
        for span, _rule in spans:
            k = _key(span)
            removed += len(k)
            inside = k and truth.count(k) > kept.count(k)
            lost += len(k) if inside else 0
            outside += 0 if inside else len(k)
    assert removed > 1000  # the pages do hold boilerplate
    assert 1 - lost / main >= 0.95
    assert outside / removed >= 0.90


def test_each_rule_removes_its_real_lines():
    """One real line per rule, from the page, thread or e-mail it was found in."""
    expected = [
        (_page("064b591b")["text"], "zh", "作者:zboygirl 阅读(1660) 评论(5) 编辑 发表于:2005-07-31 12:30", "counters"),
        (_page("064b591b")["text"], "zh", "Copyright © zboygirl", "copyright"),
        (_page("064b591b")["text"], "zh", "发表评论", "lone_ui_words"),
        (_page("33a95b71")["text"], "zh", "*经营许可证编号：京ICP00000008号", "icp"),
        (_page("33a95b71")["text"], "zh", "相关链接", "related_rows"),
        (_page("e3f3b532")["text"], "zh", "[上一篇] [下一篇]", "related_rows"),
        (
            _page("0d931936")["text"],
            "zh",
            "企业服务首页 | 产业资讯 | 企业短信 | 企业黄页 | 企业邮箱 | 搜索排名 | 招商投资 | 城市联盟",
            "navigation",
        ),
        (_page("online.stanford")["text"], "en", None, "javascript"),
        (_page("ridge.com")["text"], "en", None, "lorem_ipsum"),
        (
            _page("cruisecritic")["text"],
            "en",
            "By proceeding, you agree to our Privacy Policy and Terms of Use.",
            "policy",
        ),
        (_page("cruisecritic")["text"], "en", "© 1995—2026, The Independent Traveler, Inc.", "copyright"),
        (_page("forum.asana")["text"], "en", "2 Likes", "counters"),
        (_page("cnx-software")["text"], "en", "Share this:", "lone_ui_words"),
        (WEIBO[0]["text"], None, "转发微博。", "repost_boilerplate"),
        (WEIBO[0]["text"], None, "[哈哈]", "emoticon_only"),
        (WEIBO[0]["text"], None, "@綮许_一年待记", "mention_only"),
        (EMAILS[4]["text"], None, "回复", "lone_ui_words"),
    ]
    for text, lang, line, rule in expected:
        removed = _removed_by(text, lang)
        if line is None:
            assert rule in removed.values(), rule
        else:
            assert _key(line) in _key(text), line  # the line is real
            assert removed.get(_key(line)) == rule, (line, removed.get(_key(line)))


def test_article_text_short_headings_and_mentions_in_paragraphs_stay():
    """Headings inside an article, paragraphs that mention an ICP number or cookies, and Weibo comments with
    words of their own are kept."""
    blog = _page("064b591b")
    cleaned = _clean(blog["text"], "zh")[0]
    for line in ("她已辍学与男友很早就相识", "听到女儿怀孕母亲哭了", "13岁的小李就这样懵懵懂懂地成了母亲。"):
        assert line in blog["main_content"] and line in cleaned
    email = next(e["text"] for e in EMAILS if "陕ICP备" in e["text"])
    assert _clean(email)[0] == email  # the ICP number sits in a complaint's paragraph: nothing to remove
    thread = WEIBO[0]["text"]
    cleaned = _clean(thread)[0]
    kept_comments = [line for line in thread.split("\n") if len(line) > 30 and "转发微博" not in line]
    assert kept_comments and all(line in cleaned for line in kept_comments)


def test_repost_chain_keeps_the_reposters_words():
    """`//@user:` hops with words of their own stay; hops that only say 转发微博 or post a sticker go, and so
    does a line that is nothing but such hops. The hops are real repost lines of thread 1658."""
    real = next(line for line in WEIBO[0]["text"].split("\n") if "// @杜芝富" in line)
    assert _clean(real + "\n" + real)[0].startswith(real)  # every hop has words: unchanged
    own = "好可爱的孩子，虎头虎脑的！转！"
    line = own + "//@边疆地雷:转发微博//@金铃妻子:[泪]"
    text = "\n".join([line, "//@边疆地雷:转发微博", real])
    cleaned, removed, count = _clean(text)
    assert cleaned.split("\n")[0] == own
    assert ("//@边疆地雷:转发微博//@金铃妻子:[泪]", "repost_chain") in removed
    assert ("//@边疆地雷:转发微博\n", "repost_chain") in removed and count == 1
    assert real in cleaned
    assert _clean(text, rules={"repost_chain": False})[0] == text


def test_navigation_words_only_in_runs_or_at_the_edges_and_switches():
    """A lone menu word inside the text stays (it may be a heading); in a run or at the page's edge it goes.
    `nav_anywhere` and the per-rule switches change that; the C4 punctuation rule is off by default."""
    body = "\n".join(line for line in WEIBO[1]["text"].split("\n") if len(line) > 30)
    text = "\n".join(["首页", "新闻", "博客", "论坛", body, "新闻", body[::-1]])
    removed = [span for span, rule in _clean(text)[1] if rule == "navigation"]
    assert removed == ["首页\n", "新闻\n", "博客\n", "论坛\n"]
    assert "新闻\n" in [span for span, rule in _clean(text, nav_anywhere=True)[1] if rule == "navigation"][4:]
    assert not [r for _, r in _clean(text, rules={"navigation": False})[1] if r == "navigation"]
    page = _page("forum.asana")["text"]
    unpunctuated = {r for _, r in _clean(page, "en", rules={"lines_without_terminal_punctuation": True})[1]}
    assert "lines_without_terminal_punctuation" in unpunctuated
    assert "lines_without_terminal_punctuation" not in {r for _, r in _clean(page, "en")[1]}


def test_repeated_lines_keep_the_first_copy():
    """Later copies go when they are a real share of the document; the first copy stays."""
    page = _page("webhostingtalk")["text"]
    cleaned, removed, _ = _clean(page, "en")
    copies = [span for span, rule in removed if rule == "repeated_lines"]
    assert len(copies) >= 2
    for span in copies:
        assert page.count(span.strip()) >= 2 and cleaned.count(span.strip()) >= 1
    few = _clean(page, "en", repeated_min_share=0.9)[1]
    assert "repeated_lines" not in {r for _, r in few}


def test_thread_copies_go_at_any_share_so_fineweb_keeps_the_thread_but_page_labels_stay():
    """In a real Weibo thread an echoed post ("网传，文章的道歉微博...") is under 10% of the text, yet
    FineWeb's duplicated-line rule (1%) drops the thread for it; as a thread (sticker, mention and repost
    lines) its copies go and the thread is kept. A news page's repeated section label ("专家点评",
    seven times, all in the annotated main content) stays: the page is no thread."""
    from stages.heuristics import Heuristics, HeuristicsConfig

    thread = next(t["text"] for t in WEIBO if t["thread"].startswith("686_"))
    heuristics = Heuristics(HeuristicsConfig())

    def verdict(text: str) -> str | None:
        out = heuristics(pa.table({"id": ["t"], "text": pa.array([text], pa.large_string()), "lang": ["zh"]}))
        return out.reasons.to_pylist()[0]

    as_page, removed_as_page, _ = _clean(thread, "zh", thread_min_markers=1000)
    assert "repeated_lines" not in {r for _, r in removed_as_page}
    assert verdict(as_page) == "fineweb-dup-line-chars"
    cleaned, removed, _ = _clean(thread, "zh")
    copies = [_key(span) for span, rule in removed if rule == "repeated_lines"]
    assert copies and sum(map(len, copies)) < 0.1 * len(thread)  # under the share a page needs
    assert all(thread.count(c) >= 2 and c in cleaned for c in copies)  # the first copy stays
    assert verdict(cleaned) is None

    page = _page("c268c1b4")
    cleaned_page, removed_page, _ = _clean(page["text"], "zh")
    assert "repeated_lines" not in {r for _, r in removed_page}
    assert cleaned_page.count("专家点评") == page["text"].count("专家点评") >= 5
    assert page["main_content"].count("专家点评") >= 5


def test_stage_drops_documents_left_too_short_and_reports_every_character():
    """A document of boilerplate only is dropped with a reason and its original text; a short document that
    lost nothing passes (min_length's business); characters: in = out + rejected + removed."""
    boilerplate = "转发微博。\n[哈哈]\n[蜡烛][蜡烛][蜡烛]\n@薛蛮子\n转发"
    texts = [boilerplate, "好可爱的孩子，虎头虎脑的！", "", PAGES[0]["text"]]
    table = pa.table(
        {
            "id": ["a", "b", "c", "d"],
            "text": pa.array(texts, pa.large_string()),
            "lang": pa.array([None, "zh", None, "en"], pa.string()),
        }
    )
    out = LineClean(LineCleanConfig())(table)
    assert out.keep.tolist() == [False, True, True, True]
    assert out.reasons.to_pylist()[0] == "line-clean-too-short"
    assert out.table.column("text")[0].as_py() == boilerplate
    kept = sum(len(t) for t, k in zip(out.table.column("text").to_pylist(), out.keep, strict=True) if k)
    rejected = len(boilerplate)
    removed = sum(len(s) for s in out.removed.column("span").to_pylist())
    assert sum(map(len, texts)) == kept + rejected + removed
    assert set(out.removed.column("row").to_pylist()) == {3}
    assert out.table.column("line_clean_lines")[3].as_py() > 0


def test_bad_input_50_mb_document_1_mb_line_and_mixed_scripts():
    """A 50 MB document is cleaned in its first `max_analyzed_chars` and kept whole after; a 1 MB line is
    passed over by the pattern rules; mixed scripts are untouched; no text is lost without a span."""
    article = "\n".join(p["text"] for p in PAGES)
    huge = (article + "\n") * (50_000_000 // len(article) + 1)
    one_mb_line = _key(" ".join(p["main_content"] for p in PAGES)) * 10
    one_mb_line = one_mb_line[:1_000_000]
    mixed = (
        "Tokyo 東京 とうきょう, Seoul 서울, Cairo القاهرة — 混合文字的一行。\n"
        "Moscow Москва, Athens Αθήνα, Delhi दिल्ली 🙂 and a zero-width joiner 👩\u200d💻.\n"
        "第三行：English words, 한국어 단어, עברית, and ไทย in one line."
    )
    tail = _key(PAGES[5]["main_content"])[:500]
    texts = [huge, one_mb_line + "\n转发微博。\n" + tail, mixed]
    table = pa.table({"id": ["huge", "line", "mixed"], "text": pa.array(texts, pa.large_string())})
    start = time.perf_counter()
    out = LineClean(LineCleanConfig())(table)
    assert time.perf_counter() - start < 60
    new = out.table.column("text").to_pylist()
    removed = Counter()
    for row, span in zip(out.removed.column("row").to_pylist(), out.removed.column("span").to_pylist(), strict=True):
        removed[row] += len(span)
    assert all(len(texts[i]) == len(new[i]) + removed[i] for i in range(3))
    assert new[0].endswith(texts[0][-1_000_000:])  # beyond the analysed head: unchanged
    assert removed[0] > 0
    assert new[1] == one_mb_line + "\n" + tail
    assert new[2] == mixed and out.keep.all()


def test_config_names_rules_and_rejects_unknown_ones():
    """Rules are switched by name; a misspelt name fails when the config loads."""
    assert LineCleanConfig(rules={"icp": False}).enabled()[0].name == "related_rows"
    assert "icp" not in {r.name for r in LineCleanConfig(rules={"icp": False}).enabled()}
    with pytest.raises(ValueError):
        LineCleanConfig(rules={"icp_lines": False})
    assert "line_clean" in STAGES


def test_only_runs_the_named_rule_and_keeps_long_unpunctuated_lines():
    """`only: [lines_without_terminal_punctuation]` (the default's second line_clean) removes short lines
    without a stop and nothing else; lines over `max_pattern_chars` stay (cut-off paragraphs)."""
    cfg = {"only": ["lines_without_terminal_punctuation"]}
    assert [r.name for r in LineCleanConfig(**cfg).enabled()] == ["lines_without_terminal_punctuation"]
    assert not LineCleanConfig(**cfg).chain()
    end = TERMINAL_END
    removed_any = 0
    for doc in PAGES + WEIBO:
        cleaned, removed, _ = _clean(doc["text"], doc.get("lang"), **cfg)
        assert {rule for _, rule in removed} <= {"lines_without_terminal_punctuation", "blank_lines"}
        for span, rule in removed:
            if rule != "blank_lines":
                assert len(_key(span)) <= 300 and not end.search(_key(span)), span
        for line in cleaned.split("\n"):
            assert not _key(line) or end.search(_key(line)) or len(_key(line)) > 300, line
        removed_any += sum(rule != "blank_lines" for _, rule in removed)
    assert removed_any > 100
    paragraph = _key(next(line for doc in PAGES for line in doc["text"].split("\n") if len(_key(line)) > 400))
    cut = paragraph[:350].rstrip(".!?。！？…")  # a paragraph cut off mid-sentence
    assert _clean(cut + "\nMenu\n" + paragraph, "en", **cfg)[0] == cut + "\n" + paragraph


def test_chinese_lines_with_a_stop_inside_stay_with_c4_keep_inner_stop():
    """Real one-line Zhihu answers (the bundled sample) whose last sentence has no stop lose their only
    line to C4's edit; with `c4_keep_inner_stop` a Chinese line of 40+ characters holding 。！？ before its
    end stays. Lines with no stop anywhere (menus, headings of real Chinese pages) and short Weibo
    reactions still go, and English is unaffected."""
    cfg = {"only": ["lines_without_terminal_punctuation"]}
    with gzip.open(SAMPLE / "zh" / "zhihu-and-cc.jsonl.gz", "rt", encoding="utf-8") as f:
        docs = [json.loads(line)["text"] for line in f]
    inner = re.compile(r"[。！？]")
    answers = [
        t
        for t in docs
        if "\n" not in t.strip()
        and 40 <= len(_key(t)) <= 300  # longer lines are paragraphs, which the rule never judges
        and not TERMINAL_END.search(_key(t))
        and inner.search(_key(t)[:-1])
    ]
    assert len(answers) >= 10
    for text in answers:
        assert _key(_clean(text, "zh", **cfg)[0]) == ""
        assert _clean(text, "zh", **cfg, c4_keep_inner_stop=True)[0] == text
    removed_zh = 0
    for doc in PAGES + WEIBO:
        lang = doc.get("lang")
        before = _clean(doc["text"], lang, **cfg)
        after = _clean(doc["text"], lang, **cfg, c4_keep_inner_stop=True)
        if not is_chinese(doc["text"], lang):
            assert after == before
            continue
        for span, rule in after[1]:
            if rule != "blank_lines":
                assert len(_key(span)) < 40 or not inner.search(_key(span)[:-1]), span
                removed_zh += 1
    assert removed_zh > 20
    reactions = [line for doc in WEIBO for line in doc["text"].split("\n") if 2 < len(_key(line)) < 40]
    reactions = [r for r in reactions if inner.search(_key(r)[:-1]) and not TERMINAL_END.search(_key(r))]
    assert reactions  # real one-line reactions with a stop inside ("真的假的？我不信") still go
    for line in reactions:
        assert _key(_clean(line, "zh", **cfg, c4_keep_inner_stop=True)[0]) == ""


# --- a real local Ray run -----------------------------------------------------------------------------


def _inputs() -> list[dict]:
    return [
        {"path": str(DATA / "pages.jsonl"), "source": "pages", "lang_field": "lang"},
        {"path": str(DATA / "weibo.jsonl"), "source": "weibo", "lang": "zh", "url_field": None},
        {"path": str(DATA / "emails.jsonl"), "source": "emails", "url_field": None},
    ]


def _run(tmp_path: Path, workers: int) -> tuple[Path, list]:
    stages = [{"name": "normalize"}, {"name": "line_clean"}]
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = write_config(tmp_path, _inputs(), stages, ingest={"rows_per_shard": 4}, ray={"workers": workers})
    results = Runner(load_config(config, STAGES), progress=False).run_all()
    return config, results


def test_ray_run_conserves_documents_and_characters_and_is_worker_count_independent(tmp_path, ray_local):
    """Sidecars: documents in = kept + rejected, characters in = out + rejected + removed; the removed/ table
    holds every span with its rule; 1 and 2 workers write the same bytes; a rerun does nothing."""
    config, _ = _run(tmp_path / "one", 1)
    storage = Storage(str(tmp_path / "one" / "out"))
    sidecars = read_sidecars(storage, "02_line_clean")
    assert len(sidecars) >= 3
    docs_in = read_docs(storage, "01_normalize", ["id"]).num_rows
    kept = read_docs(storage, "02_line_clean", ["id", "text"])
    rejected = sum(sum(sc["drops"].values()) for sc in sidecars)
    assert docs_in == len(PAGES) + len(WEIBO) + len(EMAILS) == kept.num_rows + rejected
    chars = Counter()
    for sc in sidecars:
        chars.update(sc["chars"])
    assert chars["in"] == chars["out"] + chars["rejected"] + chars["removed"] and chars["removed"] > 10_000
    spans = read_removed(storage).to_pylist()
    assert sum(len(s["span"]) for s in spans) == chars["removed"]
    reasons = Counter(s["reason"] for s in spans)
    assert {"line_clean:repost_boilerplate", "line_clean:copyright", "line_clean:navigation"} <= set(reasons)
    by_reason = Counter()
    for sc in sidecars:
        for reason, entry in sc["removed_by_reason"].items():
            by_reason[reason] += entry["spans"]
    assert by_reason == reasons
    assert all("转发微博。\n" != line + "\n" for t in kept.column("text").to_pylist() for line in t.split("\n"))

    _run(tmp_path / "two", 2)
    for sub in ("", "removed"):
        one = sorted((tmp_path / "one" / "out" / "02_line_clean" / sub).glob("*.parquet"))
        two = sorted((tmp_path / "two" / "out" / "02_line_clean" / sub).glob("*.parquet"))
        assert one and [p.name for p in one] == [p.name for p in two]
        assert all(a.read_bytes() == b.read_bytes() for a, b in zip(one, two, strict=True))

    again = Runner(load_config(config, STAGES), progress=False).run_all()
    assert all(r.ran == 0 for r in again)


def test_default_config_puts_line_clean_between_langid_and_heuristics():
    """The default pipeline cleans lines before the whole-document rules judge the text."""
    text = (Path(__file__).resolve().parents[1] / "configs" / "default.yaml").read_text()
    names = re.findall(r"^  - name: (\w+)", text, re.M)
    assert names.index("langid") < names.index("line_clean") < names.index("heuristics")
