"""Parse the ICD-10-CM Official Guidelines for Coding and Reporting PDF into numbered passages.

The guideline is split by its OWN numbering, never into fixed-size chunks, so every
passage is one citable rule. The hierarchy is

    Section (I-IV)  >  A.  >  1.  >  a.  >  1) or (1)  >  (a)  >  (i)

plus the unnumbered preamble on page 1 (citation "Intro") and "Appendix I" (Present on
Admission Reporting Guidelines, whose sub-parts are unnumbered and so stay one passage).
Citations join the markers with dots, parentheses dropped: "I.C.4.a.2", "I.C.1.g.1.l".

Each `GuidelineSection.text` is the section's OWN body: the heading (marker and title)
is NOT repeated in `text` (it lives in `citation` and `title`), and the text of child
sections is not included. Soft line wraps become spaces, deliberate line breaks (list
items, paragraph ends) become newlines; words are kept as extracted.

How headings are told apart from body lines that merely start with "a." or "1.":
  * a marker must be the expected next value at some open level (the successor of an
    open sibling, or the first value of a deeper kind), so "a. When ..." inside a
    "1)" rule, or "(suspected) exposure", is body text; "(i)" after "(h)" is a letter,
    "(i)" under "(a)" a roman numeral;
  * headings down to "(a)" are set in bold (for "(a)" only the title is bold, the
    marker is plain), so a plain line starting with such a marker is body text;
    "(i)" headings are plain in most chapters and rely on the sequence rule alone;
  * a wrapped heading goes on in the same weight, hanging under the first word of the
    title, until its text visibly ends.
Bold lines that look numbered but break the sequence are listed in
`GuidelinesResult.rejected_markers` (empty on the FY 2025 file), so a new edition's
surprises show up instead of silently merging rules.

Text comes from pypdfium2 (PDFium, the library pdfplumber itself depends on): it reads
the 120 pages in about half a second with clean words ("health", where pypdf gives
"heal th") and exposes the font weight and glyph boxes the rules above need; pypdf took
about 8 seconds for the same file on the development machine.
"""

from __future__ import annotations

import ctypes
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from ingest.records import GuidelineSection

TITLE_PHRASE = "ICD-10-CM Official Guidelines for Coding and Reporting"


class GuidelinesParseError(ValueError):
    """The file is missing, not a readable PDF, truncated, or not the Official Guidelines."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path.name}: {problem}")
        self.path = path
        self.problem = problem


@dataclass(slots=True)
class OutlineEntry:
    """One entry of the table of contents (pages 2-6 of the real file)."""

    citation: str
    title: str
    page: int  # page number printed in the table of contents (= 1-based PDF page)


@dataclass(slots=True)
class GuidelinesResult:
    """Sections in document order, the table of contents, and the check between them."""

    sections: list[GuidelineSection]
    outline: list[OutlineEntry]
    # Outline citations with no parsed section of the same citation and normalized title.
    missing_from_outline: list[str]
    fiscal_year: str | None
    page_count: int = 0
    # Bold numbered-looking lines the sequence rule refused (body text, or a numbering
    # gap in the document); kept so a new edition's surprises are visible, not silent.
    rejected_markers: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- lines


@dataclass(slots=True)
class _Line:
    page: int  # 1-based
    text: str  # whitespace-normalized
    x0: float  # left edge of the first glyph
    x1: float  # right edge of the last glyph
    title_x0: float  # left edge of the text after a leading marker ("(a) ", "1. ")
    word1_w: float  # width of the first word, for the "would it have fit" test
    bold: bool
    hyphen_end: bool  # ends with a PDFium line-break hyphen (U+FFFE)
    right_margin: float = 0.0  # where this page's text block ends (see _right_margin)


_HEADER_RES = (
    re.compile(r"ICD-10-CM Official Guidelines for Coding and ?Reporting"),
    re.compile(r"FY \d{4}"),
    re.compile(r"Page (\d+) of (\d+)"),
)
_SPACE_W = 3.0  # a space in the 12pt body font is ~3pt wide
# A leading list marker ("A.", "12.", "b.", "1)", "(a)", "(iii)") and the space after it.
_LEAD_RE = re.compile(
    r"(?:Section\s+[IVX]+\.|Appendix\s+[IVX]+|[A-Za-z]\.|\(?\d{1,2}[.)]|\([a-z]{1,5}\))\s*"
)


def _is_header(text: str) -> bool:
    return any(rx.fullmatch(text) for rx in _HEADER_RES)


def _page_lines(page: pdfium.PdfPage, page_no: int) -> list[_Line]:
    """Lines of one page with the geometry and font facts the heading rules need."""
    tp = page.get_textpage()
    try:
        text = tp.get_text_range()
        if len(text) != tp.count_chars():
            # Character indices and string offsets must agree to look up glyph boxes.
            text = "".join(
                chr(pdfium_c.FPDFText_GetUnicode(tp.raw, i) or 32) for i in range(tp.count_chars())
            )
        name = ctypes.create_string_buffer(128)
        flags = ctypes.c_int()
        lines: list[_Line] = []
        for m in re.finditer(r"[^\r\n]+", text):
            raw_line = m.group()
            stripped = raw_line.strip()
            if not stripped:
                continue
            first = m.start() + (len(raw_line) - len(raw_line.lstrip()))
            last = m.start() + len(raw_line.rstrip()) - 1
            word_end = first + len(stripped.split(" ", 1)[0]) - 1
            lead = _LEAD_RE.match(stripped)
            title = first + (lead.end() if lead and lead.end() < len(stripped) else 0)
            left = tp.get_charbox(first)[0]
            right = tp.get_charbox(last)[2]
            word_right = tp.get_charbox(word_end)[2]
            # "(a) Title" sets the marker plain and the title bold: judge by the title.
            bold = _is_bold(tp, first, name, flags) or _is_bold(tp, title, name, flags)
            lines.append(
                _Line(
                    page=page_no,
                    text=_clean(stripped),
                    x0=left,
                    x1=right,
                    title_x0=tp.get_charbox(title)[0],
                    word1_w=max(word_right - left, 0.0),
                    bold=bold,
                    hyphen_end=stripped.endswith("\ufffe"),
                )
            )
        return lines
    finally:
        tp.close()


def _is_bold(
    tp: pdfium.PdfTextPage, index: int, name: ctypes.Array[ctypes.c_char], flags: ctypes.c_int
) -> bool:
    pdfium_c.FPDFText_GetFontInfo(tp.raw, index, name, len(name), ctypes.byref(flags))
    return pdfium_c.FPDFText_GetFontWeight(tp.raw, index) >= 600 or b"Bold" in name.value


def _clean(text: str) -> str:
    # PDFium marks hyphens it judged to be line-break hyphens with U+FFFE; they are real
    # hyphens in this file ("ICD-10-CM", "COVID-19"), so restore them.
    text = text.replace("\ufffe", "-").replace("\u00a0", " ")
    return re.sub(r"\s+", " ", text).strip()


def _right_margin(lines: list[_Line]) -> float:
    """Where the page's text block ends: a high percentile of line ends, because a
    centred line on page 1 sticks out past the ragged-right body text."""
    ends = sorted(line.x1 for line in lines)
    return ends[int(0.95 * (len(ends) - 1))] if ends else 0.0


def _wraps_into(prev: _Line, nxt: _Line) -> bool:
    """True when `nxt` continues `prev`'s sentence: it starts at the same indent and its
    first word would not have fit on `prev`. Otherwise the break was deliberate."""
    if prev.hyphen_end:
        return True
    if abs(nxt.x0 - prev.x0) > 3.0:
        return False
    return prev.x1 + _SPACE_W + nxt.word1_w > prev.right_margin + 1.0


# --------------------------------------------------------------------------- markers

# Marker kinds below a Section, from the top of the hierarchy down, with their first value.
_LEVELS = (
    ("upper", "A"),  # A.
    ("digit", "1"),  # 1.
    ("lower", "a"),  # a.
    ("pdigit", "1"),  # 1) or (1)
    ("plower", "a"),  # (a)
    ("roman", "i"),  # (i)
)
# Depth rank of each kind; the top kinds (Intro, Section, Appendix) share rank 0.
_RANK = {"intro": 0, "section": 0, "appendix": 0} | {k: n for n, (k, _) in enumerate(_LEVELS, 1)}
_FIRST = {"section": "I", "appendix": "I", **dict(_LEVELS)}
_BOLD_KINDS = {"section", "appendix", "upper", "digit", "lower", "pdigit", "plower"}
_ROMAN = [  # i .. xxxix, far more than any list in the guidelines
    "x" * tens + ("", "i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix")[ones]
    for tens, ones in (divmod(n, 10) for n in range(1, 40))
]
_ROMAN_UPPER = [r.upper() for r in _ROMAN]

_MARKER_RES: tuple[tuple[tuple[str, ...], re.Pattern[str]], ...] = (
    (("section",), re.compile(r"Section\s+(IV|III|II|I)\.\s*(.*)")),
    (("appendix",), re.compile(r"Appendix\s+([IVX]+)\b\.?\s*(.*)")),
    # "M.Patients receiving ..." lacks the space in the 2025 file.
    (("upper",), re.compile(r"([A-Z])\.(?:\s+|(?=[A-Z][a-z]))(\S.*)")),
    (("digit",), re.compile(r"(\d{1,2})\.\s+(\S.*)")),
    (("lower",), re.compile(r"([a-z])\.\s+(\S.*)")),
    (("pdigit",), re.compile(r"\(?(\d{1,2})\)\s*(\S.*)")),
    # "(i)", "(v)", "(x)" may be a letter or a roman numeral; context decides.
    (("plower", "roman"), re.compile(r"\(([a-z]|[ivx]{2,5})\)\s*(\S.*)")),
)


@dataclass(slots=True)
class Marker:
    """A numbering marker at the start of a line, before context decides if it is one."""

    kinds: tuple[str, ...]  # candidate kinds, in order of preference
    value: str
    title: str


def classify_line(text: str) -> Marker | None:
    """The numbering marker a line starts with, if any; says nothing about context.

    >>> classify_line("(i) Pneumonia")
    Marker(kinds=('plower', 'roman'), value='i', title='Pneumonia')
    """
    for kinds, rx in _MARKER_RES:
        m = rx.fullmatch(text)
        if m:
            value, title = m.group(1), m.group(2).strip()
            if kinds == ("plower", "roman"):
                kinds = tuple(k for k in kinds if _is_value(k, value))
            return Marker(kinds, value, title)
    return None


def _is_value(kind: str, value: str) -> bool:
    if kind == "roman":
        return value in _ROMAN
    if kind == "plower":
        return len(value) == 1
    return True


def _successor(kind: str, value: str) -> str | None:
    if kind in ("digit", "pdigit"):
        return str(int(value) + 1)
    if kind == "roman":
        i = _ROMAN.index(value)
        return _ROMAN[i + 1] if i + 1 < len(_ROMAN) else None
    if kind in ("section", "appendix"):
        i = _ROMAN_UPPER.index(value)
        return _ROMAN_UPPER[i + 1] if i + 1 < len(_ROMAN_UPPER) else None
    if kind == "intro":
        return None
    return chr(ord(value) + 1) if value not in ("z", "Z") else None


@dataclass(slots=True)
class _Frame:
    kind: str
    value: str


class _Numbering:
    """The open heading path; decides whether a marker continues the document's numbering."""

    def __init__(self) -> None:
        self.stack: list[_Frame] = [_Frame("intro", "Intro")]
        self.seen_top: set[str] = {"intro"}

    def place(self, marker: Marker) -> tuple[int, str] | None:
        """(depth to open the heading at, kind) if the marker fits the numbering, else None."""
        # An open sibling's successor wins over a new child: "(i)" after "(h)" is a letter.
        for depth in range(len(self.stack) - 1, -1, -1):
            frame = self.stack[depth]
            for kind in marker.kinds:
                if frame.kind == kind and _successor(kind, frame.value) == marker.value:
                    return depth, kind
        for kind in marker.kinds:
            if marker.value != _FIRST[kind]:
                continue
            if _RANK[kind] == 0:
                if kind not in self.seen_top:
                    return 0, kind
            elif _RANK[kind] > _RANK[self.stack[-1].kind]:
                return len(self.stack), kind
        return None

    def open(self, depth: int, kind: str, value: str) -> None:
        del self.stack[depth:]
        self.stack.append(_Frame(kind, value))
        if _RANK[kind] == 0:
            self.seen_top.add(kind)

    def citation(self, depth: int | None = None) -> str:
        frames = self.stack if depth is None else self.stack[:depth]
        parts = [_top_citation(frames[0])] + [f.value for f in frames[1:]]
        return ".".join(parts)


def _top_citation(frame: _Frame) -> str:
    if frame.kind == "appendix":
        return f"Appendix {frame.value}"
    return frame.value  # "Intro", or the section's roman numeral


# --------------------------------------------------------------------------- outline

_LEADER_CHARS = " .\u2026"  # dot leaders are periods or ellipses, with stray spaces


def _split_page_number(line: _Line) -> tuple[str, int | None]:
    """(title text, page) of a table-of-contents line; page is None on a wrapped line.

    The page number is right-aligned after dot leaders; a few entries lack leaders
    ("... the puerperium 65"), and one page number sits on a line of its own ("76").
    """
    m = re.search(r"(\d{1,3})$", line.text)
    if not m:
        return line.text.rstrip(_LEADER_CHARS), None
    before = line.text[: m.start()]
    title = before.rstrip(_LEADER_CHARS)
    has_leader = any(c in ".\u2026" for c in before[len(title) :])
    at_margin = line.x1 >= line.right_margin - 3.0 and before[-1:] == " "
    if has_leader or at_margin or not before:
        return title, int(m.group(1))
    return line.text, None


def _parse_outline(lines: list[_Line]) -> list[OutlineEntry]:
    """The table of contents: marker, title, dot leaders, page; titles may wrap."""
    entries: list[OutlineEntry] = []
    path: list[str] = []
    pending = ""
    for line in lines:
        text, page = _split_page_number(line)
        pending = f"{pending} {text}".strip()
        if page is None:
            continue
        title, pending = pending, ""
        if _normalize_title(title) == _normalize_title(TITLE_PHRASE):
            entries.append(OutlineEntry("Intro", title, page))
            continue
        marker = classify_line(title)
        if marker is None or not marker.kinds:
            # An unnumbered line: the appendix's title, or "Reserved for future ..." notes.
            if entries and entries[-1].citation.startswith("Appendix") and not entries[-1].title:
                entries[-1].title = title
            continue
        kind = marker.kinds[0]
        rank = _RANK[kind]
        if rank == 0:
            top = f"Appendix {marker.value}" if kind == "appendix" else marker.value
            path = [top]
        else:
            path = [*path[:rank], marker.value]
        entries.append(OutlineEntry(".".join(path), marker.title, page))
    return entries


def _normalize_title(title: str) -> str:
    """Compare titles ignoring case, quote style, spacing and punctuation."""
    title = unicodedata.normalize("NFKC", title).casefold()
    return re.sub(r"[^0-9a-z]+", "", title)


# --------------------------------------------------------------------------- sections


@dataclass(slots=True)
class _Open:
    citation: str
    title: str
    parent: str | None
    level: int
    page_start: int
    page_end: int
    body: list[_Line] = field(default_factory=list)


def _join_body(lines: list[_Line]) -> str:
    parts: list[str] = []
    for i, line in enumerate(lines):
        if i:
            prev = lines[i - 1]
            if prev.hyphen_end:
                sep = ""
            elif _wraps_into(prev, line):
                sep = " "
            else:
                sep = "\n"
            parts.append(sep)
        parts.append(line.text)
    return "".join(parts).strip()


def _build_sections(
    intro: list[_Line], body: list[_Line]
) -> tuple[list[GuidelineSection], list[str]]:
    numbering = _Numbering()
    rejected: list[str] = []
    opened: list[_Open] = []
    if intro:
        head = intro[0]
        opened.append(_Open("Intro", head.text, None, 1, head.page, head.page, intro[1:]))

    i = 0
    while i < len(body):
        line = body[i]
        marker = classify_line(line.text)
        placed = None
        if marker:
            # Markers down to "(a)" head bold text; a plain "a." or "1." is body text.
            marker.kinds = tuple(k for k in marker.kinds if line.bold or k not in _BOLD_KINDS)
            placed = numbering.place(marker) if marker.kinds else None
            if placed is None and line.bold:
                rejected.append(f"p{line.page}: {line.text}")
        if marker is None or placed is None:
            if opened:
                opened[-1].body.append(line)
                opened[-1].page_end = line.page
            i += 1
            continue

        depth, kind = placed
        numbering.open(depth, kind, marker.value)
        title, page_end, prev = marker.title, line.page, line
        i += 1
        while i < len(body) and title and _continues_title(line, prev, body[i]):
            title = f"{title}{'' if prev.hyphen_end else ' '}{body[i].text}"
            prev, page_end = body[i], body[i].page
            i += 1
        if not title and i < len(body):
            # "Appendix I" sets its title on the following line.
            title, page_end = body[i].text, body[i].page
            i += 1
        parent = numbering.citation(len(numbering.stack) - 1) if depth else None
        opened.append(
            _Open(numbering.citation(), title, parent, len(numbering.stack), line.page, page_end)
        )

    sections = [
        GuidelineSection(
            citation=o.citation,
            title=o.title,
            parent=o.parent,
            level=o.level,
            page_start=o.page_start,
            page_end=o.page_end,
            text=_join_body(o.body),
            ordinal=n,
        )
        for n, o in enumerate(opened)
    ]
    return sections, rejected


def _continues_title(head: _Line, prev: _Line, nxt: _Line) -> bool:
    """A wrapped heading goes on in the same weight, hanging under the title's first word.

    The fit test used for body text does not work here: Word wraps these headings well
    short of the margin ("(O00-O9A)" moves to a line of its own), so rely on the hanging
    indent, the weight, and a title that has not visibly ended.
    """
    if nxt.bold != head.bold or abs(nxt.x0 - head.title_x0) > 2.5:
        return False
    if prev.text.endswith((".", ":")) and not prev.hyphen_end:
        return False
    marker = classify_line(nxt.text)
    return not (marker and marker.kinds)


# --------------------------------------------------------------------------- public API


def looks_like_guidelines(path: Path) -> bool:
    """Cheap content sniff: does page 1 carry the Official Guidelines title?"""
    try:
        doc = _open(Path(path))
    except GuidelinesParseError:
        return False
    try:
        return _first_page_has_title(doc)
    except pdfium.PdfiumError:
        return False
    finally:
        doc.close()


def parse_guidelines(path: Path) -> GuidelinesResult:
    """Parse the Official Guidelines PDF at `path` into numbered sections and its outline."""
    path = Path(path)
    doc = _open(path)
    try:
        if not _first_page_has_title(doc):
            raise GuidelinesParseError(
                path, f"not the ICD-10-CM Official Guidelines: page 1 lacks {TITLE_PHRASE!r}"
            )
        pages = []
        for i in range(len(doc)):
            page = doc[i]
            try:
                pages.append(_page_lines(page, i + 1))
            finally:
                page.close()
    finally:
        doc.close()
    return _parse_pages(path, pages)


def _parse_pages(path: Path, pages: list[list[_Line]]) -> GuidelinesResult:
    first_text = " ".join(line.text for line in pages[0])
    fy = re.search(r"\bFY\s*(\d{4})\b", first_text)

    declared: int | None = None
    cleaned: list[list[_Line]] = [pages[0]]
    for lines in pages[1:]:
        kept = []
        for line in lines:
            m = _HEADER_RES[2].fullmatch(line.text)
            if m:
                declared = int(m.group(2))
            if not _is_header(line.text):
                kept.append(line)
        cleaned.append(kept)
    if declared is not None and declared != len(pages):
        raise GuidelinesParseError(
            path, f"truncated: page headers say {declared} pages, the file has {len(pages)}"
        )
    for lines in cleaned:
        margin = _right_margin(lines)
        for line in lines:
            line.right_margin = margin

    # The body starts at the page whose first line is the bold "Section I." heading;
    # the pages between page 1 and it are the table of contents.
    body_start = next(
        (
            n
            for n, lines in enumerate(cleaned[1:], start=1)
            if lines
            and lines[0].bold
            and re.match(r"Section\s+I\.", lines[0].text)
            and _split_page_number(lines[0])[1] is None
        ),
        None,
    )
    if body_start is None:
        raise GuidelinesParseError(path, "no page starts with the 'Section I.' heading")
    outline = _parse_outline([line for lines in cleaned[1:body_start] for line in lines])
    if not outline:
        raise GuidelinesParseError(path, "table of contents not found before 'Section I.'")

    body = [line for lines in cleaned[body_start:] for line in lines]
    sections, rejected = _build_sections(cleaned[0], body)

    by_citation = {s.citation: s for s in sections}
    missing = [
        e.citation
        for e in outline
        if e.citation not in by_citation
        or _normalize_title(by_citation[e.citation].title) != _normalize_title(e.title)
    ]
    return GuidelinesResult(
        sections=sections,
        outline=outline,
        missing_from_outline=missing,
        fiscal_year=fy.group(1) if fy else None,
        page_count=len(pages),
        rejected_markers=rejected,
    )


def _open(path: Path) -> pdfium.PdfDocument:
    """Open a PDF, turning every way it can be unreadable into a GuidelinesParseError."""
    try:
        with path.open("rb") as fh:
            head = fh.read(1024)
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(size - 1024, 0))
            tail = fh.read()
    except FileNotFoundError:
        raise GuidelinesParseError(path, "file not found") from None
    except OSError as exc:
        raise GuidelinesParseError(path, f"cannot read file: {exc}") from exc
    if b"%PDF-" not in head:
        raise GuidelinesParseError(path, "not a PDF: no %PDF- header")
    if b"%%EOF" not in tail:
        # Checked before PDFium, which may silently repair a cut-off file.
        raise GuidelinesParseError(path, "not a PDF (truncated or corrupt): EOF marker not found")
    try:
        doc = pdfium.PdfDocument(path)
    except pdfium.PdfiumError as exc:
        raise GuidelinesParseError(path, f"not a PDF (truncated or corrupt): {exc}") from exc
    if len(doc) == 0:
        doc.close()
        raise GuidelinesParseError(path, "PDF has no pages")
    return doc


def _first_page_has_title(doc: pdfium.PdfDocument) -> bool:
    page = doc[0]
    tp = page.get_textpage()
    try:
        text = tp.get_text_range()
    finally:
        tp.close()
        page.close()
    # Whitespace-insensitive: extractors differ on spaces ("Coding andReporting").
    return re.sub(r"\s+", "", TITLE_PHRASE) in re.sub(r"\s+", "", _clean(text))
