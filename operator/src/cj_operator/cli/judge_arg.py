"""Parse `cjctl submit --judge` into the CJBatch's `spec.judge`."""

from __future__ import annotations

from cj_operator.spec import Judge
from common_core import LLMProviderType

JUDGE_FORMS = "offline, simulated, mock, anthropic[:MODEL], openai[:MODEL], openai_compatible:MODEL"


def parse_judge(text: str) -> Judge:
    """`PROVIDER` or `PROVIDER:MODEL` -> Judge; raises ValueError listing the accepted forms.

    Without a model the provider side's default model for that provider is used;
    `openai_compatible` needs one (the server behind the base URL decides what exists).
    """
    provider_text, _, model = text.partition(":")
    try:
        provider = LLMProviderType(provider_text.strip().lower())
    except ValueError:
        raise ValueError(f"unknown judge {text!r}; use one of: {JUDGE_FORMS}") from None
    model = model.strip()
    if provider is LLMProviderType.OPENAI_COMPATIBLE and not model:
        raise ValueError("--judge openai_compatible needs a model: openai_compatible:MODEL")
    return Judge(provider=provider, model=model or None)
