"""URL filter: blocklists, URL words, duplicates, caps and hostile URLs, on real URLs and real lists."""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from conftest import REPO
from pydantic import ValidationError

from stages.url_filter import UrlFilter, UrlFilterConfig

URLS = REPO / "tests" / "data" / "urls"
UT1 = REPO / "data" / "blocklists" / "ut1"

# Measured on tests/data/urls and written in docs/url_filter.md; a change to the lists or rules that
# moves them must update the docs too.
CWT_GAMBLING = 15  # ChineseWebText documents labelled gambling spam
CWT_CAUGHT_DEFAULT = 0
CWT_CAUGHT_NUMERIC = 1
CCMAIN_SPAM = 10
CCMAIN_CAUGHT_DEFAULT = 0
CCMAIN_CAUGHT_NUMERIC = 5


@pytest.fixture(scope="module")
def default_stage() -> UrlFilter:
    """The stage with the shipped default config (lists load once for the module)."""
    return UrlFilter(UrlFilterConfig())


@pytest.fixture(scope="module")
def words_stage() -> UrlFilter:
    """Word rules only (no domain lists): fast to build, and isolates the word rules."""
    return UrlFilter(UrlFilterConfig(categories=[], extra_lists=[]))


def run(stage: UrlFilter, urls: list) -> list[dict]:
    """Runs the stage on one batch; one dict per row with keep, reason, url_norm and url_domain."""
    table = pa.table({"id": [str(i) for i in range(len(urls))], "url": pa.array(urls, pa.string())})
    out = stage(table)
    return [
        {"keep": bool(k), "reason": r, "url_norm": n, "url_domain": d}
        for k, r, n, d in zip(
            out.keep,
            out.reasons.to_pylist(),
            out.table.column("url_norm").to_pylist(),
            out.table.column("url_domain").to_pylist(),
        )
    ]


def one(stage: UrlFilter, url) -> dict:
    return run(stage, [url])[0]


def lines(name: str) -> list[str]:
    return [line for line in (URLS / name).read_text(encoding="utf-8").splitlines() if line]


def labelled(name: str) -> list[tuple[str, str]]:
    rows = [line.split("\t") for line in lines(name)[1:]]
    return [(r[0], r[1]) for r in rows]


def first_entry(path: Path) -> str:
    return next(line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#"))


# --- domain and URL lists --------------------------------------------------------------------------


def test_gambling_domain_and_its_subdomains_are_dropped(default_stage):
    """Rule url-domain: a real UT1 gambling entry drops itself and every subdomain, with the
    category in the reason; look-alikes that only contain it as a label or substring stay."""
    domain = first_entry(UT1 / "gambling" / "domains")
    assert domain == "0-casino.info"
    for url in [
        f"http://{domain}/",
        f"https://www.{domain}/slots?x=1",
        f"http://a.b.{domain.upper()}/x",
        f"{domain}/path",
        f"http://{domain}./",
    ]:
        row = one(default_stage, url)
        assert (row["keep"], row["reason"]) == (False, "url-domain:gambling"), url
    for url in [f"http://{domain}.example.org/", f"http://not{domain}/", "http://example.org/0-casino.info"]:
        assert one(default_stage, url)["keep"], url


def test_each_default_category_names_itself(default_stage):
    """Rule url-domain: the reason names the UT1 category the domain came from."""
    for cat in ["dating", "agressif", "warez", "cryptojacking"]:
        domain = first_entry(UT1 / cat / "domains")
        assert one(default_stage, f"http://{domain}/")["reason"] == f"url-domain:{cat}", cat
    # shipped but off by default
    assert one(default_stage, "http://erowid.org/")["keep"]


def test_ip_entries_match_exactly(default_stage):
    """Rule url-domain: an IP address on a list matches that address, in any form a browser accepts,
    and is never walked by suffix."""
    ip = "118.123.4.224"  # first line of ut1/agressif/domains
    assert one(default_stage, f"http://{ip}/x")["reason"] == "url-domain:agressif"
    as_int = str(int.from_bytes(bytes(int(p) for p in ip.split(".")), "big"))
    assert one(default_stage, f"http://{as_int}/x")["reason"] == "url-domain:agressif"
    assert one(default_stage, "http://9.118.123.4.224/")["keep"] is True  # not an IP, not a subdomain


def test_v2fly_list_formats(tmp_path):
    """Rule url-domain for the v2fly format: plain and `domain:` lines match subdomains, `full:` only
    the exact host, `keyword:` any host containing it, `regexp:` as RE2; `include:` lines are
    skipped with a warning and attributes (`@cn`) are ignored."""
    path = tmp_path / "category-test"
    path.write_text(
        "# comment\nplain.com\ndomain:dom.cn @cn\nfull:only.this.net\nkeyword:badword\nregexp:(^|\\.)spam[0-9]+\\.xyz$\ninclude:other-list\n"
    )
    stage = UrlFilter(
        UrlFilterConfig(
            categories=[],
            word_categories=[],
            extra_lists=[{"path": str(path), "category": "adult", "format": "v2fly"}],
        )
    )
    assert stage.lists.skipped_includes == ["other-list"]
    expected = {
        "http://plain.com/": False,
        "http://x.plain.com/": False,
        "http://m.dom.cn/": False,
        "http://only.this.net/": False,
        "http://x.only.this.net/": True,
        "http://this.net/": True,
        "http://mybadwordsite.com/": False,
        "http://spam12.xyz/": False,
        "http://a.spam1.xyz/": False,
        "http://spamx.xyz/": True,
        "http://other-list.com/": True,
    }
    rows = run(stage, list(expected))
    assert [r["keep"] for r in rows] == list(expected.values())
    assert {r["reason"] for r in rows if not r["keep"]} == {"url-domain:adult"}


def test_shipped_v2fly_entries(default_stage):
    """Rule url-domain: real v2fly category-porn entries (a regexp: line and a full: line) are read."""
    assert one(default_stage, "http://www.91porn5.store/")["reason"] in ("url-domain:adult", "url-hard-word:adult")
    assert one(default_stage, "http://x.1gaoap.com/")["reason"] == "url-domain:adult"  # regexp:(^|\.)[1-5]gaoap\.com$
    assert one(default_stage, "http://anime-rule34-world.b-cdn.net/a")["reason"] == "url-domain:adult"  # full:
    assert one(default_stage, "http://other.b-cdn.net/a")["keep"]


def test_bad_v2fly_regexp_names_file_and_line(tmp_path):
    """A list line that is not a valid RE2 pattern fails at load, naming the file and line."""
    path = tmp_path / "bad"
    path.write_text("ok.com\nregexp:(unclosed\n")
    with pytest.raises(ValueError, match=r"bad:2: not a valid RE2"):
        UrlFilter(
            UrlFilterConfig(
                categories=[],
                word_categories=[],
                extra_lists=[{"path": str(path), "category": "adult", "format": "v2fly"}],
            )
        )


def test_ut1_url_list_prefixes(default_stage):
    """Rule url-url-list: a real UT1 adult/urls entry (`020sextoy.com/sk`) matches the normalised URL
    at a path boundary, whatever the scheme, `www.` or tracking parameters; not `/skate`."""
    assert "020sextoy.com/sk" in (UT1 / "adult" / "urls").read_text().splitlines()
    for url in [
        "http://020sextoy.com/sk",
        "https://www.020sextoy.com/sk/",
        "http://020sextoy.com/sk/item?utm_source=x",
        "http://020sextoy.com/sk?id=1",
    ]:
        assert one(default_stage, url)["reason"] == "url-url-list:adult", url
    for url in ["http://020sextoy.com/skate", "http://020sextoy.com/", "http://020sextoy.com/other/sk"]:
        assert one(default_stage, url)["keep"], url


def test_user_lists_by_path(tmp_path):
    """Users give their own lists: a UT1-layout folder of their own and `domains`/`urls` files."""
    root = tmp_path / "mylists"
    (root / "spam").mkdir(parents=True)
    (root / "spam" / "domains").write_text("spammy.example\nwww.wwwonly.example\n")
    (root / "spam" / "urls").write_text("blog.example/bad-section/\n")
    extra = tmp_path / "more.txt"
    extra.write_text("# my own\nextra.example\n")
    stage = UrlFilter(
        UrlFilterConfig(
            ut1_roots=[str(root)],
            categories=["spam"],
            word_categories=[],
            extra_lists=[{"path": str(extra), "category": "mine", "format": "domains"}],
        )
    )
    rows = run(
        stage,
        [
            "http://a.spammy.example/",
            "http://wwwonly.example/",
            "http://blog.example/bad-section/post",
            "http://blog.example/good",
            "http://extra.example/",
        ],
    )
    assert [r["reason"] for r in rows] == [
        "url-domain:spam",
        "url-domain:spam",
        "url-url-list:spam",
        None,
        "url-domain:mine",
    ]


def test_config_errors_are_clear(tmp_path):
    """Config validation: an unknown category lists the available ones; a missing folder or list
    file, or an unknown key, is an error before anything runs."""
    with pytest.raises(
        ValidationError, match=r"category 'gamblin' has no domains or urls file .*available: adult, agressif"
    ):
        UrlFilterConfig(categories=["gamblin"])
    with pytest.raises(ValidationError, match="no such folder"):
        UrlFilterConfig(ut1_roots=[str(tmp_path / "nope")])
    with pytest.raises(ValidationError, match="no such list file"):
        UrlFilterConfig(extra_lists=[{"path": "nope.txt", "category": "x"}])
    with pytest.raises(ValidationError, match="soft_word_treshold"):
        UrlFilterConfig(soft_word_treshold=3)
    with pytest.raises(ValidationError, match="word category 'drugs'"):
        UrlFilterConfig(word_categories=["drugs"])


# --- words -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://example.com/free-porn-videos", "url-hard-word:adult"),  # whole word
        ("http://freepornvideos.example.com/", "url-hard-word:adult"),  # sub-word in the host
        ("http://example.com/watch/xvideos123", "url-hard-word:adult"),  # sub-word
        ("http://example.com/seqing/1.html", "url-hard-word:adult"),  # pinyin 色情
        ("http://example.com/%E8%89%B2%E6%83%85/1.html", "url-hard-word:adult"),  # 色情, percent-encoded
        ("http://www.bocai.com/", "url-hard-word:gambling"),  # pinyin 博彩 as a host word
        ("http://example.com/caipiao/kaijiang", "url-hard-word:gambling"),  # 彩票
        ("http://bocaiwang.example/", "url-hard-word:gambling"),  # compound sub-word
        ("http://example.com/liuhecai-ziliao", "url-hard-word:gambling"),  # 六合彩
        ("http://example.com/yule城/index.html", "url-hard-word:gambling"),  # pinyin + character
        ("http://example.com/yule%E5%9F%8E/", "url-hard-word:gambling"),  # the same, encoded
        ("http://example.com/%E5%8D%9A%E5%BD%A9%E7%BD%91", "url-hard-word:gambling"),  # 博彩网
        ("http://example.com/news/赌场-开业", "url-hard-word:gambling"),  # 赌场
        ("http://example.com/%E5%85%AD%E5%90%88%E5%BD%A9", "url-hard-word:gambling"),  # 六合彩
        ("http://best-onlinecasino.example/", "url-hard-word:gambling"),
        ("http://example.com/sportsbook/nfl", "url-hard-word:gambling"),
    ],
)
def test_hard_words_drop_on_one_hit(words_stage, url, reason):
    """Rule url-hard-word: one hard word (whole) or hard sub-word (inside the joined host+path+query)
    drops the document, in English, pinyin and Chinese characters, with the list's category."""
    row = one(words_stage, url)
    assert (row["keep"], row["reason"]) == (False, reason)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/sex-education",  # one soft word
        "http://duchang.gov.cn/",  # 都昌县: soft word alone
        "http://example.com/desktop-ornaments",  # "porn" across a word boundary: not a sub-word
        "http://example.com/casino-royale-review",  # one soft word
        "http://example.com/yule/news",  # 娱乐 (entertainment) is not 娱乐城
        "http://example.com/xingxiang-shentai",  # contains "hentai" inside a word: whole words only
        "http://ent.sina.com.cn/yule/",
        "http://example.com/lesbian-history",  # identity words are on no list
    ],
)
def test_ambiguous_urls_are_kept(words_stage, url):
    """The lists aim at precision: one soft word, look-alike letter runs and identity words keep the
    document."""
    assert one(words_stage, url)["keep"], url


def test_soft_words_threshold():
    """Rule url-soft-words: fewer than `soft_word_threshold` different soft words keep the document;
    that many drop it; repeats of one word count once."""
    stage = UrlFilter(UrlFilterConfig(categories=[], extra_lists=[], soft_word_threshold=2))
    rows = run(
        stage,
        [
            "http://example.com/sexy",
            "http://example.com/sexy-nude",
            "http://example.com/aomen/qipai-youxi",
            "http://example.com/sexy/sexy-sexy",
        ],
    )
    assert [r["reason"] for r in rows] == [None, "url-soft-words", "url-soft-words", None]
    stage3 = UrlFilter(UrlFilterConfig(categories=[], extra_lists=[], soft_word_threshold=3))
    assert [
        r["reason"] for r in run(stage3, ["http://example.com/sexy-nude", "http://example.com/sexy-nude-webcam"])
    ] == [None, "url-soft-words"]


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/%62ocai",  # single encoding of b
        "http://example.com/%2562ocai",  # double encoding
        "http://example.com/%252562ocai",  # triple encoding
        "http://%62ocai.example.com/",  # encoded host
        "http://example.com/BOCAI",  # case
        "http://example.com/ｂｏｃａｉ",  # full-width letters
        "http://example.com/%EF%BD%82ocai",  # full-width b, encoded
        "http://example.com/x?q=bocai",  # in the query
    ],
)
def test_encoding_tricks_do_not_hide_words(words_stage, url):
    """Rule url-hard-word: percent-encoding (up to three rounds), case and full-width forms are
    undone before the word rules look."""
    assert one(words_stage, url)["reason"] == "url-hard-word:gambling", url


def test_idn_hosts_are_read_as_words(words_stage):
    """Rule url-hard-word: an IDN host is read in its Unicode form, so 博彩.com is caught although its
    normalised (punycode) form has no such letters."""
    row = one(words_stage, "http://博彩.com/")
    assert row["reason"] == "url-hard-word:gambling" and row["url_domain"].startswith("xn--")
    assert one(words_stage, f"http://{row['url_domain']}/")["reason"] == "url-hard-word:gambling"


def test_expressions_are_opt_in():
    """Rule url-expression: UT1's very_restrictive_expression is applied only when asked for."""
    url = "http://example.com/busty-pics"
    off = UrlFilter(UrlFilterConfig(categories=[], extra_lists=[], word_categories=[]))
    on = UrlFilter(UrlFilterConfig(categories=[], extra_lists=[], word_categories=[], expression_categories=["adult"]))
    assert one(off, url)["keep"]
    assert one(on, url)["reason"] == "url-expression:adult"
    assert one(on, "http://example.com/teen-health")["reason"] == "url-expression:adult"  # why it is off by default


# --- normalisation, duplicates, caps -------------------------------------------------------------------


def test_normal_form(words_stage):
    """url_norm: scheme dropped, host lowercased without www. or default port, path case kept,
    dot segments resolved, trailing slash and fragment dropped, tracking parameters removed, the
    rest sorted; `#!` routes kept."""
    cases = {
        "HTTPS://WWW.Example.COM:443/A/b/../C/?utm_source=x&z=1&gclid=abc&a=2&fbclid=y&spm=1.2#section": "example.com/A/C?a=2&z=1",
        "http://example.com": "example.com/",
        "http://example.com:8080/x/": "example.com:8080/x",
        "https://example.com:80/x": "example.com:80/x",
        "http://example.com/a%2fb/%7euser/%e4%b8%ad": "example.com/a%2Fb/~user/%E4%B8%AD",
        "http://example.com/中": "example.com/%E4%B8%AD",
        "http://example.com/#!/profile/7": "example.com/#!/profile/7",
        "http://example.com/page;jsessionid=0A1B?id=3&from=timeline": "example.com/page?id=3",
        "http://www.com/": "www.com/",
        "www.example.com/x": "example.com/x",
        "//example.com/x": "example.com/x",
    }
    rows = run(words_stage, list(cases))
    assert [r["url_norm"] for r in rows] == list(cases.values())
    assert rows[0]["url_domain"] == "example.com"


def test_duplicates_with_tracking_params_keep_the_first(words_stage):
    """Rule url-duplicate: URLs equal after normalisation (http/https, www., tracking parameters,
    parameter order, fragment, trailing slash) are duplicates; the first in the batch is kept.
    Different parameter values are different URLs."""
    urls = [
        "https://news.example.com/story/42?id=7&lang=en",
        "http://news.example.com/story/42/?lang=en&id=7&utm_source=twitter&utm_medium=social",
        "https://NEWS.example.com/story/42?fbclid=IwAR0x&lang=en&id=7#comments",
        "http://news.example.com/story/42?id=8&lang=en",
        None,
        None,
    ]
    rows = run(words_stage, urls)
    assert [r["reason"] for r in rows] == [None, "url-duplicate", "url-duplicate", None, None, None]
    assert (
        rows[0]["url_norm"] == rows[1]["url_norm"] == rows[2]["url_norm"] == "news.example.com/story/42?id=7&lang=en"
    )


def test_duplicate_scope_is_the_batch_unless_the_runner_marks_shards(words_stage):
    """Rule url-duplicate, scope: separate calls are independent (one batch of one shard); after
    start_shard() duplicates count across the calls of that shard, and the next start_shard()
    forgets them, so nothing carries between shards."""
    stage = UrlFilter(UrlFilterConfig(categories=[], extra_lists=[]))
    url = "http://example.com/a"
    assert one(stage, url)["keep"] and one(stage, url)["keep"]
    stage.start_shard("part-1")
    assert one(stage, url)["keep"] and not one(stage, url)["keep"]
    stage.start_shard("part-2")
    assert one(stage, url)["keep"]


def test_domain_caps(tmp_path):
    """Rule url-domain-cap: at most `max_docs_per_domain` kept rows per url_domain (www. and the bare
    domain are one); rows dropped by another rule do not use up the cap."""
    stage = UrlFilter(UrlFilterConfig(categories=[], extra_lists=[], max_docs_per_domain=2))
    urls = [
        "http://a.com/1",
        "http://www.a.com/2",
        "http://a.com/porn",
        "http://a.com/1",
        "http://a.com/3",
        "http://b.com/1",
        "http://sub.a.com/4",
    ]
    assert [r["reason"] for r in run(stage, urls)] == [
        None,
        None,
        "url-hard-word:adult",
        "url-duplicate",
        "url-domain-cap",
        None,
        None,
    ]
    assert one(stage, "http://a.com/5")["keep"]  # a new batch (no start_shard): a new count


def test_idn_spellings_match_one_list_entry(tmp_path):
    """IDN: a list entry in Unicode or punycode, and URLs in Unicode, punycode, upper case or with
    ideographic dots, all normalise to one punycode host, so each URL matches each entry."""
    for entry in ["例子.中国", "xn--fsqu00a.xn--fiqs8s"]:
        path = tmp_path / "idn"
        path.write_text(entry + "\n")
        stage = UrlFilter(
            UrlFilterConfig(categories=[], word_categories=[], extra_lists=[{"path": str(path), "category": "test"}])
        )
        urls = [
            "http://例子.中国/",
            "http://xn--fsqu00a.xn--fiqs8s/",
            "http://XN--FSQU00A.XN--FIQS8S/",
            "http://例子。中国/",
            "http://www.例子.中国/a",
            "http://sub.例子．中国/",
            "https://%E4%BE%8B%E5%AD%90.%E4%B8%AD%E5%9B%BD/",
        ]
        rows = run(stage, urls)
        assert [r["reason"] for r in rows] == ["url-domain:test"] * len(urls), entry
        assert {r["url_domain"] for r in rows} >= {"xn--fsqu00a.xn--fiqs8s"}


# --- hostile input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, domain, norm",
    [
        ("http://a.com@b.com/", "b.com", "b.com/"),  # userinfo: the host is b.com
        ("http://user:pass@b.com:80/x", "b.com", "b.com/x"),
        ("http://a.com\\@b.com/", "a.com", "a.com/@b.com"),  # backslash is a slash, as in browsers
        ("http://[::1]/x", "[::1]", "[::1]/x"),
        ("http://[2001:DB8:0::1]:8080/", "[2001:db8::1]", "[2001:db8::1]:8080/"),
        ("http://127.0.0.1/", "127.0.0.1", "127.0.0.1/"),
        ("http://0x7f.1/", "127.0.0.1", "127.0.0.1/"),  # browsers' IPv4 forms
        ("http://2130706433/", "127.0.0.1", "127.0.0.1/"),
        ("example.com/no-scheme", "example.com", "example.com/no-scheme"),
        ("  http://example.com/x \n", "example.com", "example.com/x"),
        ("http://exa\tmple.com/", "example.com", "example.com/"),  # tabs and newlines are removed
        ("http://example.com./", "example.com", "example.com/"),  # trailing dot
        ("http://i❤️.ws/", "xn--i-7iq.ws", "xn--i-7iq.ws/"),  # an emoji host IDNA 2008 refuses
        ("http://x.com/" + "%" * 50, "x.com", "x.com/" + "%" * 50),  # stray percent signs
    ],
)
def test_hostile_urls_parse_like_a_browser(words_stage, url, domain, norm):
    """URL parsing: userinfo, IPv4/IPv6, missing scheme, whitespace and odd encodings give the host a
    browser would contact."""
    row = one(words_stage, url)
    assert (row["url_domain"], row["url_norm"]) == (domain, norm)


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1",
        "http://[::1]x/",
        "http://[nonsense]/",
        "javascript:alert(1)",
        "mailto:a@b.com",
        "data:text/html,hi",
        "ftp://example.com/file",
        "http://",
        "http:///",
        "/relative/path",
        "http://a b.com/",
        "http://exa%mple.com/",
        "http://256.256.256.256/",
        "http://1.2.3.4.5/",
        "http://example.com:99999/",
        "http://example.com:port/",
        "http://a..b.com/",
        "http://%00.com/",
        "http://%ff%fe.com/",
        "http://" + "a" * 300 + ".com/",
        "http://example.com:" + "9" * 5000 + "/",
    ],
)
def test_unparsable_urls_are_kept_or_named(words_stage, url):
    """Rule url-invalid: a URL with no usable host is kept with null url_norm/url_domain (the URL filter
    has nothing to say), or dropped as `url-invalid` when drop_invalid is on."""
    row = one(words_stage, url)
    assert (row["keep"], row["reason"], row["url_norm"], row["url_domain"]) == (True, None, None, None)
    strict = UrlFilter(UrlFilterConfig(categories=[], extra_lists=[], word_categories=[], drop_invalid=True))
    assert one(strict, url)["reason"] == "url-invalid"


def test_null_empty_and_missing_urls_are_kept(words_stage):
    """A null, empty or blank URL, or a table without the URL column, is kept with null columns."""
    rows = run(words_stage, [None, "", "   "])
    assert all(r["keep"] and r["url_norm"] is None and r["url_domain"] is None for r in rows)
    out = words_stage(pa.table({"id": ["a"], "text": ["x"]}))
    assert out.keep.tolist() == [True] and out.table.column("url_norm").to_pylist() == [None]


def test_long_urls_are_capped_and_linear():
    """Rule url-too-long: only `max_url_chars` characters of path and query are examined (a megabyte
    URL takes milliseconds, not quadratic time); the host is found however much userinfo pads it;
    domain and word rules still apply, the URL gets no url_norm (it is no dedup key), and
    drop_invalid drops it as `url-too-long`."""
    stage = UrlFilter(UrlFilterConfig(categories=[], extra_lists=[]))
    long_url = "http://example.com/" + "a/" * 500_000
    started = time.perf_counter()
    row = one(stage, long_url)
    assert time.perf_counter() - started < 0.5
    assert row["keep"] and row["url_norm"] is None and row["url_domain"] == "example.com"
    assert one(stage, "http://example.com/porn/" + "a" * 10_000)["reason"] == "url-hard-word:adult"
    assert one(stage, "http://" + "a." * 100_000 + "com/")["url_domain"] is None
    padded = one(
        UrlFilter(UrlFilterConfig(word_categories=[])), "http://" + "user@" * 2000 + "0-casino.info/x"
    )  # the host past the cap
    assert padded["url_domain"] == "0-casino.info" and padded["reason"] == "url-domain:gambling"
    strict = UrlFilter(UrlFilterConfig(categories=[], extra_lists=[], drop_invalid=True))
    assert one(strict, long_url)["reason"] == "url-too-long"


def test_never_raises_on_random_strings(words_stage):
    """No string makes the stage raise: 3,000 random strings built from URL syntax characters,
    unicode, controls and encoded surrogates all come back with a verdict."""
    rng = random.Random(7)
    alphabet = list("htps:/@[]%.:?#&=\\ab0129xn--") + [
        "例",
        "。",
        "\u0000",
        "%ed%a0%80",
        "\u200b",
        "%e4",
        "%2",
        "%ff",
        "www.",
        "://",
        "[::",
        "xn--",
    ]
    urls = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 60))) for _ in range(3000)]
    urls += ["http://" + u for u in urls[:500]]
    out = words_stage(pa.table({"url": pa.array(urls, pa.string())}))
    assert len(out.keep) == len(urls)


def test_fast_path_agrees_with_the_general_parser(default_stage):
    """URL parsing: the fast path for plain http(s) URLs gives exactly what the general parser gives
    (a leading space forces the general one), on real URLs and the benchmark's synthetic ones."""
    from benchmarks.bench_url_filter import _bench_urls
    from stages.url_filter import Parsed, parse_url

    tracking = default_stage.lists.tracking
    urls = (
        lines("ccnet-en.txt")
        + lines("dolma-crawl-en.txt")
        + [u for u, _ in labelled("chinesewebtext-zh.tsv")]
        + _bench_urls(3000)
    )
    urls += [
        "http://example.com/a/./b/../c/",
        "https://example.com/x?b=2&a=1&utm_medium=m#!/r",
        "http://EXAMPLE.com/A?%E4%B8%AD=1",
    ]
    for url in urls:
        fast, general = parse_url(url, tracking), parse_url(" " + url, tracking)
        assert isinstance(fast, Parsed) and (fast.norm, fast.host, fast.path_query, fast.words) == (
            general.norm,
            general.host,
            general.path_query,
            general.words,
        ), url


# --- real data -----------------------------------------------------------------------------------------


def test_real_english_urls_are_kept(default_stage):
    """Precision on real English web URLs (CCNet head bucket and a 2024 research-site crawl): at
    least 95% are kept by the default config (all 55 are, as measured)."""
    urls = lines("ccnet-en.txt") + lines("dolma-crawl-en.txt")
    rows = run(default_stage, urls)
    kept = sum(r["keep"] for r in rows)
    assert len(urls) == 55
    assert kept / len(urls) >= 0.95
    assert kept == 55, [(u, r["reason"]) for u, r in zip(urls, rows) if not r["keep"]]
    assert all(r["url_norm"] and r["url_domain"] for r in rows)


def test_chinese_gambling_spam_catch_rate(default_stage):
    """Measured recall on real Chinese spam (the documented figures): ChineseWebText's 15 gambling
    SEO pages sit on hijacked or look-alike company domains with clean paths, so no list or word
    catches them (0/15); the opt-in numeric-domain rule catches the one on a numeric farm domain.
    In the CC-MAIN-2020-34 excerpt, numeric-domain catches 5 of 10 gambling/porn pages. Clean
    ChineseWebText pages are kept by the default config."""
    numeric = UrlFilter(UrlFilterConfig(numeric_domain_digits=6))
    cwt = labelled("chinesewebtext-zh.tsv")
    spam = [u for u, label in cwt if label == "gambling"]
    other = [u for u, label in cwt if label == "other"]
    assert len(spam) == CWT_GAMBLING
    assert sum(not r["keep"] for r in run(default_stage, spam)) == CWT_CAUGHT_DEFAULT
    assert sum(not r["keep"] for r in run(numeric, spam)) == CWT_CAUGHT_NUMERIC
    other_rows = run(default_stage, other)
    assert sum(r["keep"] for r in other_rows) == len(other) - _dups(other)

    cc = labelled("cc-main-2020-34-excerpt.tsv")
    cc_spam = [u for u, label in cc if label in ("gambling", "adult")]
    assert len(cc_spam) == CCMAIN_SPAM
    assert sum(not r["keep"] for r in run(default_stage, cc_spam)) == CCMAIN_CAUGHT_DEFAULT
    assert sum(not r["keep"] for r in run(numeric, cc_spam)) == CCMAIN_CAUGHT_NUMERIC
    assert all(r["keep"] for r in run(numeric, [u for u, label in cc if label == "other" and "0615235" not in u]))


def _dups(urls: list[str]) -> int:
    return len(urls) - len(set(urls))


def test_real_chinese_urls_with_gambling_words(default_stage):
    """Rule url-hard-word on real Chinese URL shapes: the ChineseWebText hosts and paths, with a
    gambling path segment in pinyin or encoded characters put in, are caught; as they are, kept."""
    base = [u for u, label in labelled("chinesewebtext-zh.tsv") if label == "other"][:20]
    assert all(r["keep"] for r in run(default_stage, base))
    spiked = [u.rstrip("/") + "/bocai/" for u in base[:10]] + [
        u.rstrip("/") + "/%E5%85%AD%E5%90%88%E5%BD%A9.html" for u in base[10:]
    ]
    assert {r["reason"] for r in run(default_stage, spiked)} == {"url-hard-word:gambling"}


# --- contract ------------------------------------------------------------------------------------------


def test_stage_contract_and_determinism(default_stage):
    """Stage contract: the input columns come back with url_norm and url_domain (strings) added,
    every drop has a reason from the documented set, and two runs give identical output."""
    urls = (
        lines("ccnet-en.txt")
        + [u for u, _ in labelled("chinesewebtext-zh.tsv")]
        + ["http://0-casino.info/", "http://a.com/porn", None, "javascript:x"]
    )
    table = pa.table(
        {
            "id": [str(i) for i in range(len(urls))],
            "text": ["t"] * len(urls),
            "url": pa.array(urls, pa.string()),
            "source": ["s"] * len(urls),
            "lang": ["zh"] * len(urls),
        }
    )
    a, b = default_stage(table), default_stage(table)
    assert a.table.column_names == table.column_names + ["url_norm", "url_domain"]
    assert (
        a.table.schema.field("url_norm").type == pa.string() and a.table.schema.field("url_domain").type == pa.string()
    )
    assert a.table.equals(b.table) and np.array_equal(a.keep, b.keep) and a.reasons.equals(b.reasons)
    reasons = {r for r in a.reasons.to_pylist() if r}
    assert reasons <= {"url-domain:gambling", "url-hard-word:adult", "url-duplicate"}
    assert default_stage(table.slice(0, 0)).table.num_rows == 0
    assert UrlFilter.stateful and UrlFilter.name == "url_filter" and UrlFilter.version == "url_filter_v1"


def test_every_config_field_is_documented():
    """Config: every field carries a description (it becomes the command-line and docs help)."""
    assert all(f.description for f in UrlFilterConfig.model_fields.values())


def test_shard_through_the_worker_conserves_rows(tmp_path, default_stage):
    """Pipeline contract, through the real worker code: on a shard of real URLs run in two batches,
    rows in = kept + rejected, rejects carry stage `url_filter` and the reason, the sidecar counts
    drops by reason, and kept rows carry url_norm and url_domain."""
    import pyarrow.parquet as pq

    from pipeline.schema import core_schema
    from pipeline.shards import Task
    from pipeline.storage import Storage
    from pipeline.worker import run_map_task

    urls = (
        lines("ccnet-en.txt")
        + [u for u, _ in labelled("chinesewebtext-zh.tsv")]
        + [
            "http://www.0-casino.info/",
            "http://example.com/porn",
            "http://example.com/porn?utm_source=x",
            "https://example.com/story",
            "http://www.example.com/story/?utm_source=x",
            None,
        ]
    )
    n = len(urls)
    shard = pa.table(
        {
            "id": [f"d{i}" for i in range(n)],
            "text": pa.array(["text"] * n, pa.large_string()),
            "url": urls,
            "source": ["web"] * n,
            "lang": ["en"] * 20 + ["zh"] * (n - 20),
        },
        schema=core_schema(),
    )
    pq.write_table(shard, tmp_path / "part-x.parquet")
    storage = Storage(str(tmp_path / "out"))
    sidecar = run_map_task(
        default_stage,
        Task(key="part-x", input_path=str(tmp_path / "part-x.parquet"), fingerprint="f"),
        storage,
        "01_url_filter",
        "h",
        batch_rows=64,
    )
    kept = pq.read_table(tmp_path / "out" / "01_url_filter" / "part-x.parquet")
    rejects = pq.read_table(tmp_path / "out" / "01_url_filter" / "rejects" / "part-x.parquet")
    assert sidecar["rows_in"] == n == kept.num_rows + rejects.num_rows
    assert sidecar["drops"] == {"url-domain:gambling": 1, "url-duplicate": 1, "url-hard-word:adult": 2}
    assert set(rejects.column("stage").to_pylist()) == {"url_filter"}
    assert {"url_norm", "url_domain"} <= set(kept.column_names)
