"""URL parsing and normalisation for the URL filter: one URL in, its dedup key, host and words out.

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

The word rules read a URL as words: percent-decoded up to three times, lowercased and NFKC-folded,
with the host in Unicode form (`decode_and_fold`), split on everything that is not a letter or digit
(`NON_WORD`), or with those separators removed for sub-words (`concatenated`).

Parsing is per row in Python (string methods, a regex fast path for plain URLs); a host's
normalisation is cached per worker.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import unicodedata
from urllib.parse import quote, unquote

import pyarrow as pa
import pyarrow.compute as pc

try:  # IDNA 2008 + UTS #46 (comes with requests); the standard library's IDNA 2003 codec otherwise
    import idna as _idna
except ImportError:  # pragma: no cover - depends on the environment
    _idna = None

DEFAULT_TRACKING_PARAMS = [
    "utm_*",
    "gclid",
    "gclsrc",
    "dclid",
    "gbraid",
    "wbraid",
    "fbclid",
    "msclkid",
    "yclid",
    "ttclid",
    "twclid",
    "igshid",
    "mc_cid",
    "mc_eid",
    "_ga",
    "_gl",
    "_hsenc",
    "_hsmi",
    "mkt_tok",
    "hsa_*",
    "pk_*",
    "mtm_*",
    "spm",
    "scm",
    "from",
    "tt_from",
    "share_source",
    "share_medium",
    "share_plat",
    "share_from",
    "vd_source",
    "isappinstalled",
    "hmsr",
    "hmpl",
    "hmcu",
    "hmkw",
    "hmci",
    "ref_src",
    "ref_url",
    "phpsessid",
    "jsessionid",
]


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
NON_WORD = re.compile(r"[\W_]+")  # anything that is not a letter or digit (any script)
_DEFAULT_PORT = {"http": 80, "https": 443}
# http(s), a plain host, and a path and query of printable ASCII without escapes, `;`, `\\` or quotes
_SIMPLE = re.compile(
    r"(https?)://([A-Za-z0-9.\-]+)"  # scheme, host
    r"(/[^?#%;\\\"<>\x00-\x20\x7f-\U0010ffff]*)?"  # path
    r"(?:\?([^#\\\x00-\x20\x7f-\U0010ffff]*))?(#.*)?",  # query, fragment
    re.S,
)
HOST_CACHE_SIZE = 1 << 16  # per worker: raw host -> normalised host
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
        words = host_unicode + decode_and_fold(path + "?" + query if query else path)
        return Parsed(host + path_query, host, path_query, words)
    s = raw.strip(_STRIP)
    if "\t" in s or "\n" in s or "\r" in s:
        s = s.translate(_REMOVE_TAB_NL)
    if not s:
        return None
    m = _SCHEME.match(s)
    scheme = "http"
    if m:
        candidate = m.group()[:-1].lower()
        rest = s[m.end() :]
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
    authority, tail = s[:end], s[end : end + max_chars]
    at = authority.rfind("@")
    if at >= 0:
        authority = authority[at + 1 :]
    if authority.startswith("["):
        close = authority.find("]")
        if close < 0:
            return INVALID
        raw_host, port_part = authority[: close + 1], authority[close + 1 :]
        if port_part and not port_part.startswith(":"):
            return INVALID
        port = port_part[1:]
    else:
        colon = authority.rfind(":")
        raw_host, port = (authority[:colon], authority[colon + 1 :]) if colon >= 0 else (authority, "")
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
            fragment = "#" + _norm_pct(tail[hash_at + 1 :], _QUERY_SAFE)
        tail = tail[:hash_at]
    q_at = tail.find("?")
    path, query = (tail[:q_at], tail[q_at + 1 :]) if q_at >= 0 else (tail, "")
    path = _norm_path(path)
    query = _norm_query(query, tracking) if query else ""
    path_query = path + ("?" + query if query else "") + fragment
    norm = None if too_long else host + (":" + port if port else "") + path_query
    words = host_unicode + decode_and_fold(path + ("?" + query if query else ""))
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


def decode_and_fold(s: str) -> str:
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
