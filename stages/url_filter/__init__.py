"""URL filter: drops documents by where they came from, before any text rule or model looks at them.

Three modules, each with one concern: `urls` parses and normalises a URL (its dedup key, host and
words), `blocklists` loads the list files, `stage` holds the config and the map stage that applies
the rules (in order, in its docstring; measured rates and speed in docs/url_filter.md). The names
below are the package's public face, so `from stages.url_filter import UrlFilter` keeps working.
"""

from stages.url_filter.blocklists import Blocklists, ExtraList, list_domain, resolve_path
from stages.url_filter.stage import UrlFilter, UrlFilterConfig
from stages.url_filter.urls import (
    DEFAULT_TRACKING_PARAMS,
    INVALID,
    Parsed,
    concatenated,
    normalize_host,
    parse_url,
    registered_label,
    tracking_rules,
)

__all__ = [
    "DEFAULT_TRACKING_PARAMS",
    "INVALID",
    "Blocklists",
    "ExtraList",
    "Parsed",
    "UrlFilter",
    "UrlFilterConfig",
    "concatenated",
    "list_domain",
    "normalize_host",
    "parse_url",
    "registered_label",
    "resolve_path",
    "tracking_rules",
]
