"""Probe (nothing taken): ProxySPEX's cross-validation repeated on a second split of the folds.

At one or two calls per feature ProxySPEX's R² moves by several hundredths
between seeds (``results/redrawn_report.md``), more than shapiq's. Repeating
the 5-fold cross-validation on a second random split (10 fold proxies, their
mean the result's proxy, every candidate scored on both splits) should lower
that spread if it comes from the folds. Here on the tuning set's cells with at
most 2 calls per feature, each cell's method seed and two more, side by side
with the default on the same game and masks. The second split is patched into
``_Fit.draw`` for the probe; nothing in the library changes.

Run: ``.venv/bin/python benchmarks/probe_repeated_cv.py`` (about 10 minutes on
2 cores). Writes ``benchmarks/results/repeated_cv_tuning.md``.
"""

from __future__ import annotations

import platform
import time
import warnings
from contextlib import contextmanager

import faith_suite as fs
import numpy as np
from bench_faithfulness import select_cells, versions
from common import write_results

import proxyspex_captum as psx
from proxyspex_captum.core import proxyspex as proxyspex_module
from proxyspex_captum.core.sparse_fit import fold_indices

EXTRA_SEEDS = (1, 2)
MAX_CALLS_PER_FEATURE = 2


@contextmanager
def two_splits():
    """Every fit's folds: two random 5-fold splits, one after the other."""
    fit_class = proxyspex_module._Fit
    original = fit_class.__dict__["draw"]  # the staticmethod itself

    def draw(estimator, n_samples, rng):
        seed = int(rng.integers(2**31 - 1))
        folds = [
            *fold_indices(n_samples, estimator.n_folds, rng),
            *fold_indices(n_samples, estimator.n_folds, rng),
        ]
        return seed, folds

    fit_class.draw = staticmethod(draw)
    try:
        yield
    finally:
        fit_class.draw = original


def run(cell: fs.Cell, seed: int) -> tuple[float, str, float]:
    """Held-out R², the refit chosen and the CPU seconds of one ProxySPEX run."""
    prepared = fs.Prepared.of(cell)
    estimator = psx.ProxySPEX(max_order=cell.max_order, random_state=seed, uncertainty=False)
    tic = time.process_time()
    inter = estimator.explain(prepared.game, n_features=cell.game.n, budget=cell.budget)
    seconds = time.process_time() - tic
    return fs.r2(inter.predict(prepared.masks), prepared.truth), inter.metadata["refit"], seconds


def main() -> None:
    cells = [
        c
        for c in select_cells("tuning", None, False)
        if c.budget <= MAX_CALLS_PER_FEATURE * c.game.n
    ]
    rows, deltas, cpu = [], [], np.zeros(2)
    warnings.simplefilter("ignore")  # PoorFitWarning on parity games
    for cell in cells:
        for seed in (cell.game.method_seed, *EXTRA_SEEDS):
            base, base_refit, base_s = run(cell, seed)
            with two_splits():
                twice, twice_refit, twice_s = run(cell, seed)
            deltas.append(twice - base)
            cpu += (base_s, twice_s)
            row = (
                f"| {cell.label} | {seed} | {base:.3f} ({base_refit}) | "
                f"{twice:.3f} ({twice_refit}) | {twice - base:+.3f} |"
            )
            print(row, flush=True)
            rows.append(row)
    d = np.asarray(deltas)
    lines = [
        "# ProxySPEX with its cross-validation repeated on a second split (tuning set)",
        "",
        f"Command: `python benchmarks/probe_repeated_cv.py`. Machine: {platform.machine()}. "
        f"Versions: {versions()}.",
        "",
        f"The tuning cells with at most {MAX_CALLS_PER_FEATURE} calls per feature, each "
        "cell's method seed and two more; held-out R² (1,000 uniform masks, noiseless game), "
        "without intervals, the refit chosen in brackets.",
        "",
        f"**Two splits against one** ({len(d)} runs): mean ΔR² {d.mean():+.4f}, "
        f"{int(np.sum(d > 0.005))} runs better by more than 0.005, "
        f"{int(np.sum(d < -0.005))} worse (the worst {d.min():+.3f}); CPU seconds "
        f"{cpu[1]:.0f} against {cpu[0]:.0f} ({cpu[1] / cpu[0]:.2f}x).",
        "",
        "| cell | seed | one split | two splits | Δ |",
        "|---|---|---|---|---|",
        *rows,
    ]
    write_results("repeated_cv_tuning.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
