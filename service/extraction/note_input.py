"""Accept a note as plain text or FHIR R4 (DocumentReference or Bundle), with limits.

Errors carry the HTTP status they map to: 413 for a note over the size limit,
422 for empty, non-UTF-8 or malformed input.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import date
from typing import Any

MAX_NOTE_BYTES = 100_000
SETTINGS = {"inpatient", "outpatient"}
SEXES = {"female", "male", "other", "unknown"}
# FHIR Encounter.class (v3 ActCode) → coding setting. ED and observation stays are outpatient.
ENCOUNTER_CLASS = {"IMP": "inpatient", "ACUTE": "inpatient", "NONAC": "inpatient",
                   "AMB": "outpatient", "EMER": "outpatient", "OBSENC": "outpatient",
                   "HH": "outpatient", "VR": "outpatient", "PRENC": "outpatient",
                   "SS": "outpatient"}


class NoteInputError(ValueError):
    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class NoteInput:
    text: str
    source: str = "text"
    setting: str | None = None
    date_of_service: str | None = None
    age: int | None = None
    sex: str | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def decode_note(data: bytes, what: str = "note") -> str:
    """Strict UTF-8 (a BOM is dropped); the size limit is checked on the bytes."""
    if len(data) > MAX_NOTE_BYTES:
        raise NoteInputError(
            f"{what} is {len(data):,} bytes; the limit is {MAX_NOTE_BYTES:,} bytes "
            "(split the document and send the parts separately)", status=413)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NoteInputError(
            f"{what} is not valid UTF-8 (byte {exc.start}: {data[exc.start:exc.start + 1]!r}); "
            "convert it to UTF-8 first") from exc
    return check_text(text, what)


def check_text(text: str, what: str = "note") -> str:
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > MAX_NOTE_BYTES:
        raise NoteInputError(f"{what} is {size:,} bytes; the limit is {MAX_NOTE_BYTES:,} bytes "
                             "(split the document and send the parts separately)", status=413)
    if not text.strip():
        raise NoteInputError(f"{what} is empty")
    if "\x00" in text:
        raise NoteInputError(f"{what} contains NUL characters; is it a binary file?")
    return text


def make_note(text: str, source: str = "text", setting: str | None = None,
              date_of_service: str | None = None, age: int | None = None,
              sex: str | None = None) -> NoteInput:
    """Validate the optional context fields, naming the one that is wrong."""
    check_text(text)
    if setting is not None and setting not in SETTINGS:
        raise NoteInputError(f"setting must be one of {sorted(SETTINGS)}, not {setting!r}")
    if sex is not None and sex not in SEXES:
        raise NoteInputError(f"sex must be one of {sorted(SEXES)}, not {sex!r}")
    if age is not None and not 0 <= age <= 125:
        raise NoteInputError(f"age must be between 0 and 125, not {age}")
    if date_of_service is not None:
        try:
            date.fromisoformat(date_of_service[:10])
        except ValueError as exc:
            raise NoteInputError(
                f"date_of_service must be an ISO date (YYYY-MM-DD), not {date_of_service!r}"
            ) from exc
        date_of_service = date_of_service[:10]
    return NoteInput(text, source, setting, date_of_service, age, sex)


def looks_like_fhir(data: bytes) -> bool:
    head = data.lstrip()[:200]
    return head.startswith(b"{") and b'"resourceType"' in data[:4000]


def note_from_fhir(resource: Any, **overrides: Any) -> NoteInput:
    """A DocumentReference, or a Bundle holding one (plus Patient/Encounter for context)."""
    if not isinstance(resource, dict) or "resourceType" not in resource:
        raise NoteInputError("FHIR input must be a JSON object with a resourceType")
    kind = resource["resourceType"]
    patient: dict[str, Any] | None = None
    encounter: dict[str, Any] | None = None
    if kind == "Bundle":
        entries = [e.get("resource") for e in resource.get("entry") or []
                   if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
        docs = [r for r in entries if r.get("resourceType") == "DocumentReference"]
        if not docs:
            raise NoteInputError("FHIR Bundle has no DocumentReference entry")
        if len(docs) > 1:
            raise NoteInputError(f"FHIR Bundle has {len(docs)} DocumentReference entries; "
                                 "send one note per request")
        document = docs[0]
        patient = next((r for r in entries if r.get("resourceType") == "Patient"), None)
        encounter = next((r for r in entries if r.get("resourceType") == "Encounter"), None)
    elif kind == "DocumentReference":
        document = resource
    else:
        raise NoteInputError(
            f"FHIR resourceType {kind!r} is not supported; send a DocumentReference or a Bundle")

    text = _attachment_text(document)
    service_date = _service_date(document, encounter)
    fields: dict[str, Any] = {
        "setting": _setting(encounter),
        "date_of_service": service_date,
        "sex": _sex(patient),
        "age": _age(patient, service_date),
    }
    fields.update({k: v for k, v in overrides.items() if v is not None})
    return make_note(text, source=f"fhir:{kind}", **fields)


def _attachment_text(document: dict[str, Any]) -> str:
    contents = document.get("content") or []
    attachments = [c.get("attachment") for c in contents if isinstance(c, dict)]
    attachments = [a for a in attachments if isinstance(a, dict)]
    if not attachments:
        raise NoteInputError("DocumentReference has no content.attachment")
    textual = [a for a in attachments
               if str(a.get("contentType", "text/plain")).split(";")[0].strip().startswith("text/")]
    if not textual:
        types = ", ".join(str(a.get("contentType")) for a in attachments)
        raise NoteInputError(f"DocumentReference has no text attachment (content types: {types}); "
                             "extract the text first")
    attachment = next((a for a in textual if a.get("data")), None)
    if attachment is None:
        raise NoteInputError("the DocumentReference attachment has no inline data "
                             "(only url); medcode does not fetch URLs")
    data = attachment["data"]
    if len(data) > MAX_NOTE_BYTES * 4 // 3 + 8:
        raise NoteInputError(f"the attachment is over the {MAX_NOTE_BYTES:,}-byte limit",
                             status=413)
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NoteInputError(f"attachment data is not valid base64: {exc}") from exc
    charset = _charset(str(attachment.get("contentType", "")))
    if charset not in (None, "utf-8", "utf8", "us-ascii", "ascii"):
        raise NoteInputError(f"attachment charset {charset!r} is not supported; send UTF-8")
    return decode_note(raw, "attachment")


def _charset(content_type: str) -> str | None:
    for part in content_type.split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


def _service_date(document: dict[str, Any], encounter: dict[str, Any] | None) -> str | None:
    period = (document.get("context") or {}).get("period") or {}
    candidates = [period.get("start"), (encounter or {}).get("period", {}).get("start"),
                  document.get("date")]
    return next((str(c)[:10] for c in candidates if c), None)


def _setting(encounter: dict[str, Any] | None) -> str | None:
    if not encounter:
        return None
    klass = encounter.get("class")
    codes = [klass] if isinstance(klass, dict) else (klass or [])
    for coding in codes:
        # R4 has a Coding; R5 a list of CodeableConcepts
        for c in coding.get("coding", [coding]) if isinstance(coding, dict) else []:
            setting = ENCOUNTER_CLASS.get(str(c.get("code", "")).upper())
            if setting:
                return setting
    return None


def _sex(patient: dict[str, Any] | None) -> str | None:
    gender = (patient or {}).get("gender")
    return gender if gender in SEXES else None


def _age(patient: dict[str, Any] | None, on: str | None) -> int | None:
    birth = (patient or {}).get("birthDate")
    if not birth or len(birth) < 10:
        return None
    born = date.fromisoformat(birth[:10])
    ref = date.fromisoformat(on) if on else date.today()
    return ref.year - born.year - ((ref.month, ref.day) < (born.month, born.day))


def parse_note_bytes(data: bytes, **fields: Any) -> NoteInput:
    """A file or request body: FHIR JSON when it looks like it, plain text otherwise."""
    if looks_like_fhir(data):
        if len(data) > MAX_NOTE_BYTES * 2:
            raise NoteInputError(f"FHIR resource is {len(data):,} bytes; over the limit",
                                 status=413)
        try:
            resource = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise NoteInputError(f"FHIR JSON does not parse: {exc}") from exc
        return note_from_fhir(resource, **fields)
    return make_note(decode_note(data), **fields)
