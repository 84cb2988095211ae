"""Official Guidelines PDF parser: the real FY2025 file, a tiny PDF built here, broken files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ingest.parsers.guidelines import (
    GuidelinesParseError,
    GuidelinesResult,
    classify_line,
    looks_like_guidelines,
    parse_guidelines,
)
from ingest.records import GuidelineSection
from tests.conftest import FY2025

REAL_PDF = FY2025 / "fy-2025-icd-10-cm-coding-guidelines.pdf"


def _norm(title: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", title.casefold())


# --------------------------------------------------------------------------- real file


@pytest.fixture(scope="module")
def real_pdf() -> Path:
    if not REAL_PDF.is_file():
        pytest.skip(f"../shared/sources not present: {REAL_PDF} (set MEDCODE_SHARED)")
    return REAL_PDF


@pytest.fixture(scope="module")
def real(real_pdf: Path) -> GuidelinesResult:
    return parse_guidelines(real_pdf)


@pytest.fixture(scope="module")
def by_citation(real: GuidelinesResult) -> dict[str, GuidelineSection]:
    return {s.citation: s for s in real.sections}


def test_real_outline_is_fully_covered(
    real: GuidelinesResult, by_citation: dict[str, GuidelineSection]
) -> None:
    assert real.fiscal_year == "2025"
    assert real.page_count == 120
    cites = [e.citation for e in real.outline]
    # Pages 2-6 list Sections I-IV down to lowercase letters, plus Intro and Appendix I.
    assert len(cites) == 227 and len(set(cites)) == len(cites)
    assert cites[:3] == ["Intro", "I", "I.A"] and cites[-2:] == ["IV.Q", "Appendix I"]
    assert {"II.K", "III.C", "I.C.22", "I.C.19.g", "I.C.15.s"} <= set(cites)
    assert real.missing_from_outline == []
    for entry in real.outline:
        section = by_citation[entry.citation]
        assert _norm(section.title) == _norm(entry.title), entry
        assert section.page_start == entry.page, entry


@pytest.mark.parametrize(
    ("citation", "title", "page", "keywords"),
    [
        ("I.C.4.a.2", "Type of diabetes mellitus not documented", 39, ["E11.-", "default"]),
        ("I.C.9.a.2", "Hypertensive Chronic Kidney Disease", 49, ["I12", "N18", "not related"]),
        ("I.A.15", "“With”", 11, ["causal relationship", "in the absence of provider"]),
        ("IV.H", "Uncertain diagnosis", 112, ["probable", "highest degree of certainty"]),
        ("II.H", "Uncertain Diagnosis", 107, ["probable", "as if it existed"]),
        ("I.C.19.a", "Application of 7th Characters in Chapter 19", 76, ["active treatment"]),
        ("I.B.10", "Sequela (Late Effects)", 14, ["residual effect"]),
        # Deeper levels the outline does not list: (l) under 1), roman (iv), (i) after (h).
        ("I.C.1.g.1.l", "Multisystem Inflammatory Syndrome", 31, ["M35.81"]),
        (
            "I.C.1.d.1.a.iv",
            "Acute organ dysfunction that is not clearly associated with the sepsis",
            23,
            ["acute organ dysfunction"],
        ),
        ("I.C.1.a.2.i", "HIV managed by antiretroviral medication", 21, ["Z79.899"]),
        ("Appendix I", "Present on Admission Reporting Guidelines", 115, ["POA indicator"]),
    ],
)
def test_real_spot_checks(
    by_citation: dict[str, GuidelineSection],
    citation: str,
    title: str,
    page: int,
    keywords: list[str],
) -> None:
    section = by_citation[citation]
    assert section.title == title
    assert section.page_start == page
    for word in keywords:
        assert word in section.text, (citation, word)


def test_real_presumed_causal_relationship_sits_in_the_hypertension_intro(
    by_citation: dict[str, GuidelineSection],
) -> None:
    # In FY2025 the presumption is stated once, in I.C.9.a's own text, not in a.2.
    assert "presumes a causal relationship" in by_citation["I.C.9.a"].text
    assert "presume" not in by_citation["I.C.9.a.2"].text


def test_real_text_has_no_page_headers_and_keeps_plain_lists_in_the_body(
    real: GuidelinesResult, by_citation: dict[str, GuidelineSection]
) -> None:
    for s in real.sections:
        assert not re.search(r"Page \d+ of 120", s.text), s.citation
        lines = s.text.splitlines()
        assert "FY 2025" not in lines, s.citation
        assert not any(
            re.fullmatch(r"ICD-10-CM Official Guidelines for Coding and ?Reporting", x)
            for x in lines
        ), s.citation
    # "a. When the reason ..." is a plain list inside burns rule 1), not heading I.C.19.d.1.a.
    assert "I.C.19.d.1.a" not in by_citation
    assert "\na. When the reason for the admission" in by_citation["I.C.19.d.1"].text
    # The preamble keeps its words intact ("health", not pypdf's "heal th").
    assert "in all health care settings" in by_citation["Intro"].text
    assert real.rejected_markers == []


def test_real_tree_is_consistent(real: GuidelinesResult) -> None:
    seen: dict[str, GuidelineSection] = {}
    for n, s in enumerate(real.sections):
        assert s.ordinal == n
        assert s.citation not in seen
        assert 1 <= s.page_start <= s.page_end <= 120
        if s.parent is None:
            assert s.level == 1
        else:
            parent = seen[s.parent]  # parents exist and come first
            assert s.level == parent.level + 1
            assert s.citation.startswith(parent.citation + ".")
        seen[s.citation] = s
    tops = [s.citation for s in real.sections if s.parent is None]
    assert tops == ["Intro", "I", "II", "III", "IV", "Appendix I"]
    per_section = {
        top: sum(1 for s in real.sections if s.citation.split(".")[0] == top)
        for top in ("I", "II", "III", "IV")
    }
    assert per_section == {"I": 444, "II": 14, "III": 4, "IV": 23}


def test_real_file_is_recognised_by_content(real_pdf: Path, tmp_path: Path) -> None:
    renamed = tmp_path / "whatever.bin"
    renamed.write_bytes(real_pdf.read_bytes())
    assert looks_like_guidelines(renamed)


def test_truncated_real_file_raises_naming_the_file(real_pdf: Path, tmp_path: Path) -> None:
    data = real_pdf.read_bytes()
    cut = tmp_path / real_pdf.name
    cut.write_bytes(data[: int(len(data) * 0.3)])
    with pytest.raises(
        GuidelinesParseError,
        match=r"fy-2025-icd-10-cm-coding-guidelines\.pdf: "
        r"not a PDF \(truncated or corrupt\): EOF marker not found",
    ):
        parse_guidelines(cut)
    assert not looks_like_guidelines(cut)


# --------------------------------------------------------------------------- broken files


def test_non_pdf_raises_naming_the_file(tmp_path: Path) -> None:
    fake = tmp_path / "guidelines.pdf"
    fake.write_text("<html>not found</html>")
    with pytest.raises(GuidelinesParseError, match=r"^guidelines\.pdf: not a PDF"):
        parse_guidelines(fake)
    assert not looks_like_guidelines(fake)
    with pytest.raises(GuidelinesParseError, match=r"^absent\.pdf: file not found"):
        parse_guidelines(tmp_path / "absent.pdf")


def test_other_pdf_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "minutes.pdf"
    other.write_bytes(_tiny_pdf([[(72, 700, "R", "Meeting minutes")]]))
    assert not looks_like_guidelines(other)
    with pytest.raises(GuidelinesParseError, match=r"^minutes\.pdf: not the ICD-10-CM Official"):
        parse_guidelines(other)


def test_page_headers_reveal_a_repaired_short_file(tmp_path: Path) -> None:
    pages = _tiny_pages()
    short = tmp_path / "short.pdf"
    short.write_bytes(_tiny_pdf(pages[:3]))  # headers still say "Page n of 4"
    with pytest.raises(GuidelinesParseError, match=r"^short\.pdf: truncated: .* 4 pages, .* 3"):
        parse_guidelines(short)


# --------------------------------------------------------------------------- tiny PDF


def test_tiny_pdf_headings_sequence_bold_and_wrapping(tmp_path: Path) -> None:
    path = tmp_path / "tiny.pdf"
    path.write_bytes(_tiny_pdf(_tiny_pages()))
    assert looks_like_guidelines(path)
    result = parse_guidelines(path)
    got = {s.citation: s for s in result.sections}

    assert [s.citation for s in result.sections] == [
        "Intro", "I", "I.A", "I.A.1", "I.A.1.a", "I.A.1.a.1", "I.A.1.a.1.a",
        "I.A.1.a.1.a.i", "I.A.1.a.1.a.ii", "I.A.1.a.1.b", "I.A.2",
        "II", "II.A", "II.A.1", "II.A.1.a", "II.A.1.b", "II.A.1.c", "II.A.1.d",
        "II.A.1.e", "II.A.1.f", "II.A.1.g", "II.A.1.h", "II.A.1.i",
    ]  # fmt: skip
    assert result.fiscal_year == "2099"
    # A plain "a." line is body text; a bold wrapped heading keeps both lines in its title.
    assert got["I.A.1"].text == "Body of one.\na. plain list item, not a heading"
    assert got["I.A.1.a"].title == "Lower heading that runs long enough to wrap onto a second line"
    assert got["I.A.1.a"].text == "See Section I.C.4.a for more."
    # "(a)" has a plain marker and a bold title; "(i)" under it is roman, after "(h)" a letter.
    assert got["I.A.1.a.1.a"].title == "Letter title"
    assert got["I.A.1.a.1.a.i"].title == "Roman one"
    assert got["II.A.1.i"].title == "Ninth letter"
    # A bold "3." after "1." breaks the sequence: kept as body text and reported.
    assert "3. Skipped number" in got["I.A.1.a.1.b"].text
    assert result.rejected_markers == ["p3: 3. Skipped number"]
    assert got["I.A.2"].parent == "I.A" and got["I.A.2"].level == 3
    assert got["II.A.1.i"].page_start == got["II.A.1.i"].page_end == 4
    assert all("Page" not in s.text and "FY 2099" not in s.text for s in result.sections[1:])
    # The outline check works: one TOC entry has no section in the body.
    assert [e.citation for e in result.outline] == ["Intro", "I", "I.A", "I.A.1", "I.B", "II"]
    assert result.missing_from_outline == ["I.B"]


def test_classify_line_markers() -> None:
    def kinds(text: str) -> tuple[tuple[str, ...], str, str] | None:
        m = classify_line(text)
        return None if m is None else (m.kinds, m.value, m.title)

    assert kinds("Section IV.Diagnostic Coding") == (("section",), "IV", "Diagnostic Coding")
    assert kinds("M.Patients receiving") == (("upper",), "M", "Patients receiving")
    assert kinds("12. Excludes Notes") == (("digit",), "12", "Excludes Notes")
    assert kinds("a. Diabetes mellitus") == (("lower",), "a", "Diabetes mellitus")
    assert kinds("2) Septic shock") == (("pdigit",), "2", "Septic shock")
    assert kinds("(2) Septic shock") == (("pdigit",), "2", "Septic shock")
    assert kinds("(i) Pneumonia") == (("plower", "roman"), "i", "Pneumonia")
    assert kinds("(iii)Lower respiratory infection") == (
        ("roman",),
        "iii",
        "Lower respiratory infection",
    )
    assert kinds("(l) Multisystem") == (("plower",), "l", "Multisystem")
    # Words in parentheses and sentences are not markers.
    assert kinds("(suspected) exposure to COVID-19.") is None
    assert kinds("(vx) neither letter nor numeral") == ((), "vx", "neither letter nor numeral")
    assert kinds("U.S. Federal Government") is None
    assert kinds("See Section I.C.4.a") is None


# --------------------------------------------------------------------------- PDF builder

Line = tuple[float, float, str, str]  # x, y, font ("R" Helvetica, "B" Helvetica-Bold), text
Run = tuple[float, str, str]  # x, font, text


def _flow(top: float, rows: list[Run | list[Run]]) -> list[Line]:
    """Lines 16pt apart; a row given as a list of runs shares one baseline."""
    out: list[Line] = []
    for i, row in enumerate(rows):
        for x, font, text in row if isinstance(row, list) else [row]:
            out.append((x, top - 16 * i, font, text))
    return out


def _tiny_pages() -> list[list[Line]]:
    def header(n: int) -> list[Line]:
        return _flow(760, [
            (300, "R", "ICD-10-CM Official Guidelines for Coding and Reporting"),
            (500, "B", "FY 2099"),
            (480, "R", f"Page {n} of 4"),
        ])  # fmt: skip

    intro = _flow(760, [
        (72, "R", "ICD-10-CM Official Guidelines for Coding and Reporting"),
        (72, "B", "FY 2099 -- test edition"),
        (72, "R", "A preamble sentence."),
    ])  # fmt: skip
    toc = header(2) + _flow(700, [
        (72, "R", "ICD-10-CM Official Guidelines for Coding and Reporting ........ 1"),
        (72, "R", "Section I. Conventions ........................................ 3"),
        (90, "R", "A. First capital ...................................... 3"),
        (108, "R", "1. First number ................................. 3"),
        (90, "R", "B. Not in the body .................................... 3"),
        (72, "R", "Section II. Selection ......................................... 4"),
    ])  # fmt: skip
    # 11pt widths: "a. " in Helvetica-Bold is 12.232pt, "(a) " in Helvetica 16.5pt, so
    # the wrapped line hangs under "Lower" and the bold titles follow their plain markers.
    body = header(3) + _flow(700, [
        (72, "B", "Section I. Conventions"),
        (72, "R", "Section text."),
        (90, "B", "A. First capital"),
        (108, "B", "1. First number"),
        (126, "R", "Body of one."),
        (126, "R", "a. plain list item, not a heading"),
        (126, "B", "a. Lower heading that runs long enough to wrap onto"),
        (138.232, "B", "a second line"),
        (144, "R", "See Section I.C.4.a for more."),
        (144, "B", "1) Numbered rule"),
        [(162, "R", "(a)"), (178.5, "B", "Letter title")],
        (180, "R", "(i) Roman one"),
        (180, "R", "(ii) Roman two"),
        [(162, "R", "(b)"), (178.5, "B", "Other")],
        (180, "B", "3. Skipped number"),
        (108, "B", "2. Second number"),
        (126, "R", "Body of two."),
    ])  # fmt: skip
    names = ["First", "Second", "Third", "Fourth", "Fifth", "Sixth", "Seventh", "Eighth", "Ninth"]
    letters = zip("abcdefghi", names, strict=True)  # "(i)" after "(h)" must read as a letter
    last = header(4) + _flow(700, [
        (72, "B", "Section II. Selection"),
        (90, "B", "A. Under two"),
        (108, "B", "1. Letters"),
        *[[(126, "R", f"({c})"), (144, "B", f"{n} letter")] for c, n in letters],
    ])  # fmt: skip
    return [intro, toc, body, last]


def _tiny_pdf(pages: list[list[Line]]) -> bytes:
    """A minimal valid PDF (standard fonts, one text run per line) with a correct xref."""
    count = len(pages)
    kids = " ".join(f"{5 + 2 * i} 0 R" for i in range(count))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {count} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold >>",
    ]
    for i, lines in enumerate(pages):
        ops = []
        for x, y, font, text in lines:
            escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"BT /{'F2' if font == 'B' else 'F1'} 11 Tf {x} {y} Td ({escaped}) Tj ET")
        stream = "\n".join(ops).encode("latin-1")
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> "
            + f"/Contents {6 + 2 * i} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
