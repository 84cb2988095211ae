"""Confidence calibration: a code's confidence is the share of codes like it that were
right in evaluation. "Like it" is read from a few signals every result carries (the
chooser's match score, how the code was found, the fact's kind and vocabulary, flags,
chapter) through a logistic model in rules/confidence_calibration.json, fit by
scripts/fit_calibration.py on a split other than the one reported. The match score alone
calibrates poorly: most codes score 0.9–1.0 whether right or not.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

PATH = Path(__file__).parent.parent / "rules" / "confidence_calibration.json"
DIAGNOSIS_SECTIONS = {"diagnoses", "assessment", "assessment_and_plan"}


def features(code: str, title: str, score: float, source: str, kinds: list[str],
             vocabularies: list[str], sections: list[str | None], flags: list[str],
             combined: bool) -> dict[str, float]:
    """The signals a confidence is computed from; shown with each code."""
    return {
        "score": round(min(1.0, score), 4),
        "index_path": float(source in ("index", "neoplasm", "neoplasm_table", "see_by_site")),
        "title_match": float(source in ("title", "inclusion")),
        "vector_match": float(source.startswith("vector")),
        "guideline_fix": float(source == "guideline"),
        "symptom": float(all(k in ("symptom", "finding") for k in kinds) and bool(kinds)),
        "curated_term": float("curated" in vocabularies),
        "abbreviation": float("abbreviation" in vocabularies),
        "mentions": min(len(kinds), 3) / 3,
        "diagnosis_section": float(any(s in DIAGNOSIS_SECTIONS for s in sections)),
        "missing_axis": float("unspecified_documentation" in flags),
        "uncertain": float("uncertain_diagnosis" in flags),
        "combination": float(combined),
        "unspecified_title": float("unspecified" in title.lower()),
        "chapter_r": float(code[0] == "R"),
        "chapter_z": float(code[0] == "Z"),
        "injury": float(code[0] in "ST"),
        "neoplasm": float(code[0] == "C" or code[:2] in ("D0", "D1", "D2", "D3", "D4")),
    }


@lru_cache(maxsize=4)
def _model(path: Path = PATH) -> tuple[dict[str, float], float] | None:
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return data["weights"], data["bias"]


def calibrate(signals: dict[str, float], path: Path = PATH) -> float:
    """The fitted probability that a code with these signals is right; the raw match
    score when no fit is installed."""
    model = _model(path)
    if model is None:
        return round(signals["score"], 4)
    weights, bias = model
    z = bias + sum(weights.get(name, 0.0) * value for name, value in signals.items())
    return round(1 / (1 + math.exp(-z)), 4)


def fit_logistic(rows: list[dict[str, float]], labels: list[bool], l2: float = 1.0,
                 steps: int = 50) -> tuple[dict[str, float], float]:
    """L2-regularised logistic regression by Newton's method (IRLS)."""
    import numpy as np

    names = sorted(rows[0])
    x = np.array([[r[n] for n in names] + [1.0] for r in rows])
    y = np.array(labels, dtype=float)
    w = np.zeros(x.shape[1])
    penalty = np.eye(x.shape[1]) * l2
    penalty[-1, -1] = 0.0  # the bias is not shrunk
    for _ in range(steps):
        p = 1 / (1 + np.exp(-x @ w))
        gradient = x.T @ (p - y) + penalty @ w
        hessian = (x.T * (p * (1 - p))) @ x + penalty
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    weights = {n: round(float(v), 4) for n, v in zip(names, w[:-1], strict=True)}
    return weights, round(float(w[-1]), 4)
