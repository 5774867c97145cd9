"""Compares two winnow output folders byte for byte: every Parquet file of every stage folder (shards and
rejects), and the counts of every sidecar with its timing, node and hashes left out.

Used to show that a change of code keeps the output: run the pipeline with the old code and the new
one into two folders, then

    python benchmarks/compare_runs.py OLD_OUT NEW_OUT

It exits 1 and lists the differences when there are any.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

IGNORED_SIDECAR_KEYS = {"seconds", "node", "config_hash", "fingerprint", "code_version", "input", "outputs", "rejects"}


def parquet_digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.glob("[0-9][0-9]_*/**/*.parquet"))
        if not p.name.startswith(".") and "_work" not in p.parts
    }


def sidecar_counts(root: Path) -> dict[str, dict]:
    out = {}
    for p in sorted(root.glob("[0-9][0-9]_*/_stats/*.json")):
        data = json.loads(p.read_text())
        out[str(p.relative_to(root))] = {k: v for k, v in data.items() if k not in IGNORED_SIDECAR_KEYS}
    return out


def compare(old: Path, new: Path) -> list[str]:
    problems = []
    a, b = parquet_digests(old), parquet_digests(new)
    for name in sorted(set(a) | set(b)):
        if name not in a or name not in b:
            problems.append(f"{name}: only in {'new' if name in b else 'old'}")
        elif a[name] != b[name]:
            problems.append(f"{name}: bytes differ")
    sa, sb = sidecar_counts(old), sidecar_counts(new)
    for name in sorted(set(sa) | set(sb)):
        if sa.get(name) != sb.get(name):
            problems.append(f"{name}: sidecar counts differ")
    return problems


def main() -> int:
    old, new = Path(sys.argv[1]), Path(sys.argv[2])
    problems = compare(old, new)
    files = len(parquet_digests(old))
    if problems:
        print(f"{len(problems)} difference(s) over {files} Parquet files:")
        print("\n".join(problems))
        return 1
    print(
        f"identical: {files} Parquet files in {len({Path(n).parts[0] for n in parquet_digests(old)})} stage folders, "
        f"{len(sidecar_counts(old))} sidecars' counts"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
