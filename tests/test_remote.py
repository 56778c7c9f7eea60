"""Remote models against a real vLLM server on 127.0.0.1 serving SmolLM2 (marked ``server``).

One server for the module (about 30 s to start on 2 cores). A proxy in
front of it misbehaves on purpose (429, malformed JSON, an answer without
log-probabilities, a dropped connection, a refused key), and one test
kills the server itself mid-run and starts it again.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from captum.attr import TextTemplateInput, VLLMProvider
from server_helpers import FaultProxy, ServerProcess, serve_python

import proxyspex_captum as psx
from proxyspex_captum.api import APIError, ChatScorer, CompletionsScorer, OpenAIClient
from proxyspex_captum.core.executors import BatchFailedError
from proxyspex_captum.examples import NEGATION_REVIEW, chat_prompt, sentiment_gap_template
from proxyspex_captum.scoring import HFScorer
from proxyspex_captum.server import SERVED_NAME
from proxyspex_captum.text_tasks import TextTask

pytestmark = [
    pytest.mark.server,
    pytest.mark.llm,
    # 100 calls on a 26-word riddle fit SmolLM2 roughly; these tests are about the calls.
    pytest.mark.filterwarnings("ignore::proxyspex_captum.PoorFitWarning"),
]

RIDDLE = (
    "A farmer must row a wolf a goat and a cabbage across a river in a boat that holds "
    "the farmer and all three at once"
).split()
QUESTION = "Does the farmer need more than one crossing?"
BUDGET = 100  # requests of the fault tests' runs


@pytest.fixture(scope="module")
def vllm(tmp_path_factory):
    process = ServerProcess(serve_python(), tmp_path_factory.mktemp("vllm") / "server.log")
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def smollm2():
    return psx.models.load_model()


@pytest.fixture(scope="module")
def local(smollm2):
    model, tokenizer = smollm2
    return HFScorer(model, tokenizer)


def _review_prompts(n_masks: int, seed: int = 0) -> tuple[TextTemplateInput, list[str]]:
    words = NEGATION_REVIEW.split()
    inp = TextTemplateInput(sentiment_gap_template(len(words)), values=words)
    masks = np.random.default_rng(seed).random((n_masks, len(words))) < 0.5
    return inp, [inp.to_model_input(torch.as_tensor(m[None])) for m in masks]


def test_remote_log_probs_agree_with_the_local_model(vllm, local):
    # The server computes with the same fp32 weights: agreement to float rounding
    # (measured: 2e-5 next-token, 3e-5 on a 4-token target).
    client = OpenAIClient(vllm.url)
    assert client.model == SERVED_NAME
    remote = CompletionsScorer(client)
    _, prompts = _review_prompts(12)
    labels = [" positive", " negative"]
    np.testing.assert_allclose(
        remote.next_token_log_probs(prompts, labels),
        local.next_token_log_probs(prompts, labels),
        atol=1e-3,
    )
    target = " positive, clearly"
    np.testing.assert_allclose(
        remote.target_log_probs(prompts, target),
        local.target_log_probs(prompts, target),
        atol=1e-3,
    )
    usage = remote.usage
    assert usage.requests == usage.prompts == 24 and usage.failed_requests == 0
    assert usage.prompt_tokens > 0 and usage.completion_tokens == 24


def test_captums_vllm_provider_explains_like_the_local_model(vllm, smollm2):
    model, tokenizer = smollm2
    inp = TextTemplateInput(
        chat_prompt("Review: {} {} {} {} {}\nIs it positive?"),
        values=["The food", "was", "not", "good", ", sadly."],
    )
    method = psx.ProxySPEXAttribution(psx.RemoteLLMAttribution.placeholder_model, random_state=0)
    remote = psx.RemoteLLMAttribution(method, tokenizer, VLLMProvider(vllm.url), concurrency=4)
    result = remote.attribute(inp, target="No", n_samples=32)  # 2**5: every mask
    local = psx.LLMAttribution(psx.ProxySPEXAttribution(model, random_state=0), tokenizer)
    expected = local.attribute(inp, target="No", n_samples=32)
    torch.testing.assert_close(result.seq_attr, expected.seq_attr, atol=1e-3, rtol=0)
    assert result.usage.requests == result.usage.prompts == 32
    assert result.interactions.n_queries == 32


def test_chat_scorer_reads_the_first_answer_token(vllm):
    scorer = ChatScorer(OpenAIClient(vllm.url), system_prompt="Answer True or False.")
    task = TextTask(RIDDLE, task="truefalse", question=QUESTION)
    values = task.value_function(scorer)(np.ones((2, len(RIDDLE)), dtype=bool))
    assert np.isfinite(values).all() and values[0] == pytest.approx(values[1], abs=1e-4)
    assert scorer.usage.requests == 2
    answer = TextTask(RIDDLE, task="answer", question=QUESTION, answer=" Yes")
    with pytest.raises(ValueError, match="chat API"):  # no target log-probs there
        answer.value_function(scorer)
    assert scorer.usage.requests == 2


def test_faults_are_retried_or_stop_the_run_as_documented(vllm):
    with FaultProxy(vllm.url) as proxy:
        scorer = ChatScorer(OpenAIClient(proxy.url))
        task = TextTask(RIDDLE, task="truefalse", question=QUESTION)
        n = len(RIDDLE)
        clean = ProxyRun(task, scorer, n).run(seed=1)
        # 429 (Retry-After), malformed JSON and a dropped connection: retried, same result.
        before = scorer.usage
        proxy.faults = ["429", "malformed", "drop"]
        retried = ProxyRun(task, scorer, n).run(seed=1)
        everything = np.ones((1, n), dtype=bool)
        assert retried.predict(everything) == pytest.approx(clean.predict(everything), abs=1e-3)
        spent = scorer.usage
        assert spent.requests - before.requests == BUDGET + 3  # the budget + the retried ones
        assert spent.failed_requests - before.failed_requests == 3
        # An answer without log-probabilities stops the run at once, with a clear error.
        # (Sent again, it would have succeeded: the proxy spoils only one answer.)
        proxy.faults = ["no-logprobs"]
        failed = scorer.usage.failed_requests
        with pytest.raises(BatchFailedError, match="no usable log-probabilities") as info:
            ProxyRun(task, scorer, n).run(seed=2, concurrency=1)
        assert isinstance(info.value.__cause__, APIError)
        assert not info.value.__cause__.retryable
        assert scorer.usage.failed_requests == failed + 1


class ProxyRun:
    """A small ProxySPEX run of a text task on a scorer, requests on a thread pool."""

    def __init__(self, task, scorer, n):
        self.values, self.n = task.value_function(scorer), n

    def run(self, seed, concurrency=4):
        vf = psx.ValueFunction(
            self.values,
            self.n,
            batch_size=1,
            executor=ThreadPoolExecutor(concurrency),
            retries=4,
            retry_backoff=0.1,
        )
        try:
            return psx.ProxySPEX(random_state=seed).explain(vf, self.n, BUDGET)
        finally:
            vf.executor.shutdown()


def test_bad_requests_are_refused_before_the_run(vllm, monkeypatch):
    with pytest.raises(ValueError, match=r"does not serve the model 'gpt-9'.*SmolLM2"):
        OpenAIClient(vllm.url, model="gpt-9")
    with pytest.raises(ValueError, match="/v1"):
        OpenAIClient(vllm.url.removesuffix("/v1"))
    with FaultProxy(vllm.url, require_key="sesame") as proxy:
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        with pytest.raises(PermissionError, match="no key was sent: set OPENAI_API_KEY"):
            OpenAIClient(proxy.url)
        monkeypatch.setenv("PSX_TEST_KEY", "wrong")
        with pytest.raises(PermissionError, match="the key in PSX_TEST_KEY was refused") as info:
            OpenAIClient(proxy.url, api_key_env="PSX_TEST_KEY")
        assert "wrong" not in str(info.value)  # never the key itself
        monkeypatch.setenv("PSX_TEST_KEY", "sesame")
        client = OpenAIClient(proxy.url, api_key_env="PSX_TEST_KEY")
        assert "sesame" not in repr(client)
        assert proxy.posts == 0  # nothing was paid for


def test_a_server_killed_mid_run_is_waited_for_and_a_resume_pays_nothing_twice(vllm, tmp_path):
    scorer = CompletionsScorer(OpenAIClient(vllm.url))
    task = TextTask(NEGATION_REVIEW.split(), task="sentiment")
    values = task.value_function(scorer)
    n, budget, cache = len(task.units), 150, tmp_path / "calls.sqlite"

    def explain(executor):  # a request a batch: each answer is cached as it arrives
        return psx.ProxySPEX(random_state=3, batch_size=1).explain(
            values, n, budget, executor=executor, cache=cache, fingerprint="review", retries=8
        )

    killer = threading.Thread(target=_kill_and_restart, args=(vllm, scorer, 40), daemon=True)
    killer.start()
    with ThreadPoolExecutor(4) as pool:
        result = explain(pool)
    killer.join(timeout=600)
    usage = scorer.usage
    assert usage.failed_requests > 0  # the outage was met, and waited out
    assert usage.requests == budget + usage.failed_requests
    assert result.metadata["new_model_calls"] == budget
    # Resuming from the cache: no request at all, the same interactions.
    with ThreadPoolExecutor(4) as pool:
        again = explain(pool)
    assert scorer.usage.requests == usage.requests
    assert again == result


def _kill_and_restart(server: ServerProcess, scorer, after: int) -> None:
    deadline = time.monotonic() + 300  # a run that failed early must not hang the suite
    while scorer.usage.requests < after and time.monotonic() < deadline:
        time.sleep(0.05)
    server.stop()
    server.start()


def test_the_command_line_explains_through_the_api(vllm, tmp_path, capsys):
    from proxyspex_captum.cli import main

    argv = [
        "explain",
        " ".join(RIDDLE),
        "--task",
        "truefalse",
        "--question",
        QUESTION,
        "--api-base",
        vllm.url,
        "--budget",
        "100",
        "--n-test",
        "10",
        "--concurrency",
        "4",
        "--cache",
        str(tmp_path / "calls.sqlite"),
        "--quiet",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"{SERVED_NAME} at {vllm.url}" in out and "API usage:" in out
    assert main(argv) == 0  # resumed: every call from the cache
    assert "API usage" not in capsys.readouterr().out
    assert main([*argv, "--api-model", "gpt-9"]) == 2
    assert "does not serve the model 'gpt-9'" in capsys.readouterr().err
