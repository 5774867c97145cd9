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

The URL is normalised first (stages/url_filter/urls.py): `url_norm`, the dedup key, and
`url_domain`, the normalised host (punycode, no `www.`, no port), are written as columns; the lists
are loaded by stages/url_filter/blocklists.py.

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

import logging

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator, model_validator

from pipeline.config import StrictModel
from pipeline.stage import MapStage, StageOutput
from stages.url_filter.blocklists import REPO, Blocklists, ExtraList, expression_file, resolve_path
from stages.url_filter.urls import (
    DEFAULT_TRACKING_PARAMS,
    INVALID,
    NON_WORD,
    Parsed,
    concatenated,
    parse_url,
    registered_label,
)

log = logging.getLogger(__name__)

VERDICT_CACHE_SIZE = 1 << 17  # per worker: normalised host -> list category


# The URL filter's settings (no docstring: pydantic would put it into the config's JSON schema).
class UrlFilterConfig(StrictModel):
    url_column: str = Field("url", description="Column holding the document URL; null or empty URLs are kept.")
    ut1_roots: list[str] = Field(
        ["data/blocklists/ut1"],
        description="Folders in the UT1 layout (`<root>/<category>/domains` and `/urls`); "
        "each category is read from every root that has it.",
    )
    categories: list[str] = Field(
        ["adult", "gambling", "dating", "agressif", "warez", "cryptojacking"],
        description="UT1 categories to block; the first listed wins when a domain is in several. Shipped but off: "
        "drogue (holds harm-reduction sites such as erowid.org), hacking, sect, lingerie.",
    )
    extra_lists: list[ExtraList] = Field(
        default_factory=lambda: [
            ExtraList(path="data/blocklists/v2fly/category-porn", category="adult", format="v2fly"),
        ],
        description="More list files, each with its category and format; checked after the UT1 categories.",
    )
    word_roots: list[str] = Field(
        ["data/blocklists/words"],
        description="Folders of word lists: `<root>/<category>/hard_words`, `hard_subwords`, `soft_words`, "
        "one entry a line, `#` comments.",
    )
    word_categories: list[str] = Field(
        ["adult", "gambling"], description="Word-list categories to use; empty turns the word rules off."
    )
    soft_word_threshold: int = Field(
        2,
        ge=1,
        description="Drop as `url-soft-words` when the URL has at least this many different soft words "
        "(datatrove's default, 2).",
    )
    expression_categories: list[str] = Field(
        [],
        description="UT1 categories whose `expressions` (or `very_restrictive_expression`) regex is applied "
        "to the decoded URL, dropping as `url-expression:<category>`. Off by default: UT1's adult one "
        "matches teen, gay, mature, breast.",
    )
    numeric_domain_digits: int | None = Field(
        None,
        ge=3,
        description="Drop as `url-numeric-domain` when the registered label is all digits and at least this long "
        "(6 catches `3355703.com`-style SEO farms and spares 163.com, 12306.cn); null turns it off.",
    )
    dedup: bool = Field(
        True,
        description="Drop rows whose `url_norm` equals an earlier kept row's in the same batch/shard "
        "as `url-duplicate`.",
    )
    max_docs_per_domain: int | None = Field(
        None,
        ge=1,
        description="Keep at most this many rows per `url_domain` in a batch/shard (later ones: `url-domain-cap`); "
        "null: no cap.",
    )
    tracking_params: list[str] = Field(
        DEFAULT_TRACKING_PARAMS,
        description="Query parameters removed when normalising (case-insensitive; a trailing `*` matches a prefix).",
    )
    max_url_chars: int = Field(
        4096,
        ge=64,
        description="Only this many characters of a URL are examined; a longer URL gets a null `url_norm` "
        "(it is no dedup key).",
    )
    drop_invalid: bool = Field(
        False,
        description="Drop URLs that are not http(s) or have no parsable host (`url-invalid`), "
        "and over-long ones (`url-too-long`).",
    )

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
                raise ValueError(
                    f"category '{cat}' has no domains or urls file in {self.ut1_roots} (available: {', '.join(known)})"
                )
        for cat in self.expression_categories:
            if not any(expression_file(r / cat) for r in roots):
                raise ValueError(
                    f"expression category '{cat}' has no expressions or very_restrictive_expression file "
                    f"in {self.ut1_roots}"
                )
        word_roots = [resolve_path(r) for r in self.word_roots]
        for cat in self.word_categories:
            if not any((r / cat).is_dir() for r in word_roots):
                raise ValueError(f"word category '{cat}' is not a folder in {self.word_roots}")
        return self


class UrlFilter(MapStage):
    """Drops rows by URL (lists, words, shape, duplicates, caps) and writes `url_norm` and `url_domain`."""

    name = "url_filter"
    version = "url_filter_v1"
    Config = UrlFilterConfig
    stateful = True  # the lists (about 60,000 entries) load once per worker

    @classmethod
    def writes(cls, config: UrlFilterConfig) -> set[str]:
        return {"url_norm", "url_domain"}

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
            tokens = NON_WORD.split(p.words)
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
                # the first in URL order, so the reason is deterministic
                cat = next(hard[t] for t in tokens if t in hard)
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
        return [
            (cat, pc.match_substring_regex(column, pattern).to_numpy(zero_copy_only=False))
            for cat, pattern in patterns
        ]

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
