"""Opens built code-year indexes (codebook + vectors) on demand and keeps them open."""

from __future__ import annotations

import gc
import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ingest.build import QUERY_HITS_FILE, QUERY_VECTORS_FILE
from ingest.embeddings import Embedder, make_embedder
from ingest.lexical_index import LEXICAL_FILE, LexicalIndex
from ingest.vector_store import VectorHit, VectorIndex
from service.codebook import Codebook

log = logging.getLogger(__name__)


def freeze_loaded() -> None:
    """Exclude what is loaded so far (index, extractor, models) from garbage collection:
    a full collection otherwise walks those millions of objects, a ~250 ms pause in some
    request every few dozen notes."""
    gc.collect()
    gc.freeze()


class UnknownYear(LookupError):
    pass


@dataclass
class YearIndex:
    year: str
    path: Path
    manifest: dict[str, Any]
    codebook: Codebook
    _vectors: VectorIndex | None = field(default=None, repr=False)
    _lexical: LexicalIndex | None = field(default=None, repr=False)
    _query_vectors: tuple[str, dict[str, np.ndarray]] | None = field(default=None,
                                                                      repr=False)
    _query_hits: SavedHits | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _lexical_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def vectors(self) -> VectorIndex:
        with self._lock:
            if self._vectors is None:
                self._vectors = VectorIndex(self.path / "chroma")
            return self._vectors

    def query_vectors(self, model_name: str) -> dict[str, np.ndarray]:
        """Saved vectors of the extraction vocabulary's terms (ingest/build.py), when they
        were made by `model_name`; else none."""
        with self._lexical_lock:
            if self._query_vectors is None:
                self._query_vectors = _open_query_vectors(self.path / QUERY_VECTORS_FILE)
            model, vectors = self._query_vectors
            return vectors if model == model_name else {}

    def query_hits(self, model_name: str, k: int) -> SavedHits | None:
        """Saved vector search answers of the vocabulary's terms (ingest/build.py), when
        made by `model_name` with `k` hits per collection; else None."""
        with self._lexical_lock:
            if self._query_hits is None:
                self._query_hits = SavedHits.open(self.path / QUERY_HITS_FILE)
            hits = self._query_hits
            return hits if hits.model == model_name and hits.k == k and hits.rows else None

    @property
    def lexical(self) -> LexicalIndex:
        with self._lexical_lock:
            if self._lexical is None:
                self._lexical = _open_lexical(self.path, self.codebook)
                freeze_loaded()
            return self._lexical


@dataclass
class SavedHits:
    """query_hits.npz: per vocabulary term and collection, the k nearest ids and scores."""
    model: str
    k: int
    rows: dict[str, int]  # term → row
    ids: dict[str, np.ndarray]  # collection → (terms, k) ids
    scores: dict[str, np.ndarray]

    @classmethod
    def open(cls, path: Path) -> SavedHits:
        if not path.exists():  # an index built before query_hits.npz existed
            return cls("", 0, {}, {}, {})
        try:
            with np.load(path) as saved:
                collections = [k.removesuffix("_ids") for k in saved.files if k.endswith("_ids")]
                return cls(str(saved["model"]), int(saved["k"]),
                           {str(t): i for i, t in enumerate(saved["texts"])},
                           {c: saved[f"{c}_ids"] for c in collections},
                           {c: saved[f"{c}_scores"] for c in collections})
        except (ValueError, OSError, KeyError) as exc:
            log.warning("%s unreadable (%s): vector searches run for every query", path, exc)
            return cls("", 0, {}, {}, {})

    def get(self, text: str, collection: str) -> list[VectorHit] | None:
        row = self.rows.get(text)
        if row is None or collection not in self.ids:
            return None
        return [VectorHit(id=str(i), text="", score=float(sc), metadata={})
                for i, sc in zip(self.ids[collection][row], self.scores[collection][row],
                                 strict=True) if i]


def _open_query_vectors(path: Path) -> tuple[str, dict[str, np.ndarray]]:
    """(embedding model, text → vector); ("", {}) when the index has none."""
    if not path.exists():
        return "", {}
    try:
        with np.load(path) as saved:
            vectors = saved["vectors"]
            return str(saved["model"]), {str(t): vectors[i]
                                         for i, t in enumerate(saved["texts"])}
    except (ValueError, OSError, KeyError) as exc:
        log.warning("%s unreadable (%s): query terms will be embedded as they come", path, exc)
        return "", {}


def _open_lexical(path: Path, codebook: Codebook) -> LexicalIndex:
    saved = path / LEXICAL_FILE
    if saved.exists():
        try:
            return LexicalIndex.load(saved, codebook.db)
        except (ValueError, OSError, KeyError) as exc:
            log.warning("%s unreadable (%s): building the term index in memory", saved, exc)
    else:  # an index built before lexical.npz existed
        log.info("%s missing: building the term index in memory (a rebuild saves it)", saved)
    return LexicalIndex.from_codebook(codebook.db)


class IndexRegistry:
    def __init__(
        self, index_dir: Path, embedding_backend: str = "onnx", model_path: Path | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        self.index_dir = index_dir
        self._backend = embedding_backend
        self._model_path = model_path
        self._cache_dir = cache_dir
        self._embedder: Embedder | None = None
        self._years: dict[str, YearIndex] = {}
        self._lock = threading.Lock()

    def years(self) -> list[str]:
        if not self.index_dir.exists():
            return []
        return sorted(
            p.name for p in self.index_dir.iterdir()
            if p.is_dir() and not p.name.startswith(".") and (p / "manifest.json").exists()
        )

    def manifest(self, year: str) -> dict[str, Any]:
        path = self.index_dir / year / "manifest.json"
        if not path.exists():
            raise UnknownYear(self._unknown(year))
        return json.loads(path.read_text())

    def _unknown(self, year: str) -> str:
        have = ", ".join(self.years()) or "none"
        return f"no index built for year {year!r} (available: {have})"

    def get(self, year: str) -> YearIndex:
        with self._lock:
            if year not in self._years:
                manifest = self.manifest(year)
                path = self.index_dir / year
                self._years[year] = YearIndex(year, path, manifest,
                                              Codebook(path / "codebook.sqlite"))
            return self._years[year]

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                # One thread per query: a 10-word query is faster on one core than split
                # over two, and the lexical search uses the other core meanwhile.
                options = {"threads": 1} if self._backend == "onnx" else {}
                self._embedder = make_embedder(
                    self._backend, self._model_path, self._cache_dir, **options
                )
            return self._embedder
