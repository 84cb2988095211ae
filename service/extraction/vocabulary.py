"""Extra concept vocabulary from a code year's index: Tabular titles, inclusion terms and
Alphabetic Index main terms, so step 1 finds conditions the curated lexicon lacks.

Only terms that read as a condition written in a note are kept: at most five words,
no "other/unspecified/with/due to" titles, external causes (V-Y) and Z codes left out,
and single words only when the Tabular uses them as a whole title or they carry a
medical suffix (-itis, -emia, ...). The curated lexicon wins where both have a term.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from service.extraction.concepts import Concept

MAX_WORDS = 5
PAREN = re.compile(r"\s*\([^)]*\)")
TRAILING = re.compile(r",?\s+(?:NOS|NEC|unspecified|not elsewhere classified)$", re.I)
COMPLEX = re.compile(r"\b(?:other|unspecified|specified|without|with|due to|following|"
                     r"classified|elsewhere|and|or|in|of|by|from|not|than|except)\b|[,;:/\[\]]",
                     re.I)
MEDICAL_WORD = re.compile(r"(?:itis|osis|emia|aemia|oma|algia|pathy|plegia|paresis|trophy|iasis|"
                          r"ism|rrhea|rrhage|cele|megaly|uria|penia|cytosis|phobia|spasm|sclerosis|"
                          r"ectasia|stenosis|plasia|lithiasis|oid|cardia|pnea|thermia|tension)$")


def index_vocabulary(codebook: Path, stopwords: set[str]) -> list[Concept]:
    con = sqlite3.connect(f"file:{codebook}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT text, source, code FROM lexicon WHERE source IN ('title', 'inclusion', "
            "'index') AND code IS NOT NULL AND code NOT GLOB '[VWXYZ]*'").fetchall()
    finally:
        con.close()
    whole_titles: set[str] = set()
    candidates: dict[str, str] = {}
    for text, source, code in rows:
        if source == "index":
            if " > " in text:
                continue  # sub-terms only read as conditions together with their main term
            text = text.split(",")[0]
        term = TRAILING.sub("", PAREN.sub("", text)).strip().lower()
        if not term or COMPLEX.search(term) or len(term.split()) > MAX_WORDS:
            continue
        if source != "index" and " " not in term:
            whole_titles.add(term)
        candidates.setdefault(term, code)
    concepts = []
    for term, code in sorted(candidates.items()):
        if term in stopwords or len(term) < 4 or term.isdigit():
            continue
        if " " not in term and term not in whole_titles and not MEDICAL_WORD.search(term):
            continue
        concepts.append(Concept(term, term, _kind(code), (), source="index"))
    return concepts


def _kind(code: str) -> str:
    if code[0] in "ST":
        return "injury"
    if code[0] == "R":
        return "finding" if code[1:3] >= "70" else "symptom"
    return "condition"


def load_stopwords(path: Path) -> set[str]:
    return {line.strip().lower() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")}
