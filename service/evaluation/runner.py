"""Run a coder over evaluation cases and gather the metrics into one report."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from service.codebook import Codebook
from service.coding.models import CodingResult
from service.evaluation import metrics
from service.evaluation.datasets import EvalCase


def predict(case: EvalCase, result: CodingResult, seconds: float) -> metrics.Prediction:
    flags: Counter[str] = Counter(f.kind for f in result.flags)
    for code in result.codes:
        flags.update(f.kind for f in code.flags)
    ranked = [[c.code for c in sorted(f.candidates, key=lambda c: -c.score)]
              for f in result.facts if f.candidates]
    # A code a rule made rather than a fact's search (a combination the guidelines require,
    # a measurement's Z68 / Z3A) was reached all the same: its own one-code list.
    reached = {code for codes in ranked for code in codes}
    ranked += [[c.code] for c in result.codes if c.code not in reached]
    return metrics.Prediction(case_id=case.id, gold=case.codes,
                              codes=[(c.code, c.confidence) for c in result.codes],
                              raw=[c.match_score for c in result.codes],
                              signals=[c.confidence_signals for c in result.codes],
                              candidates=ranked, flags=flags, seconds=seconds)


def gold_billable(codebook: Codebook, code: str) -> bool | None:
    """Is a gold code billable in the evaluated year (None: not a code of that year)? A code
    written without its 7th character ("S62.92X") is not: it matches the codes under it."""
    row = codebook.get(code)
    if row is None:
        return False if codebook.truncated_seventh(code) else None
    return row.billable


def evaluate(cases: Iterable[EvalCase], code: Callable[[EvalCase], CodingResult],
             chapter_of: Callable[[str], str], is_billable: Callable[[str], bool | None],
             progress: Callable[[int], None] | None = None,
             replaced: dict[str, set[str]] | None = None) -> dict[str, Any]:
    """`replaced`: gold code → codes that took over its meaning since the gold's code year
    (conversion.replaced_since); None when the gold is of the evaluated year."""
    cases = list(cases)
    # Gold codes not billable this year match the codes under them (see metrics.matches).
    metrics.EXPANDED.clear()
    metrics.EXPANDED.update(g for case in cases for g in case.codes if is_billable(g) is False)
    metrics.REPLACED.clear()
    metrics.REPLACED.update(replaced or {})
    predictions = []
    chooser = model = year = None
    for n, case in enumerate(cases, start=1):
        started = time.perf_counter()
        result = code(case)
        predictions.append(predict(case, result, time.perf_counter() - started))
        chooser, model, year = result.chooser, result.model, result.year
        if progress:
            progress(n)
    seconds = [p.seconds for p in predictions]
    return {
        "year": year, "chooser": chooser, "model": model, "cases": len(predictions),
        "gold_codes": sum(len(p.gold) for p in predictions),
        "predicted_codes": sum(len(p.codes) for p in predictions),
        "code": metrics.prf(predictions, "code"),
        "category": metrics.prf(predictions, "category"),
        "per_chapter": metrics.per_chapter(predictions, chapter_of),
        "retrieval_recall": metrics.recall_at_k(predictions),
        "calibration": metrics.calibration(predictions),
        "flags": metrics.flag_counts(predictions),
        "decided_by": metrics.decided_by(predictions),
        "gold_not_billable_this_year": sorted(metrics.EXPANDED),
        "gold_replaced_since": {g: sorted(metrics.REPLACED[g]) for g in sorted(
            {g for p in predictions for g in p.gold if g in metrics.REPLACED})},
        "seconds_per_note": {"mean": round(statistics.mean(seconds), 3),
                             "p50": round(statistics.median(seconds), 3),
                             "max": round(max(seconds), 3)} if seconds else {},
        "notes": [{"id": p.case_id, "gold": list(p.gold),
                   "predicted": [[c, conf, raw] for (c, conf), raw in zip(p.codes, p.raw,
                                                                           strict=True)],
                   "signals": p.signals,
                   "seconds": round(p.seconds, 3)} for p in predictions],
    }
