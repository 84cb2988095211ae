from pathlib import Path

import pytest

from ingest.parsers.order_file import OrderFileError, parse_order_file
from ingest.parsers.tabular import TabularParseError, parse_tabular, seventh_character_code
from tests.mini_sources import write_mini_sources


def test_seventh_character_code_pads_with_placeholder_x() -> None:
    assert seventh_character_code("S72.001", "A") == "S72.001A"
    assert seventh_character_code("S00.00", "A") == "S00.00XA"
    assert seventh_character_code("O40.1", "0") == "O40.1XX0"
    assert seventh_character_code("T07", "D") == "T07.XXXD"


def test_fixture_tabular_structure_notes_and_seventh_characters(tmp_path: Path) -> None:
    result = parse_tabular(write_mini_sources(tmp_path) / "tabular.xml")
    by_code = {e.code: e for e in result.entries}
    assert by_code["chapter:4"].kind == "chapter"
    assert by_code["E08-E13"].kind == "block"
    assert by_code["E11"].kind == "category"
    assert by_code["E11.2"].kind == "subcategory" and not by_code["E11.2"].billable
    assert by_code["E11.65"].billable and by_code["E11.65"].parent == "E11.6"
    kinds = [(n.kind, n.text) for n in by_code["E11"].notes]
    assert ("excludes1", "type 1 diabetes mellitus (E10.-)") in kinds
    assert ("use_additional_code", "code to identify control using insulin (Z79.4)") in kinds
    assert next(n.text for n in by_code["I10"].notes if n.kind == "inclusion_term") == (
        "high blood pressure"
    )
    # 7th characters: the leaf takes them, so the leaf is not billable; its extensions are.
    assert not by_code["S72.001"].billable
    assert by_code["S72.001A"].billable and by_code["S72.001A"].generated
    assert by_code["S72.001A"].seventh_from == "S72"
    assert by_code["S72.002S"].title.endswith(", sequela")


def test_real_tabular_counts_and_billable_cross_check(fy2025: Path, tmp_path: Path) -> None:
    import zipfile

    result = parse_tabular(fy2025 / "icd10cm-tabular-April-2025.xml")
    assert result.version == "2025"
    assert result.malformed == []
    billable = {e.code for e in result.entries if e.billable}
    with zipfile.ZipFile(fy2025 / "2025-code-descriptions-tabular-order-april.zip") as zf:
        name = next(n for n in zf.namelist() if n.endswith("icd10cm_order_2025.txt"))
        zf.extract(name, tmp_path)
    order = parse_order_file(tmp_path / name)
    valid = {o.code for o in order if o.billable}
    assert len(valid) == 74260
    # Every CMS-valid code is a Tabular leaf or 7th-character extension...
    assert valid <= billable
    # ...and the only extras are S06 codes whose 6th character 7/8 excludes 7th characters D/S.
    extras = billable - valid
    assert len(extras) == 76
    assert all(c.startswith("S06.") and c[-2] in "78" and c[-1] in "DS" for c in extras)
    by_code = {e.code: e for e in result.entries}
    assert by_code["E11.65"].title == "Type 2 diabetes mellitus with hyperglycemia"
    assert by_code["E08.3211"].billable and by_code["E08.3211"].seventh_from == "E08.32"
    # A block holding one category gets a range id, so block and category stay distinct.
    assert by_code["B10-B10"].kind == "block" and by_code["B10"].parent == "B10-B10"
    assert len(by_code) == len(result.entries)


def test_truncated_and_wrong_kind_tabular_raise_naming_the_file(tmp_path: Path) -> None:
    good = (write_mini_sources(tmp_path / "src") / "tabular.xml").read_bytes()
    truncated = tmp_path / "tab-truncated.xml"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(TabularParseError, match=r"tab-truncated\.xml: not well-formed XML"):
        parse_tabular(truncated)
    wrong = tmp_path / "index-as-tabular.xml"
    wrong.write_bytes((tmp_path / "src" / "index.xml").read_bytes())
    with pytest.raises(TabularParseError, match=r"index-as-tabular.xml: not an ICD-10-CM Tabular"):
        parse_tabular(wrong)


def test_order_file_layout_errors_name_the_line(tmp_path: Path) -> None:
    src = write_mini_sources(tmp_path)
    records = parse_order_file(src / "icd10cm_order_2025.txt")
    assert records[4].code == "E11.65" and records[4].billable
    bad = tmp_path / "order_bad.txt"
    bad.write_text((src / "icd10cm_order_2025.txt").read_text() + "garbage line\n")
    with pytest.raises(OrderFileError, match=r"order_bad.txt: line 19"):
        parse_order_file(bad)
