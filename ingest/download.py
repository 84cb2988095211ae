"""Download a year's official sources from CMS into a cache folder (users only, never tests)."""

from __future__ import annotations

import json
import logging
import urllib.request
from importlib import resources
from pathlib import Path

log = logging.getLogger(__name__)


def official_urls(year: str) -> list[str]:
    data = json.loads(resources.files("ingest").joinpath("data/official_sources.json").read_text())
    return list(data.get(year, []))


def download_year(year: str, target: Path, missing: set[str]) -> list[Path]:
    """Fetch every official file for `year` not already in `target`; return the local paths.

    `missing` is informational (the kinds still needed); files are identified by
    content afterwards, so every listed URL is fetched once and kept.
    """
    urls = official_urls(year)
    if not urls:
        raise RuntimeError(f"no official download URLs recorded for {year}")
    target.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for url in urls:
        dest = target / url.rsplit("/", 1)[-1]
        if not dest.exists():
            log.warning("downloading %s (needed: %s)", url, ", ".join(sorted(missing)))
            tmp = dest.with_suffix(dest.suffix + ".part")
            with urllib.request.urlopen(url, timeout=60) as resp, tmp.open("wb") as out:
                while chunk := resp.read(1 << 20):
                    out.write(chunk)
            tmp.replace(dest)  # atomic: a half download never looks complete
        paths.append(dest)
    return paths
