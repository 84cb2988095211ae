"""Codes that facts other than conditions add: an infectious agent (B95-B97), the status
a past procedure leaves (Z90 acquired absence, Z94 transplant, Z99.2 dialysis) and
long-term drug therapy (Z79).

- An agent is never a code of its own from the word alone: a culture can grow a colonizer.
  It is coded when a coded infection's Tabular entry asks for it ("Use additional code
  (B95-B97) to identify infectious agent", Guidelines I.C.1.d): "urinary tract infection;
  urine culture grew E. coli" → N39.0 + B96.20. An agent inside a combination code
  ("pneumonia due to Klebsiella" → J15.0) is not coded again.
- A procedure documented as past leaves a status (Guidelines I.C.21.c.3): "history of
  hysterectomy" → Z90.710. A current mention is coded only where a coded condition asks for
  the status (N18.6: "use additional code to identify dialysis status (Z99.2)"), since a
  procedure of this stay leaves no status yet.
- A medication is long-term drug therapy (Guidelines I.C.21.c.3) where a coded condition
  asks for it (E11: "use additional code to identify control using ... oral hypoglycemic
  drugs (Z79.84)") or, for most classes, where the note documents it as continuing therapy
  ("in usual treatment with acenocoumarol" → Z79.01); never for a brief course ("prednisone
  for 5 days", "insulin was started").

Which path of the year's Alphabetic Index codes each agent or procedure is data
(service/rules/organisms.json, procedure_status.json, medication_use.json); a path the year
lacks codes nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

from service.codebook import Codebook
from service.coding.choosers import Choice, descend
from service.coding.models import Candidate, FactOutcome
from service.coding.retrieval import sentence_of
from service.extraction.models import Evidence, Extraction, Fact
from service.validation import covers, notes_up_tree

RULES = Path(__file__).parent.parent / "rules"
AGENT_NOT_ASKED = ("infectious agent: coded (B95-B97) only as the cause of a coded infection "
                   "whose code asks for it ('use additional code'); none does in this note")
STATUS_NOT_CODED = ("procedure: CPT/PCS coding is not part of this step; a status code only "
                    "for a past procedure or where a coded condition asks for it")
DRUG_NOT_CODED = ("medication: long-term drug therapy (Z79) only where a coded condition asks "
                  "for it or the note documents continuing therapy, not a brief course")
ON_DRUG = re.compile(r"\bon\s+(?:\w+\s+)?$", re.I)  # "type 2 diabetes on insulin"
PAST_PARTICIPLE = re.compile(r"(?:ectomi[sz]ed|transplanted)$", re.I)  # "hysterectomized"
# A procedure dated in the past in its own sentence: "a kidney transplant in 2010".
PAST_TIME = re.compile(r"\b(?:19|20)\d\d\b|\bago\b|\bprevious(?:ly)?\b|\bprior\b|"
                       r"\bin (?:childhood|infancy|adolescence)\b|\byears? (?:before|earlier)\b",
                       re.I)


@dataclass(frozen=True)
class Rule:
    path: str
    when: str  # "history" (a past procedure), "ongoing" (continuing therapy) or "asked"
    # (only where a coded condition asks for it)
    guideline: str


@cache
def _rules() -> dict[str, Rule]:
    agents = json.loads((RULES / "organisms.json").read_text(encoding="utf-8"))
    statuses = json.loads((RULES / "procedure_status.json").read_text(encoding="utf-8"))
    out = {name: Rule(path, "asked", agents["guideline"])
           for name, path in agents["agents"].items()}
    for s in statuses["statuses"]:
        out[s["procedure"]] = Rule(s["path"], s["when"], statuses["guideline"])
    for name, c in _drugs()["classes"].items():
        out[name] = Rule(c["path"], c["when"], _drugs()["guideline"])
    return out


@cache
def _drugs() -> dict:  # type: ignore[type-arg]
    return json.loads((RULES / "medication_use.json").read_text(encoding="utf-8"))


@cache
def _cues() -> tuple[re.Pattern[str], re.Pattern[str]]:
    return (re.compile(_drugs()["ongoing_cues"], re.I), re.compile(_drugs()["brief_cues"], re.I))


def skip_reason(fact: Fact) -> str | None:
    """Why an agent or procedure fact waits for `add_supplementary` (None: not one)."""
    if fact.kind == "organism":
        return AGENT_NOT_ASKED
    if fact.kind == "procedure":
        return STATUS_NOT_CODED
    if fact.kind == "medication":
        return DRUG_NOT_CODED
    return None


def add_supplementary(chosen: dict[str, tuple[Choice, list[Fact]]],
                      outcomes: list[FactOutcome], facts: list[Fact],
                      codebook: Codebook, text: str = "") -> None:
    """Code the agents, statuses and drug therapies the note supports (module doc); each fact's
    outcome says which code asked, or why nothing was coded."""
    in_combination = {p for choice, _ in chosen.values() for p in choice.combined_with}
    by_fact = {o.fact: o for o in outcomes}
    for fact in facts:
        outcome = by_fact.get(fact.id)
        rule = _rules().get((fact.normalized or "").lower())
        if outcome is None or rule is None or fact.assertion not in ("present", "historical"):
            continue
        if fact.id in in_combination:
            combo = next(c for c, (choice, _) in chosen.items() if fact.id in choice.combined_with)
            outcome.action = "combined"
            outcome.reason = f"{combo}: the combination code names it"
            continue
        code = codebook.index_code(rule.path)
        if code is None:
            outcome.reason += f" (the Index has no '{rule.path}' this year)"
            continue
        code = descend(codebook, code, fact)[0]  # Z90.1- by the documented side
        # Considered even where not coded: the coder sees the code and why it was left out.
        outcome.queries, outcome.candidates = [rule.path], [index_candidate(codebook, code,
                                                                            rule.path)]
        sentence = sentence_of(text, fact)
        ongoing, brief = _cues()
        if (fact.kind == "medication" or rule.when == "ongoing") and brief.search(sentence):
            why_not = DRUG_NOT_CODED if fact.kind == "medication" else STATUS_NOT_CODED
            outcome.reason = f"{why_not} (a brief course: '{brief.search(sentence)[0]}')"
            continue
        past = fact.assertion == "historical" or bool(PAST_PARTICIPLE.search(fact.text)) \
            or bool(PAST_TIME.search(sentence))
        continuing = bool(ongoing.search(sentence) or ON_DRUG.search(text[:fact.start]))
        asking = next((c for c, (_, fs) in chosen.items()
                       if not c.startswith(("B95", "B96", "B97", "Z"))
                       and any(f.assertion in ("present", "possible") for f in fs)
                       and _asks_for(codebook, c, code)), None)
        if asking is not None:
            why = f"{asking}'s Tabular entry asks for it ('use additional code')"
        elif rule.when == "history" and past:
            why = f"status after a past {fact.normalized}"
        elif rule.when == "ongoing" and continuing:
            why = f"documented as continuing {fact.normalized}" + (
                " therapy" if fact.kind == "medication" else "")
        else:
            continue
        record_index_code(chosen, outcome, fact, codebook, rule.path, code,
                          f"{why}; Index '{rule.path}' (Guidelines {rule.guideline})")


def record_index_code(chosen: dict[str, tuple[Choice, list[Fact]]], outcome: FactOutcome,
                      fact: Fact, codebook: Codebook, path: str, code: str, reason: str,
                      confidence: float = 0.95) -> None:
    """Code `code`, read from the Index at `path`, for the fact; its outcome says why, and
    the path is where the code was looked up: the fact's one query and candidate."""
    row = codebook.get(code)
    title = row.title if row else code
    if code in chosen:
        chosen[code][1].append(fact)
    else:
        chosen[code] = (Choice(code=code, title=title, confidence=confidence, reason=reason,
                               matched=path, source="index"), [fact])
    if outcome.action == "coded" and outcome.queries and path not in outcome.queries:
        # a second code of one fact ("allergy to procaine and streptomycin")
        outcome.reason += f"; {code}: {reason}"
        outcome.queries.append(path)
        outcome.candidates.append(index_candidate(codebook, code, path))
        return
    outcome.action, outcome.reason = "coded", f"{code}: {reason}"
    outcome.queries = [path]
    outcome.candidates = [index_candidate(codebook, code, path)]


def index_candidate(codebook: Codebook, code: str, path: str) -> Candidate:
    """The one candidate an Index path gives a fact."""
    row = codebook.get(code)
    return Candidate(code=code, title=row.title if row else code,
                     billable=bool(row and row.billable), score=1.0, matched=path,
                     source="index", found_by=["index path"], scores={"index path": 1.0})


@lru_cache(maxsize=1 << 14)  # the same codes and agents come back note after note
def _asks_for(codebook: Codebook, code: str, wanted: str) -> bool:
    return any(note.kind == "use_additional_code" and any(covers(r, wanted) for r in note.refs)
               for note in notes_up_tree(codebook, code))


def measured_codes(codes: list[str], extraction: Extraction, codebook: Codebook
                   ) -> dict[str, Choice]:
    """Z68 (body mass index) and Z3A (weeks of gestation) codes the note's measurements give,
    where one of the coded `codes` asks for them; each choice carries its evidence."""
    made: dict[str, Choice] = {}
    found: list[tuple[str | None, Evidence, str]] = []
    bmi = extraction.bmi
    age = extraction.note.age
    if bmi is not None and (age is None or age >= 20):  # the adult rows: 20 years and over
        found.append((_bmi_code(codebook, bmi.value), bmi.evidence,
                      f"body mass index {bmi.value:g}"))
    preg = extraction.pregnancy
    if preg is not None and preg.weeks is not None and preg.trimester_evidence is not None:
        found.append((_weeks_code(codebook, preg.weeks), preg.trimester_evidence,
                      f"{preg.weeks} weeks of gestation"))
    for code, evidence, what in found:
        asking = next((c for c in codes if code and _asks_for(codebook, c, code)), None)
        if code is None or asking is None:
            continue
        row = codebook.get(code)
        made[code] = Choice(code=code, title=row.title if row else code, confidence=0.95,
                            reason=f"{what}: {asking}'s Tabular entry asks for it ('use "
                            "additional code')", matched=what, source="index",
                            evidence=[evidence])
    return made


def _bmi_code(codebook: Codebook, value: float) -> str | None:
    for title, code in codebook.index_children("Body, bodies > mass index > adult"):
        numbers = [float(n) for n in re.findall(r"\d+(?:\.\d+)?", title)]
        if "less" in title and numbers and value <= numbers[0] + 0.05:
            return code
        if ("over" in title or "greater" in title) and numbers and value >= numbers[0]:
            return code
        if len(numbers) == 2 and numbers[0] <= value < numbers[1] + 0.1:
            return code
    return None


def _weeks_code(codebook: Codebook, weeks: int) -> str | None:
    base = "Pregnancy > weeks of gestation"
    if weeks < 8:
        return codebook.index_code(f"{base} > less than 8 weeks")
    return codebook.index_code(f"{base} > {weeks} weeks") or \
        codebook.index_code(f"{base} > greater than 42 weeks")
