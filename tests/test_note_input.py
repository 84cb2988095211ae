"""Note input: plain text and FHIR R4, size and encoding limits, context fields."""

from __future__ import annotations

import base64
import json

import pytest

from service.extraction.note_input import (
    MAX_NOTE_BYTES,
    NoteInputError,
    decode_note,
    make_note,
    note_from_fhir,
    parse_note_bytes,
)

NOTE = "Assessment: DM2 w/ neuropathy. Denies chest pain."


def document_reference(text: str = NOTE, content_type: str = "text/plain; charset=utf-8",
                       **extra: object) -> dict:
    return {
        "resourceType": "DocumentReference", "status": "current",
        "date": "2025-03-14T10:00:00Z",
        "content": [{"attachment": {"contentType": content_type,
                                    "data": base64.b64encode(text.encode()).decode()}}],
        **extra,
    }


def bundle(*resources: dict) -> dict:
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": r} for r in resources]}


PATIENT = {"resourceType": "Patient", "gender": "female", "birthDate": "1958-06-01"}
ENCOUNTER = {"resourceType": "Encounter", "status": "finished",
             "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                       "code": "IMP"},
             "period": {"start": "2025-02-02", "end": "2025-02-06"}}


def test_document_reference_gives_text_and_date() -> None:
    note = note_from_fhir(document_reference())
    assert note.text == NOTE
    assert (note.source, note.date_of_service, note.setting) == (
        "fhir:DocumentReference", "2025-03-14", None)


def test_bundle_gives_setting_age_and_sex_from_patient_and_encounter() -> None:
    note = note_from_fhir(bundle(PATIENT, ENCOUNTER, document_reference()))
    assert note.source == "fhir:Bundle"
    assert (note.setting, note.sex) == ("inpatient", "female")
    # The encounter period is the service; the document's own date is only when it was written.
    assert note.date_of_service == "2025-02-02"
    assert note.age == 66


def test_explicit_fields_override_fhir() -> None:
    note = note_from_fhir(bundle(PATIENT, ENCOUNTER, document_reference()),
                          setting="outpatient", age=70)
    assert (note.setting, note.age, note.sex) == ("outpatient", 70, "female")


@pytest.mark.parametrize(("resource", "message"), [
    ({"resourceType": "Patient"}, "not supported"),
    (bundle(PATIENT), "no DocumentReference"),
    (bundle(document_reference(), document_reference()), "one note per request"),
    ({"resourceType": "DocumentReference", "content": []}, "no content.attachment"),
    (document_reference(content_type="application/pdf"), "no text attachment"),
    ({"resourceType": "DocumentReference",
      "content": [{"attachment": {"contentType": "text/plain", "url": "http://x/y"}}]},
     "no inline data"),
    ({"resourceType": "DocumentReference",
      "content": [{"attachment": {"contentType": "text/plain", "data": "not base64!"}}]},
     "not valid base64"),
    (document_reference(content_type="text/plain; charset=iso-8859-1"), "charset"),
    (document_reference(text="   "), "empty"),
])
def test_bad_fhir_is_a_422_that_names_the_problem(resource: dict, message: str) -> None:
    with pytest.raises(NoteInputError, match=message) as err:
        note_from_fhir(resource)
    assert err.value.status == 422


def test_size_limit_is_413() -> None:
    with pytest.raises(NoteInputError, match="limit is 100,000 bytes") as err:
        decode_note(b"x" * (MAX_NOTE_BYTES + 1))
    assert err.value.status == 413
    assert decode_note(b"x" * MAX_NOTE_BYTES)
    big = document_reference(text="y" * (MAX_NOTE_BYTES + 10))
    with pytest.raises(NoteInputError) as err:
        note_from_fhir(big)
    assert err.value.status == 413


@pytest.mark.parametrize(("data", "message"), [
    (b"caf\xe9 au lait", "not valid UTF-8"),
    (b"", "empty"),
    (b" \n\t ", "empty"),
    (b"abc\x00def", "NUL"),
])
def test_bad_bytes_are_422(data: bytes, message: str) -> None:
    with pytest.raises(NoteInputError, match=message) as err:
        parse_note_bytes(data)
    assert err.value.status == 422


def test_fhir_file_is_recognised_by_content() -> None:
    note = parse_note_bytes(json.dumps(document_reference()).encode())
    assert note.text == NOTE and note.source == "fhir:DocumentReference"
    assert parse_note_bytes(b"\xef\xbb\xbfPlain note.").text == "Plain note."


@pytest.mark.parametrize(("field", "value", "message"), [
    ("setting", "icu", "setting must be one of"),
    ("sex", "F", "sex must be one of"),
    ("age", 300, "age must be between"),
    ("date_of_service", "14/03/2025", "ISO date"),
])
def test_bad_context_fields_are_named(field: str, value: object, message: str) -> None:
    with pytest.raises(NoteInputError, match=message):
        make_note(NOTE, **{field: value})
