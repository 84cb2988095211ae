"""Cause links between two facts of one sentence: "CKD due to HTN", "DM2 w/ neuropathy".

ICD-10-CM presumes a causal link for conditions joined by "with" in the Index
(Guidelines I.A.15), so "with" is kept as its own kind for step 2 to weigh.
"""

from __future__ import annotations

import re
from itertools import pairwise

from service.extraction.models import Evidence, Relation

MAX_GAP = 48
# Between two linked facts: the cue and at most a few modifier words, no list punctuation.
STOP = re.compile(r"[;.\n]")


def find_relations(text: str, facts: list[tuple[str, int, int, int]],
                   cues: dict[str, re.Pattern[str]]) -> list[Relation]:
    """facts: (id, start, end, sentence index) in text order."""
    relations: list[Relation] = []
    for (a, _, a_end, a_sent), (b, b_start, _, b_sent) in pairwise(facts):
        if a_sent != b_sent or b_start - a_end > MAX_GAP:
            continue
        gap = text[a_end:b_start]
        if STOP.search(gap) or gap.count(",") > 0:
            continue
        for kind, regex in cues.items():
            m = regex.search(gap)
            if not m:
                continue
            cue = Evidence(text=m.group(0), start=a_end + m.start(), end=a_end + m.end())
            if kind == "due_to":
                relations.append(Relation(kind="due_to", source=a, target=b, cue=cue))
            elif kind == "causes":
                relations.append(Relation(kind="due_to", source=b, target=a, cue=cue))
            else:
                relations.append(Relation(kind="with", source=a, target=b, cue=cue))
            break
    return relations
