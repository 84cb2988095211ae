"""Step 1 on realistic notes: spans, sections, assertions, modifiers, abbreviations.

The notes live in tests/notes/. Every fact is checked against the note text
(offsets round-trip) and the must-show phrases of the issue are asserted one by one,
with the curated lexicon alone and with the FY2025 index vocabulary added.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from service.extraction.models import Extraction, Fact
from service.extraction.note_input import make_note
from service.extraction.pipeline import Extractor

NOTES = Path(__file__).parent / "notes"
NOTE_NAMES = ["outpatient_visit", "discharge_summary", "ed_note", "shorthand_note"]


@pytest.fixture(scope="module", params=["curated", "index"])
def extractor(request: pytest.FixtureRequest) -> Extractor:
    """Every test runs on the curated lexicon, and again with the FY2025 index vocabulary."""
    if request.param == "curated":
        return Extractor()
    index_dir = request.getfixturevalue("full_index_dir")
    return Extractor(vocabulary=index_dir / "2025" / "codebook.sqlite")


@pytest.fixture(scope="module")
def results(extractor: Extractor) -> dict[str, tuple[str, Extraction]]:
    out = {}
    for name in NOTE_NAMES:
        text = (NOTES / f"{name}.txt").read_text(encoding="utf-8")
        out[name] = (text, extractor.extract(make_note(text)))
    return out


def fact(result: Extraction, text: str, nth: int = 0) -> Fact:
    found = [f for f in result.facts if f.text.lower() == text.lower()]
    assert len(found) > nth, f"no fact {text!r} (#{nth}); have {[f.text for f in result.facts]}"
    return found[nth]


def modifiers(f: Fact) -> dict[str, str]:
    return {m.axis: m.value for m in f.modifiers}


@pytest.mark.parametrize("name", NOTE_NAMES)
def test_offsets_round_trip_for_every_span(name: str, results) -> None:  # type: ignore[no-untyped-def]
    text, result = results[name]
    assert result.facts
    for f in result.facts:
        assert text[f.start:f.end] == f.text
        for cue in f.assertion_cues:
            assert text[cue.start:cue.end] == cue.text
        for m in f.modifiers:
            assert text[m.start:m.end] == m.text
        for k in f.abbreviations:
            a = result.abbreviations[k]
            assert text[a.start:a.end] == a.text
    for a in result.abbreviations:
        assert text[a.start:a.end] == a.text
    for s in result.sections:
        assert text[s.title.start:s.title.end] == s.title.text
    for r in result.relations:
        assert text[r.cue.start:r.cue.end] == r.cue.text


def test_outpatient_visit(results) -> None:  # type: ignore[no-untyped-def]
    text, r = results["outpatient_visit"]
    assert [s.name for s in r.sections] == [
        "chief_complaint", "history_of_present_illness", "past_medical_history",
        "family_history", "review_of_systems", "physical_exam", "assessment_and_plan"]

    knee = fact(r, "knee pain")
    assert knee.section == "chief_complaint" and knee.assertion == "present"
    assert modifiers(knee)["laterality"] == "left"
    lateral = next(m for m in knee.modifiers if m.axis == "laterality")
    assert (lateral.text, text[lateral.start - 1:lateral.end + 1]) == ("L", " L ")
    assert any(r.abbreviations[k].text == "L" and r.abbreviations[k].expansion == "left"
               for k in knee.abbreviations)

    dm = fact(r, "DM2")
    assert dm.normalized == "type 2 diabetes mellitus"
    assert dm.section == "history_of_present_illness" and dm.assertion == "present"
    assert modifiers(dm)["diabetes_type"] == "type 2"
    neuropathy = r.facts[r.facts.index(dm) + 1]
    assert neuropathy.text == "neuropathy"
    assert any(rel.kind == "with" and (rel.source, rel.target) == (dm.id, neuropathy.id)
               and rel.cue.text == "w/" for rel in r.relations)

    ckd = fact(r, "CKD")
    assert ckd.normalized == "chronic kidney disease"
    assert modifiers(ckd)["ckd_stage"] == "3a"

    chest = fact(r, "chest pain")
    assert chest.assertion == "negated"
    assert [(c.category, c.text) for c in chest.assertion_cues] == [
        ("NEGATED_EXISTENCE", "Denies")]
    assert fact(r, "fever").assertion == "negated"

    mi = fact(r, "MI")
    assert mi.normalized == "myocardial infarction" and mi.assertion == "historical"
    (mi_abbr,) = [r.abbreviations[k] for k in mi.abbreviations]
    assert mi_abbr.expansion == "myocardial infarction" and not mi_abbr.ambiguous

    cancer = fact(r, "breast ca")
    assert cancer.section == "family_history" and cancer.assertion == "family"
    assert "malignant neoplasm" in (cancer.normalized or "")
    copd = fact(r, "COPD")
    assert copd.assertion == "family"

    assert fact(r, "shortness of breath").assertion == "negated"
    assert fact(r, "cough").assertion == "negated"
    assert fact(r, "DM2", 1).section == "assessment_and_plan"
    osteoarthritis = next(f for f in r.facts if f.text.lower().endswith("osteoarthritis"))
    assert modifiers(osteoarthritis)["laterality"] == "left"


def test_discharge_summary(results) -> None:  # type: ignore[no-untyped-def]
    _, r = results["discharge_summary"]
    names = [s.name for s in r.sections]
    assert names[:2] == ["diagnoses", "diagnoses"]
    assert {"hospital_course", "procedures", "plan"} <= set(names)

    chf = fact(r, "systolic CHF", 1)
    assert chf.section == "diagnoses" and chf.assertion == "present"
    assert modifiers(chf)["acuity"] == "acute on chronic"
    assert modifiers(chf)["heart_failure_type"] == "systolic"
    hfref = fact(r, "HFrEF")
    assert modifiers(hfref)["heart_failure_type"] == "systolic"

    ckd = fact(r, "chronic kidney disease")
    assert modifiers(ckd)["ckd_stage"] == "4"
    htn = fact(r, "hypertension")
    assert any(rel.kind == "due_to" and (rel.source, rel.target) == (ckd.id, htn.id)
               for rel in r.relations)
    assert modifiers(fact(r, "CKD"))["ckd_stage"] == "4"
    # "72 year old woman with HFrEF, CKD stage 4 and DM2": "old" is not a history cue.
    assert [fact(r, t, n).assertion for t, n in (("HFrEF", 1), ("CKD", 0), ("DM2", 0))] == [
        "present"] * 3
    # "Chest x-ray showed a right lower lobe infiltrate": the right lobe is not the x-ray's.
    assert "laterality" not in modifiers(fact(r, "Chest x-ray"))

    pneumonia = fact(r, "community acquired pneumonia")
    assert pneumonia.assertion == "possible"
    assert [c.text for c in pneumonia.assertion_cues] == ["Probable"]
    assert fact(r, "pneumonia").assertion == "possible"  # "consistent with pneumonia"

    dm = fact(r, "type 2 diabetes mellitus")
    assert modifiers(dm) == {"diabetes_type": "type 2"}
    hyperglycemia = fact(r, "hyperglycemia")
    assert any(rel.kind == "with" and (rel.source, rel.target) == (dm.id, hyperglycemia.id)
               for rel in r.relations)
    assert modifiers(fact(r, "DM2"))["diabetes_type"] == "type 2"
    assert modifiers(fact(r, "edema"))["laterality"] == "bilateral"
    assert fact(r, "pulmonary embolism").assertion == "negated"
    assert fact(r, "breast cancer").assertion == "historical"
    assert fact(r, "echocardiogram").kind == "procedure"
    assert fact(r, "chest pain").assertion == "hypothetical"
    assert fact(r, "shortness of breath").assertion == "hypothetical"


def test_ed_note(results) -> None:  # type: ignore[no-untyped-def]
    text, r = results["ed_note"]
    assert [s.name for s in r.sections] == [
        "chief_complaint", "history_of_present_illness", "physical_exam", "results",
        "assessment", "plan"]
    # "PE:" is the exam header; "r/o PE" is a pulmonary embolism to rule out.
    exam = next(a for a in r.abbreviations if a.text == "PE" and text[a.end] == ":")
    assert exam.expansion == "physical examination"
    pes = [f for f in r.facts if f.text == "PE"]
    assert len(pes) == 2
    assert all(f.normalized == "pulmonary embolism" and f.assertion == "possible" for f in pes)
    assert all(c.text == "r/o" for f in pes for c in f.assertion_cues)

    wrist = fact(r, "wrist pain")
    assert wrist.section == "chief_complaint" and modifiers(wrist)["laterality"] == "right"
    fracture = fact(r, "fracture", 1)
    assert fracture.section == "assessment"
    assert modifiers(fracture) | {"trimester": "third"} == {
        "displacement": "displaced", "laterality": "right", "fracture_type": "closed",
        "encounter": "initial", "trimester": "third"}
    trimester = next(m for m in fracture.modifiers if m.axis == "trimester")
    assert (trimester.text, trimester.source) == ("third trimester", "note")
    assert fact(r, "head injury").assertion == "negated"
    assert fact(r, "abdominal pain").assertion == "negated"
    assert r.pregnancy is not None
    assert (r.pregnancy.status, r.pregnancy.weeks, r.pregnancy.trimester) == (
        "pregnant", 30, "third")


def test_shorthand_note(results) -> None:  # type: ignore[no-untyped-def]
    _, r = results["shorthand_note"]
    expansions = {a.text: a.expansion for a in r.abbreviations}
    assert expansions["Pt"] == "patient"
    assert expansions["w/"] == "with"
    assert expansions["c/c"] == "chief complaint"
    assert expansions["h/o"] == "history of"
    assert expansions["s/p"] == "status post"
    assert expansions["b/l"] == "bilateral"
    assert expansions["HTN"] == "hypertension"
    assert fact(r, "SOB").normalized == "shortness of breath"
    assert fact(r, "MI").assertion == "historical"
    chf = fact(r, "systolic CHF")
    assert modifiers(chf)["acuity"] == "acute on chronic"
    assert modifiers(chf)["heart_failure_type"] == "systolic"
    assert modifiers(fact(r, "CKD"))["ckd_stage"] == "3a"
    cp = fact(r, "CP")
    assert (cp.normalized, cp.assertion) == ("chest pain", "negated")
    pe = fact(r, "PE")
    assert (pe.normalized, pe.assertion) == ("pulmonary embolism", "possible")
    assert fact(r, "PNA").assertion == "possible"  # "r/o PE vs PNA"
    assert fact(r, "breast ca").assertion == "family"
    hfref = fact(r, "HFrEF")
    assert modifiers(hfref)["heart_failure_type"] == "systolic"
    assert modifiers(hfref)["acuity"] == "acute on chronic"  # "AoC"
    assert modifiers(hfref)["exacerbation"] == "with exacerbation"
    assert modifiers(fact(r, "edema"))["laterality"] == "bilateral"
    dm = fact(r, "DM2", 1)
    neuropathy = r.facts[r.facts.index(dm) + 1]
    assert any(rel.kind == "with" and (rel.source, rel.target) == (dm.id, neuropathy.id)
               for rel in r.relations)


def test_ambiguous_abbreviation_is_flagged_not_guessed(extractor: Extractor) -> None:
    r = extractor.extract(make_note("Assessment: MS."))
    (f,) = r.facts
    assert f.normalized is None and f.flags == ["ambiguous_abbreviation"]
    (use,) = [r.abbreviations[k] for k in f.abbreviations]
    assert use.ambiguous and use.expansion is None
    assert {"multiple sclerosis", "mitral stenosis"} <= {s.sense for s in use.senses}

    r = extractor.extract(make_note("Relapsing remitting MS, on Ocrevus."))
    assert fact(r, "MS").normalized == "multiple sclerosis"
    r = extractor.extract(make_note("Labs: Na 138, K 4.1, Ca 9.8."))
    assert not r.facts
    (calcium,) = [a for a in r.abbreviations if a.text == "Ca"]
    assert calcium.expansion == "calcium"


@pytest.mark.parametrize(("sentence", "expected"), [
    ("Denies chest pain.", "negated"),
    ("No evidence of pneumonia.", "negated"),
    ("r/o PE.", "possible"),
    ("h/o MI.", "historical"),
    ("Mother with breast ca.", "family"),
    ("Pneumonia versus bronchitis.", "possible"),
    ("Suspected pneumonia.", "possible"),
    ("Chest pain, now resolved.", "historical"),
    ("Return if chest pain.", "hypothetical"),
    ("Chest pain.", "present"),
    ("Without known allergies, with a history of hypertension.", "historical"),
    ("Denies cough, admitted with pneumonia.", "present"),
    ("72-year-old man with COPD.", "present"),
    ("Prior stroke.", "historical"),
])
def test_assertion_of_single_phrases(extractor: Extractor, sentence: str, expected: str) -> None:
    r = extractor.extract(make_note(sentence))
    assert r.facts[-1].assertion == expected, r.facts[-1]


@pytest.mark.parametrize(("sentence", "axis", "value"), [
    ("CKD 3a.", "ckd_stage", "3a"),
    ("CKD stage IV.", "ckd_stage", "4"),
    ("ESRD on hemodialysis.", "ckd_stage", "end stage"),
    ("L knee pain.", "laterality", "left"),
    ("Acute on chronic systolic CHF.", "acuity", "acute on chronic"),
    ("Acute on chronic systolic CHF.", "heart_failure_type", "systolic"),
    ("HFrEF.", "heart_failure_type", "systolic"),
    ("HFpEF.", "heart_failure_type", "diastolic"),
    ("DM2 w/ neuropathy.", "diabetes_type", "type 2"),
    ("Poorly controlled DM2.", "diabetes_control", "uncontrolled"),
    ("Stage 3 pressure ulcer of sacrum.", "ulcer_stage", "3"),
    ("Moderate persistent asthma with acute exacerbation.", "severity", "moderate persistent"),
    ("Moderate persistent asthma with acute exacerbation.", "exacerbation", "with exacerbation"),
    ("Fracture of left femur, subsequent encounter for routine healing.", "encounter",
     "subsequent"),
    ("Fracture of left femur, subsequent encounter for routine healing.", "healing",
     "routine healing"),
])
def test_specificity_modifiers(extractor: Extractor, sentence: str, axis: str,
                               value: str) -> None:
    r = extractor.extract(make_note(sentence))
    assert modifiers(r.facts[0]).get(axis) == value, r.facts[0].modifiers


@pytest.mark.parametrize(("sentence", "trimester", "weeks"), [
    ("G1P0 at 10 weeks gestation with hyperemesis gravidarum.", "first", 10),
    ("Pregnant, 14w0d, with UTI.", "second", 14),
    ("IUP at 27 wks. Gestational diabetes.", "second", 27),
    ("Pregnant patient in her third trimester with preeclampsia.", "third", None),
])
def test_pregnancy_trimester(extractor: Extractor, sentence: str, trimester: str,
                             weeks: int | None) -> None:
    r = extractor.extract(make_note(sentence))
    assert r.pregnancy is not None
    assert (r.pregnancy.trimester, r.pregnancy.weeks) == (trimester, weeks)
    assert any(modifiers(f).get("trimester") == trimester for f in r.facts)


def test_cough_for_two_weeks_is_not_a_pregnancy(extractor: Extractor) -> None:
    assert extractor.extract(make_note("Cough x 2 weeks.")).pregnancy is None


@pytest.mark.parametrize("sentence", [
    "Hypointense mass on T1-weighted sequences. Papillary carcinoma, stage T1.",
    "Walking with full support at 6 weeks after the fracture.",
    "Male patient, born at 40 weeks of gestation, with hydronephrosis.",
    "Preterm newborn of 32 weeks gestational age with gastroenteritis.",
])
def test_imaging_staging_follow_up_and_birth_are_not_a_pregnancy(
        extractor: Extractor, sentence: str) -> None:
    r = extractor.extract(make_note(sentence))
    assert r.pregnancy is None or r.pregnancy.trimester is None, r.pregnancy
    assert not any("trimester" in modifiers(f) for f in r.facts)


def test_wrapped_line_keeps_negation(extractor: Extractor) -> None:
    r = extractor.extract(make_note("Patient denies fever, chills or\nchest pain at rest."))
    assert fact(r, "chest pain").assertion == "negated"
    r = extractor.extract(make_note("h/o MI. r/o PE."))
    assert (fact(r, "MI").assertion, fact(r, "PE").assertion) == ("historical", "possible")


def test_index_vocabulary_finds_terms_the_lexicon_lacks(extractor: Extractor) -> None:
    r = extractor.extract(make_note("Ultrasound showed cholecystolithiasis; also cervicalgia."))
    found = {f.text: f.vocabulary for f in r.facts}
    if "index terms" in extractor.version:
        assert found == {"Ultrasound": "curated", "cholecystolithiasis": "index",
                         "cervicalgia": "index"}
    else:
        assert found == {"Ultrasound": "curated"}


def test_index_vocabulary_reads_morphology_and_adjective_sub_terms(extractor: Extractor) -> None:
    text = ("Biopsy showed a pleomorphic sarcoma. He had intracranial hypertension and a "
            "lobulated cystic lesion. Smoker of 20 cigarettes a day.")
    r = extractor.extract(make_note(text))
    found = {f.text: f.normalized for f in r.facts}
    if "index terms" in extractor.version:
        # "Sarcoma — see Neoplasm, connective tissue, malignant"; "Hypertension >
        # intracranial"; "Lesion > cystic — see Cyst" normalizes to where it sends.
        assert found["sarcoma"] == "sarcoma"
        assert found["intracranial hypertension"] == "intracranial hypertension"
        assert found["cystic lesion"] == "cyst"
    assert modifiers(fact(r, "Smoker"))["tobacco_product"] == "cigarettes"


def test_agents_medications_and_measurements(extractor: Extractor) -> None:
    text = ("UTI; urine culture grew E. coli, no growth of enterococcus. Type 2 diabetes treated "
            "with metformin; non-insulin dependent. Obesity, BMI of 41,3. Seen at 30 weeks of "
            "gestation. History of hysterectomy.")
    r = extractor.extract(make_note(text))
    kinds = {f.text: (f.kind, f.normalized, f.assertion) for f in r.facts}
    assert kinds["E. coli"] == ("organism", "escherichia coli", "present")
    assert kinds["enterococcus"] == ("organism", "enterococcus", "negated")
    assert kinds["metformin"] == ("medication", "oral hypoglycemic", "present")
    # "non-insulin dependent" is matched whole, so it is never read as insulin.
    assert kinds["non-insulin dependent"][:2] == ("medication", "non-insulin")
    assert kinds["hysterectomy"] == ("procedure", "hysterectomy", "historical")
    assert r.bmi is not None and r.bmi.value == 41.3 and r.bmi.evidence.text == "BMI of 41,3"
    assert r.pregnancy is not None and r.pregnancy.weeks == 30
    assert extractor.extract(make_note("BMI in the 90th percentile.")).bmi is None
    r = extractor.extract(make_note("In week 21 of gestation she developed pyelonephritis."))
    assert r.pregnancy is not None and r.pregnancy.weeks == 21
    assert r.pregnancy.trimester == "second"


def test_findings_written_as_words_of_the_exam(extractor: Extractor) -> None:
    text = ("Tooth decay and advanced caries. The abdomen was distended. Mild elevation of "
            "transaminases. He was confused. Rectal tenesmus. Treated for lues. She smoked 20 "
            "cigarettes per day.")
    found = {f.text: f.normalized for f in extractor.extract(make_note(text)).facts}
    assert found["Tooth decay"] == found["caries"] == "dental caries"
    assert found["abdomen was distended"] == "abdominal distension"
    assert found["elevation of transaminases"] == "elevated liver transaminase levels"
    assert found["confused"] == "confusion" and found["lues"] == "syphilis"
    assert found["Rectal tenesmus"] == "tenesmus"
    assert found["cigarettes per day"] == "nicotine dependence cigarettes"


def said(extractor: Extractor, text: str) -> dict[str, str]:
    """Each fact's text and assertion."""
    return {f.text: f.assertion for f in extractor.extract(make_note(text)).facts}


def test_relatives_as_reporters_are_no_family_history(extractor: Extractor) -> None:
    assert said(extractor, "The family reported vomiting.") == {"vomiting": "present"}
    assert said(extractor, "His mother noticed a fever.") == {"fever": "present"}
    assert said(extractor, "Seen by his family doctor for nausea.") == {"nausea": "present"}
    # In a pediatric note the child is the patient; "Child's B" is a liver score.
    assert said(extractor, "The child had a fever and cough.") == {"fever": "present",
                                                                   "cough": "present"}
    assert said(extractor, "Cirrhosis, Child's B8.") == {"Cirrhosis": "present"}
    assert said(extractor, "His mother had breast cancer.") == {"breast cancer": "family"}
    assert said(extractor, "In his family there were cases of glaucoma.") == {"glaucoma": "family"}
    assert said(extractor, "Family history: diabetes.") == {"diabetes": "family"}


def test_a_history_of_some_months_is_present(extractor: Extractor) -> None:
    assert said(extractor, "A 2-month history of cough.") == {"cough": "present"}
    assert said(extractor, "He had a 3 week history of fever.") == {"fever": "present"}
    assert said(extractor, "Long history of smoking.") == {"smoking": "present"}
    assert said(extractor, "History of breast cancer.") == {"breast cancer": "historical"}


def test_ruled_out_and_excluded_are_negated(extractor: Extractor) -> None:
    assert said(extractor, "Echocardiography was performed, ruling out endocarditis.") == {
        "endocarditis": "negated"}
    assert set(said(extractor, "Tuberculosis and pneumonia were excluded.").values()) == {"negated"}
    # A work-up still open is uncertain, not negated.
    workup = said(extractor, "To rule out pneumonia, a chest x-ray was done.")
    assert workup["pneumonia"] == "possible"


def test_neither_nor_negates(extractor: Extractor) -> None:
    r = extractor.extract(make_note("Neither fever nor cough. No rash nor dyspnea. Nausea."))
    assertions = {f.text: f.assertion for f in r.facts}
    assert assertions == {"fever": "negated", "cough": "negated", "rash": "negated",
                          "dyspnea": "negated", "Nausea": "present"}
    # "non-" negates the next word only; "to prevent / to avoid" is a plan, not a finding.
    r = extractor.extract(make_note("A non-bleeding lesion. Non-Hodgkin lymphoma. Heparin to "
                                    "avoid a DVT; he developed pneumonia."))
    assertions = {f.text: f.assertion for f in r.facts}
    assert assertions["bleeding"] == "negated" and assertions["lesion"] == "present"
    assert assertions["Non-Hodgkin lymphoma"] == "present"
    assert assertions["DVT"] == "hypothetical" and assertions["pneumonia"] == "present"


def test_external_causes(extractor: Extractor) -> None:
    r = extractor.extract(make_note("She fell down the stairs. Injured in a car accident last "
                                    "year. History of falls. Denies assault."))
    kinds = {f.text: (f.kind, f.normalized, f.assertion) for f in r.facts}
    assert kinds["fell"] == ("external_cause", "fall", "present")
    assert kinds["car accident"][:2] == ("external_cause", "motor vehicle accident")
    assert kinds["falls"] == ("external_cause", "fall", "historical")
    assert kinds["assault"] == ("external_cause", "assault", "negated")


def test_offsets_are_code_points_in_the_text_as_received(extractor: Extractor) -> None:
    text = "Résumé:\r\nPt w/ DM2 — HbA1c ≥ 9 %.\r\nDenies chest pain 🙂. L knee pain.\r\n"
    r = extractor.extract(make_note(text))
    assert {f.text for f in r.facts} >= {"DM2", "chest pain", "knee pain"}
    for f in r.facts:
        assert text[f.start:f.end] == f.text
        for m in f.modifiers:
            assert text[m.start:m.end] == m.text
    assert fact(r, "chest pain").assertion == "negated"
    assert modifiers(fact(r, "knee pain"))["laterality"] == "left"


def test_every_codiesp_dev_note_round_trips(extractor: Extractor) -> None:
    """Real clinical text (250 English case reports): no crash, every span exact."""
    from tests.conftest import SHARED

    folder = SHARED / "eval/codiesp/dev/text_files_en"
    if not folder.is_dir():
        pytest.skip(f"{folder} absent: the CodiEsp dev set (../shared) is not on this machine")
    notes = sorted(folder.glob("*.txt"))
    assert len(notes) == 250
    total = 0
    for path in notes:
        text = path.read_text(encoding="utf-8")
        r = extractor.extract(make_note(text))
        total += len(r.facts)
        for f in r.facts:
            assert text[f.start:f.end] == f.text, path.name
            for item in [*f.modifiers, *f.assertion_cues]:
                assert text[item.start:item.end] == item.text, path.name
        for a in r.abbreviations:
            assert text[a.start:a.end] == a.text, path.name
    assert total > 1500  # ~7.6 facts per case report with the curated lexicon alone
