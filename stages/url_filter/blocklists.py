"""Blocklists for the URL filter: the list files a config names, loaded once per worker into dicts.

Formats: UT1 folders (`<root>/<category>/domains`, `urls`, `expressions`; Toulouse's squidGuard
blocklists), v2fly domain-list-community files (`domain`, `domain:`, `full:`, `keyword:`,
`regexp:`; `include:` lines name other files and are skipped with a warning) and word lists
(`<root>/<category>/hard_words`, `hard_subwords`, `soft_words`). Entries are normalised exactly as
URL hosts are (stages/url_filter/urls.py), so a list entry and a URL meet on one key. Regex entries
are checked as RE2 patterns when loaded (linear time, so a hostile pattern cannot stall a worker) and
merged into one alternation per category: one pass per batch, not one per pattern.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator

from pipeline.config import StrictModel
from stages.url_filter.urls import (
    NON_WORD,
    Parsed,
    concatenated,
    decode_and_fold,
    normalize_host,
    parse_url,
    tracking_rules,
)

if TYPE_CHECKING:  # the annotation only: stage.py imports this module, so a runtime import would be a cycle
    from stages.url_filter.stage import UrlFilterConfig

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]


def resolve_path(path: str) -> Path:
    """A list path as given: absolute, else relative to the working directory, else to the repository.

    The repository fallback lets the shipped lists load from a Ray worker or a test whose working
    directory is elsewhere; a path that exists in neither place is returned as the repository one,
    so the error names where it was looked for."""
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p
    return REPO / p


# One more list file beside the UT1 folders (no docstring: pydantic would put it into the config's JSON schema).
class ExtraList(StrictModel):
    path: str = Field(description="A list file: absolute, or relative to the working directory or the repository.")
    category: str = Field(
        description="Category named in the drop reason (`url-domain:<category>`, `url-url-list:<category>`)."
    )
    format: Literal["domains", "urls", "v2fly"] = Field(
        "domains",
        description="`domains`: one domain a line (matches it and its subdomains); `urls`: UT1 `host/path` prefixes; "
        "`v2fly`: domain-list-community lines (`domain`, `domain:`, `full:`, `keyword:`, `regexp:`; "
        "`include:` is skipped).",
    )

    @field_validator("path")
    @classmethod
    def _exists(cls, v: str) -> str:
        if not resolve_path(v).is_file():
            raise ValueError(f"no such list file: {v} (looked in the working directory and {REPO})")
        return v


def expression_file(folder: Path) -> Path | None:
    """A UT1 category's URL regex file: `expressions`, else `very_restrictive_expression`, else None."""
    for name in ("expressions", "very_restrictive_expression"):
        if (folder / name).is_file():
            return folder / name
    return None


def list_lines(path: Path):
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
            load = {"domains": self._load_domains, "urls": self._load_urls, "v2fly": self._load_v2fly}[extra.format]
            load(path, extra.category)
        for cat in config.expression_categories:
            patterns = []
            for root in roots:
                file = expression_file(root / cat)
                if file is not None:
                    for number, line in list_lines(file):
                        _check_re2(line, f"{file}:{number}")
                        patterns.append(line)
            if patterns:
                self.expressions.append((cat, "|".join(f"(?:{p})" for p in patterns)))
        self._load_words(config)
        if self.skipped_includes:
            log.warning(
                "url_filter: skipped %d v2fly include: lines (other v2fly files; add them as extra_lists): %s",
                len(self.skipped_includes),
                ", ".join(self.skipped_includes[:10]),
            )

    def _load_domains(self, path: Path, category: str) -> None:
        for _, entry in list_lines(path):
            host = list_domain(entry)
            if host:
                self.domains.setdefault(host, category)

    def _load_urls(self, path: Path, category: str) -> None:
        for _, entry in list_lines(path):
            parsed = parse_url(entry, self.tracking)
            if isinstance(parsed, Parsed) and parsed.norm:
                prefix = parsed.path_query
                self.url_prefixes.setdefault(parsed.host, []).append(("" if prefix == "/" else prefix, category))

    def _load_v2fly(self, path: Path, category: str) -> None:
        """v2fly domain-list-community: `domain`, `domain:x`, `full:x`, `keyword:x`, `regexp:x`,
        `include:x`, each optionally followed by ` @attribute`s, which are ignored."""
        for number, line in list_lines(path):
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
                raise ValueError(
                    f"{path}:{number}: unknown v2fly entry type '{kind}:' "
                    "(expected domain, full, keyword, regexp or include)"
                )
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
                    for number, line in list_lines(file):
                        text = decode_and_fold(line)
                        if target == "sub":
                            subwords.append(text)
                            continue
                        tokens = [t for t in NON_WORD.split(text) if t]
                        if len(tokens) != 1:
                            raise ValueError(
                                f"{file}:{number}: '{line}' is not one word; put phrases in hard_subwords"
                            )
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
            if (
                not prefix
                or pq == prefix
                or (pq.startswith(prefix) and (prefix[-1] in "/?&" or pq[len(prefix)] in "/?&#"))
            ):
                return cat
        return None
