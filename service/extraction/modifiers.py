"""Specificity modifiers (laterality, acuity, stage, type, encounter...) and pregnancy.

Rules live in resources/modifiers.json. Each axis is searched in windows around a
fact: 'before' runs back to the previous fact or clause break, 'after' forward to
the next one, 'inside' is the fact's own text, and 'sentence' widens the search for
axes often written apart from the fact ("fracture of radius, closed, initial encounter").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.extraction.models import Evidence, Measurement, Modifier, Pregnancy

CLAUSE_BREAK = re.compile(r"[,;:()\n]|\.(?=\s)|\band\b|\bor\b")
WINDOW = 60


@dataclass(frozen=True)
class Pattern:
    value: str
    regex: re.Pattern[str]
    abbreviation: str | None
    # For the 'after' window: must follow the fact directly ("of the left knee"), so that
    # "chest x-ray showed a right lower lobe infiltrate" gives the x-ray no laterality.
    anchored: re.Pattern[str] | None = None


@dataclass(frozen=True)
class Axis:
    name: str
    kinds: frozenset[str] | None
    term: re.Pattern[str] | None
    where: tuple[str, ...]
    patterns: tuple[Pattern, ...]

    def applies(self, kind: str, normalized: str | None) -> bool:
        if self.kinds is not None:
            return kind in self.kinds
        return bool(normalized and self.term and self.term.search(normalized))


@dataclass(frozen=True)
class FactWindow:
    """Where a fact sits: its span, the sentence, and the neighbouring facts' edges."""

    start: int
    end: int
    sent_start: int
    sent_end: int
    prev_end: int
    next_start: int


class ModifierRules:
    def __init__(self, path: Path) -> None:
        data = json.loads(path.read_text(encoding="utf-8"))
        self.axes = [self._axis(a) for a in data["axes"]]
        preg = data["pregnancy"]
        self.weeks = re.compile(preg["weeks"], re.I)
        self.body_mass_index = re.compile(data["body_mass_index"], re.I)
        self.weeks_prefix = re.compile(preg["weeks_prefix"], re.I)
        self.trimesters = {k: re.compile(v, re.I) for k, v in preg["trimester"].items()}
        self.pregnant = re.compile(preg["pregnant"], re.I)
        self.postpartum = re.compile(preg["postpartum"], re.I)
        self.relations = {k: re.compile(v, re.I) for k, v in data["relations"].items()}

    @staticmethod
    def _axis(a: dict[str, Any]) -> Axis:
        applies = a["applies_to"]
        kinds = frozenset(applies) if isinstance(applies, list) else None
        term = re.compile(applies, re.I) if isinstance(applies, str) else None
        anchor = a.get("after_anchor")
        patterns = []
        for p in a["patterns"]:
            flags = 0 if p.get("case_sensitive") else re.I
            anchored = re.compile(f"{anchor}(?P<m>{p['regex']})", flags) if anchor else None
            patterns.append(Pattern(p["value"], re.compile(p["regex"], flags),
                                    p.get("abbreviation"), anchored))
        return Axis(a["axis"], kinds, term, tuple(a["where"]), tuple(patterns))

    def find(self, text: str, w: FactWindow, kind: str, normalized: str | None
             ) -> tuple[list[Modifier], list[tuple[str, int, int]]]:
        """Modifiers for one fact, and the abbreviations (L, R) that expressed them."""
        found: list[Modifier] = []
        abbreviations: list[tuple[str, int, int]] = []
        windows = self._windows(text, w)
        for axis in self.axes:
            if not axis.applies(kind, normalized):
                continue
            for where in axis.where:
                lo, hi = windows[where]
                hit = self._first(axis, text, lo, hi, where)
                if hit:
                    pattern, start, end = hit
                    found.append(Modifier(axis=axis.name, value=pattern.value,
                                          text=text[start:end], start=start, end=end,
                                          source="text"))
                    if pattern.abbreviation:
                        abbreviations.append((pattern.abbreviation, start, end))
                    break
        return found, abbreviations

    @staticmethod
    def _first(axis: Axis, text: str, lo: int, hi: int,
               where: str) -> tuple[Pattern, int, int] | None:
        """The first pattern (in rule order) found; in 'before', its match nearest the fact."""
        if hi <= lo:
            return None
        for pattern in axis.patterns:
            if where == "after" and pattern.anchored is not None:
                m = pattern.anchored.match(text, lo, hi)
                if m:
                    return pattern, m.start("m"), m.end("m")
                continue
            matches = list(pattern.regex.finditer(text, lo, hi))
            if matches:
                m = matches[-1] if where == "before" else matches[0]
                return pattern, m.start(), m.end()
        return None

    @staticmethod
    def _windows(text: str, w: FactWindow) -> dict[str, tuple[int, int]]:
        lo = max(w.sent_start, w.prev_end, w.start - WINDOW)
        breaks = list(CLAUSE_BREAK.finditer(text, lo, w.start))
        before_lo = breaks[-1].end() if breaks else lo
        hi = min(w.sent_end, w.next_start, w.end + WINDOW)
        brk = CLAUSE_BREAK.search(text, w.end, hi)
        after_hi = brk.start() if brk else hi
        return {"before": (before_lo, w.start), "after": (w.end, after_hi),
                "inside": (w.start, w.end), "sentence": (w.sent_start, w.sent_end)}

    def bmi(self, text: str) -> Measurement | None:
        """The body mass index the note states ("BMI 36.2", "body mass index of 27")."""
        m = self.body_mass_index.search(text)
        if m is None:
            return None
        return Measurement(value=float(m.group(1).replace(",", ".")), evidence=_evidence(m))

    def pregnancy(self, text: str) -> Pregnancy | None:
        evidence: list[Evidence] = []
        status = None
        m = self.pregnant.search(text)
        if m:
            status = "pregnant"
            evidence.append(_evidence(m))
        weeks, trimester, trimester_evidence = None, None, None
        wm = self.weeks_prefix.search(text) or _gestation_weeks(self.weeks, text, m is not None)
        count = int(next(g for g in wm.groups() if g)) if wm else 0  # "week 21 of gestation"
        if 1 <= count <= 44:
            weeks, status = count, "pregnant"
            evidence.append(_evidence(wm))
            # ICD-10-CM: first < 14w0d, second 14w0d to < 28w0d, third 28w0d to delivery.
            trimester = "first" if weeks < 14 else "second" if weeks < 28 else "third"
            trimester_evidence = evidence[-1]
        for name, regex in self.trimesters.items():
            tm = regex.search(text)
            if tm:  # written out, it overrides a count of weeks
                trimester, status = name, "pregnant"
                trimester_evidence = _evidence(tm)
                evidence.append(trimester_evidence)
                break
        pm = self.postpartum.search(text)
        if pm and status is None:
            status = "postpartum"
            evidence.append(_evidence(pm))
        if status is None:
            return None
        return Pregnancy(status=status, weeks=weeks, trimester=trimester,  # type: ignore[arg-type]
                         trimester_evidence=trimester_evidence,
                         evidence=sorted(evidence, key=lambda e: e.start))


def _evidence(m: re.Match[str]) -> Evidence:
    return Evidence(text=m.group(0), start=m.start(), end=m.end())


# "born at 40 weeks", "preterm newborn of 32 weeks": the patient's own birth, not a pregnancy.
BIRTH = re.compile(r"\b(?:born|newborn|neonate|preterm|premature|birth)\b[^.;]{0,25}$", re.I)


def _gestation_weeks(regex: re.Pattern[str], text: str, pregnancy_cue: bool
                     ) -> re.Match[str] | None:
    """'30 wks', '30w2d', '12 weeks pregnant' — but not 'x 2 weeks' of symptoms, nor
    'at 6 weeks' (after surgery) in a note that names no pregnancy."""
    for m in regex.finditer(text):
        tail = m.group(0).lower()
        preceding = text[max(0, m.start() - 40):m.start()]
        if BIRTH.search(preceding):
            continue
        if re.search(r"(gestation|ga|pregnan|iup|ega|\d\s*d\b|w\d)", tail) or \
                (pregnancy_cue and re.search(r"(@|at|g\d+\s*p\d+)\s*$", preceding[-12:].lower())):
            return m
    return None
