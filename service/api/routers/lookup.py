from typing import Annotated

from fastapi import APIRouter, Query

from service.api.deps import RegistryDep, YearIndexDep
from service.lookup import lookup
from service.schemas import LookupHitOut, LookupResponse, MatchOut

router = APIRouter(prefix="/v1", tags=["lookup"])


@router.get("/lookup", response_model=LookupResponse)
def lookup_term(
    index: YearIndexDep,
    registry: RegistryDep,
    q: Annotated[str, Query(min_length=2, max_length=300, description="Term to look up")],
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> LookupResponse:
    hits = lookup(index, q, registry.embedder, limit)
    return LookupResponse(
        year=index.year,
        query=q,
        hits=[
            LookupHitOut(
                code=h.code, title=h.title, billable=h.billable, score=h.score,
                matched=MatchOut(text=h.matched.text, source=h.matched.source,
                                 score=h.matched.score),
                lexical=h.lexical, semantic=h.semantic,
            )
            for h in hits
        ],
    )
