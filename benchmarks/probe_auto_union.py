"""Tried for AutoSPEX (issue 18) and not taken: a refit over the union of both methods' terms.

On AutoSPEX's coded route both methods are fitted on the same calls. The
issue suggests ending with one refit over the union of the supports found;
this probe scores that as a third candidate: a lasso (or ridge, whichever
cross-validates better) over the Fourier features of SPEX's and ProxySPEX's
terms together, on the same samples. For every tuning cell on the coded
route (never a report set) it prints the held-out R² of SPEX, ProxySPEX, the
union refit, and what choosing by cross-validated R² among two (AutoSPEX) or
three candidates gives against the better of SPEX and ProxySPEX.

Run: ``.venv/bin/python benchmarks/probe_auto_union.py`` (about 5 minutes on
2 cores). Writes ``benchmarks/results/auto_union_tuning.md``.
"""

from __future__ import annotations

import platform
import warnings
from pathlib import Path

import faith_suite as fs
import numpy as np
from bench_faithfulness import versions

import proxyspex_captum as psx
from proxyspex_captum.core.ridge import ridge_gcv
from proxyspex_captum.core.sparse_fit import (
    CVErrors,
    fitting,
    fold_indices,
    lasso_alphas,
    lasso_fit,
    lasso_path_sse,
    ridge_sse,
)
from proxyspex_captum.core.subsets import PAD, fourier_features, widen

RESULTS = Path(__file__).parent / "results"


def union_refit(
    masks: np.ndarray, y: np.ndarray, terms: list[np.ndarray], rng: np.random.Generator
) -> tuple[float, np.ndarray, np.ndarray, float]:
    """``(cv_r2, rows, coefficients, intercept)`` of the better of lasso and ridge on the union."""
    width = max(r.shape[1] for r in terms)
    rows = np.vstack([widen(r, width) for r in terms])
    rows = np.unique(rows[(rows != PAD).any(axis=1)], axis=0)
    x = fourier_features(masks, rows)
    errors = CVErrors()
    for train, test in fold_indices(len(y), 5, rng):
        alphas = lasso_alphas(x[train], y[train])
        errors.add_path("lasso", lasso_path_sse(x[train], y[train], x[test], y[test], alphas))
        errors.add("ridge", ridge_sse(x[train], y[train], x[test], y[test])[0])
    name, key = errors.best()
    if name == "ridge":
        fit = ridge_gcv(x, y)
        beta, intercept = fit.coef, fit.intercept
    else:
        beta, intercept = lasso_fit(x, y, lasso_alphas(x, y)[key[1]])
    cv_r2 = 1 - errors.sse[key] / float(np.sum((y - y.mean()) ** 2))
    return cv_r2, rows, beta, intercept


def row(cell: fs.Cell) -> str | None:
    n, budget, k, seed = cell.game.n, cell.budget, cell.max_order, cell.game.method_seed
    auto = psx.AutoSPEX(max_order=k, random_state=seed, uncertainty=False)
    if auto.plan(n, budget)[0] != "coded":
        return None
    prepared = fs.Prepared.of(cell)
    rng = np.random.default_rng(seed)
    design = auto.spex.design(n, budget, rng)
    values = np.asarray(cell.game.build()(design.samples), dtype=float).reshape(-1, 1)
    with fitting():
        (spex,) = auto.spex.fit_design(design, values, rng)
        (proxy,) = auto.proxyspex.fit_samples(design.samples, values, rng)
        union = union_refit(
            design.samples, values[:, 0], [spex.rows, proxy.rows], np.random.default_rng(seed + 1)
        )
    masks, truth = prepared.masks, prepared.truth
    r2 = {
        "spex": fs.r2(fourier_features(masks, spex.rows) @ spex.values, truth),
        "proxyspex": fs.r2(fourier_features(masks, proxy.rows) @ proxy.values, truth),
        "union": fs.r2(fourier_features(masks, union[1]) @ union[2] + union[3], truth),
    }
    cv = {"spex": spex.metadata["cv_r2"], "proxyspex": proxy.metadata["cv_r2"], "union": union[0]}
    best = max(r2["spex"], r2["proxyspex"])
    two = max(("spex", "proxyspex"), key=lambda m: (cv[m], m == "proxyspex"))
    three = max(cv, key=cv.get)
    return (
        f"| {cell.label} | {r2['spex']:.3f} | {r2['proxyspex']:.3f} | {r2['union']:.3f} | "
        f"{r2[two] - best:+.4f} | {r2[three] - best:+.4f} ({three}) |"
    )


def main() -> None:
    warnings.simplefilter("ignore")  # PoorFitWarning on the hard cells: the table says it
    lines = [
        "# A refit over the union of both methods' terms (tuning set, issue 18): not taken",
        "",
        f"`python benchmarks/probe_auto_union.py` on {platform.machine()}; {versions()}. "
        "Tuning cells on AutoSPEX's coded route; R² on each cell's 1,000 held-out masks "
        "against the noiseless game. The last two columns: the candidate chosen by "
        "cross-validated R² among two (SPEX, ProxySPEX: AutoSPEX) or three (and the union "
        "refit), minus the better of SPEX and ProxySPEX.",
        "",
        "| cell | SPEX | ProxySPEX | union refit | choice of two | choice of three |",
        "|---|---|---|---|---|---|",
    ]
    for cell in fs.DESIGNS["tuning"]():
        line = row(cell)
        if line is not None:
            print(line, flush=True)
            lines.append(line)
    out = RESULTS / "auto_union_tuning.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
