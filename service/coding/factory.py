"""Build the configured chooser (MEDCODE_CHOOSER, MEDCODE_LLM_*): a backend swaps by
configuration, behind the llama-index LLM interface."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from medcode.settings import Settings
from service.coding.choosers import Chooser, RulesChooser
from service.coding.llm_chooser import MAX_CANDIDATES, LLMChooser, answer_schema
from service.coding.local_models import packaged_model


def make_chooser(settings: Settings, name: str | None = None) -> Chooser:
    if (name or settings.chooser) == "rules":
        return RulesChooser()
    if settings.llm_backend == "openai_like":
        from llama_index.llms.openai_like import OpenAILike

        llm = OpenAILike(model=settings.llm_model, api_base=settings.llm_api_base,
                         api_key=settings.llm_api_key, is_chat_model=True, temperature=0.0,
                         max_tokens=160, timeout=settings.llm_timeout, max_retries=1)
        return LLMChooser(llm, settings.llm_model, structured="response_format",
                          scope=settings.llm_scope)
    from llama_cpp import LlamaGrammar
    from llama_index.llms.llama_cpp import LlamaCPP

    path = settings.llm_model_path or packaged_model(settings.llm_model, settings.cache_dir)
    # One grammar for every call: the answer schema with ids C1..C10 (checked again after).
    ids = [f"C{i}" for i in range(1, MAX_CANDIDATES + 1)]
    grammar = LlamaGrammar.from_json_schema(json.dumps(answer_schema(ids)), verbose=False)
    llm = LlamaCPP(model_path=str(path), temperature=0.0, max_new_tokens=160,
                   context_window=4096, messages_to_prompt=chatml, verbose=False,
                   generate_kwargs={"grammar": grammar},
                   model_kwargs={"n_threads": 2, "verbose": False})
    return LLMChooser(llm, path.stem, structured=None, scope=settings.llm_scope)


def chatml(messages: Sequence[Any]) -> str:
    """ChatML, the template of Qwen2.5 and SmolLM2."""
    text = "".join(f"<|im_start|>{m.role.value}\n{m.content}<|im_end|>\n" for m in messages)
    return text + "<|im_start|>assistant\n"
