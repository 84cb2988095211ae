"""Build one code year's index: parse → cross-check → codebook → vectors → verify → swap in.

The build writes into `index_data/.staging-<year>-<id>/` and only when everything
is written and verified renames it to `index_data/<year>/`; a failed or
interrupted build leaves the previous index untouched.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ingest import crosscheck
from ingest.codebook import SCHEMA_VERSION, CodebookWriter, code_ref
from ingest.embeddings import Embedder, EmbeddingCache, embed_with_cache
from ingest.lexical_index import LEXICAL_FILE, LexicalIndex
from ingest.parsers.alphabetic_index import parse_index
from ingest.parsers.cross_references import resolve_see_references
from ingest.parsers.guidelines import parse_guidelines
from ingest.parsers.order_file import parse_order_file
from ingest.parsers.tabular import parse_tabular
from ingest.records import (
    BuildIssue,
    GuidelineSection,
    IndexTerm,
    SeeReference,
    TableCell,
    TabularEntry,
)
from ingest.sources import DESCRIPTIONS, SourceSet
from ingest.vector_store import VectorIndex, VectorRecord, open_client, write_collection

log = logging.getLogger(__name__)

INDEX_SOURCES = ("index", "eindex", "neoplasm", "drug")
QUERY_VECTORS_FILE = "query_vectors.npz"
QUERY_HITS_FILE = "query_hits.npz"
QUERY_HITS_K = 15  # the nearest vectors a lookup asks for per collection (service/lookup.py)
SEARCHED_COLLECTIONS = ("index_paths", "tabular")


def builder_fingerprint() -> str:
    """Hash of the ingest code, so an index built by older code is known to be stale."""
    import hashlib

    h = hashlib.sha256()
    root = Path(__file__).parent
    for f in sorted(root.rglob("*")):
        if f.suffix in (".py", ".json", ".yaml", ".txt") and "__pycache__" not in f.parts:
            h.update(f.relative_to(root).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def is_current(final_dir: Path, sources: SourceSet, embedding_model: str) -> bool:
    """True when `final_dir` was built from the same sources by the same code and model."""
    try:
        manifest = json.loads((final_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    same_sources = {k: v.get("sha256") for k, v in manifest.get("sources", {}).items()} == {
        k: f.sha256 for k, f in sources.files.items()
    }
    return (
        same_sources
        and manifest.get("schema_version") == SCHEMA_VERSION
        and manifest.get("builder") == builder_fingerprint()
        and manifest.get("embedding", {}).get("model") == embedding_model
    )


class BuildError(RuntimeError):
    """The build could not produce a complete, verified index; nothing was swapped in."""


class Progress:
    """What the build reports to whoever runs it (a terminal, a log, a test)."""

    def stage(self, name: str) -> None:  # pragma: no cover - default is silent
        log.info("build: %s", name)

    @contextmanager
    def task(self, name: str, total: int) -> Iterator[Callable[[int], None]]:
        log.info("build: %s (%d)", name, total)
        yield lambda n: None


@dataclass
class BuildReport:
    year: str
    index_dir: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    issues: dict[str, dict[str, int]] = field(default_factory=dict)
    # Every finding, listed: dangling references, unresolved see references, mismatches.
    findings: list[dict[str, object]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sources: dict[str, dict[str, str]] = field(default_factory=dict)
    ignored_files: list[str] = field(default_factory=list)
    guideline_outline_missing: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    duration_s: float = 0.0

    def to_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class ParsedYear:
    tabular: list[TabularEntry]
    tabular_version: str | None
    terms: list[IndexTerm] = field(default_factory=list)
    cells: list[TableCell] = field(default_factory=list)
    # Second and later codes / manifestation codes printed on one term.
    extra_codes: dict[int, list[str]] = field(default_factory=dict)
    see_refs: list[SeeReference] = field(default_factory=list)
    guidelines: list[GuidelineSection] = field(default_factory=list)
    outline_missing: list[str] = field(default_factory=list)
    short_titles: dict[str, str] = field(default_factory=dict)
    issues: list[BuildIssue] = field(default_factory=list)


def parse_sources(sources: SourceSet, progress: Progress, timings: dict[str, float]) -> ParsedYear:
    def timed(name: str, fn, *args):  # type: ignore[no-untyped-def]
        progress.stage(f"parsing {DESCRIPTIONS.get(name, name)}")
        t0 = time.perf_counter()
        out = fn(*args)
        timings[f"parse_{name}"] = round(time.perf_counter() - t0, 2)
        return out

    tab = timed("tabular", parse_tabular, sources.path("tabular"))
    parsed = ParsedYear(tabular=tab.entries, tabular_version=tab.version)
    parsed.issues.extend(BuildIssue("malformed_code", m, "tabular", False) for m in tab.malformed)

    next_id = 1
    for source in INDEX_SOURCES:
        path = sources.path(source)
        if path is None:
            continue
        result = timed(source, parse_index, path, source, next_id)
        parsed.terms.extend(result.terms)
        parsed.cells.extend(result.cells)
        parsed.extra_codes.update(result.extra_codes)
        for term_id, manifs in result.extra_manifs.items():
            parsed.extra_codes.setdefault(term_id, []).extend(manifs)
        parsed.issues.extend(
            BuildIssue("source_quirk", source, q, explained=True) for q in result.quirks
        )
        next_id = result.next_id
    if parsed.terms:
        parsed.see_refs = timed("cross_references", resolve_see_references, parsed.terms)

    if (path := sources.path("guidelines")) is not None:
        g = timed("guidelines", parse_guidelines, path)
        parsed.guidelines = g.sections
        parsed.outline_missing = list(g.missing_from_outline)

    if (path := sources.path("order")) is not None:
        order = timed("order", parse_order_file, path)
        parsed.issues.extend(crosscheck.apply_order_file(parsed.tabular, order))
        parsed.short_titles = {o.code: o.short_title for o in order}
    return parsed


def vector_records(parsed: ParsedYear) -> dict[str, list[VectorRecord]]:
    """What each collection embeds; metadata points back to the codebook row."""
    inclusion: dict[str, list[str]] = {}
    for e in parsed.tabular:
        terms = [n.text for n in e.notes if n.kind == "inclusion_term"]
        if terms:
            inclusion[e.code] = terms
    tabular = [
        VectorRecord(
            id=f"code:{e.code}",
            text="; ".join([e.title, *inclusion.get(e.code, [])]),
            metadata={"code": e.code, "kind": e.kind, "billable": e.billable},
        )
        for e in parsed.tabular
        if e.kind in ("category", "subcategory", "code") and not e.generated
    ]
    with_cells = {c.term_id for c in parsed.cells}
    index_paths = [
        VectorRecord(
            id=f"term:{t.id}",
            text=t.path_text,
            metadata={"term_id": t.id, "source": t.source, "code": code_ref(t.code or "")},
        )
        for t in parsed.terms
        if t.code or t.id in with_cells
    ]
    guidelines = [
        VectorRecord(
            id=f"guideline:{s.citation}",
            text=f"{s.title}\n{s.text}",
            metadata={"citation": s.citation, "page": s.page_start},
        )
        for s in parsed.guidelines
    ]
    return {"tabular": tabular, "index_paths": index_paths, "guidelines": guidelines}


def write_codebook(path: Path, parsed: ParsedYear, year: str) -> None:
    writer = CodebookWriter(path)
    try:
        writer.set_meta(year=year, schema_version=str(SCHEMA_VERSION),
                        tabular_version=parsed.tabular_version or "")
        writer.add_tabular(parsed.tabular, parsed.short_titles)
        writer.add_index_terms(parsed.terms)
        paths = {t.id: t.path_text for t in parsed.terms}
        writer.add_table_cells(parsed.cells, paths)
        writer.add_cross_refs(parsed.see_refs, parsed.terms)
        writer.add_guidelines(parsed.guidelines)
        writer.add_issues(parsed.issues)
    finally:
        writer.close()


def write_lexical_index(stage_dir: Path) -> None:
    """The lookup's word → rows arrays (ingest/lexical_index.py), saved beside the codebook."""
    db = sqlite3.connect(f"file:{stage_dir / 'codebook.sqlite'}?mode=ro", uri=True)
    try:
        LexicalIndex.from_codebook(db).save(stage_dir / LEXICAL_FILE)
    finally:
        db.close()


def write_query_vectors(index_dir: Path, texts: list[str], embedder: Embedder,
                        cache: EmbeddingCache | None, progress: Progress | None = None) -> None:
    """Vectors of the terms lookups will query, so a note's common terms need no embedding
    at query time (about 5 ms each on 2 cores). Read by service/index_registry.py."""
    texts = sorted(set(texts))
    progress = progress or Progress()
    with progress.task("embedding query vocabulary", len(texts)) as advance:
        vectors = embed_with_cache(embedder, texts, cache, advance)
    tmp = index_dir / f".{QUERY_VECTORS_FILE}.tmp"
    with tmp.open("wb") as f:
        np.savez(f, texts=np.array(texts, dtype=str), vectors=vectors.astype(np.float32),
                 model=np.array(embedder.model_name))
    tmp.replace(index_dir / QUERY_VECTORS_FILE)


def write_query_hits(index_dir: Path, progress: Progress | None = None,
                     batch: int = 512) -> None:
    """Each saved query term's nearest vectors in the collections lookups search (ids and
    scores, as Chroma answers them), so a note's common terms need no vector search at
    query time either: most of a note's queries are such terms. Read by
    service/index_registry.py; written after the collections, from query_vectors.npz."""
    with np.load(index_dir / QUERY_VECTORS_FILE) as saved:
        texts, vectors, model = saved["texts"], saved["vectors"], saved["model"]
    store = VectorIndex(index_dir / "chroma")
    arrays: dict[str, np.ndarray] = {"texts": texts, "model": model,
                                     "k": np.array(QUERY_HITS_K)}
    progress = progress or Progress()
    for collection in SEARCHED_COLLECTIONS:
        ids = np.full((len(texts), QUERY_HITS_K), "", dtype="U32")
        scores = np.zeros((len(texts), QUERY_HITS_K), dtype=np.float64)
        with progress.task(f"searching {collection} for the query vocabulary",
                           len(texts)) as advance:
            for start in range(0, len(texts), batch):
                found = store.query_many(collection, vectors[start:start + batch],
                                         QUERY_HITS_K, payload=False)
                for row, hits in enumerate(found, start=start):
                    for j, hit in enumerate(hits[:QUERY_HITS_K]):
                        ids[row, j], scores[row, j] = hit.id, hit.score
                advance(len(found))
        arrays[f"{collection}_ids"] = ids.astype(f"U{max(1, int(np.char.str_len(ids).max()))}")
        arrays[f"{collection}_scores"] = scores
    del store
    tmp = index_dir / f".{QUERY_HITS_FILE}.tmp"
    with tmp.open("wb") as f:
        np.savez_compressed(f, **arrays)  # ids repeat a few prefixes: a tenth of the size
    tmp.replace(index_dir / QUERY_HITS_FILE)


def verify(stage_dir: Path, expected: dict[str, int]) -> None:
    """Re-open what was written and check it matches what was parsed."""
    db = sqlite3.connect(f"file:{stage_dir / 'codebook.sqlite'}?mode=ro", uri=True)
    try:
        got = {
            "codes": db.execute("SELECT count(*) FROM codes").fetchone()[0],
            "billable_codes": db.execute(
                "SELECT count(*) FROM codes WHERE billable"
            ).fetchone()[0],
            "index_terms": db.execute("SELECT count(*) FROM index_terms").fetchone()[0],
            "guideline_sections": db.execute(
                "SELECT count(*) FROM guideline_sections"
            ).fetchone()[0],
        }
        if db.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise BuildError("codebook integrity check failed")
        try:
            LexicalIndex.load(stage_dir / LEXICAL_FILE, db)
        except (ValueError, OSError, KeyError) as exc:
            raise BuildError(f"verification failed: lexical term index: {exc}") from exc
    finally:
        db.close()
    for key, value in got.items():
        if expected.get(key) != value:
            raise BuildError(f"verification failed: {key} = {value}, expected {expected.get(key)}")
    client = open_client(stage_dir / "chroma")
    for name in ("tabular", "index_paths", "guidelines"):
        n = client.get_collection(name).count()
        if n != expected[f"vectors_{name}"]:
            raise BuildError(
                f"verification failed: collection {name} has {n} vectors, "
                f"expected {expected[f'vectors_{name}']}"
            )


def swap_in(stage_dir: Path, final_dir: Path) -> None:
    """Replace `final_dir` by `stage_dir` with two renames; the old index is kept until then."""
    old = None
    if final_dir.exists():
        old = final_dir.with_name(f".old-{final_dir.name}-{uuid.uuid4().hex[:8]}")
        final_dir.rename(old)
    try:
        stage_dir.rename(final_dir)
    except OSError:
        if old is not None:
            old.rename(final_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def recover_interrupted(index_dir: Path) -> list[str]:
    """Undo what a build killed mid-swap or mid-write left behind; return what was done."""
    done: list[str] = []
    if not index_dir.exists():
        return done
    for old in sorted(index_dir.glob(".old-*")):
        year = old.name.split("-")[1]
        final = index_dir / year
        if not final.exists():
            old.rename(final)
            done.append(f"restored {final.name} from {old.name}")
        else:
            shutil.rmtree(old, ignore_errors=True)
            done.append(f"removed {old.name}")
    for stage in index_dir.glob(".staging-*"):
        pid = stage.name.rsplit("-", 1)[-1]
        if pid.isdigit() and _alive(int(pid)):
            continue  # another build is writing it
        shutil.rmtree(stage, ignore_errors=True)
        done.append(f"removed unfinished {stage.name}")
    return done


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def build_year(
    year: str,
    sources: SourceSet,
    index_dir: Path,
    embedder: Embedder,
    cache: EmbeddingCache | None,
    progress: Progress | None = None,
    query_vocabulary: Callable[[Path], list[str]] | None = None,
) -> BuildReport:
    """`query_vocabulary(codebook_path)`: the terms lookups will query (the extraction
    vocabulary, which grows from the codebook); their vectors are saved with the index."""
    progress = progress or Progress()
    started = time.perf_counter()
    report = BuildReport(year=year, warnings=list(sources.warnings),
                         ignored_files=list(sources.ignored))
    report.sources = {
        k: {"file": f.display, "sha256": f.sha256, "origin": f.origin}
        for k, f in sources.files.items()
    }
    index_dir.mkdir(parents=True, exist_ok=True)
    recover_interrupted(index_dir)
    stage_dir = index_dir / f".staging-{year}-{uuid.uuid4().hex[:8]}-{os.getpid()}"
    stage_dir.mkdir()
    try:
        parsed = parse_sources(sources, progress, report.timings_s)
        progress.stage("cross-checking references")
        parsed.issues.extend(crosscheck.check_references(parsed))
        report.guideline_outline_missing = parsed.outline_missing
        parsed.issues.extend(
            BuildIssue("guideline_outline_missing", c, "outline entry without a parsed section")
            for c in parsed.outline_missing
        )

        t0 = time.perf_counter()
        progress.stage("writing codebook")
        write_codebook(stage_dir / "codebook.sqlite", parsed, year)
        report.timings_s["codebook"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        progress.stage("writing lexical term index")
        write_lexical_index(stage_dir)
        report.timings_s["lexical_index"] = round(time.perf_counter() - t0, 2)
        if query_vocabulary is not None:
            t0 = time.perf_counter()
            texts = query_vocabulary(stage_dir / "codebook.sqlite")
            write_query_vectors(stage_dir, texts, embedder, cache, progress)
            report.timings_s["query_vectors"] = round(time.perf_counter() - t0, 2)

        records = vector_records(parsed)
        client = open_client(stage_dir / "chroma")
        t0 = time.perf_counter()
        for name, recs in records.items():
            texts = [r.text for r in recs]
            with progress.task(f"embedding {name}", len(texts)) as advance:
                vectors = embed_with_cache(embedder, texts, cache, advance)
            with progress.task(f"storing {name}", len(recs)) as advance:
                write_collection(client, name, recs, vectors, advance)
        report.timings_s["vectors"] = round(time.perf_counter() - t0, 2)
        del client
        if query_vocabulary is not None:
            t0 = time.perf_counter()
            write_query_hits(stage_dir, progress)
            report.timings_s["query_hits"] = round(time.perf_counter() - t0, 2)

        report.counts = counts(parsed, records)
        report.issues = issue_summary(parsed.issues)
        report.findings = [asdict(i) for i in parsed.issues]
        progress.stage("verifying")
        verify(stage_dir, report.counts)

        report.duration_s = round(time.perf_counter() - started, 2)
        report.index_dir = str(index_dir / year)
        manifest = {
            "year": year,
            "schema_version": SCHEMA_VERSION,
            "builder": builder_fingerprint(),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "build_duration_s": report.duration_s,
            "sources": report.sources,
            "counts": report.counts,
            "issues": report.issues,
            "warnings": report.warnings,
            "embedding": {"model": embedder.model_name, "backend": embedder.backend,
                          "dimension": embedder.dimension},
        }
        (stage_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
        (stage_dir / "build_report.json").write_text(json.dumps(report.to_json(), indent=2))
        swap_in(stage_dir, index_dir / year)
    except BaseException:
        shutil.rmtree(stage_dir, ignore_errors=True)
        raise
    return report


def counts(parsed: ParsedYear, records: dict[str, list[VectorRecord]]) -> dict[str, int]:
    kinds = Counter(e.kind for e in parsed.tabular)
    sources = Counter(t.source for t in parsed.terms)
    out = {
        "codes": len(parsed.tabular),
        "billable_codes": sum(e.billable for e in parsed.tabular),
        "chapters": kinds["chapter"],
        "blocks": kinds["block"],
        "categories": kinds["category"],
        "seventh_character_codes": sum(e.generated for e in parsed.tabular),
        "notes": sum(len(e.notes) for e in parsed.tabular),
        "index_terms": len(parsed.terms),
        "index_paths": sum(1 for t in parsed.terms if t.source == "index"),
        "index_paths_with_code": sum(1 for t in parsed.terms if t.source == "index" and t.code),
        "external_cause_paths": sources["eindex"],
        "neoplasm_rows": sources["neoplasm"],
        "drug_rows": sources["drug"],
        "table_cells": len(parsed.cells),
        "see_references": len(parsed.see_refs),
        "guideline_sections": len(parsed.guidelines),
    }
    for name, recs in records.items():
        out[f"vectors_{name}"] = len(recs)
    return out


def issue_summary(issues: list[BuildIssue]) -> dict[str, dict[str, int]]:
    summary: dict[str, dict[str, int]] = {}
    for i in issues:
        entry = summary.setdefault(i.kind, {"explained": 0, "unexplained": 0})
        entry["explained" if i.explained else "unexplained"] += 1
    return summary
