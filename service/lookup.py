"""Term lookup: Alphabetic Index path matching fused with vector search.

A coder starts in the Alphabetic Index, so lexical matches on index paths weigh
most; titles and inclusion terms come next; vector search catches synonyms and
word orders the index does not print. Scores are in [0, 1].
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ingest.embeddings import Embedder
from ingest.lexical_index import SOURCE_WEIGHT, STOPWORDS, TOKEN_RE, stem, terms
from ingest.vector_store import VectorHit
from service.codebook import CodeRow
from service.index_registry import YearIndex

__all__ = ["SOURCE_WEIGHT", "STOPWORDS", "TOKEN_RE", "LookupHit", "Match", "embed_cached",
           "lexical_candidates", "lookup", "lookup_many", "stem", "terms"]

_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lookup-semantic")
_query_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="lookup-chroma")
# Query vectors of recent texts ("pain", "hypertension" come back note after note).
_vectors: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
_vectors_lock = threading.Lock()
VECTOR_CACHE = 20_000
# Vector search answers of recent queries, per index and model (ids and scores only).
_vector_hits: OrderedDict[tuple[str, str, int, str], dict[str, list[VectorHit]]] = OrderedDict()
_vector_hits_lock = threading.Lock()
COLLECTIONS = ("index_paths", "tabular")

LEXICAL_WEIGHT = 0.7
VECTOR_WEIGHT = 0.3


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


def lexical_candidates(index: YearIndex, query: str) -> dict[str, Match]:
    """Best lexical match per code (service/lexical_index.py)."""
    return {m.code: Match(text=m.text, source=m.source, score=m.score)
            for m in index.lexical.search(query)}


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
                limit: int = 10, vector_text: Mapping[str, str] | None = None
                ) -> dict[str, list[LookupHit]]:
    """lookup() for many queries at once (all of a note's facts): one embedding batch and
    one Chroma call per collection instead of one each per query. Same hits.
    `vector_text`: the text a query's vector search uses, where not the query itself
    ("sepsis acute" → "sepsis": the word counts in the lexical match, while a vector of
    its own would cost an embedding and find what "sepsis" finds)."""
    unique = list(dict.fromkeys(queries))
    vector_text = vector_text or {}
    searched = list(dict.fromkeys(vector_text.get(q, q) for q in unique))
    semantic_job = None
    if embedder is not None and unique:
        semantic_job = _pool.submit(_vector_candidates_many, index, embedder, searched)
    lexical = [lexical_candidates(index, q) for q in unique]
    found = dict(zip(searched, semantic_job.result(), strict=True)) if semantic_job else {}
    semantic = [found.get(vector_text.get(q, q), {}) for q in unique]
    ranked = [_rank(lex, sem, limit) for lex, sem in zip(lexical, semantic, strict=True)]
    rows = index.codebook.get_many(list({c for top, _ in ranked for c in top}))  # one read
    return {q: _hits(top, fused, lex, sem, rows, limit)
            for q, (top, fused), lex, sem in zip(unique, ranked, lexical, semantic,
                                                 strict=True)}


def _vector_candidates_many(index: YearIndex, embedder: Embedder, queries: list[str],
                            k: int = 15) -> list[dict[str, Match]]:
    # A query's nearest vectors never change within an index: only new queries are searched.
    # A rebuilt index (same path, new built_at) starts afresh.
    built = f"{index.path}@{index.manifest.get('built_at')}"
    keys = [(built, embedder.model_name, k, q) for q in queries]
    with _vector_hits_lock:
        known = {key: _vector_hits[key] for key in keys if key in _vector_hits}
    saved = index.query_hits(embedder.model_name, k)  # the vocabulary's, from the build
    if saved is not None and all(c in saved.ids for c in COLLECTIONS):
        for key, q in zip(keys, queries, strict=True):
            if key not in known and q in saved.rows:
                known[key] = {c: saved.get(q, c) or [] for c in COLLECTIONS}
    fresh = [q for key, q in zip(keys, queries, strict=True) if key not in known]
    if fresh:
        embeddings = embed_cached(embedder, fresh, index.query_vectors(embedder.model_name))
        jobs = {c: _query_pool.submit(index.vectors.query_many, c, embeddings, k, False)
                for c in COLLECTIONS}
        searched = {c: job.result() for c, job in jobs.items()}
        with _vector_hits_lock:
            for i, q in enumerate(fresh):
                key = (built, embedder.model_name, k, q)
                known[key] = _vector_hits[key] = {c: searched[c][i] for c in COLLECTIONS}
            while len(_vector_hits) > VECTOR_CACHE:
                _vector_hits.popitem(last=False)
    results = {c: [known[key][c] for key in keys] for c in COLLECTIONS}
    # Ids name their codebook row ("code:E11.9", "term:123"): code and text come from there.
    targets = index.codebook.vector_targets(
        list({h.id for hits in results.values() for q in hits for h in q}))
    out: list[dict[str, Match]] = [{} for _ in queries]
    for collection, per_query in results.items():
        for best, hits in zip(out, per_query, strict=True):
            for hit in hits:
                code, text = targets.get(hit.id, ("", ""))
                if code and (code not in best or hit.score > best[code].score):
                    best[code] = Match(text=text, source=f"vector:{collection}",
                                       score=round(hit.score, 4))
    return out


def embed_cached(embedder: Embedder, texts: list[str],
                 saved: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
    """embedder.embed(texts), keeping the last VECTOR_CACHE query vectors; `saved` holds
    vectors made by the same model at index build time (the extraction vocabulary)."""
    if saved and all(t in saved for t in texts):
        return np.stack([saved[t] for t in texts])
    if saved:
        with _vectors_lock:
            for t in texts:
                if t in saved:
                    _vectors[(embedder.model_name, t)] = saved[t]
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
    top, fused = _rank(lexical, semantic, limit)
    return _hits(top, fused, lexical, semantic, index.codebook.get_many(top), limit)


def _rank(lexical: dict[str, Match], semantic: dict[str, Match], limit: int
          ) -> tuple[list[str], dict[str, float]]:
    """The best codes by fused score (a few more than `limit`: some may not be in the
    codebook), and the fused scores."""
    fused: dict[str, float] = {}
    for code in set(lexical) | set(semantic):
        lex = lexical[code].score if code in lexical else 0.0
        sem = max(semantic[code].score, 0.0) if code in semantic else 0.0
        fused[code] = LEXICAL_WEIGHT * lex + VECTOR_WEIGHT * sem
    return sorted(fused, key=lambda c: (-fused[c], c))[: max(limit * 3, limit)], fused


def _hits(top: list[str], fused: dict[str, float], lexical: dict[str, Match],
          semantic: dict[str, Match], rows: dict[str, CodeRow], limit: int
          ) -> list[LookupHit]:
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
