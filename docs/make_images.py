"""Make the pictures that the README and the docs' home page show: the demo's plots.

Runs ``make demo``'s command (``proxyspex-captum explain --example``: SmolLM2
explains its sentiment on the built-in review, seed 0) through the CLI's own
entry point, then draws its result with :func:`proxyspex_captum.plots.text`
and :func:`proxyspex_captum.plots.network`, the functions behind the demo's
``text.png`` and ``network.png``, at a size fit for a web page (each PNG well
under 200 KB). Deterministic on one machine: the run is seeded, and the PNGs
carry no date or version metadata. Other machines' BLAS kernels may shift the
last digits of the coefficients (see the README's demo section).

Usage (from the repository root, after ``make install``)::

    .venv/bin/python docs/make_images.py            # writes docs/images/demo_*.png
    .venv/bin/python docs/make_images.py --out DIR  # somewhere else
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed

import matplotlib.pyplot as plt

from proxyspex_captum import Interactions, plots
from proxyspex_captum.cli import main as cli_main

IMAGES = Path(__file__).parent / "images"
#: The demo's command line (the Makefile's ``demo`` target), seed spelled out.
DEMO_ARGS = ["explain", "--example", "--seed", "0", "--quiet"]
#: Pixels per inch of the saved pictures: sharp on a web page, small files.
DPI = 110
#: Ask for less than this, so a regression is caught here and not on the page.
MAX_BYTES = 200_000


def run_demo(workdir: Path) -> tuple[Interactions, list[str]]:
    """Run the demo's command, writing its outputs to ``workdir``; returns its result."""
    status = cli_main([*DEMO_ARGS, "--out", str(workdir)])
    if status != 0:
        raise SystemExit(f"The demo command failed with exit status {status}.")
    data = json.loads((workdir / "result.json").read_text(encoding="utf-8"))
    return Interactions.from_dict(data["interactions"]), list(data["units"])


def draw(interactions: Interactions, units: list[str], out: Path) -> list[Path]:
    """Save the text-with-arcs and the network pictures of ``interactions`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    # Seven words a line: the review on two lines stays legible in a page's text column.
    for name, make in (
        ("demo_text.png", lambda: plots.text(interactions, units, k=5, words_per_line=7)),
        ("demo_network.png", lambda: plots.network(interactions, k=10)),
    ):
        fig, _ = make()
        path = out / name
        # metadata: no Software entry, so the bytes do not change with matplotlib's version.
        fig.savefig(path, dpi=DPI, bbox_inches="tight", metadata={"Software": None})
        plt.close(fig)
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise SystemExit(f"{path} is {size} bytes, over {MAX_BYTES}: lower DPI.")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=IMAGES, help="folder for the PNGs")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        interactions, units = run_demo(Path(tmp))
    for path in draw(interactions, units, args.out):
        print(f"wrote {path} ({path.stat().st_size // 1000} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
