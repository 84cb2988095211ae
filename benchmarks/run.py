"""Run every benchmark and write the results into docs/benchmarks.md.

    python benchmarks/run.py            # full: cold build, embeddings, lookups (~30 min here)
    python benchmarks/run.py --quick    # skip the cold build
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "benchmarks.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def run(script: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args],
                          cwd=REPO, capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def main() -> None:
    quick = "--quick" in sys.argv
    parts = [f"Run {time.strftime('%Y-%m-%d')} with `python benchmarks/run.py"
             f"{' --quick' if quick else ''}`.", "", "### Embeddings", "",
             run("bench_embeddings.py"), "", "### Index build and lookup", "",
             run("bench_index.py", *(["--skip-build"] if quick else []))]
    text = DOC.read_text() if DOC.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    DOC.write_text(f"{head}{START}\n" + "\n".join(parts) + f"\n{END}{tail}")
    print("\n".join(parts))


if __name__ == "__main__":
    main()
