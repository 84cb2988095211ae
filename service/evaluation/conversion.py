"""The CMS ICD-10-CM conversion table: for each code created since FY2016, the code(s) that
held its meaning before ("F32.A, 2021, F32.9": depression NOS moved out of F32.9).

Gold codes assigned with an older code year are read through it: a prediction of F32.A
answers a gold F32.9 given under FY2018 rules, as it is what that coder would assign now.
The table ships with each year's release (`<year>-conversion-table.zip`, a CSV and an XLSX).
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections import defaultdict
from pathlib import Path

CODE = re.compile(r"\b[A-Z]\d[0-9A-Z](?:\.[0-9A-Z]{1,4})?\b")


class ConversionTableError(ValueError):
    pass


def load_conversion_table(path: Path) -> list[tuple[str, int, list[str]]]:
    """(current code, year its change took effect, previous codes), from the CMS CSV or the
    release zip holding it."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if n.lower().endswith(".csv")]
            if not names:
                raise ConversionTableError(f"{path}: no CSV conversion table inside")
            text = zf.read(names[0]).decode("utf-8", errors="replace")
    else:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise ConversionTableError(f"{path}: {exc.strerror}") from None
    rows = []
    for row in csv.reader(io.StringIO(text)):
        if len(row) < 3 or not row[1].strip().isdigit() or not CODE.fullmatch(row[0].strip()):
            continue  # the preamble and the header
        rows.append((row[0].strip(), int(row[1]), CODE.findall(row[2])))
    if not rows:
        raise ConversionTableError(f"{path}: no conversion rows (code, effective, previous)")
    return rows


def replaced_since(rows: list[tuple[str, int, list[str]]], gold_year: int) -> dict[str, set[str]]:
    """Gold code → the codes that took over its meaning after a gold made with FY
    `gold_year` codes. A row effective in year E is a FY E+1 code (October 1)."""
    out: dict[str, set[str]] = defaultdict(set)
    for current, effective, previous in rows:
        if effective + 1 > gold_year:
            for old in previous:
                if old != current:
                    out[old].add(current)
    return dict(out)
