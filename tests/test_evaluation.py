"""Evaluation harness: metrics on hand-made predictions, dataset loaders, and `medcode eval`
end to end on the FY2025 index."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from service.coding.calibration import (
    PATH,
    calibrate,
    calibration_path,
    features,
    fit_logistic,
    llm_rows,
)
from service.evaluation import metrics
from service.evaluation.conversion import (
    ConversionTableError,
    load_conversion_table,
    replaced_since,
)
from service.evaluation.datasets import DatasetError, load_codiesp, load_jsonl
from service.evaluation.metrics import Prediction

REPO = Path(__file__).resolve().parent.parent


def pred(gold: tuple[str, ...], codes: list[tuple[str, float]],
         candidates: list[list[str]] | None = None) -> Prediction:
    return Prediction("x", gold, codes, candidates or [], Counter({"needs_query": 1}))


def test_micro_macro_and_category_scores() -> None:
    preds = [pred(("E11.22", "N18.31", "I10"), [("E11.22", 0.9), ("N18.30", 0.8)]),
             pred(("J18.9",), [("J18.9", 0.7), ("R05.9", 0.6)])]
    code = metrics.prf(preds, "code")
    assert code["micro"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "tp": 2,
                             "predicted": 4, "gold": 4}
    # labels: E11.22 (1/1), N18.31 (r 0), I10 (r 0), N18.30 (p 0), J18.9 (1/1), R05.9 (p 0)
    assert code["macro"]["labels"] == 6
    assert code["macro"]["recall"] == pytest.approx(2 / 6, abs=1e-4)
    category = metrics.prf(preds, "category")
    assert category["micro"]["tp"] == 3  # E11, N18, J18
    assert category["micro"]["gold"] == 4 and category["micro"]["predicted"] == 4


def test_gold_without_seventh_character_matches_on_its_characters() -> None:
    metrics.EXPANDED.update({"S72.001", "R51"})
    assert metrics.matches("S72.001A", "S72.001")
    assert metrics.matches("R51.9", "R51")
    assert not metrics.matches("S72.002A", "S72.001")
    assert not metrics.matches("E11.65", "E11.6")


CMS_TABLE = (
    '"This FY 2025 (October 1, 2024 Update) Conversion Table includes the new codes",,\n'
    "Current code assignment,Effective,Previous Code(s) Assignment\n"
    "C56.3,2021,C56.1 and C56.2\n"
    "E11.11,2017,E11.69 and R40.20\n"
    "F32.A,2021,F32.9\n")


def conversion_zip(tmp_path: Path) -> Path:
    import zipfile
    path = tmp_path / "2025-conversion-table.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ICD-10-CM-Conversion-Table-FY25.csv", CMS_TABLE)
    return path


def test_conversion_table_reads_codes_created_since_the_gold_year(tmp_path: Path) -> None:
    rows = load_conversion_table(conversion_zip(tmp_path))
    assert ("F32.A", 2021, ["F32.9"]) in rows and len(rows) == 3
    # FY2018 gold: E11.11 took effect October 2017 (FY2018), so E11.69 kept its meaning.
    replaced = replaced_since(rows, 2018)
    assert replaced == {"F32.9": {"F32.A"}, "C56.1": {"C56.3"}, "C56.2": {"C56.3"}}
    assert replaced_since(rows, 2022) == {}
    metrics.REPLACED.update(replaced)
    try:
        assert metrics.matches("F32.A", "F32.9") and metrics.matches("F32.9", "F32.9")
        assert not metrics.matches("F32.A", "F32.8")
    finally:
        metrics.REPLACED.clear()
    bad = tmp_path / "bad.csv"
    bad.write_text("nothing,here\n", encoding="utf-8")
    with pytest.raises(ConversionTableError, match="no conversion rows"):
        load_conversion_table(bad)


def test_recall_at_k_and_calibration() -> None:
    p = pred(("E11.22", "I10"), [("E11.22", 0.95), ("I12.9", 0.85)],
             [["E11.9", "E11.22"], ["I12.9", "I10"]])
    rec = metrics.recall_at_k([p], ks=(1, 2))
    assert rec["code"] == {"@1": 0.0, "@2": 1.0}
    cal = metrics.calibration([p])
    # bin 0.9-1.0: one correct at 0.95; bin 0.8-0.9: one wrong at 0.85
    assert cal["ece"] == pytest.approx((abs(1 - 0.95) + abs(0 - 0.85)) / 2, abs=1e-4)
    assert [row["n"] for row in cal["table"]] == [1, 1]
    assert metrics.flag_counts([p, p]) == {"needs_query": 2}


def test_codes_are_counted_by_what_decided_them() -> None:
    p = pred(("E11.22", "I10"), [("E11.22", 0.9), ("I12.9", 0.8), ("R52", 0.5)], [])
    p.signals = [{"model_agrees": 1.0, "model_overrides": 0.0},
                 {"model_agrees": 0.0, "model_overrides": 1.0}, {}]
    assert metrics.decided_by([p]) == {
        "model, agreeing with the rules": {"codes": 1, "correct": 1.0},
        "model, overriding the rules": {"codes": 1, "correct": 0.0},
        "rules": {"codes": 1, "correct": 0.0}}


def test_loaders(tmp_path: Path) -> None:
    path = tmp_path / "notes.jsonl"
    path.write_text(json.dumps({"id": "a", "text": "DM2.", "codes": ["e11.9", "E11.9"]})
                    + "\n\n", encoding="utf-8")
    (case,) = load_jsonl(path, "outpatient")
    assert (case.codes, case.setting) == (("E11.9",), "outpatient")
    path.write_text('{"id": "a"}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"notes.jsonl:1: needs a JSON object"):
        load_jsonl(path)
    split = tmp_path / "codiesp" / "dev"
    (split / "text_files_en").mkdir(parents=True)
    (split / "text_files_en" / "S1.txt").write_text("Pneumonia.", encoding="utf-8")
    (split / "devD.tsv").write_text("S1\tj18.9\nS1\tr05\n", encoding="utf-8")
    (case,) = load_codiesp(tmp_path / "codiesp", "dev")
    assert (case.id, case.codes, case.setting) == ("S1", ("J18.9", "R05"), "inpatient")
    with pytest.raises(DatasetError, match="not a CodiEsp split"):
        load_codiesp(tmp_path / "codiesp", "train")


def test_medcode_eval_end_to_end(tmp_path: Path, full_index_dir: Path) -> None:
    cases = [
        {"id": "1", "text": "Assessment: DM2 and CKD stage 3a.", "codes": ["E11.22", "N18.31"],
         "setting": "outpatient"},
        {"id": "2", "text": "Cough and fever. r/o pneumonia.", "codes": ["R05.9", "R50.9"],
         "setting": "outpatient"},
        {"id": "3", "text": "L knee pain.", "codes": ["M25.562"]},
        # Gold given under FY2018 codes: "depression" was F32.9 then, F32.A since FY2022.
        {"id": "4", "text": "Assessment: depression.", "codes": ["F32.9"]},
        # CodiEsp writes injuries without their 7th character, keeping the placeholder.
        {"id": "5", "text": "Contusion of the left knee.", "codes": ["S80.02X"]},
        # Z68.36 is made from the measurement, not searched for a fact: reached all the same.
        {"id": "6", "text": "Obesity with a BMI of 36.", "codes": ["E66.9", "Z68.36"]},
    ]
    data = tmp_path / "gold.jsonl"
    data.write_text("".join(json.dumps(c) + "\n" for c in cases), encoding="utf-8")
    env = dict(os.environ, MEDCODE_INDEX_DIR=str(full_index_dir))
    command = [sys.executable, "-m", "medcode", "eval", "--jsonl", str(data),
               "--out", str(tmp_path / "report")]
    half = subprocess.run([*command, "--gold-year", "2018"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert half.returncode != 0 and "go together" in half.stdout + half.stderr
    done = subprocess.run([*command, "--gold-year", "2018", "--conversion-table",
                           str(conversion_zip(tmp_path))], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["cases"] == 6 and report["chooser"] == "rules"
    assert report["gold_not_billable_this_year"] == ["S80.02X"]
    assert report["gold_replaced_since"] == {"F32.9": ["F32.A"]}
    assert report["code"]["micro"]["f1"] == 1.0
    assert report["retrieval_recall"]["code"]["@20"] == 1.0
    assert (tmp_path / "report" / "calibration.png").read_bytes()[:4] == b"\x89PNG"
    assert "| full code |" in (tmp_path / "report" / "report.md").read_text()


def test_logistic_calibration_recovers_the_rates_it_was_fit_on(tmp_path: Path) -> None:
    # Signals with known accuracies: index paths right 90% of the time, vector matches 30%.
    rows = [{"score": 1.0, "index_path": 1.0}] * 100 + [{"score": 1.0, "index_path": 0.0}] * 100
    labels = [i % 10 != 0 for i in range(100)] + [i % 10 < 3 for i in range(100)]
    weights, bias = fit_logistic(rows, labels, l2=0.01)
    path = tmp_path / "fit.json"
    path.write_text(json.dumps({"bias": bias, "weights": weights}), encoding="utf-8")
    assert calibrate({"score": 1.0, "index_path": 1.0}, path) == pytest.approx(0.9, abs=0.01)
    assert calibrate({"score": 1.0, "index_path": 0.0}, path) == pytest.approx(0.3, abs=0.01)
    # No fit installed: the raw score.
    assert calibrate({"score": 0.77}, tmp_path / "absent.json") == 0.77


def test_llm_calibration_adds_the_models_agreement_to_the_rules_fit(tmp_path: Path) -> None:
    def signals(model_pick: str) -> dict[str, float]:
        return features("R52", "Pain, unspecified", 1.0, "index", ["symptom"], ["curated"],
                        [None], [], False, model_pick)
    # A model that agrees with the rules is right 80% of the time, one that overrides 10%.
    agrees, overrides = signals("agrees"), signals("overrides")
    rows = llm_rows([agrees] * 100 + [overrides] * 100)
    labels = [i % 10 < 8 for i in range(100)] + [i % 10 < 1 for i in range(100)]
    weights, bias = fit_logistic(rows, labels, l2=0.01)
    path = tmp_path / "llm_fit.json"
    path.write_text(json.dumps({"bias": bias, "weights": weights, "model": "qwen-test"}),
                    encoding="utf-8")
    assert calibrate(agrees, path) == pytest.approx(0.8, abs=0.02)
    assert calibrate(overrides, path) == pytest.approx(0.1, abs=0.02)
    # Used for the model it was fit on only; the rules chooser keeps its own fit.
    assert calibration_path("llm", "qwen-test", path) == path
    assert calibration_path("llm", "another-model", path) == PATH
    assert calibration_path("rules", None, path) == PATH
    assert calibrate(signals(""), PATH) == calibrate(agrees, PATH)  # the rules fit ignores it
