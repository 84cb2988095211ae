"""Resolve index "see" / "see also" cross-references to the terms they point at.

A target such as "Pain, abdominal" names a main term and then sub-terms, one per
comma part. Commas also occur inside titles ("Diabetes, diabetic", "boat, boating"),
so at every step a run of one or more parts is matched, longest first:

    "Accident, transport, car occupant"
     main term "Accident" → sub-term "transport" → sub-term "car occupant"

How a run of parts matches a title, strongest first (`_match`); words are compared
lower-cased, without accents, parentheses, NEC/NOS, "of/and/or", with plurals and a
few adjective endings folded ("retina" = "retinal"):
  1. same text, case-insensitive;
  2. same text ignoring parentheses, accents, a trailing NEC/NOS;
  3. same words, in any order, as the title or one of its comma alternatives
     ("intestine, large" = "large intestine"; "Diabetes" = "Diabetes, diabetic";
     "hydatidiform" = "hydatid, hydatidiform");
  4. the part adds only words of the term's non-essential modifier ("spinal cord"
     = "spinal (cord)");
  5. (sub-terms only) the part's words are a subset of the title's ("car" → "car
     occupant");
  6. the title's words are a subset of the part's: the rest of the part goes on to
     the next level ("with effusion" → "with" > "effusion", "upper limb" → "limb" >
     "upper");
  7. one catch-all for another: "specified site NEC" → "specified ligament NEC".
Candidates are tried best first, backtracking when a walk fails below them.
When no sub-term matches:
- a part made only of the term's modifier words is skipped ("Venom, bite, snake"
  under "Venom, venomous (bite) (sting)");
- one level may be skipped: connector sub-terms freely ("Diabetes, cataract" is
  printed under "Diabetes > with > cataract"), any other sub-term only with a
  strength 1-4 match below it, reported as "via: ...".

Search order: the referring term's own index, then the others (External Cause
Index targets often live in the Alphabetic Index). "Neoplasm, ..." goes to the
Neoplasm Table first, and a main term whose own see-also names a table hands the
rest of the target to that table ("Poisoning, mercury" → Table of Drugs "Mercury").

Every reference gets one outcome, told by `reason` (`summarize` counts them):
- ""                    resolved to a term (target_term_id set)
- "column: <key>"       resolved to a table term; the target also named a column
                        ("Neoplasm, skin, benign" → skin, column benign). <key> is a
                        column key, or "poisoning" for all four poisoning columns
- "via: skipped ..."    resolved, but only by skipping a sub-term that is not a
                        connector ("History, allergy" → "History > family > allergy
                        NEC"): a plausible guess, worth a look
- "table: drug ..."     the Table of Drugs and Chemicals as a whole (no single term;
                        target_term_id None), maybe with a column
- "generic: ..."        an instruction, not a place: "condition", "by site",
                        "category T17", "N00-N07 with fourth character .8"
                        (target_term_id None; not a failure)
- "unresolved[: ...]"   nothing found; the detail says how far the walk got
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from ingest.parsers.alphabetic_index import SEE_SEPARATOR
from ingest.records import IndexTerm, SeeReference

SOURCE_ORDER = ("index", "eindex", "neoplasm", "drug")

# Whole targets (or a failing first part) that are instructions, not index entries.
_GENERIC_TARGET = re.compile(
    r"^(?:"
    r"(?:the )?(?:specific|specified|appropriate|underlying)? ?(?:condition|disease|organism"
    r"|injury type|type of injury|site|type)s?(?: \w+)?"
    r"|(?:condition|site|type) and (?:condition|site|type)"
    r"|specific(?:ally)? .*|specified .*|\w+ specified"  # "specific substance"
    r"|(?:sub)?categor(?:y|ies)\b.*"  # "category M01", "categories T17 and" (seecat lost)
    r"|note at\b.*"  # "see Note at K00.2": the note is in the Tabular List
    r"|by\b.*"  # "by specific chemical substance"
    r"|[A-Z]\d[0-9A-Z](?:\.\S*)?(?:-[A-Z]\d[0-9A-Z]\S*)? with\b.*"  # "E08-E13 with .620"
    r"|index to diseases?(?: and injuries)?, by .*"
    r")$",
    re.IGNORECASE,
)
# A part that ends the walk with an instruction: "Injury, by site", "Anemia, by type",
# "Abortion by type complicated by embolism".
_GENERIC_PART = re.compile(
    r"^by\s|\bby (?:site|type|region|body region|agent|degree|drug|substance)\b"
    r"|^specified (?:site|type) of\s|^(?:sub)?categor"
    r"|\b[A-Z]\d[0-9A-Z]\S* with (?:final|fourth|fifth|sixth|7th) character",  # "L89 with ..."
    re.IGNORECASE,
)
# Table and index names used in targets, and the source that holds them.
_NAMED_SOURCES = (
    (re.compile(r"^table of drugs(?: and (?:chemicals|biologicals))?$", re.I), "drug"),
    (re.compile(r"^(?:table of neoplasms|neoplasm table)$", re.I), "neoplasm"),
    (re.compile(r"^index to diseases(?: and injuries)?$", re.I), "index"),
    (re.compile(r"^external cause (?:of injuries )?index$", re.I), "eindex"),
)
# Sub-terms that only connect ("Diabetes > with > cataract"); a target may skip them.
_CONNECTORS = frozenset({"with", "in", "due to", "without", "of", "following"})

# Columns named inside a target: "Neoplasm, skin, benign", "Table of Drugs, X, adverse effect".
COLUMN_WORDS = {
    "neoplasm": {
        "malignant": "malignant_primary",
        "malignant primary": "malignant_primary",
        "primary": "malignant_primary",
        "malignant secondary": "malignant_secondary",
        "secondary": "malignant_secondary",
        "in situ": "in_situ",
        "ca in situ": "in_situ",
        "carcinoma in situ": "in_situ",
        "benign": "benign",
        "uncertain behavior": "uncertain_behavior",
        "uncertain": "uncertain_behavior",
        "unspecified behavior": "unspecified_behavior",
        "unspecified": "unspecified_behavior",
    },
    "drug": {
        "poisoning": "poisoning",  # all four intents
        "accident": "poisoning_accidental",
        "accidental": "poisoning_accidental",
        "intentional self-harm": "poisoning_intentional_self_harm",
        "assault": "poisoning_assault",
        "undetermined": "poisoning_undetermined",
        "adverse effect": "adverse_effect",
        "underdosing": "underdosing",
    },
}

_PARENS = re.compile(r"\([^)]*\)")
# A code printed after a target: "Examination, medical Z00.00".
_TRAILING_CODE = re.compile(r"\s+[A-Z]\d[0-9A-Z](?:\.[0-9A-Z-]+)?$")
_TRAILING_QUALIFIER = re.compile(r"(?:,? (?:nec|nos))+$")
_WORD = re.compile(r"[a-z0-9]+")
_NOISE_WORDS = frozenset({"the", "a", "an", "nec", "nos", "of", "and", "or"})
# Words a target may add without naming a level: "hip level" → "hip", and salts in the
# Table of Drugs: "Fluoxetine hydrochloride" → "Fluoxetine".
_FILLER_WORDS = frozenset({"level", "site", "region", "part", "hydrochloride", "hcl", "sodium"})
_ENDINGS = ("al", "a", "e")  # folded after the plural "s": retina/retinal, vertebra/vertebral
_MAX_CANDIDATES = 6  # per step; keeps backtracking small on big sub-term lists


def _fold(text: str) -> str:
    """Lower case without accents: 'Calvé' → 'calve'."""
    if text.isascii():  # nearly all titles: skip the slow Unicode path
        return text.lower()
    text = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in text if not unicodedata.combining(c)).replace("’", "'")


def _strict(text: str) -> str:
    return " ".join(text.lower().split())


@lru_cache(maxsize=200_000)
def _loose(text: str) -> str:
    """No parentheses, accents, trailing NEC/NOS or stray punctuation."""
    text = " ".join(_PARENS.sub(" ", _fold(text)).split()).strip(" ,.;:-")
    return _TRAILING_QUALIFIER.sub("", text)


def _stem(word: str) -> str:
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    for ending in _ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= 5:
            return word[: -len(ending)]
    return word


@lru_cache(maxsize=200_000)
def _raw_words(text: str) -> tuple[str, ...]:
    """Content words in order as written (lower case), parentheses dropped."""
    return tuple(w for w in _WORD.findall(_fold(_PARENS.sub(" ", text))) if w not in _NOISE_WORDS)


@lru_cache(maxsize=200_000)
def _words(text: str) -> tuple[str, ...]:
    """Content words folded for comparison: 'Complications' → 'complication'."""
    return tuple(_stem(w) for w in _raw_words(text))


@dataclass(frozen=True, slots=True, eq=False)  # compared by identity: one per term
class _Names:
    """A term's title in the forms `_match` compares."""

    term: IndexTerm
    strict: str
    loose: str
    # Word sets of the whole title, then of each comma alternative ("Diabetes, diabetic").
    alts: tuple[frozenset[str], ...]
    nemod_words: frozenset[str]
    first_word: str

    @classmethod
    def of(cls, term: IndexTerm) -> _Names:
        alts = [frozenset(_words(term.title))]
        if "," in term.title:
            alts += [frozenset(_words(alt)) for alt in term.title.split(",")]
        return cls(
            term=term,
            strict=_strict(term.title),
            loose=_loose(term.title),
            alts=tuple(a for a in alts if a) or (frozenset(),),
            nemod_words=frozenset(_words(term.nemod.replace("(", " ").replace(")", " "))),
            first_word=next(iter(_words(term.title)), ""),
        )


@dataclass(frozen=True, slots=True)
class _Query:
    """A run of target parts in the forms `_match` compares."""

    strict: str
    loose: str
    order: tuple[tuple[str, str], ...]  # (word as written, folded word)
    words: frozenset[str]


@lru_cache(maxsize=100_000)
def _query(text: str) -> _Query:
    order = tuple(zip(_raw_words(text), _words(text), strict=True))
    return _Query(_strict(text), _loose(text), order, frozenset(w for _, w in order))


def _match(query: _Query, names: _Names, main: bool) -> tuple[int, str] | None:
    """(strength 1-7, words left for the next level) if the query names this term, else None."""
    if query.strict == names.strict:
        return 1, ""
    if query.loose == names.loose:
        return 2, ""
    words = query.words
    if not words:
        return None
    if words in names.alts:
        return 3, ""
    for alt in names.alts:
        if alt and alt < words and words <= alt | names.nemod_words:
            return 4, ""
    # A main term must also start with the part's first word: "Gait" → "Gait abnormality".
    if words < names.alts[0] and (not main or query.order[0][1] == names.first_word):
        return 5, ""
    for alt in names.alts:
        if alt and alt < words:
            rest = [raw for raw, w in query.order if w not in alt and w not in names.nemod_words]
            if all(w in _FILLER_WORDS for w in rest):
                return 4, ""
            return 6, " ".join(rest)
    # Catch-all to catch-all: "specified site NEC" → "specified ligament NEC".
    if _is_catch_all(query.strict) and _is_catch_all(names.strict):
        return 7, ""
    return None


def _is_catch_all(strict: str) -> bool:
    return strict.startswith("specified") and strict.endswith(" nec")


class _Candidate(NamedTuple):
    names: _Names
    rest: tuple[str, ...]  # parts still to walk below it
    strength: int  # 1 (same text) to 7 (catch-all), see _match


@dataclass
class _Outcome:
    term_id: int | None
    reason: str
    depth: int  # steps walked: ranks partial walks for the "unresolved" detail

    @property
    def done(self) -> bool:
        """Resolved, or explained as generic: no need to look further."""
        return self.term_id is not None or self.reason.startswith("generic")


class _Resolver:
    """Lookups over all terms, built once; resolves target texts."""

    def __init__(self, terms: list[IndexTerm]) -> None:
        self.children: dict[int, list[IndexTerm]] = defaultdict(list)
        # source → first word of each title alternative → main terms (candidates only).
        self.mains: dict[str, dict[str, list[IndexTerm]]] = defaultdict(lambda: defaultdict(list))
        self.tops: dict[str, list[IndexTerm]] = defaultdict(list)  # main terms per source
        for t in terms:
            if t.parent_id is not None:
                self.children[t.parent_id].append(t)
                continue
            self.tops[t.source].append(t)
            for first in {_words(alt)[0] for alt in t.title.split(",") if _words(alt)}:
                self.mains[t.source][first].append(t)
        self.sources = [s for s in SOURCE_ORDER if s in self.tops]
        self.sources += sorted(set(self.tops) - set(SOURCE_ORDER))
        # Built on demand: most terms are never looked at.
        self._names: dict[int, _Names] = {}
        # parent id → word → children with that word: only these can match a part.
        self._child_words: dict[int, dict[str, list[IndexTerm]]] = {}
        self._walks: dict[tuple[int, tuple[str, ...], int], _Outcome] = {}

    # -- candidates -------------------------------------------------------------

    def names(self, term: IndexTerm) -> _Names:
        names = self._names.get(term.id)
        if names is None:
            names = self._names[term.id] = _Names.of(term)
        return names

    def kids(self, names: _Names) -> list[_Names]:
        return [self.names(t) for t in self.children.get(names.term.id, ())]

    def _pool(self, parent: _Names, words: Iterable[str]) -> list[_Names]:
        """Sub-terms of `parent` sharing a word with the query: only these can match."""
        index = self._child_words.get(parent.term.id)
        if index is None:
            index = defaultdict(list)
            for term in self.children.get(parent.term.id, ()):
                for word in set(_words(term.title)):
                    index[word].append(term)
            self._child_words[parent.term.id] = index
        hits = {id(t): t for w in words for t in index.get(w, ())}
        return [self.names(t) for t in hits.values()]

    @staticmethod
    def _ranked(pool: list[_Names], parts: tuple[str, ...], main: bool) -> list[_Candidate]:
        """Every way a run of `parts` names a term in pool, best first."""
        scored = []
        for n in range(len(parts), 0, -1):
            query = _query(", ".join(parts[:n]))
            for names in pool:
                hit = _match(query, names, main)
                if hit:
                    strength, rest = hit
                    # Loose subset matches (5) prefer the fewest parts: the rest may be a
                    # sub-term ("multiple, ankle and foot" → "multiple sites..." > "ankle
                    # and foot"); all others prefer the most.
                    order = n if strength == 5 else -n
                    remaining = ((rest,) if rest else ()) + parts[n:]
                    scored.append(
                        (
                            strength,
                            order,
                            len(names.alts[0]),
                            _Candidate(names, remaining, strength),
                        )
                    )
        scored.sort(key=lambda s: s[:3])
        return [s[3] for s in scored[:_MAX_CANDIDATES]]

    def _child_candidates(self, node: _Names, parts: tuple[str, ...]) -> list[_Candidate]:
        return self._ranked(self._pool(node, _run_words(parts)), parts, main=False)

    def _main_candidates(self, source: str, parts: tuple[str, ...]) -> list[_Candidate]:
        first = _words(parts[0])[:1]
        pool = self.mains[source].get(first[0], []) if first else []
        return self._ranked([self.names(t) for t in pool], parts, main=True)

    # -- walking ----------------------------------------------------------------

    def _walk(self, names: _Names, parts: tuple[str, ...], hops: int = 0) -> _Outcome:
        """Follow `parts` down from a term: the first full match, else the deepest partial.

        Memoized: targets share their beginnings ("Complication, graft, ...").
        """
        key = (names.term.id, parts, hops)
        if key not in self._walks:
            self._walks[key] = self._walk_uncached(names, parts, hops)
        return self._walks[key]

    def _walk_uncached(self, names: _Names, parts: tuple[str, ...], hops: int) -> _Outcome:
        node = names.term
        if not parts:
            return _Outcome(node.id, "", 0)
        column = COLUMN_WORDS.get(node.source, {}).get(_loose(parts[0]))
        if column:
            sub = self._walk(names, parts[1:], hops)
            if sub.term_id is not None and not sub.reason:
                return _Outcome(sub.term_id, f"column: {column}", sub.depth + 1)
            return sub
        best = _Outcome(None, f"unresolved: no sub-term {parts[0]!r} under {node.path_text!r}", 0)
        for child in self._child_candidates(names, parts):
            sub = self._walk(child.names, child.rest, hops)
            if sub.done:
                return sub
            if sub.depth + 1 > best.depth:
                best = _Outcome(None, sub.reason, sub.depth + 1)
        if _GENERIC_PART.search(parts[0]):
            return _Outcome(None, f"generic: {', '.join(parts)!r} under {node.path_text!r}", 0)
        first_words = set(_words(parts[0]))
        if first_words and first_words <= names.nemod_words:
            # The part repeats this term's modifier: "Venom, bite, snake" at "Venom (bite)".
            sub = self._walk(names, parts[1:], hops)
            if sub.done:
                return sub
        skipped = self._skip_level(names, parts) if hops == 0 else None
        return skipped if skipped and skipped.done else best

    def _skip_level(self, names: _Names, parts: tuple[str, ...]) -> _Outcome | None:
        """Targets may skip a level: "Diabetes, cataract" is printed "Diabetes > with > cataract".

        Connector sub-terms first. Skipping any other sub-term ("History, allergy" →
        "History > family > allergy NEC") is a guess: it needs a solid match (strength
        1-4) below, and the reason names the skipped sub-term. None when nothing fits.
        """
        kids = sorted(self.kids(names), key=lambda c: c.loose not in _CONNECTORS)
        for child in kids:
            connector = child.loose in _CONNECTORS
            for grandchild in self._child_candidates(child, parts):
                if grandchild.strength > 4 and not connector:
                    continue
                sub = self._walk(grandchild.names, grandchild.rest, hops=1)
                if sub.term_id is None:
                    continue
                if connector:
                    return sub
                note = f"via: skipped sub-term {child.term.title!r}"
                return _Outcome(sub.term_id, f"{note}; {sub.reason}" if sub.reason else note, 0)
        return None

    def _in_sources(self, parts: tuple[str, ...], sources: list[str]) -> _Outcome:
        best = _Outcome(None, "unresolved", -1)
        for source in sources:
            for main in self._main_candidates(source, parts):
                outcome = self._walk(main.names, main.rest)
                if outcome.done:
                    return outcome
                redirected = self._follow_table_see(main.names.term, main.rest)
                if redirected and redirected.done:
                    return redirected
                best = max(best, outcome, key=lambda o: o.depth)
        return best

    def _follow_table_see(self, main: IndexTerm, rest: tuple[str, ...]) -> _Outcome | None:
        """A main term that says "see (also) Table of ..." hands the rest to that table."""
        for field in (main.see, main.see_also):
            source = _named_source(field.split(",")[0]) if field and rest else None
            if source and source != main.source:
                return self._in_table(source, rest)
        return None

    def _in_table(self, source: str, parts: tuple[str, ...]) -> _Outcome:
        """Parts inside a table: the Neoplasm Table is one main term, so walk below it."""
        if source != "neoplasm":
            return self._in_sources(parts, [source])
        best = _Outcome(None, "unresolved", -1)
        for top in self.tops[source]:
            outcome = self._walk(self.names(top), parts)
            if outcome.done:
                return outcome
            best = max(best, outcome, key=lambda o: o.depth)
        return best

    def resolve(self, text: str, source: str) -> _Outcome:
        # Instructions are printed in lower case ("see condition"); "see Disease" is a term.
        if text[:1].islower() and _GENERIC_TARGET.match(text):
            return _Outcome(None, f"generic: {text!r}", 0)
        parts = tuple(p.strip() for p in text.split(",") if p.strip())
        # An explicit table or index name first: "Table of Drugs and Chemicals, by drug".
        for n in range(len(parts), 0, -1):
            named = _named_source(", ".join(parts[:n]))
            if named is None:
                continue
            rest = parts[n:]
            if named == "drug" and (not rest or _GENERIC_PART.search(rest[0])):
                return _Outcome(None, f"table: drug ({text})", 0)
            if named == "drug" and _loose(rest[0]) in COLUMN_WORDS["drug"]:
                column = COLUMN_WORDS["drug"][_loose(rest[0])]
                return _Outcome(None, f"table: drug, column {column} ({text})", 0)
            if not rest and len(self.tops[named]) == 1:  # "Table of Neoplasms": its one term
                return _Outcome(self.tops[named][0].id, "", 0)
            if not rest:
                return _Outcome(None, f"generic: {text!r} (a whole index)", 0)
            return self._in_table(named, rest)
        sources = [source] + [s for s in self.sources if s != source]
        # "Neoplasm, ..." means the Neoplasm Table, even from the Alphabetic Index.
        if _loose(parts[0]).startswith("neoplasm") and "neoplasm" in sources:
            sources = ["neoplasm"] + [s for s in sources if s != "neoplasm"]
        outcome = self._in_sources(parts, sources)
        # "condition, chromosome 13", "External cause by type, ...": instructions after all.
        if not outcome.done and (
            _GENERIC_TARGET.match(text) or (text[:1].islower() and _GENERIC_TARGET.match(parts[0]))
        ):
            return _Outcome(None, f"generic: {text!r}", 0)
        if not outcome.done and _GENERIC_PART.search(parts[0]):
            return _Outcome(None, f"generic: {text!r}", 0)
        return outcome


def _run_words(parts: tuple[str, ...]) -> set[str]:
    """Every folded word of the parts: what a sub-term must share to be a candidate."""
    return {w for part in parts for w in _words(part)}


def _named_source(text: str) -> str | None:
    """The source a table or index name stands for ("Table of Neoplasms" → neoplasm)."""
    return next((source for p, source in _NAMED_SOURCES if p.match(text.strip())), None)


# Between targets: the parser's separator for several <see>, or ", and " before a main term.
_TARGET_SPLIT = re.compile(
    re.escape(SEE_SEPARATOR.strip()) + r"|, and (?:see (?:also )?)?(?=[A-Z][a-z])"
)


def _split_targets(text: str) -> list[str]:
    """One see field → its targets.

    Joined fields, "X; and see also Y" and "Failure, renal, and Failure, heart" hold
    several; a leading "also", and a code printed after the target, are dropped.
    """
    targets = []
    for piece in _TARGET_SPLIT.split(text):
        piece = re.sub(r"^\s*(?:and )?(?:see )?(?:also )?", "", piece.strip(), flags=re.I)
        piece = _TRAILING_CODE.sub("", " ".join(piece.split())).rstrip(".")
        if piece:
            targets.append(piece)
    return targets


def resolve_see_references(terms: list[IndexTerm]) -> list[SeeReference]:
    """One SeeReference per see / see-also target of every term, resolved where possible.

    Pass the terms of all indexes together, so targets across indexes resolve.
    """
    resolver = _Resolver(terms)
    cache: dict[tuple[str, str], _Outcome] = {}  # the same target recurs hundreds of times
    refs: list[SeeReference] = []
    for term in terms:
        for kind, field in (("see", term.see), ("see_also", term.see_also)):
            for target in _split_targets(field) if field else ():
                key = (target, term.source)
                if key not in cache:
                    cache[key] = resolver.resolve(target, term.source)
                outcome = cache[key]
                refs.append(
                    SeeReference(
                        term_id=term.id,
                        kind=kind,
                        target_text=target,
                        target_term_id=outcome.term_id,
                        reason=outcome.reason,
                    )
                )
    return refs


def summarize(refs: Iterable[SeeReference]) -> dict[str, int]:
    """Counts per outcome (see the module docstring).

    resolved: to a term (maybe with a column); resolved_via: to a term, skipping a
    non-connector level; table: the Table of Drugs as a whole; generic; unresolved.
    """
    counts = {"resolved": 0, "resolved_via": 0, "table": 0, "generic": 0, "unresolved": 0}
    for ref in refs:
        if ref.target_term_id is not None:
            counts["resolved_via" if ref.reason.startswith("via:") else "resolved"] += 1
        else:
            counts[ref.reason.split(":", 1)[0]] += 1
    return counts
