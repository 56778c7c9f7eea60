"""Issue 18's adaptive sampling, probed: do later masks chosen from a first fit help ProxySPEX?

AutoSPEX's uniform route (a budget too small for SPEX's 16-bin design) is
ProxySPEX on uniform masks. The issue asks whether later stages should
concentrate masks where the current surrogate is uncertain. On the tuning
cells of ``bench_faithfulness.py`` where AutoSPEX takes that route (never a
report set), this compares, at the same budget B and for three method seeds:

- ``ProxySPEX``: B uniform masks (``explain``, as a user runs it);
- ``disagreement``: B/2 uniform masks, a first fit, then of the other B/2 a
  quarter uniform and three quarters the candidates (from a pool of 8 times as
  many uniform masks) where 8 bootstrap refits of the first fit disagree most
  (the variance of their predictions), and a refit on all B;
- ``around top terms``: the same, the three quarters being uniform masks with
  every feature of one of the first fit's 20 largest terms kept (a term drawn
  in proportion to its coefficient's size), where a hierarchical game's
  higher-order terms above it show.

R² on the cell's 1,000 held-out masks against the noiseless game.

Run: ``python benchmarks/probe_auto_adaptive.py`` (about 15 minutes on 2
cores). Writes ``benchmarks/results/auto_adaptive_tuning.md``.
"""

from __future__ import annotations

import platform
import warnings
from pathlib import Path

import faith_suite as fs
import numpy as np
from bench_faithfulness import versions

import proxyspex_captum as psx
from proxyspex_captum.core.sampling import uniform_masks
from proxyspex_captum.core.subsets import fourier_features, set_sizes, unpad_sets

RESULTS = Path(__file__).parent / "results"
SEED_OFFSETS = (0, 1000, 2000)  # method seeds: the cell's, and two more
FIRST_SHARE = 0.5  # of the budget, spent on uniform masks before the first fit
UNIFORM_SHARE = 0.25  # of the second stage, kept uniform
N_REFITS = 8  # bootstrap refits of the first fit (disagreement)
POOL = 8  # candidates per chosen mask (disagreement)
TOP_TERMS = 20  # terms drawn from (around top terms)


def fit(masks: np.ndarray, values: np.ndarray, k: int, rng: np.random.Generator):
    (out,) = psx.ProxySPEX(max_order=k, uncertainty=False).fit_samples(masks, values, rng)
    return out


def disagreement(first, masks, n, n_chosen, rng) -> np.ndarray:
    pool = uniform_masks(n, POOL * n_chosen, rng)
    predictions = []
    for _ in range(N_REFITS):
        rows, coef = first.refit(rng.integers(0, len(masks), len(masks)))
        predictions.append(fourier_features(pool, rows) @ coef)
    spread = np.var(np.array(predictions), axis=0)
    return pool[np.argsort(-spread, kind="stable")[:n_chosen]]


def around_top_terms(first, masks, n, n_chosen, rng) -> np.ndarray:
    nonempty = set_sizes(first.rows) > 0
    rows, coef = first.rows[nonempty], first.values[nonempty]
    top = np.argsort(-np.abs(coef), kind="stable")[:TOP_TERMS]
    weights = np.abs(coef[top]) / np.abs(coef[top]).sum()
    terms = [list(term) for term in unpad_sets(rows[top])]
    chosen = uniform_masks(n, n_chosen, rng).copy()
    for i, pick in enumerate(rng.choice(len(top), size=n_chosen, p=weights)):
        chosen[i, terms[pick]] = True
    return chosen


def staged(cell: fs.Cell, prepared: fs.Prepared, seed: int, choose) -> float:
    n, budget, k = cell.game.n, cell.budget, cell.max_order
    game = cell.game.build()  # a fresh game: a noisy one's noise restarts
    rng = np.random.default_rng(seed)
    first_masks = uniform_masks(n, int(budget * FIRST_SHARE), rng)
    first = fit(first_masks, np.asarray(game(first_masks), float), k, rng)
    rest = budget - len(first_masks)
    n_uniform = round(rest * UNIFORM_SHARE)
    chosen = choose(first, first_masks, n, rest - n_uniform, rng)
    masks = np.vstack([first_masks, chosen, uniform_masks(n, n_uniform, rng)])
    _, keep = np.unique(np.packbits(masks, axis=1), axis=0, return_index=True)
    masks = masks[np.sort(keep)]  # distinct masks: at most B calls
    final = fit(masks, np.asarray(game(masks), float), k, rng)
    return fs.r2(fourier_features(prepared.masks, final.rows) @ final.values, prepared.truth)


def uniform(cell: fs.Cell, prepared: fs.Prepared, seed: int) -> float:
    est = psx.ProxySPEX(max_order=cell.max_order, random_state=seed, uncertainty=False)
    inter = est.explain(cell.game.build(), n_features=cell.game.n, budget=cell.budget)
    return fs.r2(inter.predict(prepared.masks), prepared.truth)


def label(cell: fs.Cell) -> str:
    """The cell's key without the ``|`` that would split a markdown table's column."""
    return cell.key.replace("|", ", ")


def main() -> None:
    warnings.simplefilter("ignore")  # PoorFitWarning on the hard cells: the table says it
    cells = [
        c
        for c in fs.DESIGNS["tuning"]()
        if psx.AutoSPEX(max_order=c.max_order).plan(c.game.n, c.budget)[0] == "uniform"
        and c.game.family != "fourier"  # parity games: AutoSPEX's coded route is for them
    ]
    lines = [
        "# Adaptive second stage for ProxySPEX (tuning set, issue 18)",
        "",
        f"`python benchmarks/probe_auto_adaptive.py` on {platform.machine()}; {versions()}. "
        "R² on each cell's 1,000 held-out masks, at the cell's budget, for three method "
        "seeds (the cell's, +1000, +2000). Δ: the staged design minus ProxySPEX, same seed.",
        "",
        "| cell | seed | ProxySPEX | disagreement | Δ | around top terms | Δ |",
        "|---|---|---|---|---|---|---|",
    ]
    deltas: dict[str, list[float]] = {"disagreement": [], "around top terms": []}
    for cell in cells:
        prepared = fs.Prepared.of(cell)
        for offset in SEED_OFFSETS:
            seed = cell.game.method_seed + offset
            base = uniform(cell, prepared, seed)
            by_qbc = staged(cell, prepared, seed, disagreement)
            by_top = staged(cell, prepared, seed, around_top_terms)
            deltas["disagreement"].append(by_qbc - base)
            deltas["around top terms"].append(by_top - base)
            line = (
                f"| {label(cell)} | +{offset} | {base:.3f} | {by_qbc:.3f} | {by_qbc - base:+.3f} "
                f"| {by_top:.3f} | {by_top - base:+.3f} |"
            )
            print(line, flush=True)
            lines.append(line)
    lines += ["", "| staged design | runs | mean Δ | median Δ | better by > 0.005 | worse |"]
    lines.append("|---|---|---|---|---|---|")
    for name, values in deltas.items():
        d = np.array(values)
        lines.append(
            f"| {name} | {len(d)} | {d.mean():+.4f} | {np.median(d):+.4f} | "
            f"{int(np.sum(d > 0.005))} | {int(np.sum(d < -0.005))} |"
        )
    out = RESULTS / "auto_adaptive_tuning.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-4:]))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
