"""The per-year Chroma store, written and read through llama-index's ChromaVectorStore.

Three collections; every vector's metadata points back to its codebook row:
- `tabular`: tabular entries (title + inclusion terms) → `codes.code`
- `index_paths`: Alphabetic/External Cause index paths and table rows → `index_terms.id`
- `guidelines`: guideline passages → `guideline_sections.citation`
Embeddings are always computed by medcode and passed in (Chroma's default embedding
function would download a model).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
from chromadb.config import Settings as ChromaSettings
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import VectorStoreQuery
from llama_index.vector_stores.chroma import ChromaVectorStore

COLLECTIONS = ("tabular", "index_paths", "guidelines")
# Chroma refuses more than its max batch (5,461 on this build) in one add.
ADD_BATCH = 5000


@dataclass(slots=True)
class VectorRecord:
    id: str
    text: str
    metadata: dict[str, str | int | float | bool]


@dataclass(slots=True)
class VectorHit:
    id: str
    text: str
    score: float  # cosine similarity in [-1, 1]
    metadata: dict[str, Any]


def open_client(path: Path) -> chromadb.ClientAPI:
    return chromadb.PersistentClient(
        path=str(path),
        settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False),
    )


def _store(client: chromadb.ClientAPI, name: str, create: bool) -> ChromaVectorStore:
    if create:
        collection = client.create_collection(name, metadata={"hnsw:space": "cosine"})
    else:
        collection = client.get_collection(name)
    return ChromaVectorStore(chroma_collection=collection)


def write_collection(
    client: chromadb.ClientAPI,
    name: str,
    records: Sequence[VectorRecord],
    vectors: np.ndarray,
    progress: Callable[[int], None] | None = None,
) -> int:
    if len(records) != len(vectors):
        raise ValueError(f"{name}: {len(records)} records but {len(vectors)} vectors")
    store = _store(client, name, create=True)
    for start in range(0, len(records), ADD_BATCH):
        chunk = records[start : start + ADD_BATCH]
        nodes = [
            TextNode(id_=r.id, text=r.text, metadata=r.metadata, embedding=v.tolist())
            for r, v in zip(chunk, vectors[start : start + ADD_BATCH], strict=True)
        ]
        store.add(nodes)
        if progress:
            progress(len(chunk))
    return store.client.count()


class VectorIndex:
    """Read side used by the service: one llama-index store per collection."""

    def __init__(self, path: Path) -> None:
        self.client = open_client(path)
        self.stores = {name: _store(self.client, name, create=False) for name in COLLECTIONS}

    def count(self, collection: str) -> int:
        return self.stores[collection].client.count()

    def query_many(self, collection: str, embeddings: np.ndarray, k: int,
                   payload: bool = True) -> list[list[VectorHit]]:
        """One Chroma call for many query vectors (a note's facts); the same hits and
        scores as query() for each. payload=False fetches ids and distances only (the
        hits' text and metadata left empty): half the time, since the stored metadata
        carries llama-index's node JSON; the caller resolves ids itself."""
        if len(embeddings) == 0:
            return []
        include = ["documents", "metadatas", "distances"] if payload else ["distances"]
        result = self.stores[collection].client.query(
            query_embeddings=embeddings.tolist(), n_results=k, include=include)
        n = len(result["ids"])
        docs_all = result.get("documents") or [[None] * len(i) for i in result["ids"]]
        metas_all = result.get("metadatas") or [[None] * len(i) for i in result["ids"]]
        out: list[list[VectorHit]] = []
        for ids, docs, metas, dists in zip(result["ids"], docs_all[:n], metas_all[:n],
                                           result["distances"] or [], strict=True):
            # llama-index's Chroma store reports exp(-distance) as the similarity.
            out.append([VectorHit(id=i, text=d or "", score=math.exp(-dist),
                                  metadata={key: v for key, v in (m or {}).items()
                                            if not key.startswith("_")})
                        for i, d, m, dist in zip(ids, docs, metas, dists, strict=True)])
        return out

    def query(self, collection: str, embedding: np.ndarray, k: int) -> list[VectorHit]:
        result = self.stores[collection].query(
            VectorStoreQuery(query_embedding=embedding.tolist(), similarity_top_k=k)
        )
        hits: list[VectorHit] = []
        for node, sim, node_id in zip(
            result.nodes or [], result.similarities or [], result.ids or [], strict=False
        ):
            hits.append(
                VectorHit(id=node_id, text=node.get_content(), score=float(sim),
                          metadata=dict(node.metadata))
            )
        return hits
