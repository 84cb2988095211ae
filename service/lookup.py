"""Term lookup: Alphabetic Index path matching fused with vector search.

A coder starts in the Alphabetic Index, so lexical matches on index paths weigh
most; titles and inclusion terms come next; vector search catches synonyms and
word orders the index does not print. Scores are in [0, 1].
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from nltk.stem.porter import PorterStemmer

from ingest.embeddings import Embedder
from service.index_registry import YearIndex

# Words that carry no meaning for matching (the index's own connectives included).
STOPWORDS = frozenset(
    "a an and or of the to in on for by at as is are was with w due nos nec other "
    "unspecified".split()
)
TOKEN_RE = re.compile(r"[a-z0-9]+")
_stemmer = PorterStemmer()
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lookup-semantic")
_query_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="lookup-chroma")
_lexical_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lookup-lexical")
# Query vectors of recent texts ("pain", "hypertension" come back note after note).
_vectors: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
_vectors_lock = threading.Lock()
VECTOR_CACHE = 20_000

# Weights: how much each kind of match counts (index paths first, as a coder works).
SOURCE_WEIGHT = {
    "index": 1.0, "eindex": 0.95, "neoplasm": 0.95, "drug": 0.95, "title": 0.92, "inclusion": 0.9,
}
LEXICAL_WEIGHT = 0.7
VECTOR_WEIGHT = 0.3


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    # Six characters of the stem: "neoplasm"/"neoplastic" and "diabetes"/"diabetic" are one
    # concept, as the index's own main terms ("Neoplasm, neoplastic") treat them.
    return _stemmer.stem(word)[:6]


def terms(text: str) -> list[str]:
    return [stem(w) for w in TOKEN_RE.findall(text.lower()) if w not in STOPWORDS]


@dataclass
class Match:
    text: str
    source: str  # index | eindex | neoplasm | drug | title | inclusion | vector:<collection>
    score: float


@dataclass
class LookupHit:
    code: str
    title: str
    billable: bool
    score: float
    matched: Match
    lexical: float = 0.0
    semantic: float = 0.0
    other_matches: list[Match] = field(default_factory=list)


def _fts_query(words: list[str], conjunction: str) -> str:
    return f" {conjunction} ".join(f'"{w}"' for w in dict.fromkeys(words))


def lexical_candidates(index: YearIndex, query: str, limit: int = 150) -> dict[str, Match]:
    """Best lexical match per code, scored by how much of the query and the row overlap."""
    raw_words = [w for w in TOKEN_RE.findall(query.lower()) if w not in STOPWORDS]
    if not raw_words:
        return {}
    q_terms = set(terms(query))
    rows = index.codebook.lexicon_search(_fts_query(raw_words, "AND"), limit)
    # Rows holding every word are the best a lexical match can do; widen only when none do
    # (an OR query must rank every row holding any word: ten times slower).
    if not rows and len(raw_words) > 1:
        rows += index.codebook.lexicon_search(_fts_query(raw_words, "OR"), limit)
    best: dict[str, Match] = {}
    for text, modifiers, source, _ref, code in rows:
        r_terms = set(terms(text))
        path_hits = q_terms & r_terms
        if not path_hits:  # matched only through modifiers or a see target: not this row
            continue
        see = modifiers if modifiers.startswith("→ see") else ""
        # Non-essential modifiers may supply query words (at half weight); lacking them
        # costs a row nothing.
        mod_hits = (q_terms & set(terms(modifiers))) - path_hits if not see else set()
        q_cov = (len(path_hits) + 0.5 * len(mod_hits)) / len(q_terms)
        r_cov = len(path_hits) / len(r_terms)
        score = q_cov * (0.5 + 0.5 * r_cov) * SOURCE_WEIGHT.get(source, 0.9)
        if code not in best or score > best[code].score:
            shown = f"{text} {see}" if see else text
            best[code] = Match(text=shown, source=source, score=round(score, 4))
    return best


def vector_candidates(index: YearIndex, embedding: np.ndarray, k: int = 15) -> dict[str, Match]:
    best: dict[str, Match] = {}
    # The two collections are searched at once (Chroma's Rust core releases the GIL).
    jobs = {c: _query_pool.submit(index.vectors.query, c, embedding, k)
            for c in ("index_paths", "tabular")}
    for collection, job in jobs.items():
        for hit in job.result():
            code = str(hit.metadata.get("code") or "")
            if not code:
                continue
            if code not in best or hit.score > best[code].score:
                best[code] = Match(text=hit.text, source=f"vector:{collection}",
                                   score=round(hit.score, 4))
    return best


def lookup(
    index: YearIndex, query: str, embedder: Embedder | None, limit: int = 10
) -> list[LookupHit]:
    """Top `limit` codes for `query`; `embedder` None means lexical matching only."""
    semantic_job = None
    if embedder is not None:
        # Embedding + vector search run beside the lexical search: both release the GIL.
        semantic_job = _pool.submit(
            lambda: vector_candidates(index, embedder.embed_query(query))
        )
    lexical = lexical_candidates(index, query)
    semantic = semantic_job.result() if semantic_job is not None else {}
    return _fuse(index, lexical, semantic, limit)


def lookup_many(index: YearIndex, queries: list[str], embedder: Embedder | None,
                limit: int = 10) -> dict[str, list[LookupHit]]:
    """lookup() for many queries at once (all of a note's facts): one embedding batch and
    one Chroma call per collection instead of one each per query. Same hits."""
    unique = list(dict.fromkeys(queries))
    semantic_job = None
    if embedder is not None and unique:
        semantic_job = _pool.submit(_vector_candidates_many, index, embedder, unique)
    # FTS5 runs with the GIL released: two threads use both cores.
    lexical = list(_lexical_pool.map(lambda q: lexical_candidates(index, q), unique))
    semantic = semantic_job.result() if semantic_job is not None else [{} for _ in unique]
    return {q: _fuse(index, lex, sem, limit)
            for q, lex, sem in zip(unique, lexical, semantic, strict=True)}


def _vector_candidates_many(index: YearIndex, embedder: Embedder, queries: list[str],
                            k: int = 15) -> list[dict[str, Match]]:
    embeddings = embed_cached(embedder, queries)
    jobs = {c: _query_pool.submit(index.vectors.query_many, c, embeddings, k)
            for c in ("index_paths", "tabular")}
    out: list[dict[str, Match]] = [{} for _ in queries]
    for collection, job in jobs.items():
        for best, hits in zip(out, job.result(), strict=True):
            for hit in hits:
                code = str(hit.metadata.get("code") or "")
                if code and (code not in best or hit.score > best[code].score):
                    best[code] = Match(text=hit.text, source=f"vector:{collection}",
                                       score=round(hit.score, 4))
    return out


def embed_cached(embedder: Embedder, texts: list[str]) -> np.ndarray:
    """embedder.embed(texts), keeping the last VECTOR_CACHE query vectors."""
    keys = [(embedder.model_name, t) for t in texts]
    with _vectors_lock:
        missing = list(dict.fromkeys(k for k in keys if k not in _vectors))
    if missing:
        fresh = embedder.embed([t for _, t in missing])
        with _vectors_lock:
            for key, vector in zip(missing, fresh, strict=True):
                _vectors[key] = vector
            while len(_vectors) > VECTOR_CACHE:
                _vectors.popitem(last=False)
    with _vectors_lock:
        found = {k: _vectors[k] for k in keys if k in _vectors}
        for k in found:
            _vectors.move_to_end(k)
    rows = [found.get(k) for k in keys]
    if any(r is None for r in rows):  # evicted meanwhile by another thread: embed again
        return embedder.embed(texts)
    return np.stack(rows) if rows else np.empty((0, embedder.dimension), dtype=np.float32)


def _fuse(index: YearIndex, lexical: dict[str, Match], semantic: dict[str, Match],
          limit: int) -> list[LookupHit]:
    fused: dict[str, float] = {}
    for code in set(lexical) | set(semantic):
        lex = lexical[code].score if code in lexical else 0.0
        sem = max(semantic[code].score, 0.0) if code in semantic else 0.0
        fused[code] = LEXICAL_WEIGHT * lex + VECTOR_WEIGHT * sem
    top = sorted(fused, key=lambda c: (-fused[c], c))[: max(limit * 3, limit)]
    rows = index.codebook.get_many(top)
    hits: list[LookupHit] = []
    for code in top:
        row = rows.get(code)
        if row is None:
            continue
        matches = [m for m in (lexical.get(code), semantic.get(code)) if m is not None]
        matches.sort(key=lambda m: -m.score)
        hits.append(
            LookupHit(
                code=code, title=row.title, billable=row.billable, score=round(fused[code], 4),
                matched=matches[0],
                lexical=lexical[code].score if code in lexical else 0.0,
                semantic=semantic[code].score if code in semantic else 0.0,
                other_matches=matches[1:],
            )
        )
        if len(hits) == limit:
            break
    return hits
