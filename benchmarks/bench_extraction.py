"""Step 1 throughput: 500-word notes per second, one process and one per core.

    python benchmarks/bench_extraction.py [--notes 200] [--workers 2]

Notes are the English CodiEsp dev case reports from ../shared (real clinical text),
cut or joined to exactly 500 words; without ../shared, the test notes in tests/notes
joined the same way (denser in findings, so slower). Prints a Markdown section.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from service.extraction.note_input import make_note  # noqa: E402
from service.extraction.pipeline import Extractor  # noqa: E402

SHARED = Path(os.environ.get("MEDCODE_SHARED", REPO.parent / "shared"))
CODIESP = SHARED / "eval/codiesp/dev/text_files_en"
WORDS = 500
_worker: Extractor | None = None


def corpus(n: int) -> tuple[str, list[str]]:
    if CODIESP.is_dir():
        source = f"CodiEsp dev English ({CODIESP})"
        texts = [p.read_text(encoding="utf-8") for p in sorted(CODIESP.glob("*.txt"))]
    else:
        source = "tests/notes (../shared absent)"
        texts = [p.read_text(encoding="utf-8") for p in sorted((REPO / "tests/notes").glob("*"))]
    words = [w for t in texts for w in t.split(" ")]
    notes, i = [], 0
    while len(notes) < n:
        chunk = [words[(i + k) % len(words)] for k in range(WORDS)]
        notes.append(" ".join(chunk))
        i += WORDS
    return source, notes


def _init() -> None:
    global _worker
    _worker = Extractor()


def _extract(text: str) -> int:
    assert _worker is not None
    return len(_worker.extract(make_note(text)).facts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--notes", type=int, default=200)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    source, notes = corpus(args.notes)

    started = time.perf_counter()
    extractor = Extractor()
    load_s = time.perf_counter() - started
    for text in notes[:5]:
        extractor.extract(make_note(text))
    latencies, facts = [], []
    started = time.perf_counter()
    for text in notes:
        t0 = time.perf_counter()
        facts.append(len(extractor.extract(make_note(text)).facts))
        latencies.append((time.perf_counter() - t0) * 1000)
    single = len(notes) / (time.perf_counter() - started)

    with ProcessPoolExecutor(args.workers, initializer=_init) as pool:
        list(pool.map(_extract, notes[: args.workers * 2]))  # load the workers
        started = time.perf_counter()
        list(pool.map(_extract, notes, chunksize=8))
        parallel = len(notes) / (time.perf_counter() - started)

    q = statistics.quantiles(latencies, n=20)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{len(notes)} notes of {WORDS} words from {source}; {os.cpu_count()} cores.\n")
    print("| measure | value |\n|---|---|")
    print(f"| pipeline load (lexicon, rules, medspaCy) | {load_s:.1f} s |")
    print(f"| facts per note (mean) | {statistics.mean(facts):.1f} |")
    print(f"| latency per note, one process, p50 / p95 | {q[9]:.1f} / {q[18]:.1f} ms |")
    print(f"| throughput, one process | {single:.1f} notes/s |")
    print(f"| throughput, {args.workers} worker processes | {parallel:.1f} notes/s "
          f"(target ≥ 50) |")
    print(f"| peak RSS, main process | {rss:.0f} MiB |")


if __name__ == "__main__":
    main()
