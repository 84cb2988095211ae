"""Step 1 pipeline: a note in, structured facts with exact evidence offsets out.

medspaCy components do the clinical NLP: its tokenizer, TargetMatcher (concept
lexicon), Sectionizer (section rules) and ConText (assertion rules). medcode adds
sentence rules, abbreviation senses, specificity modifiers and cause links; all
of their rules are data files in resources/.
"""

from __future__ import annotations

import bisect
import hashlib
import re
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import medspacy
from medspacy.section_detection import SectionRule
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

from service.extraction.abbreviations import DOMINANT_SENSE, SenseInventory
from service.extraction.assertion import assertion_of, load_context_rules
from service.extraction.concepts import ABBREVIATION_LABEL, Concept, load_concepts, target_rules
from service.extraction.models import (
    AbbreviationUse,
    Evidence,
    Extraction,
    Fact,
    Modifier,
    NoteInfo,
    Pregnancy,
    Section,
)
from service.extraction.modifiers import FactWindow, ModifierRules
from service.extraction.note_input import NoteInput
from service.extraction.relations import find_relations
from service.extraction.sentences import set_sentence_starts
from service.extraction.vocabulary import index_vocabulary, load_stopwords

RESOURCES = Path(__file__).parent / "resources"
# All rules are phrases, so medspaCy's token matchers stay empty and spaCy warns on every call.
warnings.filterwarnings("ignore", message=r".*\[W036\]")
ABBREVIATION_TOKEN = re.compile(r"^(?=.*[A-Z]{2}|.*\d|.*/)[A-Za-z0-9/&+-]{2,8}$")


@dataclass
class _Target:
    """One matched span after abbreviation resolution."""

    kind: str
    normalized: str | None
    concept: Concept | None
    abbreviation: AbbreviationUse | None
    flags: list[str]


def load_vocabulary(resources: Path = RESOURCES, vocabulary: Path | None = None
                    ) -> tuple[list[Concept], str]:
    """The curated lexicon, extended by the index terms of a year's codebook.sqlite."""
    concepts = load_concepts(resources / "concepts.tsv")
    if vocabulary is None:
        return concepts, "curated lexicon only"
    curated = {c.surface for c in concepts}
    extra = [c for c in index_vocabulary(
        vocabulary, load_stopwords(resources / "vocabulary_stopwords.txt"))
        if c.surface not in curated]
    return concepts + extra, f"+ {len(extra):,} index terms from {vocabulary.parent.name}"


def lookup_terms(vocabulary: Path | None = None) -> list[str]:
    """The terms step 2 looks up for facts of this vocabulary (their normalized forms):
    an index build saves their query vectors."""
    concepts, _ = load_vocabulary(RESOURCES, vocabulary)
    return sorted({c.normalized for c in concepts if c.normalized})


class Extractor:
    """`vocabulary`: a year's codebook.sqlite whose terms extend the curated lexicon."""

    def __init__(self, resources: Path = RESOURCES, vocabulary: Path | None = None) -> None:
        self.resources = resources
        self.inventory = SenseInventory(resources / "abbreviation_senses.tsv",
                                        resources / "abbreviations.tsv")
        self.modifier_rules = ModifierRules(resources / "modifiers.json")
        self.concepts, vocabulary_note = load_vocabulary(resources, vocabulary)

        # The medspaCy tokenizer only; components are called one by one in extract().
        self.nlp = medspacy.load(medspacy_enable=["medspacy_tokenizer"])
        # Spans are returned and set once: medspaCy's "ents" mode re-sets doc.ents per match.
        self.matcher = self.nlp.add_pipe("medspacy_target_matcher",
                                         config={"result_type": None})
        self.matcher.add(target_rules(self.concepts, self.inventory.ambiguous))
        self.sectionizer = self.nlp.add_pipe(
            "medspacy_sectionizer",
            config={"rules": None, "require_start_line": True, "span_attrs": None})
        self.sectionizer.add(SectionRule.from_json(str(resources / "sections.json")))
        self.context = self.nlp.add_pipe("medspacy_context",
                                         config={"rules": None, "span_attrs": "default"})
        self.context.add(load_context_rules(resources / "context_rules.json"))
        # spaCy components are not documented as thread-safe; a note takes ~10 ms anyway.
        self._lock = threading.Lock()
        self.version = (f"medspacy {medspacy.__version__} (TargetMatcher, Sectionizer, ConText) "
                        f"+ medcode rules {self._rules_hash()}; {len(self.concepts):,} terms "
                        f"({vocabulary_note})")

    def _rules_hash(self) -> str:
        digest = hashlib.sha256()
        for path in sorted(self.resources.iterdir()):
            if path.is_file():
                digest.update(path.name.encode() + path.read_bytes())
        return digest.hexdigest()[:12]

    def extract(self, note: NoteInput) -> Extraction:
        text = note.text
        with self._lock:
            doc = self.nlp.make_doc(text)
            set_sentence_starts(doc)
            doc.ents = filter_spans(self.matcher(doc))
            targets, dropped = self._resolve_targets(doc)
            doc = self.sectionizer(doc)
            doc = self.context(doc)

        sections = self._sections(doc)
        sentences = [(s.start_char, s.end_char) for s in doc.sents]
        pregnancy = self.modifier_rules.pregnancy(text)
        abbreviations: list[AbbreviationUse] = []
        facts: list[Fact] = []
        placed: list[tuple[str, int, int, int]] = []
        ents = list(doc.ents)
        for i, ent in enumerate(ents):
            sent = bisect.bisect_right(sentences, (ent.start_char, len(text) + 1)) - 1
            s_start, s_end = sentences[sent]
            # Entities do not overlap, so the neighbours are the previous and next ones.
            window = FactWindow(
                ent.start_char, ent.end_char, s_start, s_end,
                prev_end=max(ents[i - 1].end_char, s_start) if i > 0 else s_start,
                next_start=min(ents[i + 1].start_char, s_end) if i + 1 < len(ents) else s_end)
            fact, uses = self._fact(doc, text, ent, f"F{i + 1}",
                                    targets[(ent.start_char, ent.end_char)], window,
                                    _section_at(sections, ent.start_char), pregnancy)
            fact.abbreviations = list(range(len(abbreviations), len(abbreviations) + len(uses)))
            abbreviations += uses
            facts.append(fact)
            placed.append((fact.id, ent.start_char, ent.end_char, sent))

        covered = [(f.start, f.end) for f in facts] + [(a.start, a.end) for a in abbreviations]
        abbreviations += self._shorthand(text, covered) + dropped
        return Extraction(
            note=NoteInfo(sha256=note.sha256, chars=len(text), source=note.source,
                          setting=note.setting, date_of_service=note.date_of_service,  # type: ignore[arg-type]
                          age=note.age, sex=note.sex),  # type: ignore[arg-type]
            sections=sections, facts=facts,
            relations=find_relations(text, placed, self.modifier_rules.relations),
            abbreviations=_in_text_order(abbreviations, facts), pregnancy=pregnancy,
            bmi=self.modifier_rules.bmi(text), extractor=self.version)

    def _fact(self, doc: Doc, text: str, ent: Span, fact_id: str, target: _Target,
              window: FactWindow, section: Section | None, pregnancy: Pregnancy | None
              ) -> tuple[Fact, list[AbbreviationUse]]:
        # `text` is doc.text, which spaCy rebuilds from every token on each access.
        assertion, cues = assertion_of(doc, ent, section)
        modifiers, flags, lateral = self._modifiers(text, window, target)
        if pregnancy and pregnancy.trimester_evidence and target.kind != "procedure" \
                and assertion in ("present", "possible"):
            cue = pregnancy.trimester_evidence
            modifiers.append(Modifier(axis="trimester", value=pregnancy.trimester or "",
                                      text=cue.text, start=cue.start, end=cue.end,
                                      source="note"))
        fact = Fact(
            id=fact_id, kind=target.kind, text=ent.text,  # type: ignore[arg-type]
            start=ent.start_char, end=ent.end_char, normalized=target.normalized,
            vocabulary=target.concept.source if target.concept else "abbreviation",  # type: ignore[arg-type]
            section=section.name if section else None, assertion=assertion,
            assertion_cues=cues, modifiers=modifiers, abbreviations=[],
            flags=sorted(set(target.flags + flags)))
        return fact, self._abbreviation_uses(ent, target, modifiers, lateral, text)

    # --- steps -----------------------------------------------------------------------------

    def _resolve_targets(
        self, doc: Doc
    ) -> tuple[dict[tuple[int, int], _Target], list[AbbreviationUse]]:
        """Settle ambiguous abbreviations by context; drop senses that are not facts."""
        dropped: list[AbbreviationUse] = []
        kept: list[Span] = []
        targets: dict[tuple[int, int], _Target] = {}
        text = doc.text
        for ent in doc.ents:
            rule = ent._.target_rule
            key = (ent.start_char, ent.end_char)
            if ent.label_ != ABBREVIATION_LABEL:
                concept: Concept = rule.metadata["concept"]
                targets[key] = _Target(concept.kind, concept.normalized, concept, None, [])
                kept.append(ent)
                continue
            abbreviation = rule.metadata["abbreviation"]
            res = self.inventory.resolve(text, abbreviation, ent.start_char, ent.end_char)
            senses = self.inventory.senses_of(abbreviation)
            if res.sense is not None:
                use = AbbreviationUse(text=ent.text, start=ent.start_char, end=ent.end_char,
                                      expansion=res.sense.sense,
                                      resolved_by=f"context cue {res.cue!r}", ambiguous=False,
                                      senses=senses)
                if res.sense.concept is None:  # e.g. PE = physical examination
                    dropped.append(use)
                    continue
                targets[key] = _Target(res.sense.category or "condition", res.sense.concept,
                                       None, use, [])
            else:
                candidates = res.matched or self.inventory.curated[abbreviation]
                concept_senses = [s for s in candidates if s.concept]
                if not concept_senses:
                    continue
                names = ", ".join(s.sense for s in candidates)
                senses = self.inventory.senses_of(abbreviation, first=[s.sense for s in candidates])
                use = AbbreviationUse(
                    text=ent.text, start=ent.start_char, end=ent.end_char, expansion=None,
                    resolved_by=f"unresolved: no single context cue among {names}",
                    ambiguous=True, senses=senses)
                targets[key] = _Target(concept_senses[0].category or "condition", None, None,
                                       use, ["ambiguous_abbreviation"])
            kept.append(ent)
        doc.ents = kept
        return targets, dropped

    def _sections(self, doc: Doc) -> list[Section]:
        out = []
        for s in doc._.sections:
            if s.title_span is None or s.category is None:
                continue
            title, body = doc[slice(*s.title_span)], doc[slice(*s.section_span)]
            out.append(Section(name=s.category,
                               title=Evidence(text=title.text, start=title.start_char,
                                              end=title.end_char),
                               start=title.start_char, end=body.end_char))
        return out

    def _modifiers(self, text: str, window: FactWindow, target: _Target
                   ) -> tuple[list[Modifier], list[str], list[tuple[str, int, int]]]:
        found, abbreviations = self.modifier_rules.find(text, window, target.kind,
                                                        target.normalized)
        flags = []
        axes = {m.axis: m for m in found}
        if target.concept:
            for axis, value in target.concept.implied:
                if axis in axes and axes[axis].value != value:
                    flags.append("conflicting_modifiers")
                    continue
                if axis not in axes:
                    modifier = Modifier(axis=axis, value=value, text=text[window.start:window.end],
                                        start=window.start, end=window.end, source="lexicon")
                    found.append(modifier)
                    axes[axis] = modifier
        return sorted(found, key=lambda m: (m.start, m.axis)), flags, abbreviations

    def _abbreviation_uses(self, ent: Span, target: _Target, modifiers: list[Modifier],
                           lateral: list[tuple[str, int, int]], text: str
                           ) -> list[AbbreviationUse]:
        uses = []
        if target.abbreviation is not None:
            uses.append(target.abbreviation)
        elif target.concept is not None:
            for token in ent:
                word = token.lower_
                ambiguous = word in self.inventory.ambiguous
                if not (ambiguous or ABBREVIATION_TOKEN.match(token.text)):
                    continue
                if word in target.normalized.lower().split():  # type: ignore[union-attr]
                    continue
                uses.append(self._lexicon_use(token, target, len(ent) == 1))
        for abbreviation, start, end in lateral:
            value = next(m.value for m in modifiers if m.start == start)
            uses.append(AbbreviationUse(
                text=text[start:end], start=start, end=end, expansion=value,
                resolved_by="context: laterality next to a finding", ambiguous=False,
                senses=self.inventory.senses_of(abbreviation)))
        return uses

    def _lexicon_use(self, token, target: _Target, whole: bool) -> AbbreviationUse:  # type: ignore[no-untyped-def]
        senses = self.inventory.senses_of(token.text)
        normalized = target.normalized or ""
        curated = [c for c in self.inventory.curated.get(token.lower_, []) if c.concept]
        expansion = (curated[0].sense if curated and not whole
                     else self.inventory.best_sense(token.text, normalized) or normalized)
        freq = self.inventory.sense_frequency(token.text, normalized) if whole else None
        # The lexicon sense is the usual one in clinical notes, or the phrase settles it.
        ambiguous = whole and freq is not None and freq < DOMINANT_SENSE
        how = "lexicon" if whole else f"lexicon phrase {target.concept.surface!r}"  # type: ignore[union-attr]
        return AbbreviationUse(
            text=token.text, start=token.idx, end=token.idx + len(token.text),
            expansion=None if ambiguous else expansion,
            resolved_by=how if not ambiguous else
            f"unresolved: the lexicon sense has frequency {freq:.2f} in clinical notes",
            ambiguous=ambiguous, senses=senses)

    def _shorthand(self, text: str, covered: list[tuple[int, int]]) -> list[AbbreviationUse]:
        uses = []
        covered.sort()
        starts = [s for s, _ in covered]
        for m in self.inventory.shorthand_re.finditer(text):
            i = bisect.bisect_right(starts, m.start()) - 1
            if i >= 0 and m.start() < covered[i][1]:
                continue  # already part of a fact or an abbreviation in use
            sense = self.inventory.shorthand[m.group(0).lower()]
            uses.append(AbbreviationUse(
                text=m.group(0), start=m.start(), end=m.end(), expansion=sense.sense,
                resolved_by="shorthand list", ambiguous=False,
                senses=self.inventory.senses_of(m.group(0), limit=3)))
        return uses


def _section_at(sections: list[Section], offset: int) -> Section | None:
    i = bisect.bisect_right([s.start for s in sections], offset) - 1
    if i >= 0 and sections[i].start <= offset < sections[i].end:
        return sections[i]
    return None


def _in_text_order(uses: list[AbbreviationUse], facts: list[Fact]) -> list[AbbreviationUse]:
    """One entry per span, sorted by offset; facts' indexes are rewritten to match."""
    first: dict[tuple[int, int], int] = {}
    for k, use in enumerate(uses):
        first.setdefault((use.start, use.end), k)
    order = sorted(set(first.values()), key=lambda k: uses[k].start)
    position = {old: new for new, old in enumerate(order)}
    for fact in facts:
        fact.abbreviations = sorted({position[first[(uses[k].start, uses[k].end)]]
                                     for k in fact.abbreviations})
    return [uses[k] for k in order]
