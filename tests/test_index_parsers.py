"""Index parsers (Alphabetic Index, External Cause Index, Neoplasm Table, Table of Drugs)
and see / see-also resolution: small files in CDC's schema written here, the real FY2025
files from ../shared, and broken files."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ingest.parsers.alphabetic_index import (
    IndexParseError,
    IndexParseResult,
    detect_index_kind,
    parse_index,
)
from ingest.parsers.cross_references import resolve_see_references, summarize
from ingest.records import IndexTerm, SeeReference, TableCell
from tests.conftest import FY2025

REAL_FILES = {
    "index": "icd10cm-index-2025-reconstructed.xml",
    "eindex": "icd-10-cm-eindex-2025.xml",
    "neoplasm": "icd-10-cm-neoplasm-2025.xml",
    "drug": "icd-10-cm-drug-2025.xml",
}

# --------------------------------------------------------------------------- fixture files
# CDC's real schema, with everything the reconstructed FY2025 index lacks: <manif>,
# <seecat>, <subcat>, two <code>s on one term and title text after <nemod>.

INDEX_XML = """<?xml version="1.0" encoding="utf-8"?>
<ICD10CM.index>
  <version>2025</version>
  <title>ICD-10-CM INDEX TO DISEASES and INJURIES</title>
  <letter>
    <title>A</title>
    <mainTerm>
      <title>Abandonment<nemod>(causing exposure to weather conditions)</nemod> NEC</title>
      <code>X58</code>
    </mainTerm>
    <mainTerm>
      <title>Abdomen, abdominal</title>
      <seeAlso>condition</seeAlso>
      <term level="1">
        <title>acute</title>
        <code>R10.0</code>
      </term>
    </mainTerm>
    <mainTerm>
      <title>Abdominalgia</title>
      <see>Pain, abdominal</see>
    </mainTerm>
    <mainTerm>
      <title>Amyloid heart<nemod>(disease)</nemod></title>
      <code>E85.4</code>
      <manif>I43</manif>
    </mainTerm>
  </letter>
  <letter>
    <title>C</title>
    <mainTerm>
      <title>Cataract<nemod>(senile)</nemod></title>
      <code>H26.9</code>
      <term level="1">
        <title>diabetic</title>
        <see>Diabetes, cataract</see>
      </term>
      <term level="1">
        <title>drug-induced</title>
        <seeAlso>Table of Drugs and Chemicals</seeAlso>
      </term>
    </mainTerm>
  </letter>
  <letter>
    <title>D</title>
    <mainTerm>
      <title>Diabetes, diabetic<nemod>(mellitus) (sugar)</nemod></title>
      <code>E11.9</code>
      <term level="1">
        <title>with</title>
        <term level="2">
          <title>cataract</title>
          <code>E11.36</code>
        </term>
        <term level="2">
          <title>nephropathy</title>
          <code>E11.21</code>
          <code>N08</code>
        </term>
      </term>
    </mainTerm>
  </letter>
  <letter>
    <title>L</title>
    <mainTerm>
      <title>Lightning<nemod>(shock) (stroke) (struck by)</nemod></title>
      <subcat>T75.0</subcat>
      <term level="1">
        <title>causing fire</title>
        <see>Exposure, fire</see>
      </term>
    </mainTerm>
    <mainTerm>
      <title>Lump</title>
      <see>Mass; and see also Neoplasm, lung, malignant</see>
    </mainTerm>
  </letter>
  <letter>
    <title>P</title>
    <mainTerm>
      <title>Pain<nemod>(s)</nemod></title>
      <code>R52</code>
      <term level="1">
        <title>abdominal</title>
        <code>R10.9</code>
      </term>
    </mainTerm>
  </letter>
  <letter>
    <title>S</title>
    <mainTerm>
      <title>Strangulation<nemod>(accidental)</nemod></title>
      <seecat>T71</seecat>
    </mainTerm>
  </letter>
</ICD10CM.index>
"""

NEOPLASM_XML = """<?xml version="1.0" encoding="utf-8"?>
<ICD10CM.index>
  <version>2025</version>
  <indexHeading>
    <head col="1">Neoplasm</head>
    <head col="2">Malignant Primary</head>
    <head col="3">Malignant Secondary</head>
    <head col="4">Ca in situ</head>
    <head col="5">Benign</head>
    <head col="6">Uncertain Behavior</head>
    <head col="7">Unspecified Behavior</head>
  </indexHeading>
  <letter>
    <title>N</title>
    <mainTerm>
      <title>Neoplasm, neoplastic</title>
      <cell col="2">C80.1</cell>
      <cell col="3">C79.9</cell>
      <cell col="4">D09.9</cell>
      <cell col="5">D36.9</cell>
      <cell col="6">D48.9</cell>
      <cell col="7">D49.9</cell>
      <term level="1">
        <title>book-leaf<nemod>(mouth)</nemod></title>
        <manif>ventral surface of tongue and floor of mouth</manif>
        <cell col="2">C06.89</cell>
        <cell col="3">C79.89</cell>
        <cell col="4">-</cell>
      </term>
      <term level="1">
        <title>lung</title>
        <cell col="2">C34.9-</cell>
        <cell col="3">C78.0-</cell>
        <cell col="4">D02.2-</cell>
        <cell col="5">D14.3-</cell>
        <cell col="6">D38.1</cell>
        <cell col="7">D49.1</cell>
      </term>
    </mainTerm>
  </letter>
</ICD10CM.index>
"""

# Columns deliberately out of the usual order: keys must follow the heading text.
DRUG_XML = """<?xml version="1.0" encoding="utf-8"?>
<ICD10CM.index>
  <version>2025</version>
  <indexHeading>
    <head col="1">Substance</head>
    <head col="2">Adverse effect</head>
    <head col="3">Poisoning Accidental (unintentional)</head>
    <head col="4">Poisoning Intentional self-harm</head>
    <head col="5">Poisoning Assault</head>
    <head col="6">Poisoning Undetermined</head>
    <head col="7">Underdosing</head>
  </indexHeading>
  <letter>
    <title>A</title>
    <mainTerm>
      <title>Acetaminophen</title>
      <cell col="2">T39.1X5</cell>
      <cell col="3">T39.1X1</cell>
      <cell col="4">T39.1X2</cell>
      <cell col="5">T39.1X3</cell>
      <cell col="6">T39.1X4</cell>
      <cell col="7">T39.1X6</cell>
    </mainTerm>
    <mainTerm>
      <title>Acetone<nemod>(oils)</nemod></title>
      <cell col="2">--</cell>
      <cell col="3">T52.4X1</cell>
      <cell col="4">T52.4X2</cell>
      <cell col="5">T52.4X3</cell>
      <cell col="6">T52.4X4</cell>
      <cell col="7">--</cell>
    </mainTerm>
  </letter>
</ICD10CM.index>
"""

TABULAR_XML = """<?xml version="1.0" encoding="utf-8"?>
<ICD10CM.tabular>
  <version>2025</version>
  <chapter><name>1</name><desc>Certain infectious and parasitic diseases (A00-B99)</desc></chapter>
</ICD10CM.tabular>
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def index_file(tmp_path: Path) -> Path:
    return _write(tmp_path, "a.xml", INDEX_XML)


@pytest.fixture
def neoplasm_file(tmp_path: Path) -> Path:
    return _write(tmp_path, "b.xml", NEOPLASM_XML)


@pytest.fixture
def drug_file(tmp_path: Path) -> Path:
    return _write(tmp_path, "c.xml", DRUG_XML)


# --------------------------------------------------------------------------- fixture: index


def test_index_fixture_exact_records(index_file: Path) -> None:
    result = parse_index(index_file, "index", start_id=100)

    def term(i: int, parent: int | None, level: int, path: list[str], **kw: str) -> IndexTerm:
        return IndexTerm(
            id=i,
            source="index",
            parent_id=parent,
            level=level,
            title=path[-1],
            nemod=kw.pop("nemod", ""),
            path=path,
            **kw,
        )

    assert result.terms == [
        term(
            100,
            None,
            0,
            ["Abandonment NEC"],  # text after <nemod> stays in the title
            nemod="(causing exposure to weather conditions)",
            code="X58",
        ),
        term(101, None, 0, ["Abdomen, abdominal"], see_also="condition"),
        term(102, 101, 1, ["Abdomen, abdominal", "acute"], code="R10.0"),
        term(103, None, 0, ["Abdominalgia"], see="Pain, abdominal"),
        term(104, None, 0, ["Amyloid heart"], nemod="(disease)", code="E85.4", manif="I43"),
        term(105, None, 0, ["Cataract"], nemod="(senile)", code="H26.9"),
        term(106, 105, 1, ["Cataract", "diabetic"], see="Diabetes, cataract"),
        term(107, 105, 1, ["Cataract", "drug-induced"], see_also="Table of Drugs and Chemicals"),
        term(108, None, 0, ["Diabetes, diabetic"], nemod="(mellitus) (sugar)", code="E11.9"),
        term(109, 108, 1, ["Diabetes, diabetic", "with"]),
        term(110, 109, 2, ["Diabetes, diabetic", "with", "cataract"], code="E11.36"),
        term(111, 109, 2, ["Diabetes, diabetic", "with", "nephropathy"], code="E11.21"),
        term(
            112,
            None,
            0,
            ["Lightning"],
            nemod="(shock) (stroke) (struck by)",
            subcat="T75.0",
        ),
        term(113, 112, 1, ["Lightning", "causing fire"], see="Exposure, fire"),
        term(114, None, 0, ["Lump"], see="Mass; and see also Neoplasm, lung, malignant"),
        term(115, None, 0, ["Pain"], nemod="(s)", code="R52"),
        term(116, 115, 1, ["Pain", "abdominal"], code="R10.9"),
        term(117, None, 0, ["Strangulation"], nemod="(accidental)", seecat="T71"),
    ]
    assert result.extra_codes == {111: ["N08"]}  # the second <code>
    assert result.extra_manifs == {}
    assert result.cells == []
    assert result.column_labels == {}
    assert result.kind == "index"
    assert result.version == "2025"
    assert result.quirks == []
    assert result.next_id == 118
    assert detect_index_kind(index_file) == "index"


def test_nemod_beside_title_and_bracketed_manif(tmp_path: Path) -> None:
    # Some CDC years put <nemod> next to <title> and print manifestations in brackets.
    path = _write(
        tmp_path,
        "x.xml",
        INDEX_XML.replace(
            "<title>Amyloid heart<nemod>(disease)</nemod></title>",
            "<title>Amyloid heart</title><nemod>(disease)</nemod>",
        ).replace("<manif>I43</manif>", "<manif>[I43]</manif><manif>I43.8</manif>"),
    )
    result = parse_index(path, "index")
    amyloid = next(t for t in result.terms if t.title == "Amyloid heart")
    assert (amyloid.nemod, amyloid.code, amyloid.manif) == ("(disease)", "E85.4", "I43")
    assert result.extra_manifs == {amyloid.id: ["I43.8"]}


# --------------------------------------------------------------------------- fixture: tables


def test_neoplasm_fixture_cells_and_manif_quirk(neoplasm_file: Path) -> None:
    result = parse_index(neoplasm_file, "neoplasm")
    assert [(t.id, t.parent_id, t.level, t.path, t.nemod) for t in result.terms] == [
        (1, None, 0, ["Neoplasm, neoplastic"], ""),
        # A <manif> holding text (a FY2025 data quirk) becomes part of the title.
        (
            2,
            1,
            1,
            ["Neoplasm, neoplastic", "book-leaf ventral surface of tongue and floor of mouth"],
            "(mouth)",
        ),
        (3, 1, 1, ["Neoplasm, neoplastic", "lung"], ""),
    ]
    assert all(t.manif is None and t.code is None for t in result.terms)
    assert len(result.quirks) == 1 and "non-code <manif>" in result.quirks[0]

    def cell(term_id: int, column: str, label: str, code: str) -> TableCell:
        return TableCell(term_id, "neoplasm", column, label, code)

    assert result.cells[6:] == [
        cell(2, "malignant_primary", "Malignant Primary", "C06.89"),
        cell(2, "malignant_secondary", "Malignant Secondary", "C79.89"),
        # "-" means no code: no cell
        cell(3, "malignant_primary", "Malignant Primary", "C34.9-"),
        cell(3, "malignant_secondary", "Malignant Secondary", "C78.0-"),
        cell(3, "in_situ", "Ca in situ", "D02.2-"),
        cell(3, "benign", "Benign", "D14.3-"),
        cell(3, "uncertain_behavior", "Uncertain Behavior", "D38.1"),
        cell(3, "unspecified_behavior", "Unspecified Behavior", "D49.1"),
    ]
    assert len(result.cells) == 14
    assert result.kind == "neoplasm"
    assert result.column_labels["in_situ"] == "Ca in situ"
    assert detect_index_kind(neoplasm_file) == "neoplasm"


def test_drug_columns_follow_heading_text_not_position(drug_file: Path) -> None:
    result = parse_index(drug_file, "drug")
    cells = {(c.term_id, c.column): c.code for c in result.cells}
    assert cells[(1, "adverse_effect")] == "T39.1X5"  # heading in col 2 here
    assert cells[(1, "poisoning_accidental")] == "T39.1X1"
    assert cells[(1, "underdosing")] == "T39.1X6"
    assert (2, "adverse_effect") not in cells  # "--"
    assert len(result.cells) == 10
    assert {c.table for c in result.cells} == {"drug"}
    assert result.terms[1].title == "Acetone" and result.terms[1].nemod == "(oils)"
    assert detect_index_kind(drug_file) == "drug"


def test_unknown_table_heading_is_an_error(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "odd.xml", NEOPLASM_XML.replace("Uncertain Behavior", "Borderline Behavior")
    )
    with pytest.raises(IndexParseError, match=r"odd\.xml.*'Borderline Behavior'.*column 6"):
        parse_index(path, "neoplasm")
    # Still recognisably the Neoplasm Table (its first heading): the parser says what is wrong.
    assert detect_index_kind(path) == "neoplasm"


# --------------------------------------------------------------------------- fixture: see


def test_see_resolution_on_fixture(index_file: Path, neoplasm_file: Path, drug_file: Path) -> None:
    index = parse_index(index_file, "index")
    neoplasm = parse_index(neoplasm_file, "neoplasm", start_id=index.next_id)
    drug = parse_index(drug_file, "drug", start_id=neoplasm.next_id)
    terms = index.terms + neoplasm.terms + drug.terms
    by_path = {(t.source, t.path_text): t.id for t in terms}
    refs = resolve_see_references(terms)

    def ref(path: str, kind: str, target: str, to: str | None, reason: str = "") -> SeeReference:
        source = "neoplasm" if to and to.startswith("Neoplasm") else "index"
        target_id = by_path[(source, to)] if to else None
        return SeeReference(by_path[("index", path)], kind, target, target_id, reason)

    assert refs == [
        ref("Abdomen, abdominal", "see_also", "condition", None, "generic: 'condition'"),
        ref("Abdominalgia", "see", "Pain, abdominal", "Pain > abdominal"),
        # "with" is skipped: it is printed as Diabetes > with > cataract
        ref(
            "Cataract > diabetic",
            "see",
            "Diabetes, cataract",
            "Diabetes, diabetic > with > cataract",
        ),
        ref(
            "Cataract > drug-induced",
            "see_also",
            "Table of Drugs and Chemicals",
            None,
            "table: drug (Table of Drugs and Chemicals)",
        ),
        # No "Exposure" or "Mass" main term in these files.
        ref("Lightning > causing fire", "see", "Exposure, fire", None, "unresolved"),
        # One <see> holding two targets.
        ref("Lump", "see", "Mass", None, "unresolved"),
        ref(
            "Lump",
            "see",
            "Neoplasm, lung, malignant",
            "Neoplasm, neoplastic > lung",
            "column: malignant_primary",
        ),
    ]
    assert summarize(refs) == {
        "resolved": 3,
        "resolved_via": 0,
        "table": 1,
        "generic": 1,
        "unresolved": 2,
    }


def test_main_term_with_commas_and_longest_prefix(index_file: Path) -> None:
    terms = parse_index(index_file, "index").terms
    by_id = {t.id: t for t in terms}
    probe = IndexTerm(999, "index", None, 0, "Probe", "", ["Probe"])
    for target, path in [
        ("Diabetes, diabetic, with, cataract", "Diabetes, diabetic > with > cataract"),
        ("Diabetes, with, nephropathy", "Diabetes, diabetic > with > nephropathy"),
        ("diabetes, WITH, Cataract", "Diabetes, diabetic > with > cataract"),
        ("Pains, abdominal", "Pain > abdominal"),  # plural folded
        ("Abandonment", "Abandonment NEC"),  # NEC suffix ignored
    ]:
        probe.see = target
        (found,) = resolve_see_references([*terms, probe])[-1:]
        assert found.target_term_id is not None, target
        assert by_id[found.target_term_id].path_text == path, target


def test_skipped_level_is_reported_as_via() -> None:
    # "see History, allergy" when the index prints History > family > allergy NEC.
    terms = [
        IndexTerm(1, "index", None, 0, "History", "", ["History"]),
        IndexTerm(2, "index", 1, 1, "family", "(of)", ["History", "family"]),
        IndexTerm(3, "index", 2, 2, "allergy NEC", "", ["History", "family", "allergy NEC"]),
        IndexTerm(4, "index", None, 0, "Allergy", "", ["Allergy"], see="History, allergy"),
        IndexTerm(5, "index", None, 0, "Atopy", "", ["Atopy"], see="History, smoking"),
    ]
    via, missing = resolve_see_references(terms)
    assert via == SeeReference(4, "see", "History, allergy", 3, "via: skipped sub-term 'family'")
    assert missing == SeeReference(
        5, "see", "History, smoking", None, "unresolved: no sub-term 'smoking' under 'History'"
    )
    assert summarize([via, missing])["resolved_via"] == 1


# --------------------------------------------------------------------------- broken files


def test_truncated_file_names_the_file(index_file: Path, tmp_path: Path) -> None:
    data = index_file.read_bytes()
    cut = _write(tmp_path, "cut.xml", "")
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexParseError, match=r"cut\.xml.*not well-formed"):
        parse_index(cut, "index")


def test_wrong_root_and_empty_content(tmp_path: Path) -> None:
    tabular = _write(tmp_path, "tab.xml", TABULAR_XML)
    with pytest.raises(IndexParseError, match=r"tab\.xml.*<ICD10CM\.tabular>"):
        parse_index(tabular, "index")
    assert detect_index_kind(tabular) is None

    empty = _write(tmp_path, "empty.xml", "")
    with pytest.raises(IndexParseError, match=r"empty\.xml: empty file"):
        parse_index(empty, "index")

    no_terms = _write(
        tmp_path, "none.xml", "<ICD10CM.index><version>2025</version></ICD10CM.index>"
    )
    with pytest.raises(IndexParseError, match=r"none\.xml: no <mainTerm>"):
        parse_index(no_terms, "index")

    not_xml = _write(tmp_path, "notes.txt", "just some text, not XML")
    assert detect_index_kind(not_xml) is None


# --------------------------------------------------------------------------- real FY2025


@pytest.fixture(scope="module")
def real_dir() -> Path:
    missing = [n for n in REAL_FILES.values() if not (FY2025 / n).is_file()]
    if missing:
        pytest.skip(
            f"{FY2025} lacks {', '.join(missing)}: the FY2025 index files (../shared) are not "
            "on this machine (set MEDCODE_SHARED to the shared folder)"
        )
    return FY2025


# Seconds spent by the fixtures below, checked by test_real_parse_and_resolve_speed.
_TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def real(real_dir: Path) -> dict[str, IndexParseResult]:
    started = time.perf_counter()
    results: dict[str, IndexParseResult] = {}
    next_id = 1
    for source, name in REAL_FILES.items():
        results[source] = parse_index(real_dir / name, source, start_id=next_id)
        next_id = results[source].next_id
    _TIMINGS["parse"] = time.perf_counter() - started
    return results


@pytest.fixture(scope="module")
def real_refs(real: dict[str, IndexParseResult]) -> list[SeeReference]:
    started = time.perf_counter()
    refs = resolve_see_references([t for r in real.values() for t in r.terms])
    _TIMINGS["resolve"] = time.perf_counter() - started
    return refs


def _find(result: IndexParseResult, path: str) -> IndexTerm:
    return next(t for t in result.terms if t.path_text == path)


def test_real_kinds_detected_from_content(real_dir: Path) -> None:
    for kind, name in REAL_FILES.items():
        assert detect_index_kind(real_dir / name) == kind
    tabular = real_dir / "icd10cm-tabular-April-2025.xml"
    if tabular.is_file():
        assert detect_index_kind(tabular) is None


def test_real_alphabetic_index_counts(real: dict[str, IndexParseResult]) -> None:
    index = real["index"]
    assert sum(t.level == 0 for t in index.terms) == 8_100
    assert sum(t.level > 0 for t in index.terms) == 72_924
    assert sum(t.code is not None for t in index.terms) == 62_721
    assert index.kind == "index" and index.extra_codes == {} and index.cells == []


def test_real_other_counts(real: dict[str, IndexParseResult]) -> None:
    # FY2025 files as published; a new year changes these.
    eindex, neoplasm, drug = real["eindex"], real["neoplasm"], real["drug"]
    assert (len(eindex.terms), sum(t.code is not None for t in eindex.terms)) == (8_064, 6_650)
    assert sum(t.seecat is not None for t in eindex.terms) == 3
    assert sum(t.subcat is not None for t in eindex.terms) == 11
    assert (len(neoplasm.terms), len(neoplasm.cells)) == (1_939, 9_018)
    assert (len(drug.terms), len(drug.cells)) == (7_428, 40_026)
    assert len(neoplasm.quirks) == 1  # the "book-leaf" <manif> holding text


def test_real_paths_and_codes(real: dict[str, IndexParseResult]) -> None:
    index = real["index"]
    assert _find(index, "Diabetes, diabetic > type 2 > with > hyperglycemia").code == "E11.65"
    assert _find(index, "Pneumonia > aspiration").code == "J69.0"
    # In FY2025 "essential" is a non-essential modifier of the main term, not a sub-term.
    hypertension = _find(index, "Hypertension, hypertensive")
    assert hypertension.code == "I10" and "(essential)" in hypertension.nemod
    assert _find(real["eindex"], "Abandonment NEC").code == "X58"

    def cells(result: IndexParseResult, path: str) -> dict[str, str]:
        term = _find(result, path)
        return {c.column: c.code for c in result.cells if c.term_id == term.id}

    lung = cells(real["neoplasm"], "Neoplasm, neoplastic > lung")
    assert lung["malignant_primary"] == "C34.9-" and lung["malignant_secondary"] == "C78.0-"
    acetaminophen = cells(real["drug"], "Acetaminophen")
    assert acetaminophen["adverse_effect"] == "T39.1X5"
    assert acetaminophen["poisoning_accidental"] == "T39.1X1"


def test_real_see_resolution(
    real: dict[str, IndexParseResult], real_refs: list[SeeReference]
) -> None:
    counts = summarize(real_refs)
    total = sum(counts.values())
    assert total > 15_000
    assert counts["unresolved"] / total < 0.01, counts
    assert counts["generic"] > 1_500  # "condition", "by site", "category ..."
    terms = {t.id: t for r in real.values() for t in r.terms}

    def resolved(source: str, target: str) -> str:
        ref = next(
            r for r in real_refs if r.target_text == target and terms[r.term_id].source == source
        )
        assert ref.target_term_id is not None, ref
        return f"{terms[ref.target_term_id].source}: {terms[ref.target_term_id].path_text}"

    assert resolved("index", "Pain, abdominal") == "index: Pain > abdominal"
    assert resolved("eindex", "Accident, transport, car occupant") == (
        "eindex: Accident > transport > car occupant"
    )
    assert (
        resolved("index", "Neoplasm, skin, benign") == "neoplasm: Neoplasm, neoplastic > skin NOS"
    )


def test_real_parse_and_resolve_speed(
    real: dict[str, IndexParseResult], real_refs: list[SeeReference]
) -> None:
    # All four files plus resolution take about 5 s on a 2-core machine; the bound is
    # generous because shared CI machines are slow, but catches a quadratic slip.
    assert _TIMINGS["parse"] + _TIMINGS["resolve"] < 30, _TIMINGS


def test_real_truncated_file(real_dir: Path, tmp_path: Path) -> None:
    data = (real_dir / REAL_FILES["eindex"]).read_bytes()
    cut = tmp_path / "eindex-half.xml"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexParseError, match=r"eindex-half\.xml"):
        parse_index(cut, "eindex")
