"""Find a code year's official source files and identify each one by its content.

CMS and CDC name files differently across years, so nothing here trusts a file
name: XML is identified by its root element (and table headings), a PDF by its
first page, the order file by its fixed-width layout. Zips are opened and their
members examined the same way.

Resolution order for each kind of source: the `--sources` paths, then
MEDCODE_SOURCES, then the official downloads for that year, then (Tabular List
only) the copy inside the `simple-icd-10-cm` package.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

# Every kind the build knows, in the order they are reported.
KINDS = ("tabular", "index", "eindex", "neoplasm", "drug", "guidelines", "order")
REQUIRED = ("tabular",)
DESCRIPTIONS = {
    "tabular": "ICD-10-CM Tabular List XML",
    "index": "Alphabetic Index to Diseases and Injuries XML",
    "eindex": "External Cause of Injuries Index XML",
    "neoplasm": "Neoplasm Table XML",
    "drug": "Table of Drugs and Chemicals XML",
    "guidelines": "Official Guidelines for Coding and Reporting PDF",
    "order": "CMS order file (icd10cm_order_<year>.txt)",
}
# What each missing kind costs the user, for the warning.
CONSEQUENCES = {
    "index": "no Alphabetic Index paths in lookups",
    "eindex": "no External Cause Index paths",
    "neoplasm": "no Neoplasm Table",
    "drug": "no Table of Drugs and Chemicals",
    "guidelines": "no guideline passages",
    "order": "billable status not cross-checked against CMS",
}


class SourceError(ValueError):
    """A source file is missing, unreadable or not what it claims to be."""


@dataclass(slots=True)
class SourceFile:
    kind: str
    path: Path  # readable file (extracted from a zip when needed)
    origin: str  # where it came from: "--sources", "MEDCODE_SOURCES", "download", "package"
    display: str  # path as the user knows it ("x.zip!member.txt")
    sha256: str
    year: str | None = None


@dataclass
class SourceSet:
    year: str
    files: dict[str, SourceFile] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def missing(self) -> list[str]:
        return [k for k in KINDS if k not in self.files]

    def path(self, kind: str) -> Path | None:
        f = self.files.get(kind)
        return f.path if f else None

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> SourceSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_ROOT_RE = re.compile(rb"<([A-Za-z_][\w.\-]*)[\s>/]")
_VERSION_RE = re.compile(rb"<version>\s*(\d{4})\s*</version>")


def identify(path: Path) -> tuple[str | None, str | None]:
    """Return (kind, year) for a file by looking at its content; (None, None) if unknown."""
    try:
        with path.open("rb") as fh:
            head = fh.read(8192)
    except OSError as exc:
        raise SourceError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if head.startswith(b"%PDF"):
        from ingest.parsers.guidelines import looks_like_guidelines

        return ("guidelines", None) if looks_like_guidelines(path) else (None, None)
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"<"):
        year_m = _VERSION_RE.search(head)
        year = year_m.group(1).decode() if year_m else None
        root = None
        for m in _ROOT_RE.finditer(stripped):
            name = m.group(1).decode()
            if not name.startswith(("?", "!")) and name != "xml":
                root = name
                break
        if root == "ICD10CM.tabular":
            return "tabular", year
        if root == "ICD10CM.index":
            from ingest.parsers.alphabetic_index import detect_index_kind

            return detect_index_kind(path), year
        return None, None
    first_line = head.split(b"\n", 1)[0].decode("latin-1")
    from ingest.parsers.order_file import looks_like_order_file

    if looks_like_order_file(first_line):
        m = re.search(r"(\d{4})", path.name)
        return "order", m.group(1) if m else None
    return None, None


def _iter_candidates(
    root: Path, explicit: bool, extract_dir: Path
) -> Iterator[tuple[Path, str, bool]]:
    """Yield (readable path, display name, was named explicitly) for files under `root`."""
    if not root.exists():
        raise SourceError(f"{root}: no such file or folder")
    if root.is_dir():
        for p in sorted(root.rglob("*")):
            if p.is_file():
                yield from _iter_candidates(p, False, extract_dir)
        return
    if zipfile.is_zipfile(root):
        try:
            with zipfile.ZipFile(root) as zf:
                for info in zf.infolist():
                    if info.is_dir() or not info.filename.lower().endswith(
                        (".xml", ".pdf", ".txt")
                    ):
                        continue
                    target = extract_dir / hashlib.sha1(
                        f"{root}!{info.filename}".encode()
                    ).hexdigest()[:12]
                    target.mkdir(parents=True, exist_ok=True)
                    out = target / Path(info.filename).name
                    with zf.open(info) as src, out.open("wb") as dst:
                        shutil.copyfileobj(src, dst)
                    yield out, f"{root}!{info.filename}", False
        except (zipfile.BadZipFile, OSError) as exc:
            raise SourceError(f"{root}: damaged zip: {exc}") from exc
        return
    if root.suffix.lower() == ".zip":
        raise SourceError(f"{root}: not a valid zip archive (truncated or corrupt)")
    yield root, str(root), explicit


def discover(
    year: str,
    groups: Iterable[tuple[str, list[Path]]],
    sources: SourceSet | None = None,
) -> SourceSet:
    """Identify the files under each (origin, paths) group; earlier groups win per kind.

    A file named explicitly that is not a recognised source is an error; unknown
    files found inside a folder or zip are only listed as ignored.
    """
    if sources is None:
        sources = SourceSet(year=year)
    if sources._tmp is None:
        sources._tmp = tempfile.TemporaryDirectory(prefix="medcode-sources-")
    extract_dir = Path(sources._tmp.name)
    for origin, paths in groups:
        found: dict[str, list[SourceFile]] = {}
        for root in paths:
            for path, display, explicit in _iter_candidates(Path(root), True, extract_dir):
                kind, file_year = identify(path)
                if kind is None:
                    if explicit:
                        raise SourceError(
                            f"{display}: not a recognised ICD-10-CM source file "
                            f"(expected one of: {', '.join(DESCRIPTIONS.values())})"
                        )
                    sources.ignored.append(display)
                    continue
                found.setdefault(kind, []).append(
                    SourceFile(kind, path, origin, display, sha256_file(path), file_year)
                )
        for kind, candidates in found.items():
            if kind in sources.files:
                continue
            chosen = _choose(kind, year, candidates)
            if chosen is not None:
                sources.files[kind] = chosen
    return sources


def _choose(kind: str, year: str, candidates: list[SourceFile]) -> SourceFile | None:
    matching = [c for c in candidates if c.year in (year, None)]
    if not matching:
        years = ", ".join(sorted({c.year or "?" for c in candidates}))
        names = ", ".join(c.display for c in candidates)
        raise SourceError(
            f"{names}: {DESCRIPTIONS[kind]} is for year {years}, not the requested {year}"
        )
    exact = [c for c in matching if c.year == year] or matching
    distinct = {c.sha256 for c in exact}
    if len(distinct) > 1:
        names = ", ".join(c.display for c in exact)
        raise SourceError(f"{names}: several different {DESCRIPTIONS[kind]} files for {year}")
    return exact[0]


def packaged_tabular() -> tuple[Path, str] | None:
    """The Tabular List XML inside the simple-icd-10-cm package, with its year."""
    import importlib.util

    # find_spec, not import: importing simple_icd_10_cm parses the whole classification.
    spec = importlib.util.find_spec("simple_icd_10_cm")
    if spec is None or not spec.submodule_search_locations:
        return None
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    for p in sorted(data.glob("*.xml")):
        kind, year = identify(p)
        if kind == "tabular":
            return p, year or "?"
    return None


def resolve_sources(
    year: str,
    cli_paths: list[Path],
    env_paths: list[Path],
    allow_download: bool,
    cache_dir: Path,
) -> SourceSet:
    """Apply the resolution order and return what was found, with warnings for what was not."""
    sources = discover(year, [("--sources", cli_paths), ("MEDCODE_SOURCES", env_paths)])
    if sources.missing and allow_download:
        from ingest.download import download_year

        try:
            downloaded = download_year(year, cache_dir / "sources" / year, set(sources.missing))
        except Exception as exc:  # network or server trouble: fall through to the package
            sources.warnings.append(f"download of official {year} sources failed: {exc}")
        else:
            discover(year, [("download", downloaded)], sources)
    if "tabular" not in sources.files:
        packaged = packaged_tabular()
        if packaged is not None and packaged[1] == year:
            path, pkg_year = packaged
            sources.files["tabular"] = SourceFile(
                "tabular", path, "package", f"simple-icd-10-cm:{path.name}", sha256_file(path),
                pkg_year,
            )
            sources.warnings.append(
                "using the Tabular List bundled with simple-icd-10-cm (last resort)"
            )
    for kind in REQUIRED:
        if kind not in sources.files:
            sources.close()
            raise SourceError(
                f"no {DESCRIPTIONS[kind]} for {year}: pass --sources PATH or set MEDCODE_SOURCES"
            )
    for kind in sources.missing:
        sources.warnings.append(
            f"missing {DESCRIPTIONS[kind]} for {year}: {CONSEQUENCES.get(kind, 'not indexed')}"
        )
    return sources
