"""ICD-10-CM indexes (CDC XML schema) → IndexTerm and TableCell records.

One parser reads all four index files, because they share one schema
(root `ICD10CM.index`, `letter/mainTerm/term level=N`):

- Alphabetic Index to Diseases and Injuries ("index")
- External Cause of Injuries Index ("eindex")
- Neoplasm Table ("neoplasm") and Table of Drugs and Chemicals ("drug"): the same
  tree, plus an `indexHeading` and `<cell col="N">` elements per term.

Per term the parser reads `title` (with an inner `<nemod>` for non-essential
modifiers; text after the `<nemod>` belongs to the title, "Abandonment<nemod>(…)
</nemod> NEC" → "Abandonment NEC"), `code` (several allowed), `manif`, `see`,
`seeAlso`, `seecat`, `subcat` and `cell`.

Things records.py has no field for are kept on the result:
- `extra_codes[term_id]`: the second and later `<code>` of a term (the first is `code`);
- `extra_manifs[term_id]`: the second and later manifestation codes;
- `quirks`: data oddities the parser worked around, e.g. a `<manif>` holding text
  instead of a code (Neoplasm Table FY2025, "book-leaf"): that text is appended
  to the title, because it names the site ("book-leaf ventral surface of tongue
  and floor of mouth"), not a manifestation code.
Several `<see>` (or `<seeAlso>`) on one term are joined with "; " (SEE_SEPARATOR).

The kind of a file is read from its content, never its name: `detect_index_kind`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from ingest.records import IndexTerm, TableCell

ROOT_TAG = "ICD10CM.index"
INDEX_KINDS = ("index", "eindex", "neoplasm", "drug")
SEE_SEPARATOR = "; "

# Table heading as printed (normalized by _heading_key) → column key. Aliases cover
# wording seen in other CDC years; anything else is an error, not a guess.
NEOPLASM_COLUMNS = {
    "malignant primary": "malignant_primary",
    "malignant secondary": "malignant_secondary",
    "ca in situ": "in_situ",
    "carcinoma in situ": "in_situ",
    "benign": "benign",
    "uncertain behavior": "uncertain_behavior",
    "uncertain behaviour": "uncertain_behavior",
    "unspecified behavior": "unspecified_behavior",
    "unspecified behaviour": "unspecified_behavior",
}
DRUG_COLUMNS = {
    "poisoning accidental unintentional": "poisoning_accidental",
    "poisoning accidental": "poisoning_accidental",
    "poisoning intentional self harm": "poisoning_intentional_self_harm",
    "poisoning assault": "poisoning_assault",
    "poisoning undetermined": "poisoning_undetermined",
    "adverse effect": "adverse_effect",
    "underdosing": "underdosing",
}
# Heading of the first column (the term itself) → table kind.
TERM_COLUMN_HEADINGS = {"neoplasm": "neoplasm", "substance": "drug", "drug": "drug"}

# Cell values that mean "no code in this column".
EMPTY_CELLS = {"", "-", "--", "—", "–"}
# An ICD-10-CM code as printed in the indexes: "E11.65", "C79.8-", "T39.1X5", "S72.0-".
CODE_RE = re.compile(r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{0,4})?-?$")

_SPACE_BEFORE_PUNCT = re.compile(r" ([,;:.)])")

# How much of a file detect_index_kind reads: the root, title and headings come
# before the first main term, well inside this.
_DETECT_BYTES = 16 * 1024


class IndexParseError(ValueError):
    """The file is not a readable ICD-10-CM index or table."""


@dataclass
class IndexParseResult:
    terms: list[IndexTerm]
    cells: list[TableCell]
    # term id → second and later codes of that term (the first is IndexTerm.code).
    extra_codes: dict[int, list[str]] = field(default_factory=dict)
    # term id → second and later manifestation codes (the first is IndexTerm.manif).
    extra_manifs: dict[int, list[str]] = field(default_factory=dict)
    # Table files only: column key → heading as printed ("malignant_primary" → "Malignant Primary").
    column_labels: dict[str, str] = field(default_factory=dict)
    kind: str | None = None  # detected from content: index | eindex | neoplasm | drug
    version: str | None = None
    quirks: list[str] = field(default_factory=list)

    @property
    def next_id(self) -> int:
        """First free id, for numbering the next file's terms after this one."""
        return max((t.id for t in self.terms), default=0) + 1


# --------------------------------------------------------------------------- helpers


def _norm(text: str | None) -> str:
    """Collapse runs of whitespace."""
    return " ".join(text.split()) if text else ""


def _join_parts(parts: list[str]) -> str:
    """Join title pieces split by a <nemod>: "Legg" + "-Perthes disease" → "Legg-Perthes disease".

    A space is added only between two word characters, and a space left before
    punctuation is dropped ("Accident" + ", street" → "Accident, street").
    """
    text = ""
    for part in parts:
        if text and part and text[-1].isalnum() and part[0].isalnum():
            text += " "
        text += part
    return _SPACE_BEFORE_PUNCT.sub(r"\1", _norm(text))


def _text(el: etree._Element) -> str:
    if len(el) == 0:  # plain text element: .text is much cheaper than itertext()
        return _norm(el.text)
    return _norm("".join(el.itertext()))


def _heading_key(text: str) -> str:
    """'Poisoning, Intentional self-harm' → 'poisoning intentional self harm'."""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def _kind_from_content(root_tag: str, title: str, heads: dict[int, str]) -> str | None:
    """The index kind from what the top of the file says (shared by detect and parse)."""
    if root_tag != ROOT_TAG:
        return None
    if heads:
        first = _heading_key(heads.get(1, ""))
        if first in TERM_COLUMN_HEADINGS:
            return TERM_COLUMN_HEADINGS[first]
        keys = {_heading_key(h) for col, h in heads.items() if col != 1}
        if keys and keys <= NEOPLASM_COLUMNS.keys():
            return "neoplasm"
        if keys and keys <= DRUG_COLUMNS.keys():
            return "drug"
        return None
    title = title.lower()
    if "external cause" in title:
        return "eindex"
    if "index" in title and ("disease" in title or "injur" in title):
        return "index"
    return None


def detect_index_kind(path: Path) -> str | None:
    """'index' | 'eindex' | 'neoplasm' | 'drug' from the first few KB, or None if not one."""
    with Path(path).open("rb") as fh:
        head = fh.read(_DETECT_BYTES)
    parser = etree.XMLPullParser(events=("start", "end"))
    root_tag, title, heads = "", "", {}
    depth = 0
    try:
        parser.feed(head)
        for event, el in parser.read_events():
            if not isinstance(el.tag, str):
                continue
            if event == "start":
                depth += 1
                if depth == 1:
                    root_tag = el.tag
                    if root_tag != ROOT_TAG:
                        return None
                elif el.tag in ("mainTerm", "letter"):
                    break  # the header is over
                continue
            depth -= 1
            if el.tag == "title" and depth == 1:
                title = _text(el)
            elif el.tag == "head":
                heads[int(el.get("col", "0"))] = _text(el)
    except (etree.XMLSyntaxError, ValueError):
        pass  # not XML, or cut inside the header: judge by what was read
    return _kind_from_content(root_tag, title, heads)


# --------------------------------------------------------------------------- parser


def _read_title(
    title_el: etree._Element | None, loose_nemods: list[etree._Element]
) -> tuple[str, str]:
    """(title, nemod) of a term: nemod text taken out of the title, text after it kept."""
    if title_el is None:
        return "", _norm(" ".join("".join(n.itertext()) for n in loose_nemods))
    if len(title_el) == 0:  # the common case: no <nemod>
        return _norm(title_el.text), _norm(" ".join("".join(n.itertext()) for n in loose_nemods))
    parts: list[str] = [title_el.text or ""]
    nemods: list[str] = []
    for child in title_el:
        if child.tag == "nemod":
            nemods.append("".join(child.itertext()))
        elif isinstance(child.tag, str):  # not a comment: keep its text
            parts.append("".join(child.itertext()))
        parts.append(child.tail or "")
    # Some files put <nemod> beside <title> instead of inside it.
    nemods.extend("".join(n.itertext()) for n in loose_nemods)
    return _join_parts(parts), _norm(" ".join(nemods))


def _children_by_tag(el: etree._Element) -> dict[str, list[etree._Element]]:
    """Child elements grouped by tag, in document order: one pass instead of many findall."""
    groups: dict[str, list[etree._Element]] = {}
    for child in el:
        if isinstance(child.tag, str):
            groups.setdefault(child.tag, []).append(child)
    return groups


def _column_map(root: etree._Element, path: Path) -> tuple[str | None, dict[int, tuple[str, str]]]:
    """Table kind and col number → (column key, heading) from indexHeading; (None, {}) if none."""
    heading = root.find("indexHeading")
    if heading is None:
        return None, {}
    table: str | None = None
    columns: dict[int, tuple[str, str]] = {}
    for head in heading.iter("head"):
        col = _col(head, path)
        label = _text(head)
        key = _heading_key(label)
        if col == 1:
            table = TERM_COLUMN_HEADINGS.get(key)
            if table is None:
                raise IndexParseError(f"{path}: unknown table heading {label!r} in column 1")
            continue
        if key in NEOPLASM_COLUMNS:
            columns[col] = (NEOPLASM_COLUMNS[key], label)
        elif key in DRUG_COLUMNS:
            columns[col] = (DRUG_COLUMNS[key], label)
        else:
            raise IndexParseError(f"{path}: unknown table heading {label!r} in column {col}")
    kinds = {"neoplasm" if k in NEOPLASM_COLUMNS.values() else "drug" for k, _ in columns.values()}
    if table is None and len(kinds) == 1:
        table = kinds.pop()
    if table is None or kinds - {table}:
        raise IndexParseError(f"{path}: table headings do not name one table (neoplasm or drug)")
    return table, columns


def _col(el: etree._Element, path: Path) -> int:
    """The col="N" attribute of a <head> or <cell>."""
    try:
        return int(el.get("col", ""))
    except ValueError:
        raise IndexParseError(
            f"{path}: <{el.tag}> has col={el.get('col')!r}, not a number"
        ) from None


def parse_index(path: Path, source: str, start_id: int = 1) -> IndexParseResult:
    """Parse one index file into terms (pre-order, ids from start_id) and table cells.

    `source` labels the records (index | eindex | neoplasm | drug); the detected kind
    is on the result. Raises IndexParseError for unreadable XML, a wrong root element,
    a file without main terms, or an unknown table heading.
    """
    path = Path(path)
    if path.stat().st_size == 0:  # also raises FileNotFoundError for a missing file
        raise IndexParseError(f"{path}: empty file")
    try:
        root = etree.parse(str(path)).getroot()
    except etree.XMLSyntaxError as exc:
        raise IndexParseError(f"{path}: not well-formed XML (truncated?): {exc}") from exc
    if root.tag != ROOT_TAG:
        raise IndexParseError(f"{path}: root element is <{root.tag}>, expected <{ROOT_TAG}>")

    table, columns = _column_map(root, path)
    # Tables are known by their headings; the two plain indexes by their title.
    kind = table or _kind_from_content(root.tag, _norm(root.findtext("title")), {})
    result = IndexParseResult(
        terms=[],
        cells=[],
        column_labels={key: label for key, label in columns.values()},
        kind=kind,
        version=root.findtext("version"),
    )

    next_id = start_id
    # Depth-first, iterative: (element, parent term or None, level).
    stack: list[tuple[etree._Element, IndexTerm | None, int]] = [
        (el, None, 0) for el in reversed(root.findall(".//mainTerm"))
    ]
    if not stack:
        raise IndexParseError(f"{path}: no <mainTerm> elements (empty index)")
    while stack:
        el, parent, level = stack.pop()
        children = _children_by_tag(el)
        term = _build_term(children, next_id, source, parent, level, result, path)
        next_id += 1
        result.terms.append(term)
        for cell_el in children.get("cell", ()):
            _add_cell(cell_el, term, table, columns, result, path)
        stack.extend((child, term, level + 1) for child in reversed(children.get("term", [])))
    return result


def _texts(children: dict[str, list[etree._Element]], tag: str) -> list[str]:
    """Non-empty normalized texts of the <tag> children."""
    els = children.get(tag)
    if not els:  # most terms lack most tags: skip the work
        return []
    return [t for t in map(_text, els) if t]


def _build_term(
    children: dict[str, list[etree._Element]],
    term_id: int,
    source: str,
    parent: IndexTerm | None,
    level: int,
    result: IndexParseResult,
    path: Path,
) -> IndexTerm:
    title_els = children.get("title")
    title, nemod = _read_title(title_els[0] if title_els else None, children.get("nemod", []))
    codes = _texts(children, "code")
    manifs: list[str] = []
    for value in _texts(children, "manif"):
        value = value.strip("[]")
        if CODE_RE.match(value):
            manifs.append(value)
        else:
            # Data quirk: text in <manif> (Neoplasm Table "book-leaf"): it belongs to the title.
            result.quirks.append(
                f"{path.name}: term {term_id} {title!r}: non-code <manif> {value!r} "
                "appended to the title"
            )
            title = _norm(f"{title} {value}")
    see, see_also = _texts(children, "see"), _texts(children, "seeAlso")
    seecat, subcat = _texts(children, "seecat"), _texts(children, "subcat")

    if len(codes) > 1:
        result.extra_codes[term_id] = codes[1:]
    if len(manifs) > 1:
        result.extra_manifs[term_id] = manifs[1:]
    return IndexTerm(
        id=term_id,
        source=source,
        parent_id=parent.id if parent else None,
        level=level,
        title=title,
        nemod=nemod,
        path=[*parent.path, title] if parent else [title],
        code=codes[0] if codes else None,
        manif=manifs[0] if manifs else None,
        see=SEE_SEPARATOR.join(see) or None,
        see_also=SEE_SEPARATOR.join(see_also) or None,
        seecat=seecat[0] if seecat else None,
        subcat=subcat[0] if subcat else None,
    )


def _add_cell(
    cell_el: etree._Element,
    term: IndexTerm,
    table: str | None,
    columns: dict[int, tuple[str, str]],
    result: IndexParseResult,
    path: Path,
) -> None:
    value = _text(cell_el)
    if value in EMPTY_CELLS:
        return
    col = _col(cell_el, path)
    if table is None or col not in columns:
        raise IndexParseError(
            f"{path}: term {term.path_text!r} has a cell in column {col} without a heading"
        )
    key, label = columns[col]
    result.cells.append(
        TableCell(term_id=term.id, table=table, column=key, column_label=label, code=value)
    )
