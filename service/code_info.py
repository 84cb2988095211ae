"""Everything a coder checks about one code: hierarchy, notes up the tree, 7th characters,
and the index paths that lead to it."""

from __future__ import annotations

from ingest.parsers.tabular import seventh_character_code
from service.codebook import Codebook
from service.schemas import (
    CodeInfo,
    CodeRef,
    IndexPath,
    InstructionalNote,
    SeventhCharacter,
    SeventhCharacters,
)


def _ref(row) -> CodeRef:  # type: ignore[no-untyped-def]
    return CodeRef(code=row.code, title=row.title, kind=row.kind, billable=row.billable)


def code_info(codebook: Codebook, year: str, code: str) -> CodeInfo | None:
    lineage = codebook.lineage(code)
    if not lineage:
        return None
    row = lineage[-1]
    notes = [
        InstructionalNote(kind=n.kind, text=n.text, from_code=entry.code, refs=n.refs)
        for entry in reversed(lineage)
        for n in codebook.notes(entry.code)
    ]
    seventh = None
    if row.seventh_from:
        options = codebook.seventh_characters(row.seventh_from)
        # A generated code already carries its 7th character; show the list at its parent.
        base = row.parent if row.generated and row.parent else row.code
        if row.kind == "code" or row.generated:
            full = {c: seventh_character_code(base, c) for c in options}
        else:
            full = {c: "" for c in options}
        exists = codebook.get_many([v for v in full.values() if v])
        seventh = SeventhCharacters(
            defined_at=row.seventh_from,
            options=[
                SeventhCharacter(
                    char=c, meaning=m, code=full[c],
                    billable=bool(exists.get(full[c]) and exists[full[c]].billable),
                )
                for c, m in options.items()
            ],
        )
    return CodeInfo(
        year=year,
        code=row.code,
        title=row.title,
        kind=row.kind,
        billable=row.billable,
        short_title=row.short_title,
        chapter=row.chapter,
        block=row.block,
        hierarchy=[_ref(r) for r in lineage[:-1]],
        children=[_ref(r) for r in codebook.children(row.code)],
        notes=notes,
        seventh_characters=seventh,
        index_paths=index_paths(codebook, lineage),
    )


def index_paths(codebook: Codebook, lineage: list) -> list[IndexPath]:  # type: ignore[type-arg]
    """Paths printing this code, then paths printing an incomplete ancestor ("S72.001-"),
    which the coder completes in the Tabular List to reach this code."""
    out: list[IndexPath] = []
    for depth, entry in enumerate(reversed(lineage)):
        if entry.kind in ("chapter", "block"):
            break
        for p in codebook.index_paths_to(entry.code):
            if depth == 0 or p.code.endswith("-") or entry.code == lineage[-1].parent:
                out.append(
                    IndexPath(source=p.source, path=p.path, printed_code=p.code,
                              column=p.column, manifestation=p.manif)
                )
    return out
