"""Must-show checks on the complete FY2025 index built from ../shared (scripts/test.sh)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.code_info import code_info
from service.index_registry import IndexRegistry
from service.lookup import lookup, lookup_many

pytestmark = pytest.mark.full_index


@pytest.fixture(scope="module")
def registry(full_index_dir: Path) -> IndexRegistry:
    return IndexRegistry(full_index_dir)


@pytest.fixture(scope="module")
def report(full_index_dir: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((full_index_dir / "2025" / "build_report.json").read_text())


def test_counts_meet_the_floor(report: dict) -> None:  # type: ignore[type-arg]
    c = report["counts"]
    assert c["billable_codes"] == 74260  # exactly the CMS order file
    assert c["index_paths"] >= 70000
    assert c["guideline_sections"] > 300
    assert c["neoplasm_rows"] > 1500 and c["drug_rows"] > 7000
    assert c["table_cells"] == 9018 + 40026  # Neoplasm + Drug table cells with a code


def test_every_guideline_outline_entry_has_a_section(report: dict) -> None:  # type: ignore[type-arg]
    assert report["guideline_outline_missing"] == []


def test_no_unexplained_dangling_references(report: dict) -> None:  # type: ignore[type-arg]
    for kind in ("dangling_index_code", "dangling_table_code", "dangling_note_ref",
                 "billable_mismatch", "order_code_missing"):
        assert report["issues"].get(kind, {}).get("unexplained", 0) == 0, kind


@pytest.mark.parametrize(
    ("query", "code", "within"),
    [
        ("type 2 diabetes with hyperglycemia", "E11.65", 1),
        ("essential hypertension", "I10", 1),
        ("aspiration pneumonia", "J69.0", 3),
    ],
)
def test_lookup_must_show(registry: IndexRegistry, query: str, code: str, within: int) -> None:
    index = registry.get("2025")
    hits = lookup(index, query, registry.embedder, 10)
    assert code in [h.code for h in hits[:within]], [(h.code, h.score) for h in hits[:5]]


def test_code_info_e11_65(registry: IndexRegistry) -> None:
    index = registry.get("2025")
    info = code_info(index.codebook, "2025", "E11.65")
    assert info is not None and info.billable
    paths = [p.path for p in info.index_paths]
    assert "Diabetes, diabetic > type 2 > with > hyperglycemia" in paths
    kinds = {(n.kind, n.from_code) for n in info.notes}
    assert ("use_additional_code", "E11") in kinds and ("excludes1", "E11") in kinds
    s = code_info(index.codebook, "2025", "S72.001")
    assert s is not None and s.seventh_characters is not None
    assert s.seventh_characters.defined_at == "S72"
    assert {o.code for o in s.seventh_characters.options} >= {"S72.001A", "S72.001D"}


def test_guideline_passage_is_whole_and_cited(registry: IndexRegistry) -> None:
    db = registry.get("2025").codebook.db
    title, text, page = db.execute(
        "SELECT title, text, page_start FROM guideline_sections WHERE citation = 'I.C.9.a.2'"
    ).fetchone()
    assert title == "Hypertensive Chronic Kidney Disease" and page == 49
    assert "I12" in text and "N18" in text
    (parent_text,) = db.execute(
        "SELECT text FROM guideline_sections WHERE citation = 'I.C.9.a'").fetchone()
    assert "presumes a causal relationship" in parent_text


def test_batched_lookup_gives_the_same_hits(registry: IndexRegistry) -> None:
    index = registry.get("2025")
    queries = ["aspiration pneumonia", "chronic kidney disease stage 4", "renal colic",
               "aspiration pneumonia"]
    batched = lookup_many(index, queries, registry.embedder, 10)
    assert list(batched) == queries[:3]  # one lookup per distinct query
    for query in queries[:3]:
        one = lookup(index, query, registry.embedder, 10)
        assert [(h.code, h.matched.source) for h in batched[query]] == \
            [(h.code, h.matched.source) for h in one]
        assert [h.score for h in batched[query]] == pytest.approx([h.score for h in one],
                                                                   abs=1e-3)


def test_a_query_may_search_the_vectors_of_another_text(registry: IndexRegistry) -> None:
    # "sepsis acute": "acute" counts in the lexical match; the vector search is the term's.
    index = registry.get("2025")
    mapped = lookup_many(index, ["sepsis acute"], registry.embedder, 20,
                         {"sepsis acute": "sepsis"})["sepsis acute"]
    own = lookup_many(index, ["sepsis acute"], registry.embedder, 20)["sepsis acute"]
    term = {h.code: h.semantic for h in lookup_many(index, ["sepsis"], registry.embedder,
                                                     20)["sepsis"]}
    assert any(h.semantic for h in mapped)
    for hit in mapped:
        if hit.semantic and hit.code in term:
            assert hit.semantic == pytest.approx(term[hit.code], abs=1e-6)
    assert [h.lexical for h in mapped if h.code == "A41.9"] == \
        [h.lexical for h in own if h.code == "A41.9"]


def test_a_code_written_without_its_seventh_character(registry: IndexRegistry) -> None:
    codebook = registry.get("2025").codebook
    assert codebook.truncated_seventh("S80.02X")  # S80.02XA, S80.02XD, S80.02XS
    assert codebook.truncated_seventh("W19.XXX")
    assert not codebook.truncated_seventh("S80.02")  # a code of its own
    assert not codebook.truncated_seventh("E11.9X")  # nothing under it


def test_a_site_the_index_sends_to_disease(registry: IndexRegistry) -> None:
    codebook = registry.get("2025").codebook
    assert codebook.unlisted_site_entry("mass", "testis") == (
        "Mass > specified organ NEC → Disease, diseased > testis", "N50.9")
    assert codebook.unlisted_site_entry("Lesion", "kidney") == (
        "Lesion > organ or site NEC → Disease, diseased > kidney", "N28.9")
    assert codebook.unlisted_site_entry("mass", "kidney") is None  # "Mass > kidney" is listed
    assert codebook.unlisted_site_entry("cough", "testis") is None  # no such sub-term
    assert codebook.unlisted_site_entry("mass", "elbow joint") is None  # no "Disease" entry
