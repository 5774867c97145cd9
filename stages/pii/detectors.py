"""One detector per kind of personal data: a candidate regex, then the validation that makes it precise.

Each detector has a cheap RE2 `prefilter` (run by Arrow over a whole column: documents with no candidate
never reach Python) and `find(text)`, which yields `(start, end)` spans after validation:
- checksums where the number has one: GB 11643 for resident IDs, Luhn for bank cards;
- ranges: IPv4 octets, IPv6 through `ipaddress`, birth dates inside resident IDs, Chinese area codes;
- boundaries: a number glued to letters, digits, a decimal point or a dash is part of something else
  (an order number, a product code, an ISBN, a decimal), never a phone;
- context: QQ and WeChat IDs only after a word naming them; bank cards only when grouped in fours or
  named (卡号, 账号, card); digits named as an order, tracking, ISBN, serial or model number are left.

Digits are ASCII `[0-9]` on purpose: the normalize stage folds full-width digits first, and Python's
`\\d` would also take Devanagari or Arabic-Indic digits.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

# Labels that make the digits after them something other than personal data (order, tracking and
# serial numbers, ISBNs, product codes); looked for just before a phone or card candidate.
_NOT_PERSONAL = re.compile(
    r"(?:订单|单号|运单|快递|物流|货号|型号|编号|批号|条码|条形码|序列号|流水号|发票号|合同号|专利|备案|ICP|邮编|邮政编码"
    r"|order|tracking|isbn|issn|invoice ?(?:no|number|#)|serial|model|sku|part|ref|item|patent|zip|postcode"
    r"|po box|ticket|case)"
    r"[^0-9\n]{0,8}$",
    re.IGNORECASE,
)
_CONTEXT_BEFORE = 16  # characters before a candidate where such a label is looked for

# Digits followed by a unit or a currency word are an amount or a quantity, not a number to call.
_AMOUNT_AFTER = re.compile(
    r"\s?(?:元|万|亿|美元|块|%|年|倍|次|人|个|件|台|吨|米|公里|平方|股|票|字|页"
    r"|bytes?\b|km\b|kg\b)"
)


@dataclass(frozen=True)
class Detector:
    kind: str  # the type name: reasons are pii:<kind>, signals pii_<kind>
    prefilter: str  # RE2, a superset of the candidates
    find: Callable[[str], Iterator[tuple[int, int]]]


def _labelled_not_personal(text: str, start: int) -> bool:
    return _NOT_PERSONAL.search(text, max(0, start - _CONTEXT_BEFORE), start) is not None


def _amount(text: str, end: int) -> bool:
    return _AMOUNT_AFTER.match(text, end) is not None


# --- e-mail ------------------------------------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9_%+\-](?:[A-Za-z0-9._%+\-]{0,62}[A-Za-z0-9_%+\-])?"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9\-])"
)


def email_finder(allowed_domains: tuple[str, ...]) -> Callable[[str], Iterator[tuple[int, int]]]:
    """Addresses whose domain is an allowed one (or under it) are kept."""
    allowed = tuple(d.lower().lstrip(".") for d in allowed_domains)

    def find(text: str) -> Iterator[tuple[int, int]]:
        for m in _EMAIL.finditer(text):
            domain = m.group().rsplit("@", 1)[1].lower()
            if any(domain == d or domain.endswith("." + d) for d in allowed):
                continue
            yield m.span()

    return find


# --- phone numbers -----------------------------------------------------------------------------------

# Not glued to a letter, a digit, an underscore, a slash, a dash, a dot after a digit, or `=` (URL parameters).
_B = r"(?<![0-9A-Za-z_/=\-])(?<![0-9]\.)"
_E = r"(?![0-9A-Za-z_/\-])(?!\.[0-9])"
# Mobiles also take a trunk 0 (0-, (0)-), may sit in a list split by "/" ("010-5137/13391839885"), and
# may run straight into the next label ("13711678105QQ:").
_CN_MOBILE = re.compile(
    r"(?<![0-9A-Za-z_=\-])(?<![0-9]\.)(?<![A-Za-z_.]/)"
    r"(?:(?:\+|00)86[ \-]?|\(\+?86\)\s?|（\+?86）|\(0\)-?|（0）-?|0-?)?"
    r"(1[3-9][0-9](?:[0-9]{8}|-[0-9]{4}-[0-9]{4}| [0-9]{4} [0-9]{4}))"
    r"(?:(?![0-9A-Za-z_\-])(?!\.[0-9])|(?=QQ|qq|MSN|E-?mail|EMAIL|Email|Tel|TEL|Fax|FAX))"
)
# Area codes: 010, 02X, then three digits 03XX-09XX; local numbers of 7-8 digits starting 2-9; an
# extension may follow. The area code must be set off (a dash, a space, brackets): 11-12 bare digits
# starting with 0 are as often an account or an order number.
_CN_LANDLINE = re.compile(
    _B + r"(?:(?:\+|00)86[ \-]?)?(?:\(0?(?:10|2[0-9]|[3-9][0-9]{2})\)|（0?(?:10|2[0-9]|[3-9][0-9]{2})）\s?"
    r"|0(?:10|2[0-9]|[3-9][0-9]{2})[ \-]|0(?:10|2[0-9]|[3-9][0-9]{2}) - )"
    r"[2-9][0-9]{2,3}[ \-]?[0-9]{4}(?:\s?(?:-|转|ext\.?|x)\s?[0-9]{1,5})?" + _E
)
# +CC then 6 to 14 more digits in groups; a leading + is what says "international".
_INTERNATIONAL = re.compile(r"(?<![0-9A-Za-z_+])\+[1-9][0-9]{0,2}(?:[ .\-]?\(?[0-9]{1,5}\)?){2,6}" + _E)
# North American numbers, only in the usual punctuated shapes: (212) 555-0123, 212-555-0123, 212.555.0123.
_NANP = re.compile(
    _B + r"(?:1[ .\-])?(?:\([2-9][0-9]{2}\)\s?[2-9][0-9]{2}[\-.][0-9]{4}"
    r"|[2-9][0-9]{2}([\-.])[2-9][0-9]{2}\1[0-9]{4})" + _E
)
# A number named as a phone (电话, 手机, Tel, Fax): 7 to 12 digits, dashes or spaces inside.
_NAMED_PHONE = re.compile(
    r"(?:电话|手机|手提|座机|传真|热线|联系方式|tel|phone|mobile|fax|call)(?:号码|号)?\s?[:：.]?\s{0,3}"
    r"(?<![0-9])([0-9][0-9 \-]{5,14}[0-9])" + _E,
    re.IGNORECASE,
)


# A user handle that is a mobile number with a letter or two before it ("@m13601221282"): sites hand such
# names to accounts registered by phone, so the digits are the owner's number. Only the digits go.
_HANDLE_MOBILE = re.compile(r"@[A-Za-z]{1,3}(1[3-9][0-9]{9})(?![0-9A-Za-z_])")


def _digits(s: str) -> int:
    return sum(c.isdigit() for c in s)


# Local numbers listed after a landline ("0571-85775666 85775783、85775591") share its area code.
_LISTED_LOCAL = re.compile(r"[ 、,，/;；]{1,3}(?<![0-9])([2-9][0-9]{6,7})" + _E)


def _listed_after(text: str, end: int) -> Iterator[tuple[int, int]]:
    while (m := _LISTED_LOCAL.match(text, end)) is not None:
        yield m.span(1)
        end = m.end()


def find_phones(text: str) -> Iterator[tuple[int, int]]:
    for m in _CN_MOBILE.finditer(text):
        if not _labelled_not_personal(text, m.start()) and not _amount(text, m.end()):
            yield m.span()
    for m in _CN_LANDLINE.finditer(text):
        if not _labelled_not_personal(text, m.start()):
            yield m.span()
            yield from _listed_after(text, m.end())
    for m in _INTERNATIONAL.finditer(text):
        if 8 <= _digits(m.group()) <= 15 and not _labelled_not_personal(text, m.start()):
            yield m.span()
    for m in _NANP.finditer(text):
        if not _labelled_not_personal(text, m.start()):
            yield m.span()
    for m in _NAMED_PHONE.finditer(text):
        if 7 <= _digits(m.group(1)) <= 12:
            yield m.span(1)
    for m in _HANDLE_MOBILE.finditer(text):
        yield m.span(1)


# --- Chinese resident ID (GB 11643-1999) -------------------------------------------------------------

_ID = re.compile(
    r"(?<![0-9A-Za-z])([1-9][0-9]{5})((?:18|19|20)[0-9]{2})(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx]"
    r"(?![0-9A-Za-z])"
)
_PROVINCES = {
    11,
    12,
    13,
    14,
    15,
    21,
    22,
    23,
    31,
    32,
    33,
    34,
    35,
    36,
    37,
    41,
    42,
    43,
    44,
    45,
    46,
    50,
    51,
    52,
    53,
    54,
    61,
    62,
    63,
    64,
    65,
    71,
    81,
    82,
    91,
}
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_checksum_ok(number: str) -> bool:
    """GB 11643: the 18th character is the ISO 7064 MOD 11-2 check of the first 17 digits."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == number[17].upper()


def find_id_numbers(text: str) -> Iterator[tuple[int, int]]:
    for m in _ID.finditer(text):
        if int(m.group(1)[:2]) in _PROVINCES and id_checksum_ok(m.group()):
            yield m.span()


# --- bank cards --------------------------------------------------------------------------------------

# Not one group of a longer run of numbers (a table of years, a list of codes).
_CARD = re.compile(
    _B
    + r"(?<![0-9][ \-])([0-9]{4}(?:[ \-]?[0-9]{4}){2}[ \-]?[0-9]{3,4}(?:[ \-]?[0-9]{1,3})?)"
    + _E
    + r"(?![ \-][0-9])"
)
_CARD_GROUPED = re.compile(r"[0-9]{4}([ \-])[0-9]{4}\1[0-9]{4}\1[0-9]{3,4}(?:\1[0-9]{1,3})?")
# Issuer prefixes: UnionPay 62, Visa 4, Mastercard 51-55 and 22-27, Amex 34/37, Discover 6011/65, JCB 35,
# and the older Chinese debit BINs 60, 94, 95 (e.g. 9558 ICBC, 6013 BOC).
_IIN = re.compile(r"62|4|5[1-5]|2[2-7]|3[47]|35|60|65|9[45]")
_CARD_WORDS = re.compile(
    r"(?:卡号|银行卡|信用卡|借记卡|储蓄卡|账号|帐号|账户|帐户|开户|汇款|转账|户名"
    r"|card|visa|mastercard|"
    r"account|acct)[^\n]{0,12}$",
    re.IGNORECASE,
)


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = ord(c) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def find_bank_cards(text: str) -> Iterator[tuple[int, int]]:
    """15-19 digits, a known issuer prefix, the Luhn check, and either grouped in fours or named as a card
    or account: a bare Luhn-valid run is one long number in ten, so order and tracking numbers need more."""
    for m in _CARD.finditer(text):
        digits = re.sub(r"[ \-]", "", m.group(1))
        if not 15 <= len(digits) <= 19 or not _IIN.match(digits) or not luhn_ok(digits):
            continue
        grouped = _CARD_GROUPED.fullmatch(m.group(1)) is not None
        named = _CARD_WORDS.search(text, max(0, m.start() - 20), m.start()) is not None
        if (grouped or named) and not _labelled_not_personal(text, m.start()):
            yield m.span(1)


# --- IP addresses ------------------------------------------------------------------------------------

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = re.compile(r"(?<![0-9A-Za-z_.\-])(?:" + _OCTET + r"\.){3}" + _OCTET + r"(?![0-9A-Za-z_\-])(?!\.[0-9])")
_VERSION_WORDS = re.compile(
    r"(?:version|ver|v|版本|release|build|rev|section|chapter|§|第|firmware|固件)"
    r"\s?[:：.]?\s?$",
    re.IGNORECASE,
)
_IP_WORDS = re.compile(r"(?:\bip|ip地址|address|addr|host|server|服务器|dns|gateway|网关)[^\n]{0,12}$", re.IGNORECASE)
_IPV6 = re.compile(
    r"(?<![0-9A-Za-z_:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|"
    + _OCTET
    + r"(?:\."
    + _OCTET
    + r"){3})?(?![0-9A-Za-z_:])"
)


def ip_finder(keep_private: bool) -> Callable[[str], Iterator[tuple[int, int]]]:
    """Public addresses. With `keep_private`, private, loopback, link-local, documentation and other
    non-global ranges stay: they name no one (192.168.1.1 is every home router)."""

    def wanted(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return address.is_global or not keep_private

    def find(text: str) -> Iterator[tuple[int, int]]:
        for m in _IPV4.finditer(text):
            before = text[max(0, m.start() - 12) : m.start()]
            if _VERSION_WORDS.search(before):
                continue
            if m.group()[1] == "." and not _IP_WORDS.search(text, max(0, m.start() - 20), m.start()):
                continue  # 7.4.10.5, 1.15.4.1: section numbers and revisions unless named as an address
            if wanted(ipaddress.IPv4Address(m.group())):
                yield m.span()
        for m in _IPV6.finditer(text):
            groups = [g for g in m.group().split(":") if g]
            if len(groups) < 3 or not any(c.isdigit() for c in m.group()):
                continue  # a::b, C++ scopes, bare times need more than two groups
            try:
                address = ipaddress.IPv6Address(m.group())
            except ValueError:
                continue
            if wanted(address):
                yield m.span()

    return find


# --- QQ and WeChat IDs, only where a word names them -------------------------------------------------

_SEP = r"[\s:：;；=,，]{0,3}"
_QQ = re.compile(
    r"(?<![A-Za-z])(?:QQ|qq|Qq|扣扣)(?:群|号码|号|联系方式|账号)?"
    + _SEP
    + r"(?<![0-9])([1-9][0-9]{4,11})(?![0-9A-Za-z@])"
)
_WECHAT = re.compile(
    r"(?:微信|微信号|weixin|wechat|(?<![A-Za-z])(?:vx|wx|v信|V信))(?:\s?id|号)?"
    + _SEP
    + r"(?<![0-9A-Za-z_\-])([A-Za-z][A-Za-z0-9_\-]{5,19}|1[3-9][0-9]{9}|[1-9][0-9]{5,11})(?![0-9A-Za-z_\-@.])",
    re.IGNORECASE,
)


def find_qq(text: str) -> Iterator[tuple[int, int]]:
    for m in _QQ.finditer(text):
        yield m.span(1)


def find_wechat(text: str) -> Iterator[tuple[int, int]]:
    """A letters-only word after 微信 is as often prose ("WeChat: follow us") as an ID: IDs need a digit,
    `_` or `-`."""
    for m in _WECHAT.finditer(text):
        value = m.group(1)
        if value[0].isalpha() and not any(c.isdigit() or c in "_-" for c in value):
            continue
        yield m.span(1)


# --- credentials inside URLs -------------------------------------------------------------------------

_URL_CREDENTIALS = re.compile(
    r"(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]{1,15}://([^\s/?#@:.\"'<>]+:[^\s/?#@\"'<>]*)@"
)


def find_url_credentials(text: str) -> Iterator[tuple[int, int]]:
    """`user:password` of scheme://user:password@host (the scheme and host stay)."""
    for m in _URL_CREDENTIALS.finditer(text):
        yield m.span(1)


# --- the set ----------------------------------------------------------------------------------------

KINDS = ("url_credentials", "email", "id_number", "bank_card", "qq", "wechat", "phone", "ip_address")
# Where two candidates overlap, the earlier start wins, then the longer span, then this order.
PRIORITY = {kind: i for i, kind in enumerate(KINDS)}

PREFILTERS = {
    "url_credentials": r"://[^\s/@]+:[^\s/@]*@",
    "email": r"[A-Za-z0-9]@[A-Za-z0-9]",
    "id_number": r"[0-9]{17}[0-9Xx]",
    "bank_card": r"[0-9]{4}[ \-]?[0-9]{4}[ \-]?[0-9]{4}[ \-]?[0-9]{3}",
    "phone": r"[0-9]{7}|[0-9]{2,4}[ \-.)）]{1,2}[0-9]{3,4}|\+[1-9]",
    "ip_address": r"[0-9]\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]|[0-9A-Fa-f]:[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:",
    "qq": r"(?i)qq|扣扣",
    "wechat": r"(?i)微信|weixin|wechat|vx|wx|v信",
}


def build_detectors(
    kinds: list[str], allowed_email_domains: tuple[str, ...], keep_private_ips: bool
) -> list[Detector]:
    finders = {
        "url_credentials": find_url_credentials,
        "email": email_finder(allowed_email_domains),
        "id_number": find_id_numbers,
        "bank_card": find_bank_cards,
        "phone": find_phones,
        "ip_address": ip_finder(keep_private_ips),
        "qq": find_qq,
        "wechat": find_wechat,
    }
    return [Detector(kind, PREFILTERS[kind], finders[kind]) for kind in KINDS if kind in kinds]


def resolve(candidates: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Non-overlapping spans, in text order: earliest start, then longest, then the kind's priority."""
    chosen: list[tuple[int, int, str]] = []
    end = -1
    for start, stop, kind in sorted(candidates, key=lambda c: (c[0], c[0] - c[1], PRIORITY[c[2]])):
        if start >= end:
            chosen.append((start, stop, kind))
            end = stop
    return chosen


def find_all(text: str, detectors: list[Detector]) -> list[tuple[int, int, str]]:
    """Every detector over one text, overlaps resolved."""
    return resolve([(s, e, d.kind) for d in detectors for s, e in d.find(text)])
