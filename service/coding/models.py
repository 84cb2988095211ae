"""Output of step 2: codes with evidence, citations, confidence, alternatives and flags."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from service.extraction.models import Evidence, Extraction
from service.validation import Citation, ValidationResult

FlagKind = Literal["needs_query", "unspecified_documentation", "ambiguous",
                   "uncertain_diagnosis", "conflict"]


class Flag(BaseModel):
    kind: FlagKind
    detail: str
    missing_axis: str | None = Field(None, description="For unspecified_documentation: "
                                     "laterality, type, stage, acuity, encounter, ...")
    query: str | None = Field(None, description="For needs_query: a compliant, non-leading "
                              "physician query draft")


class Candidate(BaseModel):
    code: str
    title: str
    billable: bool
    score: float = Field(description="Lookup score in [0, 1]")
    matched: str = Field(description="The index path, title or inclusion term that matched")
    source: str = Field(description="index, title, inclusion, vector:..., ...")
    found_by: list[str] = Field(description="Which queries of the fact found it")
    scores: dict[str, float] = Field(default_factory=dict, description="Score per query")
    not_documented: str | None = Field(None, description="A qualifier of the matched path "
                                       "the note does not document (newborn, family "
                                       "history, ...): its scores were lowered")


class Alternative(BaseModel):
    code: str
    title: str
    why_not: str


class CodedDiagnosis(BaseModel):
    code: str
    title: str
    sequence: int
    confidence: float = Field(ge=0, le=1, description="Calibrated: about the share of codes "
                              "given this confidence that were right in evaluation")
    match_score: float = Field(ge=0, le=1.5, description="The chooser's raw score")
    confidence_signals: dict[str, float] = Field(
        default_factory=dict, description="What the calibrated confidence was computed from "
        "(service/coding/calibration.py)")
    facts: list[str] = Field(description="Ids of the extraction facts it codes")
    evidence: list[Evidence]
    citations: list[Citation]
    alternatives: list[Alternative]
    flags: list[Flag]


class FactOutcome(BaseModel):
    fact: str
    text: str
    assertion: str
    action: Literal["coded", "combined", "not_coded"]
    reason: str
    queries: list[str]
    candidates: list[Candidate] = Field(description="Up to 20, best first")


class CodingResult(BaseModel):
    year: str
    chooser: str
    model: str | None
    setting: str | None
    codes: list[CodedDiagnosis]
    facts: list[FactOutcome]
    flags: list[Flag] = Field(description="Note-level flags")
    validation: ValidationResult
    extraction: Extraction
