"""Remote models: requests per second against a local vLLM, and the local prefix cache's speed-up.

Two measurements, each side by side in one run:

1. Requests per second at concurrency 1, 4 and 16 against SmolLM2 served by
   vLLM on 127.0.0.1 (what ``make serve`` starts), for the chat endpoint
   (True/False riddle, top-20 log-probabilities of the first answer token)
   and the completions endpoint (the sentiment prompt's next token). Every
   repeat sends fresh masked prompts (vLLM caches prefixes itself).
2. The local scorer (:class:`~proxyspex_captum.scoring.HFScorer`) with and
   without the prompts' shared prefix computed once, on SmolLM2: seconds
   per masked prompt and the largest difference in the values, for the
   built-in sentiment prompt (a short shared prefix) and a riddle prompt
   with instructions before the text (a long one).

Run: ``.venv/bin/python benchmarks/bench_remote.py [--repeats 3] [--requests 160]``
(needs ``make install-serve``). Writes ``benchmarks/results/remote.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from captum.attr import TextTemplateInput
from common import median_seconds

import proxyspex_captum as psx
from proxyspex_captum.api import ChatScorer, CompletionsScorer, OpenAIClient
from proxyspex_captum.core.checks import usable_cores
from proxyspex_captum.examples import NEGATION_REVIEW, RIDDLES, chat_prompt
from proxyspex_captum.scoring import HFScorer
from proxyspex_captum.text_tasks import TextTask

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]
CONCURRENCY = (1, 4, 16)
# Instructions before the text: the kind of fixed prefix a real prompt carries.
INSTRUCTIONS = (
    "You are a careful reasoning assistant. You will read a short puzzle. Puzzles like it are "
    "famous, but this one may have been changed in a small way that changes its answer, so do "
    "not answer from memory: read every word, think about what the changed words imply, and "
    "only then decide. Reply with exactly one word, True or False, and nothing else.\n\n"
    "Puzzle: "
)


def throughput(url: str, requests: int, repeats: int) -> list[str]:
    """Rows of requests per second, per endpoint and concurrency."""
    client = OpenAIClient(url)
    riddle = RIDDLES[0]
    cases = {
        "chat (True/False riddle)": (
            ChatScorer(client),
            TextTask(riddle.text.split(), task="truefalse", question=riddle.question),
        ),
        "completions (sentiment)": (
            CompletionsScorer(client),
            TextTask(NEGATION_REVIEW.split(), task="sentiment"),
        ),
    }
    rows = []
    seed = 0
    for name, (scorer, task) in cases.items():
        values = task.value_function(scorer)
        n = len(task.units)
        base = None
        for concurrency in CONCURRENCY:
            times = []
            for _ in range(repeats):
                seed += 1  # fresh prompts every time
                masks = np.random.default_rng(seed).random((requests, n)) < 0.5
                with ThreadPoolExecutor(concurrency) as pool:
                    vf = psx.ValueFunction(values, n, batch_size=1, executor=pool, cache=False)
                    tic = time.perf_counter()
                    vf(masks)
                    times.append(time.perf_counter() - tic)
            seconds = statistics.median(times)
            rate = requests / seconds
            base = base or rate
            rows.append(
                f"| {name} | {concurrency} | {seconds:.2f} | {rate:.1f} | {rate / base:.2f}× |"
            )
    usage = client.meter.snapshot()
    rows.append("")
    rows.append(
        f"All requests: {usage.requests} ({usage.failed_requests} failed), "
        f"{usage.prompt_tokens} prompt tokens, {usage.completion_tokens} completion tokens."
    )
    return rows


def prefix_cache(repeats: int, n_prompts: int) -> list[str]:
    """Rows of seconds per prompt with and without the shared prefix's key/value cache."""
    model, tokenizer = psx.models.load_model()
    riddle = RIDDLES[0]
    words = riddle.text.split()
    review = NEGATION_REVIEW.split()
    riddle_body = (
        " ".join("{}" for _ in words) + "\n\n" + riddle.question + "\nAnswer True or False."
    )
    cases = {
        "sentiment prompt (review first)": (
            TextTask(review, task="sentiment").template,
            review,
            [" positive", " negative"],
        ),
        "riddle with instructions first": (
            chat_prompt(INSTRUCTIONS + riddle_body),
            words,
            ["True", "False"],
        ),
    }
    rows = []
    for name, (template, units, labels) in cases.items():
        inp = TextTemplateInput(template, values=units)
        masks = np.random.default_rng(0).random((n_prompts, len(units))) < 0.5
        prompts = [inp.to_model_input(torch.as_tensor(m[None])) for m in masks]
        results, seconds = {}, {}
        for cached in (False, True, False, True):  # interleaved: same machine state for both
            scorer = HFScorer(model, tokenizer, prefix_cache=cached)
            t = median_seconds(
                lambda s=scorer, p=prompts, c=labels: s.next_token_log_probs(p, c), repeats
            )
            seconds.setdefault(cached, []).append(t)
            results[cached] = scorer.next_token_log_probs(prompts, labels)
            usage = scorer.usage
        shared = usage.cached_prompt_tokens / max(usage.prompt_tokens, 1)
        plain, fast = min(seconds[False]), min(seconds[True])
        diff = float(np.abs(results[True] - results[False]).max())
        rows.append(
            f"| {name} | {usage.prompt_tokens / usage.prompts:.0f} | {shared:.0%} | "
            f"{1000 * plain / n_prompts:.1f} | {1000 * fast / n_prompts:.1f} | "
            f"{plain / fast:.2f}× | {diff:.1e} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--requests", type=int, default=160, help="requests per measurement")
    parser.add_argument("--prompts", type=int, default=96, help="prompts per prefix measurement")
    parser.add_argument("--python", default=str(ROOT / ".venv-serve" / "bin" / "python"))
    args = parser.parse_args()
    torch.set_num_threads(1)  # the server gets the other core

    from proxyspex_captum import server

    port = 8790
    url = server.base_url(port)
    with tempfile.TemporaryFile() as log:
        tic = time.perf_counter()
        process = server.start(args.python, port=port, log=log)
        try:
            server.wait_ready(url, process)
            startup = time.perf_counter() - tic
            print(f"vLLM ready in {startup:.1f} s", file=sys.stderr)
            rates = throughput(url, args.requests, args.repeats)
        finally:
            os.killpg(process.pid, 9)
            process.wait()
    prefix = prefix_cache(args.repeats, args.prompts)
    lines = [
        "## Remote models",
        "",
        f"Machine: {platform.machine()}, {usable_cores()} usable cores, Python "
        f"{platform.python_version()}. Medians of {args.repeats} runs, side by side in one run "
        "of `benchmarks/bench_remote.py`.",
        "",
        "### Requests per second against vLLM (CPU, eager) serving SmolLM2 on 127.0.0.1",
        "",
        f"The server started in {startup:.0f} s. {args.requests} fresh masked prompts per "
        "measurement, one request each, on a thread pool (`ValueFunction(batch_size=1, "
        "executor=ThreadPoolExecutor(c))`).",
        "",
        "| endpoint | concurrency | seconds | requests/s | vs concurrency 1 |",
        "|---|---|---|---|---|",
        *rates,
        "",
        "### The local scorer's prefix cache (SmolLM2 on the CPU, torch with 1 thread)",
        "",
        f"{args.prompts} masked prompts, 16 per forward pass, next-token log-probabilities; "
        "the fastest of two interleaved medians each.",
        "",
        "| prompt | tokens per prompt | shared prefix | ms per prompt, recomputed | "
        "ms per prompt, prefix cached | speed-up | max abs diff |",
        "|---|---|---|---|---|---|---|",
        *prefix,
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "remote.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
