"""Should AutoSPEX buy SPEX's coded design when it has only 8 bins a group? (issue 18)

AutoSPEX buys SPEX's coded masks from ``min_bins = 16`` bins a group; below,
the whole budget goes to ProxySPEX's uniform masks. On the report set one
8-bin cell, a parity game (n = 512, 1,000 calls), has SPEX ahead of ProxySPEX
in 5 of 6 seeds (``results/seed_spread_report.md``), so AutoSPEX misses it.
The tuning set has no 8-bin parity cell, so this probe adds six on tuning
seeds of their own (7xx, on no report set) and reruns the tuning set's 8-bin
planted cells, three method seeds each, and compares three rules:

- ``min_bins = 16`` (the default): AutoSPEX is ProxySPEX on uniform masks;
- ``min_bins = 8``: the coded design, both fits, the better cross-validated;
- a pilot: the design's uniform share is bought first and ProxySPEX is fitted
  on it; when its cross-validated R² is below a threshold, the coded design
  follows (as ``min_bins = 8``), else uniform masks (as ``min_bins = 16``).
  The pilot is read here from ``uniform share`` fresh uniform masks.

Each rule's result is scored against the better of ProxySPEX and SPEX run on
their own (issue 18's bar, within 0.005). R² on each cell's 1,000 held-out
masks against the noiseless game.

Run: ``.venv/bin/python benchmarks/probe_auto_8bins.py`` (about 10 minutes on
2 cores). Writes ``benchmarks/results/auto_8bins_tuning.md``.
"""

from __future__ import annotations

import platform
import warnings
from collections.abc import Callable
from pathlib import Path

import faith_suite as fs
import numpy as np
from bench_faithfulness import versions

import proxyspex_captum as psx
from proxyspex_captum.core.base import InteractionEstimator
from proxyspex_captum.core.sampling import uniform_masks

RESULTS = Path(__file__).parent / "results"
MARGIN = 0.005
PILOT_THRESHOLDS = (0.1, 0.2, 0.3)


def parity_cells(specs: list[tuple[int, int, int, int, int, int]]) -> list[fs.Cell]:
    """Parity-game cells from ``(n, game seed, terms, degree, budget, max_order)``."""
    return [
        fs.Cell(fs.GameSpec.make("fourier", n, seed, terms=terms, degree=degree), budget, k)
        for n, seed, terms, degree, budget, k in specs
    ]


#: Parity games whose SPEX design has 8 bins a group, on seeds used nowhere else.
PARITY_8_BINS = parity_cells(
    [
        (512, 701, 55, 3, 1000, 3),
        (1000, 702, 55, 3, 1000, 3),
        (128, 703, 55, 3, 500, 3),
        (32, 704, 55, 3, 500, 3),
        (512, 706, 60, 2, 1000, 3),
        (1000, 707, 60, 2, 1000, 4),
    ]
)


def bins(cell: fs.Cell) -> int | None:
    """Bins a group of SPEX's design for the cell, or None below SPEX's smallest design."""
    spex = psx.SPEX(max_order=cell.max_order)
    if cell.budget < spex.min_budget(cell.game.n):
        return None
    return 2 ** spex.choose_design(cell.game.n, cell.budget)[1]


def run(
    cell: fs.Cell, prepared: fs.Prepared, seed: int, *, min_bins: int = 8
) -> dict[str, float | str]:
    """ProxySPEX, SPEX and AutoSPEX with ``min_bins`` (``"coded"``) on one cell, and
    the pilot's cross-validated R² on the design's uniform share."""
    n, budget, k = cell.game.n, cell.budget, cell.max_order
    options = {"max_order": k, "random_state": seed, "uncertainty": False}

    def r2(inter: psx.Interactions) -> float:
        return fs.r2(inter.predict(prepared.masks), prepared.truth)

    # A fresh game for every run: a noisy game's noise restarts, as in bench_faithfulness.py.
    def explain(estimator: InteractionEstimator) -> psx.Interactions:
        return estimator.explain(cell.game.build(), n_features=n, budget=budget)

    coded = explain(psx.AutoSPEX(min_bins=min_bins, **options))
    design = psx.SPEX(max_order=k).design(n, budget, np.random.default_rng(seed))
    rng = np.random.default_rng(seed)
    pilot_masks = uniform_masks(n, budget - design.n_coded, rng)
    values = np.asarray(cell.game.build()(pilot_masks), dtype=float)
    (pilot,) = psx.ProxySPEX(**options).fit_samples(pilot_masks, values, rng)
    return {
        "proxyspex": r2(explain(psx.ProxySPEX(**options))),
        "spex": r2(explain(psx.SPEX(**options))),
        "coded": r2(coded),
        "chosen": coded.metadata["chosen"],
        "pilot_cv": float(pilot.metadata["cv_r2"]),
        "uniform": len(pilot_masks),
    }


def rule_results(runs: list[dict]) -> dict[str, list[float]]:
    """Each rule's result minus the better of ProxySPEX and SPEX, run by run."""
    out: dict[str, list[float]] = {"min_bins=16": [], "min_bins=8": []}
    out.update({f"pilot < {t}": [] for t in PILOT_THRESHOLDS})
    for r in runs:
        best = max(r["proxyspex"], r["spex"])
        out["min_bins=16"].append(r["proxyspex"] - best)
        out["min_bins=8"].append(r["coded"] - best)
        for t in PILOT_THRESHOLDS:
            result = r["coded"] if r["pilot_cv"] < t else r["proxyspex"]
            out[f"pilot < {t}"].append(result - best)
    return out


def summary(title: str, runs: list[dict], rules: Callable = rule_results) -> list[str]:
    lines = [
        f"**{title}** ({len(runs)} runs): each rule's R² minus max(ProxySPEX, SPEX).",
        "",
        "| rule | within 0.005 | mean | worst |",
        "|---|---|---|---|",
    ]
    for rule, deltas in rules(runs).items():
        d = np.asarray(deltas)
        within = int(np.sum(d >= -MARGIN))
        lines.append(f"| {rule} | {within} of {len(d)} | {d.mean():+.4f} | {d.min():+.3f} |")
    return [*lines, ""]


def run_cells(cells: list[fs.Cell], *, min_bins: int) -> tuple[list[str], dict[str, list]]:
    """:func:`run` on every cell with its method seed and seeds 1 and 2: the table's
    rows (printed as they come) and the runs, split into parity games and the others."""
    rows: list[str] = []
    runs: dict[str, list] = {"parity": [], "other": []}
    for cell in cells:
        prepared = fs.Prepared.of(cell)
        for seed in (cell.game.method_seed, 1, 2):
            r = run(cell, prepared, seed, min_bins=min_bins)
            runs["parity" if cell.game.family == "fourier" else "other"].append(r)
            line = (
                f"| {cell.label} | {seed} | {r['uniform']} | {r['proxyspex']:.3f} | "
                f"{r['spex']:.3f} | {r['coded']:.3f} ({r['chosen']}) | {r['pilot_cv']:.3f} |"
            )
            print(line, flush=True)
            rows.append(line)
    return rows, runs


def main() -> None:
    warnings.simplefilter("ignore")  # PoorFitWarning on parity games: the table says it
    planted = [c for c in fs.DESIGNS["tuning"]() if c.game.family != "llm"]
    cells = [c for c in planted + PARITY_8_BINS if bins(c) == 8]
    rows, runs = run_cells(cells, min_bins=8)
    lines = [
        "# AutoSPEX at 8 bins a group: coded design or uniform masks? (tuning seeds, issue 18)",
        "",
        f"`python benchmarks/probe_auto_8bins.py` on {platform.machine()}; {versions()}. "
        "The tuning set's planted cells whose SPEX design has 8 bins a group, and six parity "
        "games at 8 bins on tuning seeds 7xx; three method seeds each. R² on each cell's "
        "1,000 held-out masks against the noiseless game. uniform: the design's uniform "
        "share (the pilot's masks); coded: AutoSPEX with `min_bins=8` (which fit it chose); "
        "pilot cv: ProxySPEX's cross-validated R² on the pilot's masks alone.",
        "",
        *summary("Parity games", runs["parity"]),
        *summary("Hierarchical, noisy and SOUM games", runs["other"]),
        "| cell | seed | uniform | ProxySPEX | SPEX | coded | pilot cv |",
        "|---|---|---|---|---|---|---|",
        *rows,
    ]
    out = RESULTS / "auto_8bins_tuning.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
