"""POST /v1/extract and `medcode extract`, through a real server and the real CLI."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server import REPO, start_server, stop_server

NOTE = (REPO / "tests/notes/shorthand_note.txt").read_text(encoding="utf-8")
MARKER = "Zanzibar-7731"  # must never reach the server log
SERVER: list[subprocess.Popen[str]] = []


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    root = tmp_path_factory.mktemp("extract_api")
    env = dict(os.environ, MEDCODE_INDEX_DIR=str(root / "index"),
               MEDCODE_CACHE_DIR=str(root / "cache"), MEDCODE_ALLOW_DOWNLOAD="false")
    client, server = start_server(env)
    SERVER.append(server)
    yield client
    if server.poll() is None:
        stop_server(server)


def test_plain_json_text(api: httpx.Client) -> None:
    r = api.post("/v1/extract", json={"text": NOTE, "setting": "outpatient", "age": 67,
                                      "sex": "male", "date_of_service": "2025-03-14"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["note"]["setting"] == "outpatient" and body["note"]["age"] == 67
    for f in body["facts"]:
        assert NOTE[f["start"]:f["end"]] == f["text"]
    by_text = {f["text"]: f for f in body["facts"]}
    assert by_text["CP"]["assertion"] == "negated"
    assert by_text["PE"]["normalized"] == "pulmonary embolism"
    assert r.headers["x-request-id"]


def test_text_plain_body_with_query_context(api: httpx.Client) -> None:
    r = api.post("/v1/extract", content=NOTE.encode(), params={"setting": "inpatient"},
                 headers={"content-type": "text/plain; charset=utf-8"})
    assert r.status_code == 200, r.text
    assert r.json()["note"]["setting"] == "inpatient"


def test_fhir_bundle(api: httpx.Client) -> None:
    doc = {"resourceType": "DocumentReference", "status": "current",
           "content": [{"attachment": {"contentType": "text/plain",
                                       "data": base64.b64encode(NOTE.encode()).decode()}}]}
    patient = {"resourceType": "Patient", "gender": "male", "birthDate": "1950-01-01"}
    encounter = {"resourceType": "Encounter", "class": {"code": "EMER"},
                 "period": {"start": "2025-03-01"}}
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": x} for x in (patient, encounter, doc)]}
    r = api.post("/v1/extract", content=json.dumps(bundle),
                 headers={"content-type": "application/fhir+json"})
    assert r.status_code == 200, r.text
    note = r.json()["note"]
    assert (note["source"], note["setting"], note["age"], note["sex"]) == (
        "fhir:Bundle", "outpatient", 75, "male")
    wrapped = api.post("/v1/extract", json={"fhir": doc})
    assert wrapped.status_code == 200
    assert wrapped.json()["note"]["source"] == "fhir:DocumentReference"


@pytest.mark.parametrize(("kwargs", "status", "message"), [
    ({"json": {"text": "x" * 100_001}}, 413, "limit"),
    ({"content": b"y" * 250_000, "headers": {"content-type": "text/plain"}}, 413, "at most"),
    ({"content": b"caf\xe9", "headers": {"content-type": "text/plain"}}, 422, "UTF-8"),
    ({"json": {"text": "   "}}, 422, "empty"),
    ({"json": {"text": "a", "fhir": {"resourceType": "Patient"}}}, 422, "exactly one"),
    ({"json": {"text": "Chest pain.", "setting": "icu"}}, 422, "ExtractRequest"),
    ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 422, "JSON"),
    ({"content": b"<note/>", "headers": {"content-type": "application/xml"}}, 415, "not accepted"),
])
def test_bad_input_gets_a_clear_4xx(api: httpx.Client, kwargs: dict, status: int,
                                    message: str) -> None:
    r = api.post("/v1/extract", **kwargs)
    assert r.status_code == status, r.text
    assert message in r.json()["detail"]


def test_note_text_never_reaches_the_log(api: httpx.Client) -> None:
    # Last test on this server: it stops the server to read everything it logged.
    r = api.post("/v1/extract", json={"text": f"Patient {MARKER} denies chest pain."},
                 headers={"x-request-id": "req-phi-check"})
    assert r.status_code == 200
    log = stop_server(SERVER[0])
    assert "req-phi-check" in log and "note#" in log
    assert MARKER not in log and "denies chest pain" not in log


def _cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "medcode", "extract", *args], cwd=REPO,
                          input=stdin, capture_output=True, timeout=120)


def test_cli_extract_json_and_stdin(tmp_path: Path) -> None:
    path = tmp_path / "note.txt"
    path.write_text(NOTE, encoding="utf-8")
    done = _cli(str(path), "--json", "--setting", "outpatient")
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["note"]["setting"] == "outpatient"
    assert {f["text"] for f in body["facts"]} >= {"DM2", "HTN", "SOB", "CP", "PE", "PNA"}
    piped = _cli("-", stdin=NOTE.encode())
    assert piped.returncode == 0 and b"pulmonary embolism" in piped.stdout


def test_cli_bad_note_one_line_error_exit_2(tmp_path: Path) -> None:
    for content, message in [(b"caf\xe9", b"not valid UTF-8"), (b"", b"empty"),
                             (b"z" * 100_001, b"limit is 100,000 bytes")]:
        path = tmp_path / "bad.txt"
        path.write_bytes(content)
        done = _cli(str(path))
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(b"error: ") and message in lines[0]
    missing = _cli(str(tmp_path / "nope.txt"))
    assert missing.returncode == 2 and b"No such file" in missing.stderr
