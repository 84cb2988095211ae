"""Physician query drafts (templates in service/rules/physician_queries.json)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

PATH = Path(__file__).parent.parent / "rules" / "physician_queries.json"


@lru_cache(maxsize=1)
def _data() -> dict:  # type: ignore[type-arg]
    return json.loads(PATH.read_text(encoding="utf-8"))


def query_axes() -> set[str]:
    return set(_data()["query_axes"])


def draft(kind: str, quote: str, term: str = "", date: str | None = None,
          senses: str = "") -> str | None:
    template = _data()["templates"].get(kind)
    if template is None:
        return None
    return template.format(quote=quote, term=term or "condition", senses=senses,
                           date=f" on {date}" if date else "")
