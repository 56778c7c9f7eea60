"""Captum's ``RemoteLLMAttribution``, extended to ProxySPEX and SPEX, with concurrent requests.

A model behind an API is asked one prompt at a time (that is what Captum's
``RemoteLLMProvider`` offers); with our methods the masked prompts go out
on a pool of threads (``concurrency``), paced (``requests_per_second``),
retried with exponential backoff and jitter when the request failed for a
reason that may pass (a dropped connection, a timeout, HTTP 429 or 5xx),
and each answer is written to the persistent cache (``cache=``) as it
arrives, so an interrupted run resumes without paying twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from captum.attr import RemoteLLMAttribution as CaptumRemoteLLMAttribution
from captum.attr import TextTokenInput
from captum.attr._core.remote_provider import RemoteLLMProvider
from captum.attr._utils.interpretable_input import InterpretableInput
from torch import Tensor

from ..api import (
    DEFAULT_BACKOFF,
    DEFAULT_CONCURRENCY,
    DEFAULT_RETRIES,
    APIError,
    RateLimiter,
    is_transient,
)
from ..core.checks import check_int
from ..scoring import LLMScorer, Prompt, UnsupportedRequest
from .llm import LLMAttribution

__all__ = ["ProviderScorer", "RemoteLLMAttribution"]


class ProviderScorer(LLMScorer):
    """A Captum ``RemoteLLMProvider`` as an :class:`~proxyspex_captum.scoring.LLMScorer`.

    Each prompt is one ``provider.get_logprobs(prompt, target, tokenizer)``
    call; a next-token candidate is a one-token target, so a prompt costs one
    call per candidate (and a retry of that prompt sends them all again). A
    call that raises is wrapped in an :class:`~proxyspex_captum.api.APIError`
    that says whether retrying may help (the provider's exception is its cause).

    Args:
        provider: Any Captum ``RemoteLLMProvider`` (``VLLMProvider`` included).
        tokenizer: The model's tokenizer (Captum's providers count the target's tokens with it).
        requests_per_second: Pace the calls (all threads together); ``None``: no limit.
    """

    def __init__(
        self,
        provider: RemoteLLMProvider,
        tokenizer: Any,
        *,
        requests_per_second: float | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(provider, RemoteLLMProvider):
            raise TypeError(
                f"provider must be a Captum RemoteLLMProvider, got {type(provider).__name__}."
            )
        self.provider = provider
        self.tokenizer = tokenizer
        self.limiter = RateLimiter(requests_per_second)

    @property
    def model_name(self) -> str:
        name = getattr(self.provider, "model_name", None) or type(self.provider).__qualname__
        return f"{getattr(self.provider, 'api_url', '')}:{name}"

    def _get_logprobs(self, prompt: str, target: str) -> list[float]:
        self.limiter.wait()
        self.meter.count(requests=1)
        try:
            values = self.provider.get_logprobs(
                input_prompt=prompt, target_str=target, tokenizer=self.tokenizer
            )
        except Exception as err:
            self.meter.count(failed_requests=1)
            raise APIError(
                f"{type(self.provider).__name__}.get_logprobs failed: {err}",
                retryable=is_transient(err),
            ) from err
        return [float(v) for v in values]

    def _text(self, target: str | Sequence[int]) -> str:
        if isinstance(target, str):
            return target
        return self.tokenizer.decode(list(np.asarray(target).reshape(-1)))

    def _prompt_text(self, prompt: Prompt) -> str:
        return self._text(prompt)

    def target_log_probs(
        self,
        prompts: Sequence[Prompt],
        target: str | Sequence[int],
        *,
        batch_size: int | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        text = self._text(target)
        if not text:
            raise UnsupportedRequest("The target is empty: give a non-empty target.")

        def ask(prompt: str) -> list[float]:
            per_token = self._get_logprobs(prompt, text)
            return [sum(per_token), *per_token]

        return self._each_prompt(prompts, ask, on_batch)

    def next_token_log_probs(
        self,
        prompts: Sequence[Prompt],
        candidates: Sequence[str | int],
        *,
        batch_size: int | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        texts = [c if isinstance(c, str) else self.tokenizer.decode([int(c)]) for c in candidates]

        def ask(prompt: str) -> list[float]:
            return [self._get_logprobs(prompt, text)[0] for text in texts]

        return self._each_prompt(prompts, ask, on_batch).reshape(len(prompts), len(texts))


class RemoteLLMAttribution(LLMAttribution, CaptumRemoteLLMAttribution):
    """Captum's ``RemoteLLMAttribution`` that also accepts ProxySPEX and SPEX.

    With Captum's own methods it behaves exactly like Captum's class (one
    request per masked prompt, in turn). With :class:`ProxySPEXAttribution`
    or :class:`SPEXAttribution` the masked prompts are sent ``concurrency``
    at a time, failed requests are retried, and ``attribute`` takes the
    options of :meth:`LLMAttribution.attribute` (``n_samples``, ``cache``,
    ``fingerprint``, ``executor``, ``show_progress``, ``per_token``); the
    result's ``usage`` counts the requests (retried ones included).

    Args:
        attr_method: A Captum perturbation method or one of ours. Its model
            is not called (the provider is); Captum's ``RemoteLLMAttribution.placeholder_model``
            serves as one.
        tokenizer: The remote model's tokenizer.
        provider: Any Captum ``RemoteLLMProvider``, e.g.
            ``captum.attr.VLLMProvider("http://127.0.0.1:8765/v1")``.
        attr_target: ``"log_prob"`` (default) or ``"prob"``.
        concurrency: Requests in flight at once.
        requests_per_second: Pace the requests; ``None``: no limit.
        retries: Times a failed request is sent again (backoff 1 s, doubling, with jitter).

    Examples:
        >>> import proxyspex_captum as psx  # doctest: +SKIP
        >>> from captum.attr import TextTemplateInput, VLLMProvider  # doctest: +SKIP
        >>> provider = VLLMProvider("http://127.0.0.1:8765/v1")  # doctest: +SKIP
        >>> method = psx.ProxySPEXAttribution(psx.RemoteLLMAttribution.placeholder_model)
        ... # doctest: +SKIP
        >>> llm = psx.RemoteLLMAttribution(method, tokenizer, provider, concurrency=16)
        ... # doctest: +SKIP
        >>> result = llm.attribute(TextTemplateInput("{} {} {}", ["not", "a", "bad film"]),
        ...                        target=" positive", n_samples=300)  # doctest: +SKIP
        >>> result.top_interactions(3), result.usage.requests  # doctest: +SKIP
    """

    def __init__(
        self,
        attr_method: Any,
        tokenizer: Any,
        provider: RemoteLLMProvider,
        attr_target: str = "log_prob",
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        requests_per_second: float | None = None,
        retries: int = DEFAULT_RETRIES,
    ) -> None:
        CaptumRemoteLLMAttribution.__init__(self, attr_method, tokenizer, provider, attr_target)
        self.concurrency = check_int("concurrency", concurrency, 1)
        self.retries = check_int("retries", retries, 0)
        #: Scores the masked prompts of our methods through the provider.
        self.scorer = ProviderScorer(provider, tokenizer, requests_per_second=requests_per_second)

    def attribute(  # type: ignore[override]
        self,
        inp: InterpretableInput,
        target: str | Tensor | None = None,
        num_trials: int = 1,
        gen_args: dict[str, Any] | None = None,
        use_cached_outputs: bool = True,
        _inspect_forward: Callable[[str, str, list[float]], None] | None = None,
        forward_in_tokens: bool | None = None,
        **kwargs: Any,
    ) -> Any:
        """Attribute the target's log-probability; see :meth:`LLMAttribution.attribute`."""
        if forward_in_tokens and self._explains_interactions():
            raise ValueError(
                "forward_in_tokens=True needs the model's weights; a remote model is scored "
                "on whole prompts (leave forward_in_tokens out)."
            )
        if not self._explains_interactions() and forward_in_tokens is None:
            forward_in_tokens = False  # Captum's remote path scores whole prompts
        return super().attribute(
            inp,
            target=target,
            num_trials=num_trials,
            gen_args=gen_args,
            use_cached_outputs=use_cached_outputs,
            _inspect_forward=_inspect_forward,
            forward_in_tokens=forward_in_tokens,
            **kwargs,
        )

    def _explains_interactions(self) -> bool:
        from .base import InteractionAttribution

        return isinstance(self.attr_method, InteractionAttribution)

    def _masked_prompts(self, inp: InterpretableInput, masks: Any) -> list[str]:  # type: ignore[override]
        """The text of the prompt under each mask row (what the API reads)."""
        import torch

        masks = torch.as_tensor(np.ascontiguousarray(masks), dtype=torch.bool)
        if isinstance(inp, TextTokenInput):
            return [
                self._format_remote_model_input(ids) for ids in inp.to_model_input(masks.long())
            ]
        return [self._format_remote_model_input(inp.to_model_input(row[None])) for row in masks]

    def _calls(
        self, executor: Any, batch_size: int | str | None, stack: contextlib.ExitStack
    ) -> dict[str, Any]:
        """One request per batch (each answer cached as it arrives), on a thread pool."""
        if executor is None:
            executor = stack.enter_context(ThreadPoolExecutor(self.concurrency))
        return {
            "executor": executor,
            "batch_size": 1,
            "retries": self.retries,
            "retry_backoff": DEFAULT_BACKOFF,
        }

    def _model_identity(self) -> tuple[str, tuple, list[bytes]]:
        """The provider's model and address (the weights are out of reach)."""
        return self.scorer.model_name, (self.scorer.identity,), []
