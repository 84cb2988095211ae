"""Metrics: precision / recall / F1 (micro and macro, full code and category, per chapter),
retrieval recall@k of gold codes among the candidates, calibration, flag counts.

Gold codes that are not billable in the evaluated code year match a prediction under them:
CodiEsp's injury codes that lack the 7th character (gold S72.001, predicted S72.001A), and
codes that were billable when the gold was made but have since been expanded (R51 → R51.9
in FY2021, R05 → R05.9 and M54.5 → M54.50 in FY2022). `expanded` lists those gold codes.
Given the gold's code year and the CMS conversion table, a code created since then matches
the gold code whose meaning it took over (F32.A for a FY2018 F32.9, "depression NOS").
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field


@dataclass
class Prediction:
    case_id: str
    gold: tuple[str, ...]
    codes: list[tuple[str, float]]  # (code, confidence), in sequence
    candidates: list[list[str]]  # per fact, ranked candidate codes
    flags: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    raw: list[float] = field(default_factory=list)  # the chooser's scores before calibration
    signals: list[dict[str, float]] = field(default_factory=list)  # calibration inputs


EXPANDED: set[str] = set()  # set by the runner from the code year's codebook
# Gold code → codes created since the gold's code year that took over its meaning (the
# CMS conversion table: F32.9 → F32.A in FY2022); set by the runner when given.
REPLACED: dict[str, set[str]] = {}


def matches(predicted: str, gold: str) -> bool:
    if predicted == gold or predicted in REPLACED.get(gold, ()):
        return True
    flat = gold.replace(".", "")
    return gold in EXPANDED and predicted.replace(".", "").startswith(flat)


def candidate_matches(candidate: str, gold: str) -> bool:
    """matches(), and a candidate the chooser completes with a 7th character (S80.02)
    answers the gold written without it (S80.02X)."""
    return matches(candidate, gold) or (
        gold in EXPANDED and gold.replace(".", "").rstrip("X") == candidate.replace(".", ""))


def category(code: str) -> str:
    return code[:3]


def _prf(tp: int, n_pred: int, n_gold: int) -> dict[str, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4),
            "tp": tp, "predicted": n_pred, "gold": n_gold}


def _true_positives(pred: list[str], gold: tuple[str, ...], level: str) -> list[str]:
    """Gold codes hit by some prediction (each gold counted once)."""
    if level == "category":
        preds = {category(c) for c in pred}
        return [g for g in dict.fromkeys(category(x) for x in gold) if g in preds]
    return [g for g in gold if any(matches(p, g) for p in pred)]


def prf(predictions: list[Prediction], level: str = "code") -> dict[str, dict[str, float]]:
    tp = n_pred = n_gold = 0
    per_label: dict[str, Counter[str]] = defaultdict(Counter)
    for p in predictions:
        pred = [c for c, _ in p.codes]
        gold = p.gold if level == "code" else tuple(dict.fromkeys(category(g) for g in p.gold))
        pred_l = pred if level == "code" else list(dict.fromkeys(category(c) for c in pred))
        hits = _true_positives(pred, p.gold, level)
        tp += len(hits)
        n_pred += len(pred_l)
        n_gold += len(gold)
        for g in gold:
            per_label[g]["gold"] += 1
            per_label[g]["tp"] += g in hits
        for c in pred_l:
            hit = c in hits if level == "category" else any(matches(c, g) for g in hits)
            per_label[c]["pred"] += 1
            per_label[c]["tp_pred"] += hit
    micro = _prf(tp, n_pred, n_gold)
    # Macro: the mean over labels (codes or categories) seen in gold or predictions.
    ps, rs, fs = [], [], []
    for counts in per_label.values():
        p = counts["tp_pred"] / counts["pred"] if counts["pred"] else 0.0
        r = counts["tp"] / counts["gold"] if counts["gold"] else 0.0
        ps.append(p)
        rs.append(r)
        fs.append(2 * p * r / (p + r) if p + r else 0.0)
    n = len(per_label) or 1
    macro = {"precision": round(sum(ps) / n, 4), "recall": round(sum(rs) / n, 4),
             "f1": round(sum(fs) / n, 4), "labels": len(per_label)}
    return {"micro": micro, "macro": macro}


def per_chapter(predictions: list[Prediction], chapter_of) -> dict[str, dict[str, float]]:  # type: ignore[no-untyped-def]
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for p in predictions:
        pred = [c for c, _ in p.codes]
        hits = set(_true_positives(pred, p.gold, "code"))
        for g in p.gold:
            counts[chapter_of(g)]["gold"] += 1
            counts[chapter_of(g)]["tp"] += g in hits
        for c in pred:
            counts[chapter_of(c)]["pred"] += 1
            counts[chapter_of(c)]["tp_pred"] += any(matches(c, g) for g in p.gold)
    out = {}
    for chapter, c in sorted(counts.items()):
        row = _prf(c["tp_pred"], c["pred"], c["gold"])
        row["recall"] = round(c["tp"] / c["gold"], 4) if c["gold"] else 0.0
        p, r = row["precision"], row["recall"]
        row["f1"] = round(2 * p * r / (p + r), 4) if p + r else 0.0
        out[chapter] = row
    return out


def recall_at_k(predictions: list[Prediction], ks: tuple[int, ...] = (1, 5, 10, 20)
                ) -> dict[str, dict[str, float]]:
    """Share of gold codes among the top-k candidates of some fact of their note."""
    out: dict[str, dict[str, float]] = {"code": {}, "category": {}}
    total = sum(len(p.gold) for p in predictions) or 1
    for k in ks:
        hit_code = hit_cat = 0
        for p in predictions:
            top = {c for ranked in p.candidates for c in ranked[:k]}
            cats = {category(c) for c in top}
            hit_code += sum(any(candidate_matches(c, g) for c in top) for g in p.gold)
            hit_cat += sum(category(g) in cats for g in p.gold)
        out["code"][f"@{k}"] = round(hit_code / total, 4)
        out["category"][f"@{k}"] = round(hit_cat / total, 4)
    return out


def calibration(predictions: list[Prediction], bins: int = 10) -> dict[str, object]:
    """Reliability table and expected calibration error of the codes' confidences."""
    rows: list[Counter[str] | dict] = [Counter() for _ in range(bins)]
    sums = [0.0] * bins
    n = 0
    for p in predictions:
        for code, conf in p.codes:
            b = min(int(conf * bins), bins - 1)
            rows[b]["n"] += 1
            rows[b]["correct"] += any(matches(code, g) for g in p.gold)
            sums[b] += conf
            n += 1
    table, ece = [], 0.0
    for b in range(bins):
        count = rows[b]["n"]
        if not count:
            continue
        conf = sums[b] / count
        acc = rows[b]["correct"] / count
        ece += count / n * abs(acc - conf)
        table.append({"bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}", "n": count,
                      "confidence": round(conf, 4), "accuracy": round(acc, 4)})
    return {"ece": round(ece, 4), "predictions": n, "table": table}


def decided_by(predictions: list[Prediction]) -> dict[str, dict[str, float]]:
    """Codes by what decided them (the llm chooser: the rules alone, a model that kept the
    rules' pick, a model that overrode it), each with its share correct."""
    groups: dict[str, list[bool]] = {}
    for p in predictions:
        for (code, _), signals in zip(p.codes, p.signals, strict=False):
            who = ("model, agreeing with the rules" if signals.get("model_agrees") else
                   "model, overriding the rules" if signals.get("model_overrides") else
                   "rules")
            groups.setdefault(who, []).append(any(matches(code, g) for g in p.gold))
    return {who: {"codes": len(right), "correct": round(sum(right) / len(right), 4)}
            for who, right in groups.items()}


def flag_counts(predictions: list[Prediction]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for p in predictions:
        total.update(p.flags)
    return dict(total.most_common())
