"""The concept lexicon: surface forms of conditions, symptoms, injuries and procedures.

`concepts.tsv` maps each surface ("dm2", "hfref", "breast ca") to the term a coder
looks up ("type 2 diabetes mellitus") and to the modifiers the surface itself
implies (HFrEF → systolic). Ambiguous abbreviations (PE, MS, RA...) are added as
ABBREVIATION targets and settled by abbreviations.SenseInventory.resolve.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from medspacy.ner import TargetRule

KINDS = ("condition", "symptom", "injury", "finding", "procedure", "organism", "medication",
         "external_cause")
ABBREVIATION_LABEL = "ABBREVIATION"


@dataclass(frozen=True)
class Concept:
    surface: str
    normalized: str
    kind: str
    implied: tuple[tuple[str, str], ...]
    source: str = "curated"  # or "index": from a code year's vocabulary (vocabulary.py)


class LexiconError(ValueError):
    pass


def load_concepts(path: Path) -> list[Concept]:
    concepts: list[Concept] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t")
        for line, row in enumerate(reader, start=2):
            surface = (row.get("surface") or "").strip().lower()
            kind = (row.get("category") or "").strip()
            if not surface or kind not in KINDS or not row.get("normalized"):
                raise LexiconError(f"{path.name}:{line}: needs surface, normalized and a "
                                   f"category in {KINDS}")
            if surface in seen:
                continue
            seen.add(surface)
            implied = tuple(
                (k.strip(), v.strip())
                for k, _, v in (p.partition("=") for p in (row.get("implied") or "").split(";"))
                if k.strip() and v.strip())
            concepts.append(Concept(surface, row["normalized"].strip(), kind, implied))
    return concepts


def target_rules(concepts: list[Concept], ambiguous: dict[str, list]) -> list[TargetRule]:
    # A curated ambiguous abbreviation overrides a lexicon entry of the same surface.
    rules = [TargetRule(c.surface, c.kind.upper(), metadata={"concept": c})
             for c in concepts if c.surface not in ambiguous]
    # Notes write plurals ("adenopathies", "renal cysts"); each surface also matches its
    # plural unless the lexicon lists that form itself.
    surfaces = {c.surface for c in concepts}
    for c in concepts:
        plural = pluralize(c.surface)
        if plural and plural not in surfaces and c.surface not in ambiguous:
            surfaces.add(plural)
            rules.append(TargetRule(plural, c.kind.upper(), metadata={"concept": c}))
    for abbreviation, senses in ambiguous.items():
        if not any(s.concept for s in senses):
            continue
        # Match the abbreviation as written in upper case only ("PE", not "pe" in "pe:").
        written = senses[0].abbreviation
        pattern = [{"TEXT": written}] if written.isupper() else [{"LOWER": written.lower()}]
        rules.append(TargetRule(written, ABBREVIATION_LABEL, pattern=pattern,
                                metadata={"abbreviation": abbreviation}))
    return rules


UNCOUNTABLE = ("pain", "edema", "fever", "anemia", "hypertension", "disease", "failure",
               "insufficiency", "dyspnea", "syndrome", "obesity", "sepsis")


def pluralize(surface: str) -> str | None:
    """The English plural of a surface's last word, or None where it has none worth
    matching (short words, abbreviations, mass nouns)."""
    head, _, last = surface.rpartition(" ")
    if len(last) < 4 or not last.isalpha() or last.endswith(UNCOUNTABLE):
        return None
    if last.endswith("is"):  # metastasis → metastases
        plural = last[:-2] + "es"
    elif last.endswith("us") and not last.endswith("ous"):  # calculus → calculi
        plural = last[:-2] + "i"
    elif last.endswith("y") and last[-2] not in "aeiou":
        plural = last[:-1] + "ies"
    elif last.endswith(("s", "x", "ch", "sh")):
        return None
    else:
        plural = last + "s"
    return f"{head} {plural}" if head else plural
