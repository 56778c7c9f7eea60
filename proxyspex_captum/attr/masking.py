"""Captum's arguments, checked and turned into one value function per example.

Captum describes a perturbation by ``inputs``, ``baselines``, a ``feature_mask``
of integer feature ids, ``target`` and ``additional_forward_args``. Everything
here follows Captum's meaning of those arguments (as ``Lime``/``KernelShap``
read them) but checks them up front, with messages that say what to change,
so that no model call is spent on arguments that cannot work.
"""

from __future__ import annotations

import functools
import hashlib
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from captum._utils.common import (
    _expand_additional_forward_args,
    _expand_target,
    _format_additional_forward_args,
    _format_output,
    _format_tensor_into_tuples,
    _is_tuple,
    _run_forward,
    _select_targets,
)
from captum._utils.typing import BaselineType, TargetType
from captum.attr._utils.common import _construct_default_feature_mask, _format_input_baseline
from torch import Tensor

__all__ = [
    "CaptumProblem",
    "MaskedForward",
    "digest_callable",
    "fingerprint",
    "prepare",
    "select_target",
]


@dataclass
class CaptumProblem:
    """Captum's arguments after formatting and checking.

    Attributes:
        inputs: The input tensors, each with the batch on dimension 0.
        baselines: One scalar or tensor per input.
        feature_mask: One integer id tensor per input, broadcastable to it.
        n_features: Number of interpretable features (ids ``0 .. n-1``).
        target: As given to ``attribute``.
        additional_forward_args: As given to ``attribute``.
        is_inputs_tuple: Whether ``inputs`` came as a tuple (outputs follow).
        whole_batch: The forward function returns one scalar for the whole
            batch, so the batch is explained as a single example (as in Captum).
    """

    inputs: tuple[Tensor, ...]
    baselines: tuple[Tensor | int | float, ...]
    feature_mask: tuple[Tensor, ...]
    n_features: int
    target: TargetType
    additional_forward_args: Any
    is_inputs_tuple: bool
    whole_batch: bool = False

    @property
    def batch_size(self) -> int:
        return int(self.inputs[0].shape[0])

    @property
    def n_examples(self) -> int:
        return 1 if self.whole_batch else self.batch_size

    def examples(self) -> Iterator[CaptumProblem]:
        """One problem per example (the batch itself when ``whole_batch``)."""
        if self.whole_batch or self.batch_size == 1:
            yield self
            return
        bsz = self.batch_size
        for i in range(bsz):
            yield CaptumProblem(
                inputs=_select_example(self.inputs, i, bsz),
                baselines=_select_example(self.baselines, i, bsz),
                feature_mask=_select_example(self.feature_mask, i, bsz),
                n_features=self.n_features,
                target=_select_example(self.target, i, bsz),
                additional_forward_args=_select_example(self.additional_forward_args, i, bsz),
                is_inputs_tuple=self.is_inputs_tuple,
            )

    def to_input_shape(self, values: Tensor) -> Tensor | tuple[Tensor, ...]:
        """Spread per-example feature values ``(n_examples, n)`` over the inputs' elements.

        Matches ``Lime``/``KernelShap`` with ``return_input_shape=True``: every
        element gets its feature's value, one row per example, or a single row
        when the whole batch was explained as one.
        """
        n_rows = values.shape[0]
        out = []
        for inp, mask in zip(self.inputs, self.feature_mask, strict=True):
            ids = mask.reshape(mask.shape[0], -1).long()
            if ids.shape[0] != n_rows:  # one mask for all examples (Captum reads row 0)
                ids = ids[:1].expand(n_rows, -1)
            spread = torch.gather(values.float().to(inp.device), 1, ids)
            spread = spread.reshape(n_rows, *mask.shape[1:])
            shape = (n_rows, *inp.shape[1:])
            out.append(torch.zeros(shape, dtype=torch.float, device=inp.device) + spread)
        return _format_output(self.is_inputs_tuple, tuple(out))


def prepare(
    forward_func: Callable[..., Any],
    inputs: Tensor | tuple[Tensor, ...],
    baselines: BaselineType,
    target: TargetType,
    additional_forward_args: Any,
    feature_mask: Tensor | tuple[Tensor, ...] | None,
) -> CaptumProblem:
    """Format and check Captum-style arguments (no model call).

    Raises:
        TypeError, ValueError: With a message that says what to change.
    """
    is_inputs_tuple = _is_tuple(inputs)
    if not isinstance(inputs, (Tensor, tuple)) or (
        isinstance(inputs, tuple) and not all(isinstance(t, Tensor) for t in inputs)
    ):
        raise TypeError(
            f"inputs must be a tensor or a tuple of tensors, got {type(inputs).__name__}."
        )
    if isinstance(inputs, tuple) and not inputs:
        raise ValueError("inputs is an empty tuple; pass at least one tensor.")
    formatted, formatted_baselines = _format_input_baseline(inputs, baselines)
    bsz = formatted[0].shape[0] if formatted[0].dim() else 0
    for j, inp in enumerate(formatted):
        if inp.dim() == 0:
            raise ValueError(
                f"inputs[{j}] is a 0-d tensor; Captum inputs have the batch on dimension 0 "
                f"(use x.reshape(1, -1) for one example)."
            )
        if inp.shape[0] != bsz:
            raise ValueError(
                f"All inputs must share the batch size: inputs[0] has {bsz} rows, "
                f"inputs[{j}] has {inp.shape[0]}."
            )
    if bsz == 0:
        raise ValueError("inputs has an empty batch (0 examples); pass at least one example.")
    if len(formatted_baselines) != len(formatted):
        raise ValueError(
            f"Got {len(formatted_baselines)} baselines for {len(formatted)} inputs; "
            "pass one baseline (a number or a tensor) per input tensor."
        )
    formatted_baselines = tuple(
        _with_leading_ones(base, inp) if isinstance(base, Tensor) else base
        for base, inp in zip(formatted_baselines, formatted, strict=True)
    )
    for j, (inp, base) in enumerate(zip(formatted, formatted_baselines, strict=True)):
        if isinstance(base, Tensor):
            _check_broadcast(f"baselines[{j}]", base, inp, "baseline")

    if feature_mask is None:
        masks, n_features = _construct_default_feature_mask(formatted)
    else:
        masks = _format_tensor_into_tuples(feature_mask)
        masks = tuple(_with_leading_ones(m, inp) for m, inp in zip(masks, formatted, strict=False))
        if len(masks) != len(formatted):
            raise ValueError(
                f"Got {len(masks)} feature masks for {len(formatted)} inputs; pass one "
                "integer id tensor per input (ids may be shared across tensors)."
            )
        for j, (mask, inp) in enumerate(zip(masks, formatted, strict=True)):
            if mask.dtype.is_floating_point or mask.dtype.is_complex or mask.dtype == torch.bool:
                raise TypeError(
                    f"feature_mask[{j}] must hold integer feature ids, got dtype {mask.dtype}."
                )
            _check_broadcast(f"feature_mask[{j}]", mask, inp, "feature mask")
        n_features = _check_feature_ids(masks)
    return CaptumProblem(
        inputs=formatted,
        baselines=formatted_baselines,
        # int64: smaller integer types are not valid indices (uint8 would read as a bool mask)
        feature_mask=tuple(
            m.to(inp.device).long() for m, inp in zip(masks, formatted, strict=True)
        ),
        n_features=n_features,
        target=target,
        additional_forward_args=_format_additional_forward_args(additional_forward_args),
        is_inputs_tuple=is_inputs_tuple,
    )


def _with_leading_ones(tensor: Tensor, inp: Tensor) -> Tensor:
    """Pad the shape with leading 1s: Captum broadcasts a (H, W) mask over (B, C, H, W)."""
    missing = inp.dim() - tensor.dim()
    return tensor.reshape((1,) * missing + tuple(tensor.shape)) if missing > 0 else tensor


def _check_broadcast(name: str, tensor: Tensor, inp: Tensor, what: str) -> None:
    """A baseline or mask must match its input's shape, with 1s allowed for broadcasting."""
    bsz = inp.shape[0]
    ok = tensor.dim() == inp.dim() and tensor.shape[0] in (1, bsz)
    if ok:
        try:
            ok = torch.broadcast_shapes(tensor.shape[1:], inp.shape[1:]) == inp.shape[1:]
        except RuntimeError:
            ok = False
    if not ok:
        raise ValueError(
            f"{name} has shape {tuple(tensor.shape)}, which does not fit the input's shape "
            f"{tuple(inp.shape)}: a {what} must broadcast to the input (sizes compared from "
            f"the right, each equal or 1; the batch dimension 1 or {bsz})."
        )


def _check_feature_ids(masks: tuple[Tensor, ...]) -> int:
    """The feature ids must be exactly ``0 .. n-1``; return ``n``."""
    ids = torch.unique(torch.cat([m.reshape(-1) for m in masks]).cpu())
    if ids.numel() == 0:
        raise ValueError("feature_mask is empty: there are no features to attribute.")
    n_features = int(ids.max()) + 1
    if int(ids.min()) < 0 or ids.numel() != n_features:
        present = set(ids.tolist())
        missing = [i for i in range(n_features) if i not in present][:10]
        raise ValueError(
            "feature_mask ids must be 0, 1, ..., n-1 with no gaps, so that every id is a "
            f"feature of the result; got ids from {int(ids.min())} to {int(ids.max())}"
            f"{f' without {missing}' if missing else ''}. Renumber them, e.g. with "
            "`torch.unique(mask, return_inverse=True)[1]` over all masks together."
        )
    return n_features


class MaskedForward:
    """The value function of one example: boolean masks -> model outputs.

    A mask keeps feature ``i`` where it is True; every element whose id is a
    dropped feature takes its baseline. Masks go to the model
    ``perturbations_per_eval`` at a time, stacked on the batch dimension with
    ``target`` and ``additional_forward_args`` expanded to match, exactly as
    Captum's perturbation methods do.

    Args:
        forward_func: The model or function.
        problem: One example (or the whole batch when ``problem.whole_batch``).
        perturbations_per_eval: Masks per forward call.
        on_batch: Called with the number of masks after every forward call
            (progress reporting).
    """

    def __init__(
        self,
        forward_func: Callable[..., Any],
        problem: CaptumProblem,
        *,
        perturbations_per_eval: int = 1,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.forward_func = forward_func
        self.problem = problem
        self.perturbations_per_eval = 1 if problem.whole_batch else perturbations_per_eval
        self.on_batch = on_batch

    def _perturbed(self, keep: Tensor) -> tuple[Tensor, ...]:
        """Inputs for a ``(c, n)`` boolean keep matrix, ``c`` copies stacked on dimension 0."""
        p = self.problem
        out = []
        for inp, base, mask in zip(p.inputs, p.baselines, p.feature_mask, strict=True):
            kept = keep[:, mask]  # (c, *mask.shape): broadcasts against (1, *input.shape)
            if isinstance(base, Tensor):
                base = base.to(inp.device)
            rows = torch.where(kept, inp.unsqueeze(0), base)
            out.append(rows.reshape(-1, *inp.shape[1:]))
        return tuple(out)

    def __call__(self, masks: np.ndarray) -> Tensor:
        p = self.problem
        device = p.inputs[0].device
        keep_all = torch.as_tensor(np.ascontiguousarray(masks), dtype=torch.bool, device=device)
        step = self.perturbations_per_eval
        values = []
        with torch.no_grad():
            for start in range(0, keep_all.shape[0], step):
                keep = keep_all[start : start + step]
                c = keep.shape[0]
                if p.whole_batch:
                    target, args = p.target, p.additional_forward_args
                else:
                    target = _expand_target(p.target, c)
                    args = _expand_additional_forward_args(p.additional_forward_args, c)
                # The model's output first, then the target: a target that does not fit
                # the output is reported as such, not as an IndexError from deep in Captum.
                out = _run_forward(self.forward_func, self._perturbed(keep), None, args)
                values.append(self._check(select_target(out, target), c))
                if self.on_batch is not None:
                    self.on_batch(c)
        return torch.cat(values)

    def _check(self, out: Any, c: int) -> Tensor:
        out = torch.as_tensor(out)
        if out.numel() != c:
            raise ValueError(
                f"forward_func returned shape {tuple(out.shape)} for {c} perturbed "
                f"input(s); it must return one number per input. For a model with several "
                "outputs per example, pass target= to pick one."
            )
        return out.detach().reshape(c)


def select_target(output: Any, target: TargetType) -> Tensor:
    """Captum's target selection, with a clear error when the target does not fit the output.

    Raises:
        ValueError: ``target`` indexes past the output (or has the wrong form for it).
    """
    output = torch.as_tensor(output)
    if target is None:
        return output
    try:
        return _select_targets(output, target)
    except (IndexError, RuntimeError, AssertionError) as err:
        shown = target.tolist() if isinstance(target, Tensor) else target
        raise ValueError(
            f"target={shown!r} does not fit the model's output of shape "
            f"{tuple(output.shape)} (batch first): an int selects along the last "
            f"dimension (0 .. {output.shape[-1] - 1 if output.dim() else 0}), a list or "
            f"tensor gives one index per example. ({type(err).__name__}: {err})"
        ) from err


def detect_whole_batch(forward_func: Callable[..., Any], problem: CaptumProblem) -> bool:
    """Whether ``forward_func`` returns one scalar for the whole batch (Captum's test call).

    Captum's Lime makes the same unperturbed call when the batch has more than
    one example: one output per example means "explain each", one output for
    the batch means "explain the batch as a whole".
    """
    if problem.batch_size == 1:
        return False
    out = select_target(
        _run_forward(forward_func, problem.inputs, None, problem.additional_forward_args),
        problem.target,
    )
    if out.numel() == problem.batch_size:
        return False
    if out.numel() == 1:
        return True
    raise ValueError(
        f"forward_func returned shape {tuple(out.shape)} for a batch of {problem.batch_size} "
        "examples; it must return one number per example (pass target= for a multi-output "
        "model) or one number for the whole batch."
    )


def fingerprint(forward_func: Callable[..., Any], problem: CaptumProblem) -> str:
    """A digest naming the values of ``forward_func`` on ``problem`` (for ``cache=``).

    It covers the model (its class and every parameter and buffer, when it is
    a ``torch.nn.Module`` or a method of one; for a function, its name, its
    code, and the modules and tensors it reaches through its closure, default
    arguments, ``functools.partial`` arguments or the globals it names) and
    every argument that changes a value: inputs, baselines, feature mask,
    target and additional arguments. The estimator, its budget and seed
    are left out on purpose, so that runs with other methods share the values.
    """
    digest = hashlib.sha256()
    owner = getattr(forward_func, "__self__", forward_func)
    kind = type(owner) if isinstance(owner, torch.nn.Module) else forward_func
    name = f"{getattr(kind, '__module__', '')}.{getattr(kind, '__qualname__', repr(kind))}"
    digest.update(name.encode())
    digest_callable(digest, forward_func)
    for part in (
        problem.inputs,
        problem.baselines,
        problem.feature_mask,
        problem.target,
        problem.additional_forward_args,
    ):
        _update(digest, part)
    return f"captum:{name}:{digest.hexdigest()[:32]}"


def digest_callable(digest: Any, func: Any, depth: int = 0) -> None:
    """Add what decides ``func``'s values to ``digest``: a module's weights, a function's code
    and state (``digest``: a ``hashlib`` object).

    A function that wraps a model (``lambda x: model(x)[:, 0]``, the usual way
    to pick a column for Captum) was named by its qualified name alone, so two
    models behind the same wrapper shared one cache file's values. Objects
    other than modules, tensors, arrays, functions and plain constants are left
    out: their ``repr`` may hold a memory address, and a digest that changed
    every run would never find its values again.
    """
    if depth > 4:  # wrappers of wrappers: deep enough for any real forward function
        return
    owner = getattr(func, "__self__", None)
    if isinstance(func, torch.nn.Module) or isinstance(owner, torch.nn.Module):
        module = func if isinstance(func, torch.nn.Module) else owner
        for key, tensor in module.state_dict().items():
            digest.update(key.encode())
            _update(digest, tensor)
        return
    if isinstance(func, functools.partial):
        digest_callable(digest, func.func, depth + 1)
        for value in (*func.args, *func.keywords.items()):
            _update_state(digest, value, depth)
        return
    func = getattr(func, "__func__", func)  # a bound method of another object
    if not isinstance(func, types.FunctionType):
        return
    _update_code(digest, func.__code__)
    cells = [cell.cell_contents for cell in func.__closure__ or () if _has_contents(cell)]
    named = [func.__globals__[g] for g in func.__code__.co_names if g in func.__globals__]
    for value in (*cells, *(func.__defaults__ or ()), *named):
        _update_state(digest, value, depth)


def _update_code(digest: Any, code: types.CodeType) -> None:
    """A function's code, less what changes with edits elsewhere or from run to run.

    Its bytecode, names and constants, but not its file name or line numbers (an
    edit above it keeps the fingerprint), and set constants in sorted order (a
    frozenset's order follows string hashing, which Python seeds per process).
    """
    digest.update(code.co_code)
    digest.update(repr(code.co_names).encode())
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):  # a nested function or comprehension
            _update_code(digest, constant)
        elif isinstance(constant, frozenset):
            digest.update(repr(sorted(map(repr, constant))).encode())
        else:
            digest.update(repr(constant).encode())


def _has_contents(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018 (an empty cell raises)
    except ValueError:
        return False
    return True


def _update_state(digest: Any, value: Any, depth: int) -> None:
    """One value a forward function reaches, when it can change the function's output."""
    if isinstance(value, Tensor | np.ndarray | int | float | str | bool | type(None)):
        _update(digest, value)
    elif isinstance(value, tuple | list):
        for item in value:
            _update_state(digest, item, depth)
    elif isinstance(value, torch.nn.Module | types.FunctionType | types.MethodType):
        digest_callable(digest, value, depth + 1)
    elif isinstance(value, functools.partial):
        digest_callable(digest, value, depth + 1)


def _select_example(value: Any, index: int, bsz: int) -> Any:
    """Example ``index``'s part of a batched argument (as Captum's ``_select_example``).

    A tensor or list of ``bsz`` rows gives its row ``index``; anything else,
    a 0-d tensor included, is shared by every example (Captum's calls ``len``
    on a 0-d tensor: ``target=torch.tensor(1)`` failed on a batch of two).
    """
    if value is None:
        return None
    parts = value if isinstance(value, tuple) else (value,)
    picked = tuple(
        part[index : index + 1]
        if (isinstance(part, list) or (isinstance(part, Tensor) and part.dim() > 0))
        and len(part) == bsz
        else part
        for part in parts
    )
    return picked if isinstance(value, tuple) else picked[0]


def _update(digest: Any, value: Any) -> None:
    if isinstance(value, Tensor):
        flat = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"tensor{tuple(value.shape)}{value.dtype}".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    elif isinstance(value, (tuple, list)):
        digest.update(f"seq{len(value)}".encode())
        for item in value:
            _update(digest, item)
    elif isinstance(value, np.ndarray):
        digest.update(f"array{value.shape}{value.dtype}".encode() + value.tobytes())
    else:
        digest.update(repr(value).encode())
