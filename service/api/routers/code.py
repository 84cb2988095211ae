"""POST /v1/code: a clinical note → ICD-10-CM codes with evidence, citations and flags."""

from __future__ import annotations

import logging
import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool

from service.api.deps import ExtractorDep, RegistryDep, SettingsDep, YearIndexDep
from service.api.routers.extract import ExtractRequest, _from_json
from service.coding.coder import code_note
from service.coding.factory import make_chooser
from service.coding.models import CodingResult
from service.extraction.models import Setting
from service.extraction.note_input import NoteInputError

router = APIRouter(prefix="/v1", tags=["code"])
log = logging.getLogger("medcode.api.code")
MAX_BODY_BYTES = 216_384


@router.post("/code", response_model=CodingResult,
             responses={413: {"description": "Note over 100 kB"},
                        422: {"description": "Empty, non-UTF-8 or malformed note"}},
             openapi_extra={"requestBody": {"content": {
                 "application/json": {"schema": ExtractRequest.model_json_schema()}},
                 "required": True}})
async def code(
    request: Request, extractor: ExtractorDep, index: YearIndexDep, registry: RegistryDep,
    settings: SettingsDep, setting: Annotated[Setting | None, Query()] = None,
) -> CodingResult:
    """Step 1 then step 2 with the configured chooser (MEDCODE_CHOOSER, default rules).
    The same JSON body as /v1/extract (`text` or `fhir`, plus setting, date of service,
    age, sex); `?year=` picks the code year. Without a setting, uncertain diagnoses are
    handled as outpatient (flagged)."""
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise HTTPException(413, f"request body is {len(body):,} bytes; a note may be at most "
                                 "100,000 bytes")
    try:
        note = _from_json(body, {"setting": setting, "date_of_service": None, "age": None,
                                 "sex": None})
    except NoteInputError as exc:
        raise HTTPException(exc.status, str(exc)) from exc
    started = time.perf_counter()
    result = await run_in_threadpool(code_note, note, extractor, index, registry.embedder,
                                     make_chooser(settings))
    log.info("%s note#%s codes=%d %.1fms", request.state.request_id, note.sha256[:12],
             len(result.codes), (time.perf_counter() - started) * 1000)
    return result
