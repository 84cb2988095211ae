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
from service.coding.retrieval import sentence_of
from service.coding.supplementary import record_index_code
from service.extraction.models import Fact

RULES = Path(__file__).parent.parent / "rules" / "allergy_status.json"
ALLERGY_STATUS = "allergy status"  # how its codes' reasons begin
STATUS_WAITS = f"{ALLERGY_STATUS}: coded from the agent it names (Z88, Z91.0-)"
# From the fact's start, which may hold the "to" itself ("allergic to pyrazolones").
AGENT_AFTER = re.compile(r"[^.;]{0,40}?\bto\s+((?:[\w-]+[\s,]*){1,6})", re.I)


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


def status_path(fact: Fact, text: str) -> str | None:
    """The Index path of the allergy status a fact documents, or None (not an allergy, a
    reaction, or an agent no rule names)."""
    if (fact.normalized or "").lower() != "allergy" or not text \
            or fact.assertion not in ("present", "historical"):
        return None
    sentence = sentence_of(text, fact)
    after = AGENT_AFTER.match(text, fact.start)
    if after is None or _rules().acute.search(sentence):
        return None
    words = re.findall(r"[a-z][\w-]*", after.group(1).lower())
    phrases = set(words) | {f"{a} {b}" for a, b in itertools.pairwise(words)}
    return next((path for path, names in _rules().agents if phrases & names), None)


def add_allergy_statuses(chosen: dict[str, tuple[Choice, list[Fact]]],
                         outcomes: list[FactOutcome], facts: list[Fact],
                         codebook: Codebook, text: str) -> None:
    """Code each allergy status fact from its agent's Index path."""
    by_fact = {o.fact: o for o in outcomes}
    for fact in facts:
        path = status_path(fact, text)
        outcome = by_fact.get(fact.id)
        if path is None or outcome is None:
            continue
        code = codebook.index_code(path)
        if code is None:
            outcome.reason += f" (the Index has no '{path}' this year)"
            continue
        record_index_code(chosen, outcome, fact, codebook, path, code,
                          f"{ALLERGY_STATUS}; Index '{path}' (Guidelines {_rules().guideline})")
