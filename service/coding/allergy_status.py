"""Allergy status: "allergic to pyrazolones", "allergy to penicillin" written in a history is
the patient's allergy status (Z88 drugs, Z91.0- other substances; Guidelines I.C.21.c.3),
not an allergic reaction of this encounter (T78.40).

- The agent is read after "to" in the allergy's sentence and looked up in
  service/rules/allergy_status.json, which names the Alphabetic Index path of each group
  ("History > personal > allergy > analgesic agent NEC" → Z88.6).
- A sentence that describes a reaction ("developed urticaria after taking amoxicillin") is
  coded as the reaction, by the usual search; so is an allergy to an agent no group names.
- A status is never first-listed: it is sequenced after the conditions.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from service.codebook import Codebook
from service.coding.choosers import Choice
from service.coding.models import FactOutcome
from service.coding.supplementary import record_index_code
from service.extraction.models import Fact

RULES = Path(__file__).parent.parent / "rules" / "allergy_status.json"
ALLERGY_STATUS = "allergy status"  # how its codes' reasons begin
STATUS_WAITS = f"{ALLERGY_STATUS}: coded from the agent it names (Z88, Z91.0-)"
# From the fact's start, which may hold the "to" itself ("allergic to pyrazolones").
AGENT_AFTER = re.compile(r"[^.;]{0,40}?\bto\s+((?:[\w-]+[\s,]*){1,6})", re.I)
AGENT_BEFORE = re.compile(r"([\w-]+)\s+$")


@dataclass(frozen=True)
class Rules:
    guideline: str
    acute: re.Pattern[str]
    agents: tuple[tuple[str, frozenset[str]], ...]  # (Index path, words), in order


@cache
def _rules() -> Rules:
    data = json.loads(RULES.read_text(encoding="utf-8"))
    return Rules(data["guideline"], re.compile(data["acute_cues"], re.I),
                 tuple((a["path"], frozenset(w.lower() for w in a["words"]))
                       for a in data["agents"]))


def status_paths(fact: Fact, text: str) -> list[str]:
    """The Index paths of the allergy statuses a fact documents, one per agent group
    ("allergy to procaine and streptomycin": anesthetic, antibiotic); none for another
    fact, a reaction, or agents no rule names."""
    if (fact.normalized or "").lower() != "allergy" or not text \
            or fact.assertion not in ("present", "historical"):
        return []
    after = AGENT_AFTER.match(text, fact.start)
    before = AGENT_BEFORE.search(text, max(0, fact.start - 30), fact.start)  # "iodine allergy"
    named = (after.group(1) if after else "") + " " + (before.group(1) if before else "")
    # The clause that holds the allergy and its agent: a reaction there is this encounter's.
    start = max(text.rfind(c, 0, fact.start) for c in ".;,\n") + 1
    ends = [i for i in (text.find(c, after.start(1) if after else fact.end) for c in ".;,\n")
            if i >= 0]
    if _rules().acute.search(text, start, min(ends) if ends else len(text)):
        return []
    words = re.findall(r"[a-z][\w-]*", named.lower())
    phrases = set(words) | {f"{a} {b}" for a, b in itertools.pairwise(words)}
    return [path for path, names in _rules().agents if phrases & names]


def add_allergy_statuses(chosen: dict[str, tuple[Choice, list[Fact]]],
                         outcomes: list[FactOutcome], facts: list[Fact],
                         codebook: Codebook, text: str) -> None:
    """Code each allergy status fact from its agent's Index path."""
    by_fact = {o.fact: o for o in outcomes}
    for fact in facts:
        outcome = by_fact.get(fact.id)
        for path in status_paths(fact, text) if outcome is not None else []:
            code = codebook.index_code(path)
            if code is None:
                outcome.reason += f" (the Index has no '{path}' this year)"
                continue
            record_index_code(chosen, outcome, fact, codebook, path, code,
                              f"{ALLERGY_STATUS}; Index '{path}' (Guidelines "
                              f"{_rules().guideline})")
