"""The in-memory lexical term index: which rows a query selects, how they score, and the
saved arrays reading back to the same answers."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from ingest.lexical_index import LexicalIndex

ROWS = [
    ("Hypoalbuminemia", "", "index", "E88.09"),
    ("Hypoaldosteronism", "", "index", "E27.40"),
    ("Pain", "", "index", "R52"),
    ("Pain > abdominal", "", "index", "R10.9"),
    ("Pain > abdominal > lower", "", "index", "R10.30"),
    ("Pain in left knee", "", "title", "M25.562"),
    ("Disease, diseased > kidney > chronic > stage 3a", "", "index", "N18.31"),
    ("Chronic kidney disease, stage 3a", "", "title", "N18.31"),
    ("Colic", "(recurrent)", "index", "R10.83"),
    ("Bronchiolectasis", "→ see Bronchiectasis", "index", "J47.9"),
    ("Fever", "(inanition) (of unknown origin) (persistent)", "index", "R50.9"),
    ("Pre-eclampsia", "", "index", "O14.9"),
]


@pytest.fixture(scope="module")
def lexical() -> LexicalIndex:
    return LexicalIndex(ROWS)


def codes(lexical: LexicalIndex, query: str) -> list[str]:
    return [m.code for m in lexical.search(query)]


def test_rows_are_selected_by_the_full_word(lexical: LexicalIndex) -> None:
    # Both share the six-character stem "hypoal" that scores them; only one is the word.
    assert codes(lexical, "hypoalbuminemia") == ["E88.09"]


def test_best_row_per_code_best_first(lexical: LexicalIndex) -> None:
    hits = lexical.search("chronic kidney disease stage 3a")
    assert [h.code for h in hits] == ["N18.31"]
    assert hits[0].score == 1.0 and hits[0].source == "index"
    # Every row holding "abdominal" and "pain": the one the query explains whole first.
    assert codes(lexical, "abdominal pain") == ["R10.9", "R10.30"]


def test_rows_holding_any_word_only_when_none_holds_all(lexical: LexicalIndex) -> None:
    # No row has "severe": rows with "abdominal" or "pain" are scored, by query coverage.
    hits = lexical.search("severe abdominal pain")
    assert hits[0].code == "R10.9" and hits[0].score == pytest.approx(2 / 3, abs=1e-3)
    assert "R52" in [h.code for h in hits]
    assert lexical.search("xyzzy") == []  # one unknown word: nothing


def test_modifiers_help_and_see_targets_are_shown(lexical: LexicalIndex) -> None:
    # "recurrent" is a nonessential modifier: half weight, never required.
    assert lexical.search("recurrent colic")[0].score == pytest.approx(0.75)
    assert lexical.search("colic")[0].score == 1.0
    assert lexical.search("fever of unknown origin")[0].code == "R50.9"
    see = lexical.search("bronchiolectasis")[0]
    assert see.text == "Bronchiolectasis → see Bronchiectasis"
    # A row matched only through its modifiers is not that row.
    assert lexical.search("persistent") == []


def test_hyphenated_prefixes_are_one_word(lexical: LexicalIndex) -> None:
    # The Index writes "Pre-eclampsia", notes "preeclampsia": either finds the row whole.
    assert lexical.search("preeclampsia")[0].code == "O14.9"
    assert lexical.search("preeclampsia")[0].score == 1.0
    assert lexical.search("pre-eclampsia")[0].score == 1.0


def test_saved_arrays_read_back_the_same(lexical: LexicalIndex, tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "codebook.sqlite")
    db.execute("CREATE TABLE lexicon (text, modifiers, source, code)")
    db.executemany("INSERT INTO lexicon VALUES (?, ?, ?, ?)", ROWS)
    db.commit()
    lexical.save(tmp_path / "lexical.npz")
    loaded = LexicalIndex.load(tmp_path / "lexical.npz", db)
    for query in ("pain", "left knee pain", "severe abdominal pain", "colic", "fever"):
        assert loaded.search(query) == lexical.search(query)
    # A codebook that is not the one the arrays were saved from is refused by name.
    db.execute("INSERT INTO lexicon VALUES ('Ache', '', 'index', 'R52')")
    db.commit()
    with pytest.raises(ValueError, match="12 rows, the codebook has 13"):
        LexicalIndex.load(tmp_path / "lexical.npz", db)


def test_arrays_of_another_tokenizer_are_refused(lexical: LexicalIndex, tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "codebook.sqlite")
    db.execute("CREATE TABLE lexicon (text, modifiers, source, code)")
    db.executemany("INSERT INTO lexicon VALUES (?, ?, ?, ?)", ROWS)
    db.commit()
    saved = tmp_path / "lexical.npz"
    lexical.save(saved)
    with np.load(saved) as arrays:
        old = {k: arrays[k] for k in arrays.files if k != "version"}  # written before versions
    with saved.open("wb") as f:
        np.savez(f, **old)
    with pytest.raises(ValueError, match="tokenizer version 1, this code reads 2"):
        LexicalIndex.load(saved, db)
