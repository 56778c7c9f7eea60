"""LLM scorers: prompts in, log-probabilities out, in batches.

Every LLM value function in this library asks a model the same two things
about a batch of masked prompts: how likely a fixed *target* response is
(:meth:`LLMScorer.target_log_probs`), or how likely a few candidate *next
tokens* are (:meth:`LLMScorer.next_token_log_probs`, e.g. ``" positive"`` vs
``" negative"``). A scorer answers them for one model, wherever it runs:

- :class:`HFScorer`: a local Hugging Face causal LM, masked prompts batched
  into one forward pass each, and the key/value cache of the prompts'
  common prefix (system prompt, instructions) computed once and reused.
- :class:`~proxyspex_captum.api.CompletionsScorer` and
  :class:`~proxyspex_captum.api.ChatScorer`: a model behind an
  OpenAI-compatible API (vLLM, llama.cpp, a hosted model).
- :class:`~proxyspex_captum.attr.remote.ProviderScorer`: any Captum
  ``RemoteLLMProvider``.

Examples:
    >>> import torch
    >>> from transformers import LlamaConfig, LlamaForCausalLM
    >>> from proxyspex_captum.scoring import HFScorer
    >>> config = LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32,
    ...                      num_hidden_layers=1, num_attention_heads=2)
    >>> with torch.random.fork_rng(devices=[]):
    ...     _ = torch.manual_seed(0)
    ...     model = LlamaForCausalLM(config).eval()
    >>> scorer = HFScorer(model, batch_size=2)
    >>> prompts = [[1, 5, 6, 7], [1, 5, 6, 9, 9], [1, 5, 8]]
    >>> scores = scorer.target_log_probs(prompts, [3, 4])  # total, then each token
    >>> scores.shape
    (3, 3)
    >>> bool(abs(scores[:, 0] - scores[:, 1:].sum(axis=1)).max() < 1e-5)
    True
    >>> scorer.usage.prompts
    3
"""

from __future__ import annotations

import functools
import inspect
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .core.checks import check_int

__all__ = ["HFScorer", "LLMScorer", "Prompt", "UnsupportedRequest", "Usage", "UsageMeter"]

#: A prompt: text, or token ids (local scorers; remote ones take text).
Prompt = str | Sequence[int]

# Masked prompts per forward pass when the caller does not say.
DEFAULT_BATCH_SIZE = 16
# Shared tokens worth a key/value cache of their own.
MIN_PREFIX = 2


@dataclass
class Usage:
    """What a scorer has spent so far: the cost of an explanation.

    Attributes:
        prompts: Prompts scored (one per masked input and question).
        requests: Requests sent to a remote model, retried ones included
            (0 for a local model).
        failed_requests: Requests that failed (and were retried, or stopped the run).
        prompt_tokens: Prompt tokens the model read (as the server counted
            them; the local scorer counts the tokens of each prompt).
        completion_tokens: Tokens the server generated.
        cached_prompt_tokens: Prompt tokens read from the prefix cache
            instead of computed (local scorer).
    """

    prompts: int = 0
    requests: int = 0
    failed_requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def __sub__(self, other: Usage) -> Usage:
        """What was spent between two snapshots: ``after - before``."""
        start = other.as_dict()
        return Usage(**{name: value - start[name] for name, value in self.as_dict().items()})


class UnsupportedRequest(ValueError):
    """A question this scorer cannot ask (a prompt or target of the wrong kind, a score its
    API does not give): asking again would not help, so it is never retried."""

    retryable = False


class UsageMeter:
    """Thread-safe :class:`Usage` counters (scorers are called from several threads at once)."""

    def __init__(self) -> None:
        self._usage = Usage()
        self._lock = threading.Lock()

    def count(self, **increments: int) -> None:
        """Add to the counters, e.g. ``count(requests=1, prompt_tokens=40)``."""
        with self._lock:
            for name, value in increments.items():
                setattr(self._usage, name, getattr(self._usage, name) + int(value))

    def snapshot(self) -> Usage:
        """A copy of the counts so far."""
        with self._lock:
            return Usage(**self._usage.as_dict())


class LLMScorer(ABC):
    """Log-probabilities of responses after prompts, for one model, in batches.

    Subclasses implement the two questions; both take a batch of prompts and
    return one row per prompt, in order, and accept ``batch_size`` (prompts
    per forward pass, where that means something) and ``on_batch`` (called
    with the number of prompts scored, as they are). :attr:`usage` counts the cost.
    """

    #: A chat model answers a user message (the scorer applies the chat format);
    #: a completion model continues raw text (the caller formats the prompt).
    chat: bool = False

    def __init__(self) -> None:
        self.meter = UsageMeter()

    @property
    def usage(self) -> Usage:
        """What this scorer has spent so far (a copy)."""
        return self.meter.snapshot()

    @property
    @abstractmethod
    def model_name(self) -> str:
        """Names the model (and where it runs, for a remote one)."""

    @property
    def identity(self) -> str:
        """Names what the scores depend on: the model and the scorer's settings (cache keys)."""
        return self.model_name

    def _each_prompt(
        self,
        prompts: Sequence[Prompt],
        ask: Callable[[str], Any],
        on_batch: Callable[[int], None] | None,
    ) -> np.ndarray:
        """One request per prompt (a remote model): ``ask(text)`` gives the prompt's row."""
        rows = []
        for prompt in prompts:
            rows.append(ask(self._prompt_text(prompt)))
            self.meter.count(prompts=1)
            if on_batch is not None:
                on_batch(1)
        return np.array(rows, dtype=float)

    def _prompt_text(self, prompt: Prompt) -> str:
        """The prompt as the text a remote model reads."""
        if not isinstance(prompt, str):
            raise UnsupportedRequest("A remote model takes text prompts, not token ids.")
        return prompt

    @abstractmethod
    def next_token_log_probs(
        self,
        prompts: Sequence[Prompt],
        candidates: Sequence[str | int],
        *,
        batch_size: int | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """``(k, c)``: log-probability of each candidate as the next token after each prompt.

        Args:
            prompts: ``k`` prompts.
            candidates: ``c`` tokens, as text (its first token is scored) or token ids.
        """

    @abstractmethod
    def target_log_probs(
        self,
        prompts: Sequence[Prompt],
        target: str | Sequence[int],
        *,
        batch_size: int | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """``(k, 1 + T)``: the target's total log-probability after each prompt, then each token's.

        Args:
            prompts: ``k`` prompts.
            target: The response, as text or token ids (``T`` tokens).
        """


class HFScorer(LLMScorer):
    """A local Hugging Face causal LM: one forward pass per batch of prompts.

    Prompts are left-padded (attention mask and position ids count real
    tokens only) so that every target ends aligned, and only the logits of
    the target positions are computed. With ``prefix_cache=True`` the
    tokens every prompt of the explanation shares at its start (the chat
    header, a system prompt, instructions before the first feature) are run
    through the model once; their key/value cache is reused by every later
    batch, which runs only the rest of each prompt. The values equal those
    of the uncached path to float rounding (tested to 1e-4). Models with
    sliding-window or chunked attention in any layer (Gemma 2 and 3, Mistral
    with a window, Qwen2 with ``use_sliding_window``) score whole prompts: a
    window counts the padding between a cached prefix and the rest. The
    cache follows the model's weights: changed in place, reloaded, or moved
    to another dtype or device, they are noticed and the prefix is run
    again; after switching a PEFT adapter, or editing weights through
    ``.data``, call :meth:`reset_prefix_cache`.

    Args:
        model: A ``transformers`` causal LM (in eval mode).
        tokenizer: Its tokenizer; needed for text prompts, targets and
            candidates, not for token ids.
        batch_size: Prompts per forward pass.
        prefix_cache: Reuse the shared prefix's key/value cache.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        prefix_cache: bool = True,
    ) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = check_int("batch_size", batch_size, 1)
        self.prefix_cache = bool(prefix_cache)
        self._keeps_logits = True  # until the model turns out not to take logits_to_keep
        # The prefix the prompts scored so far share, and its key/value cache (one
        # sequence, per layer); see _prefix_for for when it is cropped or replaced.
        self._prefix: tuple[int, ...] = ()
        self._prefix_kv: list[tuple[Any, Any]] | None = None
        self._prefix_weights: tuple[Any, ...] = ()  # the weights the cache was computed with
        self._lock = threading.Lock()  # the prefix cache (batches may come from several threads)
        if self.prefix_cache and _windowed_attention(getattr(model, "config", None)):
            self.prefix_cache = False

    def reset_prefix_cache(self) -> None:
        """Forget the cached prefix: the next batch runs its prefix through the model again.

        Changes to the weights are noticed without it (in place, reloaded,
        another dtype or device); what is not is a change that leaves every
        weight tensor as it was, such as switching a PEFT adapter.
        """
        with self._lock:
            self._prefix, self._prefix_kv, self._prefix_weights = (), None, ()

    @property
    def model_name(self) -> str:
        config = getattr(self.model, "config", None)
        return getattr(config, "_name_or_path", None) or type(self.model).__qualname__

    @functools.cached_property
    def _cache_argument(self) -> str:
        """The model's name for a key/value cache: ``cache`` (transformers ≥ 5.25) or older."""
        parameters = inspect.signature(self.model.forward).parameters
        return "cache" if "cache" in parameters else "past_key_values"

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    # ------------------------------------------------------------------ the two questions
    def next_token_log_probs(
        self,
        prompts: Sequence[Prompt],
        candidates: Sequence[str | int],
        *,
        batch_size: int | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """``(k, c)``; see :meth:`LLMScorer.next_token_log_probs`.

        ``batch_size`` overrides the scorer's prompts per forward pass for this
        call; ``on_batch`` is called with the number of prompts after each pass.
        """
        import torch

        ids = self._candidate_ids(candidates)
        empty = torch.zeros(0, dtype=torch.long)
        rows = [
            lp[:, 0, ids].cpu()
            for lp in self._log_prob_batches(prompts, empty, batch_size, on_batch)
        ]
        return torch.cat(rows).numpy() if rows else np.zeros((0, len(ids)))

    def target_log_probs(
        self,
        prompts: Sequence[Prompt],
        target: str | Sequence[int],
        *,
        batch_size: int | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """``(k, 1 + T)``; see :meth:`LLMScorer.target_log_probs`.

        ``batch_size`` overrides the scorer's prompts per forward pass for this
        call; ``on_batch`` is called with the number of prompts after each pass.
        """
        import torch

        target_ids = torch.as_tensor(self._encode(target, "The target"), dtype=torch.long)
        if target_ids.numel() == 0:
            raise ValueError("The target is empty (no tokens): give a non-empty target.")
        out = []
        for log_probs in self._log_prob_batches(prompts, target_ids, batch_size, on_batch):
            at_target = log_probs[:, : len(target_ids)]
            index = target_ids.to(at_target.device).expand(len(log_probs), -1)[..., None]
            per_token = at_target.gather(2, index)[..., 0]
            out.append(torch.cat([per_token.sum(dim=1, keepdim=True), per_token], dim=1).cpu())
        if not out:
            return np.zeros((0, 1 + len(target_ids)))
        return torch.cat(out).numpy()

    # ------------------------------------------------------------------ helpers
    def _encode(self, text_or_ids: str | Sequence[int], what: str = "A prompt") -> list[int]:
        if isinstance(text_or_ids, str):
            if self.tokenizer is None:
                raise ValueError(
                    "Text prompts and targets need the tokenizer: HFScorer(model, tok)."
                )
            return list(self.tokenizer.encode(text_or_ids, add_special_tokens=False))
        return self._token_ids(text_or_ids, what)

    def _token_ids(self, ids: Any, what: str) -> list[int]:
        """``ids`` as a list of token ids of this model's vocabulary, or a clear error."""
        array = np.asarray(ids)
        if array.ndim == 2 and array.shape[0] == 1:  # a tokenizer's (1, L) tensor
            array = array[0]
        if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
            raise ValueError(
                f"{what} must be text or a flat sequence of integer token ids; got "
                f"{array.dtype} values of shape {array.shape}."
            )
        vocabulary = self._vocabulary_size
        if array.size:
            low, high = int(array.min()), int(array.max())
            if low < 0 or (vocabulary and high >= vocabulary):
                raise ValueError(
                    f"{what} holds token id {low if low < 0 else high}, outside the "
                    f"model's vocabulary [0, {vocabulary})."
                )
        return array.astype(np.int64).tolist()

    @functools.cached_property
    def _vocabulary_size(self) -> int | None:
        embeddings = getattr(self.model, "get_input_embeddings", lambda: None)()
        size = getattr(embeddings, "num_embeddings", None)
        if size is None:
            size = getattr(getattr(self.model, "config", None), "vocab_size", None)
        return int(size) if size else None

    def _candidate_ids(self, candidates: Sequence[str | int]) -> list[int]:
        """One token id per candidate, distinct, checked before any forward pass."""
        ids = []
        for candidate in candidates:
            if isinstance(candidate, str):
                tokens = self._encode(candidate)
                if len(tokens) != 1:
                    raise ValueError(
                        f"The candidate {candidate!r} is {len(tokens)} tokens {tokens}; a "
                        "next-token score reads one. Choose single-token candidates (often "
                        "with a leading space), or score the text as a target."
                    )
                ids += tokens
            else:
                ids += self._token_ids([candidate], f"The candidate {candidate!r}")
        if len(set(ids)) < len(ids):
            raise ValueError(f"Two candidates are the same token: {list(candidates)} -> {ids}.")
        return ids

    def _prompt_ids(self, prompt: Prompt) -> list[int]:
        if isinstance(prompt, str):  # as Captum's LLMAttribution tokenizes a prompt
            if self.tokenizer is None:
                raise ValueError("Text prompts need the tokenizer: HFScorer(model, tokenizer).")
            return list(self.tokenizer(prompt)["input_ids"])
        return self._encode(prompt)

    def _pad_id(self) -> int:
        pad = getattr(self.tokenizer, "pad_token_id", None)
        if pad is None:
            pad = getattr(self.tokenizer, "eos_token_id", None)
        return int(pad or 0)

    def _log_prob_batches(
        self,
        prompts: Sequence[Prompt],
        target: Any,
        batch_size: int | None,
        on_batch: Callable[[int], None] | None,
    ) -> Iterator[Any]:
        """Per batch of prompts (+ ``target``): log-probabilities ``(c, T + 1, vocab)``.

        Position ``t < T`` predicts target token ``t``; position ``T`` predicts
        the token after the target (after the prompt when the target is empty).
        """
        import torch

        size = self.batch_size if batch_size is None else check_int("batch_size", batch_size, 1)
        # Every prompt checked before the first forward pass, so none is paid for in vain.
        encoded = [self._prompt_ids(p) for p in prompts]
        if encoded and min(len(p) for p in encoded) == 0:  # scored from a pad position otherwise
            raise ValueError("A masked prompt is empty; the model cannot score it.")
        for start in range(0, len(encoded), size):
            batch = encoded[start : start + size]
            logits = self._target_logits(batch, target.tolist())
            self.meter.count(prompts=len(batch), prompt_tokens=sum(len(p) for p in batch))
            yield torch.log_softmax(logits.float(), dim=-1)
            if on_batch is not None:
                on_batch(len(batch))

    def _shared_prefix(self, batch: list[list[int]], reference: Sequence[int]) -> int:
        """How many tokens every prompt of ``batch`` shares with ``reference``'s start.

        Each prompt keeps at least one token of its own to score from.
        """
        limit = min(len(p) for p in batch) - 1
        length = min(limit, len(reference))
        for prompt in batch:
            same = 0
            while same < length and prompt[same] == reference[same]:
                same += 1
            length = same
        return max(length, 0)

    def _prefix_for(self, batch: list[list[int]]) -> list[tuple[Any, Any]]:
        """The key/value cache of the prefix the batch's prompts share (empty: none worth it).

        The prefix held is the one the prompts scored so far share: a batch
        that shares less of it crops its cache (exact: position ``i``'s keys and
        values depend on tokens ``≤ i`` only). A batch whose own shared prefix
        is more than twice what it shares with the held one (another template)
        starts over from its own.
        """
        with self._lock:
            weights = self._weights_key()
            if weights != self._prefix_weights:  # the model changed: its cache is stale
                self._prefix, self._prefix_kv, self._prefix_weights = (), None, weights
            held = self._prefix_kv is not None
            cached = self._shared_prefix(batch, self._prefix) if held else 0
            # One prompt shares all but its last token with itself: only a batch of
            # several says what its template's prefix is, so a lone prompt only crops a
            # held prefix (else every prompt alone would run twice, its prefix and then
            # its last token). With nothing held yet, its own starts the cache.
            own = self._shared_prefix(batch, batch[0]) if len(batch) > 1 or not held else 0
            if own > 2 * cached:
                cached = own
            if cached < MIN_PREFIX:
                return []
            return self._prefix_cache_for(batch[0][:cached])

    def _weights_key(self) -> tuple[Any, ...]:
        """What changes when the weights do: each tensor's storage, version, dtype and device.

        A tensor's version counts its in-place changes (``load_state_dict``
        copies, optimiser steps); ``.to(...)`` gives new storage. Buffers
        (rotary frequencies, quantisation scales) count too. An edit through
        ``.data`` bypasses the version: call :meth:`reset_prefix_cache` after it.
        """
        tensors = [*self.model.parameters(), *self.model.buffers()]
        return tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in tensors)

    def _prefix_cache_for(self, prefix: list[int]) -> list[tuple[Any, Any]]:
        """The cached keys/values of ``prefix`` (computing or cropping what is held)."""
        import torch

        length = len(prefix)
        if self._prefix_kv is not None and tuple(prefix) == self._prefix[:length]:
            if length < len(self._prefix):
                self._prefix_kv = [
                    (k[:, :, :length], v[:, :, :length]) for k, v in self._prefix_kv
                ]
                self._prefix = tuple(prefix)
            return self._prefix_kv
        ids = torch.tensor([prefix], dtype=torch.long, device=self.device)
        out = self._forward({"input_ids": ids, "use_cache": True}, keep=1)
        cache = out.cache if self._cache_argument == "cache" else out.past_key_values
        layers = getattr(cache, "layers", None)
        if layers is None or any(getattr(layer, "is_sliding", False) for layer in layers):
            # A transformers without the cache API used here (DynamicCache layers, before
            # ~4.56), or a windowed layer the config did not name: whole prompts from now.
            self.prefix_cache = False
            return []
        self._prefix_kv = [(layer.keys, layer.values) for layer in layers]
        self._prefix = tuple(prefix)
        return self._prefix_kv

    def _forward(self, inputs: dict[str, Any], keep: int) -> Any:
        """The model's output on ``inputs``, with the logits of the last ``keep`` positions."""
        import torch

        with torch.no_grad():
            if self._keeps_logits:
                # Only the logits needed: the vocabulary projection of every prompt
                # position would cost time and (batch x length x vocab) memory.
                try:
                    return self.model(**inputs, logits_to_keep=keep)
                except TypeError as err:  # a model without logits_to_keep
                    if "logits_to_keep" not in str(err):
                        raise
                    self._keeps_logits = False
            return self.model(**inputs)

    def _target_logits(self, batch: list[list[int]], target: list[int]) -> Any:
        """Logits ``(c, T + 1, vocab)`` predicting the target tokens, then the token after."""
        import torch

        n_target = len(target)
        c = len(batch)
        kv = self._prefix_for(batch) if self.prefix_cache else []
        cached = kv[0][0].shape[2] if kv else 0
        suffixes = [p[cached:] for p in batch]
        width = max(len(s) for s in suffixes)
        ids = torch.full((c, width + n_target), self._pad_id(), dtype=torch.long)
        attention = torch.zeros_like(ids)
        for row, suffix in enumerate(suffixes):  # left padding: all targets end aligned
            ids[row, width - len(suffix) : width] = torch.as_tensor(suffix)
            attention[row, width - len(suffix) :] = 1
        ids[:, width:] = torch.as_tensor(target, dtype=torch.long)
        # Positions count real tokens only, so a padded prompt reads as unpadded.
        positions = cached + (attention.cumsum(dim=1) - 1).clamp(min=0)
        inputs: dict[str, Any] = {"use_cache": False}
        if kv:
            from transformers import DynamicCache

            # A fresh cache per batch over the shared tensors: the model appends
            # the suffix's keys to it (a new tensor), never to the prefix's.
            past = DynamicCache(
                [(k.expand(c, -1, -1, -1), v.expand(c, -1, -1, -1)) for k, v in kv],
                config=getattr(self.model, "config", None),
            )
            attention = torch.cat([torch.ones((c, cached), dtype=attention.dtype), attention], 1)
            inputs.update({self._cache_argument: past, "use_cache": True})
        device = self.device
        inputs.update(
            input_ids=ids.to(device),
            attention_mask=attention.to(device),
            position_ids=positions.to(device),
        )
        logits = self._forward(inputs, keep=n_target + 1).logits
        self.meter.count(cached_prompt_tokens=cached * c)  # counted once the pass has run
        if logits.dim() == 4:  # some models add a heads dimension (see Captum)
            logits = logits[:, 0]
        return logits[:, -(n_target + 1) :]  # logits[:, t] predicts token t + 1


def _windowed_attention(config: Any) -> bool:
    """Whether any layer of the model attends through a sliding window or in chunks."""
    if config is None:
        return False
    layer_types = getattr(config, "layer_types", None)
    if layer_types is not None:
        return any(kind in ("sliding_attention", "chunked_attention") for kind in layer_types)
    if getattr(config, "attention_chunk_size", None):
        return True
    return bool(getattr(config, "sliding_window", None)) and getattr(
        config, "use_sliding_window", True
    )
