"""POST /v1/validate: rule checks on a list of ICD-10-CM codes for one code year."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from service.api.deps import YearIndexDep
from service.validation import ValidationResult, validate

router = APIRouter(prefix="/v1", tags=["validate"])


class ValidateRequest(BaseModel):
    codes: list[str] = Field(min_length=1, max_length=100, description="In sequence: the first "
                             "is the principal (inpatient) or first-listed diagnosis")
    setting: Literal["inpatient", "outpatient"] | None = None


@router.post("/validate", response_model=ValidationResult)
def validate_codes(body: ValidateRequest, index: YearIndexDep) -> ValidationResult:
    """Billable, 7th character, Excludes1, code first / use additional code, manifestation
    sequencing, symptoms beside a definitive diagnosis, guideline combinations. `valid` is
    false when any issue is an error; each issue cites its Tabular note or guideline."""
    return validate(index.codebook, index.year, body.codes, body.setting)
