"""In-memory term index of a code year's lexicon (index paths, titles, inclusion terms,
table rows), scored the way a coder reads a match: how much of the query the row covers
and how much of the row the query explains.

It replaces SQLite FTS5 ranking on the lookup path: FTS5 must rank every row holding a
common word ("pain" is in thousands) before it can return the best 150, and an OR query is
ten times slower again. Here each word's rows are a sorted array, so one query costs a few
array unions however common its words, and every row is scored, not only FTS5's top 150.
The index build writes the word → rows arrays to `lexical.npz` beside the codebook
(`LexicalIndex.save`); opening it reads them back with the rows' texts from the codebook.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from nltk.stem.porter import PorterStemmer

# Words that carry no meaning for matching (the index's own connectives included).
STOPWORDS = frozenset(
    "a an and or of the to in on for by at as is are was with w due nos nec other "
    "unspecified".split()
)
TOKEN_RE = re.compile(r"[a-z0-9]+")
# "pre-eclampsia" is the Index's spelling, "preeclampsia" a note's: one word either way.
HYPHENATED_PREFIX = re.compile(
    r"\b(pre|post|non|anti|hyper|hypo|intra|inter|peri|para|sub|supra|trans|extra|infra|"
    r"retro|pseudo|poly|multi|semi|micro|macro)-(?=[a-z])")
# Bumped whenever tokenizing changes: a saved lexical.npz of another version is rebuilt.
TOKENIZER_VERSION = 2
_stemmer = PorterStemmer()

# Weights: how much each kind of match counts (index paths first, as a coder works).
SOURCE_WEIGHT = {
    "index": 1.0, "eindex": 0.95, "neoplasm": 0.95, "drug": 0.95, "title": 0.92, "inclusion": 0.9,
}
MAX_CODES = 150  # codes returned per query, best first
SEARCH_CACHE = 8192  # queries whose answers are kept (search results are never mutated)


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    # Six characters of the stem: "neoplasm"/"neoplastic" and "diabetes"/"diabetic" are one
    # concept, as the index's own main terms ("Neoplasm, neoplastic") treat them.
    return _stemmer.stem(word)[:6]


def tokens(text: str) -> list[str]:
    return TOKEN_RE.findall(HYPHENATED_PREFIX.sub(r"\1", text.lower()))


def terms(text: str) -> list[str]:
    return [stem(w) for w in tokens(text) if w not in STOPWORDS]


@lru_cache(maxsize=65536)
def full_stem(word: str) -> str:
    return _stemmer.stem(word)


def words(text: str) -> list[str]:
    """Full Porter stems: which rows a query selects ("hypoalbuminemia" is not
    "hypoaldosteronism", though both score by their six-character stem)."""
    return [full_stem(w) for w in tokens(text) if w not in STOPWORDS]


@dataclass(frozen=True)
class LexicalMatch:
    code: str
    text: str  # the row, with its "→ see" target when it has one
    source: str
    score: float


LEXICAL_FILE = "lexical.npz"
Postings = dict[str, np.ndarray]  # word → sorted row numbers
ROWS_SQL = "SELECT text, modifiers, source, code FROM lexicon ORDER BY rowid"


class LexicalIndex:
    def __init__(self, rows: list[tuple[str, str, str, str]],
                 postings: tuple[Postings, Postings, Postings] | None = None,
                 length: np.ndarray | None = None) -> None:
        """rows: (text, modifiers, source, code), as in the codebook's lexicon table;
        postings and length as computed by `_postings` (or read back by `load`)."""
        self._texts = [r[0] for r in rows]
        self._modifiers = [r[1] for r in rows]
        self._sources = [r[2] for r in rows]
        self._codes = [r[3] for r in rows]
        code_ids: dict[str, int] = {}
        self._code_id = np.array([code_ids.setdefault(c, len(code_ids)) for c in self._codes],
                                 dtype=np.int32)
        self._weight = np.array([SOURCE_WEIGHT.get(s, 0.9) for s in self._sources])
        self._see = np.array([m.startswith("→ see") for m in self._modifiers], dtype=bool)
        if postings is None or length is None:
            postings, length = _postings(rows)
        self._text_rows, self._mod_rows, self._word_rows = postings
        self._length = length
        # Facts repeat note after note ("pain", "fever"): their answers are kept.
        self.search = lru_cache(maxsize=SEARCH_CACHE)(self._search)  # type: ignore[method-assign]

    @classmethod
    def from_codebook(cls, db: sqlite3.Connection) -> LexicalIndex:
        return cls(db.execute(ROWS_SQL).fetchall())

    def save(self, path: Path) -> None:
        arrays: dict[str, np.ndarray] = {"length": self._length,
                                         "version": np.array(TOKENIZER_VERSION)}
        for name, postings in zip(POSTINGS, (self._text_rows, self._mod_rows, self._word_rows),
                                  strict=True):
            keys = list(postings)
            arrays[f"{name}_keys"] = np.array(keys, dtype=str)
            arrays[f"{name}_ends"] = np.cumsum([len(postings[k]) for k in keys], dtype=np.int64)
            arrays[f"{name}_rows"] = (np.concatenate([postings[k] for k in keys]) if keys
                                      else np.empty(0, dtype=np.int32))
        with path.open("wb") as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path: Path, db: sqlite3.Connection) -> LexicalIndex:
        """The saved arrays with the codebook's rows; ValueError when they do not belong
        together (a codebook replaced without its lexical.npz)."""
        rows = db.execute(ROWS_SQL).fetchall()
        with np.load(path) as saved:
            length = saved["length"]
            version = int(saved["version"]) if "version" in saved else 1
            if version != TOKENIZER_VERSION:
                raise ValueError(f"{path}: tokenizer version {version}, this code reads "
                                 f"{TOKENIZER_VERSION}")
            if len(length) != len(rows):
                raise ValueError(f"{path}: {len(length)} rows, the codebook has {len(rows)}")
            maps = []
            for name in POSTINGS:
                keys, ends, data = (saved[f"{name}_keys"], saved[f"{name}_ends"],
                                    saved[f"{name}_rows"])
                starts = np.concatenate([[0], ends[:-1]])
                maps.append({str(k): data[s:e] for k, s, e in zip(keys, starts, ends,
                                                                   strict=True)})
        return cls(rows, (maps[0], maps[1], maps[2]), length)

    def __len__(self) -> int:
        return len(self._texts)

    def _search(self, query: str, limit: int = MAX_CODES) -> list[LexicalMatch]:
        """Best row per code, best codes first.

        Rows holding every query word (in the path or its modifiers) are the best a lexical
        match can do; only when none does are rows holding any word considered. A row must
        hold some query word in its path: a match through its modifiers or "see" target only
        is not this row. Modifier words count half and lacking them costs a row nothing."""
        q = set(terms(query))
        selecting = set(words(query))
        if not q:
            return []
        empty = np.empty(0, dtype=np.int32)
        holding = [self._word_rows.get(w, empty) for w in selecting]
        rows = holding[0]
        for h in holding[1:]:
            rows = rows[_member(rows, h)]
        if not len(rows):
            if len(selecting) == 1:
                return []
            rows = np.unique(np.concatenate(holding))
        text = [self._text_rows.get(w, empty) for w in q]
        mods = [self._mod_rows.get(w, empty) for w in q]
        path_hits = _count_in(rows, text)
        keep = path_hits > 0
        rows, path_hits = rows[keep], path_hits[keep]
        if not len(rows):
            return []
        mod_hits = np.where(self._see[rows], 0.0, _count_in(rows, mods))
        score = ((path_hits + 0.5 * mod_hits) / len(q)
                 * (0.5 + 0.5 * path_hits / self._length[rows]) * self._weight[rows])
        score = np.round(score, 4)
        order = np.argsort(-score, kind="stable")  # ties: the earlier row, as stored
        _, first = np.unique(self._code_id[rows[order]], return_index=True)
        best = order[np.sort(first)][:limit]
        out = []
        for j in best:
            i = int(rows[j])
            modifiers = self._modifiers[i]
            shown = f"{self._texts[i]} {modifiers}" if modifiers.startswith("→ see") \
                else self._texts[i]
            out.append(LexicalMatch(self._codes[i], shown, self._sources[i], float(score[j])))
        return out


POSTINGS = ("text", "modifiers", "words")


def _postings(rows: list[tuple[str, str, str, str]]
              ) -> tuple[tuple[Postings, Postings, Postings], np.ndarray]:
    """Rows per six-character stem of the path, per stem of the modifiers the path lacks,
    per full stem of either; and each path's count of distinct stems."""
    text_rows: dict[str, list[int]] = {}
    mod_rows: dict[str, list[int]] = {}
    word_rows: dict[str, list[int]] = {}
    length = np.zeros(len(rows), dtype=np.float64)
    split = _Splitter()
    for i, (text, modifiers, _source, _code) in enumerate(rows):
        t, tw = split(text)
        m, mw = split(modifiers)
        length[i] = len(t) or 1
        for w in t:
            text_rows.setdefault(w, []).append(i)
        for w in m - t:  # modifier words the path lacks
            mod_rows.setdefault(w, []).append(i)
        for w in tw | mw:
            word_rows.setdefault(w, []).append(i)
    return (_arrays(text_rows), _arrays(mod_rows), _arrays(word_rows)), length


class _Splitter:
    """(six-character stems, full stems) of a text, each distinct text and word done once
    (index paths repeat: "Pain > ..." begins thousands of rows)."""

    def __init__(self) -> None:
        self._texts: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
        self._words: dict[str, tuple[str, str] | None] = {}

    def __call__(self, text: str) -> tuple[frozenset[str], frozenset[str]]:
        done = self._texts.get(text)
        if done is None:
            pairs = [self._word(w) for w in tokens(text)]
            kept = [p for p in pairs if p is not None]
            done = self._texts[text] = (frozenset(p[0] for p in kept),
                                        frozenset(p[1] for p in kept))
        return done

    def _word(self, word: str) -> tuple[str, str] | None:
        if word not in self._words:
            full = _stemmer.stem(word)
            self._words[word] = None if word in STOPWORDS else (full[:6], full)
        return self._words[word]


def _arrays(postings: dict[str, list[int]]) -> dict[str, np.ndarray]:
    return {w: np.array(v, dtype=np.int32) for w, v in postings.items()}


def _member(rows: np.ndarray, sorted_rows: np.ndarray) -> np.ndarray:
    """Which of `rows` are in `sorted_rows` (binary search: both are short beside a sort)."""
    if not len(sorted_rows):
        return np.zeros(len(rows), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_rows, rows), len(sorted_rows) - 1)
    return sorted_rows[at] == rows


def _count_in(rows: np.ndarray, postings: list[np.ndarray]) -> np.ndarray:
    """For each of the sorted `rows`, in how many of `postings` it appears."""
    counts = np.zeros(len(rows), dtype=np.float64)
    for p in postings:
        counts += _member(rows, p)
    return counts
