"""The probe behind AutoSPEX's design (issue 18): can ProxySPEX learn from SPEX's coded masks?

If it can, one design serves both methods: buy SPEX's coded masks (and the
uniform rest of the budget), fit both, keep the better. For every tuning cell
of ``bench_faithfulness.py`` where SPEX can run (never a report set), this
prints the R² on the cell's 1,000 held-out masks of

- ProxySPEX on ``budget`` uniform masks (``explain``, as a user runs it),
- SPEX (``explain``),
- ProxySPEX fitted on SPEX's own samples (``SPEX.design`` then
  ``ProxySPEX.fit_samples``: the coded masks plus the uniform rest),

with the design's bins a group (``2**b``) and uniform share, so the rule
"buy the coded design from 16 bins" can be read off the table.

Run: ``.venv/bin/python benchmarks/probe_auto_design.py`` (about 5 minutes on
2 cores). Writes ``benchmarks/results/auto_design_tuning.md``.
"""

from __future__ import annotations

import platform
import warnings
from pathlib import Path

import faith_suite as fs
import numpy as np
from bench_faithfulness import versions

import proxyspex_captum as psx
from proxyspex_captum.core.subsets import fourier_features

RESULTS = Path(__file__).parent / "results"


def r2(inter: psx.Interactions, prepared: fs.Prepared) -> float:
    return fs.r2(inter.predict(prepared.masks), prepared.truth)


def row(cell: fs.Cell) -> str | None:
    n, budget, k, seed = cell.game.n, cell.budget, cell.max_order, cell.game.method_seed
    spex = psx.SPEX(max_order=k, random_state=seed)
    if budget < spex.min_budget(n):
        return None
    prepared = fs.Prepared.of(cell)
    proxy = psx.ProxySPEX(max_order=k, random_state=seed, uncertainty=False)
    # A fresh game for every run: a noisy game's noise restarts, as in bench_faithfulness.py.
    uniform = r2(proxy.explain(cell.game.build(), n_features=n, budget=budget), prepared)
    coded_spex = r2(spex.explain(cell.game.build(), n_features=n, budget=budget), prepared)
    design = spex.design(n, budget, np.random.default_rng(seed))
    values = np.asarray(cell.game.build()(design.samples), dtype=float)
    (fit,) = proxy.fit_samples(design.samples, values, np.random.default_rng(seed))
    # The fit's Fourier terms, evaluated on the held-out masks.
    predicted = fourier_features(prepared.masks, fit.rows) @ fit.values
    coded_proxy = fs.r2(predicted, prepared.truth)
    bins = 2 ** design.subsampling.shape[2]
    share = 1 - design.n_coded / budget
    return (
        f"| {cell.label} | {bins} | {share:.0%} | {uniform:.3f} | {coded_spex:.3f} | "
        f"{coded_proxy:.3f} | {coded_proxy - uniform:+.3f} |"
    )


def main() -> None:
    warnings.simplefilter("ignore")  # PoorFitWarning on the hard cells: the table says it
    lines = [
        "# Can ProxySPEX learn from SPEX's coded masks? (tuning set, issue 18)",
        "",
        f"`python benchmarks/probe_auto_design.py` on {platform.machine()}; {versions()}. "
        "R² on each cell's 1,000 held-out masks against the noiseless game. bins: SPEX's "
        "design's bins a group at this budget; uniform: the share of the budget its design "
        "leaves to uniform masks. Last column: ProxySPEX on SPEX's samples minus ProxySPEX "
        "on as many uniform masks.",
        "",
        "| cell | bins | uniform | ProxySPEX | SPEX | ProxySPEX on SPEX's samples | Δ |",
        "|---|---|---|---|---|---|---|",
    ]
    for cell in fs.DESIGNS["tuning"]():
        line = row(cell)
        if line is not None:
            print(line, flush=True)
            lines.append(line)
    out = RESULTS / "auto_design_tuning.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
