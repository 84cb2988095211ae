from fastapi import APIRouter, HTTPException

from service.api.deps import YearIndexDep
from service.code_info import code_info
from service.codebook import MalformedCode, normalize_code
from service.schemas import CodeInfo, Problem

router = APIRouter(prefix="/v1", tags=["codes"])


@router.get(
    "/codes/{code}",
    response_model=CodeInfo,
    responses={404: {"model": Problem}, 422: {"model": Problem}},
)
def get_code(code: str, index: YearIndexDep) -> CodeInfo:
    try:
        normalized = normalize_code(code)
    except MalformedCode as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    info = code_info(index.codebook, index.year, normalized)
    if info is None:
        raise HTTPException(
            status_code=404,
            detail=f"{normalized} is not an ICD-10-CM code in the {index.year} Tabular List",
        )
    return info
