"""The SQLite codebook: every structured fact of a code year, written once by the build.

The service opens it read-only (service/codebook.py). Vector-store metadata
points back here by `codes.code`, `index_terms.id` or `guideline_sections.citation`.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from ingest.records import (
    BuildIssue,
    GuidelineSection,
    IndexTerm,
    SeeReference,
    TableCell,
    TabularEntry,
)

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE codes (
    code TEXT PRIMARY KEY,
    kind TEXT NOT NULL,            -- chapter | block | category | subcategory | code
    title TEXT NOT NULL,
    parent TEXT,
    chapter TEXT NOT NULL,
    block TEXT,
    depth INTEGER NOT NULL,
    billable INTEGER NOT NULL,
    generated INTEGER NOT NULL,    -- 1: built from a 7th-character definition
    seventh_from TEXT,             -- entry whose 7th-character list applies
    short_title TEXT,              -- from the CMS order file
    ordinal INTEGER NOT NULL       -- Tabular List order
);
CREATE INDEX codes_parent ON codes(parent);
CREATE TABLE notes (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL,
    kind TEXT NOT NULL,
    position INTEGER NOT NULL,
    text TEXT NOT NULL,
    refs TEXT NOT NULL             -- codes / ranges the note mentions, space-separated
);
CREATE INDEX notes_code ON notes(code);
CREATE TABLE seventh_chars (
    code TEXT NOT NULL, char TEXT NOT NULL, meaning TEXT NOT NULL, PRIMARY KEY (code, char)
);
CREATE TABLE index_terms (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,          -- index | eindex | neoplasm | drug
    parent_id INTEGER,
    level INTEGER NOT NULL,
    title TEXT NOT NULL,
    nemod TEXT NOT NULL,
    path TEXT NOT NULL,            -- "Diabetes, diabetic > type 2 > with > hyperglycemia"
    code TEXT,                     -- as printed (may end in "-")
    code_ref TEXT,                 -- tabular entry it points to (dash removed)
    manif TEXT,
    see TEXT,
    see_also TEXT,
    seecat TEXT,
    subcat TEXT
);
CREATE INDEX index_terms_code_ref ON index_terms(code_ref);
CREATE INDEX index_terms_parent ON index_terms(parent_id);
CREATE TABLE cross_refs (
    term_id INTEGER NOT NULL,
    kind TEXT NOT NULL,            -- see | see_also
    target_text TEXT NOT NULL,
    target_term_id INTEGER,
    reason TEXT NOT NULL
);
CREATE INDEX cross_refs_term ON cross_refs(term_id);
CREATE TABLE table_cells (
    term_id INTEGER NOT NULL,
    tbl TEXT NOT NULL,             -- neoplasm | drug
    col TEXT NOT NULL,
    col_label TEXT NOT NULL,
    code TEXT NOT NULL,
    code_ref TEXT NOT NULL
);
CREATE INDEX table_cells_term ON table_cells(term_id);
CREATE INDEX table_cells_code_ref ON table_cells(code_ref);
CREATE TABLE guideline_sections (
    citation TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    parent TEXT,
    level INTEGER NOT NULL,
    page_start INTEGER NOT NULL,
    page_end INTEGER NOT NULL,
    text TEXT NOT NULL,
    ordinal INTEGER NOT NULL
);
CREATE TABLE build_issues (
    kind TEXT NOT NULL, subject TEXT NOT NULL, detail TEXT NOT NULL, explained INTEGER NOT NULL
);
-- One lexical index over everything a lookup can match.
-- `modifiers`: non-essential modifiers along an index path; they may match a query
-- but a path is not penalised for lacking them.
CREATE VIRTUAL TABLE lexicon USING fts5(
    text, modifiers, source UNINDEXED, ref UNINDEXED, code UNINDEXED,
    tokenize = 'porter unicode61'
);
"""

# Codes ("E11.65", "Z16.-", "S72.0-") and ranges ("E08-E13") cited in note text. A bare
# three-character form counts only inside parentheses, so "vitamin B12" is not a code.
_CODE = r"[A-Z]\d[0-9A-Z](?:\.[0-9A-Z]{0,4})?-?"
NOTE_REF_RE = re.compile(
    rf"\b[A-Z]\d[0-9A-Z]\.[0-9A-Z]{{0,4}}(?:-{_CODE}\b|-)?"  # dotted code, maybe a range
    rf"|\b[A-Z]\d[0-9A-Z]-(?:{_CODE})?"  # "Z16-" or a range "E08-E13"
    rf"|(?<=[(,] )[A-Z]\d[0-9A-Z]\b(?=[),])|(?<=\()[A-Z]\d[0-9A-Z]\b"  # "(I10)", "(A15, A17)"
    rf"|(?<=category )[A-Z]\d[0-9A-Z]\b"  # "from category Z3A, Weeks of gestation"
)


# Table columns whose heading holds a default sense: (words to match, modifier words).
COLUMN_WORDS = {
    "malignant_primary": ("Malignant", "primary"),
    "poisoning_accidental": ("Poisoning", "accidental unintentional"),
}


def note_refs(text: str) -> str:
    return " ".join(dict.fromkeys(NOTE_REF_RE.findall(text)))


def code_ref(code: str) -> str:
    """Tabular entry a printed index code points to: "C50.91-" → "C50.91", "S72.-" → "S72"."""
    return code.rstrip("-").rstrip(".")


class CodebookWriter:
    """Writes a fresh codebook file; call the add_* methods, then close()."""

    def __init__(self, path: Path) -> None:
        if path.exists():
            raise FileExistsError(f"{path}: codebook already exists (builds write to a new folder)")
        self.path = path
        self.db = sqlite3.connect(path)
        self.db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;")
        self.db.executescript(SCHEMA)

    def set_meta(self, **values: str) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in values.items()]
        )

    def add_tabular(self, entries: list[TabularEntry], short_titles: dict[str, str]) -> None:
        self.db.executemany(
            "INSERT INTO codes VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                (
                    e.code, e.kind, e.title, e.parent, e.chapter, e.block, e.depth,
                    int(e.billable), int(e.generated), e.seventh_from,
                    short_titles.get(e.code), i,
                )
                for i, e in enumerate(entries)
            ),
        )
        self.db.executemany(
            "INSERT INTO notes (code, kind, position, text, refs) VALUES (?,?,?,?,?)",
            (
                (e.code, n.kind, pos, n.text, note_refs(n.text))
                for e in entries
                for pos, n in enumerate(e.notes)
            ),
        )
        self.db.executemany(
            "INSERT INTO seventh_chars VALUES (?,?,?)",
            ((e.code, c, m) for e in entries for c, m in e.seventh_chars.items()),
        )
        lexicon: list[tuple[str, str, str, str]] = []
        for e in entries:
            if e.kind in ("chapter", "block") or e.generated:
                continue
            lexicon.append((e.title, "", "title", e.code, e.code))
            lexicon.extend(
                (n.text, "", "inclusion", e.code, e.code)
                for n in e.notes
                if n.kind == "inclusion_term"
            )
        self.db.executemany("INSERT INTO lexicon VALUES (?,?,?,?,?)", lexicon)

    def add_index_terms(self, terms: list[IndexTerm]) -> None:
        rows = []
        lexicon = []
        by_id = {t.id: t for t in terms}

        def modifiers(t: IndexTerm) -> str:
            parts: list[str] = []
            node: IndexTerm | None = t
            while node is not None:
                if node.nemod:
                    parts.append(node.nemod)
                node = by_id.get(node.parent_id) if node.parent_id else None
            return " ".join(reversed(parts))

        for t in terms:
            ref = code_ref(t.code) if t.code else None
            rows.append(
                (
                    t.id, t.source, t.parent_id, t.level, t.title, t.nemod, t.path_text, t.code,
                    ref, t.manif, t.see, t.see_also, t.seecat, t.subcat,
                )
            )
            if ref:
                lexicon.append((t.path_text, modifiers(t), t.source, str(t.id), ref))
        self.db.executemany(
            "INSERT INTO index_terms VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows
        )
        self.db.executemany("INSERT INTO lexicon VALUES (?,?,?,?,?)", lexicon)

    def add_table_cells(self, cells: Iterable[TableCell], paths: dict[int, str]) -> None:
        rows = [
            (c.term_id, c.table, c.column, c.column_label, c.code, code_ref(c.code))
            for c in cells
        ]
        self.db.executemany("INSERT INTO table_cells VALUES (?,?,?,?,?,?)", rows)
        # Cells are looked up by "<row path> > <column>" (e.g. "Acetaminophen > Adverse
        # effect"); a column's default sense ("primary", "unintentional") is a modifier, so a
        # query that does not say it is not penalised.
        self.db.executemany(
            "INSERT INTO lexicon VALUES (?,?,?,?,?)",
            (
                (f"{paths[r[0]]} > {COLUMN_WORDS.get(r[2], (r[3], ''))[0]}",
                 COLUMN_WORDS.get(r[2], ("", ""))[1], r[1], str(r[0]), r[5])
                for r in rows
                if r[0] in paths
            ),
        )

    def add_cross_refs(self, refs: list[SeeReference], terms: list[IndexTerm]) -> None:
        self.db.executemany(
            "INSERT INTO cross_refs VALUES (?,?,?,?,?)",
            ((r.term_id, r.kind, r.target_text, r.target_term_id, r.reason) for r in refs),
        )
        # A "see" term ("Attack > heart", see Infarction, myocardium) is looked up like the
        # code its target leads to, as a coder follows the reference.
        by_id = {t.id: t for t in terms}
        rows = []
        for r in refs:
            source, target = by_id.get(r.term_id), by_id.get(r.target_term_id or -1)
            if r.kind == "see" and source and target and target.code:
                rows.append((source.path_text, f"→ see {r.target_text}", source.source,
                             str(source.id), code_ref(target.code)))
        self.db.executemany("INSERT INTO lexicon VALUES (?,?,?,?,?)", rows)

    def add_guidelines(self, sections: Iterable[GuidelineSection]) -> None:
        self.db.executemany(
            "INSERT INTO guideline_sections VALUES (?,?,?,?,?,?,?,?)",
            (
                (s.citation, s.title, s.parent, s.level, s.page_start, s.page_end, s.text,
                 s.ordinal)
                for s in sections
            ),
        )

    def add_issues(self, issues: Iterable[BuildIssue]) -> None:
        self.db.executemany(
            "INSERT INTO build_issues VALUES (?,?,?,?)",
            ((i.kind, i.subject, i.detail, int(i.explained)) for i in issues),
        )

    def close(self) -> None:
        self.db.commit()
        self.db.execute("INSERT INTO lexicon(lexicon) VALUES ('optimize')")
        self.db.commit()
        self.db.execute("VACUUM")
        self.db.close()
