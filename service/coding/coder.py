"""Step 2 orchestration: extraction → which facts to code → retrieval → choice →
guideline fixes and sequencing → validation. Every decision is recorded per fact.

Setting rules: an uncertain diagnosis ("probable", "r/o") is coded as if established for
inpatients (Guidelines II.H) and not coded for outpatients, whose symptoms are coded
instead (IV.H). Negated and hypothetical facts are never coded; family history facts go to
the family-history codes; procedures wait for CPT work.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from functools import cache
from pathlib import Path

from ingest.embeddings import Embedder
from service.codebook import Codebook
from service.coding.allergy_status import (
    ALLERGY_STATUS,
    STATUS_WAITS,
    add_allergy_statuses,
    status_paths,
)
from service.coding.calibration import calibrate, calibration_path, features
from service.coding.choosers import Choice, Chooser, Declined, bilateral_pair
from service.coding.external_cause import CAUSE_NOT_CODED, add_external_causes, is_cause
from service.coding.models import CodedDiagnosis, CodingResult, FactOutcome, Flag
from service.coding.queries import draft
from service.coding.retrieval import guideline_passages_many, retrieve_all
from service.coding.supplementary import add_supplementary, measured_codes, skip_reason
from service.extraction.models import Evidence, Extraction, Fact
from service.extraction.note_input import NoteInput
from service.extraction.pipeline import Extractor
from service.index_registry import YearIndex
from service.validation import (
    Citation,
    applies,
    covers,
    load_link_rules,
    notes_up_tree,
    validate,
)

INTEGRAL = Path(__file__).parent.parent / "rules" / "integral_symptoms.json"
CHRONIC = Path(__file__).parent.parent / "rules" / "chronic_conditions.json"
CONTEXT_ONLY = Path(__file__).parent.parent / "rules" / "context_only_terms.json"
SECTION_PRIORITY = ["diagnoses", "assessment", "assessment_and_plan", "chief_complaint",
                    "history_of_present_illness", "hospital_course"]
UNSPECIFIED_TITLE = re.compile(r"\bunspecified\b", re.I)
SUPPLEMENTARY_KINDS = ("organism", "medication", "procedure", "external_cause")
NOTE_KINDS = {"excludes1", "excludes2", "code_first", "use_additional_code", "code_also"}


def code_note(note: NoteInput, extractor: Extractor, index: YearIndex,
              embedder: Embedder | None, chooser: Chooser) -> CodingResult:
    extraction = extractor.extract(note)
    setting = note.setting
    note_flags: list[Flag] = []
    if setting is None:
        note_flags.append(Flag(kind="conflict", detail="no setting given: uncertain "
                               "diagnoses were handled as outpatient (Guidelines IV.H)"))
    outcomes: list[FactOutcome] = []
    chosen: dict[str, tuple[Choice, list[Fact]]] = {}
    chronic = _chronic_terms()
    facts: list[Fact] = []
    current_chronic: set[str] = set()
    for fact in extraction.facts:
        if fact.assertion == "historical" and chronic.search(fact.normalized or ""):
            # "h/o DM2": the patient has it (Guidelines I.C.21.c.4)
            fact = fact.model_copy(update={"assertion": "present"})
            current_chronic.add(fact.id)
        facts.append(fact)
    skips = {f.id: STATUS_WAITS if status_paths(f, note.text) else
             _skip_reason(f, setting or "outpatient") for f in facts}
    retrievals = retrieve_all(index, embedder, [f for f in facts if skips[f.id] is None
                                                and f.normalized is not None],
                              extraction, note.text)
    for fact in facts:
        skip = skips[fact.id]
        if fact.normalized is None and skip is None:
            senses = ", ".join(a.expansion or "" for a in extraction.abbreviations
                               if a.start == fact.start) or "several meanings"
            note_flags.append(Flag(kind="ambiguous", detail=f"'{fact.text}' is ambiguous",
                                   query=draft("abbreviation", fact.text,
                                               date=note.date_of_service, senses=senses)))
            skip = "ambiguous abbreviation: not coded until clarified"
        if skip is not None:
            if fact.assertion == "possible" and fact.kind != "procedure":
                note_flags.append(Flag(kind="uncertain_diagnosis", detail=skip,
                                       query=draft("uncertain", fact.text,
                                                   fact.normalized or "",
                                                   note.date_of_service)))
            outcomes.append(FactOutcome(fact=fact.id, text=fact.text, assertion=fact.assertion,
                                        action="not_coded", reason=skip, queries=[],
                                        candidates=[]))
            continue
        retrieval = retrievals[fact.id]
        choice = chooser.choose(retrieval, index.codebook, note.date_of_service)
        queries = [q for _, q in retrieval.queries]
        if choice is None or isinstance(choice, Declined):
            outcomes.append(FactOutcome(
                fact=fact.id, text=fact.text, assertion=fact.assertion, action="not_coded",
                reason=choice.reason if choice else "no candidate matched well enough",
                queries=queries,
                candidates=retrieval.candidates))
            continue
        if fact.assertion == "possible":
            choice.confidence = round(choice.confidence * 0.8, 3)
            choice.flags.append(Flag(kind="uncertain_diagnosis", detail="documented as "
                                     "uncertain; coded as if established (inpatient, "
                                     "Guidelines II.H)"))
        if fact.id in current_chronic:
            choice.reason += ("; documented as history, coded as current: a chronic "
                              "condition does not resolve")
        sides = _bilateral(index.codebook, choice, fact)
        for one in sides:
            previous = chosen.get(one.code)
            if previous is None:
                chosen[one.code] = (one, [fact])
            else:  # the same code from another fact: one line, both facts as evidence
                kept = one if one.confidence > previous[0].confidence else previous[0]
                kept.combined_with = list(dict.fromkeys(previous[0].combined_with
                                                        + one.combined_with))
                chosen[one.code] = (kept, [*previous[1], fact])
        outcomes.append(FactOutcome(fact=fact.id, text=fact.text, assertion=fact.assertion,
                                    action="coded",
                                    reason=f"{', '.join(c.code for c in sides)}: "
                                    f"{sides[0].reason}",
                                    queries=queries, candidates=retrieval.candidates))

    _fold_combinations(chosen, outcomes, index.codebook)
    _drop_integral_symptoms(chosen, outcomes)
    add_supplementary(chosen, outcomes, [f for f in facts if skips[f.id] is not None and
                                         skips[f.id] == skip_reason(f)], index.codebook,
                      note.text)
    add_external_causes(chosen, outcomes, [f for f in facts if skips[f.id] == CAUSE_NOT_CODED],
                        index.codebook, note.text)
    add_allergy_statuses(chosen, outcomes, [f for f in facts if skips[f.id] == STATUS_WAITS],
                         index.codebook, note.text)
    _merge_unspecified_duplicates(chosen, outcomes, index.codebook)
    _merge_generic_neoplasms(chosen, outcomes)
    _merge_behavior_unstated(chosen, outcomes, index.codebook)
    codes = _sequence(chosen, extraction)
    codes, fixes = _apply_guideline_fixes(codes, index.codebook, chosen, outcomes)
    codes = _code_first_order(index.codebook, index.year, codes)
    for code, choice in measured_codes(codes, extraction, index.codebook).items():
        if code not in codes:
            codes.append(code)
            fixes[code] = (choice, [])
    validation = validate(index.codebook, index.year, codes, setting)
    results = []
    picked = [chosen[c] if c in chosen else fixes[c] for c in codes]  # fixes: guideline-made
    calibration = calibration_path(chooser.name, chooser.model)
    passages = guideline_passages_many(
        index, embedder, [next((f.normalized for f in facts if f.normalized), choice.title)
                          for choice, facts in picked])
    for n, (code, (choice, facts), guideline) in enumerate(
            zip(codes, picked, passages, strict=True), start=1):
        row = index.codebook.get(code)
        title = row.title if row else choice.title
        signals = features(code, title, choice.confidence, choice.source,
                           [f.kind for f in facts], [f.vocabulary for f in facts],
                           [f.section for f in facts], [f.kind for f in choice.flags],
                           bool(choice.combined_with), choice.model_pick)
        results.append(CodedDiagnosis(
            code=code, title=title, sequence=n, confidence=calibrate(signals, calibration),
            match_score=choice.confidence, confidence_signals=signals,
            facts=[f.id for f in facts],
            evidence=[Evidence(text=f.text, start=f.start, end=f.end) for f in facts]
            + choice.evidence,
            citations=_citations(index, code, choice, guideline),
            alternatives=choice.alternatives, flags=choice.flags))
    for issue in validation.issues:
        if issue.severity == "error":
            note_flags.append(Flag(kind="conflict", detail=issue.message))
    return CodingResult(year=index.year, chooser=chooser.name, model=chooser.model,
                        setting=setting, codes=results, facts=outcomes, flags=note_flags,
                        validation=validation, extraction=extraction)


def _bilateral(codebook: Codebook, choice: Choice, fact: Fact) -> list[Choice]:
    """The choice, or its right and left codes for a bilateral condition that has no
    bilateral code (Guidelines I.B.13)."""
    pair = bilateral_pair(codebook, choice.code, fact)
    if pair is None:
        return [choice]
    out = []
    for code in pair:
        row = codebook.get(code)
        out.append(replace(choice, code=code, title=row.title if row else choice.title,
                           reason=f"{choice.reason}; bilateral, no bilateral code: right and "
                           "left coded separately (Guidelines I.B.13)",
                           flags=list(choice.flags), alternatives=list(choice.alternatives),
                           combined_with=list(choice.combined_with)))
    return out


def _fold_combinations(chosen: dict[str, tuple[Choice, list[Fact]]],
                       outcomes: list[FactOutcome], codebook: Codebook) -> None:
    """A linked fact coded within a combination code ("DM2 w/ neuropathy" → E11.40) loses
    its own code, unless the combination code's notes ask for that code too (I12.9 asks for
    the N18 stage)."""
    for code, (choice, facts) in list(chosen.items()):
        for partner_id in choice.combined_with:
            own = next((c for c, (_, fs) in chosen.items()
                        if c != code and any(f.id == partner_id for f in fs)), None)
            if own is None:
                continue
            asked = [r for n in notes_up_tree(codebook, code)
                     if n.kind in ("use_additional_code", "code_also") for r in n.refs]
            if any(covers(r, own) for r in asked):
                continue
            _, partner_facts = chosen.pop(own)
            facts.extend(f for f in partner_facts if f not in facts)
            for outcome in outcomes:
                if outcome.fact in {f.id for f in partner_facts}:
                    outcome.action = "combined"
                    outcome.reason = f"{code}: combination code with a linked fact ({own} not "
                    outcome.reason += "coded separately)"


def _merge_unspecified_duplicates(chosen: dict[str, tuple[Choice, list[Fact]]],
                                  outcomes: list[FactOutcome], codebook: Codebook) -> None:
    """Two codes of one subcategory for one condition (I50.23 and I50.20 for 'acute on
    chronic systolic CHF (HFrEF)'): the unspecified one goes, its facts join the other."""
    for code in list(chosen):
        row = codebook.get(code)
        if row is None or code not in chosen or not UNSPECIFIED_TITLE.search(row.title):
            continue
        sibling = next((c for c in chosen if c != code and c[:5] == code[:5]
                        and not UNSPECIFIED_TITLE.search(chosen[c][0].title)), None)
        if sibling is None:
            continue
        _, facts = chosen.pop(code)
        chosen[sibling][1].extend(facts)
        for outcome in outcomes:
            if outcome.fact in {f.id for f in facts}:
                outcome.reason = f"{sibling}: same condition, more specific than {code}"


@cache
def _chronic_terms() -> re.Pattern[str]:
    terms = json.loads(CHRONIC.read_text(encoding="utf-8"))["terms"]
    return re.compile("|".join(terms), re.I)


# Site-less neoplasm codes: "the tumor", "the carcinoma" in a note that names the
# neoplasm elsewhere refer back to it; C79.9 only to another secondary-site code. The
# malignant ones go first, so a site-less "tumor" finds where "the carcinoma" went.
GENERIC_NEOPLASMS = {"C80.1": ("C",), "C80.0": ("C",), "C79.9": ("C77", "C78", "C79"),
                     "D49.9": ("C", "D0", "D1", "D2", "D3", "D4"),
                     "D48.9": ("C", "D0", "D1", "D2", "D3", "D4"),
                     "D36.9": ("C", "D0", "D1", "D2", "D3", "D4")}
# A tumor of unstated behavior in a note that documents a malignancy without its site is
# that malignancy: C80.1, not D49.9 beside it.
BEHAVIOR_UNSTATED = ("D49.9", "D48.9")


def _merge_generic_neoplasms(chosen: dict[str, tuple[Choice, list[Fact]]],
                             outcomes: list[FactOutcome]) -> None:
    for generic, specific_prefixes in GENERIC_NEOPLASMS.items():
        if generic not in chosen:
            continue
        specific = next((c for c in chosen if c not in GENERIC_NEOPLASMS
                         and c.startswith(specific_prefixes)
                         and (c[0] == "C" or c[:3] <= "D49")), None)
        if specific is None and generic in BEHAVIOR_UNSTATED and "C80.1" in chosen:
            specific = "C80.1"
        if specific is not None:
            _fold_into(chosen, outcomes, generic, specific,
                       f"a site-less mention of the neoplasm coded there ({generic} not coded "
                       "separately)")


def _merge_behavior_unstated(chosen: dict[str, tuple[Choice, list[Fact]]],
                             outcomes: list[FactOutcome], codebook: Codebook) -> None:
    """A neoplasm of unspecified behavior (D49), or of uncertain behavior (D37-D48), at the
    site of a malignant one the note states ("testicular tumor" ... "seminoma" → C62.90,
    not D40.10 beside it); D49 also yields to a benign or in situ one."""
    for generic in [c for c in chosen if "D37" <= c[:3] <= "D49"]:
        # Unspecified behavior yields to any stated one; uncertain only to malignant.
        stated = [c for c in chosen if c[0] == "C" or (generic.startswith("D49")
                                                        and c[0] == "D" and c[:3] <= "D48")]
        specific = next((c for c in stated if codebook.same_neoplasm_site(generic, c)), None)
        if specific is not None:
            _fold_into(chosen, outcomes, generic, specific,
                       f"the neoplasm of this site whose behavior the note states ({generic} "
                       "not coded beside it)")


def _fold_into(chosen: dict[str, tuple[Choice, list[Fact]]], outcomes: list[FactOutcome],
               old: str, new: str, why: str) -> None:
    """Drop code `old`; its facts become evidence of `new`, and their outcomes say why."""
    _, facts = chosen.pop(old)
    chosen[new][1].extend(f for f in facts if f not in chosen[new][1])
    for outcome in outcomes:
        if outcome.fact in {f.id for f in facts}:
            outcome.action = "combined"
            outcome.reason = f"{new}: {why}"


@cache
def _context_only() -> dict[str, str]:
    return json.loads(CONTEXT_ONLY.read_text(encoding="utf-8"))["terms"]


def _skip_reason(fact: Fact, setting: str) -> str | None:
    if fact.assertion == "negated":
        return "negated: not coded"
    if fact.assertion == "hypothetical":
        return "hypothetical (a plan, a risk, a return precaution): not coded"
    if is_cause(fact):  # external_cause.py decides, once the injuries are chosen
        return CAUSE_NOT_CODED
    supplementary = skip_reason(fact)  # agents and procedures: supplementary.py decides
    if supplementary is not None:
        return supplementary
    if (fact.normalized or "").lower() in _context_only():
        return _context_only()[(fact.normalized or "").lower()]
    if fact.assertion == "possible" and setting == "outpatient":
        return ("uncertain diagnosis in an outpatient setting: not coded; the symptoms are "
                "coded instead (Guidelines IV.H)")
    return None


def _drop_integral_symptoms(chosen: dict[str, tuple[Choice, list[Fact]]],
                            outcomes: list[FactOutcome]) -> None:
    pairs = json.loads(INTEGRAL.read_text(encoding="utf-8"))["pairs"]
    confirmed = [c for c, (_, facts) in chosen.items()
                 if not c.startswith("R") or c.startswith("R65.2")
                 if any(f.assertion == "present" for f in facts)]
    for code in [c for c in chosen if c.startswith("R") and not c.startswith("R65.2")]:
        related: list[str] = []
        why = ""
        for pair in pairs:
            if code.startswith(tuple(pair["symptoms"])):
                hits = [c for c in confirmed if c.startswith(tuple(pair["diagnoses"]))]
                if hits:
                    related, why = related + hits, pair["why"]
        if not related:
            continue
        _, facts = chosen.pop(code)
        for outcome in outcomes:
            if outcome.fact in {f.id for f in facts}:
                outcome.action = "not_coded"
                outcome.reason = (f"{code} dropped: {why} ({', '.join(dict.fromkeys(related))}"
                                  "; Guidelines I.B.5)")


def _sequence(chosen: dict[str, tuple[Choice, list[Fact]]], extraction: Extraction) -> list[str]:
    def key(code: str) -> tuple[bool, int, int]:
        facts = chosen[code][1]
        ranks = [SECTION_PRIORITY.index(f.section) if f.section in SECTION_PRIORITY
                 else len(SECTION_PRIORITY) for f in facts]
        # An agent, a status, a drug therapy is an additional code, never first-listed
        additional = all(f.kind in SUPPLEMENTARY_KINDS for f in facts) \
            or chosen[code][0].reason.startswith(ALLERGY_STATUS)
        return additional, min(ranks), min(f.start for f in facts)
    return sorted(chosen, key=key)


def _apply_guideline_fixes(codes: list[str], codebook: Codebook,
                           chosen: dict[str, tuple[Choice, list[Fact]]],
                           outcomes: list[FactOutcome]
                           ) -> tuple[list[str], dict[str, tuple[Choice, list[Fact]]]]:
    """Apply each guideline rule's fix (I10 + N18 → I12.9 ...); the new code keeps the
    replaced code's facts, and their outcomes say why."""
    made: dict[str, tuple[Choice, list[Fact]]] = {}
    for rule in load_link_rules():
        if not applies(rule, codes):
            continue
        for fix in rule.fix:
            if "drop" in fix and fix["drop"] in codes:
                codes = [c for c in codes if c != fix["drop"]]
                _note_fix(outcomes, chosen, fix["drop"], None, rule.guideline)
                break
            wanted = fix.get("if_any")
            if fix.get("replace") in codes and (
                    not wanted or any(c.startswith(p) for c in codes for p in wanted)):
                row = codebook.get(fix["by"])
                if row is None:
                    continue
                old = chosen.get(fix["replace"]) or made.get(fix["replace"])
                facts = old[1] if old else []
                made[fix["by"]] = (Choice(code=fix["by"], title=row.title,
                                          confidence=old[0].confidence if old else 0.9,
                                          reason=f"guideline {rule.guideline}: {rule.message}",
                                          matched=old[0].matched if old else "",
                                          source="guideline"), facts)
                codes = [fix["by"] if c == fix["replace"] else c for c in codes]
                _note_fix(outcomes, chosen, fix["replace"], fix["by"], rule.guideline)
                break
    return list(dict.fromkeys(codes)), made


def _note_fix(outcomes: list[FactOutcome], chosen: dict[str, tuple[Choice, list[Fact]]],
              old: str, new: str | None, guideline: str) -> None:
    ids = {f.id for f in chosen.get(old, (None, []))[1]}
    for outcome in outcomes:
        if outcome.fact in ids:
            if new is None:
                outcome.action = "not_coded"
                outcome.reason = f"{old} dropped by guideline {guideline}"
            else:
                outcome.reason = f"{new}: replaces {old} by guideline {guideline}"


def _code_first_order(codebook: Codebook, year: str, codes: list[str]) -> list[str]:
    """Move a code a 'code first' note asks for ahead of the code that carries the note."""
    for _ in range(len(codes)):
        result = validate(codebook, year, codes)
        issue = next((i for i in result.issues
                      if i.kind == "code_first" and i.severity == "error"), None)
        if issue is None:
            break
        first, then = issue.codes
        codes = [c for c in codes if c != first]
        codes.insert(codes.index(then), first)
    return codes


def _citations(index: YearIndex, code: str, choice: Choice, guideline: list[Citation]
               ) -> list[Citation]:
    out = [Citation(source="index", ref=code, text=choice.matched)] if choice.matched else []
    for note in notes_up_tree(index.codebook, code):
        if note.kind in NOTE_KINDS:
            out.append(Citation(source="tabular", ref=note.code, title=note.kind,
                                text=note.text))
    return out + guideline
