"""Response models shared by the REST API and the CLI's JSON output."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Problem(BaseModel):
    detail: str


class CodeRef(BaseModel):
    code: str
    title: str
    kind: str
    billable: bool


class InstructionalNote(BaseModel):
    kind: str = Field(description="includes, inclusion_term, excludes1, excludes2, code_first, "
                      "use_additional_code, code_also, notes, seventh_char_note")
    text: str
    from_code: str = Field(description="The entry that carries the note (the code or an ancestor)")
    refs: list[str] = Field(default_factory=list, description="Codes the note mentions")


class SeventhCharacter(BaseModel):
    char: str
    meaning: str
    code: str = Field(description="The complete code with this 7th character")
    billable: bool


class SeventhCharacters(BaseModel):
    defined_at: str
    options: list[SeventhCharacter]


class IndexPath(BaseModel):
    source: str = Field(description="index | eindex | neoplasm | drug")
    path: str
    printed_code: str = Field(description="As printed in the index (may end in '-')")
    column: str | None = None
    manifestation: str | None = None


class CodeInfo(BaseModel):
    year: str
    code: str
    title: str
    kind: str
    billable: bool
    short_title: str | None = None
    chapter: str
    block: str | None
    hierarchy: list[CodeRef] = Field(description="Chapter, block and ancestors, top down")
    children: list[CodeRef]
    notes: list[InstructionalNote] = Field(description="The code's own notes, then its ancestors'")
    seventh_characters: SeventhCharacters | None = None
    index_paths: list[IndexPath]


class MatchOut(BaseModel):
    text: str
    source: str
    score: float


class LookupHitOut(BaseModel):
    code: str
    title: str
    billable: bool
    score: float
    matched: MatchOut = Field(description="The index path, title or passage that matched best")
    lexical: float
    semantic: float


class LookupResponse(BaseModel):
    year: str
    query: str
    hits: list[LookupHitOut]


class IndexYear(BaseModel):
    year: str
    built_at: str | None = None
    schema_version: int | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    embedding: dict[str, object] = Field(default_factory=dict)
    sources: dict[str, dict[str, str]] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)


class IndexOverview(BaseModel):
    default_year: str
    years: list[IndexYear]
