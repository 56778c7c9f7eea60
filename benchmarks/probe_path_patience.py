"""Does ending the cross-validated lasso paths early change any result? Old and new, side by side.

``sparse_fit.PATH_PATIENCE`` ends a lasso path once its held-out error has
stayed above ``STOP_RATIO`` times its least for that many penalties. ProxySPEX's
lassos over the proxy's terms have used it since the third 2026-12-06 session;
this probe checks it for the paths that took it in the fourth: the first-order
lasso (``score_linear``, ProxySPEX's and SPEX's) and SPEX's lasso over its
support and the main effects. For every planted cell of the tuning, report and
report2 sets it runs ``--method`` twice, in process, each time on a freshly
built game (the noisy games draw their noise in call order): once as
committed, once with those paths run whole (the pool lassos keep their rule,
as before the change). It prints both R² (``SAME`` when bit-identical) and
both runs' own wall and CPU seconds, then the totals.

Run: ``.venv/bin/python benchmarks/probe_path_patience.py psx-proxyspex``
(or ``psx-spex``, ``psx-auto``). Prints only; the logs of 2026-12-06 are in
``benchmarks/results/path_patience/``.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as bench_faithfulness.py, before LightGBM

import faith_suite as fs

from proxyspex_captum.core import sparse_fit, spex


def set_patience(value: int | None) -> None:
    """The patience of the first-order and SPEX refit paths (``None``: whole paths)."""
    sparse_fit.PATH_PATIENCE = value
    spex.PATH_PATIENCE = value


def main() -> None:
    method = sys.argv[1] if len(sys.argv) > 1 else "psx-proxyspex"
    committed = sparse_fit.PATH_PATIENCE
    same = differ = 0
    cpu_new = cpu_old = 0.0
    for design in ("tuning", "report", "report2"):
        for cell in fs.DESIGNS[design]():
            set_patience(committed)
            new = fs.run_one(fs.Prepared.of(cell), method)
            if "r2" not in new:  # not run there (budget below the method's minimum), or failed
                if new.get("error"):
                    print(design, cell.key[:72], "ERROR", new["error"], flush=True)
                continue
            set_patience(None)
            old = fs.run_one(fs.Prepared.of(cell), method)
            set_patience(committed)
            if "r2" not in old:
                print(design, cell.key[:72], "ERROR (whole paths)", old.get("error"), flush=True)
                continue
            equal = new["r2"] == old["r2"]
            same, differ = same + equal, differ + (not equal)
            cpu_new, cpu_old = cpu_new + new["cpu_seconds"], cpu_old + old["cpu_seconds"]
            verdict = "SAME" if equal else f"DIFF {new['r2'] - old['r2']:+.2e}"
            print(
                design,
                cell.key[:72],
                f"{new['r2']:.6f} {old['r2']:.6f}",
                verdict,
                f"cpu {new['cpu_seconds']:.2f} {old['cpu_seconds']:.2f}",
                f"wall {new['seconds']:.2f} {old['seconds']:.2f}",
                flush=True,
            )
    print("same", same, "diff", differ, "cpu new", round(cpu_new, 1), "old", round(cpu_old, 1))


if __name__ == "__main__":
    main()
