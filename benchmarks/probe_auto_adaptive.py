"""Issue 18's adaptive sampling, probed: do later masks chosen from a first fit help ProxySPEX?

AutoSPEX's uniform route (a budget too small for SPEX's 16-bin design) is
ProxySPEX on uniform masks. The issue asks whether later stages should
concentrate masks where the current surrogate is uncertain. On the tuning
cells of ``bench_faithfulness.py`` where AutoSPEX takes that route (never a
report set), this compares, at the same budget B and for three method seeds:

- ``ProxySPEX``: B uniform masks (``explain``, as a user runs it);
- ``disagreement``: B/2 uniform masks (the ones ProxySPEX starts with for the
  same seed), a first fit, then of the other B/2 a quarter uniform and three
  quarters the candidates (from a pool of 8 times as many uniform masks) where
  8 bootstrap refits of the first fit disagree most (the variance of their
  predictions), and a refit on all B distinct masks;
- ``around top terms``: the same, the three quarters being uniform masks with
  every feature of one of the first fit's 20 largest Fourier terms kept (a
  term drawn in proportion to its coefficient's size), where a hierarchical
  game's higher-order terms above it show.

Parity (Fourier) games are left out: AutoSPEX's coded route is for them.

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


def proxyspex_fit(masks: np.ndarray, values: np.ndarray, k: int, rng: np.random.Generator):
    """ProxySPEX's fit of one output on samples already paid for."""
    (out,) = psx.ProxySPEX(max_order=k, uncertainty=False).fit_samples(masks, values, rng)
    return out


def random_masks(n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` uniformly random masks (without the empty and full masks uniform_masks adds)."""
    return rng.random((count, n)) < 0.5


def disagreement(first, masks, n, n_chosen, rng) -> np.ndarray:
    """The pool masks where bootstrap refits of the first fit predict most differently."""
    pool = random_masks(n, POOL * n_chosen, rng)
    predictions = []
    for _ in range(N_REFITS):
        rows, coef = first.refit(rng.integers(0, len(masks), len(masks)))
        predictions.append(fourier_features(pool, rows) @ coef)
    spread = np.var(np.array(predictions), axis=0)
    return pool[np.argsort(-spread, kind="stable")[:n_chosen]]


def around_top_terms(first, masks, n, n_chosen, rng) -> np.ndarray:
    """Random masks with every feature of one of the first fit's largest Fourier terms kept.

    A term is drawn in proportion to its coefficient's size; on a game planted
    in the Möbius basis its Fourier terms are the planted sets and their subsets.
    """
    chosen = random_masks(n, n_chosen, rng)
    nonempty = set_sizes(first.rows) > 0
    if not nonempty.any():  # a constant first fit: nothing to concentrate on
        return chosen
    rows, coef = first.rows[nonempty], first.values[nonempty]
    top = np.argsort(-np.abs(coef), kind="stable")[:TOP_TERMS]
    weights = np.abs(coef[top]) / np.abs(coef[top]).sum()
    terms = [list(term) for term in unpad_sets(rows[top])]
    for i, pick in enumerate(rng.choice(len(top), size=n_chosen, p=weights)):
        chosen[i, terms[pick]] = True
    return chosen


def new_distinct(masks: np.ndarray, seen: set[bytes]) -> np.ndarray:
    """The rows of ``masks`` not in ``seen`` (first occurrences), added to ``seen``."""
    keep = []
    for i, row in enumerate(np.packbits(masks, axis=1)):
        key = row.tobytes()
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return masks[keep]


def staged(cell: fs.Cell, prepared: fs.Prepared, seed: int, choose) -> float:
    """R² of the two-stage design: B/2 uniform, a first fit, the rest chosen by ``choose``.

    Exactly B distinct masks are paid for, each once: masks already bought are
    replaced by fresh uniform ones.
    """
    n, budget, k = cell.game.n, cell.budget, cell.max_order
    game = cell.game.build()  # a fresh game: a noisy one's noise restarts
    rng = np.random.default_rng(seed)
    # The masks ProxySPEX.explain starts with for this seed: the first half is paired.
    first_masks = uniform_masks(n, int(budget * FIRST_SHARE), rng)
    first_values = np.asarray(game(first_masks), float)
    first = proxyspex_fit(first_masks, first_values, k, rng)
    rest = budget - len(first_masks)
    n_uniform = round(rest * UNIFORM_SHARE)
    seen = {row.tobytes() for row in np.packbits(first_masks, axis=1)}
    chosen = choose(first, first_masks, n, rest - n_uniform, rng)
    new = new_distinct(np.vstack([chosen, random_masks(n, n_uniform, rng)]), seen)
    while len(new) < rest:  # top up with uniform masks: the budget is spent exactly
        more = new_distinct(random_masks(n, rest - len(new), rng), seen)
        new = np.vstack([new, more])
    masks = np.vstack([first_masks, new])
    values = np.concatenate([first_values, np.asarray(game(new), float)])
    final = proxyspex_fit(masks, values, k, rng)
    return fs.r2(fourier_features(prepared.masks, final.rows) @ final.values, prepared.truth)


def uniform(cell: fs.Cell, prepared: fs.Prepared, seed: int) -> float:
    est = psx.ProxySPEX(max_order=cell.max_order, random_state=seed, uncertainty=False)
    inter = est.explain(cell.game.build(), n_features=cell.game.n, budget=cell.budget)
    return fs.r2(inter.predict(prepared.masks), prepared.truth)


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
            by_disagreement = staged(cell, prepared, seed, disagreement)
            by_top = staged(cell, prepared, seed, around_top_terms)
            deltas["disagreement"].append(by_disagreement - base)
            deltas["around top terms"].append(by_top - base)
            line = (
                f"| {cell.label} | +{offset} | {base:.3f} "
                f"| {by_disagreement:.3f} | {by_disagreement - base:+.3f} "
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
