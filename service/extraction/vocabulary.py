"""Extra concept vocabulary from a code year's index: Tabular titles, inclusion terms and
Alphabetic Index main terms, so step 1 finds conditions the curated lexicon lacks.

Only terms that read as a condition written in a note are kept: at most five words,
no "other/unspecified/with/due to" titles, external causes (V-Y) and Z codes left out,
and single words only when the Tabular uses them as a whole title or they carry a
medical suffix (-itis, -emia, ...). Also read: morphology main terms that only say "see
Neoplasm" (Sarcoma), and one-adjective sub-terms in a note's word order ("intracranial
hypertension"). The curated lexicon wins where both have a term.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from service.codebook import sited_main_terms
from service.extraction.concepts import Concept

MAX_WORDS = 5
PAREN = re.compile(r"\s*\([^)]*\)")
TRAILING = re.compile(r",?\s+(?:NOS|NEC|unspecified|not elsewhere classified)$", re.I)
COMPLEX = re.compile(r"\b(?:other|unspecified|specified|without|with|due to|following|"
                     r"classified|elsewhere|and|or|in|of|by|from|not|than|except)\b|[,;:/\[\]]",
                     re.I)
ADJECTIVE = re.compile(r"[a-z]{3,}(?:al|ic|ar|ary|ous|ive|oid|ine|ile)")
MEDICAL_WORD = re.compile(r"(?:itis|osis|emia|aemia|oma|algia|pathy|plegia|paresis|trophy|iasis|"
                          r"ism|rrhea|rrhage|cele|megaly|uria|penia|cytosis|phobia|spasm|sclerosis|"
                          r"ectasia|stenosis|plasia|lithiasis|oid|cardia|pnea|thermia|tension)$")


def index_vocabulary(codebook: Path, stopwords: set[str]) -> list[Concept]:
    con = sqlite3.connect(f"file:{codebook}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT text, source, code FROM lexicon WHERE source IN ('title', 'inclusion', "
            "'index') AND code IS NOT NULL AND code NOT GLOB '[VWXYZ]*'").fetchall()
        # Morphology main terms print no code, only "see Neoplasm, ... by site"
        # ("Sarcoma", "Adenocarcinoma"): step 2 follows them to the Neoplasm table.
        rows += [(title, "index", "C80.1") for (title,) in con.execute(
            "SELECT title FROM index_terms WHERE source = 'index' AND level = 0 AND "
            "(see LIKE 'Neoplasm%' OR see_also LIKE 'Neoplasm%')")]
        inverted = _adjective_subterms(con)
        # "Metastasis", "Hyperplasia": no code of their own; step 2 codes them only by a
        # documented site or kind. (Plain nouns such as "cyst" are in the curated lexicon.)
        sited = sited_main_terms(con)
    finally:
        con.close()
    whole_titles: set[str] = set()
    candidates: dict[str, tuple[str, str]] = {}  # term → (kind, normalized)
    for text, source, code in rows:
        if source == "index":
            if " > " in text:
                continue  # sub-terms only read as conditions together with their main term
            text = text.split(",")[0]
        term = TRAILING.sub("", PAREN.sub("", text)).strip().lower()
        if not term or COMPLEX.search(term) or len(term.split()) > MAX_WORDS:
            continue
        if source == "inclusion" and code[0] == "S" and " " not in term:
            continue  # a bone or organ an injury code lists ("Trachea", "Atlas"): a site
        if source != "index" and " " not in term:
            whole_titles.add(term)
        candidates.setdefault(term, (_kind(code), term))
    for term, kind, normalized in inverted:
        candidates.setdefault(term, (kind, normalized))
    for term in sited:
        if " " not in term:  # "foreign body" is in the curated lexicon; "lack of" is none
            candidates.setdefault(term, ("condition", term))
    concepts = []
    for term, (kind, normalized) in sorted(candidates.items()):
        if term in stopwords or len(term) < 4 or term.isdigit():
            continue
        if " " not in term and term not in whole_titles and not MEDICAL_WORD.search(term):
            continue
        concepts.append(Concept(term, normalized, kind, (), source="index"))
    return concepts


def _adjective_subterms(con: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """A one-adjective sub-term reads in a note before its main term: "Hypertension >
    intracranial" is written "intracranial hypertension". (term, kind, normalized); a
    sub-term that only says "see Cyst" ("Lesion > cystic") normalizes to where it sends."""
    out = []
    for sub, main, code, see in con.execute(
            "SELECT s.title, m.title, s.code_ref, s.see FROM index_terms s "
            "JOIN index_terms m ON m.id = s.parent_id WHERE s.source = 'index' "
            "AND s.level = 1 AND (s.code_ref IS NOT NULL OR s.see IS NOT NULL)"):
        # "intracranial, benign" is one; "chronic, postmastoidectomy cavity" is not.
        words = [w.strip() for w in PAREN.sub("", sub).lower().split(",")]
        adjective = words[0]
        noun = PAREN.sub("", main.split(",")[0]).strip().lower()
        if not ADJECTIVE.fullmatch(adjective) or any(" " in w for w in words) or " " in noun \
                or (code or "A")[0] in "VWXYZ":
            continue
        term = f"{adjective} {noun}"
        if code is not None:
            out.append((term, _kind(code), term))
        elif see.startswith("Neoplasm"):
            out.append((term, "condition", term))  # step 2 follows it to the table by site
        else:
            parts = [p.strip() for p in PAREN.sub("", see).lower().split(",")]
            target = " ".join(p for p in parts if p and not p.startswith("by "))
            if target and not COMPLEX.search(target) and len(target.split()) <= MAX_WORDS:
                out.append((term, "symptom", target))  # the calibration was fit so
    return out


def _kind(code: str) -> str:
    if code[0] in "ST":
        return "injury"
    if code[0] == "R":
        return "finding" if code[1:3] >= "70" else "symptom"
    return "condition"


def load_stopwords(path: Path) -> set[str]:
    return {line.strip().lower() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")}
