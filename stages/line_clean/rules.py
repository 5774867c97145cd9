"""The line rules of `line_clean`: each finds boilerplate lines of one kind in a page.

A rule reads a `Page` (the document's lines, their whitespace-collapsed keys, the language) and
returns the indexes of the lines it would remove; the stage removes a line under the first rule, in
`RULES` order, that names it. Boilerplate lines are short, so the pattern rules look only at lines of
at most `Settings.max_pattern_chars` characters: a paragraph that mentions a cookie or a copyright
is article text, and a 1 MB line costs one length check.

Sources: the C4 line rules are Raffel et al. 2020, section 2.2 (TensorFlow Datasets `c4_utils`:
lines holding "javascript", the policy phrases, lines without terminal punctuation); repeated lines
are Gopher's (Rae et al. 2021, table A1) and FineWeb's repetition signals, turned from a document
filter into an edit that keeps the first copy; navigation rows and the Chinese social and web
boilerplate are winnow's, written from real crawl pages and Weibo threads (docs/line_clean.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Settings:
    """Thresholds shared by the rules (the stage config fills them)."""

    max_pattern_chars: int = 300  # pattern rules ignore longer lines: those are paragraphs, not boilerplate
    nav_max_chars: int = 40  # a navigation-like line is at most this long (characters, key)
    nav_min_run: int = 3  # ... and is removed inside a run of at least this many such lines
    nav_anywhere: bool = False  # remove navigation-like lines anywhere, not only in runs and at the page edges
    repeated_min_chars: int = 10  # repeats of shorter lines are kept (list bullets, "Yes", "[哈哈]")
    repeated_min_share: float = 0.1  # ... and repeats go only when they hold this share of the characters
    thread_min_chars: int = 2  # in a social thread, copies of lines this long go too ("哈哈", "晚安"), at any share
    thread_min_markers: int = 3  # a thread: at least this many repost, sticker, mention or `//@` lines
    c4_min_words: int = 0  # with the terminal-punctuation rule: also lines of fewer words (C4: 3)
    c4_keep_inner_stop: bool = False  # ... but a Chinese line with a sentence end inside stays
    c4_inner_stop_min_chars: int = 40  # ... when it is at least this long (not a one-sentence reaction)


@dataclass
class Page:
    """One document's lines (without their newline) and what the rules read of them."""

    lines: list[str]
    is_zh: bool
    settings: Settings = field(default_factory=Settings)
    keys: list[str] = field(init=False)  # whitespace collapsed and trimmed: what rules compare
    text: str = field(init=False)  # the whole document, for a rule's quick "can anything match here?"

    def __post_init__(self):
        self.keys = [" ".join(line.split()) for line in self.lines]
        self.text = "\n".join(self.lines)

    def short(self) -> Iterable[tuple[int, str]]:
        """Non-empty lines a pattern rule may judge."""
        limit = self.settings.max_pattern_chars
        return ((i, key) for i, key in enumerate(self.keys) if key and len(key) <= limit)


@dataclass(frozen=True)
class Rule:
    name: str
    find: Callable[[Page], Iterable[int]]
    default: bool = True  # on unless the config says otherwise


def _pattern_rule(
    pattern: str, hint: str, max_chars: int | None = None, zh_only: bool = False
) -> Callable[[Page], list[int]]:
    """A rule removing the short lines `pattern` matches (also at most `max_chars` long; only on Chinese
    pages when `zh_only`: Weibo's stickers and mentions look like code and footnotes elsewhere). `hint`
    must occur somewhere in the document for any line to match: one scan of the text spares most
    documents the per-line search."""
    regex = re.compile(pattern, re.IGNORECASE)
    quick = re.compile(hint, re.IGNORECASE)

    def find(page: Page) -> list[int]:
        if zh_only and not page.is_zh or not quick.search(page.text):
            return []
        return [i for i, key in page.short() if (max_chars is None or len(key) <= max_chars) and regex.search(key)]

    return find


# --- C4 (Raffel et al. 2020) -------------------------------------------------------------------------

# C4 removes every line that mentions "javascript"; that also deletes articles about the language, so
# the rule here takes only the lines that talk to the reader's browser.
javascript = _pattern_rule(
    r"javascript.{0,40}\b(disabled|turned off|is off|not enabled)\b"
    r"|\b(enable|activate|turn on)\b.{0,20}javascript|请(开启|启用|打开).{0,6}javascript",
    hint="javascript",
)
"""A line asking the reader to enable JavaScript (C4's `javascript` line rule, narrowed)."""

# C4's policy phrases, plus the consent banners of 2020s pages; the Chinese forms only on short lines (a
# comment complaining about a shop's 服务条款 is text).
_policy_en = _pattern_rule(
    r"terms of use|privacy policy|cookie policy|uses cookies|use of cookies|use cookies|cookie settings"
    r"|accept (all )?cookies|manage (your )?(cookie|consent)|privacy preferences|do not sell my",
    hint="terms of use|privacy|cookie|do not sell",
    max_chars=200,
)
_policy_zh = _pattern_rule(
    r"隐私政策|隐私条款|使用条款|服务条款|用户协议|使用cookie", hint="隐私|条款|协议|cookie", max_chars=30
)


def policy(page: Page) -> list[int]:
    return sorted(set(_policy_en(page)) | set(_policy_zh(page)))


"""A cookie, privacy or terms-of-use line (C4's policy substrings, plus consent banners)."""

lorem_ipsum = _pattern_rule(r"lorem ipsum", hint="lorem")
"""Placeholder text (C4 drops the page; here the line goes and the rest is judged)."""

_END = re.compile(r"[.!?\"'。！？…」』”’）):：；;]$")
_INNER_STOP_ZH = re.compile(r"[。！？]")


def lines_without_terminal_punctuation(page: Page) -> list[int]:
    """C4: lines that do not end in terminal punctuation (and, with `c4_min_words`, lines with fewer
    words). Only lines up to `max_pattern_chars` long, like the other pattern rules: a longer line
    without a stop is a paragraph cut off (a truncated article, a dump's fixed-length excerpt), not a
    menu or a heading. Off in the first `line_clean`: Chinese social text, lists, headings and table
    rows end without a stop, and the whole-document rules should see them (configs/default.yaml runs
    it in a second `line_clean` after `heuristics`). With `c4_keep_inner_stop`, a Chinese line of at
    least `c4_inner_stop_min_chars` holding a full-width sentence end (。！？) before its last character
    stays: it is prose whose last sentence lost its stop (a one-line Zhihu answer trailing off), not a
    menu or a heading; shorter ones are mostly one-line reactions under a Weibo post."""
    settings = page.settings
    min_words = settings.c4_min_words
    inner = settings.c4_keep_inner_stop and page.is_zh

    def prose(key: str) -> bool:
        return len(key) >= settings.c4_inner_stop_min_chars and bool(_INNER_STOP_ZH.search(key, 0, len(key) - 1))

    return [
        i
        for i, key in page.short()
        if (not _END.search(key) and not (inner and prose(key)))
        or (min_words and not page.is_zh and len(key.split()) < min_words)
    ]


# --- repeated lines (Gopher, FineWeb) ------------------------------------------------------------------

_LIST_ITEM = re.compile(r"^(\d{1,3}[、.)）]|[•·\-*–]\s|[(（]\d{1,3}[)）])")


def repeated_lines(page: Page) -> list[int]:
    """Later exact copies (whitespace aside) of a line of at least `repeated_min_chars` characters; the
    first copy stays. Gopher and FineWeb drop documents with many repeated lines; removing the copies
    lets a thread or a page with a repeated footer keep its text. A page whose copies hold less than
    `repeated_min_share` of its characters keeps them: there they are mostly table and list cells
    ("Pros & Cons", "专家点评") that the truth of real pages repeats too. A social thread (at least
    `thread_min_markers` repost, sticker, mention or `//@` lines) is another matter: there a copy is a
    repost or an echoed comment ("哈哈", "真的假的？"), so copies of lines from `thread_min_chars` go at
    any share; FineWeb would otherwise drop the thread for one reposted line (its limit is 1%)."""
    settings = page.settings
    found = _copies(page, settings.repeated_min_chars)
    if not found and settings.thread_min_chars >= settings.repeated_min_chars:
        return []
    if _is_thread(page):
        return _copies(page, min(settings.thread_min_chars, settings.repeated_min_chars))
    share = settings.repeated_min_share
    if found and share > 0:
        total = sum(map(len, page.keys))
        if sum(len(page.keys[i]) for i in found) < share * total:
            return []
    return found


def _copies(page: Page, minimum: int) -> list[int]:
    seen: set[str] = set()
    found = []
    for i, key in enumerate(page.keys):
        if len(key) < minimum or _LIST_ITEM.match(key):
            continue
        if key in seen:
            found.append(i)
        else:
            seen.add(key)
    return found


def _is_thread(page: Page) -> bool:
    """A Weibo-style thread, one post a line: it carries repost markers, sticker or mention lines, or
    repost chains. Pages and e-mails rarely hold more than one or two such lines."""
    need = page.settings.thread_min_markers
    if need <= 0:
        return True
    if not _THREAD_HINT.search(page.text):
        return False
    chains = sum(1 for line in page.lines if "//" in line and _CHAIN_HOP.search(line))
    if chains >= need:
        return True
    marked = set(repost_boilerplate(page)) | set(emoticon_only(page)) | set(mention_only(page))
    return chains + len(marked) >= need


# --- Chinese social boilerplate (Weibo and forums) ---------------------------------------------------

_REPOST_WORDS = r"(转发微博|轉發微博|转发|轉發|转|轉|转一下|转起|扩散|repost)"
_TAIL = r"[\s。.!！~～、，,]*"
_EMOTICON = r"\[[^\[\]\s]{1,8}\]"
repost_boilerplate = _pattern_rule(rf"^(@[^\s:：@]+[:：]?\s*)?{_REPOST_WORDS}{_TAIL}$", hint="转|轉|扩散|repost")
"""A line that is only a repost marker ("转发微博。", "轉發微博", "转发"): the words of no one."""

emoticon_only = _pattern_rule(rf"^(\s*{_EMOTICON})+{_TAIL}$|^\[$", hint=r"\[", zh_only=True)
"""A line of bracketed emoticons only ("[哈哈][哈哈]", "[蜡烛]"), as Weibo renders its stickers."""

mention_only = _pattern_rule(r"^(@[^\s@:：]+[\s:：,，]*)+$", hint="@", zh_only=True)
"""A line of @-mentions only (tagging friends to spread a post)."""

# "//@user: text" is one earlier repost in a chain; its own words are kept, a hop whose words are a
# repost marker or stickers only is boilerplate.
_CHAIN_HOP = re.compile(r"//\s*@[^\s:：/]{1,40}\s*[:：]?")
_EMPTY_HOP = re.compile(rf"^\s*({_REPOST_WORDS}|{_EMOTICON}|[\s。.!！~～、，,])*$", re.IGNORECASE)


def repost_chain_spans(line: str) -> list[tuple[int, int]]:
    """The spans of a repost line to remove: chain hops (`//@user:` and its words) whose words are pure
    boilerplate, and a leading repost marker before the chain. The repost's own words stay."""
    starts = [m.start() for m in _CHAIN_HOP.finditer(line)]
    if not starts:
        return []
    bounds = [0, *starts, len(line)]
    spans = []
    for k in range(len(bounds) - 1):
        start, end = bounds[k], bounds[k + 1]
        segment = line[start:end]
        words = segment if k == 0 else segment[_CHAIN_HOP.match(segment).end() :]
        if _EMPTY_HOP.match(words) and (k > 0 or words.strip()):
            spans.append((start, end))
    return _merge(spans)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and merged[-1][1] == start:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


_THREAD_HINT = re.compile(r"//\s*@|转|轉|扩散|repost|\[|@", re.IGNORECASE)

_COUNTER_WORDS = (
    r"(转发|轉發|评论|評論|赞|點讚|点赞|阅读|閱讀|浏览|瀏覽|点击|點擊|收藏|分享|回复|回覆|喜欢|顶|踩|"
    r"likes?|comments?|shares?|views?|reads?|replies|retweets?|votes?)"
)
_COUNT = r"\d[\d,.]*[万千kK+]?"
counters = _pattern_rule(
    rf"^(作者[:：]\s*\S+\s+)?(({_COUNTER_WORDS}\s*([(（]\s*{_COUNT}\s*[)）]|[:：]\s*{_COUNT}|\s+{_COUNT})"
    rf"|{_COUNT}\s*人?\s*{_COUNTER_WORDS})[\s|·]*)+(编辑\s*)?((发表于|發表於|发布于|posted)[:：]?.{{0,25}})?$",
    hint=_COUNTER_WORDS,
)
"""Share, like, comment and read counters ("转发(12) 评论(3) 赞(5)", "阅读 1234", "12 Comments")."""

copyright_notice = _pattern_rule(
    r"©\s*((19|20)\d\d|[a-z\u4e00-\u9fff])|\(c\)\s*(19|20)\d\d|copyright\s*(©|\(c\)|(19|20)\d\d)"
    r"|all rights reserved|版权所有|版權所有|保留所有权利|^版权声明|^版權聲明|^免责声明\s*([:：]|$)|^powered by\b",
    hint=r"©|\(c\)|copyright|rights reserved|版权|版權|保留所有|免责声明|powered by",
    max_chars=200,
)
"""Copyright and hosting lines (版权所有, ©, Copyright 2024, All rights reserved, Powered by)."""

icp = _pattern_rule(
    r"icp\s*[备證证]|icp\s*\d{6,}|公网安备|公網安備|网安备|增值电信业务经营许可证|网络文化经营许可证"
    r"|互联网新闻信息服务许可证|违法和不良信息举报",
    hint="icp|安备|许可证|举报",
)
"""Chinese registration lines (京ICP备12345678号, 京公网安备..., licence numbers)."""

site_disclaimer = _pattern_rule(
    r"^(郑重声明|特别声明|免责声明|声明|警告|聲明|警告)\s*[:：].{0,80}(本站|本网|本網|网站|網站|版权|版權|转载|轉載|未成年)"
    r"|(本站|本网站|本網站)(所有|全部|部分)?(内容|资源|影片|视频|文章|图片|資源|內容).{0,20}(来自|来源于|來自|收集|转载|網友|网友)"
    r"|未经.{0,4}(授权|许可|同意).{0,6}(禁止|不得|严禁).{0,4}(复制|转载|镜像|建立镜像|使用)"
    r"|未成年.{0,8}(离开|離開|禁止|勿入|请勿|請勿)",
    hint="声明|聲明|警告|本站|本网|本網|未经|未成年",
    max_chars=200,
    zh_only=True,
)
"""Chinese site disclaimers (本站所有内容均来自网友上传, 未经授权禁止复制, 请未成年网友自觉离开)."""

related_rows = _pattern_rule(
    r"^[\[【(（]?\s*(上一篇|下一篇|上一页|下一页|上一條|下一條|上一条|下一条|相关阅读|相关文章|相关新闻|相关链接|相关推荐|"
    r"推荐阅读|延伸阅读|热门文章|热门推荐|更多精彩|猜你喜欢|相關閱讀|相關文章)\s*[\]】)）]?\s*([:：>»\s]|$)"
    r"|^(previous|next) (post|article|story|page)\b|^(related|recommended) (posts?|articles?|stories|reading)\b",
    hint="上一|下一|相关|相關|推荐|延伸|热门|更多精彩|猜你|previous|next|related|recommended",
)
"""Related-reading and pager rows (相关阅读 / 上一篇 / 下一篇, "Next post", "Related articles")."""


# --- navigation-like short lines -------------------------------------------------------------------

_NAV_WORDS = {
    # English menus, account, share and pager words
    "home",
    "homepage",
    "about",
    "about us",
    "contact",
    "contact us",
    "login",
    "log in",
    "logout",
    "log out",
    "sign in",
    "sign up",
    "sign out",
    "register",
    "subscribe",
    "unsubscribe",
    "menu",
    "main menu",
    "search",
    "share",
    "share this",
    "share on",
    "tweet",
    "print",
    "email",
    "e-mail",
    "facebook",
    "twitter",
    "x",
    "linkedin",
    "pinterest",
    "instagram",
    "youtube",
    "reddit",
    "whatsapp",
    "tiktok",
    "telegram",
    "next",
    "previous",
    "prev",
    "back",
    "back to top",
    "top",
    "skip to content",
    "skip to main content",
    "skip navigation",
    "read more",
    "more",
    "continue reading",
    "view all",
    "see all",
    "show more",
    "load more",
    "comments",
    "comment",
    "reply",
    "like",
    "follow",
    "follow us",
    "privacy",
    "terms",
    "cookies",
    "sitemap",
    "site map",
    "careers",
    "faq",
    "faqs",
    "help",
    "support",
    "blog",
    "news",
    "shop",
    "cart",
    "checkout",
    "my account",
    "account",
    "newsletter",
    "tags",
    "tag",
    "categories",
    "category",
    "archives",
    "advertisement",
    "advertise",
    "sponsored",
    "close",
    "toggle navigation",
    "open menu",
    "english",
    "copy link",
    "permalink",
    "edit",
    "leave a comment",
    "post a comment",
    "cancel reply",
    "jump to",
    # Chinese menus, account, share and pager words
    "首页",
    "主页",
    "网站首页",
    "返回首页",
    "登录",
    "登陆",
    "注册",
    "退出",
    "免费注册",
    "立即登录",
    "设为首页",
    "加入收藏",
    "收藏本站",
    "网站导航",
    "导航",
    "联系我们",
    "关于我们",
    "网站地图",
    "帮助",
    "帮助中心",
    "返回顶部",
    "回到顶部",
    "更多",
    "查看更多",
    "分享到",
    "分享",
    "打印",
    "关闭",
    "关闭窗口",
    "评论",
    "发表评论",
    "回复",
    "转发",
    "收藏",
    "点赞",
    "举报",
    "订阅",
    "搜索",
    "免责声明",
    "广告服务",
    "客服中心",
    "手机版",
    "繁体",
    "繁體",
    "简体",
    "微博",
    "微信",
    "qq空间",
    "人人网",
    "豆瓣",
    "腾讯微博",
    "新浪微博",
    "博客",
    "论坛",
    "社区",
    "相册",
    "留言",
    "留言簿",
    "新闻",
    "日历",
    "控制面板",
    "随笔档案",
    "文章档案",
    "相关内容",
    "文章评论",
    "意见反馈",
    "投诉建议",
    "在线投稿",
    "招聘信息",
    "上一篇",
    "下一篇",
    "上一页",
    "下一页",
    "首頁",
    "登錄",
    "註冊",
    "聯繫我們",
    "關於我們",
}
_NAV_SPLIT = re.compile(r"\s*(?:[|｜/·•»>›→\-–—_,，、:：]|\s)\s*")
_NAV_STRIP = re.compile(r"^[\s\[\]【】()（）<>«»\"'“”]+|[\s\[\]【】()（）<>«»\"'“”\d]+$")


def _nav_like(key: str, limit: int) -> bool:
    """Short, without a sentence end, and at least half of its items are menu or share words."""
    if len(key) > limit or _END.search(key) and not key.endswith((":", "：")):
        return False
    items = [_NAV_STRIP.sub("", item).lower() for item in _NAV_SPLIT.split(key)]
    items = [item for item in items if item]
    if not items:
        return False
    joined = _NAV_STRIP.sub("", key).lower()
    if joined in _NAV_WORDS:
        return True
    return sum(item in _NAV_WORDS for item in items) * 2 >= len(items)


_MENU_SPLIT = re.compile(r"\s+[|｜»›>]\s+")  # spaced separators: kaomoji and tables write "-_-||" and "a|b"


def _is_menu_row(key: str, limit: int) -> bool:
    """A row of several short items joined by `|` or `>` (menus, breadcrumbs): "首页 | 产业资讯 | 企业黄页"."""
    if len(key) > 4 * limit:
        return False
    items = [item for item in _MENU_SPLIT.split(key) if item.strip()]
    return len(items) >= 3 and all(len(item) <= 16 and not _END.search(item) for item in items)


def navigation(page: Page) -> list[int]:
    """Navigation-like lines: menu rows anywhere; single menu or share words ("Home", "Share", "首页",
    "登录 注册") only in runs of `nav_min_run` or more such lines, or at the page's edges (before its first
    or after its last other line), so that a short heading inside an article stays."""
    limit = page.settings.nav_max_chars
    nav = [bool(key) and _nav_like(key, limit) for key in page.keys]
    rows = [bool(key) and _is_menu_row(key, limit) for key in page.keys]
    found = {i for i, row in enumerate(rows) if row}
    if page.settings.nav_anywhere:
        return sorted(found | {i for i, n in enumerate(nav) if n})
    content = [i for i, key in enumerate(page.keys) if key and not (nav[i] or rows[i])]
    first, last = (content[0], content[-1]) if content else (len(nav), -1)
    run: list[int] = []
    for i, key in enumerate([*page.keys, "\x00end"]):
        if i < len(nav) and (nav[i] or rows[i] or not key):
            if key:
                run.append(i)
            continue
        if len(run) >= page.settings.nav_min_run:
            found.update(run)
        run = []
    found.update(i for i, n in enumerate(nav) if n and (i < first or i > last))
    return sorted(found)


# Words that, alone on a line, are always a control, never a heading (unlike "News" or "About").
_UI_WORDS = {
    "reply",
    "loading",
    "read more",
    "learn more",
    "continue reading",
    "show more",
    "load more",
    "see more",
    "view more",
    "see all reviews",
    "add to cart",
    "add to bag",
    "add to wishlist",
    "buy now",
    "shop now",
    "skip this section",
    "skip to content",
    "skip to main content",
    "back to top",
    "share",
    "share this",
    "tweet",
    "pin it",
    "copy link",
    "external link",
    "sign in",
    "log in",
    "sign up",
    "subscribe",
    "leave a reply",
    "leave a comment",
    "post a comment",
    "cancel reply",
    "print",
    "toggle navigation",
    "返回",
    "更多",
    "查看更多",
    "分享到",
    "分享",
    "发表评论",
    "我来说两句",
    "返回页首",
    "返回顶部",
    "回到顶部",
    "关闭窗口",
    "关闭",
    "打印",
    "收藏",
    "举报",
    "回复",
    "点击查看",
    "阅读全文",
    "展开全文",
    "收起",
    "查看全文",
    "点击进入",
    "登录",
    "注册",
}
_UI_STRIP = re.compile(r"^[\s\[\]【】()（）<>«»■□●•·]+|[\s\[\]【】()（）<>«»:：.。…>»!！]+$")


def lone_ui_words(page: Page) -> list[int]:
    """A line that is only a control word ("Reply", "Read more", "Loading...", "返回", "分享到：") or only
    menu and pager words ("返回页首 | 关闭窗口", "登录 注册"), anywhere on the page."""
    limit = page.settings.nav_max_chars
    found = []
    for i, key in enumerate(page.keys):
        if not key or len(key) > limit:
            continue
        bare = _UI_STRIP.sub("", key).lower()
        if bare in _UI_WORDS:
            found.append(i)
            continue
        items = [_NAV_STRIP.sub("", item).lower() for item in _NAV_SPLIT.split(key)]
        items = [item for item in items if item and not _PAGER.match(item)]
        if len(items) >= 2 and all(item in _NAV_WORDS or item in _UI_WORDS for item in items):
            found.append(i)
    return found


_PAGER = re.compile(r"^([<>«»]+|\d+页?(/共\d+页)?|第\d+页|共\d+页)$")


RULES: list[Rule] = [
    Rule("related_rows", related_rows),
    Rule("repost_boilerplate", repost_boilerplate),
    Rule("emoticon_only", emoticon_only),
    Rule("mention_only", mention_only),
    Rule("counters", counters),
    Rule("icp", icp),
    Rule("copyright", copyright_notice),
    Rule("site_disclaimer", site_disclaimer),
    Rule("javascript", javascript),
    Rule("policy", policy),
    Rule("lorem_ipsum", lorem_ipsum),
    Rule("lone_ui_words", lone_ui_words),
    Rule("navigation", navigation),
    Rule("repeated_lines", repeated_lines),
    Rule("lines_without_terminal_punctuation", lines_without_terminal_punctuation, default=False),
]
RULE_NAMES = tuple(rule.name for rule in RULES)
REPOST_CHAIN = "repost_chain"  # the one rule that edits inside a line (repost_chain_spans)
