"""Fit the confidence calibration from an evaluation report (use a split you do not report):

    medcode eval --codiesp ../shared/eval/codiesp --split train --gold-year 2018 \
        --conversion-table ../shared/sources/icd10cm/2025/2025-conversion-table.zip \
        --out eval_reports/codiesp-train-rules
    python scripts/fit_calibration.py eval_reports/codiesp-train-rules/report.json

Writes service/rules/confidence_calibration.json: logistic weights over the signals each
coded diagnosis carries (service/coding/calibration.py). A report of the llm chooser
(`--chooser llm`) writes service/rules/confidence_calibration_llm.json instead, for the
model that report names: a model's answers are right at their own rate. That fit rescales
the rules fit and adds the model's agreement with the rules, so fit a rules report first.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from service.coding.calibration import LLM_PATH, PATH, fit_logistic, llm_rows  # noqa: E402
from service.evaluation import metrics  # noqa: E402


def main() -> None:
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_file():
        sys.exit("usage: fit_calibration.py REPORT.json (from medcode eval)")
    report = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    if report["chooser"] not in ("rules", "llm"):
        sys.exit(f"fit_calibration.py: no calibration for chooser {report['chooser']!r}")
    path = PATH if report["chooser"] == "rules" else LLM_PATH
    metrics.EXPANDED.update(report.get("gold_not_billable_this_year", []))
    metrics.REPLACED.update({g: set(c) for g, c in report.get("gold_replaced_since", {}).items()})
    rows, labels = [], []
    for note in report["notes"]:
        for (code, _, _), signals in zip(note["predicted"], note.get("signals", []), strict=True):
            rows.append(signals)
            labels.append(any(metrics.matches(code, g) for g in note["gold"]))
    if not rows:
        sys.exit("fit_calibration.py: the report has no per-code signals (rerun medcode eval)")
    if report["chooser"] == "llm":
        rows = llm_rows(rows)
    weights, bias = fit_logistic(rows, labels)
    formula = ("1 / (1 + exp(-(bias + sum(weight * signal))))" if report["chooser"] == "rules"
               else "1 / (1 + exp(-(bias + rules_logit * (the rules fit's bias + sum(weight * "
               "signal)) + model_agrees * agrees + model_overrides * overrides)))")
    fit = {
        "about": f"Logistic weights: confidence = {formula}. "
                 f"Fit on {len(rows)} coded diagnoses of {report['cases']} notes "
                 f"({Path(sys.argv[1]).parent.name}, chooser {report['chooser']}, "
                 f"FY{report['year']}) by scripts/fit_calibration.py. Refit after changing "
                 "extraction, retrieval or the chooser.",
        "bias": bias, "weights": weights}
    if report["chooser"] == "llm":
        fit["model"] = report["model"]  # used only for this model (calibration_path)
    path.write_text(json.dumps(fit, indent=1) + "\n", encoding="utf-8")
    print(f"{len(rows)} codes ({sum(labels)} right) → {len(weights)} weights written to {path}")


if __name__ == "__main__":
    main()
