"""Cross-checks between sources: billable status vs the CMS order file, and every code
that an index path, table cell or instructional note points to vs the Tabular List.

Each problem becomes a BuildIssue; `explained` is set only when the cause is known
(for example a Tabular note that restricts a 7th character).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ingest.codebook import NOTE_REF_RE, code_ref
from ingest.parsers.order_file import OrderRecord
from ingest.records import BuildIssue, TabularEntry

if TYPE_CHECKING:
    from ingest.build import ParsedYear

# "7th characters D and S do not apply to codes in category S06 with 6th character 7 ..."
_RESTRICTION_RE = re.compile(
    r"7th characters? ((?:[A-Z0-9](?:, | and | or )?)+) do(?:es)? not apply", re.IGNORECASE
)


def _restricted_chars(entries: dict[str, TabularEntry], code: str) -> tuple[set[str], str]:
    """7th characters that a note on `code` or an ancestor says do not apply."""
    node = entries.get(code)
    while node is not None:
        for note in node.notes:
            m = _RESTRICTION_RE.search(note.text)
            if m:
                return set(re.findall(r"\b[A-Z0-9]\b", m.group(1))), f"{node.code}: {note.text}"
        node = entries.get(node.parent) if node.parent else None
    return set(), ""


def apply_order_file(entries: list[TabularEntry], order: list[OrderRecord]) -> list[BuildIssue]:
    """Make billable status agree with the CMS order file (authoritative) and report every
    disagreement with the Tabular List, explained where a Tabular note accounts for it."""
    by_code = {e.code: e for e in entries}
    valid = {o.code for o in order if o.billable}
    headers = {o.code for o in order if not o.billable}
    issues: list[BuildIssue] = []
    for e in entries:
        if e.kind in ("chapter", "block"):
            continue
        if e.billable and e.code not in valid:
            chars, why = _restricted_chars(by_code, e.parent or "")
            explained = e.generated and e.code[-1] in chars
            issues.append(
                BuildIssue(
                    "billable_mismatch",
                    e.code,
                    "leaf in the Tabular List but not valid in the order file"
                    + (f" (explained by note {why})" if explained else ""),
                    explained,
                )
            )
            e.billable = False
        elif not e.billable and e.code in valid:
            issues.append(
                BuildIssue("billable_mismatch", e.code,
                           "valid in the order file but not a Tabular leaf", False)
            )
            e.billable = True
    known = set(by_code)
    for code in sorted((valid | headers) - known):
        issues.append(
            BuildIssue("order_code_missing", code, "in the order file, not in the Tabular")
        )
    return issues


def _exists(ref: str, codes: set[str]) -> bool:
    return ref in codes


def check_references(parsed: ParsedYear) -> list[BuildIssue]:
    codes = {e.code for e in parsed.tabular}
    issues: list[BuildIssue] = []

    def check(kind: str, printed: str, where: str) -> None:
        ref = code_ref(printed)
        if not _exists(ref, codes):
            issues.append(BuildIssue(kind, printed, where, False))

    for t in parsed.terms:
        where = f"{t.source}: {t.path_text}"
        for printed in (t.code, t.manif, t.seecat, t.subcat, *parsed.extra_codes.get(t.id, [])):
            if printed:
                check("dangling_index_code", printed, where)
    paths = {t.id: t.path_text for t in parsed.terms}
    for c in parsed.cells:
        check("dangling_table_code", c.code, f"{c.table}: {paths.get(c.term_id)} [{c.column}]")
    for r in parsed.see_refs:
        if r.target_term_id is None:
            generic = r.reason.startswith(("generic", "table:"))
            issues.append(
                BuildIssue(
                    "unresolved_see", r.target_text,
                    f"{paths.get(r.term_id)} ({r.kind}): {r.reason}", generic,
                )
            )
    categories = sorted(c for c in codes if len(c) == 3)
    by_title = {e.title.lower(): e.code for e in parsed.tabular}
    for e in parsed.tabular:
        for note in e.notes:
            for ref in NOTE_REF_RE.findall(note.text):
                if "-" in ref.rstrip("-"):  # a range "E08-E13": must span at least one category
                    first, last = (code_ref(p)[:3] for p in ref.split("-", 1))
                    ok = any(first <= c <= last for c in categories)
                else:
                    ok = _exists(code_ref(ref), codes)
                if not ok:
                    issues.append(_dangling_note(ref, e.code, note.kind, note.text, by_title))
    return issues


def _dangling_note(ref: str, at: str, kind: str, text: str, by_title: dict[str, str]) -> BuildIssue:
    """A note cites a code the Tabular lacks. When the note's words are exactly the title of
    another code, the source has a typo in the code: say which code the words name."""
    words = re.sub(r"\s*\([^)]*\)\s*$", "", text).strip().lower()
    meant = by_title.get(words)
    detail = f"{at} {kind}: {text}"
    if meant:
        detail += f" (no such code; the note's words are the title of {meant}: source typo)"
    return BuildIssue("dangling_note_ref", ref, detail, explained=meant is not None)
