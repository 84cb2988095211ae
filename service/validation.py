"""Rule validation of a set of ICD-10-CM codes against a code year's Tabular List and
Guidelines: existence, billable, 7th characters, Excludes1 pairs, code first / use
additional code, manifestation sequencing, symptoms beside a definitive diagnosis, and the
combinations the Guidelines settle (resources in service/rules/guideline_links.json).

Each issue cites where the rule comes from: the Tabular note (with the code it is on) or the
guideline section, with its text, so a coder can check it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from service.codebook import Codebook, CodeRow, MalformedCode, NoteRow, normalize_code

RULES = Path(__file__).parent / "rules" / "guideline_links.json"
Severity = Literal["error", "warning", "info"]
# A use-additional or code-first note that only applies "if applicable" is advice, not a rule.
OPTIONAL_NOTE = re.compile(
    r"if applicable|if known|if present|any associated|such as|, if|control using", re.I)
MANIFESTATION = re.compile(r"in (?:other )?diseases classified elsewhere", re.I)
GUIDELINE_EXCERPT = 600


class Citation(BaseModel):
    source: Literal["tabular", "guideline", "index"]
    ref: str = Field(description="Code the note is on, the guideline section (I.C.9.a.2), or "
                     "the code an index path leads to")
    title: str | None = None
    text: str


class Issue(BaseModel):
    severity: Severity
    kind: str = Field(description="unknown_code, not_billable, missing_7th_character, "
                      "excludes1, code_first, use_additional, manifestation_first, "
                      "symptom_with_definitive, guideline_combination, duplicate")
    codes: list[str]
    message: str
    citation: Citation | None = None


class CodeLine(BaseModel):
    sequence: int
    code: str
    title: str | None
    billable: bool | None


class ValidationResult(BaseModel):
    year: str
    setting: str | None
    valid: bool = Field(description="No errors (warnings and info may remain)")
    codes: list[CodeLine]
    issues: list[Issue]


@dataclass(frozen=True)
class LinkRule:
    id: str
    severity: Severity
    when: list[list[str]]
    unless: list[str]
    guideline: str
    message: str
    fix: list[dict[str, Any]] = field(default_factory=list)


def load_link_rules(path: Path = RULES) -> list[LinkRule]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return [LinkRule(r["id"], r["severity"], r["when"], r.get("unless", []), r["guideline"],
                     r["message"], r.get("fix", [])) for r in data["rules"]]


def applies(rule: LinkRule, codes: list[str]) -> bool:
    hits = [[c for c in codes if any(c.startswith(p) for p in group)] for group in rule.when]
    return all(hits) and not any(c.startswith(p) for c in codes for p in rule.unless)


@lru_cache(maxsize=1 << 16)  # pure; the excludes checks ask it codes x notes x refs times
def covers(ref: str, code: str) -> bool:
    """Does a note reference ('E08.-', 'O24.4-', 'N18.1-N18.6', 'E08-E13', 'I10') cover code?"""
    flat = code.replace(".", "")
    ref = ref.strip()
    lo, sep, hi = ref.partition("-")
    if sep and hi and hi[0].isalpha():  # a range: E08-E13, N18.1-N18.6, E00-E03.-
        lo_f, hi_f = _stem(lo), _stem(hi)
        return flat[:len(lo_f)] >= lo_f and flat[:len(hi_f)] <= hi_f
    return flat.startswith(_stem(ref))


def _stem(ref: str) -> str:
    return ref.rstrip("-").rstrip(".").replace(".", "")


def validate(codebook: Codebook, year: str, raw_codes: list[str],
             setting: str | None = None, rules: list[LinkRule] | None = None
             ) -> ValidationResult:
    """Codes in sequence: the first is the principal (inpatient) or first-listed diagnosis."""
    rules = load_link_rules() if rules is None else rules
    issues: list[Issue] = []
    lines: list[CodeLine] = []
    known: list[tuple[str, CodeRow]] = []
    seen: set[str] = set()
    for n, raw in enumerate(raw_codes, start=1):
        try:
            code = normalize_code(raw)
        except MalformedCode as exc:
            issues.append(Issue(severity="error", kind="unknown_code", codes=[raw],
                                message=str(exc)))
            lines.append(CodeLine(sequence=n, code=raw, title=None, billable=None))
            continue
        row = codebook.get(code)
        lines.append(CodeLine(sequence=n, code=code, title=row.title if row else None,
                              billable=row.billable if row else None))
        if code in seen:
            issues.append(Issue(severity="error", kind="duplicate", codes=[code],
                                message=f"{code} is listed more than once"))
            continue
        seen.add(code)
        if row is None:
            issues.append(Issue(severity="error", kind="unknown_code", codes=[code],
                                message=f"{code} is not in the FY{year} Tabular List"))
            continue
        issues += _billable(codebook, row)
        known.append((code, row))

    notes = {code: notes_up_tree(codebook, code) for code, _ in known}
    codes = [code for code, _ in known]
    issues += _excludes1(codes, notes)
    issues += _code_first_and_use_additional(codes, notes)
    issues += _manifestation_first(known)
    issues += _symptoms(known)
    issues += _guideline_links(codebook, codes, rules)
    return ValidationResult(year=year, setting=setting,
                            valid=not any(i.severity == "error" for i in issues),
                            codes=lines, issues=issues)


def notes_up_tree(codebook: Codebook, code: str) -> list[NoteRow]:
    """The code's notes and its ancestors' (Tabular notes apply to everything below them)."""
    return list(_notes_up_tree(codebook, code))


@lru_cache(maxsize=1 << 14)  # a year's notes never change; validation asks again and again
def _notes_up_tree(codebook: Codebook, code: str) -> tuple[NoteRow, ...]:
    out: list[NoteRow] = []
    for row in codebook.lineage(code):
        out += codebook.notes(row.code)
    return tuple(out)


def _billable(codebook: Codebook, row: CodeRow) -> list[Issue]:
    if row.billable:
        return []
    if row.seventh_from:
        options = codebook.seventh_characters(row.seventh_from)
        shown = ", ".join(f"{c} = {m}" for c, m in list(options.items())[:8])
        return [Issue(severity="error", kind="missing_7th_character", codes=[row.code],
                      message=f"{row.code} needs a 7th character ({shown}); use a placeholder "
                      "X where the code has fewer than six characters",
                      citation=Citation(source="tabular", ref=row.seventh_from,
                                        text=f"7th characters defined at {row.seventh_from}"))]
    children = codebook.children(row.code)
    more = ", ".join(c.code for c in children[:6]) + (" ..." if len(children) > 6 else "")
    return [Issue(severity="error", kind="not_billable", codes=[row.code],
                  message=f"{row.code} is a {row.kind}, not a billable code: choose a more "
                  f"specific code ({more})")]


def _excludes1(codes: list[str], notes: dict[str, list[NoteRow]]) -> list[Issue]:
    """One issue per pair, even when each code's category excludes the other."""
    issues = []
    pairs: set[frozenset[str]] = set()
    for a in codes:
        for note in notes[a]:
            if note.kind != "excludes1":
                continue
            for b in codes:
                if b != a and frozenset((a, b)) not in pairs \
                        and any(covers(ref, b) for ref in note.refs) \
                        and not any(covers(ref, a) for ref in note.refs):
                    pairs.add(frozenset((a, b)))
                    issues.append(Issue(
                        severity="error", kind="excludes1", codes=[a, b],
                        message=f"{a} and {b} are mutually exclusive (Excludes1 at {note.code}); "
                        "both only when the conditions are unrelated (Guidelines I.A.12.a)",
                        citation=Citation(source="tabular", ref=note.code, text=note.text)))
    return issues


def _note_groups(notes: list[NoteRow], kind: str) -> list[tuple[NoteRow, list[str], str]]:
    """A note of one kind at one code, whatever its bullets: (first row, all refs, text)."""
    groups: dict[str, tuple[NoteRow, list[str], list[str]]] = {}
    for note in notes:
        if note.kind == kind:
            _, refs, texts = groups.setdefault(note.code, (note, [], []))
            refs.extend(r for r in note.refs if r not in refs)
            texts.append(note.text)
    return [(head, refs, " ".join(texts)) for head, refs, texts in groups.values()]


def _code_first_and_use_additional(codes: list[str],
                                   notes: dict[str, list[NoteRow]]) -> list[Issue]:
    issues: list[Issue] = []
    for position, code in enumerate(codes):
        for head, refs, text in _note_groups(notes[code], "code_first"):
            present = [c for c in codes if c != code and any(covers(r, c) for r in refs)]
            if present and codes.index(present[0]) > position:
                issues.append(Issue(
                    severity="error", kind="code_first", codes=[present[0], code],
                    message=f"{present[0]} must be sequenced before {code} (code first note "
                    f"at {head.code})", citation=Citation(source="tabular", ref=head.code,
                                                          text=text)))
            elif not present and refs:
                # Advice only: the classification cannot tell whether such a condition exists.
                issues.append(Issue(
                    severity="info", kind="code_first", codes=[code],
                    message=f"{code}: code first the underlying condition, if documented "
                    f"({', '.join(refs[:6])})",
                    citation=Citation(source="tabular", ref=head.code, text=text)))
        for head, refs, text in _note_groups(notes[code], "use_additional_code"):
            if not refs or any(covers(r, c) for r in refs for c in codes if c != code):
                continue
            # Block- and chapter-wide notes (tobacco exposure...) apply only where relevant.
            optional = OPTIONAL_NOTE.search(text) or "-" in head.code or ":" in head.code
            issues.append(Issue(
                severity="info" if optional else "warning", kind="use_additional",
                codes=[code],
                message=f"{code}: use additional code {'if applicable ' if optional else ''}"
                f"({', '.join(refs[:6])})",
                citation=Citation(source="tabular", ref=head.code, text=text)))
    return _dedupe(issues)


def _manifestation_first(known: list[tuple[str, CodeRow]]) -> list[Issue]:
    if not known:
        return []
    code, row = known[0]
    if MANIFESTATION.search(row.title):
        return [Issue(severity="error", kind="manifestation_first", codes=[code],
                      message=f"{code} is a manifestation code ('in diseases classified "
                      "elsewhere') and may never be the first-listed or principal diagnosis: "
                      "sequence the underlying condition first (Guidelines I.A.13)")]
    return []


def _symptoms(known: list[tuple[str, CodeRow]]) -> list[Issue]:
    definitive = [c for c, _ in known if not c.startswith("R")]
    symptoms = [c for c, _ in known if c.startswith("R") and c[1:3] < "70"]
    if not definitive or not symptoms:
        return []
    return [Issue(severity="info", kind="symptom_with_definitive", codes=[s, *definitive],
                  message=f"{s} is a sign or symptom: drop it if it is routinely part of "
                  f"{', '.join(definitive[:4])}; keep it only if it is not (Guidelines I.B.4-5)")
            for s in symptoms]


def _guideline_links(codebook: Codebook, codes: list[str], rules: list[LinkRule]) -> list[Issue]:
    issues = []
    for rule in rules:
        if not applies(rule, codes):
            continue
        hits = [[c for c in codes if any(c.startswith(p) for p in group)] for group in rule.when]
        involved = sorted({c for group in hits for c in group})
        issues.append(Issue(severity=rule.severity, kind="guideline_combination",
                            codes=involved, message=rule.message,
                            citation=_guideline(codebook, rule.guideline)))
    return issues


def _guideline(codebook: Codebook, citation: str) -> Citation:
    row = codebook.db.execute("SELECT title, text FROM guideline_sections WHERE citation = ?",
                              (citation,)).fetchone()
    if row is None:
        return Citation(source="guideline", ref=citation, text="")
    text = row[1] if len(row[1]) <= GUIDELINE_EXCERPT else row[1][:GUIDELINE_EXCERPT] + "…"
    return Citation(source="guideline", ref=citation, title=row[0], text=text)


def _dedupe(issues: list[Issue]) -> list[Issue]:
    seen, out = set(), []
    for issue in issues:
        key = (issue.kind, tuple(sorted(issue.codes)), issue.message)
        if key not in seen:
            seen.add(key)
            out.append(issue)
    return out
