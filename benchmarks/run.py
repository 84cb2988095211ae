"""Run every benchmark and write the results into docs/benchmarks.md.

    python benchmarks/run.py                     # everything (~35 min here)
    python benchmarks/run.py --quick             # skip the cold index build
    python benchmarks/run.py --only extraction   # one section: index, extraction or coding

Each section lives between its own markers in docs/benchmarks.md.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "benchmarks.md"


def run(script: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args],
                          cwd=REPO, capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def replace_section(name: str, body: str) -> None:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if start not in text:
        text += f"\n{start}\n{end}\n"
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    DOC.write_text(f"{head}{start}\n{body}\n{end}{tail}")


def main() -> None:
    quick = "--quick" in sys.argv
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    stamp = f"Run {time.strftime('%Y-%m-%d')} with `python benchmarks/run.py"
    if only in (None, "index"):
        parts = [f"{stamp}{' --quick' if quick else ''}`.", "", "### Embeddings", "",
                 run("bench_embeddings.py"), "", "### Index build and lookup", "",
                 run("bench_index.py", *(["--skip-build"] if quick else []))]
        replace_section("results", "\n".join(parts))
        print("\n".join(parts))
    if only in (None, "extraction"):
        body = f"{stamp} --only extraction`.\n\n" + run("bench_extraction.py")
        replace_section("extraction", body)
        print(body)
    if only in (None, "coding"):
        body = f"{stamp} --only coding`.\n\n" + run("bench_coding.py", "--llm-notes", "5")
        replace_section("coding-latency", body)
        print(body)


if __name__ == "__main__":
    main()
