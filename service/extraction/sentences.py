"""Sentence boundaries for clinical text, so ConText scopes stop where a statement ends.

PyRuSH (medspaCy's default) costs ~90 ms per 500-word note here and keeps
"h/o MI. r/o PE." in one sentence; these few rules cost well under 1 ms.
A line break ends a sentence unless the line was wrapped mid-sentence.
"""

from __future__ import annotations

import numpy
from spacy.attrs import SENT_START
from spacy.tokens import Doc

END_PUNCT = {".", "!", "?", ";"}
# Words whose trailing period is not a sentence end ("vs." keeps "A vs. B" together).
NO_SPLIT_BEFORE_PERIOD = {"vs", "v", "dr", "mr", "mrs", "ms", "st", "approx", "e.g", "i.e",
                          "etc", "no", "fig", "pt", "sig"}
LINE_STARTS = {"-", "*", "•", "#", "+", "·", "o"}


def set_sentence_starts(doc: Doc) -> Doc:
    starts = numpy.full((len(doc), 1), -1, dtype="int64")  # 1 = starts a sentence
    last_word = None  # the last non-space token seen
    for i, token in enumerate(doc):
        if token.is_space and i > 0:
            continue
        if i == 0:
            starts[i, 0] = 1
        else:
            prev = doc[i - 1]
            starts[i, 0] = 1 if (
                _after_newline(prev, last_word, token) if prev.is_space
                else _after_punct(doc, i - 1, token)
            ) else -1
        last_word = token
    # One array write is much cheaper than setting is_sent_start token by token.
    doc.from_array([SENT_START], starts.view("uint64"))
    return doc


def _after_newline(space, last_word, token) -> bool:  # type: ignore[no-untyped-def]
    if "\n" not in space.text:
        return False
    if space.text.count("\n") > 1 or last_word is None:
        return True
    if last_word.text in END_PUNCT or last_word.text == ":":
        return True
    first = token.text[0]
    # A wrapped line continues in lower case ("denies chest\npain"); lists start capitalised.
    return first.isupper() or first.isdigit() or token.text in LINE_STARTS


def _after_punct(doc: Doc, j: int, token) -> bool:  # type: ignore[no-untyped-def]
    prev = doc[j]
    if token.is_punct:
        return False
    if len(prev.text) > 1 and prev.text.endswith(".") and prev.whitespace_:
        # The tokenizer keeps some periods on the word ("b/l." → "l."); "vs." is not an end.
        return prev.lower_[:-1] not in NO_SPLIT_BEFORE_PERIOD and token.text[0].isupper()
    if prev.text not in END_PUNCT:
        return False
    # "vs ." split by the tokenizer: the period belongs to the word.
    return not (prev.text == "." and j > 0 and doc[j - 1].lower_ in NO_SPLIT_BEFORE_PERIOD
                and not doc[j - 1].whitespace_)
