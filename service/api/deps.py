"""Typed FastAPI dependencies: settings, the index registry, a year's index."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request

from medcode.settings import Settings, vocabulary_codebook
from service.extraction.pipeline import Extractor
from service.index_registry import IndexRegistry, UnknownYear, YearIndex, freeze_loaded


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_registry(request: Request) -> IndexRegistry:
    return request.app.state.registry


SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[IndexRegistry, Depends(get_registry)]


def get_year_index(
    registry: RegistryDep,
    settings: SettingsDep,
    year: Annotated[
        str | None, Query(pattern=r"^\d{4}$", description="Code year, e.g. 2025")
    ] = None,
) -> YearIndex:
    try:
        return registry.get(year or settings.default_year)
    except UnknownYear as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc


YearIndexDep = Annotated[YearIndex, Depends(get_year_index)]


def get_extractor(request: Request) -> Extractor:
    # Loaded on first use (about 2 s); the lexicon and rules are then shared by all requests.
    state = request.app.state
    with state.extractor_lock:
        if state.extractor is None:
            state.extractor = Extractor(vocabulary=vocabulary_codebook(state.settings))
            freeze_loaded()
    return state.extractor


ExtractorDep = Annotated[Extractor, Depends(get_extractor)]
