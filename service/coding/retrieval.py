"""Per-fact retrieval: what a coder would look at before choosing a code.

For each fact, queries are built from its normalized term, its documented modifiers and
the facts it is linked to ("with", "due to"), and run through the index lookup (Alphabetic
Index paths and Tabular titles fused with vector search). Candidates keep the query that
found them. Guideline passages come from the guideline vectors.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

from ingest.embeddings import Embedder
from service.coding.models import Candidate
from service.extraction.models import Extraction, Fact
from service.index_registry import YearIndex
from service.lookup import LookupHit, embed_cached, lookup_many
from service.validation import Citation

QUALIFIERS = Path(__file__).parent.parent / "rules" / "context_qualifiers.json"
SITE_ADJECTIVES = Path(__file__).parent.parent / "rules" / "site_adjectives.json"
PER_QUERY = 20
EXCERPT = 200  # characters of note each side of a fact, for a model's prompt
TOP_CANDIDATES = 20
# External-cause codes (chapter 20) say how an injury happened; a fact is a condition, so
# the External Cause Index's "Fracture → X58" is never its code (Guidelines I.C.20).
EXTERNAL_CAUSE = tuple("VWXY")
# How a modifier reads inside an index query ("chronic kidney disease stage 3a").
PHRASES = {
    "laterality": "{v}", "acuity": "{v}", "heart_failure_type": "{v}", "ckd_stage": "stage {v}",
    "ulcer_stage": "stage {v}", "severity": "{v}", "exacerbation": "{v}",
    "fracture_type": "{v}", "displacement": "{v}", "healing": "with {v}",
    "encounter": "{v} encounter", "diabetes_control": "{v}", "trimester": "{v} trimester",
    "tobacco_product": "{v}", "diabetes_type": "{v}",
}


@dataclass
class FactRetrieval:
    fact: Fact
    queries: list[tuple[str, str]]  # (label, query)
    candidates: list[Candidate]
    partners: dict[str, str]  # label of a combination query → partner fact id
    partner_facts: dict[str, Fact]  # label → the partner fact
    excerpt: str = ""  # the note around the fact, for a model's prompt
    note: str = ""  # the whole note (a model's prompt holds it once, for all facts)


# Where a site phrase ends though no punctuation does: "of the scaphoid was observed".
SITE_STOP = (r"was|were|is|are|has|had|have|which|that|who|and|with|without|showing|revealed|"
             r"compatible|observed|measuring|since|after|for|but|when|while|during|ago")
SITE_END = re.compile(rf"\s+(?:{SITE_STOP})\b.*$", re.I)
SITE_AFTER = re.compile(r"\s+((?:of|in|on|to)\s+(?:the\s+)?[a-z][a-z \-]{2,80}?)"
                        rf"(?=[,.;:\n]|$|\s+(?:{SITE_STOP})\b)", re.I)

SITE_BEFORE = re.compile(r"\b([A-Za-z]+)\s+$")

BOTH = re.compile(r"\bboth\s+", re.I)
# The side, and whose site it is: "in her left eye" is "in the eye" for the Index.
SIDE_WORD = re.compile(r"\b(?:right|left|bilateral|his|her|their|its)\s+", re.I)
# "on" names a site only with a determiner or a side ("on the back", "on his left arm").
NOT_A_SITE = re.compile(r"on\s+(?!(?:the|his|her|their|its|left|right|both)\b)", re.I)


@cache
def _site_adjectives() -> dict[str, str]:
    return json.loads(SITE_ADJECTIVES.read_text(encoding="utf-8"))["sites"]


def documented_site(fact: Fact, text: str) -> tuple[str | None, str | None]:
    """The site phrase written after a fact ("of the right kidney"), and the site noun of
    an anatomical adjective just before it ("testicular" → testis)."""
    if not text:
        return None, None
    after = SITE_AFTER.match(text, fact.end)
    before = SITE_BEFORE.search(text[max(0, fact.start - 40):fact.start])
    noun = _site_adjectives().get(before.group(1).lower()) if before else None
    # "of both kidneys" is a side (the laterality modifier), the site is "kidneys"
    site = BOTH.sub("", SITE_END.sub("", after.group(1))) if after else None
    if site and NOT_A_SITE.match(site) and not _site_words().search(site):
        site = None  # "on hemodialysis", "on admission": a treatment or a time
    return site, noun


@cache
def _site_words() -> re.Pattern[str]:
    words = sorted({*_site_adjectives(), *_site_adjectives().values()}, key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(re.escape(w) for w in words) + r")s?\b", re.I)


NEOPLASM_TERM = re.compile(r"cancer|carcinoma|malignan|neoplasm|tumou?r|sarcoma|lymphoma|"
                           r"leukemia|melanoma|metasta", re.I)


def sentence_of(text: str, fact: Fact) -> str:
    """The sentence (or clause up to ';') the fact is in."""
    start = max(text.rfind(c, 0, fact.start) for c in ".;\n") + 1
    ends = [i for i in (text.find(c, fact.end) for c in ".;\n") if i >= 0]
    return text[start:min(ends) if ends else len(text)]


def sentence_site(fact: Fact, text: str) -> str | None:
    """The site named nearest the fact in its own sentence ("a testicle completely
    occupied by a tumor" → testis), for a neoplasm whose site is not written beside it."""
    start = max(text.rfind(c, 0, fact.start) for c in ".;\n") + 1
    ends = [i for i in (text.find(c, fact.end) for c in ".;\n") if i >= 0]
    end = min(ends) if ends else len(text)
    found = [(min(abs(m.start() - fact.end), abs(fact.start - m.end())), m.group(1).lower())
             for m in _site_words().finditer(text, start, end)
             if not (fact.start <= m.start() < fact.end)]
    if not found:
        return None
    word = min(found)[1]
    return _site_adjectives().get(word, word)  # an adjective, or a site noun itself


def fact_queries(fact: Fact, extraction: Extraction, text: str = "",
                 localized: frozenset[str] = frozenset(),
                 see_also: dict[str, str] | None = None
                 ) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """(label, query) pairs for a fact, and the linked fact of each combination label.
    `localized`: the Index's main terms with a "localized" sub-term; `see_also`: where a
    main term without a code of its own sends a coder (necrosis → gangrene)."""
    term = fact.normalized or ""
    if fact.assertion == "family":
        return [("family history", f"family history of {term}")], {}
    queries = [("term", term)]
    if fact.assertion == "historical":
        queries.insert(0, ("history", f"history of {term}"))
    # The side is chosen among the siblings afterwards (choosers._fix_laterality): a query
    # "hematoma left" would cost an embedding and find what "hematoma" finds.
    words = [PHRASES[m.axis].format(v=m.value) for m in fact.modifiers
             if m.axis in PHRASES and m.value.lower() not in term.lower()
             and m.axis != "laterality"]
    # The site written after the fact ("fracture of right distal radius") goes with it,
    # without its side: no Index path names one ("Fracture > radius > distal end").
    after, noun = documented_site(fact, text)
    if after and len(after.split()) <= 6:
        words = [w for w in words if w.lower() not in after.lower().split()]
        words.insert(0, SIDE_WORD.sub("", after))
    elif noun and noun not in term.lower():  # "testicular tumor" → tumor of testis
        words.insert(0, f"of {noun}")
    if words:
        queries.append(("term+modifiers", f"{term} {' '.join(dict.fromkeys(words))}"))
    # The Index words a site as a noun ("Pain > kidney"); the note often as an adjective
    # inside the phrase ("pain in the right renal fossa").
    site = _site_words().search(after) if after else None
    if site:
        noun = _site_adjectives().get(site.group(1).lower(), site.group(1).lower())
        if not re.search(rf"\b{re.escape(noun)}\b", f"{after} {term}", re.I):  # "hemiscrotum"
            queries.append(("term+site", f"{term} {noun}"))
    # The Index lists a site under the main term, the term's head noun: "kidney lithiasis"
    # (urinary calculus) is "Calculus > kidney", not "Calculus > urinary".
    site_noun = _site_adjectives().get(site.group(1).lower(), site.group(1).lower()) \
        if site else noun
    head = term.split()[-1] if " " in term else ""
    if site_noun and head and not _site_words().fullmatch(head) \
            and site_noun.lower() not in term.lower():
        queries.append(("term+site", f"{head} {site_noun}"))
    # An injury's site may be written apart from it: "a fall ... fractured her left hip".
    if fact.kind == "injury" and not after and not noun \
            and (elsewhere := sentence_site(fact, text)) and elsewhere not in term.lower():
        queries.append(("term+site", f"{term} {elsewhere}"))
    if (after or noun) and term.lower() in localized:  # edema of the legs: localized
        queries.append(("term+localized", f"{term} localized"))
    if see_also and term.lower() in see_also:
        queries.append(("see also", see_also[term.lower()]))
    partners: dict[str, str] = {}
    by_id = {f.id: f for f in extraction.facts}
    for rel in extraction.relations:
        if fact.id not in (rel.source, rel.target):
            continue
        other = by_id[rel.target if rel.source == fact.id else rel.source]
        joiner = "due to" if rel.kind == "due_to" and rel.source == fact.id else "with"
        cause = rel.kind == "due_to" and rel.target == fact.id  # the other fact's query
        # "treated with metformin", "CKD with a kidney transplant" combine nothing; a
        # condition due to a procedure may (a postprocedural code).
        if not other.normalized or other.assertion not in ("present", "possible") \
                or other.kind == "medication" or (other.kind == "procedure" and joiner == "with"):
            continue
        label = f"{joiner} {other.id}"
        if cause:  # the consequence's "a due to b" serves both facts: one query, one lookup
            queries.append((label, f"{other.normalized} due to {term}"))
        elif joiner == "with":  # one query for both facts of the pair: "a with b"
            first, second = sorted((term, other.normalized))
            queries.append((label, f"{first} with {second}"))
        else:
            queries.append((label, f"{term} due to {other.normalized}"))
        partners[label] = other.id
    return queries, partners


WORD_AXES = ("acuity", "severity", "exacerbation", "trimester")


def _with_modifier_words(fact: Fact) -> str | None:
    """The term with only acuity / severity / trimester words, as fact_queries writes it.
    The trimester is a note-level cue on every fact of a pregnancy note: a vector of its
    own for "fever second trimester" would cost an embedding per fact."""
    term = fact.normalized or ""
    words = [PHRASES[m.axis].format(v=m.value) for m in fact.modifiers
             if m.axis in PHRASES and m.value.lower() not in term.lower()
             and m.axis != "laterality"]
    if not words or any(m.axis not in WORD_AXES for m in fact.modifiers
                        if m.axis in PHRASES and m.axis != "laterality"):
        return None
    return f"{term} {' '.join(dict.fromkeys(words))}"


def retrieve(index: YearIndex, embedder: Embedder | None, fact: Fact,
             extraction: Extraction, text: str = "") -> FactRetrieval:
    return retrieve_all(index, embedder, [fact], extraction, text)[fact.id]


def retrieve_all(index: YearIndex, embedder: Embedder | None, facts: list[Fact],
                 extraction: Extraction, text: str = "") -> dict[str, FactRetrieval]:
    """Retrieval for all of a note's facts: their queries are looked up together (one
    embedding batch, one vector search per collection)."""
    # "Mass > localized" (R22.9) is no answer where the Index lists sites (Mass > kidney).
    localized = index.codebook.localized_terms() - index.codebook.sited_terms()
    see_also = index.codebook.see_also_terms()
    planned = {f.id: fact_queries(f, extraction, text, localized, see_also) for f in facts}
    # A query adding only severity, acuity or trimester words searches its term's vectors.
    plain = {q: f.normalized or "" for f in facts for label, q in planned[f.id][0]
             if label == "term+modifiers" and q == _with_modifier_words(f)}
    hits = lookup_many(index, [q for queries, _ in planned.values() for _, q in queries],
                       embedder, PER_QUERY, plain)
    return {f.id: _assemble(index, f, *planned[f.id], hits, extraction, text) for f in facts}


def _assemble(index: YearIndex, fact: Fact, queries: list[tuple[str, str]],
              partners: dict[str, str], hits: dict[str, list[LookupHit]],
              extraction: Extraction, text: str) -> FactRetrieval:
    merged: dict[str, Candidate] = {}
    for label, query in queries:
        for hit in hits[query]:
            if hit.code.startswith(EXTERNAL_CAUSE):
                continue
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
    table = _neoplasm_table(index, fact, text) or _unlisted_site(index, fact, text)
    if table is not None:  # the table's answer, whatever a search made of that code
        seen = merged.get(table.code)
        if seen is not None:
            table.found_by = list(dict.fromkeys([*seen.found_by, *table.found_by]))
            table.scores = {**seen.scores, **table.scores}
        merged[table.code] = table
    for candidate in merged.values():
        _check_qualifiers(candidate, fact, text)
    ranked = sorted(merged.values(), key=lambda c: (-c.score, c.code))
    # Keep the top of the list, and each query's own best few (a combination may rank low).
    keep = {c.code for c in ranked[:TOP_CANDIDATES]}
    for label, _ in queries:
        keep |= {c.code for c in sorted(ranked, key=lambda c: -c.scores.get(label, 0))[:3]}
    by_id = {f.id: f for f in extraction.facts}
    linked = {label: by_id[fid] for label, fid in partners.items()}
    excerpt = text[max(0, fact.start - EXCERPT):fact.end + EXCERPT] if text else fact.text
    return FactRetrieval(fact, queries, [c for c in ranked if c.code in keep], partners, linked,
                         excerpt, text)


# Neoplasm table column by the fact's term: the Index sends "tumor", "carcinoma",
# "adenoma", "metastasis" to the table, by site.
NEOPLASM_COLUMNS = [
    (re.compile(r"metasta|secondary", re.I), "malignant_secondary"),
    (re.compile(r"carcinoma|malignan|cancer|sarcoma", re.I), "malignant_primary"),
    (re.compile(r"benign|adenoma\b", re.I), "benign"),
    (re.compile(r"uncertain behavior", re.I), "uncertain_behavior"),
    (re.compile(r"neoplasm|tumou?r|neoplasia", re.I), "unspecified_behavior"),
]
SITE_WORDS = re.compile(r"^(?:of|in|on|to)\s+(?:(?:the|his|her|their|its)\s+)?"
                        r"(?:(?:left|right|both)\s+)?", re.I)


def _sites(fact: Fact, text: str) -> list[str]:
    """Site words to look up in a table or under a main term, best first: an anatomical
    adjective ("testicular"), the words after the fact ("of the left testis"), else for a
    history a site word of the term itself ("colon cancer"), else the site named nearest in
    its sentence ("the testicle ... occupied by a tumor")."""
    sites: list[str] = []
    after, noun = documented_site(fact, text)
    if after:
        words = SITE_WORDS.sub("", after).split()
        sites += [" ".join(words[:2]), words[0]] if words else []
    if noun:
        sites.insert(0, noun)
    # A relative's or a past "colon cancer": the term's own site, not the next relative's
    # (a current one keeps the Index's own sub-term: "Tumor > testicular").
    own = _site_words().search(fact.normalized or "") \
        if fact.assertion in ("family", "historical") else None
    if not sites and own:
        sites.append(own.group(1).lower())
    if not sites:
        sites += [s for s in [sentence_site(fact, text)] if s]
    return list(dict.fromkeys(_site_adjectives().get(s.lower(), s) for s in sites if s))


def _unlisted_site(index: YearIndex, fact: Fact, text: str) -> Candidate | None:
    """A term the Index lists by site only through "see X, by site" ("Mass > specified organ
    NEC — see Disease, by site"): "a mass in the left testis" → Disease, testis (N50.9)."""
    term = fact.normalized or ""
    # A main term alone ("mass", "lesion"), not a neoplasm's: "a colon mass compatible with
    # carcinoma" is the carcinoma, coded from its own fact.
    if not text or " " in term or fact.kind == "injury" \
            or NEOPLASM_TERM.search(sentence_of(text, fact)):
        return None
    sites = [s for s in _sites(fact, text) if _site_words().fullmatch(s)]  # organs only
    for site in sites:
        entry = index.codebook.unlisted_site_entry(term, site)
        row = index.codebook.get(entry[1]) if entry else None
        if entry and row:
            return Candidate(code=row.code, title=row.title, billable=row.billable,
                             score=0.96, matched=entry[0], source="see_by_site",
                             found_by=["term+modifiers"], scores={"term+modifiers": 0.96})
    return None


def _neoplasm_table(index: YearIndex, fact: Fact, text: str) -> Candidate | None:
    """The Neoplasm table cell for a neoplasm fact with a documented site ("testicular
    tumor" → testis, Unspecified Behavior → D49.59), as a coder reads the table."""
    term = fact.normalized or ""
    column = next((col for pattern, col in NEOPLASM_COLUMNS if pattern.search(term)), None)
    if column is None or not text or "melanoma" in term.lower():  # Melanoma: its own
        return None  # Index entries code it by site (C43), not the table
    sites = _sites(fact, text)
    if not sites and column == "benign":  # "Adenoma — see Neoplasm, benign, by site"
        sites.append("unknown site or unspecified")
    for site in dict.fromkeys(s for s in sites if s):
        cell = index.codebook.neoplasm_cell(site, column)
        if cell is None:
            continue
        path, code = cell
        row = index.codebook.get(code)
        if row is None:
            return None
        label = column.replace("_", " ").title()
        return Candidate(code=code, title=row.title, billable=row.billable, score=0.97,
                         matched=f"{path} > {label}", source="neoplasm_table",
                         found_by=["term+modifiers"], scores={"term+modifiers": 0.97})
    return None


@cache
def _qualifier_rules() -> tuple[float, list[tuple[str, re.Pattern[str], set[str],
                                                   re.Pattern[str] | None]]]:
    data = json.loads(QUALIFIERS.read_text(encoding="utf-8"))
    return data["penalty"], [
        (r["name"], re.compile(r["match"], re.I), set(r.get("assertions", [])),
         re.compile(r["note"], re.I) if "note" in r else None) for r in data["rules"]]


@lru_cache(maxsize=1 << 16)  # the same Index paths and titles come back note after note
def _qualifiers_named(matched: str, title: str) -> tuple[int, ...]:
    """The qualifier rules whose words a candidate's path or title carries."""
    return tuple(i for i, (_, match, _, _) in enumerate(_qualifier_rules()[1])
                 if match.search(matched) or match.search(title))


@lru_cache(maxsize=64)
def _note_says(pattern: re.Pattern[str], text: str) -> bool:
    return pattern.search(text) is not None  # once per note, not once per candidate


def _check_qualifiers(candidate: Candidate, fact: Fact, text: str) -> None:
    """Rank lower a path that adds what the note does not say ("Newborn > infection >
    urinary tract" for an adult's UTI, "History > family > diabetes" for a present one)."""
    penalty, rules = _qualifier_rules()
    for i in _qualifiers_named(candidate.matched, candidate.title):
        name, match, assertions, note = rules[i]
        if fact.assertion in assertions or (note is not None and _note_says(note, text)):
            continue
        if match.search(fact.normalized or ""):
            continue  # the term itself says it: "ex-smoker" is a history of dependence
        candidate.score = round(candidate.score * penalty, 4)
        candidate.scores = {k: round(v * penalty, 4) for k, v in candidate.scores.items()}
        candidate.not_documented = name
        return


def guideline_passages_many(index: YearIndex, embedder: Embedder | None, texts: list[str],
                            k: int = 2, min_score: float = 0.45) -> list[list[Citation]]:
    """The guideline passages nearest each text (one embedding batch, one search)."""
    if embedder is None or not texts:
        return [[] for _ in texts]
    out: list[list[Citation]] = []
    vectors = embed_cached(embedder, texts, index.query_vectors(embedder.model_name))
    for hits in index.vectors.query_many("guidelines", vectors, k):
        cited = []
        for hit in hits:
            if hit.score < min_score:
                continue
            citation = str(hit.metadata.get("citation", ""))
            title, _, body = hit.text.partition("\n")
            cited.append(Citation(source="guideline", ref=citation, title=title,
                                  text=body[:400] + ("…" if len(body) > 400 else "")))
        out.append(cited)
    return out
