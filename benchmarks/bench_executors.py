"""Model calls on executors: throughput, overhead per batch, and the cost of the cache.

Three measurements, side by side in one run:

1. A sleep-bound model (``--sleep`` seconds per batch, e.g. a remote API or a
   GPU behind a queue): masks per second and the overhead per batch of
   threads, processes, Dask and Ray with 1, 2 and 4 workers, against the
   ideal ``ceil(batches / workers) · sleep``.
2. SmolLM2 (the embedded model) on a sentiment text: masks per second per
   executor and worker count. Each worker loads the model once
   (``TaskValueFunction`` through ``replica``); the first explanation on a new
   executor pays that ("cold"), the second reuses it ("warm").
3. The persistent cache: seconds per mask written (one transaction per batch)
   and read back, against the in-memory path.

Every run of a configuration gives the same values (checked here: the
explanations are compared with the serial one).

Run: ``.venv/bin/python benchmarks/bench_executors.py [--repeats 3] [--skip-llm]``.
Writes ``benchmarks/results/executors.md``.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import tempfile
import time

import numpy as np
from common import median_seconds, write_results

import proxyspex_captum as psx
from proxyspex_captum.core import ValueFunction
from proxyspex_captum.core.cache import MaskStore
from proxyspex_captum.core.sampling import uniform_masks
from proxyspex_captum.games import hierarchical_game

KINDS = ("threads", "processes", "dask", "ray")
WORKERS = (1, 2, 4)


class SleepModel:
    """A planted game that takes ``seconds`` per batch, like a call that waits on I/O."""

    def __init__(self, n_features: int, seconds: float) -> None:
        self.game = hierarchical_game(n_features, n_terms=20, max_order=3, random_state=0)
        self.seconds = seconds

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        time.sleep(self.seconds)
        return self.game(masks)


def sleep_table(args: argparse.Namespace) -> list[str]:
    n, k, batch = 40, args.masks, args.batch
    model = SleepModel(n, args.sleep)
    masks = uniform_masks(n, k, np.random.default_rng(0))
    batches = math.ceil(k / batch)
    serial = median_seconds(lambda: ValueFunction(model, n, batch_size=batch)(masks), args.repeats)
    reference = ValueFunction(model, n, batch_size=batch)(masks)
    lines = [
        f"### Sleep-bound model: {args.sleep * 1000:.0f} ms per batch, {k} masks in "
        f"{batches} batches of {batch}",
        "",
        f"Serial: {serial:.2f} s ({k / serial:.0f} masks/s).",
        "",
        "| executor | workers | seconds | masks/s | speed-up | ideal | overhead per batch |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind in KINDS:
        for workers in WORKERS:
            with psx.executors.start(kind, workers=workers) as pool:
                ValueFunction(model, n, batch_size=batch, executor=pool)(masks[:batch])  # warm
                out = []

                def run(pool=pool, out=out):
                    out.append(ValueFunction(model, n, batch_size=batch, executor=pool)(masks))

                seconds = median_seconds(run, args.repeats)
            assert all(np.array_equal(o, reference) for o in out), (kind, workers)
            ideal = math.ceil(batches / workers) * args.sleep
            overhead = (seconds - ideal) / batches * 1000
            lines.append(
                f"| {kind} | {workers} | {seconds:.2f} | {k / seconds:.0f} | "
                f"{serial / seconds:.2f}× | {ideal:.2f} | {overhead:+.1f} ms |"
            )
        print("\n".join(lines[-len(WORKERS) :]), flush=True)
    return lines


def llm_table(args: argparse.Namespace) -> list[str]:
    from proxyspex_captum.examples import NEGATION_REVIEW
    from proxyspex_captum.text_tasks import TaskValueFunction, TextTask, load_llm, split_units

    units = split_units(NEGATION_REVIEW, "word")
    n = len(units)
    llm = load_llm("smollm2")
    task = TextTask(units)
    values = TaskValueFunction(task, model="smollm2", batch_size=args.llm_batch)
    values.adopt(llm)
    masks = uniform_masks(n, args.llm_masks, np.random.default_rng(0))
    batches = math.ceil(len(masks) / args.llm_batch)
    tic = time.perf_counter()
    reference = ValueFunction(values, n, batch_size=args.llm_batch)(masks)
    serial = time.perf_counter() - tic
    lines = [
        f"### SmolLM2-135M, sentiment of a {n}-word review: {len(masks)} masked prompts in "
        f"{batches} forward passes of {args.llm_batch}",
        "",
        f"Serial (this process, torch with {_torch_threads()} intra-op thread(s)): {serial:.1f} s "
        f"({len(masks) / serial:.1f} prompts/s).",
        "",
        "| executor | workers | cold s (loads the model) | warm s | prompts/s (warm) | "
        "speed-up (warm) | max abs diff vs serial |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind in KINDS:
        for workers in WORKERS:
            if kind != "threads" and workers > args.llm_max_processes:
                continue
            with psx.executors.start(kind, workers=workers) as pool:
                times, diffs = [], []
                for _ in range(2):  # cold, then warm
                    tic = time.perf_counter()
                    out = ValueFunction(values, n, batch_size=args.llm_batch, executor=pool)(masks)
                    times.append(time.perf_counter() - tic)
                    diffs.append(float(np.max(np.abs(out - reference))))
            lines.append(
                f"| {kind} | {workers} | {times[0]:.1f} | {times[1]:.1f} | "
                f"{len(masks) / times[1]:.1f} | {serial / times[1]:.2f}× | {max(diffs):.1e} |"
            )
            print(lines[-1], flush=True)
    return lines


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def cache_table(args: argparse.Namespace) -> list[str]:
    lines = [
        "### The persistent cache (SQLite, WAL): cost per mask",
        "",
        "| features | masks | batch | in memory: time per mask | "
        "write (new file): time per mask | read back (rerun): time per mask |",
        "|---|---|---|---|---|---|",
    ]
    for n, k, batch in ((40, 5000, 50), (512, 5000, 50), (1000, 2000, 20)):
        game = hierarchical_game(n, n_terms=20, max_order=3, random_state=0)
        masks = uniform_masks(n, k, np.random.default_rng(1))
        memory = median_seconds(
            lambda g=game, n=n, b=batch, m=masks: ValueFunction(g, n, batch_size=b)(m),
            args.repeats,
        )
        writes, reads = [], []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as folder:
                path = os.path.join(folder, "values.sqlite")
                with MaskStore(path, fingerprint="bench", n_features=n) as store:
                    tic = time.perf_counter()
                    ValueFunction(game, n, batch_size=batch, store=store)(masks)
                    writes.append(time.perf_counter() - tic)
                with MaskStore(path, fingerprint="bench", n_features=n) as store:
                    tic = time.perf_counter()
                    vf = ValueFunction(game, n, batch_size=batch, store=store)
                    vf(masks)
                    reads.append(time.perf_counter() - tic)
                    assert vf.n_queries == 0
        write, read = statistics.median(writes), statistics.median(reads)
        lines.append(
            f"| {n} | {k} | {batch} | {memory / k * 1e6:.1f} µs | {write / k * 1e6:.1f} µs | "
            f"{read / k * 1e6:.1f} µs |"
        )
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sleep", type=float, default=0.05)
    parser.add_argument("--masks", type=int, default=800)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--llm-masks", type=int, default=128)
    parser.add_argument("--llm-batch", type=int, default=8)
    parser.add_argument(
        "--llm-max-processes",
        type=int,
        default=2,
        help="most SmolLM2 worker processes (default 2: each loads a model and, on a "
        "2-core machine, more only oversubscribe)",
    )
    parser.add_argument("--skip-llm", action="store_true")
    args = parser.parse_args()
    header = [
        "## Model calls on executors",
        "",
        f"Machine: {platform.processor() or platform.machine()}, "
        f"{len(os.sched_getaffinity(0))} usable cores, Python {platform.python_version()}. "
        f"Medians of {args.repeats} runs; all configurations measured side by side in one "
        "run of `benchmarks/bench_executors.py`. Every executor returned the serial values "
        "(checked).",
        "",
    ]
    sections = [sleep_table(args), cache_table(args)]
    if not args.skip_llm:
        sections.append(llm_table(args))
    text = "\n".join(header + [line for s in sections for line in [*s, ""]])
    write_results("executors.md", text)


if __name__ == "__main__":
    main()
