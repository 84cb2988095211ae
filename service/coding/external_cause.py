"""External causes: how an injury happened (a fall, a traffic accident, an assault), coded
from the External Cause Index beside the injury it explains (Guidelines I.C.20).

- Coded only where the note codes an injury (S00-T88) and the cause is documented as
  present: a fall that injured nothing is no external cause. A past one is a history code:
  "history of falls" → Z91.81 (History > personal > fall, falling).
- The Index sub-term comes from the cause's sentence: "fell down the stairs" → Fall, falling
  > from, off, out of > stairs, steps (W10.9); "slipped and fell" → Fall, falling > same
  level > from > slipping, stumbling, tripping (W01.0); else the mechanism's own path (W19).
- The 7th character is the injury's (A initial, D subsequent, S sequela).
- Never first-listed: the coder sequences it after the conditions.

Which Index path codes each mechanism is data (service/rules/external_causes.json).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from service.codebook import Codebook
from service.coding.choosers import Choice
from service.coding.models import FactOutcome
from service.coding.retrieval import sentence_of
from service.coding.supplementary import record_index_code
from service.extraction.models import Fact

RULES = Path(__file__).parent.parent / "rules" / "external_causes.json"
CAUSE_NOT_CODED = ("external cause: coded (V00-Y99) only beside an injury of this encounter "
                   "that it explains")
# The object fallen from: "fell from a ladder", "fall down the stairs", "fell off his bike".
FROM_OBJECT = re.compile(r"\b(?:from|off|out of|down)\s+(?:(?:the|a|an|his|her|their|its)\s+)?"
                         r"([a-z]+)", re.I)


@dataclass(frozen=True)
class Cue:
    pattern: re.Pattern[str]
    path: str


@dataclass(frozen=True)
class Mechanism:
    path: str
    from_path: str | None
    cues: tuple[Cue, ...]
    not_when: re.Pattern[str] | None  # another sense of the word ("hemoglobin fell")
    history: str | None  # the Alphabetic Index path of a past mention ("history of falls")


@cache
def _rules() -> tuple[str, tuple[str, ...], dict[str, Mechanism]]:
    data = json.loads(RULES.read_text(encoding="utf-8"))
    causes = {name: Mechanism(c["path"], c.get("from"),
                              tuple(Cue(re.compile(q["pattern"], re.I), q["path"])
                                    for q in c.get("cues", ())),
                              re.compile(c["not_when"], re.I) if c.get("not_when") else None,
                              c.get("history"))
              for name, c in data["causes"].items()}
    return data["guideline"], tuple(data["injury_chapter"]), causes


def is_cause(fact: Fact) -> bool:
    return fact.kind == "external_cause"


def add_external_causes(chosen: dict[str, tuple[Choice, list[Fact]]],
                        outcomes: list[FactOutcome], facts: list[Fact],
                        codebook: Codebook, text: str) -> None:
    """Code each present cause fact beside the note's injury, and a past one by its history
    code (module doc); the outcome of every cause fact says what was coded or why not."""
    guideline, injury_chapter, causes = _rules()
    injuries = [c for c, (_, fs) in chosen.items() if c.startswith(injury_chapter)
                and any(f.assertion == "present" for f in fs)]
    by_fact = {o.fact: o for o in outcomes}
    for fact in facts:
        outcome = by_fact.get(fact.id)
        mechanism = causes.get((fact.normalized or "").lower())
        if outcome is None or mechanism is None:
            continue
        around = text[max(0, fact.start - 40):fact.end + 40]
        if mechanism.not_when is not None and mechanism.not_when.search(around):
            outcome.reason = f"not an external cause here: '{mechanism.not_when.search(around)[0]}'"
            continue
        if fact.assertion == "historical" and mechanism.history:
            _code(chosen, outcome, fact, codebook, mechanism.history,
                  codebook.index_code(mechanism.history), "a past mention (Guidelines "
                  "I.C.21.c.4: history codes)")
            continue
        if fact.assertion != "present":
            continue
        if not injuries:
            outcome.reason = f"{CAUSE_NOT_CODED}; the note codes no injury"
            continue
        path, base = _navigate(codebook, mechanism, sentence_of(text, fact))
        if base is None:
            outcome.reason += f" (the External Cause Index has no '{path}' this year)"
            continue
        code = _with_seventh(codebook, base, _seventh_of(codebook, injuries[0]))
        _code(chosen, outcome, fact, codebook, path, code,
              f"how {injuries[0]} happened (Guidelines {guideline}); 7th character as the "
              "injury's")


def _code(chosen: dict[str, tuple[Choice, list[Fact]]], outcome: FactOutcome, fact: Fact,
          codebook: Codebook, path: str, code: str | None, why: str) -> None:
    if code is None:
        outcome.reason += f" (the Index has no '{path}' this year)"
        return
    record_index_code(chosen, outcome, fact, codebook, path, code, f"{why}: Index '{path}'",
                      confidence=0.9)


def _navigate(codebook: Codebook, mechanism: Mechanism, sentence: str
              ) -> tuple[str, str | None]:
    """(Index path, its code) for the mechanism as the sentence tells it."""
    if mechanism.from_path:
        for word in FROM_OBJECT.findall(sentence):
            for title, code in codebook.index_children(mechanism.from_path, "eindex"):
                if _names(title, word.lower()):
                    return f"{mechanism.from_path} > {title}", code
    for cue in mechanism.cues:
        if cue.pattern.search(sentence):
            code = codebook.index_code(cue.path, "eindex")
            if code is not None:
                return cue.path, code
    return mechanism.path, codebook.index_code(mechanism.path, "eindex")


def _names(title: str, word: str) -> bool:
    """Does an Index sub-term ("stairs, steps", "wheelchair, non-moving", "furniture NEC")
    name the word ("stairs", "step", "wheelchair")?"""
    for part in title.lower().split(","):
        head = part.strip().removesuffix(" nec").split(" (")[0]
        if word in (head, head.rstrip("s"), f"{head}s"):
            return True
    return False


def _seventh_of(codebook: Codebook, injury: str) -> str:
    row = codebook.get(injury)
    if row is not None and len(injury.replace(".", "")) == 7 and row.seventh_from:
        return injury[-1]
    return "A"  # an injury code without one: this encounter's, initial


def _with_seventh(codebook: Codebook, code: str, seventh: str) -> str:
    """Down to the billable code, taking the child that ends in the 7th character wanted."""
    row = codebook.get(code)
    while row is not None and not row.billable:
        children = codebook.children(row.code)
        if not children:
            break
        row = next((c for c in children if c.code.endswith(seventh)
                    and len(c.code.replace(".", "")) == 7), children[0])
    return row.code if row else code
