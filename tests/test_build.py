"""The whole build on a tiny source set: staged, verified, atomic; bad input is refused."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ingest.build import QUERY_HITS_K, build_year, is_current, recover_interrupted
from ingest.embeddings import EmbeddingCache, make_embedder
from ingest.lexical_index import LexicalIndex
from ingest.sources import SourceError, resolve_sources
from service.index_registry import IndexRegistry
from service.lookup import embed_cached
from tests.mini_sources import write_mini_sources

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def embedder(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return make_embedder("onnx", None, tmp_path_factory.mktemp("cache"))


def _build(src: Path, index_dir: Path, embedder, cache_dir: Path,  # type: ignore[no-untyped-def]
           query_vocabulary=None):
    with resolve_sources("2025", [src], [], False, cache_dir) as sources:
        return build_year("2025", sources, index_dir, embedder,
                          EmbeddingCache(cache_dir / "emb.sqlite"),
                          query_vocabulary=query_vocabulary)


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medcode", *args], capture_output=True, text=True, env=env,
        cwd=REPO, timeout=300,
    )


def _env(index_dir: Path, cache_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(MEDCODE_INDEX_DIR=str(index_dir), MEDCODE_CACHE_DIR=str(cache_dir),
               MEDCODE_ALLOW_DOWNLOAD="false")
    env.pop("MEDCODE_SOURCES", None)
    return env


def test_build_writes_codebook_vectors_and_manifest(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    src = write_mini_sources(tmp_path / "src")
    asked: list[Path] = []

    def vocabulary(codebook: Path) -> list[str]:  # what the CLI passes: extraction terms
        asked.append(codebook)
        return ["type 2 diabetes mellitus", "hypertension", "hypertension"]

    report = _build(src, tmp_path / "index", embedder, tmp_path / "cache", vocabulary)
    final = tmp_path / "index" / "2025"
    manifest = json.loads((final / "manifest.json").read_text())
    assert manifest["year"] == "2025"
    assert manifest["counts"]["billable_codes"] == 10  # 4 E/I leaves + 6 S72 extensions
    assert set(manifest["sources"]) == {"tabular", "index", "order"}
    assert len(manifest["sources"]["tabular"]["sha256"]) == 64
    assert manifest["embedding"]["dimension"] == 384
    assert any("Guidelines" in w for w in manifest["warnings"])  # missing PDF is named
    db = sqlite3.connect(final / "codebook.sqlite")
    assert db.execute("SELECT title FROM codes WHERE code='E11.65'").fetchone()[0] == (
        "Type 2 diabetes mellitus with hyperglycemia"
    )
    path = db.execute("SELECT path FROM index_terms WHERE code='E11.65'").fetchone()[0]
    assert path == "Diabetes, diabetic > type 2 > with > hyperglycemia"
    # The lookup's term index is saved beside the codebook and reads back against it.
    lexical = LexicalIndex.load(final / "lexical.npz", db)
    assert lexical.search("diabetes type 2 hyperglycemia")[0].code == "E11.65"
    assert "lexical_index" in report.timings_s
    # The vocabulary was read from the staged codebook; its vectors are saved by model.
    assert asked and asked[0].name == "codebook.sqlite"
    index = IndexRegistry(tmp_path / "index").get("2025")
    saved = index.query_vectors(embedder.model_name)
    assert sorted(saved) == ["hypertension", "type 2 diabetes mellitus"]
    np.testing.assert_allclose(saved["hypertension"], embedder.embed(["hypertension"])[0],
                               atol=1e-5)
    assert index.query_vectors("another-model") == {}
    # A lookup takes a saved vector as it is, without embedding the text again.
    marker = np.full(embedder.dimension, 0.5, dtype=np.float32)
    got = embed_cached(embedder, ["hypertension"], {"hypertension": marker})
    assert (got[0] == marker).all()
    # Their vector searches are saved too, and answer as a live search does.
    hits = index.query_hits(embedder.model_name, QUERY_HITS_K)
    assert hits is not None and sorted(hits.rows) == ["hypertension", "type 2 diabetes mellitus"]
    vector = embedder.embed(["type 2 diabetes mellitus"])
    for collection in ("index_paths", "tabular"):
        live = index.vectors.query_many(collection, vector, QUERY_HITS_K, False)[0]
        saved_hits = hits.get("type 2 diabetes mellitus", collection)
        assert saved_hits is not None and [h.id for h in saved_hits] == [h.id for h in live]
        assert [h.score for h in saved_hits] == pytest.approx([h.score for h in live])
    assert index.query_hits(embedder.model_name, QUERY_HITS_K + 1) is None  # another k
    assert "query_hits" in report.timings_s
    assert report.counts["vectors_tabular"] > 0
    assert not list((tmp_path / "index").glob(".staging-*"))
    with resolve_sources("2025", [src], [], False, tmp_path / "cache") as sources:
        assert is_current(final, sources, embedder.model_name)


def test_failed_build_leaves_previous_index_intact(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    src = write_mini_sources(tmp_path / "src")
    _build(src, tmp_path / "index", embedder, tmp_path / "cache")
    final = tmp_path / "index" / "2025"
    before = (final / "manifest.json").read_text()
    tab = src / "tabular.xml"
    tab.write_bytes(tab.read_bytes()[:1500])  # truncated mid-element
    with pytest.raises(ValueError, match=r"tabular\.xml: not well-formed XML"):
        _build(src, tmp_path / "index", embedder, tmp_path / "cache")
    assert (final / "manifest.json").read_text() == before
    assert sqlite3.connect(final / "codebook.sqlite").execute(
        "SELECT count(*) FROM codes WHERE billable").fetchone()[0] == 10
    assert not list((tmp_path / "index").glob(".staging-*"))


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("truncate", "tabular.xml: not well-formed XML"),
        ("missing", "no such file or folder"),
        ("wrong_kind", "notes.txt: not a recognised ICD-10-CM source file"),
        ("wrong_year", "is for year 2026, not the requested 2025"),
        ("bad_zip", "sources.zip: not a valid zip archive"),
    ],
)
def test_cli_bad_source_one_line_error_nonzero_exit(
    tmp_path: Path, embedder, damage: str, expected: str  # type: ignore[no-untyped-def]
) -> None:
    good = write_mini_sources(tmp_path / "good")
    index_dir, cache = tmp_path / "index", tmp_path / "cache"
    _build(good, index_dir, embedder, cache)
    before = (index_dir / "2025" / "manifest.json").read_text()
    bad = write_mini_sources(tmp_path / "bad")
    arg = bad
    if damage == "truncate":
        t = bad / "tabular.xml"
        t.write_bytes(t.read_bytes()[:2000])
    elif damage == "missing":
        arg = tmp_path / "nowhere"
    elif damage == "wrong_kind":
        arg = bad / "notes.txt"
        arg.write_text("Patient notes, not a code set\n")
    elif damage == "wrong_year":
        write_mini_sources(bad, year="2026")
    elif damage == "bad_zip":
        arg = bad / "sources.zip"
        arg.write_bytes(b"PK\x03\x04 truncated")
    proc = _cli("ingest", "build", "--year", "2025", "--sources", str(arg), "--no-download",
                env=_env(index_dir, cache))
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], proc.stderr
    assert (index_dir / "2025" / "manifest.json").read_text() == before


def test_interrupted_build_keeps_previous_index(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    src = write_mini_sources(tmp_path / "src")
    index_dir, cache = tmp_path / "index", tmp_path / "cache"
    _build(src, index_dir, embedder, cache)
    before = (index_dir / "2025" / "manifest.json").read_text()
    # A new source (different inclusion term) so the rebuild has real work to do.
    tab = src / "tabular.xml"
    tab.write_text(tab.read_text().replace("high blood pressure", "raised blood pressure"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "medcode", "ingest", "build", "--year", "2025", "--sources",
         str(src), "--no-download"], env=_env(index_dir, cache), cwd=REPO,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while not list(index_dir.glob(".staging-*")) and time.time() < deadline:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert (index_dir / "2025" / "manifest.json").read_text() == before
    recover_interrupted(index_dir)
    assert not list(index_dir.glob(".staging-*"))
    assert (index_dir / "2025" / "manifest.json").read_text() == before


def test_resolution_order_cli_paths_win_over_env(tmp_path: Path) -> None:
    first = write_mini_sources(tmp_path / "first")
    second = write_mini_sources(tmp_path / "second")
    (second / "tabular.xml").write_text((second / "tabular.xml").read_text().replace(
        "Type 2 diabetes mellitus without complications", "changed"))
    with resolve_sources("2025", [first], [second], False, tmp_path) as s:
        assert s.files["tabular"].origin == "--sources"
        assert s.files["tabular"].display.startswith(str(first))
    with resolve_sources("2025", [], [second], False, tmp_path) as s:
        assert s.files["tabular"].origin == "MEDCODE_SOURCES"
    with pytest.raises(SourceError, match="no ICD-10-CM Tabular List XML for 2025"):
        resolve_sources("2025", [], [], False, tmp_path)


def test_sources_inside_a_zip_are_identified_by_content(tmp_path: Path) -> None:
    import zipfile

    src = write_mini_sources(tmp_path / "src")
    archive = tmp_path / "whatever-cms-calls-it.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(src / "tabular.xml", "Table and Index/renamed-1.xml")
        zf.write(src / "index.xml", "Table and Index/renamed-2.xml")
    with resolve_sources("2025", [archive], [], False, tmp_path) as s:
        assert s.files["tabular"].display.endswith("!Table and Index/renamed-1.xml")
        assert s.files["index"].display.endswith("!Table and Index/renamed-2.xml")
        assert "order" in s.missing
        assert s.files["tabular"].path.exists()
