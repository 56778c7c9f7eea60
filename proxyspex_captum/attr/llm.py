"""Captum's ``LLMAttribution``, extended to ProxySPEX and SPEX, with batched masked prompts."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from captum._utils.progress import progress
from captum.attr import LLMAttribution as CaptumLLMAttribution
from captum.attr import LLMAttributionResult, TextTemplateInput, TextTokenInput
from captum.attr._core.llm_attr import _convert_ids_to_pretty_tokens
from captum.attr._utils.interpretable_input import InterpretableInput
from torch import Tensor

from ..core import Interactions, ValueFunction
from ..core.cache import MaskStore, open_store
from ..core.checks import check_int
from ..core.executors import check_executor
from ..scoring import DEFAULT_BATCH_SIZE as DEFAULT_PROMPTS_PER_EVAL
from ..scoring import HFScorer, Usage
from .base import InteractionAttribution
from .masking import digest_callable

__all__ = ["LLMAttribution", "LLMInteractionAttributionResult"]

# Entries of each weight tensor that name the model in a cache fingerprint.
_SAMPLED_WEIGHTS = 1024

_OUR_OPTIONS = (
    "n_samples",
    "perturbations_per_eval",
    "show_progress",
    "per_token",
    "executor",
    "cache",
    "fingerprint",
)


class LLMInteractionAttributionResult(LLMAttributionResult):
    """Captum's ``LLMAttributionResult`` that also carries the interactions.

    ``seq_attr`` (and ``token_attr`` when asked for) hold first-order
    attributions in the attribution method's index, so ``plot_seq_attr`` and
    ``plot_token_attr`` work as usual; ``interactions`` holds what lies behind them.

    Attributes:
        interactions: The :class:`~proxyspex_captum.Interactions` of the whole
            target's log-probability (or probability), its feature names the
            input's tokens or template segments.
        token_interactions: One ``Interactions`` per target token when
            ``per_token=True`` was asked for, else ``None``.
        usage: What this explanation cost the model
            (:class:`~proxyspex_captum.scoring.Usage`: prompts scored,
            requests and tokens for a remote model).
    """

    def __init__(
        self,
        *,
        interactions: Interactions,
        token_interactions: list[Interactions] | None = None,
        usage: Usage | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.interactions = interactions
        self.token_interactions = token_interactions
        self.usage = usage

    def top_interactions(self, k: int = 10) -> list[tuple[tuple[str, ...], float]]:
        """The ``k`` strongest interactions (Möbius coefficients), named by their features."""
        return [(self.interactions.names_of(s), v) for s, v in self.interactions.top(k)]


class LLMAttribution(CaptumLLMAttribution):
    """Captum's ``LLMAttribution`` that also accepts ProxySPEX and SPEX.

    With Captum's own methods (``FeatureAblation``, ``ShapleyValueSampling``,
    ``ShapleyValues``, ``Lime``, ``KernelShap``) it behaves exactly like
    Captum's class. With :class:`ProxySPEXAttribution` or
    :class:`SPEXAttribution` it sends the masked prompts to the model in
    batches (left padding, attention masks and position ids, one forward
    pass per batch of prompts with the target appended) and returns an
    :class:`LLMInteractionAttributionResult`.

    Args:
        attr_method: A Captum perturbation method or one of ours, built on
            the Hugging Face causal LM to explain.
        tokenizer: The model's tokenizer.
        attr_target: ``"log_prob"`` (default) or ``"prob"`` of the target.

    Examples:
        >>> import proxyspex_captum as psx
        >>> from captum.attr import TextTemplateInput
        >>> model, tokenizer = psx.models.load_model()  # doctest: +SKIP
        >>> llm_attr = psx.LLMAttribution(psx.ProxySPEXAttribution(model), tokenizer)
        ... # doctest: +SKIP
        >>> inp = TextTemplateInput("{} {} {}", values=["not", "a", "bad film"])  # doctest: +SKIP
        >>> result = llm_attr.attribute(inp, target=" positive", n_samples=200)  # doctest: +SKIP
        >>> result.seq_attr, result.top_interactions(3)  # doctest: +SKIP
    """

    SUPPORTED_METHODS = (*CaptumLLMAttribution.SUPPORTED_METHODS, InteractionAttribution)
    #: Inputs our methods accept (their masked prompts are text, so they batch).
    SUPPORTED_INTERACTION_INPUTS = (TextTemplateInput, TextTokenInput)

    def __init__(self, attr_method: Any, tokenizer: Any, attr_target: str = "log_prob") -> None:
        super().__init__(attr_method, tokenizer, attr_target)
        #: Scores the masked prompts of our methods (and :meth:`log_probs`).
        self.scorer = HFScorer(self.model, tokenizer, batch_size=DEFAULT_PROMPTS_PER_EVAL)

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
    ) -> LLMAttributionResult:
        """Attribute the target's log-probability to the input's features.

        Arguments are Captum's (``LLMAttribution.attribute``). With our methods:

        Args:
            inp: A ``TextTemplateInput`` (features are its template values) or
                a ``TextTokenInput`` (features are its tokens).
            target: The response to explain (a string or token ids), or
                ``None`` to explain what the model generates (``gen_args``).
            num_trials: Must be 1: ProxySPEX and SPEX spend their budget once
                (raise ``n_samples`` for a more accurate result).
            forward_in_tokens: ``None`` or ``False`` (the default for our
                methods): one forward pass over prompt + target per batch of
                masked prompts. ``True``: Captum's token-by-token decoding, one
                masked prompt at a time (slower, replicates generation with a cache).
            **kwargs: ``n_samples`` (model calls, default the estimator's
                ``default_budget``), ``perturbations_per_eval`` (masked prompts
                per forward pass, default 16), ``show_progress``, and
                ``per_token`` (also explain each target token, giving
                ``token_attr`` and ``token_interactions``; default False),
                ``executor`` (a ``concurrent.futures.Executor`` for the
                batches of prompts: a thread pool overlaps them; the model
                travels with every batch to other processes, so for those
                write a value function that loads it with
                ``psx.executors.replica``), ``cache`` (a file keeping every
                prompt's value paid for; a rerun makes only the missing
                calls) and ``fingerprint`` (names the values in ``cache``;
                default: the model's name and size, the input and the target).

        Returns:
            An :class:`LLMInteractionAttributionResult` with our methods, else
            Captum's ``LLMAttributionResult``.
        """
        if not isinstance(self.attr_method, InteractionAttribution):
            return super().attribute(
                inp,
                target=target,
                num_trials=num_trials,
                gen_args=gen_args,
                use_cached_outputs=use_cached_outputs,
                _inspect_forward=_inspect_forward,
                forward_in_tokens=True if forward_in_tokens is None else forward_in_tokens,
                **kwargs,
            )
        unknown = sorted(set(kwargs) - set(_OUR_OPTIONS))
        if unknown:
            raise TypeError(
                f"Unexpected argument(s) {unknown} for {type(self.attr_method).__name__}; "
                f"it takes {', '.join(_OUR_OPTIONS)}."
            )
        if not isinstance(inp, self.SUPPORTED_INTERACTION_INPUTS):
            raise TypeError(
                f"{type(self.attr_method).__name__} explains TextTemplateInput and TextTokenInput "
                f"prompts, got {type(inp).__name__}. For images, run it on the image tensor with "
                "a feature_mask of patches."
            )
        if num_trials != 1:
            raise ValueError(
                "num_trials must be 1 with ProxySPEX and SPEX: they spend their budget in one "
                "design; raise n_samples instead of repeating trials."
            )
        per_token = bool(kwargs.get("per_token", False))
        one_at_a_time = bool(forward_in_tokens)
        if one_at_a_time and per_token:
            raise ValueError("per_token=True needs the batched path (forward_in_tokens=False).")
        if _inspect_forward is not None and not one_at_a_time:
            raise ValueError("_inspect_forward needs forward_in_tokens=True.")
        batch_size = check_int(
            "perturbations_per_eval",
            kwargs.get("perturbations_per_eval", DEFAULT_PROMPTS_PER_EVAL),
            1,
        )

        estimator = self.attr_method.estimator
        n = inp.n_itp_features
        if n < 1:
            raise ValueError("The input has no features to attribute (an empty text or template).")
        n_samples = kwargs.get("n_samples")
        budget = estimator.check_budget(
            n, estimator.default_budget(n) if n_samples is None else n_samples
        )
        if not self._masked_prompts(inp, np.zeros((1, n), dtype=bool))[0]:
            raise ValueError(
                "Dropping every feature leaves an empty prompt, which the model cannot score. "
                "Put the features inside a template with fixed text (an instruction), or give "
                "TextTemplateInput baselines that are not empty."
            )
        target_tokens = self._get_target_tokens(inp, target, gen_args=gen_args)
        if target_tokens.numel() == 0:
            raise ValueError("The target is empty (no tokens): give a non-empty target.")

        bar = None
        if kwargs.get("show_progress", False):
            bar = progress(
                desc=f"{type(self.attr_method).__name__} on the LLM",
                total=estimator.max_queries(n, budget),
                unit="prompts",
            )

        def value_function(masks: np.ndarray) -> Tensor:
            if one_at_a_time:
                return self._one_prompt_at_a_time(
                    masks, inp, target_tokens, use_cached_outputs, _inspect_forward, bar
                )
            on_batch = None if bar is None else bar.update
            values = self.log_probs(
                masks, inp, target_tokens, batch_size=batch_size, per_token=True, on_batch=on_batch
            )
            if not per_token:
                values = values[:, :1]
            return np.exp(values) if self.attr_target == "prob" else values

        executor = check_executor(kwargs.get("executor"))
        cache, fingerprint = kwargs.get("cache"), kwargs.get("fingerprint")
        if cache is not None and fingerprint is None and not isinstance(cache, MaskStore):
            fingerprint = self._fingerprint(inp, target_tokens, per_token, one_at_a_time)
        store = open_store(cache, fingerprint, n)
        calls_per_batch = estimator.batch_size
        if calls_per_batch == "auto" and not one_at_a_time:
            # One model call per batch of prompts: every forward pass is full, instead of
            # the estimator's ~20 calls that leave a partial pass at the end of each.
            calls_per_batch = batch_size
        spent = self.scorer.usage
        with contextlib.ExitStack() as stack:
            if bar is not None:
                stack.callback(bar.close)
            if store is not None and store is not cache:
                stack.callback(store.close)
            model_calls = ValueFunction(
                value_function,
                n,
                show_progress=estimator.show_progress,
                description=f"{type(estimator).__name__} model calls",
                store=store,
                **self._calls(executor, calls_per_batch, stack),
            )
            result = estimator.explain(
                model_calls, n, budget, feature_names=self._feature_names(inp)
            )
        inters = result if isinstance(result, list) else [result]
        index = self.attr_method.index
        attr = torch.stack([torch.as_tensor(i.first_order(index)) for i in inters]).float()
        attr = inp.format_attr(attr.to(self.device))
        return LLMInteractionAttributionResult(
            usage=self.scorer.usage - spent,
            seq_attr=attr[0],
            token_attr=attr[1:] if per_token else None,
            input_tokens=inp.values,
            output_tokens=_convert_ids_to_pretty_tokens(target_tokens, self.tokenizer),
            inp=inp,
            interactions=inters[0],
            token_interactions=inters[1:] if per_token else None,
        )

    # ------------------------------------------------------------------ helpers
    def _calls(
        self, executor: Any, batch_size: int | str | None, stack: contextlib.ExitStack
    ) -> dict[str, Any]:
        """How the model calls run: the ``ValueFunction`` options ``executor`` and ``batch_size``.

        A remote model overrides this (a thread pool, one request a batch, more
        retries); what it starts is closed by ``stack``.
        """
        return {"executor": executor, "batch_size": batch_size}

    def _fingerprint(
        self, inp: InterpretableInput, target_tokens: Tensor, per_token: bool, one_at_a_time: bool
    ) -> str:
        """Names the values of one ``attribute`` call: model, prompt, target and what is scored."""
        name, model_parts, model_bytes = self._model_identity()
        digest = hashlib.sha256()
        for part in (
            *model_parts,
            type(inp).__name__,
            getattr(inp, "inp_tensor", None) is not None and inp.inp_tensor.tolist(),
            inp.values,
            getattr(inp, "mask", None),  # which values move together: other features
            target_tokens.tolist(),
            self.attr_target,
            per_token,
            one_at_a_time,
        ):
            digest.update(repr(part).encode() + b"\x00")
        # A template or baselines given as functions: their code and state, not their
        # name (two lambdas share one) or their repr (an address, new every run).
        for part in (getattr(inp, "template", None), getattr(inp, "baselines", None)):
            if callable(part):
                digest_callable(digest, part)
            else:
                digest.update(repr(part).encode())
            digest.update(b"\x00")
        for chunk in model_bytes:
            digest.update(chunk)
        return f"llm:{name}:{digest.hexdigest()[:32]}"

    def _model_identity(self) -> tuple[str, tuple, list[bytes]]:
        """The model's name, what names it in a fingerprint, and bytes that tell it apart."""
        model = self.model
        config = getattr(model, "config", None)
        name = getattr(config, "_name_or_path", None) or type(model).__qualname__
        n_params = sum(p.numel() for p in model.parameters())
        # The weights themselves, sampled: evenly spaced entries of every tensor tell a
        # fine-tuned copy saved under the same name apart without hashing the whole
        # model (the first and last tensors alone missed an edit of any layer between).
        weights = []
        for tensor in model.parameters():
            flat = tensor.detach().reshape(-1)
            sample = flat[:: max(1, flat.numel() // _SAMPLED_WEIGHTS)]
            weights.append(sample.float().cpu().contiguous().numpy().tobytes())
        return name, (name, n_params), weights

    def _feature_names(self, inp: InterpretableInput) -> list[str]:
        """Readable names of the interpretable features: tokens, or template values."""
        if isinstance(inp, TextTokenInput):
            return _convert_ids_to_pretty_tokens(inp.itp_tensor[0], self.tokenizer)
        values = [str(v) for v in inp.values]
        if not inp.mask:
            return values
        names: list[list[str]] = [[] for _ in range(inp.n_itp_features)]
        for value, group in zip(values, inp.formatted_mask, strict=True):
            names[group].append(value)
        return [" ".join(group) for group in names]

    def _masked_prompts(
        self, inp: InterpretableInput, masks: np.ndarray | Tensor
    ) -> list[list[int]]:
        """Token ids of the prompt under each mask row."""
        masks = torch.as_tensor(np.ascontiguousarray(masks), dtype=torch.bool)
        if isinstance(inp, TextTokenInput):  # fixed length: Captum builds the whole batch
            return inp.to_model_input(masks.long()).tolist()
        return [
            self._format_model_input(inp.to_model_input(row[None]))["input_ids"][0].tolist()
            for row in masks
        ]

    def target_tokens(
        self,
        inp: InterpretableInput,
        target: str | Tensor | None = None,
        *,
        gen_args: dict[str, Any] | None = None,
    ) -> Tensor:
        """Token ids ``(T,)`` of the response to score, as :meth:`attribute` fixes them.

        Args:
            inp: The prompt (with every feature kept, for generation).
            target: The response as text (encoded without special tokens) or
                token ids; ``None``: what the model generates from the full prompt.
            gen_args: Generation options when ``target`` is ``None`` (Captum's
                defaults when not given); must be ``None`` otherwise.

        Returns:
            The target's token ids, on the CPU or the model's device.
        """
        if target is not None and gen_args is not None:
            raise ValueError("gen_args applies to generation only: pass target=None with it.")
        return self._get_target_tokens(inp, target, gen_args=gen_args)

    def log_probs(
        self,
        masks: np.ndarray,
        inp: InterpretableInput,
        target_tokens: Tensor | Sequence[int],
        *,
        batch_size: int = DEFAULT_PROMPTS_PER_EVAL,
        per_token: bool = False,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Log-probability of the target after each masked prompt, a batch per forward pass.

        The value function :meth:`attribute` explains with ProxySPEX and SPEX
        (the same left-padded batches), for callers that run an estimator,
        a metric or a baseline on it themselves.

        Args:
            masks: Boolean ``(k, n)``; ``True`` keeps a feature of ``inp``.
            inp: A ``TextTemplateInput`` or ``TextTokenInput``.
            target_tokens: The response's token ids (see :meth:`target_tokens`).
            batch_size: Masked prompts per forward pass.
            per_token: Also return each target token's log-probability.
            on_batch: Called with the number of prompts after each forward
                pass (a progress bar's ``update``).

        Returns:
            ``(k,)`` total log-probabilities of the target, or ``(k, 1 + T)``
            with ``per_token=True``: the total, then each token's.
        """
        target = torch.as_tensor(target_tokens, dtype=torch.long).reshape(-1).tolist()
        values = self.scorer.target_log_probs(
            self._masked_prompts(inp, masks), target, batch_size=batch_size, on_batch=on_batch
        )
        return values if per_token else values[:, 0]

    def next_token_log_probs(
        self,
        masks: np.ndarray,
        inp: InterpretableInput,
        token_ids: Sequence[int],
        *,
        batch_size: int = DEFAULT_PROMPTS_PER_EVAL,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """``(k, len(token_ids))``: log-probabilities of candidate next tokens per masked prompt.

        A value function for classification by prompting, e.g. the gap
        between ``" positive"`` and ``" negative"`` after a sentiment question.
        ``on_batch`` is called with the number of prompts after each forward pass.
        """
        return self.scorer.next_token_log_probs(
            self._masked_prompts(inp, masks),
            [int(i) for i in token_ids],
            batch_size=batch_size,
            on_batch=on_batch,
        )

    def _one_prompt_at_a_time(
        self,
        masks: np.ndarray,
        inp: InterpretableInput,
        target_tokens: Tensor,
        use_cached_outputs: bool,
        inspect: Any,
        bar: Any,
    ) -> Tensor:
        """``(k, 1)``: Captum's own forward (token by token), one masked prompt per call.

        ``inspect(prompt, response, [probability])`` is called here, not by Captum's
        forward: with one output per prompt (no per-token values) Captum's call
        indexed a 0-d tensor and failed after the prompt's forward pass.
        """
        values = []
        response = self.tokenizer.decode(target_tokens) if inspect is not None else ""
        for row in torch.as_tensor(np.ascontiguousarray(masks), dtype=torch.long):
            row = row[None].to(self.device)
            with torch.no_grad():
                value = self._forward_func(row, inp, target_tokens, use_cached_outputs, None, True)
            total = value.reshape(-1)[:1].float().cpu()
            values.append(total)
            if inspect is not None:
                prompt_ids = self._format_model_input(inp.to_model_input(row))["input_ids"][0]
                probability = total.exp() if self.attr_target == "log_prob" else total
                inspect(self.tokenizer.decode(prompt_ids), response, probability.tolist())
            if bar is not None:
                bar.update(1)
        return torch.stack(values)  # Captum's forward already applied attr_target
