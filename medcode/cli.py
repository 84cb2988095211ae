"""The `medcode` command: build indexes, inspect them, serve the API, look things up."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichBar

from medcode.settings import get_settings, vocabulary_codebook

app = typer.Typer(help="medcode: ICD-10-CM coding decision support.", no_args_is_help=True)
ingest_app = typer.Typer(help="Build code-year indexes from official sources.",
                         no_args_is_help=True)
index_app = typer.Typer(help="Inspect built indexes.", no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")
app.add_typer(index_app, name="index")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

YearOpt = Annotated[str | None, typer.Option("--year", help="Code year (default: settings)")]
ChooserOpt = Annotated[str | None, typer.Option(
    "--chooser", help="rules or llm (default: MEDCODE_CHOOSER, else rules)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text")]


def fail(message: str, code: int = 2) -> typer.Exit:
    # One line, naming the file and the problem; nothing else on stderr.
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


class TerminalProgress:
    """Build progress as rich bars on stderr."""

    def stage(self, name: str) -> None:
        err.print(f"[cyan]•[/cyan] {name}")

    @contextmanager
    def task(self, name: str, total: int) -> Iterator[Callable[[int], None]]:
        if not err.is_terminal:  # a log file or CI: a line every 10 %, not a redrawn bar
            yield self._lines(name, total)
            return
        with RichBar(
            TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=err, transient=False,
        ) as bar:
            task = bar.add_task(name, total=total)
            yield lambda n: bar.advance(task, n)

    @staticmethod
    def _lines(name: str, total: int) -> Callable[[int], None]:
        done = 0
        next_mark = 0.0
        started = time.perf_counter()

        def advance(n: int) -> None:
            nonlocal done, next_mark
            done += n
            if total and (done / total >= next_mark or done == total):
                err.print(f"  {name}: {done:,}/{total:,} ({done / total:.0%}, "
                          f"{time.perf_counter() - started:.0f} s)", highlight=False)
                next_mark = done / total + 0.1

        err.print(f"  {name}: 0/{total:,}", highlight=False)
        return advance


@ingest_app.command("build")
def ingest_build(
    year: Annotated[str, typer.Option("--year", help="Code year to build, e.g. 2025")],
    sources: Annotated[
        list[Path] | None,
        typer.Option("--sources", help="Folder, zip or file with official sources (repeatable)"),
    ] = None,
    download: Annotated[
        bool, typer.Option("--download/--no-download", help="Fetch missing sources from CMS")
    ] = True,
    index_dir: Annotated[Path | None, typer.Option("--index-dir")] = None,
    if_current: Annotated[
        bool,
        typer.Option("--if-current", help="Skip when the index was built from the same sources "
                     "by the same code and model"),
    ] = False,
) -> None:
    """Parse, cross-check, embed and store one code year into index_data/<year>/."""
    from ingest.build import BuildError, build_year, is_current
    from ingest.embeddings import EmbeddingCache, make_embedder
    from ingest.sources import SourceError, resolve_sources
    from service.extraction.pipeline import lookup_terms

    settings = get_settings()
    target = index_dir or settings.index_dir
    try:
        source_set = resolve_sources(
            year, list(sources or []), settings.sources, download and settings.allow_download,
            settings.cache_dir,
        )
    except SourceError as exc:
        raise fail(str(exc)) from None
    with source_set:
        for w in source_set.warnings:
            err.print(f"[yellow]warning:[/yellow] {w}", highlight=False)
        for kind, f in source_set.files.items():
            err.print(f"  {kind:<10} {f.display} ({f.origin})", highlight=False)
        try:
            embedder = make_embedder(settings.embedding_backend, settings.embedding_model_path,
                                     settings.cache_dir)
            if if_current and is_current(target / year, source_set, embedder.model_name):
                out.print(f"{target / year} is current (same sources, code and model): "
                          "nothing to build")
                return
            cache = EmbeddingCache(settings.cache_dir / "embeddings.sqlite")
            report = build_year(
                year, source_set, target, embedder, cache, TerminalProgress(),
                # The extraction vocabulary grows from the codebook being built.
                query_vocabulary=lambda codebook: lookup_terms(
                    codebook if settings.extraction_vocabulary else None))
        except (BuildError, ValueError, OSError) as exc:
            raise fail(str(exc)) from None
    print_report(report.to_json())


def print_report(report: dict) -> None:  # type: ignore[type-arg]
    out.print(f"[bold]Built {report['year']}[/bold] → {report['index_dir']} "
              f"in {report['duration_s']:.0f} s")
    for key, value in report["counts"].items():
        out.print(f"  {key:<28} {value:>9,}")
    if report["issues"]:
        out.print("[bold]Cross-check findings[/bold] (explained / unexplained):")
        for kind, n in report["issues"].items():
            out.print(f"  {kind:<28} {n['explained']:>7,} / {n['unexplained']:,}")
    if report["guideline_outline_missing"]:
        out.print(f"  guideline outline entries without a section: "
                  f"{', '.join(report['guideline_outline_missing'])}")
    for w in report["warnings"]:
        out.print(f"[yellow]warning:[/yellow] {w}")


@index_app.command("status")
def index_status(json_out: JsonOpt = False) -> None:
    """List built code years with their manifest summary."""
    from ingest.build import recover_interrupted
    from service.index_registry import IndexRegistry

    settings = get_settings()
    for line in recover_interrupted(settings.index_dir):
        err.print(f"[yellow]recovered:[/yellow] {line}")
    registry = IndexRegistry(settings.index_dir)
    manifests = {y: registry.manifest(y) for y in registry.years()}
    if json_out:
        out.print_json(json.dumps(manifests))
        return
    if not manifests:
        out.print(f"No index built in {settings.index_dir}. "
                  "Run: medcode ingest build --year 2025 --sources PATH")
        raise typer.Exit(1)
    for year, m in manifests.items():
        c = m.get("counts", {})
        out.print(
            f"[bold]{year}[/bold]  built {m.get('built_at')}  "
            f"{c.get('billable_codes', 0):,} billable codes, {c.get('index_paths', 0):,} index "
            f"paths, {c.get('guideline_sections', 0):,} guideline sections  "
            f"({m.get('embedding', {}).get('model')}, {m.get('build_duration_s')} s)"
        )


@index_app.command("findings")
def index_findings(
    year: YearOpt = None,
    kind: Annotated[str | None, typer.Option("--kind", help="e.g. dangling_index_code")] = None,
    unexplained: Annotated[bool, typer.Option("--unexplained", help="Only unexplained")] = False,
) -> None:
    """List what the build's cross-checks found (dangling references, unresolved see, ...)."""
    settings = get_settings()
    y = year or settings.default_year
    path = settings.index_dir / y / "build_report.json"
    if not path.exists():
        raise fail(f"{path}: no build report (build {y} first)")
    rows = json.loads(path.read_text()).get("findings", [])
    for f in rows:
        if (kind and f["kind"] != kind) or (unexplained and f["explained"]):
            continue
        mark = "explained" if f["explained"] else "UNEXPLAINED"
        out.print(f"{f['kind']}\t{mark}\t{f['subject']}\t{f['detail']}", highlight=False)


def _year_index(year: str | None):  # type: ignore[no-untyped-def]
    """(settings, registry, year, that year's index); a one-line error if it is not built."""
    from service.index_registry import IndexRegistry, UnknownYear

    settings = get_settings()
    registry = IndexRegistry(settings.index_dir, settings.embedding_backend,
                             settings.embedding_model_path, settings.cache_dir)
    y = year or settings.default_year
    try:
        return settings, registry, y, registry.get(y)
    except UnknownYear as exc:
        raise fail(str(exc)) from None


@app.command("lookup")
def lookup_cmd(
    query: Annotated[str, typer.Argument(help="Term to look up, e.g. 'aspiration pneumonia'")],
    year: YearOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100)] = 10,
    json_out: JsonOpt = False,
) -> None:
    """Look a term up in the Alphabetic Index and Tabular List."""
    from service.lookup import lookup

    _, registry, _, index = _year_index(year)
    hits = lookup(index, query, registry.embedder, limit)
    if json_out:
        out.print_json(json.dumps([
            {"code": h.code, "title": h.title, "billable": h.billable, "score": h.score,
             "matched": h.matched.text, "source": h.matched.source} for h in hits
        ]))
        return
    for rank, h in enumerate(hits, 1):
        flag = "" if h.billable else "  [dim](not billable: more characters needed)[/dim]"
        out.print(f"{rank:>2}. [bold]{h.code:<9}[/bold] {h.title}{flag}", highlight=False)
        out.print(f"    {h.score:.3f}  {h.matched.source}: {h.matched.text}", highlight=False)


@app.command("code-info")
def code_info_cmd(
    code: Annotated[str, typer.Argument(help="ICD-10-CM code, e.g. E11.65")],
    year: YearOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Title, billable status, hierarchy, notes, 7th characters and index paths of a code."""
    from service.code_info import code_info
    from service.codebook import MalformedCode, normalize_code

    try:
        normalized = normalize_code(code)
    except MalformedCode as exc:
        raise fail(str(exc)) from None
    _, _, y, index = _year_index(year)
    info = code_info(index.codebook, y, normalized)
    if info is None:
        raise fail(f"{normalized} is not an ICD-10-CM code in the {y} Tabular List", 1)
    if json_out:
        out.print_json(info.model_dump_json())
        return
    status = "billable" if info.billable else "not billable"
    out.print(f"[bold]{info.code}[/bold] {info.title} ({info.kind}, {status}, FY{y})",
              highlight=False)
    for h in info.hierarchy:
        out.print(f"  ↳ {h.code}  {h.title}", highlight=False)
    for n in info.notes:
        out.print(f"  [{n.kind} @ {n.from_code}] {n.text}", highlight=False)
    if info.seventh_characters:
        opts = ", ".join(f"{o.char}={o.meaning}" for o in info.seventh_characters.options)
        out.print(f"  7th characters (from {info.seventh_characters.defined_at}): {opts}",
                  highlight=False)
    for c in info.children[:20]:
        out.print(f"  child {c.code}  {c.title}", highlight=False)
    for p in info.index_paths[:20]:
        col = f" [{p.column}]" if p.column else ""
        out.print(f"  index ({p.source}) {p.path}{col} → {p.printed_code}", highlight=False)


@app.command("code")
def code_cmd(
    note: Annotated[Path, typer.Argument(help="Note file (text or FHIR JSON); - reads stdin")],
    setting: Annotated[str | None, typer.Option(help="inpatient or outpatient")] = None,
    date_of_service: Annotated[str | None, typer.Option("--date", help="YYYY-MM-DD")] = None,
    year: YearOpt = None,
    chooser: ChooserOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Step 1 and step 2: ICD-10-CM codes for a note, with evidence, citations and flags."""
    from rich.markup import escape

    from service.extraction.note_input import NoteInputError, parse_note_bytes

    try:
        data = sys.stdin.buffer.read() if str(note) == "-" else note.read_bytes()
        parsed = parse_note_bytes(data, setting=setting, date_of_service=date_of_service)
    except OSError as exc:
        raise fail(f"{note}: {exc.strerror}") from None
    except NoteInputError as exc:
        raise fail(f"{note}: {exc}") from None
    settings, registry, y, index = _year_index(year)
    from service.coding.coder import code_note
    from service.coding.factory import make_chooser
    from service.extraction.pipeline import Extractor

    extractor = Extractor(vocabulary=vocabulary_codebook(settings, y))
    result = code_note(parsed, extractor, index, registry.embedder,
                       make_chooser(settings, chooser))
    if json_out:
        out.print_json(result.model_dump_json())
        return
    out.print(f"FY{result.year}, chooser {result.chooser}, setting {result.setting or '?'}",
              highlight=False)
    for c in result.codes:
        flags = " ".join(f"{f.kind}({f.missing_axis})" if f.missing_axis else f.kind
                         for f in c.flags)
        out.print(f"{c.sequence:>2}. [bold]{c.code:<8}[/bold] {escape(c.title)}  "
                  f"[dim]{c.confidence:.2f} {', '.join(e.text for e in c.evidence)}[/dim]"
                  f"{'  [yellow]' + flags + '[/yellow]' if flags else ''}", highlight=False)
    for f in result.facts:
        if f.action != "coded":
            out.print(f"    {f.fact} {escape(f.text)!r}: {escape(f.reason)}", highlight=False)
    for flag in result.flags:
        out.print(f"[yellow]{flag.kind}[/yellow]: {escape(flag.detail)}", highlight=False)
        if flag.query:
            out.print(f"    query: {escape(flag.query)}", highlight=False)


@app.command("eval")
def eval_cmd(
    jsonl: Annotated[Path | None, typer.Option(
        "--jsonl", help="JSONL: id, text, codes, optional setting and date_of_service")] = None,
    codiesp: Annotated[Path | None, typer.Option(
        "--codiesp", help="A CodiEsp folder (with dev/ or train/) or one split folder")] = None,
    split: Annotated[str, typer.Option(help="CodiEsp split")] = "dev",
    setting: Annotated[str | None, typer.Option(
        help="Setting for notes that name none (CodiEsp: inpatient)")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="First N notes only")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Report folder")] = None,
    year: YearOpt = None,
    chooser_name: ChooserOpt = None,
    gold_year: Annotated[int | None, typer.Option(
        help="Fiscal year of the code set the gold was assigned with (CodiEsp: 2018); with "
        "--conversion-table, a code created since then matches the gold code it replaced")
    ] = None,
    conversion_table: Annotated[Path | None, typer.Option(
        help="The CMS conversion table (<year>-conversion-table.zip or its CSV)")] = None,
) -> None:
    """Code notes with gold codes and report precision / recall / F1, retrieval recall@k,
    calibration (with a PNG) and flag counts, as report.json and report.md."""
    from service.coding.coder import code_note
    from service.coding.factory import make_chooser
    from service.evaluation.datasets import DatasetError, load_codiesp, load_jsonl
    from service.evaluation.report import write_report
    from service.evaluation.runner import evaluate, gold_billable
    from service.extraction.note_input import NoteInputError, make_note

    if (jsonl is None) == (codiesp is None):
        raise fail("give exactly one of --jsonl or --codiesp")
    try:
        if jsonl is not None:
            cases = load_jsonl(jsonl, setting)
            name = jsonl.stem
        else:
            assert codiesp is not None
            cases = load_codiesp(codiesp, split, setting=setting or "inpatient")
            name = f"codiesp-{split}"
    except (DatasetError, OSError) as exc:
        raise fail(str(exc)) from None
    cases = cases[:limit] if limit else cases
    replaced = None
    if (gold_year is None) != (conversion_table is None):
        raise fail("--gold-year and --conversion-table go together")
    if gold_year is not None and conversion_table is not None:
        from service.evaluation.conversion import (
            ConversionTableError,
            load_conversion_table,
            replaced_since,
        )
        try:
            replaced = replaced_since(load_conversion_table(conversion_table), gold_year)
        except ConversionTableError as exc:
            raise fail(str(exc)) from None
    settings, registry, y, index = _year_index(year)
    from service.extraction.pipeline import Extractor

    extractor = Extractor(vocabulary=vocabulary_codebook(settings, y))
    chooser = make_chooser(settings, chooser_name)

    def code(case):  # type: ignore[no-untyped-def]
        try:
            note = make_note(case.text, setting=case.setting,
                             date_of_service=case.date_of_service)
        except NoteInputError as exc:
            raise fail(f"case {case.id}: {exc}") from None
        return code_note(note, extractor, index, registry.embedder, chooser)

    def chapter_of(code: str) -> str:
        row = index.codebook.get(code)
        chapter = index.codebook.get(f"chapter:{row.chapter}") if row else None
        return f"{row.chapter}. {chapter.title}" if row and chapter else "?"

    def billable(code: str) -> bool | None:
        return gold_billable(index.codebook, code)

    progress = TerminalProgress()
    with progress.task(f"coding {len(cases)} notes", len(cases)) as advance:
        last = [0]

        def step(n: int) -> None:
            advance(n - last[0])
            last[0] = n
        report = evaluate(cases, code, chapter_of, billable, step, replaced)
    folder = out_dir or Path("eval_reports") / f"{name}-{chooser.name}"
    paths = write_report(report, folder, f"{name}, chooser {chooser.name}")
    out.print((folder / "report.md").read_text(encoding="utf-8"), highlight=False)
    out.print(f"written: {', '.join(str(p) for p in paths)}", highlight=False)


@app.command("validate")
def validate_cmd(
    codes: Annotated[list[str], typer.Argument(help="Codes in sequence, first-listed first")],
    year: YearOpt = None,
    setting: Annotated[str | None, typer.Option(help="inpatient or outpatient")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Rule checks on a code set: billable, 7th character, Excludes1, code first, guidelines.
    Exit code 1 when an error is found."""
    from rich.markup import escape

    from service.validation import validate

    _, _, y, index = _year_index(year)
    result = validate(index.codebook, y, codes, setting)
    if json_out:
        out.print_json(result.model_dump_json())
    else:
        for line in result.codes:
            out.print(f"{line.sequence:>2}. [bold]{line.code:<9}[/bold] {line.title or '?'}",
                      highlight=False)
        colour = {"error": "red", "warning": "yellow", "info": "dim"}
        for issue in result.issues:
            cite = f" ({issue.citation.source} {issue.citation.ref})" if issue.citation else ""
            out.print(f"[{colour[issue.severity]}]{issue.severity:<7}[/] {issue.kind}: "
                      f"{escape(issue.message + cite)}", highlight=False)
        out.print("[green]valid[/green]" if result.valid else "[red]errors found[/red]")
    if not result.valid:
        raise typer.Exit(1)


@app.command("extract")
def extract_cmd(
    note: Annotated[Path, typer.Argument(help="Note file: plain UTF-8 text or FHIR JSON "
                                         "(DocumentReference or Bundle); - reads stdin")],
    setting: Annotated[str | None, typer.Option(help="inpatient or outpatient")] = None,
    date_of_service: Annotated[str | None, typer.Option("--date", help="YYYY-MM-DD")] = None,
    age: Annotated[int | None, typer.Option(help="Patient age in years")] = None,
    sex: Annotated[str | None, typer.Option(help="female, male, other or unknown")] = None,
    year: Annotated[str | None, typer.Option(
        "--year", help="Add this code year's index vocabulary (default: the default year's, "
        "when built)")] = None,
    curated_only: Annotated[bool, typer.Option(
        "--curated-only", help="Use the curated lexicon alone")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Step 1: the documented conditions and procedures of a note, with evidence spans."""
    from service.extraction.note_input import NoteInputError, parse_note_bytes

    try:
        data = sys.stdin.buffer.read() if str(note) == "-" else note.read_bytes()
    except OSError as exc:
        raise fail(f"{note}: {exc.strerror}") from None
    try:
        parsed = parse_note_bytes(data, setting=setting, date_of_service=date_of_service,
                                  age=age, sex=sex)
    except NoteInputError as exc:
        raise fail(f"{note}: {exc}") from None
    settings = get_settings()
    vocabulary = None if curated_only else vocabulary_codebook(settings, year)
    if year and not curated_only and vocabulary is None:
        raise fail(f"no built index for {year} in {settings.index_dir}: run "
                   f"`medcode ingest build --year {year}` or pass --curated-only")
    from service.extraction.pipeline import Extractor  # medspaCy takes seconds to import

    result = Extractor(vocabulary=vocabulary).extract(parsed)
    if json_out:
        out.print_json(result.model_dump_json())
        return
    text = parsed.text
    out.print(f"[bold]{len(result.facts)} facts[/bold] in {len(text):,} characters "
              f"({result.note.source}; {result.extractor})", highlight=False)
    for f in result.facts:
        mods = ", ".join(f"{m.axis}={m.value}" for m in f.modifiers)
        flags = f"  [red]{' '.join(f.flags)}[/red]" if f.flags else ""
        out.print(f"{f.id:>4} {f.start:>6}-{f.end:<6} [bold]{f.text}[/bold] → "
                  f"{f.normalized or '?'} ({f.kind}, {f.assertion}, {f.section or '-'})"
                  f"{'  ' + mods if mods else ''}{flags}", highlight=False)
    for r in result.relations:
        out.print(f"     {r.source} {r.kind} {r.target}  ({r.cue.text!r})", highlight=False)
    for a in result.abbreviations:
        sense = a.expansion or "AMBIGUOUS: " + ", ".join(s.sense for s in a.senses[:4])
        out.print(f"     abbr {a.text!r} = {sense}  [dim]{a.resolved_by}[/dim]", highlight=False)
    if result.pregnancy:
        p = result.pregnancy
        out.print(f"     pregnancy: {p.status}, weeks={p.weeks}, trimester={p.trimester}",
                  highlight=False)


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option("--host")] = None,
    port: Annotated[int | None, typer.Option("--port")] = None,
    workers: Annotated[int, typer.Option("--workers", min=1,
                                         help="Worker processes (one per core for throughput)")
                       ] = 1,
) -> None:
    """Start the REST API (uvicorn)."""
    import uvicorn

    from service.api.app import create_app

    settings = get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if workers > 1:
        # Each worker process builds its own app from the same MEDCODE_* settings.
        uvicorn.run("service.api.app:create_app", factory=True, workers=workers,
                    host=host or settings.host, port=port or settings.port)
        return
    uvicorn.run(create_app(settings), host=host or settings.host, port=port or settings.port)


def main() -> None:  # pragma: no cover
    app(prog_name="medcode")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
