"""Probe: what ProxySPEX should return when a ridge refit clearly beats the best lasso.

``_Fit._choose`` keeps a ridge over the best lasso only when it wins by more
than one standard error (``docs/design.md``, "A ridge must win clearly over the
lasso"). When it does, six answers are compared here, all from one fit (the
same folds, proxies and cross-validated errors; only the returned model
differs):

- ``ridge``: the ridge alone (the rule before 2026-12-07);
- ``blend``: the mean of the ridge and the best lasso, both refitted on every
  sample, unless the mean's cross-validated error is more than twice the
  ridge's (the rule since);
- ``blend-without-ratio``: that mean without the exception;
- ``blend-if-cv``: that mean only when its own cross-validated error (the mean
  of the two held-out predictions, ``CVErrors.blend``) is below the ridge's;
- ``blend-unless-ridge-clear``: that mean unless the ridge beats it, too, by
  more than one standard error of their per-fold difference;
- ``blend-competes``: the mean of the best ridge and the best lasso scored as
  one more candidate, in every fit, and chosen like any other.

Cells: the planted cells of a set with at most 2 calls per feature (where the
ridge wins at all; ``--all`` for every planted cell), each with its method
seed and ``--seeds`` more, on a freshly built game. It prints the held-out R²
of every run where the variants differ and a summary; every other run is the
same for all six.

Run: ``.venv/bin/python benchmarks/probe_blend.py --set tuning`` (about 4
minutes on 2 cores; ``--set report`` and ``--set report2`` for the report sets,
never used to choose). Writes ``benchmarks/results/blend_<set>.md``
(``blend_<set>_all.md`` with ``--all``).
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import warnings
from collections.abc import Callable, Hashable

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as bench_faithfulness.py, before LightGBM

import faith_suite as fs
from bench_faithfulness import select_cells, versions
from common import write_results
from probe_proxy_capacity import captured_fit

import proxyspex_captum as psx
from proxyspex_captum.core import proxyspex as proxyspex_module
from proxyspex_captum.core.proxyspex import BLEND, blend_parts
from proxyspex_captum.core.sparse_fit import candidate_name, clearly_better
from proxyspex_captum.core.subsets import fourier_features

PLANTED = ["hierarchical", "hierarchical-noisy", "soum", "fourier"]
RIDGES = proxyspex_module._RIDGES
Choice = tuple[Hashable, Hashable]


def ridge_part(blend: Hashable) -> Choice:
    """The blend's ridge as a choice of its own."""
    ridge, _ = blend_parts(blend)
    return candidate_name(ridge), ridge


def ridge_alone(fit) -> Choice:
    name, key = fit._choose()
    return ridge_part(key) if name == BLEND else (name, key)


def blend_without_ratio(fit) -> Choice:
    ratio = proxyspex_module._MEAN_ERROR_RATIO
    proxyspex_module._MEAN_ERROR_RATIO = float("inf")
    try:
        return fit._choose()
    finally:
        proxyspex_module._MEAN_ERROR_RATIO = ratio


def blend_if_cv(fit) -> Choice:
    name, key = fit._choose()
    if name == BLEND and fit.errors.sse[key] >= fit.errors.sse[ridge_part(key)[1]]:
        return ridge_part(key)
    return name, key


def blend_unless_ridge_clear(fit) -> Choice:
    name, key = fit._choose()
    if name == BLEND and clearly_better(fit.errors, ridge_part(key)[1], key):
        return ridge_part(key)
    return name, key


def blend_competes(fit) -> Choice:
    errors, tolerance = fit.errors, fit.tolerance
    if fit.est.refit == "auto" and fit.lassos:
        _, ridge = errors.best(tolerance, among=RIDGES)
        _, lasso = errors.best(tolerance, among=fit.lassos)
        errors.add_mean((BLEND, ridge, lasso), [ridge, lasso])
    name, key = errors.best(tolerance)
    if name not in RIDGES or fit.est.refit != "auto" or not fit.lassos:
        return name, key
    _, lasso = errors.best(tolerance, among=fit.lassos)
    if clearly_better(errors, key, lasso):
        return name, key
    others = {candidate_name(k) for k in errors.sse} - set(RIDGES)
    return errors.best(tolerance, among=others)


VARIANTS: dict[str, Callable] = {
    "ridge": ridge_alone,
    "blend": lambda fit: fit._choose(),
    "blend-without-ratio": blend_without_ratio,
    "blend-if-cv": blend_if_cv,
    "blend-unless-ridge-clear": blend_unless_ridge_clear,
    "blend-competes": blend_competes,
}


def run(prepared: fs.Prepared, seed: int) -> dict[str, tuple[float, str]]:
    """Each variant's held-out R² and refit, from one ProxySPEX fit."""
    cell, store = prepared.cell, {}
    estimator = psx.ProxySPEX(max_order=cell.max_order, random_state=seed, uncertainty=False)
    with captured_fit(store):
        inter = estimator.explain(prepared.game, n_features=cell.game.n, budget=cell.budget)
    fit, rows, coef = store["fit"]
    centre, scale = store["scale"]
    truth = (prepared.truth - centre) / scale  # the fit's own units; R² is the same
    out = {}
    for name, choose in VARIANTS.items():
        fit.errors = copy.deepcopy(store["errors"])
        chosen, key = choose(fit)
        out_rows, out_coef = fit._candidate(chosen, key, rows, coef, fit.constant)
        predicted = fourier_features(prepared.masks, out_rows) @ out_coef
        out[name] = (fs.r2(predicted, truth), proxyspex_module._refit_name(key))
    # The default variant is the estimator's own result.
    estimate = fs.r2(inter.predict(prepared.masks), prepared.truth)
    assert abs(out["blend"][0] - estimate) < 1e-6, (out["blend"][0], estimate)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=sorted(fs.DESIGNS), default="tuning")
    parser.add_argument("--seeds", type=int, default=2, help="seeds 1..SEEDS besides the cell's")
    parser.add_argument("--all", action="store_true", help="every planted cell, not only <= 2")
    args = parser.parse_args()
    cells = [
        c for c in select_cells(args.set, PLANTED, False) if args.all or c.budget <= 2 * c.game.n
    ]
    names = list(VARIANTS)
    runs, rows = [], []
    for cell in cells:
        for seed in (cell.game.method_seed, *range(1, args.seeds + 1)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # PoorFitWarning and the like
                out = run(fs.Prepared.of(cell), seed)
            runs.append({name: r2 for name, (r2, _) in out.items()})
            if len({r2 for r2, _ in out.values()}) > 1:
                row = (
                    f"| {cell.label} | {seed} | "
                    + " | ".join(f"{out[v][0]:.3f} ({out[v][1]})" for v in names)
                    + " |"
                )
                print(row, flush=True)
                rows.append(row)
    command = f"python benchmarks/probe_blend.py --set {args.set} --seeds {args.seeds}"
    lines = [
        f"# A ridge that clearly beats the lasso: alone or averaged? ({args.set} set)",
        "",
        f"Command: `{command}{' --all' if args.all else ''}`. Machine: "
        f"{platform.machine()}. Versions: {versions()}.",
        "",
        f"{len(runs)} runs: the {len(cells)} planted cells of the {args.set} set with "
        f"{'any number of' if args.all else 'at most 2'} calls per feature, each with its "
        f"method seed and seeds 1..{args.seeds}. Held-out R² (1,000 uniform masks, "
        "noiseless game) and the refit returned, for the runs where the variants differ "
        "(see the probe's docstring); in the others all variants return the same model.",
        "",
        "| game | seed | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
        *rows,
        "",
        "| variant | mean R² | mean Δ vs ridge | better / worse by > 0.005 | worst Δ | best Δ |",
        "|---|---|---|---|---|---|",
    ]
    for name in names:
        deltas = [r[name] - r["ridge"] for r in runs]
        lines.append(
            f"| {name} | {statistics.mean(r[name] for r in runs):.4f} "
            f"| {statistics.mean(deltas):+.4f} | {sum(d > 0.005 for d in deltas)} / "
            f"{sum(d < -0.005 for d in deltas)} | {min(deltas):+.3f} | {max(deltas):+.3f} |"
        )
    print("\n".join(lines[-len(names) - 2 :]))
    write_results(f"blend_{args.set}{'_all' if args.all else ''}.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
