"""Output of step 1: structured clinical facts with exact evidence offsets.

Every `start`/`end` is a character offset into the note text as received (Unicode code
points, line endings untouched), so `note[start:end] == text` holds for facts, modifiers,
cues and abbreviations. JavaScript strings count UTF-16 units: a UI adjusts only past
characters outside the Basic Multilingual Plane (emoji).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Assertion = Literal["present", "negated", "possible", "hypothetical", "historical", "family"]
FactKind = Literal["condition", "symptom", "injury", "finding", "procedure", "organism",
                   "medication", "external_cause"]
Setting = Literal["inpatient", "outpatient"]
Sex = Literal["female", "male", "other", "unknown"]


class Evidence(BaseModel):
    text: str
    start: int
    end: int


class Section(BaseModel):
    """A section: its header as written, and the span it governs (header and body)."""

    name: str = Field(description="Normalized section name, e.g. chief_complaint, assessment")
    title: Evidence
    start: int
    end: int


class AssertionCue(Evidence):
    category: str = Field(description="ConText category, e.g. NEGATED_EXISTENCE, FAMILY, SECTION")


class Modifier(BaseModel):
    axis: str = Field(description="laterality, acuity, ckd_stage, heart_failure_type, ...")
    value: str
    text: str
    start: int
    end: int
    source: Literal["text", "lexicon", "note"] = Field(
        description="text: found next to the fact; lexicon: implied by the term itself "
        "(HFrEF → systolic); note: a note-level cue (trimester, encounter)"
    )


class Sense(BaseModel):
    sense: str
    sources: list[str]
    frequency: float | None = Field(None, description="Relative frequency in clinical notes")


class AbbreviationUse(Evidence):
    expansion: str | None = Field(description="The sense used; null when ambiguous")
    resolved_by: str = Field(description="How the sense was chosen: lexicon, context cue, "
                             "only sense, shorthand list; or 'unresolved'")
    ambiguous: bool
    senses: list[Sense] = Field(description="Senses the inventories list (up to 6)")


class Fact(Evidence):
    id: str
    kind: FactKind
    normalized: str | None = Field(description="Index-ready term; null when an abbreviation "
                                   "could not be resolved")
    vocabulary: Literal["curated", "index", "abbreviation"] = Field(
        description="Where the term came from: the curated lexicon, the code year's index "
        "vocabulary, or a context-resolved abbreviation")
    section: str | None
    assertion: Assertion
    assertion_cues: list[AssertionCue]
    modifiers: list[Modifier]
    abbreviations: list[int] = Field(description="Indexes into Extraction.abbreviations")
    flags: list[str] = Field(description="ambiguous_abbreviation, ...")


class Relation(BaseModel):
    kind: Literal["due_to", "with"]
    source: str = Field(description="Fact id; for due_to, the consequence")
    target: str = Field(description="Fact id; for due_to, the cause")
    cue: Evidence


class Pregnancy(BaseModel):
    status: Literal["pregnant", "postpartum"]
    weeks: int | None
    trimester: Literal["first", "second", "third"] | None
    trimester_evidence: Evidence | None = Field(
        description="What gave the trimester: the words 'third trimester' or the weeks")
    evidence: list[Evidence]


class Measurement(BaseModel):
    value: float
    evidence: Evidence


class NoteInfo(BaseModel):
    sha256: str
    chars: int
    source: str = Field(description="text, fhir:DocumentReference or fhir:Bundle")
    setting: Setting | None
    date_of_service: str | None
    age: int | None
    sex: Sex | None


class Extraction(BaseModel):
    note: NoteInfo
    sections: list[Section]
    facts: list[Fact]
    relations: list[Relation]
    abbreviations: list[AbbreviationUse]
    pregnancy: Pregnancy | None
    bmi: Measurement | None = Field(None, description="Body mass index the note states")
    extractor: str = Field(description="Pipeline and rules version")
