"""Per-fact retrieval: what a coder would look at before choosing a code.

For each fact, queries are built from its normalized term, its documented modifiers and
the facts it is linked to ("with", "due to"), and run through the index lookup (Alphabetic
Index paths and Tabular titles fused with vector search). Candidates keep the query that
found them. Guideline passages come from the guideline vectors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.embeddings import Embedder
from service.coding.models import Candidate
from service.extraction.models import Extraction, Fact
from service.index_registry import YearIndex
from service.lookup import lookup
from service.validation import Citation

PER_QUERY = 20
EXCERPT = 200  # characters of note each side of a fact, for a model's prompt
TOP_CANDIDATES = 20
# How a modifier reads inside an index query ("chronic kidney disease stage 3a").
PHRASES = {
    "laterality": "{v}", "acuity": "{v}", "heart_failure_type": "{v}", "ckd_stage": "stage {v}",
    "ulcer_stage": "stage {v}", "severity": "{v}", "exacerbation": "{v}",
    "fracture_type": "{v}", "displacement": "{v}", "healing": "with {v}",
    "encounter": "{v} encounter", "diabetes_control": "{v}", "trimester": "{v} trimester",
}


@dataclass
class FactRetrieval:
    fact: Fact
    queries: list[tuple[str, str]]  # (label, query)
    candidates: list[Candidate]
    partners: dict[str, str]  # label of a combination query → partner fact id
    partner_facts: dict[str, Fact]  # label → the partner fact
    excerpt: str = ""  # the note around the fact, for a model's prompt


SITE_AFTER = re.compile(r"\s+((?:of|in|on|to)\s+(?:the\s+)?[a-z][a-z \-]{2,40}?)(?=[,.;:\n]|$)",
                        re.I)


def fact_queries(fact: Fact, extraction: Extraction, text: str = ""
                 ) -> tuple[list[tuple[str, str]], dict[str, str]]:
    term = fact.normalized or ""
    if fact.assertion == "family":
        return [("family history", f"family history of {term}")], {}
    queries = [("term", term)]
    if fact.assertion == "historical":
        queries.insert(0, ("history", f"history of {term}"))
    words = [PHRASES[m.axis].format(v=m.value) for m in fact.modifiers
             if m.axis in PHRASES and m.value.lower() not in term.lower()]
    # The site written after the fact ("fracture of right distal radius") goes with it.
    site = SITE_AFTER.match(text, fact.end) if text else None
    if site and len(site.group(1).split()) <= 6:
        words.insert(0, site.group(1))
    if words:
        queries.append(("term+modifiers", f"{term} {' '.join(dict.fromkeys(words))}"))
    partners: dict[str, str] = {}
    by_id = {f.id: f for f in extraction.facts}
    for rel in extraction.relations:
        if fact.id not in (rel.source, rel.target):
            continue
        other = by_id[rel.target if rel.source == fact.id else rel.source]
        if not other.normalized or other.assertion not in ("present", "possible"):
            continue
        joiner = "due to" if rel.kind == "due_to" and rel.source == fact.id else "with"
        label = f"{joiner} {other.id}"
        queries.append((label, f"{term} {joiner} {other.normalized}"))
        partners[label] = other.id
    return queries, partners


def retrieve(index: YearIndex, embedder: Embedder | None, fact: Fact,
             extraction: Extraction, text: str = "") -> FactRetrieval:
    queries, partners = fact_queries(fact, extraction, text)
    merged: dict[str, Candidate] = {}
    for label, query in queries:
        for hit in lookup(index, query, embedder, PER_QUERY):
            seen = merged.get(hit.code)
            if seen is None:
                merged[hit.code] = Candidate(
                    code=hit.code, title=hit.title, billable=hit.billable, score=hit.score,
                    matched=hit.matched.text, source=hit.matched.source, found_by=[label],
                    scores={label: hit.score})
            else:
                seen.found_by.append(label)
                seen.scores[label] = max(hit.score, seen.scores.get(label, 0.0))
                if hit.score > seen.score:
                    seen.score, seen.matched, seen.source = (hit.score, hit.matched.text,
                                                             hit.matched.source)
    ranked = sorted(merged.values(), key=lambda c: (-c.score, c.code))
    # Keep the top of the list, and each query's own best few (a combination may rank low).
    keep = {c.code for c in ranked[:TOP_CANDIDATES]}
    for label, _ in queries:
        keep |= {c.code for c in sorted(ranked, key=lambda c: -c.scores.get(label, 0))[:3]}
    by_id = {f.id: f for f in extraction.facts}
    linked = {label: by_id[fid] for label, fid in partners.items()}
    excerpt = text[max(0, fact.start - EXCERPT):fact.end + EXCERPT] if text else fact.text
    return FactRetrieval(fact, queries, [c for c in ranked if c.code in keep], partners, linked,
                         excerpt)


def guideline_passages(index: YearIndex, embedder: Embedder | None, text: str,
                       k: int = 2, min_score: float = 0.45) -> list[Citation]:
    if embedder is None:
        return []
    out = []
    for hit in index.vectors.query("guidelines", embedder.embed_query(text), k):
        if hit.score < min_score:
            continue
        citation = str(hit.metadata.get("citation", ""))
        title, _, body = hit.text.partition("\n")
        out.append(Citation(source="guideline", ref=citation, title=title,
                            text=body[:400] + ("…" if len(body) > 400 else "")))
    return out
