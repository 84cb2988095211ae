"""Fit the confidence calibration from an evaluation report (use a split you do not report):

    python scripts/fit_calibration.py eval_reports/codiesp-train-rules/report.json

Writes service/rules/confidence_calibration.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from service.coding.calibration import PATH, isotonic  # noqa: E402
from service.evaluation import metrics  # noqa: E402


def main() -> None:
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_file():
        sys.exit("usage: fit_calibration.py REPORT.json (from medcode eval)")
    report = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    metrics.EXPANDED.update(report.get("gold_not_billable_this_year", []))
    pairs = [(raw, any(metrics.matches(code, g) for g in note["gold"]))
             for note in report["notes"] for code, _, raw in note["predicted"]]
    points = isotonic(pairs)
    PATH.write_text(json.dumps({
        "about": "Isotonic map from the chooser's raw score to the share of codes that were "
                 f"right, fit on {report['cases']} notes ({Path(sys.argv[1]).parent.name}, "
                 f"chooser {report['chooser']}, FY{report['year']}) by "
                 "scripts/fit_calibration.py. Refit after changing retrieval or the chooser.",
        "points": points}, indent=1) + "\n", encoding="utf-8")
    print(f"{len(pairs)} codes → {len(points)} points written to {PATH}")


if __name__ == "__main__":
    main()
