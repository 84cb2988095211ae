"""CMS order file (icd10cm_order_<year>.txt): fixed-width list of every code with its billable flag.

Layout (CMS "icd10OrderFiles.pdf"): order number (5), blank, code without dot (7),
blank, 0/1 flag (1 = valid for HIPAA-covered transactions), blank, short title (60),
blank, long title.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

LINE_RE = re.compile(r"^(\d{5}) ([A-Z][0-9A-Z]{2,6}) *([01]) (.{60}) (.*)$")


class OrderFileError(ValueError):
    """The file is not a CMS ICD-10-CM order file."""


@dataclass(slots=True)
class OrderRecord:
    order: int
    code: str  # with the dot: "E11.65"
    billable: bool
    short_title: str
    long_title: str


def dotted(code: str) -> str:
    return code if len(code) <= 3 else f"{code[:3]}.{code[3:]}"


def looks_like_order_file(first_line: str) -> bool:
    return LINE_RE.match(first_line.rstrip("\r\n")) is not None


def parse_order_file(path: Path) -> list[OrderRecord]:
    records: list[OrderRecord] = []
    try:
        text = path.read_text(encoding="latin-1")
    except OSError as exc:
        raise OrderFileError(f"{path.name}: cannot read: {exc}") from exc
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        m = LINE_RE.match(line)
        if m is None:
            raise OrderFileError(
                f"{path.name}: line {number} is not in the CMS order-file layout: {line[:40]!r}"
            )
        records.append(
            OrderRecord(
                order=int(m.group(1)),
                code=dotted(m.group(2)),
                billable=m.group(3) == "1",
                short_title=m.group(4).strip(),
                long_title=m.group(5).strip(),
            )
        )
    if not records:
        raise OrderFileError(f"{path.name}: empty order file")
    return records
