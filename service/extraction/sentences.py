"""Sentence boundaries for clinical text, so ConText scopes stop where a statement ends.

PyRuSH (medspaCy's default) costs ~90 ms per 500-word note here and keeps
"h/o MI. r/o PE." in one sentence; these few rules cost well under 1 ms.
A line break ends a sentence unless the line was wrapped mid-sentence.
"""

from __future__ import annotations

from spacy.tokens import Doc

END_PUNCT = {".", "!", "?", ";"}
# Words whose trailing period is not a sentence end ("vs." keeps "A vs. B" together).
NO_SPLIT_BEFORE_PERIOD = {"vs", "v", "dr", "mr", "mrs", "ms", "st", "approx", "e.g", "i.e",
                          "etc", "no", "fig", "pt", "sig"}
LINE_STARTS = {"-", "*", "•", "#", "+", "·", "o"}


def set_sentence_starts(doc: Doc) -> Doc:
    last_word = None  # the last non-space token seen
    for i, token in enumerate(doc):
        if i == 0:
            token.is_sent_start = True
        elif token.is_space:
            token.is_sent_start = False
            continue
        else:
            prev = doc[i - 1]
            token.is_sent_start = (
                _after_newline(prev, last_word, token) if prev.is_space
                else _after_punct(doc, i - 1, token)
            )
        last_word = token
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
