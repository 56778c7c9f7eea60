"""ProxySPEX's own time with its lassos on the Gram matrix, against scikit-learn's default.

Every lasso path of the estimators (``core.sparse_fit``) over at most 2,000
columns runs coordinate descent with ``precompute=True``: on the Gram matrix
``XᵀX`` of the centred features, where a sweep costs in proportion to the
columns that move, not to the samples. scikit-learn's default (``"auto"``)
uses the Gram matrix only with more samples than columns, so ProxySPEX's
500-term lasso pools and its lasso over the screened main effects ran
without it whenever a fold held at most 500 training rows (budgets up to
about 625) or the main effects outnumbered the rows. Both solve the same
problem to the same stopping rule: the results agree to rounding.

This runs ProxySPEX (``uncertainty=False``, as the faithfulness harness does)
on planted games of its own seeds (none from the faithfulness suite's sets),
once with the lassos as they are and once with scikit-learn's default restored,
alternating, side by side in one run; it prints the median own seconds of each
and their ratio, and the largest difference between the two results'
predictions on 1,000 uniform masks, relative to the game's spread.

Run: ``.venv/bin/python benchmarks/bench_lasso.py [--repeats 4]``.
Writes ``benchmarks/results/lasso_gram.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
from collections.abc import Callable, Iterator
from unittest import mock

import numpy as np
from common import write_results

import proxyspex_captum as psx
from proxyspex_captum.core import sparse_fit
from proxyspex_captum.games import fourier_game, hierarchical_game, random_game

# (family, n, budget, max_order): few to many calls per feature.
CASES = [
    ("hierarchical", 32, 250, 4),
    ("hierarchical", 32, 500, 3),
    ("hierarchical", 32, 1000, 5),
    ("parity", 32, 500, 3),
    ("random", 30, 500, 3),
    ("hierarchical", 128, 500, 4),
    ("hierarchical", 128, 2000, 4),
    ("hierarchical", 512, 500, 4),
    ("parity", 512, 1000, 3),
    ("hierarchical", 1000, 1000, 4),
    ("hierarchical", 1000, 2000, 4),
]
GAMES: dict[str, Callable[[int, int], psx.games.PlantedGame]] = {
    "hierarchical": lambda n, seed: hierarchical_game(n, n_terms=90, random_state=900 + seed),
    "parity": lambda n, seed: fourier_game(n, n_terms=60, max_order=3, random_state=900 + seed),
    "random": lambda n, seed: random_game(n, n_terms=60, max_order=3, random_state=900 + seed),
}


@contextlib.contextmanager
def sklearn_default() -> Iterator[None]:
    """The lassos as before: scikit-learn's own choice of Gram matrix (``"auto"``).

    That is what ``sparse_fit`` does over its column cap, so a cap below any
    design restores it (wrapping ``lasso_path`` instead would still pay for the
    Gram matrix that ``sparse_fit`` builds before the call).
    """
    with mock.patch.object(sparse_fit, "_GRAM_MAX_COLUMNS", -1):
        yield


def run(family: str, n: int, budget: int, order: int, seed: int) -> tuple[float, np.ndarray]:
    """ProxySPEX's own seconds and its predictions on 1,000 uniform masks."""
    game = GAMES[family](n, seed)
    est = psx.ProxySPEX(max_order=order, random_state=seed, uncertainty=False)
    inter = est.explain(game, n_features=n, budget=budget)
    masks = np.random.default_rng(seed).random((1000, n)) < 0.5
    return inter.metadata["algorithm_seconds"], inter.predict(masks)


def measure(case: tuple[str, int, int, int], repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {"default": [], "gram": []}
    differences = []
    for seed in range(repeats):
        # Alternating which goes first, so neither gains from running second.
        if seed % 2 == 0:
            with sklearn_default():
                before, old = run(*case, seed)
            after, new = run(*case, seed)
        else:
            after, new = run(*case, seed)
            with sklearn_default():
                before, old = run(*case, seed)
        times["default"].append(before)
        times["gram"].append(after)
        differences.append(float(np.max(np.abs(new - old)) / max(np.std(old), 1e-300)))
    out = {name: float(np.median(values)) for name, values in times.items()}
    out["difference"] = max(differences)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=4, help="seeds per case (default 4)")
    args = parser.parse_args()
    lines = [
        "# ProxySPEX's lassos on the Gram matrix",
        "",
        f"`benchmarks/bench_lasso.py --repeats {args.repeats}` on {os.cpu_count()} cores "
        f"({platform.processor() or platform.machine()}): ProxySPEX's own seconds "
        f"(`uncertainty=False`), median of {args.repeats} seeds, each seed run with "
        'scikit-learn\'s default (`precompute="auto"`, before) and with the Gram '
        "matrix (`precompute=True`, now), which one first alternating by seed. "
        "Difference: the largest gap between the two results' predictions on 1,000 "
        "uniform masks, over the seeds, in units of the predictions' standard deviation.",
        "",
        "| game | n | budget | max_order | before s | now s | before / now | difference |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    run(*CASES[0], seed=0)  # warm up (imports, first LightGBM fit) outside the table
    for case in CASES:
        m = measure(case, args.repeats)
        family, n, budget, order = case
        line = (
            f"| {family} | {n} | {budget} | {order} | {m['default']:.2f} | {m['gram']:.2f} "
            f"| {m['default'] / m['gram']:.2f}x | {m['difference']:.0e} |"
        )
        print(line, flush=True)
        lines.append(line)
    text = "\n".join(lines) + "\n"
    write_results("lasso_gram.md", text)


if __name__ == "__main__":
    main()
