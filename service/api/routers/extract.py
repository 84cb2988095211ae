"""POST /v1/extract: a clinical note (text or FHIR) → structured facts with evidence spans."""

from __future__ import annotations

import json
import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from service.api.deps import ExtractorDep
from service.extraction.models import Extraction, Setting, Sex
from service.extraction.note_input import (
    MAX_NOTE_BYTES,
    NoteInputError,
    make_note,
    note_from_fhir,
    parse_note_bytes,
)

router = APIRouter(prefix="/v1", tags=["extract"])
log = logging.getLogger("medcode.api.extract")
# A JSON body may escape the text or carry it base64-encoded; the note itself is checked after.
MAX_BODY_BYTES = MAX_NOTE_BYTES * 2 + 16_384


class ExtractRequest(BaseModel):
    text: str | None = Field(None, description="The note as plain text (UTF-8, ≤ 100 kB)")
    fhir: dict[str, Any] | None = Field(
        None, description="Instead of text: a FHIR R4 DocumentReference, or a Bundle with one "
        "DocumentReference (base64 text attachment) and optionally Patient and Encounter")
    setting: Setting | None = None
    date_of_service: str | None = Field(None, description="YYYY-MM-DD")
    age: int | None = Field(None, ge=0, le=125)
    sex: Sex | None = None


@router.post(
    "/extract", response_model=Extraction,
    responses={413: {"description": "Note over 100 kB"},
               422: {"description": "Empty, non-UTF-8 or malformed note"}},
    openapi_extra={"requestBody": {"content": {
        "application/json": {"schema": ExtractRequest.model_json_schema()},
        "application/fhir+json": {"schema": {"type": "object",
                                             "description": "DocumentReference or Bundle"}},
        "text/plain": {"schema": {"type": "string"}},
    }, "required": True}},
)
async def extract(
    request: Request,
    extractor: ExtractorDep,
    setting: Annotated[Setting | None, Query()] = None,
    date_of_service: Annotated[str | None, Query()] = None,
    age: Annotated[int | None, Query(ge=0, le=125)] = None,
    sex: Annotated[Sex | None, Query()] = None,
) -> Extraction:
    """JSON body (`text` or `fhir`), a bare FHIR resource, or `text/plain` with context as
    query parameters. Offsets in the answer index the note text exactly."""
    declared = int(request.headers.get("content-length") or 0)
    if declared > MAX_BODY_BYTES:
        raise HTTPException(413, f"request body is {declared:,} bytes; a note may be at most "
                                 f"{MAX_NOTE_BYTES:,} bytes")
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise HTTPException(413, f"request body is {len(body):,} bytes; a note may be at most "
                                 f"{MAX_NOTE_BYTES:,} bytes")
    context = {"setting": setting, "date_of_service": date_of_service, "age": age, "sex": sex}
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if content_type in ("application/json", "application/fhir+json"):
            note = _from_json(body, context)
        elif content_type in ("text/plain", ""):
            note = parse_note_bytes(body, **context)
        else:
            raise HTTPException(415, f"content type {content_type!r} is not accepted; send "
                                     "application/json, application/fhir+json or text/plain")
    except NoteInputError as exc:
        raise HTTPException(exc.status, str(exc)) from exc
    started = time.perf_counter()
    result = await run_in_threadpool(extractor.extract, note)
    log.info("%s note#%s chars=%d facts=%d %.1fms", request.state.request_id,
             note.sha256[:12], len(note.text), len(result.facts),
             (time.perf_counter() - started) * 1000)
    return result


def _from_json(body: bytes, context: dict[str, Any]):  # type: ignore[no-untyped-def]
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise NoteInputError(f"request body is not valid UTF-8 (byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise NoteInputError(f"request body is not valid JSON: {exc}") from exc
    if isinstance(data, dict) and "resourceType" in data:
        return note_from_fhir(data, **context)
    try:
        req = ExtractRequest.model_validate(data)
    except ValueError as exc:
        raise NoteInputError(f"request body does not match ExtractRequest: {exc}") from exc
    fields = {k: v for k, v in req.model_dump(exclude={"text", "fhir"}).items()
              if v is not None}
    fields.update({k: v for k, v in context.items() if v is not None})
    if (req.text is None) == (req.fhir is None):
        raise NoteInputError("send exactly one of 'text' or 'fhir'")
    if req.fhir is not None:
        return note_from_fhir(req.fhir, **fields)
    return make_note(req.text or "", **fields)
