"""Confidence calibration: a code's confidence is the share of codes like it that were
right in evaluation. "Like it" is read from a few signals every result carries (the
chooser's match score, how the code was found, the fact's kind and vocabulary, flags,
chapter, and for the llm chooser whether a model's answer agreed with the rules) through a
logistic model fit by scripts/fit_calibration.py on a split other than the one reported:
rules/confidence_calibration.json for the rules chooser, and
rules/confidence_calibration_llm.json for the llm chooser with the model it was fit for.
The match score alone calibrates poorly: most codes score 0.9–1.0 whether right or not,
and a small model states 0.9 for nearly every answer, right or wrong.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

PATH = Path(__file__).parent.parent / "rules" / "confidence_calibration.json"
LLM_PATH = PATH.with_name("confidence_calibration_llm.json")
DIAGNOSIS_SECTIONS = {"diagnoses", "assessment", "assessment_and_plan"}


def features(code: str, title: str, score: float, source: str, kinds: list[str],
             vocabularies: list[str], sections: list[str | None], flags: list[str],
             combined: bool, model_pick: str = "") -> dict[str, float]:
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
        "model_agrees": float(model_pick == "agrees"),
        "model_overrides": float(model_pick == "overrides"),
    }


def calibration_path(chooser: str, model: str | None, llm_path: Path = LLM_PATH) -> Path:
    """The fit for this chooser: the llm fit only for the model it was fit on (another
    model's answers are right at another rate); otherwise the rules chooser's."""
    fit = _load(llm_path) if chooser == "llm" else None
    return llm_path if fit is not None and fit.get("model") == model else PATH


@lru_cache(maxsize=4)
def _load(path: Path) -> dict | None:  # type: ignore[type-arg]
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def calibrate(signals: dict[str, float], path: Path = PATH) -> float:
    """The fitted probability that a code with these signals is right; the raw match
    score when no fit is installed."""
    fit = _load(path)
    if fit is None:
        return round(signals["score"], 4)
    return round(1 / (1 + math.exp(-logit(fit, signals))), 4)


def logit(fit: dict, signals: dict[str, float]) -> float:  # type: ignore[type-arg]
    weights = fit["weights"]
    z = fit["bias"] + sum(weights.get(name, 0.0) * value for name, value in signals.items())
    # An llm fit rescales the rules chooser's fit and adds what the model's answer says:
    # a few hundred codes from a slow model are too few to refit every signal.
    if "rules_logit" in weights and (base := _load(PATH)) is not None:
        z += weights["rules_logit"] * logit(base, signals)
    return z


def llm_rows(signals: list[dict[str, float]]) -> list[dict[str, float]]:
    """What an llm fit is fit on: the rules fit's logit and the model's part."""
    base = _load(PATH)
    if base is None:
        raise ValueError(f"the llm calibration builds on the rules chooser's fit: {PATH} "
                         "is missing (fit a rules report first)")
    return [{"rules_logit": logit(base, s), "model_agrees": s.get("model_agrees", 0.0),
             "model_overrides": s.get("model_overrides", 0.0)} for s in signals]


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
