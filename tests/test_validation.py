"""Rule validation of code sets on the real FY2025 index (built by scripts/test.sh)."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.codebook import Codebook
from service.validation import ValidationResult, covers, validate


@pytest.mark.parametrize(("ref", "code", "expected"), [
    ("E10.-", "E10.9", True), ("E10.-", "E11.9", False), ("O24.4-", "O24.410", True),
    ("N18.1-N18.6", "N18.31", True), ("N18.1-N18.6", "N18.9", False),
    ("E08-E13", "E11.22", True), ("E08-E13", "E14.0", False), ("E00-E03.-", "E03.9", True),
    ("I10", "I10", True), ("J09.X1", "J09.X1", True), ("I12.-", "I13.0", False),
])
def test_note_references_cover_codes(ref: str, code: str, expected: bool) -> None:
    assert covers(ref, code) is expected


@pytest.fixture(scope="module")
def codebook(full_index_dir: Path) -> Codebook:
    return Codebook(full_index_dir / "2025" / "codebook.sqlite")


def check(codebook: Codebook, *codes: str) -> ValidationResult:
    return validate(codebook, "2025", list(codes))


def kinds(result: ValidationResult, severity: str) -> set[str]:
    return {i.kind for i in result.issues if i.severity == severity}


def test_dm_ckd_combination_sequenced_per_code_first(codebook: Codebook) -> None:
    ok = check(codebook, "E11.22", "N18.31")
    assert ok.valid and not kinds(ok, "warning")
    assert [c.title for c in ok.codes] == [
        "Type 2 diabetes mellitus with diabetic chronic kidney disease",
        "Chronic kidney disease, stage 3a"]
    wrong = check(codebook, "N18.31", "E11.22")
    (issue,) = [i for i in wrong.issues if i.severity == "error"]
    assert (issue.kind, issue.codes) == ("code_first", ["E11.22", "N18.31"])
    assert issue.citation is not None and issue.citation.ref == "N18"
    assert "diabetic chronic kidney disease (E08.22" in issue.citation.text
    alone = check(codebook, "E11.22")
    (missing,) = [i for i in alone.issues if i.severity == "warning"]
    assert missing.kind == "use_additional" and "N18.1-N18.6" in missing.message


def test_hypertension_with_ckd_needs_i12(codebook: Codebook) -> None:
    bad = check(codebook, "I10", "N18.30")
    (issue,) = [i for i in bad.issues if i.kind == "guideline_combination"]
    assert issue.severity == "error" and "I12" in issue.message
    assert issue.citation is not None and issue.citation.ref == "I.C.9.a.2"
    assert issue.citation.title == "Hypertensive Chronic Kidney Disease"
    assert issue.citation.text.startswith("Assign codes from category I12")
    assert check(codebook, "I12.9", "N18.30").valid
    assert not check(codebook, "E11.9", "N18.30").valid  # diabetes + CKD → E11.22


def test_billable_and_seventh_character(codebook: Codebook) -> None:
    r = check(codebook, "E11", "S72.001", "S72.001A", "E11.99", "hello", "S72.001A")
    by_kind = {(i.kind, tuple(i.codes)) for i in r.issues if i.severity == "error"}
    assert ("not_billable", ("E11",)) in by_kind
    assert ("missing_7th_character", ("S72.001",)) in by_kind
    assert ("unknown_code", ("E11.99",)) in by_kind
    assert ("unknown_code", ("hello",)) in by_kind
    assert ("duplicate", ("S72.001A",)) in by_kind
    seventh = next(i for i in r.issues if i.kind == "missing_7th_character")
    assert "A = initial encounter for closed fracture" in seventh.message


def test_excludes1_and_manifestation_sequencing(codebook: Codebook) -> None:
    r = check(codebook, "E11.9", "E10.9")
    (issue,) = [i for i in r.issues if i.kind == "excludes1"]
    assert issue.citation is not None and issue.citation.ref == "E11"
    assert issue.citation.text == "type 1 diabetes mellitus (E10.-)"
    dementia = check(codebook, "F02.80", "G30.9")
    assert kinds(dementia, "error") == {"code_first", "manifestation_first"}
    assert check(codebook, "G30.9", "F02.80").valid


def test_symptom_beside_definitive_diagnosis_is_flagged(codebook: Codebook) -> None:
    r = check(codebook, "J18.9", "R05.9")
    assert r.valid
    (issue,) = [i for i in r.issues if i.kind == "symptom_with_definitive"]
    assert issue.codes == ["R05.9", "J18.9"]
