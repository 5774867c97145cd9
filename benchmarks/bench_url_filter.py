"""URL filter speed: synthetic crawl-shaped URLs through the `url_filter` stage, every rule on.

`python benchmarks/bench_url_filter.py [N]` (default 100,000 URLs) prints the list loading time and
URLs/s (wall and per CPU second) in batches of 2,048, with `numeric_domain_digits: 6` and
`max_docs_per_domain: 50`; results in docs/url_filter.md. The URLs are generated with a fixed seed,
so the dropped count is the same on every run.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pyarrow as pa  # noqa: E402

from stages.url_filter import UrlFilter, UrlFilterConfig  # noqa: E402
from stages.url_filter.blocklists import list_lines, resolve_path  # noqa: E402


def _bench_urls(n: int, seed: int = 0) -> list[str]:
    """N URLs shaped like a crawl shard: half on hosts seen once or twice, a tenth on blocklisted
    gambling domains, the rest on a few hundred busy hosts; tracking parameters, Chinese
    percent-encoded paths, IDN hosts and duplicates mixed in."""
    rng = random.Random(seed)
    words = [
        "news",
        "blog",
        "post",
        "article",
        "product",
        "list",
        "show",
        "detail",
        "info",
        "page",
        "about",
        "2021",
        "2022",
        "health",
        "sports",
        "travel",
        "recipe",
        "casino",
        "sex",
        "video",
        "free",
        "game",
        "tech",
        "finance",
        "xinwen",
        "chanpin",
    ]
    zh = ["新闻", "产品", "博彩", "旅游", "健康", "科技"]
    gambling = [e for _, e in list_lines(resolve_path("data/blocklists/ut1/gambling/domains"))][:5000]
    busy = [f"{rng.choice(words)}{k}.{rng.choice(['com', 'cn', 'net', 'org', 'com.cn'])}" for k in range(300)]
    urls = []
    for _ in range(n):
        r = rng.random()
        if r < 0.5:
            prefix = rng.choice(["www.", "m.", ""])
            host = f"{prefix}{rng.choice(words)}{rng.randrange(n // 2)}.{rng.choice(['com', 'cn', 'net', 'de'])}"
        elif r < 0.6:
            host = rng.choice(gambling)
        elif r < 0.62:
            host = f"例子{rng.randrange(100)}.中国"
        else:
            host = rng.choice(busy)
        path = "/" + "/".join(rng.choice(words) for _ in range(rng.randrange(1, 4))) + f"/{rng.randrange(10**6)}.html"
        if rng.random() < 0.05:
            path = "/" + quote(rng.choice(zh)) + path
        query = f"?utm_source=feed&id={rng.randrange(1000)}" if rng.random() < 0.2 else ""
        urls.append(f"{rng.choice(['http', 'https'])}://{host}{path}{query}")
        if rng.random() < 0.02 and urls:
            urls.append(urls[-1] + "&fbclid=x" if query else urls[-1] + "?gclid=y")
    return urls[:n]


def main(count: int, batch: int = 2048) -> None:
    """Loads the lists (timed apart), then runs `count` URLs through the stage batch by batch."""
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
    print(
        f"lists loaded in {load_s:.2f} s; {count:,} URLs in {seconds:.2f} s wall, {cpu:.2f} s CPU: "
        f"{count / seconds:,.0f} URLs/s wall, {count / cpu:,.0f} URLs/s per CPU second (batches of {batch}); "
        f"{dropped:,} dropped"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
