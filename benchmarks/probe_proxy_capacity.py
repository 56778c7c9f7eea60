"""Probe (nothing taken): other ways to a better proxy at 400 training rows for 512 features.

The report set's cell #204 (a hierarchical game, n = 512, 500 calls) is the one
where ProxySPEX stays below shapiq's ProxySPEX, and an earlier probe showed that
no choice among our refits closes it: the proxy itself would have to be better
(``docs/design.md``, "A ridge must win clearly over the lasso"). This probe tries
the usual levers on the tuning games of that shape (never a report game), with
each cell's method seed and two more, every variant side by side on a freshly
built game:

- LightGBM regularisation the proxies do not use: ``feature_fraction`` or
  ``feature_fraction_bynode`` 0.5 (each tree or node sees half the features),
  ``lambda_l2`` 10 (small leaves shrunk);
- slower boosting, as shapiq's grid allows (learning rate 0.05) and a longer
  early-stopping patience (50 rounds instead of 20);
- proxies on the 128 features most correlated with the output (sure
  independence screening on each fold's training rows);
- the mean of the refits instead of the cross-validation's one choice: the
  Fourier and Möbius lassos, or the two candidate families with the least
  cross-validated error;
- the relaxed lasso: the Fourier lasso's selection at its cross-validated
  penalty refitted without the penalty (a GCV ridge, ``sparse_fit.relaxed``),
  and, as a bound no fit can reach, the best of those refits over the path
  judged on the held-out masks (``relaxed-best``, an oracle).

The last two reach inside the fit (``_Fit``), which a probe may; nothing in the
library changes. It prints the held-out R² of every run and a summary.

Run: ``.venv/bin/python benchmarks/probe_proxy_capacity.py`` (about 15 minutes on
2 cores). Writes ``benchmarks/results/proxy_capacity_tuning.md``.
"""

from __future__ import annotations

import copy
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any, ClassVar

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as bench_faithfulness.py, before LightGBM

import faith_suite as fs
import numpy as np
from bench_faithfulness import select_cells, versions
from common import write_results

import proxyspex_captum as psx
from proxyspex_captum.core import proxyspex as proxyspex_module
from proxyspex_captum.core.boosting import boost
from proxyspex_captum.core.sparse_fit import lasso_alphas, lasso_fit, relaxed, screen
from proxyspex_captum.core.subsets import fourier_features

EXTRA_SEEDS = (1, 2)
SCREENED_FEATURES = 128


class WithLightGBM(psx.ProxySPEX):
    """ProxySPEX whose proxies take extra LightGBM parameters."""

    extra: ClassVar[dict[str, Any]] = {}

    def lightgbm_params(self, depth: int, learning_rate: float, seed: int) -> dict:
        return {**super().lightgbm_params(depth, learning_rate, seed), **self.extra}


def lightgbm_variant(**extra: Any) -> type:
    return type("WithLightGBM", (WithLightGBM,), {"extra": extra})


@contextmanager
def screened_proxies(keep: int):
    """Each fold's proxy trained on the ``keep`` features most correlated with its output.

    The other features are set to 0 (a constant feature is never split on), so
    the proxy's terms keep the feature ids and everything after it is unchanged.
    """
    fit_class = proxyspex_module._Fit
    original = fit_class._train_proxy

    def train_proxy(fit, config, train, test):
        kept = np.zeros(fit.x.shape[1], dtype=bool)
        kept[screen(fit.x[train], fit.y[train], keep)] = True
        x = np.where(kept, fit.x, 0).astype(np.float32)
        return boost(
            fit.est.lightgbm_params(*config, fit.seed),
            (x[train], fit.y[train]),
            (x[test], fit.y[test]),
            max_rounds=fit.est.max_trees,
            patience=fit.est.early_stopping_rounds,
        )

    fit_class._train_proxy = train_proxy
    try:
        yield
    finally:
        fit_class._train_proxy = original


@contextmanager
def captured_fit(store: dict):
    """Keep the last fit's state: ``store["errors"]``, its candidates' errors before
    the choice (a copy: choosing may add one); ``store["fit"]``, the fit and its mean
    transform; ``store["scale"]``, the output's centre and scale."""
    fit_class = proxyspex_module._Fit
    original_choose, original_final = fit_class._choose, fit_class._final
    original_scale = proxyspex_module.centre_and_scale

    def choose(fit):
        store["errors"] = copy.deepcopy(fit.errors)
        return original_choose(fit)

    def final(fit, name, key, rows, coef):
        store["fit"] = (fit, rows, coef)
        return original_final(fit, name, key, rows, coef)

    def centre_and_scale(values):
        z, centre, scale = original_scale(values)
        store["scale"] = (centre, scale)
        return z, centre, scale

    fit_class._choose, fit_class._final = choose, final
    proxyspex_module.centre_and_scale = centre_and_scale
    try:
        yield
    finally:
        fit_class._choose, fit_class._final = original_choose, original_final
        proxyspex_module.centre_and_scale = original_scale


def explain(
    estimator_class: type, prepared: fs.Prepared, seed: int, **options
) -> psx.Interactions:
    cell = prepared.cell
    estimator = estimator_class(
        max_order=cell.max_order, random_state=seed, uncertainty=False, **options
    )
    return estimator.explain(prepared.game, n_features=cell.game.n, budget=cell.budget)


def refit_variants(prepared: fs.Prepared, seed: int) -> dict[str, float]:
    """R² of the averaged refits and of the relaxed Fourier lasso (see the docstring)."""
    store: dict = {}
    with captured_fit(store):
        explain(psx.ProxySPEX, prepared, seed)
    fit, rows, coef = store["fit"]
    centre, scale = store["scale"]
    truth = (prepared.truth - centre) / scale  # the fit's own units; R² is the same
    families = {
        "lasso": {"lasso"},
        "lasso-mobius": {"lasso-mobius"},
        "ridge": {"ridge", "ridge-energy"},
        "proxy": {"proxy"},
        "linear": {"linear", "linear-lasso"},
    }
    refits = {}
    for family, names in families.items():
        try:
            name, key = fit.errors.best(fit.tolerance, among=names)
        except KeyError:  # not scored on every fold
            continue
        out_rows, out_coef = fit._candidate(name, key, rows, coef, fit.constant)
        refits[family] = (
            fit.errors.sse[key],
            fourier_features(prepared.masks, out_rows) @ out_coef,
        )
    ranked = [p for _, p in sorted(refits.values(), key=lambda pair: pair[0])]
    lassos = (refits["lasso"][1] + refits["lasso-mobius"][1]) / 2
    out = {"mean-lassos": fs.r2(lassos, truth), "mean-top2": fs.r2(np.mean(ranked[:2], 0), truth)}

    # The Fourier lasso over the pool of the mean transform's largest terms, as _final fits it.
    _, (_, chosen_step) = fit.errors.best(fit.tolerance, among={"lasso"})
    pool = rows[: proxyspex_module._LASSO_POOL]
    x, held_out = fourier_features(fit.masks, pool), fourier_features(prepared.masks, pool)
    alphas = lasso_alphas(x, fit.y)

    def relaxed_r2(step: int) -> float:
        beta, _ = lasso_fit(x, fit.y, alphas[step])
        used = beta != 0
        coef, intercept = relaxed(x[:, used], fit.y)
        return fs.r2(held_out[:, used] @ coef + intercept, truth)

    out["relaxed-lasso"] = relaxed_r2(chosen_step)
    out["relaxed-best"] = max(relaxed_r2(step) for step in range(len(alphas)))
    return out


def plain(estimator_class: type = psx.ProxySPEX, **options) -> Callable[..., float]:
    def run(prepared: fs.Prepared, seed: int) -> float:
        inter = explain(estimator_class, prepared, seed, **options)
        return fs.r2(inter.predict(prepared.masks), prepared.truth)

    return run


def screened(prepared: fs.Prepared, seed: int) -> float:
    with screened_proxies(SCREENED_FEATURES):
        return plain()(prepared, seed)


VARIANTS: dict[str, Callable[[fs.Prepared, int], float]] = {
    "default": plain(),
    "feature_fraction=0.5": plain(lightgbm_variant(feature_fraction=0.5)),
    "feature_fraction_bynode=0.5": plain(lightgbm_variant(feature_fraction_bynode=0.5)),
    "lambda_l2=10": plain(lightgbm_variant(lambda_l2=10.0)),
    "learning_rate=0.05": plain(learning_rate=0.05),
    "early_stopping_rounds=50": plain(early_stopping_rounds=50),
    f"screened {SCREENED_FEATURES} features": screened,
}
REFIT_VARIANTS = ("mean-lassos", "mean-top2", "relaxed-lasso", "relaxed-best")


def main() -> None:
    cells = [
        c
        for c in select_cells("tuning", ["hierarchical", "hierarchical-noisy"], False)
        if c.game.n == 512 and c.budget == 500
    ]
    names = [*VARIANTS, *REFIT_VARIANTS]
    runs: list[dict[str, float]] = []
    seconds = dict.fromkeys(VARIANTS, 0.0)
    rows = []
    for cell in cells:
        for seed in (cell.game.method_seed, *EXTRA_SEEDS):
            r2 = {}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # PoorFitWarning and the like
                for name, run in VARIANTS.items():
                    tic = time.process_time()
                    r2[name] = run(fs.Prepared.of(cell), seed)
                    seconds[name] += time.process_time() - tic
                r2.update(refit_variants(fs.Prepared.of(cell), seed))
            runs.append(r2)
            row = f"| {cell.label} | {seed} | " + " | ".join(f"{r2[v]:.3f}" for v in names) + " |"
            print(row, flush=True)
            rows.append(row)
    lines = [
        "# Other ways to a better proxy: tuning games, n = 512, 500 calls",
        "",
        "Command: `python benchmarks/probe_proxy_capacity.py`. Machine: "
        f"{platform.machine()}. Versions: {versions()}.",
        "",
        "Held-out R² (1,000 uniform masks, noiseless game), ProxySPEX without intervals; "
        "each column one variant (see the probe's docstring), every run on a freshly "
        "built game.",
        "",
        "| game | seed | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
        *rows,
        "",
        "| variant | mean R² | lowest | mean Δ vs default | better / worse by > 0.005 "
        "| CPU s (all runs) |",
        "|---|---|---|---|---|---|",
    ]
    for name in names:
        values = [r[name] for r in runs]
        deltas = [r[name] - r["default"] for r in runs]
        cpu = f"{seconds[name]:.0f}" if name in seconds else "–"
        lines.append(
            f"| {name} | {statistics.mean(values):.4f} | {min(values):.3f} "
            f"| {statistics.mean(deltas):+.4f} | {sum(d > 0.005 for d in deltas)} / "
            f"{sum(d < -0.005 for d in deltas)} | {cpu} |"
        )
    write_results("proxy_capacity_tuning.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
