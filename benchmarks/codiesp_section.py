"""Write the "Coding on CodiEsp dev" section of docs/benchmarks.md from evaluation reports:

    medcode eval --codiesp ../shared/eval/codiesp --split dev --out eval_reports/codiesp-dev-rules
    MEDCODE_LLM_BACKEND=llama_cpp medcode eval --codiesp ../shared/eval/codiesp --split dev \\
        --chooser llm --out eval_reports/codiesp-dev-llm
    python benchmarks/codiesp_section.py eval_reports/codiesp-dev-rules \\
        eval_reports/codiesp-dev-llm [--note eval_reports/codiesp-dev-llm="run at commit abc1234"]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from run import replace_section  # noqa: E402

from service.evaluation.report import markdown  # noqa: E402

TARGETS = {"recall@20": 0.80, "micro-F1": 0.50, "ECE": 0.10}


def verdict(name: str, value: float) -> str:
    target = TARGETS[name]
    met = value <= target if name == "ECE" else value >= target
    return f"{value:.3f} ({'MET' if met else 'MISSED'}, target {'≤' if name == 'ECE' else '≥'} " \
           f"{target:.2f})"


def main() -> None:
    # --note FOLDER=TEXT says where a report came from (an earlier commit, a subset).
    args, notes = sys.argv[1:], {}
    while "--note" in args:
        i = args.index("--note")
        folder, _, text = args[i + 1].partition("=")
        notes[Path(folder)] = text
        del args[i:i + 2]
    folders = [Path(a) for a in args]
    if not folders or not all((f / "report.json").is_file() for f in folders):
        sys.exit("usage: codiesp_section.py REPORT_FOLDER... [--note FOLDER=TEXT] "
                 "(each folder with report.json)")
    reports = [json.loads((f / "report.json").read_text(encoding="utf-8")) for f in folders]
    lines = [f"Written {time.strftime('%Y-%m-%d')} by `python benchmarks/codiesp_section.py "
             f"{' '.join(str(f) for f in folders)}` from `medcode eval --codiesp "
             "../shared/eval/codiesp --split dev --gold-year 2018 --conversion-table "
             "../shared/sources/icd10cm/2025/2025-conversion-table.zip` reports (FY2025 index, "
             "extraction with the index vocabulary, notes taken as inpatient; CodiEsp was coded "
             "with the 2018 code set, read through the CMS conversion table: F32.A answers a "
             "gold F32.9). The confidence calibration was fit on the train split, never on "
             "dev.", "",
             "| chooser | model | notes | micro P | micro R | micro F1 | category F1 | "
             "recall@20 | ECE | s per note |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in reports:
        mi = r["code"]["micro"]
        lines.append(
            f"| {r['chooser']} | {r['model'] or '—'} | {r['cases']} | {mi['precision']:.3f} | "
            f"{mi['recall']:.3f} | {mi['f1']:.3f} | {r['category']['micro']['f1']:.3f} | "
            f"{r['retrieval_recall']['code']['@20']:.3f} | {r['calibration']['ece']:.3f} | "
            f"{r['seconds_per_note']['mean']:.2f} |")
    lines.append("")
    for folder, r in zip(folders, reports, strict=True):
        lines.append(f"- `{r['chooser']}` ({r['cases']} notes): micro-F1 "
                     f"{verdict('micro-F1', r['code']['micro']['f1'])}"
                     f", recall@20 {verdict('recall@20', r['retrieval_recall']['code']['@20'])}"
                     f", ECE {verdict('ECE', r['calibration']['ece'])}."
                     + ("" if "gold_replaced_since" in r else
                        " Written before gold was read through the conversion table.")
                     + (f" {notes[folder]}" if folder in notes else ""))
    lines.append("")
    for folder, r in zip(folders, reports, strict=True):
        title = f"{r['chooser']} chooser{', ' + r['model'] if r['model'] else ''}"
        body = markdown(r, title).replace(f"## {title}", f"### {title}")
        lines += [body, f"Report: `{folder}/report.json`, plot `{folder}/calibration.png`.", ""]
    replace_section("coding", "\n".join(lines).rstrip())
    print("\n".join(lines))


if __name__ == "__main__":
    main()
