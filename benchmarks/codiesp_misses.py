"""Where the rules chooser loses CodiEsp gold codes: for every gold code of a split, was it
coded, reached (among some fact's candidates) but not chosen, reachable only through a
negated or hypothetical mention (which medcode never codes), or never reached?

    python benchmarks/codiesp_misses.py [--split dev] [--limit N]

Prints a Markdown table; with --write it also replaces the coding-misses section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONVERSION = "2025-conversion-table.zip"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_coding import open_default_index  # noqa: E402
from run import replace_section  # noqa: E402

from service.coding.coder import code_note  # noqa: E402
from service.coding.factory import make_chooser  # noqa: E402
from service.coding.retrieval import retrieve_all  # noqa: E402
from service.evaluation import metrics  # noqa: E402
from service.evaluation.conversion import load_conversion_table, replaced_since  # noqa: E402
from service.evaluation.datasets import load_codiesp  # noqa: E402
from service.evaluation.runner import gold_billable  # noqa: E402
from service.extraction.note_input import make_note  # noqa: E402

STOP = frozenset("other unspecified specified disease disorder disorders without with elsewhere "
                 "classified of and or the in not nos nec due to condition conditions type acute "
                 "chronic left right site part".split())


def _worded(codebook, code: str, note: str) -> bool:  # type: ignore[no-untyped-def]
    """Does the note hold every content word (5-letter stems) of some Index path, title or
    inclusion term of the code or of its subcodes?"""
    said = {w[:5] for w in re.findall(r"[a-z]+", note.lower())}
    rows = codebook.db.execute("SELECT text FROM lexicon WHERE code = ? OR (code LIKE ? AND "
                               "length(code) <= ?)", (code, f"{code}%", len(code) + 2))
    for (text,) in rows:
        stems = {w[:5] for w in re.findall(r"[a-z]+", text.lower())
                 if len(w) >= 4 and w not in STOP}
        if stems and stems <= said:
            return True
    return False


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--codiesp", type=Path, default=REPO.parent / "shared" / "eval" / "codiesp")
    ap.add_argument("--split", default="dev")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = ap.parse_args()
    settings, registry, index, extractor = open_default_index()
    chooser = make_chooser(settings, "rules")
    cases = load_codiesp(args.codiesp, args.split, setting="inpatient")[:args.limit]
    metrics.EXPANDED.update(g for c in cases for g in c.codes
                            if gold_billable(index.codebook, g) is False)
    table = args.codiesp.parent.parent / "sources" / "icd10cm" / "2025" / CONVERSION
    if table.is_file():  # CodiEsp was coded with the 2018 code set (docs/coding.md)
        metrics.REPLACED.update(replaced_since(load_conversion_table(table), 2018))
    outcome: Counter[str] = Counter()
    unreached: Counter[str] = Counter()
    worded: Counter[bool] = Counter()  # never reached: is the code's Index wording in the note?
    for case in cases:
        r = code_note(make_note(case.text, setting=case.setting), extractor, index,
                      registry.embedder, chooser)
        coded = [c.code for c in r.codes]
        reached = {c.code for f in r.facts for c in f.candidates}
        skipped = [f for f in r.extraction.facts
                   if f.assertion in ("negated", "hypothetical") and f.normalized]
        negated = {c.code for fr in retrieve_all(index, registry.embedder, skipped,
                                                 r.extraction, case.text).values()
                   for c in fr.candidates}
        for gold in case.codes:
            if any(metrics.matches(c, gold) for c in coded):
                outcome["coded"] += 1
            elif any(metrics.candidate_matches(c, gold) for c in reached):
                outcome["reached, another code chosen"] += 1
            elif any(metrics.candidate_matches(c, gold) for c in negated):
                outcome["only a negated or hypothetical mention reaches it"] += 1
            else:
                outcome["never reached (no extracted fact leads to it)"] += 1
                unreached[gold] += 1
                worded[_worded(index.codebook, gold, case.text)] += 1
    total = sum(outcome.values())
    lines = [f"{len(cases)} CodiEsp {args.split} notes, {total} gold codes, rules chooser "
             "(`python benchmarks/codiesp_misses.py --write`).", "",
             "| gold code | count | share |", "|---|---|---|"]
    lines += [f"| {name} | {n} | {n / total:.1%} |" for name, n in outcome.most_common()]
    titles = {code: (row.title if (row := index.codebook.get(code)) else "?")
              for code in unreached}
    lines += ["", "Most frequent never-reached gold codes: " + ", ".join(
        f"{code} ({titles[code]}) {n}" for code, n in unreached.most_common(12)) + "."]
    never = sum(worded.values())
    reached = outcome["coded"] + outcome["reached, another code chosen"]
    ceiling = reached + worded[True] + outcome["only a negated or hypothetical mention reaches it"]
    lines += ["", f"Of the {never} never-reached gold codes, {worded[False]} "
              f"({worded[False] / max(never, 1):.0%}) have no Index or Tabular wording of theirs "
              "(every content word of one of the code's Index paths, titles or inclusion terms) "
              "anywhere in the English note: the translation lost the mention, or the "
              "annotator coded from the Spanish. If every never-reached code whose wording is "
              "in the note, and every code only a negated mention reaches, were reached, "
              f"recall would be {ceiling / max(total, 1):.3f}."]
    print("\n".join(lines))
    if args.write:
        replace_section("coding-misses", "\n".join(lines))


if __name__ == "__main__":
    main()

