"""Index benchmarks: cold build, lookup latency, lookup accuracy on inclusion terms.

    python benchmarks/bench_index.py [--skip-build] [--sample 1000]

Prints Markdown; `benchmarks/run.py` puts it into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SOURCES = Path(os.environ.get("MEDCODE_SHARED", REPO.parent / "shared")) / "sources/icd10cm/2025"


def cold_build() -> str:
    """Build FY2025 in a subprocess with an empty index folder and an empty embedding cache."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, MEDCODE_INDEX_DIR=f"{tmp}/index", MEDCODE_CACHE_DIR=f"{tmp}/cache",
                   MEDCODE_ALLOW_DOWNLOAD="false")
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "medcode", "ingest", "build", "--year", "2025", "--sources",
             str(SOURCES)], env=env, cwd=REPO, capture_output=True, text=True,
        )
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"build failed: {proc.stderr[-2000:]}")
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        report = (Path(tmp) / "index/2025/build_report.json").read_text()
        import json

        timings = json.loads(report)["timings_s"]
        # Warm rebuild: same cache, new index folder → only parsing, writing and storing.
        env["MEDCODE_INDEX_DIR"] = f"{tmp}/index2"
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "medcode", "ingest", "build", "--year", "2025", "--sources",
             str(SOURCES)], env=env, cwd=REPO, capture_output=True, text=True, check=True,
        )
        warm = time.perf_counter() - started
    lines = [
        "| build | wall time | peak RSS |",
        "|---|---|---|",
        f"| cold FY2025 (empty embedding cache) | {wall:.0f} s | {peak_mib:,.0f} MiB |",
        f"| rebuild, embedding cache warm | {warm:.0f} s | |",
        "",
        "Stage timings of the cold build (s): "
        + ", ".join(f"{k} {v}" for k, v in timings.items()),
    ]
    return "\n".join(lines)


def lookup_benchmarks(sample: int) -> str:
    from medcode.settings import get_settings
    from service.index_registry import IndexRegistry
    from service.lookup import lookup

    settings = get_settings()
    registry = IndexRegistry(settings.index_dir, settings.embedding_backend,
                             settings.embedding_model_path, settings.cache_dir)
    index = registry.get("2025")
    rows = index.codebook.db.execute(
        "SELECT n.text, n.code FROM notes n JOIN codes c ON c.code = n.code "
        "WHERE n.kind = 'inclusion_term' ORDER BY n.id"
    ).fetchall()
    random.Random(2025).shuffle(rows)
    rows = rows[:sample]
    embedder = registry.embedder
    for text, _ in rows[:20]:  # warm-up: model, Chroma, SQLite pages
        lookup(index, text, embedder, 10)
    latencies: list[float] = []
    top1 = top10 = 0
    for text, code in rows:
        started = time.perf_counter()
        hits = lookup(index, text, embedder, 10)
        latencies.append((time.perf_counter() - started) * 1000)
        codes = [h.code for h in hits]
        top1 += bool(codes) and codes[0] == code
        top10 += code in codes
    latencies.sort()
    p50 = statistics.median(latencies)
    p95 = latencies[int(len(latencies) * 0.95) - 1]
    must = []
    for query, gold in [("type 2 diabetes with hyperglycemia", "E11.65"),
                        ("essential hypertension", "I10"), ("aspiration pneumonia", "J69.0")]:
        codes = [h.code for h in lookup(index, query, embedder, 10)]
        rank = codes.index(gold) + 1 if gold in codes else None
        must.append(f"| {query} | {gold} | {rank or 'not in top 10'} |")
    return "\n".join([
        f"Warm lookup latency over {len(rows)} queries (embedding + lexical + Chroma + fusion): "
        f"**p50 {p50:.1f} ms, p95 {p95:.1f} ms** (target p95 ≤ 20 ms).",
        "",
        f"Accuracy on {len(rows)} Tabular inclusion terms (seeded sample; query = the term, "
        f"gold = the code it is listed under): **top-1 {top1 / len(rows):.3f}, top-10 "
        f"{top10 / len(rows):.3f}**.",
        "",
        "| query | expected | rank |",
        "|---|---|---|",
        *must,
    ])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-build", action="store_true")
    parser.add_argument("--sample", type=int, default=1000)
    args = parser.parse_args()
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}.\n")
    if not args.skip_build:
        print(cold_build() + "\n")
    print(lookup_benchmarks(args.sample))


if __name__ == "__main__":
    main()
