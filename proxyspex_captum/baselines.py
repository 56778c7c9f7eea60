"""The explainers :func:`~proxyspex_captum.metrics.compare` and the command line run, by name.

ProxySPEX, SPEX and AutoSPEX (``auto``: whichever of the two fits better) give
their interactions; the marginal methods give their
linear model as a surrogate (``v(∅) + Σ φ_i m_i``), so every method is scored
the same way (R² on held-out masks):

- ``lime``, ``kernelshap``: Captum's ``Lime`` and ``KernelShap`` on the binary
  interpretable input (a mask is the input; the baseline is all-zeros);
- ``shapley_sampling``: Captum's ``ShapleyValueSampling`` (whole permutations);
- ``banzhaf``: linear Banzhaf regression (least squares on uniform masks).

Captum's samplers draw from torch's global generator: they run on a forked
generator seeded from ``random_state``, and numpy's global state is put back
afterwards, so running a method leaves every global RNG as it was.

Examples:
    >>> from proxyspex_captum import baselines
    >>> baselines.METHODS
    ('proxyspex', 'spex', 'auto', 'lime', 'kernelshap', 'shapley_sampling', 'banzhaf')
    >>> def model(m):
    ...     return 1.0 + 2.0 * m[:, 0] - m[:, 2]
    >>> surrogate, note = baselines.run_method("banzhaf", model, 3, budget=16)
    >>> {s: round(v, 6) for s, v in surrogate.mobius.items()}
    {(): 1.0, (0,): 2.0, (2,): -1.0}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .core.auto import AutoSPEX
from .core.checks import check_int
from .core.interactions import Interactions
from .core.proxyspex import ProxySPEX
from .core.sampling import as_generator, uniform_masks
from .core.spex import SPEX
from .core.value_function import MaskFunction, ValueFunction

__all__ = ["COMPARED", "LINEAR_METHODS", "METHODS", "min_budget", "run_method"]

#: Every method :func:`run_method` knows (the command line's ``--method`` choices too).
METHODS = ("proxyspex", "spex", "auto", "lime", "kernelshap", "shapley_sampling", "banzhaf")
#: What :func:`~proxyspex_captum.metrics.compare` runs by default: every method but
#: ``auto`` (whose result is one of the first two's, and would cost another budget).
COMPARED = tuple(m for m in METHODS if m != "auto")
#: The methods whose surrogate is linear (first order only).
LINEAR_METHODS = ("lime", "kernelshap", "shapley_sampling", "banzhaf")

_ESTIMATORS = {"proxyspex": ProxySPEX, "spex": SPEX, "auto": AutoSPEX}

#: ``(value function, n_features, budget, seed) -> (surrogate or None, note)``.
Runner = Callable[[ValueFunction, int, int, int], "tuple[Interactions | None, str]"]


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; choose from {', '.join(METHODS)}.")
    return method


def min_budget(method: str, n_features: int) -> int:
    """Fewest model calls ``method`` needs for ``n_features`` features.

    The estimators' own minimum for ProxySPEX and SPEX; one call per feature
    plus the intercept for the linear methods (fewer leaves their
    least-squares fit underdetermined; Shapley sampling needs one whole
    permutation, ``n + 1`` calls).

    Examples:
        >>> from proxyspex_captum import baselines
        >>> baselines.min_budget("kernelshap", 10)
        11
    """
    n_features = check_int("n_features", n_features, 1)
    if _check_method(method) in _ESTIMATORS:
        return _ESTIMATORS[method]().min_budget(n_features)
    return n_features + 1


def run_method(
    method: str,
    value_function: MaskFunction | ValueFunction,
    n_features: int,
    budget: int,
    random_state: int = 0,
) -> tuple[Interactions | None, str]:
    """Run one of :data:`METHODS` with ``budget`` model calls; its surrogate and a note.

    Args:
        method: One of :data:`METHODS`.
        value_function: The model as boolean masks ``(k, n)`` -> ``(k,)`` values
            (or a :class:`~proxyspex_captum.ValueFunction`, whose cache and call
            counts are then shared with the caller).
        n_features: Number of features.
        budget: Model calls.
        random_state: Seed of the method's sampling.

    Returns:
        ``(surrogate, note)``: the method's
        :class:`~proxyspex_captum.Interactions` (its linear model for the
        marginal methods), or ``None`` and the reason when the budget is too
        small for it (e.g. ProxySPEX below its minimum, Shapley sampling below
        one permutation). Errors of the method itself propagate.
    """
    _check_method(method)
    n_features = check_int("n_features", n_features, 1)
    budget = check_int("budget", budget, 1)
    random_state = check_int("random_state", random_state, 0)
    if method in LINEAR_METHODS and budget < min_budget(method, n_features):
        # An underdetermined least-squares fit would come back as a result like any other.
        return None, (
            f"needs at least {n_features + 1} calls (a weight per feature and an intercept)"
        )
    vf = ValueFunction.wrap(value_function, n_features)
    return _RUNNERS[method](vf, n_features, budget, random_state)


def linear_surrogate(bias: float, coefficients: np.ndarray, method: str) -> Interactions:
    """The linear model ``bias + Σ c_i m_i`` as :class:`~proxyspex_captum.Interactions`."""
    mobius = {(): float(bias)}
    mobius.update({(i,): float(c) for i, c in enumerate(coefficients) if c != 0})
    return Interactions.from_mobius(
        mobius, n_features=len(coefficients), metadata={"method": method}
    )


def _run_ours(estimator_class: Any) -> Runner:
    def run(vf: ValueFunction, n: int, budget: int, seed: int):
        estimator = estimator_class(random_state=seed)
        need = estimator.min_budget(n)
        if budget < need:
            return None, f"needs at least {need} calls for {n} features"
        return estimator.explain(vf, n, budget), ""

    return run


def _run_captum(kind: str) -> Runner:
    def run(vf: ValueFunction, n: int, budget: int, seed: int):
        import torch

        # Captum samples from torch's global generator, and its fits can touch numpy's:
        # run on a forked torch generator and put numpy's state back afterwards.
        numpy_state = np.random.get_state()  # noqa: NPY002
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                return _captum_surrogate(kind, vf, n, budget)
        finally:
            np.random.set_state(numpy_state)  # noqa: NPY002

    return run


def _captum_surrogate(kind: str, vf: ValueFunction, n: int, budget: int):
    """Captum's LIME / KernelSHAP / Shapley value sampling on the binary interpretable input."""
    import torch
    from captum.attr import KernelShap, Lime, ShapleyValueSampling

    def forward(x: Any) -> Any:
        return torch.as_tensor(vf(x.detach().cpu().numpy() > 0.5), dtype=torch.float64)

    ones = torch.ones(1, n, dtype=torch.float64)
    if kind == "shapley_sampling":
        permutations = (budget - 1) // n
        if permutations < 1:
            return None, f"needs at least {n + 1} calls (one permutation)"
        phi = ShapleyValueSampling(forward).attribute(
            ones, baselines=0, n_samples=permutations, perturbations_per_eval=n
        )
        empty = float(vf(np.zeros((1, n), dtype=bool))[0])
        return linear_surrogate(empty, phi.reshape(-1).numpy(), kind), ""
    method = (Lime if kind == "lime" else KernelShap)(forward)
    coefficients = method.attribute(
        ones, baselines=0, n_samples=budget, perturbations_per_eval=min(budget, 256)
    )
    bias = float(method.interpretable_model.bias())
    return linear_surrogate(bias, coefficients.reshape(-1).numpy(), kind), ""


def _run_banzhaf(vf: ValueFunction, n: int, budget: int, seed: int):
    """Linear Banzhaf regression: least squares of v on uniformly random masks."""
    masks = uniform_masks(n, budget, as_generator(seed))
    design = np.hstack([np.ones((len(masks), 1)), masks.astype(float)])
    solution = np.linalg.lstsq(design, vf(masks), rcond=None)[0]
    return linear_surrogate(solution[0], solution[1:], "banzhaf"), ""


_RUNNERS: dict[str, Runner] = {
    "proxyspex": _run_ours(ProxySPEX),
    "spex": _run_ours(SPEX),
    "auto": _run_ours(AutoSPEX),
    "lime": _run_captum("lime"),
    "kernelshap": _run_captum("kernelshap"),
    "shapley_sampling": _run_captum("shapley_sampling"),
    "banzhaf": _run_banzhaf,
}
