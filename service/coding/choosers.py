"""Choosers: given one fact and its retrieved candidates, pick the code.

`Chooser` is the interface; `RulesChooser` (default, deterministic, offline) picks the most
specific valid code the documented modifiers support, prefers a combination code when the
fact is linked to another ("DM2 w/ neuropathy" → E11.40), descends from a category to a
billable code by matching the modifiers against the children's titles, and falls back to the
unspecified child only when the note lacks the axis, naming it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from service.codebook import Codebook, CodeRow
from service.coding.models import Alternative, Candidate, Flag
from service.coding.queries import draft, query_axes
from service.coding.retrieval import (
    NEOPLASM_TERM,
    FactRetrieval,
    documented_site,
    sentence_site,
)
from service.extraction.models import Evidence, Fact

MIN_SCORE = 0.35
# The modifiers query and a linked-fact query decide only with a confident answer.
SPECIFIC_MIN = 0.7
COMBINATION_MIN = 0.75
# A residual "Other ..." code only when the note says "other".
RESIDUAL_PENALTY = 0.1
Z_TERMS = re.compile(r"histor|status|screening|encounter|presence|absence|carrier|exposure|"
                     r"pregnan|dependence on|long[- ]term|allerg|transplant|follow", re.I)
GENERIC_TITLE_WORDS = {"other", "unspecified", "specified", "with", "without", "initial",
                       "subsequent", "encounter", "sequela", "side", "site", "elsewhere",
                       "classified", "part", "region", "disorder", "condition", "type",
                       # the side is _fix_laterality's to decide, not a reason to refuse
                       "right", "left", "bilateral"}
SIDES = {"left": "left", "right": "right", "bilateral": "bilateral"}
TRAILING_NOS = re.compile(r",?\s+(?:NOS|NEC)$|\s*\([^)]*\)", re.I)
UNCOMPLICATED = re.compile(r"\buncomplicated\b|\bwithout complications?\b", re.I)
WITH_UNSPECIFIED = re.compile(r"\bwith unspecified\b", re.I)
UNSPECIFIED = re.compile(r"\bunspecified\b|\bNOS\b", re.I)
# What distinguishes sibling codes, read from their titles: the axis a note must document.
AXIS_WORDS = {
    "laterality": re.compile(r"\b(?:left|right|bilateral)\b", re.I),
    "encounter": re.compile(r"\b(?:initial|subsequent) encounter\b|\bsequela\b", re.I),
    "acuity": re.compile(r"\b(?:acute|chronic|subacute)\b", re.I),
    "ckd_stage": re.compile(r"\bstage\b", re.I),
    "heart_failure_type": re.compile(r"\b(?:systolic|diastolic)\b", re.I),
    "diabetes_type": re.compile(r"\btype [12]\b", re.I),
    "trimester": re.compile(r"\btrimester\b", re.I),
}


@dataclass
class Choice:
    code: str
    title: str
    confidence: float
    reason: str
    combined_with: list[str] = field(default_factory=list)  # partner fact ids
    matched: str = ""
    source: str = ""  # how the chosen candidate was found: index, title, vector:..., ...
    alternatives: list[Alternative] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)  # beyond its facts (a measurement)
    # Set by the llm chooser when a model's answer decided: "agrees" (the rules chooser's
    # code) or "overrides" (another candidate). A calibration signal: they differ in accuracy.
    model_pick: str = ""


@dataclass
class Declined:
    """A chooser's decision to code none of the candidates, with its reason."""
    reason: str


class Chooser(Protocol):
    name: str
    model: str | None

    def choose(self, retrieval: FactRetrieval, codebook: Codebook,
               date_of_service: str | None) -> Choice | Declined | None: ...


class RulesChooser:
    name = "rules"
    model = None

    def choose(self, retrieval: FactRetrieval, codebook: Codebook,
               date_of_service: str | None) -> Choice | None:
        fact = retrieval.fact
        labels = [label for label, _ in retrieval.queries]
        if fact.assertion == "family":
            return _family_malignancy(retrieval, codebook) or _family_history(retrieval,
                                                                              codebook)
        if (fact.normalized or "") in codebook.sited_terms():
            primary = _sited(retrieval, labels)
        elif labels[0] == "history" and not NEOPLASM_TERM.search(fact.normalized or ""):
            # "History > personal > malignant neoplasm > accessory sinuses" is no history of
            # sinusitis.
            primary = _top([c for c in retrieval.candidates
                            if not NEOPLASM_TERM.search(c.matched)], labels[0], fact)
        else:
            primary = _top(retrieval.candidates, labels[0], fact)
        if primary is None:
            return None
        best = primary
        # The modifiers (or site) query decides when its answer carries a documented
        # modifier or the documented site.
        for label in ("term+modifiers", "term+site", "term+localized"):
            specific = _top(retrieval.candidates, label, fact, SPECIFIC_MIN)
            if specific is not None and specific.code != best.code \
                    and (_carries_modifier(specific, fact, best)
                         or _carries_site(specific, best, _site_stems(retrieval))) \
                    and not _adds_undocumented(specific, retrieval) \
                    and (specific.code[:3] == best.code[:3]
                         or specific.scores[label] >= best.scores.get(label, 0.0)):
                best = specific
                break
        # The Neoplasm table row of the documented site is where the Index sends a coder.
        table = next((c for c in retrieval.candidates if c.source == "neoplasm_table"), None)
        if table is not None and best.code[0] in "CD":
            best = table
        # A combination code for a linked fact ("DM2 w/ neuropathy" → E11.40).
        combined: list[str] = []
        for label, partner in retrieval.partners.items():
            other = retrieval.partner_facts[label]
            combo = _top(retrieval.candidates, label, fact, COMBINATION_MIN, also=other)
            # The title must name both conditions: "Q fever" is no "pneumonia with fever".
            if combo is not None and combo.code != best.code \
                    and _names(combo.title, other.normalized or "") \
                    and _names(combo.title, fact.normalized or ""):
                best, combined = combo, [partner]
                break
        if not best.billable:
            # A billable code under it, nearly as good, is what the Index itself gives.
            # ... unless it names what the note does not ("with unspecified complications").
            under = [c for c in retrieval.candidates if c.billable
                     and c.code.startswith(best.code) and c.score >= best.score - 0.1
                     and not _adds_undocumented(c, retrieval)]
            if under:
                best = max(under, key=lambda c: c.score - _residual(c, fact))
        code, missing, path = descend(codebook, best.code, fact)
        code, side_flag = _fix_laterality(codebook, code, fact)
        code = _default_dominance(codebook, code, retrieval.note or retrieval.excerpt)
        if side_flag:
            missing.append("laterality")
        row = codebook.get(code)
        assert row is not None
        if not missing and UNSPECIFIED.search(row.title) and row.parent:
            axis = _distinguishing_axis(codebook.children(row.parent))
            if axis != "specificity" and not any(m.axis == axis for m in fact.modifiers):
                missing.append(axis)
        confidence = min(1.0, best.score) * (0.85 if missing else 1.0)
        flags = _flags(fact, sorted(set(missing)), date_of_service)
        reason = f"{best.source} match '{best.matched}' (score {best.score:.2f})"
        if path:
            reason += f"; more specific code by {', '.join(path)}"
        alternatives = [
            Alternative(code=c.code, title=c.title, why_not=_why_not(c, best, row))
            for c in retrieval.candidates if c.code not in (code, best.code)][:3]
        return Choice(code=code, title=row.title, confidence=round(confidence, 3),
                      reason=reason, combined_with=combined, matched=best.matched,
                      source=best.source,
                      alternatives=alternatives, flags=flags)


def _top(candidates: list[Candidate], label: str, fact: Fact,
         minimum: float = MIN_SCORE, also: Fact | None = None) -> Candidate | None:
    """The best candidate of one query that contradicts no documented modifier (of the
    fact, or of the linked fact `also`); residual 'Other ...' codes rank lower."""
    def score(c: Candidate) -> float:
        return c.scores.get(label, 0.0) - _residual(c, fact)
    found = [c for c in candidates if score(c) >= minimum and not c.not_documented
             and not _contradicts(c, fact)
             and not (also is not None and _contradicts(c, also)) and _z_allowed(c, fact)]
    return max(found, key=score) if found else None


def _sited(retrieval: FactRetrieval, labels: list[str]) -> Candidate | None:
    """For a main term without a code of its own ("Cyst"), only an Index path through
    documented words ("Cyst > kidney"), the Neoplasm table row of the documented site, a
    Tabular entry named by the term itself ("Uveitis NOS"), or else the main term its
    "see also" names will do."""
    term = retrieval.fact.normalized or ""
    # The fact's own words and site phrase, not the sentences around it: "lesion" two
    # lines from "vascular" is no "Lesion > vascular".
    said = {w[:5] for _, q in retrieval.queries for w in re.findall(r"[a-z]+", q.lower())}
    said |= {w[:5] for w in re.findall(r"[a-z]+", retrieval.fact.text.lower())}
    site = sentence_site(retrieval.fact, retrieval.note)  # "a mass ... in the abdomen"
    said |= {w[:5] for w in re.findall(r"[a-z]+", (site or "").lower())}
    paths = [c for c in retrieval.candidates if c.source in ("neoplasm_table", "see_by_site")
             or _path_adds_undocumented(c, retrieval, said) is False
             or TRAILING_NOS.sub("", c.matched.lower()) == term]
    found = [c for label in labels if (c := _top(paths, label, retrieval.fact)) is not None]
    if found:
        return max(found, key=lambda c: c.score)
    # No sub-term fits: the main term the Index's "see also" names, itself (Gangrene I96).
    target = dict(retrieval.queries).get("see also")
    main = [c for c in retrieval.candidates if target and c.source == "index"
            and c.matched.split(" → ")[0].split(",")[0].strip().lower() == target]
    return _top(main, "see also", retrieval.fact)


FAMILY_SPECIFIED = "History > family > disease or disorder > specified NEC"


PAREN = re.compile(r"\s*\([^)]*\)")


def _family_malignancy(retrieval: FactRetrieval, codebook: Codebook) -> Choice | None:
    """A family history of a malignancy (Z80) at the site the Neoplasm table gives it:
    "mother with colon cancer" → C18.9 → Z80.0, the entry "Conditions classifiable to
    C15-C26"; the Index's "History > family > malignant neoplasm > prostate" names the
    subcode where the Tabular entry does not (Z80.4 → Z80.42)."""
    table = next((c for c in retrieval.candidates if c.source == "neoplasm_table"
                  and c.code.startswith("C")), None)
    code = codebook.classifiable_history("Z80", table.code) if table else None
    if table is None or code is None:
        return None
    site = PAREN.sub("", table.matched.split(" > ")[1]).split(",")[0].strip().lower() \
        if " > " in table.matched else ""
    path = f"History > family > malignant neoplasm > {site}"
    named = codebook.index_code(path) if site else None
    if named and named.startswith(code):
        code, how = named, f"Index '{path}'"
    else:
        code = descend(codebook, code, retrieval.fact)[0]
        how = f"its Tabular entry: conditions classifiable to {table.code[:3]}"
    row = codebook.get(code)
    if row is None:
        return None
    return Choice(code=code, title=row.title, confidence=round(min(1.0, table.score), 3),
                  reason=f"family history of {table.code} ({table.matched}); {how}",
                  matched=table.matched, source="neoplasm_table")


def _family_history(retrieval: FactRetrieval, codebook: Codebook) -> Choice | None:
    """A family history code that names the relative's condition (Z80 for a malignancy),
    else the Index's "History > family > disease or disorder > specified NEC" (Z84.89):
    "Family history of osteoporosis" is no answer for a relative's adenopathy."""
    fact = retrieval.fact
    term = fact.normalized or ""
    stems = {w[:5] for w in re.findall(r"[a-z]+", term.lower()) if len(w) >= 5} - {"famil",
                                                                                    "histo"}
    def names(c: Candidate) -> bool:
        said = {w[:5] for w in re.findall(r"[a-z]+", f"{c.title} {c.matched}".lower())}
        return bool(stems & said) or (c.code.startswith("Z80") and bool(NEOPLASM_TERM.search(term)))
    found = [c for c in retrieval.candidates if c.code.startswith(("Z80", "Z81", "Z82", "Z83",
                                                                      "Z84")) and names(c)]
    best = _top(found, retrieval.queries[0][0], fact)
    if best is not None:
        code = descend(codebook, best.code, fact)[0]
        row = codebook.get(code)
        return Choice(code=code, title=row.title if row else best.title,
                      confidence=round(min(1.0, best.score), 3),
                      reason=f"{best.source} match '{best.matched}' (score {best.score:.2f})",
                      matched=best.matched, source=best.source)
    code = codebook.index_code(FAMILY_SPECIFIED)
    row = codebook.get(code) if code else None
    if row is None:
        return None
    return Choice(code=row.code, title=row.title, confidence=0.6,
                  reason=f"no family history code names '{term}': Index '{FAMILY_SPECIFIED}'",
                  matched=FAMILY_SPECIFIED, source="index")


def _contradicts(candidate: Candidate, fact: Fact) -> bool:
    """A title naming a value on an axis the note documents differently (stage 5 vs 4)."""
    title = candidate.title.lower()
    for m in fact.modifiers:
        words = AXIS_WORDS.get(m.axis)
        if words is not None and words.search(title) and not _in_title(m.axis, m.value.lower(),
                                                                       title):
            return True
    return False


def _z_allowed(candidate: Candidate, fact: Fact) -> bool:
    """Z codes (encounters, screening, status, history) only for what the note calls so:
    a 'tumor' is not a 'screening for malignant neoplasm'."""
    if not candidate.code.startswith("Z"):
        return True
    return fact.assertion in ("historical", "family") or bool(
        Z_TERMS.search(fact.normalized or ""))


def _residual(candidate: Candidate, fact: Fact) -> float:
    other = candidate.title.lower().startswith("other ")
    return RESIDUAL_PENALTY if other and "other" not in (fact.normalized or "") else 0.0


def _carries_modifier(candidate: Candidate, fact: Fact, against: Candidate) -> bool:
    title, other = candidate.title.lower(), against.title.lower()
    return any(_in_title(m.axis, m.value.lower(), title)
               and not _in_title(m.axis, m.value.lower(), other) for m in fact.modifiers)


INDEX_SOURCES = ("index", "eindex", "neoplasm", "drug", "vector:index_paths")
SITE_FILLER = {"of", "in", "on", "to", "the", "his", "her", "its", "and", "left", "right", "both",
               "bilateral"}


def _site_stems(retrieval: FactRetrieval) -> set[str]:
    """Five-letter stems of the site documented with the fact ("in the right renal fossa",
    "testicular" → testis), for telling a site-specific answer from the primary one."""
    after, noun = documented_site(retrieval.fact, retrieval.note)
    term = retrieval.fact.normalized or ""
    site_query = " ".join(q.removeprefix(term) for label, q in retrieval.queries
                          if label in ("term+site", "term+localized"))
    words = re.findall(r"[a-z]+", f"{after or ''} {noun or ''} {site_query}".lower())
    return {w[:5] for w in words if w not in SITE_FILLER and len(w) >= 3}  # hip, arm, leg


def _carries_site(candidate: Candidate, against: Candidate, site: set[str]) -> bool:
    """Does the candidate's path or title name the documented site the other lacks?"""
    if not site:
        return False
    def named(c: Candidate) -> set[str]:
        return {w[:5] for w in re.findall(r"[a-z]+", f"{c.title} {c.matched}".lower())}
    return bool((named(candidate) - named(against)) & site)


def _adds_undocumented(candidate: Candidate, retrieval: FactRetrieval) -> bool:
    """Does the title name something (a site, a cause) that neither the queries nor the
    note around the fact say? "Pain in right hand" for "right ... pain" does."""
    stems = _documented_stems(retrieval)
    path_adds = _path_adds_undocumented(candidate, retrieval, stems)
    if path_adds is not None:
        return path_adds
    # An inclusion term is the Tabular's own wording for the code: "Fracture of hip NOS"
    # names no more than "fracture of the hip", whatever S72.00's title adds.
    said = candidate.matched if candidate.source.endswith("inclusion") else candidate.title
    title = re.sub(r"\([^)]*\)|\[[^]]*\]", " ", said.lower())  # nonessential
    title = re.sub(r"\bwithout\b[^,;]*", " ", title)  # what the code does not claim
    words = [w for w in re.findall(r"[a-z]+", title)
             if len(w) >= 4 and w not in GENERIC_TITLE_WORDS]
    return any(w[:5] not in stems for w in words)


# The Tabular says "lower end of radius" where a note says "distal radius".
SAME_POSITION = {"dista": "lower", "proxi": "upper"}


def _documented_stems(retrieval: FactRetrieval) -> set[str]:
    said = " ".join(q for _, q in retrieval.queries) + " " + retrieval.excerpt
    stems = {w[:5] for w in re.findall(r"[a-z]+", said.lower())}
    return stems | {SAME_POSITION[s] for s in stems if s in SAME_POSITION}


def _path_adds_undocumented(candidate: Candidate, retrieval: FactRetrieval,
                            stems: set[str] | None = None) -> bool | None:
    """An Index path is what a coder follows: "Pain > kidney" leads to N23 (renal colic)
    though the title says colic; a path naming only documented words adds nothing.
    None when the candidate is no Index path."""
    path = candidate.matched.split(" → ")[0]
    if not (candidate.source.endswith(INDEX_SOURCES) and " > " in path):
        return None
    stems = _documented_stems(retrieval) if stems is None else stems
    words = [w for w in re.findall(r"[a-z]+", re.sub(r"\([^)]*\)", " ", path.lower()))
             if len(w) >= 3 and w not in GENERIC_TITLE_WORDS]
    return any(w[:5] not in stems for w in words)


def _names(title: str, term: str) -> bool:
    """Does a combination title name the linked condition? ('diabetic neuropathy')"""
    words = [w for w in re.findall(r"[a-z]+", term.lower()) if len(w) >= 5]
    return any(w[:6] in title.lower() for w in words)


def descend(codebook: Codebook, code: str, fact: Fact) -> tuple[str, list[str], list[str]]:
    """From a category or subcategory down to a billable code, by the documented modifiers.
    Returns the code, the axes the note lacked, and the modifiers used."""
    row = codebook.get(code)
    missing: list[str] = []
    used: list[str] = []
    while row is not None and not row.billable:
        children = codebook.children(row.code)
        if not children:
            break
        pick, by = _match_child(children, fact)
        if pick is None:
            axis = _distinguishing_axis(children)
            pick = _default_child(children)
            missing.append(axis)
        elif by:
            used.append(by)
        row = pick
    return (row.code if row else code), missing, used


def _match_child(children: list[CodeRow], fact: Fact) -> tuple[CodeRow | None, str]:
    """The child whose title carries the most documented modifiers that tell the children
    apart (a value every child shares, like 'type 2' under E11, decides nothing)."""
    values = [(m.axis, m.value.lower()) for m in fact.modifiers]
    hits = {c.code: [f"{a}={v}" for a, v in values if _in_title(a, v, c.title.lower())]
            for c in children}
    shared = set.intersection(*(set(h) for h in hits.values())) if hits else set()
    best, best_hits = None, 0
    for child in children:
        telling = [h for h in hits[child.code] if h not in shared]
        if len(telling) > best_hits:
            best, best_hits = child, len(telling)
    return best, ", ".join(h for h in hits[best.code] if h not in shared) if best else ""


def _default_child(children: list[CodeRow]) -> CodeRow:
    """What the Index gives when nothing more is documented: 'uncomplicated', else
    'unspecified' (not "with unspecified ... disorders", which claims one), else 'without
    complications', else the .9 / .0 residual, else the first."""
    for test in (lambda c: UNCOMPLICATED.search(c.title),
                 lambda c: UNSPECIFIED.search(c.title) and not WITH_UNSPECIFIED.search(c.title),
                 lambda c: "without" in c.title.lower(),
                 lambda c: c.code.endswith("9"), lambda c: c.code.endswith("0")):
        pick = next((c for c in children if test(c)), None)
        if pick is not None:
            return pick
    return children[0]


def _in_title(axis: str, value: str, title: str) -> bool:
    if axis == "ckd_stage":
        return f"stage {value}" in title or (value == "end stage" and "end stage" in title)
    if axis == "encounter":
        return f"{value} encounter" in title or (value == "sequela" and "sequela" in title)
    if axis == "trimester":
        return f"{value} trimester" in title
    return re.search(rf"\b{re.escape(value)}\b", title) is not None


def _distinguishing_axis(children: list[CodeRow]) -> str:
    for axis, words in AXIS_WORDS.items():
        if sum(bool(words.search(c.title)) for c in children) >= 2:
            return axis
    return "specificity"


def _fix_laterality(codebook: Codebook, code: str, fact: Fact) -> tuple[str, bool]:
    """Keep the documented side; with none documented, never keep a guessed side.
    Returns the code and whether the side was missing."""
    row = codebook.get(code)
    if row is None or row.parent is None:
        return code, False
    if row.generated and row.kind == "code" and len(code.replace(".", "")) == 7:
        # The side lives one level up (S52.351 → S52.351A): fix it there, keep the 7th.
        base, missing = _fix_laterality(codebook, row.parent, fact)
        if base == row.parent:
            return code, missing
        seventh = next((c.code for c in codebook.children(base) if c.code[-1] == code[-1]),
                       code)
        return seventh, missing
    documented = next((m.value for m in fact.modifiers if m.axis == "laterality"), None)
    coded = next((s for s in SIDES if re.search(rf"\b{s}\b", row.title, re.I)), None)
    if coded == documented or (coded is None and not (
            documented and UNSPECIFIED.search(row.title))):
        return code, False
    for sibling in codebook.children(row.parent):
        title = sibling.title.lower()
        if documented and re.search(rf"\b{documented}\b", title):
            return sibling.code, False
        # "Heteronymous bilateral field defects" names no side: "Unspecified visual field
        # defects" is another condition, not its unspecified side.
        if not documented and "unspecified" in title \
                and not re.search(r"\b(?:left|right|bilateral)\b", title) \
                and (coded != "bilateral" or _side_stem(title) == _side_stem(row.title)):
            return sibling.code, True
    if documented and coded is None and (by_side := codebook.side_subterm(code, documented)):
        return by_side, False
    return code, documented is None


SIDE_OR_UNSPECIFIED = re.compile(r"\b(?:right|left|bilateral|unspecified)\b"
                                 r"(?:\s+(?:eye|ear|side)s?\b)?\s*", re.I)


def _side_stem(title: str) -> str:
    """A title without its side: "Pain in right hip" and "Pain in unspecified hip" are
    one condition at two sides; "Hypermetropia, right eye" and "Hypermetropia, bilateral"
    too."""
    return SIDE_OR_UNSPECIFIED.sub("", title.lower()).strip(" ,")


DOMINANCE = re.compile(r"\b(?:non-?)?dominant\b", re.I)


def _default_dominance(codebook: Codebook, code: str, note: str) -> str:
    """Hemiplegia, monoplegia: the dominant side is the handedness the note states; else
    the right side is the dominant one, the left the nondominant, and an ambidextrous
    patient's side is dominant (Guidelines I.C.6.a)."""
    row = codebook.get(code)
    if row is None or row.parent is None or not DOMINANCE.search(row.title):
        return code
    side = "right" if re.search(r"\bright\b", row.title, re.I) else \
        "left" if re.search(r"\bleft\b", row.title, re.I) else None
    if side is None:
        return code
    dominant = ("left" if re.search(r"\bleft[- ]handed\b", note, re.I) else
                side if re.search(r"\bambidextrous\b", note, re.I) else "right")
    wanted = rf"\b{side} dominant\b" if side == dominant else rf"\b{side} non-?dominant\b"
    return next((c.code for c in codebook.children(row.parent)
                 if re.search(wanted, c.title, re.I)), code)


SIDE_WORDS = re.compile(r"\b(?:right|left|unspecified)\b\s*", re.I)


def bilateral_pair(codebook: Codebook, code: str, fact: Fact) -> tuple[str, str] | None:
    """A bilateral condition whose code has no bilateral option: the right and the left
    codes, each reported (Guidelines I.B.13). None when the side is not bilateral or a
    bilateral code exists (_fix_laterality has picked it)."""
    if not any(m.axis == "laterality" and m.value == "bilateral" for m in fact.modifiers):
        return None
    row = codebook.get(code)
    if row is None or row.parent is None:
        return None
    if row.generated and row.kind == "code" and len(code.replace(".", "")) == 7:
        pair = bilateral_pair(codebook, row.parent, fact)  # the side is one level up
        if pair is None:
            return None
        with_seventh = [next((c.code for c in codebook.children(base) if c.code[-1] == code[-1]),
                             None) for base in pair]
        return (with_seventh[0], with_seventh[1]) if all(with_seventh) else None
    siblings = codebook.children(row.parent)
    if any(re.search(r"\bbilateral\b", c.title, re.I) for c in siblings):
        return None
    same = SIDE_WORDS.sub("", row.title.lower())
    sides = {side: c.code for c in siblings for side in ("right", "left")
             if re.search(rf"\b{side}\b", c.title, re.I)
             and SIDE_WORDS.sub("", c.title.lower()) == same}
    return (sides["right"], sides["left"]) if len(sides) == 2 else None


def _flags(fact: Fact, missing: list[str], date: str | None) -> list[Flag]:
    flags = []
    for axis in missing:
        flags.append(Flag(kind="unspecified_documentation", missing_axis=axis,
                          detail=f"the note does not document the {axis.replace('_', ' ')} "
                          f"of '{fact.text}'; the unspecified code was used"))
        if axis in query_axes():
            flags.append(Flag(kind="needs_query", missing_axis=axis,
                              detail=f"ask the provider for the {axis.replace('_', ' ')}",
                              query=draft(axis, fact.text, fact.normalized or "", date)))
    return flags


def _why_not(candidate: Candidate, best: Candidate, chosen: CodeRow) -> str:
    if not candidate.billable:
        return "category or subcategory: not billable"
    if candidate.score < best.score:
        return (f"lower match ({candidate.score:.2f} vs {best.score:.2f}) on "
                f"'{candidate.matched}'")
    return f"ranked below {chosen.code} for the documented modifiers"
