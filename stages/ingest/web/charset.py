"""Charsets of web pages: the label a page declares, mapped as browsers map it, and decoding that
tries the likely codecs in order and says how many characters came out bad."""

from __future__ import annotations

import codecs
import re

from resiliparse.parse.encoding import detect_encoding  # 2 ms to import, so at the top

BAD_CHAR_SHARE = 0.05  # more replacement/control characters than this: binary or hopeless mis-decoding

# WHATWG's label table, for the labels that matter in CJK and Western crawls: a declared charset is
# read as the superset browsers use. gb2312/gbk pages routinely hold characters outside GB2312, so
# they are decoded as GB18030; big5 as Big5-HKSCS; latin-1 and ascii as windows-1252.
_CHARSET_ALIASES = {
    **dict.fromkeys(
        [
            "gb2312",
            "gbk",
            "x-gbk",
            "cp936",
            "ms936",
            "windows-936",
            "euc-cn",
            "x-euc-cn",
            "csgb2312",
            "gb_2312-80",
            "gb_2312",
            "iso-ir-58",
            "chinese",
            "gb18030",
        ],
        "gb18030",
    ),
    **dict.fromkeys(["big5", "big5-hkscs", "cn-big5", "csbig5", "x-x-big5", "big5hkscs", "cp950"], "big5hkscs"),
    **dict.fromkeys(
        [
            "iso-8859-1",
            "iso8859-1",
            "iso_8859-1",
            "latin1",
            "latin-1",
            "l1",
            "us-ascii",
            "ascii",
            "windows-1252",
            "cp1252",
            "x-cp1252",
            "cp819",
            "ibm819",
        ],
        "cp1252",
    ),
    **dict.fromkeys(
        ["shift_jis", "shift-jis", "sjis", "x-sjis", "ms_kanji", "windows-31j", "csshiftjis", "cp932"], "cp932"
    ),
    **dict.fromkeys(["euc-kr", "ks_c_5601-1987", "ksc5601", "korean", "windows-949", "cp949"], "cp949"),
    **dict.fromkeys(["tis-620", "iso-8859-11", "windows-874", "cp874"], "cp874"),
    **dict.fromkeys(["x-mac-cyrillic", "x-mac-ukrainian"], "mac-cyrillic"),
    **dict.fromkeys(["macintosh", "x-mac-roman", "mac"], "mac-roman"),
    **dict.fromkeys(["iso-8859-9", "latin5", "windows-1254"], "cp1254"),
    **dict.fromkeys(["utf8", "utf-8", "unicode-1-1-utf-8", "x-unicode20utf8"], "utf-8"),
}

# The encodings of the WHATWG Encoding standard, as Python names them: a declared or detected label
# must land on one of these. It keeps out what Python can "decode" but no page is written in (rot13,
# base64, unicode_escape) and UTF-7, which browsers refuse.
WEB_CODECS = {
    "utf-8",
    "utf-16-le",
    "utf-16-be",
    "cp866",
    "koi8-r",
    "koi8-u",
    "mac-roman",
    "mac-cyrillic",
    "cp874",
    "gb18030",
    "big5hkscs",
    "euc_jp",
    "iso2022_jp",
    "cp932",
    "cp949",
    *(f"iso8859-{i}" for i in (2, 3, 4, 5, 6, 7, 8, 10, 13, 14, 15, 16)),
    *(f"cp{i}" for i in range(1250, 1259)),
}

_META_CHARSET = re.compile(
    rb"""<meta[^>]{0,512}?charset\s*=\s*["']?\s*([\w.:\-]+)|<\?xml[^>]{0,200}?encoding\s*=\s*["']([\w.:\-]+)""", re.I
)
_BAD_CHARS = re.compile(r"[\ufffd\x00-\x08\x0b\x0e-\x1f]")


def codec_name(label: str | None) -> str | None:
    """A Python codec for a charset label, mapped as browsers do; None when unknown."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    label = _CHARSET_ALIASES.get(label, label)
    if label in ("utf-16", "utf-16le", "utf-16be"):  # a page declaring UTF-16 in ASCII bytes is not UTF-16
        return None
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    return name if name in WEB_CODECS else None


def meta_charset(body: bytes) -> str | None:
    """The charset of a `<meta charset>`, `<meta http-equiv=Content-Type>` or XML declaration in the
    first 8 KiB (longer than HTML5's 1 KiB prescan: Chinese pages often put long scripts first)."""
    match = _META_CHARSET.search(body[:8192])
    if not match:
        return None
    return (match.group(1) or match.group(2)).decode("ascii", "replace")


def _strict(body: bytes, codec: str) -> str | None:
    """Decodes with no error allowed, except an incomplete character at the very end (crawlers cut
    pages at a byte limit, often inside a multibyte character)."""
    try:
        return codecs.getincrementaldecoder(codec)("strict").decode(body, final=False)
    except (UnicodeDecodeError, LookupError):
        return None


def decode_html(body: bytes, declared: str | None, sniff_meta: bool = True) -> tuple[str, str, float]:
    """(text, codec, share of bad characters) for a page's bytes.

    Order: a byte-order mark; then UTF-8 when the bytes are valid UTF-8 (valid multibyte UTF-8 by
    accident is vanishingly rare, while pages declaring latin-1 or gb2312 but serving UTF-8 are
    common); then the HTTP Content-Type charset; then `<meta charset>`; then detection (resiliparse's
    uchardet-based detector). The first that decodes without error wins. If none does, the one with
    the fewest replacement characters is used, errors replaced by U+FFFD; the caller rejects the page
    when bad characters pass BAD_CHAR_SHARE.
    """
    boms = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
    for bom, codec in boms:
        if body.startswith(bom):
            text = body[len(bom) :].decode(codec, "replace")
            return text, codec, _bad_share(text)
    if body.isascii():
        text = body.decode("ascii")
        return text, "utf-8", _bad_share(text)

    def candidates():  # lazily: detection costs more than the rest, and most pages are UTF-8
        yield "utf-8"
        yield codec_name(declared)
        if sniff_meta:
            yield codec_name(meta_charset(body))
        yield _detected(body)

    tried = []
    for codec in candidates():
        if codec is None or codec in tried:
            continue
        tried.append(codec)
        text = _strict(body, codec)
        if text is not None:
            return text, codec, _bad_share(text)
    best = min(((body.decode(c, "replace"), c) for c in tried), key=lambda tc: tc[0].count("\ufffd"))
    return best[0], best[1], _bad_share(best[0])


def _detected(body: bytes) -> str | None:
    return codec_name(detect_encoding(body))


def _bad_share(text: str) -> float:
    sample = text[:16384]  # binary data shows within the first few kilobytes
    return len(_BAD_CHARS.findall(sample)) / max(1, len(sample))
