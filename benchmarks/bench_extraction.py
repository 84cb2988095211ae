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

from medcode.settings import get_settings, vocabulary_codebook  # noqa: E402
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


def _init(vocabulary: Path | None) -> None:
    global _worker
    _worker = Extractor(vocabulary=vocabulary)


def _extract(text: str) -> int:
    assert _worker is not None
    return len(_worker.extract(make_note(text)).facts)


def measure(notes: list[str], vocabulary: Path | None, workers: int) -> dict[str, float]:
    started = time.perf_counter()
    extractor = Extractor(vocabulary=vocabulary)
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
    with ProcessPoolExecutor(workers, initializer=_init, initargs=(vocabulary,)) as pool:
        list(pool.map(_extract, notes[: workers * 2]))  # load the workers
        started = time.perf_counter()
        list(pool.map(_extract, notes, chunksize=8))
        parallel = len(notes) / (time.perf_counter() - started)
    q = statistics.quantiles(latencies, n=20)
    return {"terms": len(extractor.concepts), "load": load_s, "facts": statistics.mean(facts),
            "p50": q[9], "p95": q[18], "single": single, "parallel": parallel}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--notes", type=int, default=200)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    source, notes = corpus(args.notes)
    configs: list[tuple[str, Path | None]] = [("curated lexicon", None)]
    codebook = vocabulary_codebook(get_settings())
    if codebook is not None:
        configs.append((f"+ FY{codebook.parent.name} index vocabulary", codebook))
    results = [(name, measure(notes, vocab, args.workers)) for name, vocab in configs]

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{len(notes)} notes of {WORDS} words from {source}; {os.cpu_count()} cores.\n")
    print("| measure | " + " | ".join(name for name, _ in results) + " |")
    print("|---|" + "---|" * len(results))
    rows = [("terms in the lexicon", "{terms:,}"), ("pipeline load", "{load:.1f} s"),
            ("facts per note (mean)", "{facts:.1f}"),
            ("latency per note, one process, p50 / p95", "{p50:.1f} / {p95:.1f} ms"),
            ("throughput, one process", "{single:.1f} notes/s"),
            (f"throughput, {args.workers} worker processes (target ≥ 50)",
             "{parallel:.1f} notes/s")]
    for label, fmt in rows:
        print(f"| {label} | " + " | ".join(fmt.format(**r) for _, r in results) + " |")
    print(f"\nPeak RSS of the measuring process: {rss:.0f} MiB.")


if __name__ == "__main__":
    main()
