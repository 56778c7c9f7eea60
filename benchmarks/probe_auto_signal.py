"""Groundwork for an ``auto`` estimator (issue 18): does half the budget tell which method wins?

On the report sets SPEX beat ProxySPEX only on parity-like (Fourier-sparse)
games, and ProxySPEX led on hierarchical and SOUM ones. An estimator that
chooses for the user has to tell the two apart from calls already made. This probe asks whether the
cross-validated R² each method reports (``metadata["cv_r2"]``, no extra model
calls) at *half* the budget predicts which method is better at the *whole*
budget, on the tuning cells of ``bench_faithfulness.py`` (never on a report
set): every parity cell, the first twelve other cells with at least 1,000
calls, and the first eight with fewer (where SPEX cannot run at B/2, which
is part of the answer).

For each cell it runs ProxySPEX and SPEX at B/2 (their ``cv_r2`` and R²) and
at B (R² on the cell's 1,000 held-out masks against the noiseless game), and
says which method the rule "the higher ``cv_r2`` at B/2" picks and what that
pick costs against the better one at B. It measures a signal only: both arms
at B/2 together spend the whole budget, so this is not yet a design that fits
in one.

Run: ``.venv/bin/python benchmarks/probe_auto_signal.py`` (about 6 minutes on
2 cores). Writes ``benchmarks/results/auto_signal_tuning.md``.
"""

from __future__ import annotations

import platform
import warnings
from pathlib import Path

import faith_suite as fs
from bench_faithfulness import versions

import proxyspex_captum as psx

RESULTS = Path(__file__).parent / "results"


def cells() -> list[fs.Cell]:
    tuning = fs.DESIGNS["tuning"]()
    parity = [c for c in tuning if c.game.family == "fourier"]
    others = [c for c in tuning if c.game.family != "fourier"]
    many = [c for c in others if c.budget >= 1000][:12]
    few = [c for c in others if c.budget < 1000][:8]
    return parity + many + few


def run(estimator: type, prepared: fs.Prepared, budget: int) -> tuple[float, float] | None:
    """``(cv_r2, held-out R²)`` of one estimator at ``budget``; None below its smallest budget."""
    cell = prepared.cell
    options = {"uncertainty": False} if estimator is psx.ProxySPEX else {}
    method = estimator(max_order=cell.max_order, random_state=cell.game.method_seed, **options)
    if budget < method.min_budget(cell.game.n):
        return None
    # A fresh game for every run: a noisy game's noise restarts, as in bench_faithfulness.py.
    inter = method.explain(cell.game.build(), n_features=cell.game.n, budget=budget)
    return inter.metadata["cv_r2"], fs.r2(inter.predict(prepared.masks), prepared.truth)


def show(pair: tuple[float, float] | None, *, with_cv: bool = True) -> str:
    """A table entry: ``cv_r2 (R²)``, or the R² alone; ``skip`` when the method could not run."""
    if pair is None:
        return "skip"
    return f"{pair[0]:.3f} ({pair[1]:.3f})" if with_cv else f"{pair[1]:.3f}"


def main() -> None:
    warnings.simplefilter("ignore")  # PoorFitWarning on the parity games is expected
    lines = [
        "| cell | ProxySPEX cv_r2 (R²) at B/2 | SPEX cv_r2 (R²) at B/2 | R² ProxySPEX at B "
        "| R² SPEX at B | rule picks | loss vs the better at B |",
        "|---|---|---|---|---|---|---|",
    ]
    right = judged = 0
    for cell in cells():
        prepared = fs.Prepared.of(cell)
        half = {e: run(e, prepared, cell.budget // 2) for e in (psx.ProxySPEX, psx.SPEX)}
        full = {e: run(e, prepared, cell.budget) for e in (psx.ProxySPEX, psx.SPEX)}
        p_half, s_half = half[psx.ProxySPEX], half[psx.SPEX]
        p_full, s_full = full[psx.ProxySPEX], full[psx.SPEX]
        pick, loss = "–", "–"
        if p_half and s_half and p_full and s_full:
            spex = s_half[0] > p_half[0]
            pick = "SPEX" if spex else "ProxySPEX"
            chosen, other = (s_full[1], p_full[1]) if spex else (p_full[1], s_full[1])
            loss = f"{max(other - chosen, 0.0):.3f}"
            judged += 1
            right += int(chosen >= other - 0.005)
        row = (
            f"| {cell.label} | {show(p_half)} | {show(s_half)} | {show(p_full, with_cv=False)} "
            f"| {show(s_full, with_cv=False)} | {pick} | {loss} |"
        )
        lines.append(row)
        print(row, flush=True)
    text = (
        "# Does half the budget tell which method wins? (tuning set, issue 18)\n\n"
        f"`python benchmarks/probe_auto_signal.py` on {platform.machine()}; {versions()}. "
        "cv_r2: the method's own cross-validated R² on the calls it made; R²: on the "
        "cell's 1,000 held-out masks against the noiseless game. Rule: the method with "
        "the higher cv_r2 at B/2. skip: below the method's smallest budget.\n\n"
        + "\n".join(lines)
        + f"\n\nThe rule's pick is within 0.005 of the better method at B in {right} of "
        f"{judged} cells where both ran at both budgets.\n"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "auto_signal_tuning.md").write_text(text)
    print(f"wrote {RESULTS / 'auto_signal_tuning.md'}")


if __name__ == "__main__":
    main()
