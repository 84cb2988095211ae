"""A tiny but complete FY source set written by tests: real schemas, a handful of codes.

Used to exercise the whole build (sources → parsers → codebook → Chroma → API)
in seconds, and to damage files on purpose.
"""

from __future__ import annotations

from pathlib import Path

TABULAR = """<?xml version="1.0" encoding="utf-8"?>
<ICD10CM.tabular>
  <version>{year}</version>
  <chapter>
    <name>4</name>
    <desc>Endocrine, nutritional and metabolic diseases (E00-E89)</desc>
    <section id="E08-E13">
      <desc>Diabetes mellitus (E08-E13)</desc>
      <diag>
        <name>E11</name>
        <desc>Type 2 diabetes mellitus</desc>
        <includes><note>diabetes (mellitus) due to insulin secretory defect</note></includes>
        <useAdditionalCode><note>code to identify control using insulin (Z79.4)</note></useAdditionalCode>
        <excludes1><note>type 1 diabetes mellitus (E10.-)</note></excludes1>
        <diag>
          <name>E11.2</name>
          <desc>Type 2 diabetes mellitus with kidney complications</desc>
          <diag>
            <name>E11.22</name>
            <desc>Type 2 diabetes mellitus with diabetic chronic kidney disease</desc>
            <useAdditionalCode><note>code to identify stage of chronic kidney disease (N18.1-N18.6)</note></useAdditionalCode>
          </diag>
        </diag>
        <diag>
          <name>E11.6</name>
          <desc>Type 2 diabetes mellitus with other specified complications</desc>
          <diag>
            <name>E11.65</name>
            <desc>Type 2 diabetes mellitus with hyperglycemia</desc>
          </diag>
        </diag>
        <diag>
          <name>E11.9</name>
          <desc>Type 2 diabetes mellitus without complications</desc>
        </diag>
      </diag>
    </section>
  </chapter>
  <chapter>
    <name>9</name>
    <desc>Diseases of the circulatory system (I00-I99)</desc>
    <section id="I10-I16">
      <desc>Hypertensive diseases (I10-I16)</desc>
      <diag>
        <name>I10</name>
        <desc>Essential (primary) hypertension</desc>
        <inclusionTerm><note>high blood pressure</note><note>hypertension (arterial) (benign) (essential) (malignant) (primary) (systemic)</note></inclusionTerm>
      </diag>
    </section>
  </chapter>
  <chapter>
    <name>19</name>
    <desc>Injury, poisoning and certain other consequences of external causes (S00-T88)</desc>
    <section id="S70-S79">
      <desc>Injuries to the hip and thigh (S70-S79)</desc>
      <diag>
        <name>S72</name>
        <desc>Fracture of femur</desc>
        <sevenChrNote><note>The appropriate 7th character is to be added to each code from category S72</note></sevenChrNote>
        <sevenChrDef>
          <extension char="A">initial encounter for closed fracture</extension>
          <extension char="D">subsequent encounter for closed fracture with routine healing</extension>
          <extension char="S">sequela</extension>
        </sevenChrDef>
        <diag>
          <name>S72.0</name>
          <desc>Fracture of head and neck of femur</desc>
          <diag>
            <name>S72.00</name>
            <desc>Fracture of unspecified part of neck of femur</desc>
            <diag>
              <name>S72.001</name>
              <desc>Fracture of unspecified part of neck of right femur</desc>
            </diag>
            <diag>
              <name>S72.002</name>
              <desc>Fracture of unspecified part of neck of left femur</desc>
            </diag>
          </diag>
        </diag>
      </diag>
    </section>
  </chapter>
</ICD10CM.tabular>
"""

INDEX = """<?xml version="1.0" encoding="utf-8"?>
<ICD10CM.index>
  <version>{year}</version>
  <title>ICD-10-CM INDEX TO DISEASES and INJURIES</title>
  <letter>
    <title>D</title>
    <mainTerm>
      <title>Diabetes, diabetic<nemod>(mellitus) (sugar)</nemod></title>
      <code>E11.9</code>
      <term level="1">
        <title>type 2</title>
        <code>E11.9</code>
        <term level="2">
          <title>with</title>
          <term level="3">
            <title>hyperglycemia</title>
            <code>E11.65</code>
          </term>
          <term level="3">
            <title>chronic kidney disease</title>
            <code>E11.22</code>
          </term>
        </term>
      </term>
    </mainTerm>
    <mainTerm>
      <title>Fracture, traumatic</title>
      <term level="1">
        <title>femur, femoral</title>
        <term level="2">
          <title>neck</title>
          <code>S72.00-</code>
        </term>
      </term>
    </mainTerm>
    <mainTerm>
      <title>Hyperpiesia</title>
      <see>Hypertension</see>
    </mainTerm>
    <mainTerm>
      <title>Hypertension, hypertensive<nemod>(accelerated) (benign)</nemod></title>
      <code>I10</code>
      <term level="1">
        <title>essential</title>
        <code>I10</code>
      </term>
    </mainTerm>
  </letter>
</ICD10CM.index>
"""

ORDER_LINES = [
    ("E11", 0, "Type 2 diabetes mellitus"),
    ("E112", 0, "Type 2 diabetes mellitus with kidney complications"),
    ("E1122", 1, "Type 2 diabetes mellitus with diabetic chronic kidney disease"),
    ("E116", 0, "Type 2 diabetes mellitus with other specified complications"),
    ("E1165", 1, "Type 2 diabetes mellitus with hyperglycemia"),
    ("E119", 1, "Type 2 diabetes mellitus without complications"),
    ("I10", 1, "Essential (primary) hypertension"),
    ("S72", 0, "Fracture of femur"),
    ("S720", 0, "Fracture of head and neck of femur"),
    ("S7200", 0, "Fracture of unspecified part of neck of femur"),
    ("S72001", 0, "Fracture of unspecified part of neck of right femur"),
    ("S72001A", 1, "Fracture of unsp part of neck of right femur, init"),
    ("S72001D", 1, "Fracture of unsp part of neck of right femur, subs"),
    ("S72001S", 1, "Fracture of unsp part of neck of right femur, sequela"),
    ("S72002", 0, "Fracture of unspecified part of neck of left femur"),
    ("S72002A", 1, "Fracture of unsp part of neck of left femur, init"),
    ("S72002D", 1, "Fracture of unsp part of neck of left femur, subs"),
    ("S72002S", 1, "Fracture of unsp part of neck of left femur, sequela"),
]


def order_file_text() -> str:
    lines = []
    for n, (code, billable, title) in enumerate(ORDER_LINES, start=1):
        lines.append(f"{n:05d} {code:<7} {billable} {title[:60]:<60} {title}")
    return "\n".join(lines) + "\n"


def write_mini_sources(folder: Path, year: str = "2025") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tabular.xml").write_text(TABULAR.format(year=year))
    (folder / "index.xml").write_text(INDEX.format(year=year))
    (folder / f"icd10cm_order_{year}.txt").write_text(order_file_text())
    return folder
