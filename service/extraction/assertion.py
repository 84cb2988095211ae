"""Assertion status from medspaCy ConText: negated, possible, hypothetical, historical, family.

The rules are medspaCy's English defaults plus resources/context_rules.json. Token
patterns are expanded to literal phrases before loading: spaCy's token Matcher cost
~80 ms per 500-word note here, its PhraseMatcher well under 5 ms.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import medspacy
from medspacy.context import ConTextRule
from spacy.tokens import Doc, Span

from service.extraction.models import AssertionCue, Section

MEDSPACY_CONTEXT_RULES = Path(medspacy.__file__).parent.parent / "resources/en/context_rules.json"
# ConText attribute → assertion, strongest first: a negated family history is negated.
ASSERTIONS = (("is_negated", "negated"), ("is_family", "family"),
              ("is_hypothetical", "hypothetical"), ("is_uncertain", "possible"),
              ("is_historical", "historical"))


class RuleError(ValueError):
    pass


def load_context_rules(path: Path) -> list[ConTextRule]:
    ours = json.loads(path.read_text(encoding="utf-8"))
    removed = {r.lower() for r in ours["remove"]}
    defaults = json.loads(MEDSPACY_CONTEXT_RULES.read_text(encoding="utf-8"))["context_rules"]
    rules: list[ConTextRule] = []
    kept = [r for r in defaults if r["literal"].lower() not in removed]
    for data in kept + ours["context_rules"]:
        pattern = data.get("pattern")
        phrases = [data["literal"]] if pattern is None else expand_pattern(pattern)
        if phrases is None:
            raise RuleError(f"ConText rule {data['literal']!r}: its pattern cannot be expanded "
                            "to phrases (use LOWER/TEXT strings or IN lists, OP '?' only)")
        fields = {k: v for k, v in data.items() if k not in ("literal", "pattern")}
        rules.extend(ConTextRule(literal=p, **fields) for p in phrases)
    return rules


def expand_pattern(pattern: list[dict[str, Any]]) -> list[str] | None:
    """All phrases a simple token pattern matches, or None if it is not that simple."""
    options: list[list[str | None]] = []
    for token in pattern:
        keys = set(token) - {"OP"}
        if len(keys) != 1 or token.get("OP") not in (None, "?"):
            return None
        key = keys.pop()
        value = token[key]
        if key not in ("LOWER", "TEXT"):
            return None
        if isinstance(value, str):
            values = [value]
        elif isinstance(value, dict) and set(value) == {"IN"}:
            values = list(value["IN"])
        else:
            return None
        options.append([v.lower() for v in values] + ([None] if token.get("OP") else []))
    phrases = {" ".join(w for w in combo if w) for combo in itertools.product(*options)}
    return sorted(p for p in phrases if p)


def assertion_of(doc: Doc, ent: Span, section: Section | None) -> tuple[str, list[AssertionCue]]:
    cues = []
    for modifier in ent._.modifiers:
        span = doc[slice(*modifier.modifier_span)]
        cues.append(AssertionCue(text=span.text, start=span.start_char, end=span.end_char,
                                 category=modifier.category))
    if section is not None and section.name == "family_history":
        # Everything under a family-history header is about relatives, cue or not.
        cues.append(AssertionCue(text=section.title.text, start=section.title.start,
                                 end=section.title.end, category="SECTION"))
        if not ent._.is_negated:
            return "family", cues
    for attr, label in ASSERTIONS:
        if getattr(ent._, attr):
            return label, cues
    return "present", cues
