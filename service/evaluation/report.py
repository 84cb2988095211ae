"""Write an evaluation report: report.json, report.md and calibration.png."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_report(report: dict[str, Any], out: Path, title: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "report.json", out / "report.md", out / "calibration.png"]
    paths[0].write_text(json.dumps(report, indent=1), encoding="utf-8")
    paths[1].write_text(markdown(report, title), encoding="utf-8")
    reliability_plot(report["calibration"], paths[2], title)
    return paths


def markdown(r: dict[str, Any], title: str) -> str:
    lines = [f"## {title}", "",
             f"FY{r['year']} index, chooser `{r['chooser']}`"
             f"{', model ' + r['model'] if r['model'] else ''}; {r['cases']} notes, "
             f"{r['gold_codes']} gold codes, {r['predicted_codes']} predicted; "
             f"{r['seconds_per_note'].get('mean', 0):.2f} s per note (mean).", "",
             "| level | micro P | micro R | micro F1 | macro P | macro R | macro F1 |",
             "|---|---|---|---|---|---|---|"]
    for level in ("code", "category"):
        mi, ma = r[level]["micro"], r[level]["macro"]
        lines.append(f"| {'full code' if level == 'code' else '3-character category'} | "
                     f"{mi['precision']:.3f} | {mi['recall']:.3f} | {mi['f1']:.3f} | "
                     f"{ma['precision']:.3f} | {ma['recall']:.3f} | {ma['f1']:.3f} |")
    rec = r["retrieval_recall"]
    ks = list(rec["code"])
    lines += ["", "Retrieval recall of gold codes among each fact's candidates:", "",
              "| | " + " | ".join(ks) + " |", "|---|" + "---|" * len(ks),
              "| full code | " + " | ".join(f"{rec['code'][k]:.3f}" for k in ks) + " |",
              "| category | " + " | ".join(f"{rec['category'][k]:.3f}" for k in ks) + " |",
              "", f"Calibration: expected calibration error {r['calibration']['ece']:.3f} over "
              f"{r['calibration']['predictions']} predicted codes.", "",
              "| confidence bin | codes | mean confidence | share correct |", "|---|---|---|---|"]
    for row in r["calibration"]["table"]:
        lines.append(f"| {row['bin']} | {row['n']} | {row['confidence']:.3f} | "
                     f"{row['accuracy']:.3f} |")
    lines += ["", "Per chapter (full code):", "", "| chapter | gold | predicted | P | R | F1 |",
              "|---|---|---|---|---|---|"]
    for chapter, row in r["per_chapter"].items():
        lines.append(f"| {chapter} | {row['gold']} | {row['predicted']} | "
                     f"{row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} |")
    flags = ", ".join(f"{k} {v}" for k, v in r["flags"].items()) or "none"
    lines += ["", f"Flags raised: {flags}.", ""]
    decided = r.get("decided_by") or {}
    if set(decided) - {"rules"}:  # the llm chooser: who decided, and how often rightly
        lines += ["| decided by | codes | share correct |", "|---|---|---|"]
        lines += [f"| {who} | {row['codes']} | {row['correct']:.3f} |"
                  for who, row in sorted(decided.items())]
        lines.append("")
    replaced = r.get("gold_replaced_since") or {}
    if replaced:
        lines += ["Gold codes read through the conversion table (a code created since the "
                  "gold's code year matches the code it replaced): "
                  + "; ".join(f"{g} → {', '.join(c)}" for g, c in replaced.items()) + ".", ""]
    return "\n".join(lines)


def reliability_plot(calibration: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = calibration["table"]
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    ax.plot([row["confidence"] for row in rows], [row["accuracy"] for row in rows],
            marker="o", label=f"medcode (ECE {calibration['ece']:.3f})")
    for row in rows:
        ax.annotate(str(row["n"]), (row["confidence"], row["accuracy"]), fontsize=7,
                    textcoords="offset points", xytext=(4, -10))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("share of codes that are correct")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
