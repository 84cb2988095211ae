"""Evaluation inputs: JSONL (one note per line) and the CodiEsp folder layout."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path


class DatasetError(ValueError):
    pass


@dataclass(frozen=True)
class EvalCase:
    id: str
    text: str
    codes: tuple[str, ...]  # gold, normalized (upper case, with the dot)
    setting: str | None = None
    date_of_service: str | None = None


def normalize_gold(code: str) -> str:
    flat = code.strip().upper().replace(".", "")
    return flat if len(flat) <= 3 else f"{flat[:3]}.{flat[3:]}"


def load_jsonl(path: Path, default_setting: str | None = None) -> list[EvalCase]:
    """Lines of {"id", "text", "codes": [...], optional "setting", "date_of_service"}."""
    cases = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                cases.append(EvalCase(
                    id=str(row["id"]), text=row["text"],
                    codes=tuple(dict.fromkeys(normalize_gold(c) for c in row["codes"])),
                    setting=row.get("setting", default_setting),
                    date_of_service=row.get("date_of_service")))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise DatasetError(f"{path}:{n}: needs a JSON object with id, text and codes "
                                   f"({exc})") from exc
    if not cases:
        raise DatasetError(f"{path}: no cases")
    return cases


def load_codiesp(folder: Path, split: str = "dev", language: str = "en",
                 setting: str | None = "inpatient") -> list[EvalCase]:
    """CodiEsp (CLEF eHealth 2020): <split>/<split>D.tsv gold diagnoses and
    text_files_en/<id>.txt. Case reports describe hospital care, hence inpatient."""
    base = folder / split if (folder / split).is_dir() else folder
    gold_file = base / f"{base.name}D.tsv"
    texts = base / ("text_files_en" if language == "en" else "text_files")
    if not gold_file.is_file() or not texts.is_dir():
        raise DatasetError(f"{base}: not a CodiEsp split (needs {gold_file.name} and "
                           f"{texts.name}/)")
    gold: dict[str, list[str]] = defaultdict(list)
    with gold_file.open(encoding="utf-8", newline="") as f:
        for row in csv.reader(f, delimiter="\t"):
            if len(row) >= 2:
                gold[row[0]].append(normalize_gold(row[1]))
    cases = []
    for path in sorted(texts.glob("*.txt")):
        cases.append(EvalCase(id=path.stem, text=path.read_text(encoding="utf-8"),
                              codes=tuple(dict.fromkeys(gold.get(path.stem, []))),
                              setting=setting))
    return cases
