"""A model's own attention heads as features: ablation, head games, pruning.

A mask keeps some heads and ablates the others; the value is the model's
performance on a task with only the kept heads. ProxySPEX on such a game
finds heads that only work together (a circuit: a positive Möbius
coefficient) and heads that back each other up (a negative one), and the
surrogate it fits predicts which *set* of ``k`` heads keeps the task working:
:func:`prune` searches it, where a marginal ranking keeps the top ``k``.

A head is ablated at the input of the attention's output projection
(``o_proj`` in Llama, SmolLM2, Qwen and Mistral; ``c_proj`` in GPT-2): its
slice (``head_dim`` wide, or the value heads' width where that differs) is set
to zero (``ablation="zero"``) or to its mean over a reference batch
(``"mean"``). Ablation uses forward pre-hooks that are always removed
afterwards; no weight is touched. ``L{i}`` names the ``i``-th attention module
in the model's order: the ``i``-th decoder layer when every layer has
attention (in a hybrid model, count only the attention layers).

Examples:
    >>> import torch
    >>> from transformers import LlamaConfig, LlamaForCausalLM
    >>> from proxyspex_captum import components
    >>> config = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32,
    ...                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
    >>> with torch.random.fork_rng():
    ...     _ = torch.manual_seed(0)
    ...     model = LlamaForCausalLM(config).eval()
    >>> [head.name for head in components.attention_heads(model)][:5]
    ['L0.H0', 'L0.H1', 'L0.H2', 'L0.H3', 'L1.H0']
    >>> ids = torch.tensor([[1, 5, 7, 3]])
    >>> def score(model, batch):  # log-probability of token 2 after the prompt
    ...     return model(batch).logits[:, -1].log_softmax(-1)[:, 2]
    >>> game = components.head_game(model, ids, score)
    >>> masks = torch.ones(2, 8, dtype=torch.bool)
    >>> masks[1, :4] = False  # ablate every head of layer 0
    >>> values = game(masks.numpy())
    >>> bool(values[0] != values[1]), game.n_features
    (True, 8)
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .core.checks import check_int
from .core.subset_search import best_subset
from .models import eval_mode

__all__ = [
    "ABLATIONS",
    "Head",
    "HeadGame",
    "NextTokenTask",
    "ablated",
    "attention_heads",
    "gradient_importance",
    "head_game",
    "head_means",
    "prune",
]

#: How an ablated head's output is replaced: by zeros, or by its mean over a reference batch.
ABLATIONS = ("zero", "mean")

ScoreFn = Callable[[Any, Any], Any]


@dataclass(frozen=True, order=True)
class Head:
    """One attention head: its layer (0 = nearest the input) and its index in the layer."""

    layer: int
    head: int

    @property
    def name(self) -> str:
        """``L{layer}.H{head}``, the head's feature name."""
        return f"L{self.layer}.H{self.head}"

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class _Site:
    """Where one layer's heads are ablated: the input of its attention output projection."""

    layer: int
    projection: torch.nn.Module
    n_heads: int
    head_dim: int


def _in_features(projection: torch.nn.Module) -> int | None:
    """The input width of a projection: ``nn.Linear``, a wrapper of one, or GPT-2's Conv1D."""
    width = getattr(projection, "in_features", None)
    if isinstance(width, int):  # nn.Linear, and wrappers that say it (LoRA, quantised layers)
        return width
    base = getattr(projection, "base_layer", None)  # PEFT's wrappers keep the layer they wrap
    if isinstance(base, torch.nn.Module):
        return _in_features(base)
    weight = getattr(projection, "weight", None)
    if type(projection).__name__ == "Conv1D" and isinstance(weight, torch.Tensor):
        return int(weight.shape[0])  # GPT-2's Conv1D keeps its weight as (in, out)
    return None


def _n_heads(module: torch.nn.Module) -> int | None:
    """The number of (query) heads an attention module says it has, if it says."""
    config = getattr(module, "config", None)
    for owner, name in (
        (module, "num_heads"),
        (module, "num_attention_heads"),
        (config, "num_attention_heads"),
    ):
        value = getattr(owner, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _sites(model: Any) -> list[_Site]:
    """The attention output projections of ``model``, in layer order.

    Llama-style attention modules (Llama, SmolLM2, Qwen, Mistral, ...) have
    ``o_proj`` and ``head_dim``; GPT-2's have ``c_proj``, ``head_dim`` and
    ``num_heads`` (its MLPs have a ``c_proj`` too, but no ``head_dim``). The
    projection may be wrapped (LoRA, a quantised layer). Each head's slice of
    its input is the width over the number of heads (the module's
    ``num_heads``, or its config's ``num_attention_heads``), which is wider
    than ``head_dim`` where the value heads are (MiMo's ``v_head_dim``).
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    sites = []
    for name, module in model.named_modules():
        head_dim = getattr(module, "head_dim", None)
        if not isinstance(head_dim, int) or getattr(module, "is_cross_attention", False):
            continue
        projection = getattr(module, "o_proj", None)
        if projection is None:
            projection = getattr(module, "c_proj", None)
            if projection is None or not hasattr(module, "num_heads"):
                continue
        width, n_heads = _in_features(projection), _n_heads(module)
        if n_heads is None and width is not None and width % head_dim == 0:
            n_heads = width // head_dim
        # An attention module whose heads cannot be told apart is an error, not skipped:
        # skipping renumbered every later layer and left its heads out without a word.
        if width is None or n_heads is None or width % n_heads:
            raise ValueError(
                f"Cannot split the attention output of {name or 'the model'} "
                f"({type(projection).__name__}, input width {width}) into heads "
                f"(head_dim {head_dim}, {n_heads} heads): psx.components needs an output "
                "projection with an integer in_features that its heads divide evenly."
            )
        sites.append(_Site(len(sites), projection, n_heads, width // n_heads))
    if not sites:
        raise ValueError(
            f"Found no attention heads in {type(model).__name__}. psx.components supports "
            "Llama-style decoders (Llama, SmolLM2, Qwen, Mistral: attention modules with "
            "`o_proj` and `head_dim`) and GPT-2 style ones (`c_proj`, `head_dim`, `num_heads`)."
        )
    return sites


def attention_heads(model: Any) -> list[Head]:
    """Every attention head of a Hugging Face decoder, layer by layer.

    Raises:
        ValueError: The architecture is not one this module knows how to ablate.
    """
    return [Head(site.layer, h) for site in _sites(model) for h in range(site.n_heads)]


def _check_heads(model: Any, heads: Sequence[Any] | None) -> tuple[list[_Site], list[Head]]:
    """The model's sites and the chosen heads (all by default), checked and de-duplicated."""
    sites = _sites(model)
    if heads is None:
        return sites, [Head(s.layer, h) for s in sites for h in range(s.n_heads)]
    chosen = []
    for item in heads:
        try:
            head = item if isinstance(item, Head) else Head(*item)
        except TypeError:
            raise TypeError(
                f"heads must hold Head objects or (layer, head) pairs, got {item!r}."
            ) from None
        layer = check_int("head layer", head.layer, 0, len(sites) - 1)
        check_int(f"head index in layer {layer}", head.head, 0, sites[layer].n_heads - 1)
        chosen.append(head)
    if len(set(chosen)) != len(chosen):
        raise ValueError("heads lists a head twice.")
    if not chosen:
        raise ValueError("heads is empty: choose at least one head.")
    return sites, chosen


# ---------------------------------------------------------------- forward passes
def _call_model(model: Any, inputs: Any) -> Any:
    """``model(**inputs)`` for a mapping of model arguments, else ``model(inputs)``."""
    return model(**inputs) if isinstance(inputs, Mapping) else model(inputs)


def _rows(batch: Any) -> int | None:
    """The batch size: of a tensor, or of a mapping's ``input_ids`` (else of its tensors).

    In a mapping, values that are not tensors (``use_cache=False``) are left
    out; ``None`` when the tensors disagree and there is no ``input_ids``.
    """
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.ndim else None
    if isinstance(batch, Mapping):
        ids = batch.get("input_ids")
        if isinstance(ids, torch.Tensor) and ids.ndim:
            return int(ids.shape[0])
        sizes = {int(v.shape[0]) for v in batch.values() if isinstance(v, torch.Tensor) and v.ndim}
        return sizes.pop() if len(sizes) == 1 else None
    return None


def _on_device(batch: Any, model: Any) -> Any:
    """``batch`` (a tensor, or a mapping of them) on the device of the model's parameters."""
    device = next(model.parameters()).device
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, Mapping):
        return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    return batch


def _tile(batch: Any, times: int) -> Any:
    """``batch`` repeated ``times`` over its first dimension (block after block).

    In a mapping only the tensors with the batch's rows are repeated; the rest
    (flags, a ``(1, T)`` ``position_ids``) broadcast as they are.
    """
    if times == 1:
        return batch
    if isinstance(batch, torch.Tensor):
        return batch.repeat(times, *([1] * (batch.ndim - 1)))
    rows = _rows(batch)
    return {
        key: _tile(value, times)
        if isinstance(value, torch.Tensor) and value.ndim and value.shape[0] == rows
        else value
        for key, value in batch.items()
    }


def head_means(model: Any, batch: Any) -> dict[int, torch.Tensor]:
    """Each head's mean output over a reference batch: ``{layer: (n_heads, head_dim)}``.

    The mean runs over every example and position of ``batch`` (the model's
    inputs: a tensor of token ids, or a mapping of keyword arguments); with an
    ``attention_mask`` in the mapping, padding positions are left out.
    """
    sites = _sites(model)
    weights = batch.get("attention_mask") if isinstance(batch, Mapping) else None
    sums: dict[int, torch.Tensor] = {}
    counts: dict[int, torch.Tensor] = {}

    def recorder(site: _Site) -> Callable:
        def hook(module: Any, args: tuple) -> None:
            x = args[0].detach().double().unflatten(-1, (site.n_heads, site.head_dim))
            w = torch.ones(x.shape[:-2], dtype=x.dtype, device=x.device)
            if weights is not None:
                w = weights.to(device=x.device, dtype=x.dtype).reshape(w.shape)
            sums[site.layer] = (x * w[..., None, None]).flatten(0, -3).sum(0)
            counts[site.layer] = w.sum()

        return hook

    with _model_lock(model), eval_mode(model), torch.no_grad(), _hooked(sites, recorder):
        _call_model(model, _on_device(batch, model))
    dtype = next(model.parameters()).dtype
    return {layer: (sums[layer] / counts[layer]).to(dtype) for layer in sums}


@contextmanager
def _hooked(sites: Sequence[_Site], make_hook: Callable[[_Site], Callable]) -> Iterator[None]:
    """Forward pre-hooks on the sites' projections, removed on exit (errors included)."""
    handles = []
    try:
        for site in sites:
            handles.append(site.projection.register_forward_pre_hook(make_hook(site)))
        yield
    finally:
        for handle in handles:
            handle.remove()


# One re-entrant lock per model: every entry point that hooks a model holds it,
# so two games (or two threads) never stack their hooks on the same model.
_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def _model_lock(model: Any) -> threading.RLock:
    with _LOCKS_GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.RLock()
        return lock


def _layer_keeps(
    sites: Sequence[_Site], heads: Sequence[Head], keep: np.ndarray
) -> dict[int, torch.Tensor]:
    """``keep`` over the chosen heads -> per touched layer, ``(rows, n_heads)`` booleans."""
    rows = keep.shape[0]
    out: dict[int, torch.Tensor] = {}
    for j, head in enumerate(heads):
        if head.layer not in out:
            out[head.layer] = torch.ones(rows, sites[head.layer].n_heads, dtype=torch.bool)
        out[head.layer][:, head.head] = torch.from_numpy(keep[:, j])
    # A layer whose chosen heads are all kept needs no hook.
    return {layer: k for layer, k in out.items() if not bool(k.all())}


def _ablating_hook(keep: torch.Tensor, fill: torch.Tensor | None) -> Callable[[_Site], Callable]:
    def make(site: _Site) -> Callable:
        def hook(module: Any, args: tuple) -> tuple:
            x = args[0]
            split = x.unflatten(-1, (site.n_heads, site.head_dim))
            rows = keep[site.layer].to(x.device)
            if x.shape[0] % rows.shape[0]:
                raise RuntimeError(
                    f"The batch has {x.shape[0]} rows, not a multiple of the {rows.shape[0]} "
                    "masks: with several masks, row block i of the batch belongs to mask i."
                )
            rows = rows.repeat_interleave(x.shape[0] // rows.shape[0], dim=0)
            rows = rows.view(x.shape[0], *([1] * (x.ndim - 2)), site.n_heads, 1)
            # torch.where, not a product: kept heads pass through bit for bit.
            replacement = (
                torch.zeros((), dtype=x.dtype, device=x.device)
                if fill is None
                else fill[site.layer].to(dtype=x.dtype, device=x.device)
            )
            return (torch.where(rows, split, replacement).flatten(-2), *args[1:])

        return hook

    return make


@contextmanager
def ablated(
    model: Any,
    heads: Sequence[Any] | None,
    keep: Any,
    *,
    ablation: str = "zero",
    means: Mapping[int, torch.Tensor] | None = None,
) -> Iterator[Any]:
    """A context in which ``model`` runs with the heads not kept ablated.

    Args:
        model: A Hugging Face decoder (see :func:`attention_heads`).
        heads: The heads ``keep`` refers to (``Head`` or ``(layer, head)``);
            ``None``: all of them. Heads outside ``heads`` are left alone.
        keep: Booleans, one per head in ``heads`` (``True`` = kept); or
            ``(k, len(heads))`` for ``k`` masks in one forward pass, where the
            batch is ``k`` blocks of equal size and block ``i`` runs under mask ``i``.
        ablation: ``"zero"`` or ``"mean"`` (replace by ``means``).
        means: For ``"mean"``: :func:`head_means` of a reference batch.

    Yields:
        The model. On exit, every hook is removed, even after an error.
    """
    if ablation not in ABLATIONS:
        raise ValueError(f"ablation must be one of {ABLATIONS}, got {ablation!r}.")
    sites, heads = _check_heads(model, heads)
    keep = np.asarray(keep)
    if keep.dtype != bool:
        raise TypeError(f"keep must be booleans, got dtype {keep.dtype}.")
    if keep.ndim == 1:
        keep = keep[None]
    if keep.ndim != 2 or keep.shape[1] != len(heads):
        raise ValueError(f"keep must have {len(heads)} booleans per mask, got shape {keep.shape}.")
    if ablation == "mean":
        if means is None:
            raise ValueError("Mean ablation needs means=head_means(model, reference_batch).")
        for layer in sorted({h.layer for h in heads}):
            mean = means.get(layer)
            shape = (sites[layer].n_heads, sites[layer].head_dim)
            if mean is None:
                raise ValueError(f"means lacks layer {layer}: use head_means(model, batch).")
            if tuple(mean.shape) != shape or not bool(torch.isfinite(mean).all()):
                raise ValueError(
                    f"means[{layer}] must be finite with shape {shape} (n_heads, head_dim), "
                    f"got {tuple(mean.shape)}: use head_means(model, batch) of this model."
                )
    layer_keeps = _layer_keeps(sites, heads, keep)
    touched = [sites[layer] for layer in sorted(layer_keeps)]
    fill = None if ablation == "zero" else means
    with _model_lock(model), _hooked(touched, _ablating_hook(layer_keeps, fill)):
        yield model


# ---------------------------------------------------------------- the game
class HeadGame:
    """Masks over attention heads -> the task score with only the kept heads.

    Build one with :func:`head_game`. Calls are serialised by a lock of the
    model's (shared with :func:`ablated`, :func:`head_means` and
    :func:`gradient_importance`): the hooks live on the one model.

    Attributes:
        heads: The features, in order.
        feature_names: ``L{layer}.H{head}`` for each.
        n_features: ``len(heads)``.
        full_value: The score with every head kept.
        per_example: Whether ``score_fn`` returns one score per example (so
            several masks can share a forward pass).
    """

    def __init__(
        self,
        model: Any,
        batch: Any,
        score_fn: ScoreFn,
        *,
        heads: Sequence[Any] | None = None,
        ablation: str = "zero",
        mean_batch: Any = None,
        masks_per_pass: int = 1,
    ) -> None:
        if not callable(score_fn):
            raise TypeError("score_fn must be a callable score_fn(model, batch).")
        if ablation not in ABLATIONS:
            raise ValueError(f"ablation must be one of {ABLATIONS}, got {ablation!r}.")
        if mean_batch is not None and ablation != "mean":
            raise ValueError(
                f"mean_batch is the reference of mean ablation, but ablation={ablation!r}: "
                "pass ablation='mean', or leave mean_batch out."
            )
        self.model = model
        self.batch = batch
        self.score_fn = score_fn
        self.ablation = ablation
        self.masks_per_pass = check_int("masks_per_pass", masks_per_pass, 1)
        self._sites, self.heads = _check_heads(model, heads)
        self.feature_names = [head.name for head in self.heads]
        self.n_features = len(self.heads)
        # One call on the intact model checks score_fn before any mask is paid for.
        with _model_lock(model), eval_mode(model), torch.no_grad():
            scores = _check_scores(score_fn(model, batch), "score_fn(model, batch)")
        self._rows = _rows(batch)
        self.per_example = scores.ndim == 1 and scores.shape[0] == self._rows
        if scores.ndim == 1 and not self.per_example:
            raise ValueError(
                f"score_fn returned {scores.shape[0]} values for a batch of {self._rows} "
                "examples: return one number, or one per example."
            )
        if self.masks_per_pass > 1 and not self.per_example:
            raise ValueError(
                "masks_per_pass > 1 needs score_fn to return one score per example of a batch "
                "given as a tensor or a mapping of tensors (the batch is repeated once per mask)."
            )
        self.full_value = float(scores.mean())
        self.means = None
        if ablation == "mean":
            self.means = head_means(model, batch if mean_batch is None else mean_batch)

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        masks = np.asarray(masks, dtype=bool)
        if masks.ndim != 2 or masks.shape[1] != self.n_features:
            raise ValueError(f"masks must have shape (k, {self.n_features}), got {masks.shape}.")
        out = np.empty(len(masks))
        step = self.masks_per_pass
        with _model_lock(self.model), eval_mode(self.model), torch.no_grad():
            for start in range(0, len(masks), step):
                block = masks[start : start + step]
                with ablated(
                    self.model, self.heads, block, ablation=self.ablation, means=self.means
                ):
                    scores = self.score_fn(self.model, _tile(self.batch, len(block)))
                scores = _check_scores(scores, "score_fn(model, batch)")
                if not self.per_example:  # one number for the batch (one mask per pass)
                    out[start] = float(scores.mean())
                    continue
                rows = len(block) * self._rows
                if scores.shape != (rows,):  # reshaped, they would be read as other masks'
                    raise ValueError(
                        f"score_fn returned {scores.size} scores for a batch of {rows} rows "
                        f"({len(block)} mask(s) × {self._rows} examples): return one score "
                        "per row of the batch it is given."
                    )
                out[start : start + len(block)] = scores.reshape(len(block), -1).mean(axis=-1)
        return out

    @property
    def layer_grid(self) -> tuple[int, int]:
        """``(n_layers, most heads in a layer)``: the shape of a layer × head map."""
        return len(self._sites), max(site.n_heads for site in self._sites)


def _check_scores(scores: Any, what: str) -> np.ndarray:
    """``scores`` as a float array (a number, or one per example); finite and real."""
    if isinstance(scores, torch.Tensor):
        scores = scores.detach().cpu()
        if scores.is_complex():
            raise TypeError(f"{what} returned complex values; return real scores.")
        scores = scores.double().numpy()
    array = np.asarray(scores)
    if np.iscomplexobj(array):
        raise TypeError(f"{what} returned complex values; return real scores.")
    try:
        array = array.astype(float)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{what} must return a number or a 1-D tensor, got {scores!r}.") from err
    if array.ndim > 1 or array.size == 0:
        raise ValueError(
            f"{what} must return a number or one per example, got shape {array.shape}."
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} returned NaN or infinite scores: {array}.")
    return array


def head_game(
    model: Any,
    batch: Any,
    score_fn: ScoreFn,
    *,
    heads: Sequence[Any] | None = None,
    ablation: str = "zero",
    mean_batch: Any = None,
    masks_per_pass: int = 1,
) -> HeadGame:
    """A value function over attention heads: ``masks -> score_fn`` under each ablation.

    Args:
        model: A Hugging Face decoder (see :func:`attention_heads`).
        batch: What ``score_fn`` takes (and :func:`head_means` runs the model
            on for mean ablation): token ids, or a mapping of model arguments.
        score_fn: ``score_fn(model, batch)``: a number, or one per example of
            the batch (the value is then their mean), e.g. the log-probability
            of the right answers (:class:`NextTokenTask`). Called once on the
            intact model when the game is built, as a check.
        heads: The heads that are features (``Head`` or ``(layer, head)``);
            default: every head. The others always stay.
        ablation: ``"zero"`` or ``"mean"``.
        mean_batch: The reference batch of mean ablation (default: ``batch``).
        masks_per_pass: Masks evaluated in one forward pass, the batch
            repeated once per mask (needs per-example scores). Faster on a
            GPU; the values equal one mask per pass up to float rounding.

    Returns:
        A :class:`HeadGame`: ``game(masks)`` with boolean masks ``(k, n_heads)``.
    """
    return HeadGame(
        model,
        batch,
        score_fn,
        heads=heads,
        ablation=ablation,
        mean_batch=mean_batch,
        masks_per_pass=masks_per_pass,
    )


# ---------------------------------------------------------------- a task
class NextTokenTask:
    """Prompts and the next token that answers each: a head game's batch and score.

    The score of a prompt is the log-probability of its answer's first token
    after it. Prompts are padded on the right, so every prompt keeps its own
    positions; only the last position of each gets the output layer (after a
    first call that checks this gives the model's own logits; a model that
    rescales its logits afterwards always runs whole).

    Args:
        tokenizer: The model's tokenizer.
        prompts: The prompts (no chat template is added).
        answers: One answer per prompt, starting with the space it follows
            (``" Paris"``); only its first token is scored.

    Attributes:
        batch: The model's inputs (``input_ids``, ``attention_mask``).
        answer_ids: The scored token of each answer.

    Use it as ``head_game(model, task.batch, task)``.
    """

    def __init__(self, tokenizer: Any, prompts: Sequence[str], answers: Sequence[str]) -> None:
        if isinstance(prompts, str) or isinstance(answers, str):
            raise TypeError("prompts and answers must be sequences of strings, not one string.")
        if len(prompts) != len(answers) or not prompts:
            raise ValueError(
                f"Give one answer per prompt (got {len(prompts)} prompts, {len(answers)} answers)."
            )
        ids = [_prompt_ids(tokenizer, p) for p in prompts]
        answer_ids = [tokenizer(a, add_special_tokens=False)["input_ids"] for a in answers]
        for prompt, tokens, answer in zip(prompts, ids, answer_ids, strict=True):
            if not tokens or not answer:
                raise ValueError(f"Prompt {prompt!r} or its answer tokenizes to nothing.")
            if not tokenizer.decode(answer[:1]).strip():
                raise ValueError(
                    f"The answer to {prompt!r} starts with a token that is only whitespace "
                    f"({tokenizer.decode(answer[:1])!r}), so every answer would score it: "
                    "write the answer without its leading space, or pick another answer."
                )
        width = max(len(t) for t in ids)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        input_ids = torch.full((len(ids), width), pad, dtype=torch.long)
        attention = torch.zeros((len(ids), width), dtype=torch.long)
        for i, tokens in enumerate(ids):
            input_ids[i, : len(tokens)] = torch.tensor(tokens)
            attention[i, : len(tokens)] = 1
        self.prompts = list(prompts)
        self.answers = list(answers)
        self.batch = {"input_ids": input_ids, "attention_mask": attention}
        self.answer_ids = torch.tensor([a[0] for a in answer_ids])
        self._last = torch.tensor([len(t) - 1 for t in ids])
        # Per model: whether the output layer alone gives the model's logits (it does not
        # where the model rescales or soft-caps them after it, as Gemma 2 does).
        self._shortcut: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def logits(self, model: Any, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Next-token logits at each prompt's last position, ``(rows, vocab)``."""
        batch = _on_device(batch, model)  # the task's batch is built on the CPU
        rows = batch["input_ids"].shape[0]
        if rows % len(self.prompts):
            raise ValueError(
                f"A batch of {rows} rows does not repeat the {len(self.prompts)} prompts."
            )
        last = self._last.repeat(rows // len(self.prompts)).to(batch["input_ids"].device)
        index = torch.arange(rows, device=last.device)
        base, head = getattr(model, "base_model", None), model.get_output_embeddings()
        if base is None or base is model or head is None or self._shortcut.get(model) is False:
            return model(**batch).logits[index, last]
        # The output layer only where it is read: the vocabulary is a fifth of SmolLM2's work.
        logits = head(base(**batch).last_hidden_state[index, last])
        if model not in self._shortcut:  # checked once against the model's own logits
            full = model(**batch).logits[index, last]
            self._shortcut[model] = bool(torch.allclose(logits, full, rtol=1e-4, atol=1e-4))
            return full
        return logits

    def __call__(self, model: Any, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Log-probability of each prompt's answer token, ``(rows,)``."""
        logits = self.logits(model, batch)
        answers = self.answer_ids.repeat(len(logits) // len(self.prompts)).to(logits.device)
        return logits.float().log_softmax(-1)[torch.arange(len(logits)), answers]

    def accuracy(self, model: Any) -> float:
        """Share of prompts whose most likely next token is the answer's."""
        with eval_mode(model), torch.no_grad():
            logits = self.logits(model, self.batch)
        return float((logits.argmax(-1).cpu() == self.answer_ids).double().mean())


def _prompt_ids(tokenizer: Any, prompt: str) -> list[int]:
    """The prompt's tokens, after the BOS token where the tokenizer adds one (Llama).

    Only a leading BOS is kept of the special tokens: a tokenizer that also
    appends one (an end-of-sequence mark) would make it the last position.
    """
    plain = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is not None and plain[:1] != [bos] and tokenizer(prompt)["input_ids"][:1] == [bos]:
        return [bos, *plain]
    return plain


# ---------------------------------------------------------------- marginal baseline
def gradient_importance(
    model: Any, batch: Any, score_fn: ScoreFn, *, heads: Sequence[Any] | None = None
) -> np.ndarray:
    """Gradient head importance (Michel et al., 2019): ``E |∂ score / ∂ξ_h|``.

    Each head's output is multiplied by a gate ``ξ_h = 1``; the importance is
    the absolute gradient of the score with respect to the gate, averaged
    over the examples when ``score_fn`` returns one score per example (else
    of the single score). One forward and one backward pass; the model's
    parameters get no ``.grad``.

    Returns:
        ``(len(heads),)`` importances, in the order of ``heads`` (all by default).
    """
    sites, heads = _check_heads(model, heads)
    # Per-example gates: row i's gradient is example i's alone (rows do not mix). A
    # batch of unknown size gets one shared gate row.
    rows = _rows(batch) or 1
    layers = sorted({h.layer for h in heads})
    gates = {
        layer: torch.ones(rows, sites[layer].n_heads, dtype=torch.float64, requires_grad=True)
        for layer in layers
    }

    def make(site: _Site) -> Callable:
        def hook(module: Any, args: tuple) -> tuple:
            x = args[0]
            gate = gates[site.layer].to(dtype=x.dtype, device=x.device)
            # One gate row per example (a single row, broadcast, for a batch of unknown size).
            gate = gate.view(gate.shape[0], *([1] * (x.ndim - 2)), site.n_heads, 1)
            split = x.unflatten(-1, (site.n_heads, site.head_dim)) * gate
            return (split.flatten(-2), *args[1:])

        return hook

    hooks = _hooked([sites[layer] for layer in layers], make)
    # enable_grad: a caller inside torch.no_grad() still gets gradients.
    with _model_lock(model), eval_mode(model), torch.enable_grad(), hooks:
        scores = score_fn(model, batch)
        if not isinstance(scores, torch.Tensor) or not scores.requires_grad:
            raise TypeError(
                "score_fn must return a tensor that depends on the model's outputs (no "
                "torch.no_grad inside) for gradient importance."
            )
        checked = _check_scores(scores, "score_fn(model, batch)")
        if checked.ndim == 1 and checked.shape[0] != rows:
            raise ValueError(
                f"score_fn returned {checked.shape[0]} values for a batch of {rows} examples: "
                "return one number, or one per example."
            )
        grads = torch.autograd.grad(scores.sum(), [gates[layer] for layer in layers])
    by_layer = dict(zip(layers, grads, strict=True))
    per_example = checked.ndim == 1
    values = []
    for head in heads:
        g = by_layer[head.layer][:, head.head]
        values.append(float(g.abs().mean()) if per_example else abs(float(g.sum())))
    return np.array(values)


# ---------------------------------------------------------------- pruning
def prune(interactions: Any, keep: int, *, maximize: bool = True) -> np.ndarray:
    """The ``keep`` heads (features) whose set the surrogate scores best.

    Unlike keeping the top ``keep`` of a marginal ranking, this searches the
    fitted sparse polynomial itself, so heads that only work together are
    kept together and heads that back each other up are not both spent. The
    search is exact when there are at most 100,000 subsets of that size, else
    a heuristic: greedy removal followed by swaps (see ``core.subset_search``).

    Args:
        interactions: A surrogate over the heads (``explain`` of a head game).
        keep: How many heads to keep.
        maximize: Keep the set with the highest predicted score (``False``:
            lowest, for a loss).

    Returns:
        The kept features' indices, sorted.
    """
    return best_subset(interactions, keep, maximize=maximize)
