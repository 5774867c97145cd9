"""URL filter: drops documents by where they came from, before any text rule or model looks at them.

Rules, checked in this order; a dropped row's reason names the first rule (and list category) it hit:

1. `url-domain:<category>`: the host or any parent domain is on a domain list. Lists are UT1 folders
   (`<root>/<category>/domains`, Toulouse's squidGuard blocklists) plus extra files, by default the
   v2fly `category-porn` list. Matching walks the host's suffixes (`a.b.casino.com`, `b.casino.com`,
   `casino.com`, `com`) against one dict, so the cost is a few lookups per host, not one regex per
   list entry. v2fly `full:` entries match the host exactly, `keyword:` entries anywhere in the host,
   `regexp:` entries as RE2 patterns (linear time, so a hostile pattern or host cannot stall a
   worker); `include:` lines name other v2fly files and are skipped (a warning lists them).
2. `url-url-list:<category>`: the normalised URL starts with an entry of a UT1 `urls` file
   (`host/path`, matched on the exact host and at a path boundary: `x.com/sk` matches `x.com/sk` and
   `x.com/sk/1`, not `x.com/skate`).
3. `url-expression:<category>` (off by default): UT1's `expressions` / `very_restrictive_expression`
   regex over the decoded URL. UT1 calls it very restrictive: it matches `teen`, `gay`, `mature`.
4. `url-hard-word:<category>`: a hard word is a whole URL word (URL split on everything that is not a
   letter or digit), or a hard sub-word occurs in the host + path + query with separators removed
   (`free-porn-videos` -> `freepornvideos`). One hit drops. Checked on the percent-decoded URL
   (decoded up to three times, so `%62ocai` and `%2562ocai` are `bocai`, and `%E5%8D%9A%E5%BD%A9` is
   `博彩`), lowercased and NFKC-folded (full-width `ｃａｓｉｎｏ` is `casino`), with the host in Unicode
   form so IDN hosts are read as words too. This is datatrove's URLFilter scheme, with categories.
5. `url-soft-words`: at least `soft_word_threshold` different soft words (ambiguous ones: `sex`,
   `casino`, `duchang`) among the URL's words.
6. `url-numeric-domain` (off by default): the registered label is all digits and at least
   `numeric_domain_digits` long (`335.3355703.com`): the commonest shape of Chinese gambling and porn
   SEO farms, which no list or word catches (see docs/url_filter.md for the measured rates).
7. `url-invalid` / `url-too-long` (only with `drop_invalid: true`): not an http(s) URL, or a host
   that cannot be parsed; a URL over `max_url_chars`.
8. `url-duplicate`: the same normalised URL as an earlier kept row.
9. `url-domain-cap`: more than `max_docs_per_domain` kept rows from one `url_domain`.

A null or empty URL is kept: the URL filter has nothing to say about it.

Normalisation, written to the `url_norm` column (a dedup key, not a fetchable URL):
- the scheme is dropped, so http and https are one URL; `javascript:`, `mailto:`, `ftp:` and other
  schemes are not web URLs (url_norm null, kept unless `drop_invalid`); a missing scheme means http;
- userinfo is dropped (`http://a.com@b.com/` is host b.com, as in a browser); backslashes before the
  query are slashes, as in a browser;
- the host is lowercased, percent-decoded, IDNA-encoded to punycode (UTS #46 mapping, so `例子.中国`,
  `XN--FSQU00A.xn--fiqs8s` and full-width dots all give `xn--fsqu00a.xn--fiqs8s`), its trailing dot
  and one leading `www.` removed (`www.` and the bare domain serve the same site in practice; list
  entries lose their `www.` the same way); IPv4 in any form browsers accept (`0x7f.1`,
  `2130706433`) becomes dotted decimal, IPv6 its compressed form; the default port goes;
- the path is percent-encoding normalised (unreserved characters decoded, hex upper case, non-ASCII
  encoded as UTF-8), `.`/`..` segments resolved, `;jsessionid=` path parameters removed, a trailing
  slash removed (`/a/` is `/a`; an empty path is `/`);
- tracking query parameters (`utm_*`, `gclid`, `fbclid`, `spm`, `from`, ...: `tracking_params`) are
  removed, the rest sorted; the fragment is dropped unless it is a `#!` route.
`url_domain` is the normalised host (punycode, no `www.`, no port): the key for per-domain caps and
for per-domain statistics later.

Scope of duplicates and caps: they are counted over the rows of one call, which is one Arrow batch
of one shard (the runner hands a shard over in batches of `batch_rows`; with the default
`rows_per_shard: 2000` and `batch_rows: 2048` a batch is the whole shard). The same URL in two
shards, or two batches, is not a duplicate here: a global cross-shard URL dedup belongs to the dedup
stages, which can key on `url_norm`. A runner that calls `start_shard()` before each shard makes the
scope the whole shard. Nothing is kept across shards, so the output never depends on which worker
saw which shard first.

Speed: URL parsing is per row in Python (string methods, no regex per list entry); the host's
normalisation and its domain verdict are cached per host; sub-words, expressions and v2fly regexps
run as one RE2 pass over the batch's column (pyarrow compute).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
import unicodedata
from pathlib import Path
from typing import Literal
from urllib.parse import quote, unquote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator, model_validator

from pipeline.config import StrictModel
from pipeline.stage import MapStage, StageOutput

try:  # IDNA 2008 + UTS #46 (comes with requests); the standard library's IDNA 2003 codec otherwise
    import idna as _idna
except ImportError:  # pragma: no cover - depends on the environment
    _idna = None

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]

DEFAULT_TRACKING_PARAMS = [
    "utm_*", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "fbclid", "msclkid", "yclid", "ttclid", "twclid",
    "igshid", "mc_cid", "mc_eid", "_ga", "_gl", "_hsenc", "_hsmi", "mkt_tok", "hsa_*", "pk_*", "mtm_*",
    "spm", "scm", "from", "tt_from", "share_source", "share_medium", "share_plat", "share_from", "vd_source",
    "isappinstalled", "hmsr", "hmpl", "hmcu", "hmkw", "hmci", "ref_src", "ref_url", "phpsessid", "jsessionid",
]


# --- configuration -------------------------------------------------------------------------------


def resolve_path(path: str) -> Path:
    """A list path as given: absolute, else relative to the working directory, else to the repository.

    The repository fallback lets the shipped lists load from a Ray worker or a test whose working
    directory is elsewhere; a path that exists in neither place is returned as the repository one,
    so the error names where it was looked for."""
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p
    return REPO / p


class ExtraList(StrictModel):
    path: str = Field(description="A list file: absolute, or relative to the working directory or the repository.")
    category: str = Field(description="Category named in the drop reason (`url-domain:<category>`, `url-url-list:<category>`).")
    format: Literal["domains", "urls", "v2fly"] = Field(
        "domains",
        description="`domains`: one domain a line (matches it and its subdomains); `urls`: UT1 `host/path` prefixes; "
        "`v2fly`: domain-list-community lines (`domain`, `domain:`, `full:`, `keyword:`, `regexp:`; `include:` is skipped).",
    )

    @field_validator("path")
    @classmethod
    def _exists(cls, v: str) -> str:
        if not resolve_path(v).is_file():
            raise ValueError(f"no such list file: {v} (looked in the working directory and {REPO})")
        return v


class UrlFilterConfig(StrictModel):
    url_column: str = Field("url", description="Column holding the document URL; null or empty URLs are kept.")
    ut1_roots: list[str] = Field(
        ["data/blocklists/ut1"],
        description="Folders in the UT1 layout (`<root>/<category>/domains` and `/urls`); each category is read from every root that has it.",
    )
    categories: list[str] = Field(
        ["adult", "gambling", "dating", "agressif", "warez", "cryptojacking"],
        description="UT1 categories to block; the first listed wins when a domain is in several. Shipped but off: "
        "drogue (holds harm-reduction sites such as erowid.org), hacking, sect, lingerie.",
    )
    extra_lists: list[ExtraList] = Field(
        default_factory=lambda: [ExtraList(path="data/blocklists/v2fly/category-porn", category="adult", format="v2fly")],
        description="More list files, each with its category and format; checked after the UT1 categories.",
    )
    word_roots: list[str] = Field(
        ["data/blocklists/words"],
        description="Folders of word lists: `<root>/<category>/hard_words`, `hard_subwords`, `soft_words`, one entry a line, `#` comments.",
    )
    word_categories: list[str] = Field(["adult", "gambling"], description="Word-list categories to use; empty turns the word rules off.")
    soft_word_threshold: int = Field(
        2, ge=1, description="Drop as `url-soft-words` when the URL has at least this many different soft words (datatrove's default, 2)."
    )
    expression_categories: list[str] = Field(
        [],
        description="UT1 categories whose `expressions` (or `very_restrictive_expression`) regex is applied to the decoded URL, "
        "dropping as `url-expression:<category>`. Off by default: UT1's adult one matches teen, gay, mature, breast.",
    )
    numeric_domain_digits: int | None = Field(
        None, ge=3, description="Drop as `url-numeric-domain` when the registered label is all digits and at least this long "
        "(6 catches `3355703.com`-style SEO farms and spares 163.com, 12306.cn); null turns it off.",
    )
    dedup: bool = Field(True, description="Drop rows whose `url_norm` equals an earlier kept row's in the same batch/shard as `url-duplicate`.")
    max_docs_per_domain: int | None = Field(
        None, ge=1, description="Keep at most this many rows per `url_domain` in a batch/shard (later ones: `url-domain-cap`); null: no cap."
    )
    tracking_params: list[str] = Field(
        DEFAULT_TRACKING_PARAMS, description="Query parameters removed when normalising (case-insensitive; a trailing `*` matches a prefix)."
    )
    max_url_chars: int = Field(
        4096, ge=64, description="Only this many characters of a URL are examined; a longer URL gets a null `url_norm` (it is no dedup key)."
    )
    drop_invalid: bool = Field(False, description="Drop URLs that are not http(s) or have no parsable host (`url-invalid`), and over-long ones (`url-too-long`).")

    @field_validator("ut1_roots", "word_roots")
    @classmethod
    def _folders_exist(cls, v: list[str]) -> list[str]:
        missing = [p for p in v if not resolve_path(p).is_dir()]
        if missing:
            raise ValueError(f"no such folder: {', '.join(missing)} (looked in the working directory and {REPO})")
        return v

    @model_validator(mode="after")
    def _categories_exist(self):
        roots = [resolve_path(r) for r in self.ut1_roots]
        for cat in self.categories:
            if not any((r / cat / "domains").is_file() or (r / cat / "urls").is_file() for r in roots):
                known = sorted({d.name for r in roots if r.is_dir() for d in r.iterdir() if d.is_dir()})
                raise ValueError(f"category '{cat}' has no domains or urls file in {self.ut1_roots} (available: {', '.join(known)})")
        for cat in self.expression_categories:
            if not any(_expression_file(r / cat) for r in roots):
                raise ValueError(f"expression category '{cat}' has no expressions or very_restrictive_expression file in {self.ut1_roots}")
        word_roots = [resolve_path(r) for r in self.word_roots]
        for cat in self.word_categories:
            if not any((r / cat).is_dir() for r in word_roots):
                raise ValueError(f"word category '{cat}' is not a folder in {self.word_roots}")
        return self


def _expression_file(folder: Path) -> Path | None:
    for name in ("expressions", "very_restrictive_expression"):
        if (folder / name).is_file():
            return folder / name
    return None


# --- URL parsing ---------------------------------------------------------------------------------

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_STRIP = "".join(chr(c) for c in range(0x21)) + "\x7f"  # C0 controls and space, trimmed at both ends as browsers do
_REMOVE_TAB_NL = str.maketrans("", "", "\t\n\r")
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})  # ideographic and full-width full stops
_HOST_ASCII_OK = re.compile(r"[a-z0-9_.\-]+")
_PCT = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PATH_SAFE = "!$&'()*+,/:;=@~%"
_QUERY_SAFE = "!$&'()*+,/:;=?@~%"
_SESSION_PARAM = re.compile(r";(?:jsessionid|phpsessid)=[^/]*", re.IGNORECASE)
_NON_WORD = re.compile(r"[\W_]+")  # anything that is not a letter or digit (any script)
_DEFAULT_PORT = {"http": 80, "https": 443}
# http(s), a plain host, and a path and query of printable ASCII without escapes, `;`, `\\` or quotes
_SIMPLE = re.compile(r"(https?)://([A-Za-z0-9.\-]+)(/[^?#%;\\\"<>\x00-\x20\x7f-\U0010ffff]*)?(?:\?([^#\\\x00-\x20\x7f-\U0010ffff]*))?(#.*)?", re.S)
HOST_CACHE_SIZE = 1 << 16  # per worker: raw host -> normalised host
VERDICT_CACHE_SIZE = 1 << 17  # per worker: normalised host -> list category
MAX_RAW_HOST = 1024


class Parsed:
    """One URL after normalisation; `norm` is None for a URL longer than the limit (not a dedup key)."""

    __slots__ = ("norm", "host", "path_query", "words")

    def __init__(self, norm, host, path_query, words):
        self.norm = norm
        self.host = host  # ASCII (punycode) host, `www.` removed: the url_domain
        self.path_query = path_query
        self.words = words  # decoded, lowercased text for the word rules


INVALID = "invalid"  # sentinel results of parse_url besides a Parsed or None (no URL)


def parse_url(raw: str, tracking: tuple[frozenset, tuple], max_chars: int = 4096):
    """Parses and normalises one URL. Returns a `Parsed`, None for an empty URL, or INVALID.

    Never raises: every step is string slicing with explicit checks, and the few library calls that
    can raise (IDNA, ipaddress) are wrapped. Work is linear in the URL's length: the scheme and
    host are found in the whole string (so padding cannot push the real host out of sight), and only
    the first `max_chars` characters of the path and query are normalised and read for words."""
    too_long = len(raw) > max_chars
    m = _SIMPLE.fullmatch(raw) if not too_long else None
    if m:  # the common case, without userinfo, port, escapes or non-ASCII: no general parsing needed
        hosts = normalize_host(m.group(2))
        if hosts is None:
            return INVALID
        path, query, fragment = m.group(3), m.group(4), m.group(5)
        if not path:
            path = "/"
        else:
            if "/." in path:
                path = _remove_dot_segments(path)
            if len(path) > 1 and path[-1] == "/":
                path = path.rstrip("/") or "/"
        if query:
            query = _norm_query(query, tracking)
        path_query = path + "?" + query if query else path
        if fragment and fragment.startswith("#!"):
            path_query += "#" + _norm_pct(fragment[1:], _QUERY_SAFE)
        host, host_unicode = hosts
        return Parsed(host + path_query, host, path_query, host_unicode + _decode(path + "?" + query if query else path))
    s = raw.strip(_STRIP)
    if "\t" in s or "\n" in s or "\r" in s:
        s = s.translate(_REMOVE_TAB_NL)
    if not s:
        return None
    m = _SCHEME.match(s)
    scheme = "http"
    if m:
        candidate = m.group()[:-1].lower()
        rest = s[m.end():]
        if candidate in ("http", "https"):
            scheme = candidate
            s = rest
        elif "." in candidate and (rest[:1].isdigit() or rest[:1] in ("", "/")):
            pass  # `example.com:8080/x`: a host and port, not a scheme
        else:
            return INVALID  # javascript:, mailto:, data:, ftp:, ...
    elif s.startswith("/") and not s.startswith("//"):
        return INVALID  # a relative path: no host to judge
    cut = _first_of(s, "?#")
    if "\\" in s[:cut]:
        s = s[:cut].replace("\\", "/") + s[cut:]
    s = s.lstrip("/")
    end = _first_of(s, "/?#")
    authority, tail = s[:end], s[end:end + max_chars]
    at = authority.rfind("@")
    if at >= 0:
        authority = authority[at + 1:]
    if authority.startswith("["):
        close = authority.find("]")
        if close < 0:
            return INVALID
        raw_host, port_part = authority[: close + 1], authority[close + 1:]
        if port_part and not port_part.startswith(":"):
            return INVALID
        port = port_part[1:]
    else:
        colon = authority.rfind(":")
        raw_host, port = (authority[:colon], authority[colon + 1:]) if colon >= 0 else (authority, "")
    if port:
        if not (port.isascii() and port.isdigit()) or len(port) > 5 or int(port) > 65535:
            return INVALID
        port = "" if int(port) == _DEFAULT_PORT[scheme] else str(int(port))
    hosts = normalize_host(raw_host)
    if hosts is None:
        return INVALID
    host, host_unicode = hosts

    fragment = ""
    hash_at = tail.find("#")
    if hash_at >= 0:
        if tail.startswith("#!", hash_at):  # a `#!` route names the content (old AJAX crawling scheme)
            fragment = "#" + _norm_pct(tail[hash_at + 1:], _QUERY_SAFE)
        tail = tail[:hash_at]
    q_at = tail.find("?")
    path, query = (tail[:q_at], tail[q_at + 1:]) if q_at >= 0 else (tail, "")
    path = _norm_path(path)
    query = _norm_query(query, tracking) if query else ""
    path_query = path + ("?" + query if query else "") + fragment
    norm = None if too_long else host + (":" + port if port else "") + path_query
    words = host_unicode + _decode(path + ("?" + query if query else ""))
    return Parsed(norm, host, path_query, words)


def _first_of(s: str, chars: str) -> int:
    end = len(s)
    for c in chars:
        i = s.find(c, 0, end)
        if i >= 0:
            end = i
    return end


def normalize_host(raw: str) -> tuple[str, str] | None:
    """(ASCII host, Unicode host), both lowercased with `www.` removed, or None if it is no valid host.

    ASCII form: punycode labels, IPv4 dotted decimal, IPv6 compressed in brackets. Cached per raw
    host; a raw host too long to be a real one (253 characters, percent-encoded) is refused before
    the cache, so hostile input cannot fill it with huge keys."""
    if len(raw) > MAX_RAW_HOST:
        return None
    return _normalize_host(raw)


@functools.lru_cache(maxsize=HOST_CACHE_SIZE)
def _normalize_host(raw: str) -> tuple[str, str] | None:
    h = raw
    if "%" in h:
        h = unquote(h, errors="replace")
        if "\ufffd" in h:
            return None
    h = h.strip(_STRIP)
    if h.startswith("["):
        try:
            ip6 = "[" + ipaddress.IPv6Address(h[1:-1]).compressed + "]"
        except ValueError:
            return None
        return ip6, ip6
    h = h.translate(_DOTS).rstrip(".")
    if not h:
        return None
    if h.isascii():
        h = h.lower()
        if not _HOST_ASCII_OK.fullmatch(h) or ".." in h or h.startswith("."):
            return None
        last = h.rsplit(".", 1)[-1]
        if last.isdigit() or (last.startswith("0x") and all(c in "0123456789abcdef" for c in last[2:])):
            ip = _parse_ipv4(h)
            return (ip, ip) if ip else None
        ascii_host = h
    else:
        ascii_host = _to_ascii(h)
        if ascii_host is None:
            return None
    if len(ascii_host) > 253:
        return None
    if ascii_host.startswith("www.") and ascii_host.count(".") >= 2:
        ascii_host = ascii_host[4:]
    return ascii_host, _to_unicode(ascii_host)


def _to_ascii(host: str) -> str | None:
    """IDNA ToASCII, label by label, never failing for a host that has real labels.

    UTS #46 mapping first (lowercase, NFKC, full-width to ASCII); a label IDNA 2008 refuses (emoji)
    falls back to IDNA 2003, then to plain punycode, so one spelling always gives one ASCII form."""
    if _idna is not None:
        try:
            host = _idna.uts46_remap(host, std3_rules=False, transitional=False)
        except Exception:
            host = unicodedata.normalize("NFKC", host).lower()
    else:  # pragma: no cover - depends on the environment
        host = unicodedata.normalize("NFKC", host).lower()
    host = host.translate(_DOTS).rstrip(".")
    labels = host.split(".")
    if not all(labels):
        return None
    out = []
    for label in labels:
        if label.isascii():
            out.append(label)
            continue
        encoded = None
        if _idna is not None:
            try:
                encoded = _idna.alabel(label).decode("ascii")
            except Exception:
                encoded = None
        if encoded is None:
            try:
                encoded = label.encode("idna").decode("ascii")
            except Exception:
                encoded = "xn--" + label.encode("punycode", errors="replace").decode("ascii")
        out.append(encoded)
    host = ".".join(out)
    return host if _HOST_ASCII_OK.fullmatch(host) else None


def _to_unicode(host: str) -> str:
    if "xn--" not in host:
        return host
    labels = []
    for label in host.split("."):
        if label.startswith("xn--"):
            try:
                label = label[4:].encode("ascii").decode("punycode")
            except Exception:
                pass
        labels.append(label)
    return ".".join(labels)


def _parse_ipv4(host: str) -> str | None:
    """A host ending in a number is an IPv4 address in browsers, in decimal, octal or hex parts."""
    parts = host.split(".")
    if len(parts) > 4:
        return None
    numbers = []
    for part in parts:
        try:
            if part.startswith("0x"):
                n = int(part[2:] or "0", 16)
            elif len(part) > 1 and part.startswith("0"):
                n = int(part, 8)
            else:
                n = int(part, 10)
        except ValueError:
            return None
        numbers.append(n)
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        return None
    value = numbers[-1]
    for i, n in enumerate(numbers[:-1]):
        value += n << (8 * (3 - i))
    return str(ipaddress.IPv4Address(value))


def _norm_pct(s: str, safe: str) -> str:
    """Percent-encoding normal form: non-ASCII and unsafe characters encoded as UTF-8, escapes of
    unreserved characters decoded, remaining escapes in upper case."""
    if s.isascii() and "%" not in s and " " not in s and '"' not in s and "<" not in s and ">" not in s:
        return s
    s = quote(s, safe=safe, errors="surrogatepass")
    return _PCT.sub(_pct_fix, s)


def _pct_fix(m: re.Match) -> str:
    c = chr(int(m.group(1), 16))
    return c if c in _UNRESERVED else "%" + m.group(1).upper()


def _norm_path(path: str) -> str:
    if not path:
        return "/"
    if ";" in path:
        path = _SESSION_PARAM.sub("", path)
    path = _norm_pct(path, _PATH_SAFE)
    if "/." in path:
        path = _remove_dot_segments(path)
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    return path


def _remove_dot_segments(path: str) -> str:
    out: list[str] = []
    segments = path.split("/")
    for seg in segments[1:]:
        if seg == ".":
            continue
        if seg == "..":
            if out:
                out.pop()
            continue
        out.append(seg)
    trailing = segments[-1] in (".", "..")
    return "/" + "/".join(out) + ("/" if trailing and out else "")


def _norm_query(query: str, tracking: tuple[frozenset, tuple]) -> str:
    exact, prefixes = tracking
    kept = []
    for param in query.split("&"):
        if not param:
            continue
        name = param.split("=", 1)[0].lower()
        if "%" in name:
            name = unquote(name, errors="replace")
        if name in exact or (prefixes and name.startswith(prefixes)):
            continue
        kept.append(_norm_pct(param, _QUERY_SAFE))
    kept.sort()
    return "&".join(kept)


def _decode(s: str) -> str:
    """Percent-decodes up to three rounds (double encoding), then lowercases and NFKC-folds."""
    for _ in range(3):
        if "%" not in s:
            break
        decoded = unquote(s, errors="replace")
        if decoded == s:
            break
        s = decoded
    s = s.lower()
    if not s.isascii():
        s = unicodedata.normalize("NFKC", s).lower()
    return s


def concatenated(texts: pa.Array) -> pa.Array:
    """Texts with everything that is not a letter or digit removed: where hard sub-words are searched."""
    return pc.replace_substring_regex(texts, r"[^\pL\pN]+", "")


def tracking_rules(params: list[str]) -> tuple[frozenset, tuple]:
    exact = frozenset(p.lower() for p in params if not p.endswith("*"))
    prefixes = tuple(p[:-1].lower() for p in params if p.endswith("*"))
    return exact, prefixes


def registered_label(host: str) -> str:
    """The label a registrant chose: left of the TLD, or left of `com.cn`-style second levels.

    An approximation of the Public Suffix List, good enough for the numeric-domain rule."""
    labels = host.split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in ("com", "net", "org", "gov", "edu", "ac", "co"):
        return labels[-3]
    return labels[-2] if len(labels) >= 2 else labels[0]


# --- lists ---------------------------------------------------------------------------------------


def _list_lines(path: Path):
    """(line number, entry) for the non-empty, non-comment lines of a list file."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip() if "#" in line else line.strip()
            if line:
                yield number, line


def list_domain(entry: str) -> str | None:
    """A list entry as a host key, normalised exactly as URL hosts are (punycode, no `www.`)."""
    entry = entry.strip().lstrip("*").lstrip(".")
    hosts = normalize_host(entry)
    return hosts[0] if hosts else None


def _check_re2(pattern: str, where: str) -> None:
    try:
        pc.match_substring_regex(pa.array([""], pa.string()), pattern)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        raise ValueError(f"{where}: not a valid RE2 regular expression: {pattern!r} ({err})") from None


class Blocklists:
    """Every list the config names, loaded once per worker into dicts and sets."""

    def __init__(self, config: UrlFilterConfig):
        self.domains: dict[str, str] = {}  # domain -> category; also matches subdomains
        self.full: dict[str, str] = {}  # exact host -> category (v2fly full:)
        self.keywords: list[tuple[str, str]] = []  # (substring of host, category)
        self.host_regex: list[tuple[str, str]] = []  # (category, RE2 over the host)
        self.url_prefixes: dict[str, list[tuple[str, str]]] = {}  # host -> [(path prefix, category)]
        self.expressions: list[tuple[str, str]] = []  # (category, RE2 over the decoded URL)
        self.hard_words: dict[str, str] = {}
        self.hard_subwords: list[tuple[str, str]] = []  # (category, RE2 alternation)
        self.soft_words: frozenset[str] = frozenset()
        self.skipped_includes: list[str] = []
        self.tracking = tracking_rules(config.tracking_params)
        roots = [resolve_path(r) for r in config.ut1_roots]
        for cat in config.categories:
            for root in roots:
                if (root / cat / "domains").is_file():
                    self._load_domains(root / cat / "domains", cat)
                if (root / cat / "urls").is_file():
                    self._load_urls(root / cat / "urls", cat)
        for extra in config.extra_lists:
            path = resolve_path(extra.path)
            {"domains": self._load_domains, "urls": self._load_urls, "v2fly": self._load_v2fly}[extra.format](path, extra.category)
        for cat in config.expression_categories:
            patterns = []
            for root in roots:
                file = _expression_file(root / cat)
                if file is not None:
                    for number, line in _list_lines(file):
                        _check_re2(line, f"{file}:{number}")
                        patterns.append(line)
            if patterns:
                self.expressions.append((cat, "|".join(f"(?:{p})" for p in patterns)))
        self._load_words(config)
        if self.skipped_includes:
            log.warning("url_filter: skipped %d v2fly include: lines (other v2fly files; add them as extra_lists): %s",
                        len(self.skipped_includes), ", ".join(self.skipped_includes[:10]))

    def _load_domains(self, path: Path, category: str) -> None:
        for _, entry in _list_lines(path):
            host = list_domain(entry)
            if host:
                self.domains.setdefault(host, category)

    def _load_urls(self, path: Path, category: str) -> None:
        for _, entry in _list_lines(path):
            parsed = parse_url(entry, self.tracking)
            if isinstance(parsed, Parsed) and parsed.norm:
                prefix = parsed.path_query
                self.url_prefixes.setdefault(parsed.host, []).append(("" if prefix == "/" else prefix, category))

    def _load_v2fly(self, path: Path, category: str) -> None:
        """v2fly domain-list-community: `domain`, `domain:x`, `full:x`, `keyword:x`, `regexp:x`,
        `include:x`, each optionally followed by ` @attribute`s, which are ignored."""
        for number, line in _list_lines(path):
            entry = line.split()[0]
            kind, _, value = entry.partition(":") if ":" in entry else ("domain", "", entry)
            if kind == "domain":
                host = list_domain(value)
                if host:
                    self.domains.setdefault(host, category)
            elif kind == "full":
                host = normalize_host(value)
                if host:
                    self.full.setdefault(host[0], category)
            elif kind == "keyword":
                self.keywords.append((value.lower(), category))
            elif kind == "regexp":
                _check_re2(value, f"{path}:{number}")
                self.host_regex.append((category, value))
            elif kind == "include":
                self.skipped_includes.append(value)
            else:
                raise ValueError(f"{path}:{number}: unknown v2fly entry type '{kind}:' (expected domain, full, keyword, regexp or include)")
        # one alternation per category: a single RE2 pass per batch instead of one per pattern
        merged: dict[str, list[str]] = {}
        for cat, p in self.host_regex:
            merged.setdefault(cat, []).append(p)
        self.host_regex = [(cat, "|".join(f"(?:{p})" for p in ps)) for cat, ps in merged.items()]

    def _load_words(self, config: UrlFilterConfig) -> None:
        soft: set[str] = set()
        roots = [resolve_path(r) for r in config.word_roots]
        for cat in config.word_categories:
            subwords: list[str] = []
            for root in roots:
                folder = root / cat
                for name, target in (("hard_words", "hard"), ("soft_words", "soft"), ("hard_subwords", "sub")):
                    file = folder / name
                    if not file.is_file():
                        continue
                    for number, line in _list_lines(file):
                        text = _decode(line)
                        if target == "sub":
                            subwords.append(text)
                            continue
                        tokens = [t for t in _NON_WORD.split(text) if t]
                        if len(tokens) != 1:
                            raise ValueError(f"{file}:{number}: '{line}' is not one word; put phrases in hard_subwords")
                        if target == "hard":
                            self.hard_words.setdefault(tokens[0], cat)
                        else:
                            soft.add(tokens[0])
            subwords = [w for w in concatenated(pa.array(subwords, pa.string())).to_pylist() if w]
            if subwords:
                self.hard_subwords.append((cat, "|".join(re.escape(w) for w in sorted(set(subwords)))))
        self.soft_words = frozenset(soft)

    def host_category(self, host: str) -> str | None:
        """Domain-list verdict for one normalised host: exact entries, then suffixes, then keywords."""
        cat = self.full.get(host)
        if cat:
            return cat
        if host.startswith("[") or host.replace(".", "").isdigit():
            return self.domains.get(host)  # IP addresses match exactly, never by suffix
        domains = self.domains
        i = 0
        while True:
            cat = domains.get(host[i:] if i else host)
            if cat:
                return cat
            i = host.find(".", i) + 1
            if i == 0:
                break
        for word, cat in self.keywords:
            if word in host:
                return cat
        return None

    def url_list_category(self, parsed: Parsed) -> str | None:
        entries = self.url_prefixes.get(parsed.host)
        if not entries:
            return None
        pq = parsed.path_query
        for prefix, cat in entries:
            if not prefix or pq == prefix or (pq.startswith(prefix) and (prefix[-1] in "/?&" or pq[len(prefix)] in "/?&#")):
                return cat
        return None


# --- the stage -----------------------------------------------------------------------------------


class UrlFilter(MapStage):
    name = "url_filter"
    version = "url_filter_v1"
    Config = UrlFilterConfig
    stateful = True  # the lists (about 60,000 entries) load once per worker

    def __init__(self, config: UrlFilterConfig):
        super().__init__(config)
        self.lists = Blocklists(config)
        self._verdicts: dict[str, str | None] = {}
        self._seen: set[str] | None = None  # set by start_shard(): duplicates and caps span the shard
        self._per_domain: dict[str, int] | None = None

    def start_shard(self, key: str | None = None) -> None:
        """Makes duplicates and caps count over every batch until the next call (one shard)."""
        self._seen, self._per_domain = set(), {}

    def __call__(self, table: pa.Table) -> StageOutput:
        cfg, lists = self.config, self.lists
        n = table.num_rows
        urls = table.column(cfg.url_column).to_pylist() if cfg.url_column in table.column_names else [None] * n
        parsed: list = [None] * n
        for i, url in enumerate(urls):
            if url:
                try:
                    parsed[i] = parse_url(url, lists.tracking, cfg.max_url_chars)
                except Exception:  # parse_url is written not to raise; this keeps a bug from failing a shard
                    log.exception("url_filter: could not parse URL %r", url[:200])
                    parsed[i] = INVALID
        rows = [i for i in range(n) if isinstance(parsed[i], Parsed)]
        host_set = {parsed[i].host for i in rows}
        hosts = self._domain_verdicts(host_set)
        numeric = _numeric_hosts(host_set, cfg.numeric_domain_digits) if cfg.numeric_domain_digits else frozenset()
        words = pa.array([parsed[i].words for i in rows], pa.string())
        sub_cat = self._first_hit(lists.hard_subwords, concatenated(words) if lists.hard_subwords else words)
        expr_cat = self._first_hit(lists.expressions, words)

        reasons: list[str | None] = [None] * n
        soft_counts = np.zeros(n, dtype=float)
        hard, soft, threshold = lists.hard_words, lists.soft_words, cfg.soft_word_threshold
        for k, i in enumerate(rows):
            p = parsed[i]
            tokens = _NON_WORD.split(p.words)
            soft_counts[i] = soft_hits = len(soft.intersection(tokens))
            cat = hosts[p.host]
            if cat:
                reasons[i] = "url-domain:" + cat
                continue
            if lists.url_prefixes:
                cat = lists.url_list_category(p)
                if cat:
                    reasons[i] = "url-url-list:" + cat
                    continue
            if expr_cat[k]:
                reasons[i] = "url-expression:" + expr_cat[k]
                continue
            cat = sub_cat[k]
            if hard and not hard.keys().isdisjoint(tokens):
                cat = next(hard[t] for t in tokens if t in hard)  # the first in URL order, so the reason is deterministic
            if cat:
                reasons[i] = "url-hard-word:" + cat
                continue
            if soft_hits >= threshold:
                reasons[i] = "url-soft-words"
                continue
            if p.host in numeric:
                reasons[i] = "url-numeric-domain"
                continue
            if cfg.drop_invalid and p.norm is None:
                reasons[i] = "url-too-long"
        if cfg.drop_invalid:
            for i in range(n):
                if parsed[i] is INVALID:
                    reasons[i] = "url-invalid"

        seen = self._seen if self._seen is not None else set()
        per_domain = self._per_domain if self._per_domain is not None else {}
        cap = cfg.max_docs_per_domain
        for i in rows:
            if reasons[i] is not None:
                continue
            p = parsed[i]
            if cfg.dedup and p.norm is not None:
                if p.norm in seen:
                    reasons[i] = "url-duplicate"
                    continue
                seen.add(p.norm)
            if cap is not None:
                count = per_domain.get(p.host, 0)
                if count >= cap:
                    reasons[i] = "url-domain-cap"
                    continue
                per_domain[p.host] = count + 1

        norm = pa.array([p.norm if isinstance(p, Parsed) else None for p in parsed], pa.string())
        domain = pa.array([p.host if isinstance(p, Parsed) else None for p in parsed], pa.string())
        out = _set_column(_set_column(table, "url_norm", norm), "url_domain", domain)
        keep = np.fromiter((r is None for r in reasons), dtype=bool, count=n)
        return StageOutput(out, keep, pa.array(reasons, pa.string()), signals={"url_soft_words": soft_counts})

    def _domain_verdicts(self, hosts: set[str]) -> dict[str, str | None]:
        """Domain-list verdicts for a batch's hosts, from the per-worker cache where possible."""
        cache = self._verdicts
        new = sorted(h for h in hosts if h not in cache)
        if len(cache) + len(new) > VERDICT_CACHE_SIZE:
            cache.clear()  # bounded memory; verdicts are cheap to recompute
            new = sorted(hosts)
        for h in new:
            cache[h] = self.lists.host_category(h)
        unmatched = [h for h in new if cache[h] is None]
        for cat, hits in self._column_hits(self.lists.host_regex, unmatched):
            for h, hit in zip(unmatched, hits):
                if hit and cache[h] is None:
                    cache[h] = cat
        return {h: cache[h] for h in hosts}

    @staticmethod
    def _column_hits(patterns: list[tuple[str, str]], texts: pa.Array | list[str]) -> list[tuple[str, np.ndarray]]:
        """One RE2 pass over a column per category: (category, bool per text)."""
        if not patterns or not len(texts):
            return []
        column = texts if isinstance(texts, pa.Array) else pa.array(texts, pa.string())
        return [(cat, pc.match_substring_regex(column, pattern).to_numpy(zero_copy_only=False)) for cat, pattern in patterns]

    @classmethod
    def _first_hit(cls, patterns: list[tuple[str, str]], texts: pa.Array) -> list[str | None]:
        """Per text, the first category (in list order) whose pattern matches, else None."""
        first: list[str | None] = [None] * len(texts)
        for cat, hits in reversed(cls._column_hits(patterns, texts)):
            for k in np.flatnonzero(hits):
                first[k] = cat
        return first


def _numeric_hosts(hosts: set[str], digits: int) -> frozenset[str]:
    """Hosts whose registered label is all digits and at least `digits` long (not IP addresses)."""
    out = set()
    for host in hosts:
        label = registered_label(host)
        if len(label) >= digits and label.isdigit() and not host.replace(".", "").isdigit():
            out.add(host)
    return frozenset(out)


def _set_column(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    idx = table.schema.get_field_index(name)
    if idx >= 0:
        return table.set_column(idx, name, values)
    return table.append_column(name, values)


# --- benchmark: python -m stages.url_filter [N] ----------------------------------------------------


def _bench_urls(n: int, seed: int = 0) -> list[str]:
    """N URLs shaped like a crawl shard: half on hosts seen once or twice, a tenth on blocklisted
    gambling domains, the rest on a few hundred busy hosts; tracking parameters, Chinese
    percent-encoded paths, IDN hosts and duplicates mixed in."""
    import random

    rng = random.Random(seed)
    words = ["news", "blog", "post", "article", "product", "list", "show", "detail", "info", "page", "about", "2021", "2022",
             "health", "sports", "travel", "recipe", "casino", "sex", "video", "free", "game", "tech", "finance", "xinwen", "chanpin"]
    zh = ["新闻", "产品", "博彩", "旅游", "健康", "科技"]
    gambling = [e for _, e in _list_lines(resolve_path("data/blocklists/ut1/gambling/domains"))][:5000]
    busy = [f"{rng.choice(words)}{k}.{rng.choice(['com', 'cn', 'net', 'org', 'com.cn'])}" for k in range(300)]
    urls = []
    for i in range(n):
        r = rng.random()
        if r < 0.5:
            host = f"{rng.choice(['www.', 'm.', ''])}{rng.choice(words)}{rng.randrange(n // 2)}.{rng.choice(['com', 'cn', 'net', 'de'])}"
        elif r < 0.6:
            host = rng.choice(gambling)
        elif r < 0.62:
            host = f"例子{rng.randrange(100)}.中国"
        else:
            host = rng.choice(busy)
        path = "/" + "/".join(rng.choice(words) for _ in range(rng.randrange(1, 4))) + f"/{rng.randrange(10**6)}.html"
        if rng.random() < 0.05:
            path = "/" + quote(rng.choice(zh)) + path
        query = "?utm_source=feed&id=%d" % rng.randrange(1000) if rng.random() < 0.2 else ""
        urls.append(f"{rng.choice(['http', 'https'])}://{host}{path}{query}")
        if rng.random() < 0.02 and urls:
            urls.append(urls[-1] + "&fbclid=x" if query else urls[-1] + "?gclid=y")
    return urls[:n]


if __name__ == "__main__":  # pragma: no cover - a benchmark, run by hand
    import sys
    import time

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    batch = 2048
    started = time.perf_counter()
    stage = UrlFilter(UrlFilterConfig(numeric_domain_digits=6, max_docs_per_domain=50))
    load_s = time.perf_counter() - started
    data = _bench_urls(count)
    table = pa.table({"url": pa.array(data, pa.string())})
    dropped = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    for offset in range(0, count, batch):
        dropped += int((~stage(table.slice(offset, batch)).keep).sum())
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    print(f"lists loaded in {load_s:.2f} s; {count:,} URLs in {seconds:.2f} s wall, {cpu:.2f} s CPU: "
          f"{count / seconds:,.0f} URLs/s wall, {count / cpu:,.0f} URLs/s per CPU second (batches of {batch}); {dropped:,} dropped")
