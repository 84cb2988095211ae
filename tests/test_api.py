"""The REST API, served by a real uvicorn process on 127.0.0.1 over a freshly built index."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.mini_sources import write_mini_sources
from tests.server import REPO, start_server, stop_server


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    root = tmp_path_factory.mktemp("api")
    src = write_mini_sources(root / "src")
    env = dict(os.environ, MEDCODE_INDEX_DIR=str(root / "index"),
               MEDCODE_CACHE_DIR=str(root / "cache"), MEDCODE_ALLOW_DOWNLOAD="false")
    build = subprocess.run(
        [sys.executable, "-m", "medcode", "ingest", "build", "--year", "2025", "--sources",
         str(src)], env=env, cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert build.returncode == 0, build.stderr
    client, server = start_server(env)
    yield client
    stop_server(server)


def test_healthz_and_index_overview(api: httpx.Client) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    body = api.get("/v1/index").json()
    assert body["default_year"] == "2025"
    (year,) = body["years"]
    assert year["year"] == "2025" and year["counts"]["billable_codes"] == 10
    assert year["embedding"]["model"].startswith("all-MiniLM-L6-v2")


def test_code_info_has_hierarchy_inherited_notes_and_index_paths(api: httpx.Client) -> None:
    r = api.get("/v1/codes/E11.65", params={"year": "2025"})
    assert r.status_code == 200
    info = r.json()
    assert info["title"] == "Type 2 diabetes mellitus with hyperglycemia"
    assert info["billable"] is True
    assert [h["code"] for h in info["hierarchy"]] == ["chapter:4", "E08-E13", "E11", "E11.6"]
    excludes = [n for n in info["notes"] if n["kind"] == "excludes1"]
    assert excludes == [{"kind": "excludes1", "text": "type 1 diabetes mellitus (E10.-)",
                         "from_code": "E11", "refs": ["E10.-"]}]
    assert [p["path"] for p in info["index_paths"]] == [
        "Diabetes, diabetic > type 2 > with > hyperglycemia"
    ]
    # Lower case and no dot are accepted as the same code.
    assert api.get("/v1/codes/e1165").json()["code"] == "E11.65"


def test_code_info_seventh_characters(api: httpx.Client) -> None:
    info = api.get("/v1/codes/S72.001").json()
    assert info["billable"] is False
    options = info["seventh_characters"]["options"]
    assert [(o["char"], o["code"], o["billable"]) for o in options] == [
        ("A", "S72.001A", True), ("D", "S72.001D", True), ("S", "S72.001S", True)]
    assert info["seventh_characters"]["defined_at"] == "S72"
    full = api.get("/v1/codes/S72.001A").json()
    assert full["billable"] is True
    # The index prints the incomplete S72.00-; that path still leads here.
    assert any(p["printed_code"] == "S72.00-" for p in full["index_paths"])


def test_unknown_code_404_malformed_code_422_unknown_year_404(api: httpx.Client) -> None:
    r = api.get("/v1/codes/E11.99")
    assert r.status_code == 404 and "E11.99 is not an ICD-10-CM code" in r.json()["detail"]
    r = api.get("/v1/codes/not-a-code")
    assert r.status_code == 422 and "is not an ICD-10-CM code" in r.json()["detail"]
    r = api.get("/v1/codes/E11.65", params={"year": "1999"})
    assert r.status_code == 404 and "no index built for year '1999'" in r.json()["detail"]
    assert api.get("/v1/codes/E11.65", params={"year": "20x5"}).status_code == 422


def test_lookup_combines_index_paths_and_vectors(api: httpx.Client) -> None:
    r = api.get("/v1/lookup", params={"q": "type 2 diabetes with hyperglycemia", "limit": 3})
    hits = r.json()["hits"]
    assert hits[0]["code"] == "E11.65"
    assert hits[0]["matched"]["text"] == "Diabetes, diabetic > type 2 > with > hyperglycemia"
    assert 0 < hits[0]["score"] <= 1
    # A synonym printed nowhere in the index is still found by meaning.
    hits = api.get("/v1/lookup", params={"q": "raised blood pressure"}).json()["hits"]
    assert "I10" in [h["code"] for h in hits[:3]]
    assert api.get("/v1/lookup", params={"q": "x"}).status_code == 422
    assert api.get("/v1/lookup", params={"q": "diabetes", "limit": 0}).status_code == 422
    assert r.headers["x-request-id"]


def test_extract_uses_the_default_years_vocabulary(api: httpx.Client) -> None:
    r = api.post("/v1/extract", json={"text": "Denies essential hypertension."})
    assert r.status_code == 200, r.text
    body = r.json()
    assert "index terms from 2025" in body["extractor"]
    (fact,) = body["facts"]
    assert (fact["text"], fact["assertion"]) == ("essential hypertension", "negated")


def test_validate_reports_rule_issues_with_citations(api: httpx.Client) -> None:
    r = api.post("/v1/validate", json={"codes": ["E11", "E11.65", "S72.001"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["valid"] is False and body["year"] == "2025"
    errors = {(i["kind"], tuple(i["codes"])) for i in body["issues"] if i["severity"] == "error"}
    assert errors == {("not_billable", ("E11",)), ("missing_7th_character", ("S72.001",))}
    assert [c["sequence"] for c in body["codes"]] == [1, 2, 3]
    assert api.post("/v1/validate", json={"codes": ["E11.65"]}).json()["valid"] is True
    assert api.post("/v1/validate", json={"codes": []}).status_code == 422
    assert api.post("/v1/validate", params={"year": "2031"},
                    json={"codes": ["E11.65"]}).status_code == 404


def test_code_returns_codes_with_evidence_and_validation(api: httpx.Client) -> None:
    r = api.post("/v1/code", json={"text": "Assessment: type 2 diabetes mellitus with "
                                            "hyperglycemia.", "setting": "outpatient"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["year"], body["chooser"], body["setting"]) == ("2025", "rules", "outpatient")
    assert [c["code"] for c in body["codes"]] == ["E11.65"]
    assert body["codes"][0]["evidence"][0]["text"].startswith("type 2 diabetes mellitus")
    assert body["validation"]["valid"] is True
    assert api.post("/v1/code", json={"text": ""}).status_code == 422
