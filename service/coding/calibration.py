"""Confidence calibration: the chooser's raw score mapped to the share of codes that were
right at that score, by an isotonic fit (rules/confidence_calibration.json, written by
scripts/fit_calibration.py from an evaluation on data other than the reported split)."""

from __future__ import annotations

import bisect
import json
from functools import lru_cache
from pathlib import Path

PATH = Path(__file__).parent.parent / "rules" / "confidence_calibration.json"


@lru_cache(maxsize=4)
def _points(path: Path = PATH) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if not path.exists():
        return (), ()
    data = json.loads(path.read_text(encoding="utf-8"))
    xs, ys = zip(*data["points"], strict=True) if data["points"] else ((), ())
    return tuple(xs), tuple(ys)


def calibrate(raw: float, path: Path = PATH) -> float:
    """Piecewise-linear through the fitted points; the raw score when there is no fit."""
    xs, ys = _points(path)
    if not xs:
        return raw
    if raw <= xs[0]:
        return ys[0]
    if raw >= xs[-1]:
        return ys[-1]
    i = bisect.bisect_right(xs, raw)
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    return round(y0 + (y1 - y0) * (raw - x0) / (x1 - x0), 4) if x1 > x0 else y1


def isotonic(pairs: list[tuple[float, bool]], bins: int = 20) -> list[tuple[float, float]]:
    """Pool-adjacent-violators over score-sorted pairs, summarised as one point per block
    (mean score, share correct), at most `bins` blocks of equal size to start from."""
    pairs = sorted(pairs)
    size = max(1, len(pairs) // bins)
    blocks = [[sum(s for s, _ in chunk) / len(chunk), sum(c for _, c in chunk) / len(chunk),
               len(chunk)] for chunk in (pairs[i:i + size] for i in range(0, len(pairs), size))]
    merged: list[list[float]] = []
    for block in blocks:
        merged.append(block)
        while len(merged) > 1 and merged[-2][1] > merged[-1][1]:
            b, a = merged.pop(), merged.pop()
            n = a[2] + b[2]
            merged.append([(a[0] * a[2] + b[0] * b[2]) / n, (a[1] * a[2] + b[1] * b[2]) / n, n])
    points: list[list[float]] = []
    for x, y, n in merged:  # blocks at one score (many codes score exactly 1.0) become one
        if points and round(points[-1][0], 4) == round(x, 4):
            px, py, pn = points[-1]
            points[-1] = [px, (py * pn + y * n) / (pn + n), pn + n]
        else:
            points.append([x, y, n])
    return [(round(x, 4), round(y, 4)) for x, y, _ in points]
