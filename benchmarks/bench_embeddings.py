"""Embedding benchmarks: bulk texts/s per backend and batch size, single-query latency.

    python benchmarks/bench_embeddings.py [--n 2000] [--queries 100] [--quick]

The sample is realistic: half code titles (CMS code-descriptions file), half Alphabetic Index
paths ("Diabetes, diabetic > type 2 > with > hyperglycemia"), from MEDCODE_SOURCES or
../shared/sources/icd10cm/2025; synthetic phrases if those are absent. Prints Markdown on
stdout (`benchmarks/run.py` collects it); progress goes to stderr.
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ingest.embeddings import (  # noqa: E402
    DEFAULT_BATCH_SIZE,
    MAX_BATCH_TOKENS,
    Embedder,
    OnnxEmbedder,
    make_embedder,
)

SOURCES = Path(os.environ.get("MEDCODE_SHARED", REPO.parent / "shared")) / "sources/icd10cm/2025"
# Texts a cold build embeds: the FY2025 index holds ~125,000 vectors (titles, index paths,
# guideline passages); 180,000 is the earlier planning figure.
FULL_BUILD_TEXTS = (125_000, 180_000)
TITLE_LINE = re.compile(r"^([A-Z][0-9][0-9A-Z]{1,5})\s+(\S.*)$")


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _titles(folder: Path) -> list[str]:
    """Code titles from a "CODE title" text file, loose or inside a zip."""
    for path in sorted(folder.glob("*")):
        blobs: list[bytes] = []
        if path.suffix == ".txt":
            blobs = [path.read_bytes()]
        elif path.suffix == ".zip":
            with zipfile.ZipFile(path) as z:
                blobs = [z.read(n) for n in z.namelist()
                         if n.endswith(".txt") and "addenda" not in n and "order" not in n]
        for blob in blobs:
            titles = [m.group(2).strip() for line in io.StringIO(blob.decode("latin-1"))
                      if (m := TITLE_LINE.match(line.strip()))]
            if len(titles) > 1000:
                return titles
    return []


def _title(node: ET.Element) -> str:
    title = node.find("title")
    return " ".join("".join(title.itertext()).split()) if title is not None else ""


def _index_paths(folder: Path) -> list[str]:
    """Main term > sub-term paths of the Alphabetic Index XML."""
    indexes = []
    for path in folder.glob("*.xml"):
        with open(path, "rb") as f:
            head = f.read(400)
        # The Drug and Neoplasm tables share the root element but start with column headings;
        # of the term indexes the Index to Diseases is the largest.
        if b"ICD10CM.index" in head and b"indexHeading" not in head:
            indexes.append(path)
    for path in sorted(indexes, key=lambda p: -p.stat().st_size)[:1]:
        paths: list[str] = []
        # (element, path of titles down to it); iterative so nothing closes over a loop variable
        stack = [(m, [_title(m)]) for m in ET.parse(path).getroot().iter("mainTerm")]
        while stack:
            node, prefix = stack.pop()
            paths.append(" > ".join(prefix))
            stack.extend((t, [*prefix, _title(t)]) for t in node.findall("term"))
        return paths
    return []


def synthetic(n: int, rng: random.Random) -> list[str]:
    words = ("acute chronic type 2 diabetes mellitus with hyperglycemia fracture of left femur "
             "initial encounter essential hypertension pneumonia unspecified organism "
             "sequela subsequent poisoning by accidental").split()
    return [" ".join(rng.choice(words) for _ in range(rng.randint(2, 14))) for _ in range(n)]


def sample_texts(n: int, seed: int = 0) -> tuple[list[str], str]:
    rng = random.Random(seed)
    folders = [Path(p) for p in os.environ.get("MEDCODE_SOURCES", "").split(os.pathsep) if p]
    for folder in [*folders, SOURCES]:
        if folder.is_dir():
            titles, paths = _titles(folder), _index_paths(folder)
            if titles and paths:
                texts = rng.sample(titles, n // 2) + rng.sample(paths, n - n // 2)
                rng.shuffle(texts)
                return texts, f"{n // 2} code titles + {n - n // 2} index paths from {folder}"
    return synthetic(n, rng), f"{n} synthetic phrases (no ICD-10-CM sources found)"


def throughput(fn: Callable[[], object], n: int, repeat: int) -> tuple[float, float]:
    """(best, median) texts/s over `repeat` runs; best is the least disturbed by other load."""
    rates = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        rates.append(n / (time.perf_counter() - t))
    return max(rates), statistics.median(rates)


def latency(emb: Embedder, queries: list[str]) -> tuple[float, float]:
    for q in queries[:5]:
        emb.embed_query(q)
    times = []
    for q in queries:
        t = time.perf_counter()
        emb.embed_query(q)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.95))]


def padded_onnx(emb: OnnxEmbedder, texts: list[str], batch_size: int, pad_to: int | None,
                ) -> np.ndarray:
    """What embedding costs without length sorting: input order, optionally fixed padding."""
    seqs = [e.ids for e in emb._tokenizer.encode_batch(texts)]
    out = []
    for i in range(0, len(seqs), batch_size):
        batch = seqs[i:i + batch_size]
        if pad_to:  # a dummy row of full length makes the batch pad_to wide
            out.append(emb._run([*batch, [0] * pad_to])[:-1])
        else:
            out.append(emb._run(batch))
    return np.concatenate(out)


def stage_split(emb: OnnxEmbedder, texts: list[str], batch_size: int) -> dict[str, float]:
    """Seconds spent tokenising, running the graph, and pooling + normalising."""
    from ingest.embeddings import _l2_normalise, _mean_pool

    t0 = time.perf_counter()
    seqs = [e.ids for e in emb._tokenizer.encode_batch(texts)]
    t1 = time.perf_counter()
    order = np.argsort([len(s) for s in seqs], kind="stable")
    run_s = pool_s = 0.0
    for i in range(0, len(order), batch_size):
        batch = [seqs[j] for j in order[i:i + batch_size]]
        width = max(map(len, batch))
        ids = np.zeros((len(batch), width), np.int64)
        mask = np.zeros_like(ids)
        for r, s in enumerate(batch):
            ids[r, :len(s)], mask[r, :len(s)] = s, 1
        a = time.perf_counter()
        hidden = emb._session.run(None, {"input_ids": ids, "attention_mask": mask,
                                         "token_type_ids": np.zeros_like(ids)})[0]
        b = time.perf_counter()
        _l2_normalise(_mean_pool(hidden, mask))
        run_s += b - a
        pool_s += time.perf_counter() - b
    return {"tokenise": t1 - t0, "inference": run_s, "pool": pool_s}


def bench_onnx(texts: list[str], queries: list[str], args: argparse.Namespace,
               rows: list[tuple[str, str, int, float, float]],
               ) -> tuple[np.ndarray, dict[str, float], tuple[float, float], int, float, float]:
    """Appends throughput rows; returns (vectors, stage split, latency, tokens, export s,
    open s). The session is released on return."""
    with tempfile.TemporaryDirectory() as tmp:
        say("loading onnx (exporting the graph into a temporary cache)…")
        t = time.perf_counter()
        make_embedder("onnx", None, Path(tmp))
        export_s = time.perf_counter() - t
        t = time.perf_counter()
        onnx = make_embedder("onnx", None, Path(tmp))
        open_s = time.perf_counter() - t
    assert isinstance(onnx, OnnxEmbedder)
    tokens = sum(len(e.ids) for e in onnx._tokenizer.encode_batch(texts))
    onnx.embed(texts[:64])

    say(f"onnx batch ≤{DEFAULT_BATCH_SIZE} texts, ≤{MAX_BATCH_TOKENS} tokens…")
    best, med = throughput(lambda: onnx.embed(texts), len(texts), args.repeat)
    rows.append(("onnx", f"length-sorted, ≤{MAX_BATCH_TOKENS} padded tokens (default)",
                 DEFAULT_BATCH_SIZE, best, med))
    onnx.max_batch_tokens = None  # fixed-size batches, for comparison
    for bs in [] if args.quick else [8, 16, 32, 64, 128]:
        say(f"onnx batch {bs}…")
        best, med = throughput(lambda bs=bs: onnx.embed(texts, bs), len(texts), args.repeat)
        rows.append(("onnx", "length-sorted, fixed batch size", bs, best, med))
    onnx.max_batch_tokens = MAX_BATCH_TOKENS
    if not args.quick:
        sub = texts[:500]
        say("onnx without length sorting…")
        best, med = throughput(lambda: padded_onnx(onnx, sub, 32, None), len(sub), 1)
        rows.append(("onnx", "input order, padded per batch", 32, best, med))
        say("onnx padded to 128 (tokenizer.json's own padding)…")
        best, med = throughput(lambda: padded_onnx(onnx, sub, 32, 128), len(sub), 1)
        rows.append(("onnx", "every text padded to 128", 32, best, med))
    return (onnx.embed(texts), stage_split(onnx, texts, 32), latency(onnx, queries), tokens,
            export_s, open_s)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="texts in the bulk sample")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="default settings only")
    args = ap.parse_args()

    load_before = os.getloadavg()[0]
    texts, origin = sample_texts(args.n)
    queries = sample_texts(args.queries, seed=1)[0]
    rows: list[tuple[str, str, int, float, float]] = []
    # One backend at a time: onnxruntime's and torch's thread pools in one process spin
    # against each other and make the second one look slower than it is.
    a, split, onnx_lat, tokens, export_s, open_s = bench_onnx(texts, queries, args, rows)
    gc.collect()
    lat = {"onnx": onnx_lat}

    say("loading torch…")
    t = time.perf_counter()
    torch_emb = make_embedder("torch")
    torch_s = time.perf_counter() - t
    torch_emb.embed(texts[:64])
    for bs in [32] if args.quick else [16, 32, 64]:
        say(f"torch batch {bs}…")
        best, med = throughput(lambda bs=bs: torch_emb.embed(texts, bs), len(texts), args.repeat)
        rows.append(("torch", "sentence-transformers encode", bs, best, med))
    cos = np.sum(a * torch_emb.embed(texts), axis=1)
    lat["torch"] = latency(torch_emb, queries)

    total = sum(split.values())
    onnx_rate = rows[0][3]
    out = [
        f"Sample: {origin}; {tokens / len(texts):.1f} tokens/text on average. "
        f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
        f"best / median of {args.repeat} runs (other load on the machine shows in the median; "
        f"1-min load average before the run {load_before:.1f}).",
        "",
        "| backend | batching | batch | texts/s (best) | texts/s (median) | tokens/s (best) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    out += [f"| {be} | {how} | {bs} | {best:.0f} | {med:.0f} | {best * tokens / len(texts):,.0f} |"
            for be, how, bs, best, med in rows]
    out += [
        "",
        "| backend | query p50 ms | query p95 ms | load s |",
        "|---|---:|---:|---:|",
        f"| onnx | {lat['onnx'][0]:.1f} | {lat['onnx'][1]:.1f} | {open_s:.1f} "
        f"(first export {export_s:.1f}) |",
        f"| torch | {lat['torch'][0]:.1f} | {lat['torch'][1]:.1f} | {torch_s:.1f} |",
        "",
        f"onnx vs torch cosine on the sample: min {cos.min():.6f}, mean {cos.mean():.6f}. "
        "Where onnx time goes (batch 32): inference "
        f"{100 * split['inference'] / total:.0f}%, tokenisation "
        f"{100 * split['tokenise'] / total:.1f}%, pooling {100 * split['pool'] / total:.1f}%. "
        f"At {onnx_rate:.0f} texts/s a cold embedding takes "
        + " / ".join(f"~{n / onnx_rate / 60:.0f} min for {n:,} texts" for n in FULL_BUILD_TEXTS)
        + "; with the embedding cache a rebuild embeds only texts it has not seen.",
    ]
    print("\n".join(out))


if __name__ == "__main__":
    main()
