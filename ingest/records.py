"""Plain records that parsers produce and the codebook stores.

Parsers turn one official source into these records; nothing here knows about
SQLite or Chroma, so each parser is testable on a tiny fixture.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Instructional note kinds, as stored in the codebook (`notes.kind`).
NOTE_KINDS = (
    "includes",
    "inclusion_term",
    "excludes1",
    "excludes2",
    "code_first",
    "use_additional_code",
    "code_also",
    "notes",
    "seventh_char_note",
)


@dataclass(slots=True)
class Note:
    kind: str  # one of NOTE_KINDS
    text: str


@dataclass(slots=True)
class TabularEntry:
    """A chapter, block (section), category, subcategory or code of the Tabular List."""

    code: str  # "E11.65"; chapters are "chapter:4", blocks "E08-E13"
    kind: str  # chapter | block | category | subcategory | code
    title: str
    parent: str | None
    chapter: str  # chapter number as printed ("4")
    block: str | None  # block id ("E08-E13")
    depth: int
    billable: bool = False
    notes: list[Note] = field(default_factory=list)
    # 7th characters defined at this entry (char -> meaning); descendants inherit them.
    seventh_chars: dict[str, str] = field(default_factory=dict)
    # Entry whose 7th-character definition applies to this one (itself or an ancestor).
    seventh_from: str | None = None
    # True for codes created by appending a 7th character (with X placeholders).
    generated: bool = False


@dataclass(slots=True)
class IndexTerm:
    """One main term or sub-term of an index (Alphabetic, External Cause, Neoplasm, Drug).

    `path` holds the titles from the main term down to this term, without
    non-essential modifiers; `nemod` holds this term's own modifiers as printed.
    """

    id: int
    source: str  # index | eindex | neoplasm | drug
    parent_id: int | None
    level: int  # 0 for a main term
    title: str
    nemod: str
    path: list[str]
    code: str | None = None  # as printed, may end in "-" (incomplete)
    manif: str | None = None  # bracketed manifestation code
    see: str | None = None
    see_also: str | None = None
    seecat: str | None = None
    subcat: str | None = None

    @property
    def path_text(self) -> str:
        return " > ".join(self.path)


@dataclass(slots=True)
class TableCell:
    """One cell of the Neoplasm table or the Table of Drugs and Chemicals."""

    term_id: int
    table: str  # neoplasm | drug
    column: str  # key such as "malignant_primary" or "poisoning_accidental"
    column_label: str  # heading as printed
    code: str  # as printed, may end in "-"


@dataclass(slots=True)
class SeeReference:
    """A see / see also cross-reference and what it resolved to."""

    term_id: int
    kind: str  # see | see_also
    target_text: str
    target_term_id: int | None  # None when unresolved
    reason: str = ""  # why unresolved (e.g. "generic: 'condition'")


@dataclass(slots=True)
class GuidelineSection:
    """A passage of the Official Guidelines, split by the guideline's own numbering."""

    citation: str  # "I.C.4.a.2"
    title: str
    parent: str | None
    level: int
    page_start: int
    page_end: int
    text: str
    ordinal: int = 0


@dataclass(slots=True)
class BuildIssue:
    """Something the build noticed: an inconsistency, a dangling reference, a gap."""

    kind: str  # e.g. dangling_code, unresolved_see, billable_mismatch
    subject: str
    detail: str
    explained: bool = False  # True when the reason is known and accepted
