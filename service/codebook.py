"""Read-only access to a year's SQLite codebook (written by ingest/codebook.py)."""

from __future__ import annotations

import re
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

# Accept "E11.65", "e1165", "S72.001A", "I10"; blocks like "E08-E13" are looked up as-is.
CODE_INPUT_RE = re.compile(r"^[A-Za-z][0-9][0-9A-Za-z](?:\.?[0-9A-Za-z]{1,4})?$")
BLOCK_INPUT_RE = re.compile(r"^[A-Za-z][0-9]{2}-[A-Za-z][0-9]{2}$")


class MalformedCode(ValueError):
    pass


def normalize_code(raw: str) -> str:
    """'e1165' → 'E11.65'; raises MalformedCode for anything that is not ICD-10-CM shaped."""
    text = raw.strip().upper()
    if BLOCK_INPUT_RE.match(text):
        return text
    if not CODE_INPUT_RE.match(text):
        raise MalformedCode(
            f"{raw!r} is not an ICD-10-CM code (expected a letter, two characters, and up to "
            "four more after the dot, e.g. E11.65)"
        )
    text = text.replace(".", "")
    return text if len(text) == 3 else f"{text[:3]}.{text[3:]}"


@dataclass(slots=True)
class CodeRow:
    code: str
    kind: str
    title: str
    parent: str | None
    chapter: str
    block: str | None
    depth: int
    billable: bool
    generated: bool
    seventh_from: str | None
    short_title: str | None


@dataclass(slots=True)
class NoteRow:
    code: str
    kind: str
    text: str
    refs: list[str]


@dataclass(slots=True)
class IndexPathRow:
    term_id: int
    source: str
    path: str
    code: str
    column: str | None = None  # table column for Neoplasm/Drug cells
    manif: str | None = None


def sited_main_terms(db: sqlite3.Connection) -> frozenset[str]:
    """Main terms the Index gives no code of their own, only by site or kind
    ("Cyst > kidney", "Stenosis, stenotic > aortic"): a coder needs the sub-term."""
    titles = db.execute(
        "SELECT m.title FROM index_terms m JOIN index_terms c ON c.parent_id = m.id "
        "WHERE m.level = 0 AND m.source = 'index' AND m.code IS NULL AND m.see IS NULL "
        "GROUP BY m.id HAVING count(c.id) >= 5")
    words = (_first_word(title) for (title,) in titles)
    return frozenset(w for w in words if w.replace(" ", "").isalpha())  # "foreign body"


def _first_word(title: str) -> str:
    """"Necrosis, necrotic" → "necrosis"; "Paresis (see also Paralysis)" → "paresis"."""
    return re.sub(r"\s*\(.*", "", title.split(",")[0]).strip().lower()


# Index sub-terms that name a side ("Loss > vision, visual > both eyes").
SIDE_SUBTERMS = {"left": ("left",), "right": ("right",),
                 "bilateral": ("bilateral", "both eyes", "both ears", "both sides")}
ONE_SIDE = ("one eye", "one ear", "one side", "unilateral")


class Codebook:
    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise FileNotFoundError(f"{path}: no codebook (build the index first)")
        self.path = path
        self._local = threading.local()
        self._lock = threading.Lock()
        self._neoplasm: dict[str, list[tuple[str, str, str]]] | None = None
        self._localized: frozenset[str] | None = None
        self._sited: frozenset[str] | None = None
        self._see_also: dict[str, str] | None = None
        self._neoplasm_sites: list[tuple[str, ...]] | None = None
        self._paths: dict[tuple[str, str], str | None] = {}  # index_code answers
        self._children_of: dict[tuple[str, str], list[tuple[str, str]]] = {}
        # term → (its main entry, its "specified organ" sub-term, the main entry it sees)
        self._by_site: dict[str, tuple[str, str, str]] | None = None
        self._classifiable: dict[str, list[tuple[str, list[str]]]] = {}
        self.meta = dict(self.db.execute("SELECT key, value FROM meta").fetchall())

    @property
    def db(self) -> sqlite3.Connection:
        # One read-only connection per thread: FastAPI runs sync endpoints in a pool.
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro&immutable=1", uri=True,
                                   check_same_thread=False)
            self._local.conn = conn
        return conn

    def get(self, code: str) -> CodeRow | None:
        row = self.db.execute(
            "SELECT code, kind, title, parent, chapter, block, depth, billable, generated, "
            "seventh_from, short_title FROM codes WHERE code = ?",
            (code,),
        ).fetchone()
        if row is None:
            return None
        return CodeRow(*row[:7], bool(row[7]), bool(row[8]), row[9], row[10])

    def get_many(self, codes: list[str]) -> dict[str, CodeRow]:
        out: dict[str, CodeRow] = {}
        for i in range(0, len(codes), 500):
            chunk = codes[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.db.execute(
                "SELECT code, kind, title, parent, chapter, block, depth, billable, generated, "
                f"seventh_from, short_title FROM codes WHERE code IN ({marks})",
                chunk,
            ):
                out[row[0]] = CodeRow(*row[:7], bool(row[7]), bool(row[8]), row[9], row[10])
        return out

    def truncated_seventh(self, code: str) -> bool:
        """Is `code` a code written without its 7th character, its placeholders kept
        ("S62.92X", "W19.XXX": CodiEsp's gold), so not a code of its own?"""
        if not code.endswith("X") or self.get(code) is not None:
            return False
        return self.db.execute("SELECT 1 FROM codes WHERE code LIKE ? AND length(code) = ? "
                               "LIMIT 1", (f"{code}_", len(code) + 1)).fetchone() is not None

    def lineage(self, code: str) -> list[CodeRow]:
        """The code and its ancestors, from the chapter down to the code itself."""
        chain: list[CodeRow] = []
        current = self.get(code)
        while current is not None:
            chain.append(current)
            current = self.get(current.parent) if current.parent else None
        return list(reversed(chain))

    def children(self, code: str) -> list[CodeRow]:
        rows = self.db.execute(
            "SELECT code FROM codes WHERE parent = ? ORDER BY ordinal", (code,)
        ).fetchall()
        found = self.get_many([r[0] for r in rows])
        return [found[r[0]] for r in rows]

    def notes(self, code: str) -> list[NoteRow]:
        return [
            NoteRow(code, kind, text, refs.split() if refs else [])
            for kind, text, refs in self.db.execute(
                "SELECT kind, text, refs FROM notes WHERE code = ? ORDER BY position", (code,)
            )
        ]

    def seventh_characters(self, defined_at: str) -> dict[str, str]:
        return dict(
            self.db.execute(
                "SELECT char, meaning FROM seventh_chars WHERE code = ? ORDER BY rowid",
                (defined_at,),
            ).fetchall()
        )

    def index_paths_to(self, code: str, limit: int = 200) -> list[IndexPathRow]:
        rows = [
            IndexPathRow(term_id, source, path, printed, None, manif)
            for term_id, source, path, printed, manif in self.db.execute(
                "SELECT id, source, path, code, manif FROM index_terms WHERE code_ref = ? "
                "ORDER BY id LIMIT ?",
                (code, limit),
            )
        ]
        rows += [
            IndexPathRow(term_id, tbl, path, printed, label)
            for term_id, tbl, path, printed, label in self.db.execute(
                "SELECT t.id, c.tbl, t.path, c.code, c.col_label FROM table_cells c "
                "JOIN index_terms t ON t.id = c.term_id WHERE c.code_ref = ? ORDER BY t.id LIMIT ?",
                (code, limit),
            )
        ]
        return rows

    def term(self, term_id: int) -> tuple[str, str, str | None] | None:
        """(source, path, code_ref) of an index term."""
        return self.db.execute(
            "SELECT source, path, code_ref FROM index_terms WHERE id = ?", (term_id,)
        ).fetchone()

    def vector_targets(self, ids: list[str]) -> dict[str, tuple[str, str]]:
        """(code, embedded text) of vector ids, as ingest/build.py's vector_records wrote
        them: "code:E11.9" → the title and its inclusion terms, "term:123" → the index
        path. Lets a vector search fetch distances only (Chroma's stored metadata is large)."""
        out: dict[str, tuple[str, str]] = {}
        codes = [i[5:] for i in ids if i.startswith("code:")]
        terms = [int(i[5:]) for i in ids if i.startswith("term:")]
        for i in range(0, len(codes), 500):
            chunk = codes[i:i + 500]
            marks = ",".join("?" * len(chunk))
            titles = dict(self.db.execute(
                f"SELECT code, title FROM codes WHERE code IN ({marks})", chunk).fetchall())
            inclusion: dict[str, list[str]] = {}
            for code, text in self.db.execute(
                    f"SELECT code, text FROM notes WHERE kind = 'inclusion_term' AND code IN "
                    f"({marks}) ORDER BY code, position, id", chunk):
                inclusion.setdefault(code, []).append(text)
            for code, title in titles.items():
                out[f"code:{code}"] = (code, "; ".join([title, *inclusion.get(code, [])]))
        for i in range(0, len(terms), 500):
            chunk_ids = terms[i:i + 500]
            marks = ",".join("?" * len(chunk_ids))
            for term_id, path, code in self.db.execute(
                    f"SELECT id, path, code_ref FROM index_terms WHERE id IN ({marks})",
                    chunk_ids):
                out[f"term:{term_id}"] = (code or "", path)
        return out

    def localized_terms(self) -> frozenset[str]:
        """Main terms with a "localized" sub-term (Adenopathy, Edema, Swelling, Mass...):
        for them a documented site means the localized code (R59.0, R60.0)."""
        with self._lock:
            if self._localized is None:
                self._localized = frozenset(
                    title.split(",")[0].strip().lower() for (title,) in self.db.execute(
                        "SELECT p.title FROM index_terms c JOIN index_terms p "
                        "ON c.parent_id = p.id WHERE p.level = 0 AND c.source = 'index' "
                        "AND lower(c.title) = 'localized' AND c.code_ref != ''"))
            return self._localized

    def sited_terms(self) -> frozenset[str]:
        """`sited_main_terms` of this codebook."""
        with self._lock:
            if self._sited is None:
                self._sited = sited_main_terms(self.db)
            return self._sited

    def see_also_terms(self) -> dict[str, str]:
        """For a main term without a code of its own, the main term its "see also" names
        when that one has a code: necrosis → gangrene (I96), paresis → paralysis (G83.9).
        Where no sub-term fits the note, this is where the Index sends a coder."""
        with self._lock:
            if self._see_also is None:
                rows = self.db.execute(
                    "SELECT m.title, t.title FROM index_terms m JOIN index_terms t "
                    "ON t.level = 0 AND t.source = 'index' AND t.code IS NOT NULL AND "
                    "(t.title = m.see_also OR t.title LIKE m.see_also || ',%') "
                    "WHERE m.level = 0 AND m.source = 'index' AND m.code IS NULL "
                    "AND m.see IS NULL")
                self._see_also = {_first_word(a): _first_word(b) for a, b in rows}
            return self._see_also

    def index_code(self, path: str, source: str = "index") -> str | None:
        """The code the Alphabetic Index prints at a path ("Infection, infected, infective >
        bacterial NOS > ... > Streptococcus"), or None when the year has no such path.
        `source` "eindex": the External Cause Index."""
        with self._lock:  # no index on path: all paths read once (~90k), not a scan a call
            if not self._paths:
                for src, p, code in self.db.execute(
                        "SELECT source, path, code_ref FROM index_terms WHERE code_ref IS NOT "
                        "NULL ORDER BY id"):
                    self._paths.setdefault((src, p), code)
        return self._paths.get((source, path))

    def index_children(self, path: str, source: str = "index") -> list[tuple[str, str]]:
        """(title, code) of the sub-terms printed under an Index path."""
        if (source, path) not in self._children_of:
            self._children_of[(source, path)] = self.db.execute(
                "SELECT c.title, c.code_ref FROM index_terms p JOIN index_terms c ON "
                "c.parent_id = p.id WHERE p.source = ? AND p.path = ? AND "
                "c.code_ref IS NOT NULL ORDER BY c.id", (source, path)).fetchall()
        return self._children_of[(source, path)]

    def side_subterm(self, code: str, side: str) -> str | None:
        """The code an Index entry of `code` prints under the documented side, where the
        Tabular keeps the sides apart from the code: "Loss > vision, visual" (H54.7) >
        one eye > left → H54.62, > both eyes → H54.3. None when no entry lists the side."""
        names = SIDE_SUBTERMS.get(side, ())
        for row in self.index_paths_to(code):
            if row.source != "index":
                continue
            kids = self._subterms(row.term_id)
            found = next((kids[n][1] for n in names if n in kids), None)
            for one in ONE_SIDE if found is None and side in ("left", "right") else ():
                if one in kids:  # "one eye > left"
                    found = self._subterms(kids[one][0]).get(side, (0, None))[1]
                    break
            if found is not None and found != code and self.get(found) is not None:
                return found
        return None

    def _subterms(self, term_id: int) -> dict[str, tuple[int, str | None]]:
        """Lower-cased title → (id, code) of an Index term's sub-terms (by parent id: the
        path column has no index)."""
        return {title.lower(): (tid, code) for tid, title, code in self.db.execute(
            "SELECT id, title, code_ref FROM index_terms WHERE parent_id = ?", (term_id,))}

    def unlisted_site_entry(self, term: str, site: str) -> tuple[str, str] | None:
        """(path, code) where the Index sends a term at a site it does not list: "Mass >
        specified organ NEC — see Disease, by site" takes a testis to "Disease, diseased >
        testis" (N50.9). None when the term lists the site itself ("Mass > kidney"), has no
        such sub-term, or "Disease" no entry named the site."""
        term = term.lower()
        with self._lock:  # the few terms that say "see Disease, by site", read once
            if self._by_site is None:
                self._by_site = {}
                disease = self.db.execute(  # "Disease, diseased"
                    "SELECT path FROM index_terms WHERE source = 'index' AND level = 0 AND "
                    "(title = 'Disease' OR title LIKE 'Disease,%') ORDER BY length(title) "
                    "LIMIT 1").fetchone()
                rows = self.db.execute(
                    "SELECT lower(p.title), p.path, c.path FROM index_terms p JOIN "
                    "index_terms c ON c.parent_id = p.id WHERE p.source = 'index' AND "
                    "p.level = 0 AND c.see = 'Disease, by site' AND (c.title LIKE "
                    "'specified organ%' OR c.title LIKE 'organ or site%') ORDER BY c.id")
                for title, main, sub in rows if disease else ():
                    self._by_site.setdefault(title, (main, sub, disease[0]))
        found = self._by_site.get(term)
        if found is None:
            return None
        site = site.lower()

        def entry(path: str) -> tuple[str, str] | None:
            return min(((t, c) for t, c in self.index_children(path)
                        if t.lower() in (site, f"{site} nec") or t.lower().startswith(f"{site} (")),
                       key=lambda tc: len(tc[0]), default=None)
        if entry(found[0]) is not None:  # "Mass > kidney": listed, the search finds it
            return None
        best = entry(found[2])
        if best is None:
            return None
        return f"{found[1]} → {found[2]} > {best[0]}", best[1]

    def classifiable_history(self, category: str, code: str) -> str | None:
        """The most specific code under a history category (Z80 family, Z85 personal) whose
        Tabular entry says "Conditions classifiable to" a range holding `code`: C18.9 →
        Z80.0 (C15-C26), Z85.038 (C18). None when no entry covers it."""
        with self._lock:
            if category not in self._classifiable:
                self._classifiable[category] = [
                    (c, [r.strip() for r in re.split(r"[,;]", t.split(" to ", 1)[1])])
                    for c, t in self.db.execute(
                        "SELECT code, text FROM notes WHERE kind = 'inclusion_term' AND "
                        "code LIKE ? AND text LIKE 'Conditions classifiable to %'",
                        (f"{category}%",))]
        found = [c for c, ranges in self._classifiable[category]
                 if any(_in_range(code, r) for r in ranges)]
        return max(found, key=len, default=None)

    def neoplasm_cell(self, site: str, column: str) -> tuple[str, str] | None:
        """(path, code) of the Neoplasm table cell for a site row ("testis") and a column
        (malignant_primary, benign, unspecified_behavior, ...), or None. The row is the
        shortest site title that is the site, begins "<site>," or "<site> (", or is
        "<site> NOS"."""
        site = site.lower()
        best: tuple[str, str, str] | None = None
        for title, path, code in self._neoplasm_rows().get(column, ()):
            if (title == site or title.startswith((f"{site},", f"{site} ("))
                    or title == f"{site} nos") and (best is None or len(title) < len(best[0])):
                best = (title, path, code)
        return (best[1], best[2]) if best else None

    def same_neoplasm_site(self, code: str, other: str) -> bool:
        """Do two neoplasm codes sit in one Neoplasm table row (testis: C62.9 malignant,
        D49.59 unspecified behavior), that is, name one site?"""
        with self._lock:
            if self._neoplasm_sites is None:
                cells: dict[int, list[str]] = {}
                for term_id, ref in self.db.execute(
                        "SELECT term_id, code_ref FROM table_cells WHERE tbl = 'neoplasm'"):
                    cells.setdefault(term_id, []).append(ref)
                self._neoplasm_sites = [tuple(v) for v in cells.values()]
        return any(any(code.startswith(c) for c in row) and any(other.startswith(c) for c in row)
                   for row in self._neoplasm_sites)

    def _neoplasm_rows(self) -> dict[str, list[tuple[str, str, str]]]:
        # The table's ~1,500 site rows, read once: a LIKE query scans them on every call.
        with self._lock:
            if self._neoplasm is None:
                rows: dict[str, list[tuple[str, str, str]]] = {}
                for title, path, column, code in self.db.execute(
                        "SELECT lower(t.title), t.path, c.col, c.code_ref FROM index_terms t "
                        "JOIN table_cells c ON c.term_id = t.id WHERE t.source = 'neoplasm' "
                        "AND t.level = 1 ORDER BY t.id"):
                    rows.setdefault(column, []).append((title, path, code))
                self._neoplasm = rows
            return self._neoplasm

    def count(self, table: str, where: str = "") -> int:
        return self.db.execute(f"SELECT count(*) FROM {table} {where}").fetchone()[0]


def _in_range(code: str, ref: str) -> bool:
    """Is a code within a Tabular reference: "C15-C26", "C50.-", "C7A.01-", "C18"?"""
    ref = ref.rstrip(".-").strip()
    if "-" in ref:
        low, high = (r.strip().rstrip(".") for r in ref.split("-", 1))
        return low <= code[:len(low)] <= high
    return code.startswith(ref)
