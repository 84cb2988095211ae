"""Shared fixtures: where the shared data lives, and skips that say why."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MEDCODE_SHARED", REPO.parent / "shared"))
FY2025 = SHARED / "sources" / "icd10cm" / "2025"
INDEX_DIR = Path(os.environ.get("MEDCODE_INDEX_DIR", REPO / "index_data"))


@pytest.fixture(scope="session")
def fy2025() -> Path:
    if not FY2025.is_dir():
        pytest.skip(f"{FY2025} absent: the FY2025 official sources (../shared) are not on this "
                    "machine")
    return FY2025


@pytest.fixture(scope="session")
def full_index_dir() -> Path:
    """index_data/ holding a complete FY2025 build (scripts/test.sh builds it)."""
    if not (INDEX_DIR / "2025" / "manifest.json").exists():
        pytest.skip(f"{INDEX_DIR / '2025'} not built: run scripts/test.sh (needs ../shared) or "
                    "medcode ingest build --year 2025")
    return INDEX_DIR
