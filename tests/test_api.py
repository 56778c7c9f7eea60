"""The API client's pieces that need no server: reading top-k lists, pacing, failures, refusals."""

from __future__ import annotations

import math
import pickle
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from server_helpers import free_port

from proxyspex_captum.api import (
    APIError,
    ChatScorer,
    OpenAIClient,
    RateLimiter,
    is_transient,
    top_k_log_prob,
)
from proxyspex_captum.core.executors import BatchFailedError, run_batches

TOP = {"True": -0.5, " true": -1.5, "False": -2.0, "Maybe": -6.0}


def test_top_k_log_prob_exact_merged_and_absent():
    assert top_k_log_prob(TOP, "True") == -0.5
    merged = top_k_log_prob(TOP, "true", merge_variants=True)
    assert merged == pytest.approx(math.log(math.exp(-0.5) + math.exp(-1.5)))
    assert top_k_log_prob(TOP, "true") == -6.0  # exact match only: absent, the k-th
    assert top_k_log_prob(TOP, "No", floor=-100) == -100.0
    assert top_k_log_prob({}, "No") == -math.inf


def test_rate_limiter_spaces_calls_across_threads():
    limiter = RateLimiter(20.0)
    tic = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: limiter.wait(), range(8)))
    assert time.monotonic() - tic >= 7 / 20 - 1e-3  # 8 calls: at least 7 intervals
    with pytest.raises(ValueError, match="requests_per_second"):
        RateLimiter(0)
    with pytest.raises(TypeError):
        RateLimiter("fast")


def test_transient_failures_are_recognised_through_exception_chains():
    def wrapped(inner: BaseException) -> Exception:
        try:
            try:
                raise inner
            except BaseException as err:
                raise Exception(f"Unexpected error: {err}")  # noqa: B904 (as Captum's provider)
        except Exception as outer:
            return outer

    assert is_transient(wrapped(ConnectionRefusedError()))
    assert is_transient(wrapped(TimeoutError()))
    assert not is_transient(wrapped(ValueError("bad request")))

    class HTTPStatusError(Exception):
        def __init__(self, status_code: int) -> None:
            self.status_code = status_code

    assert is_transient(HTTPStatusError(503)) and is_transient(HTTPStatusError(429))
    assert not is_transient(HTTPStatusError(404))
    assert not is_transient(APIError("refused", status=400, retryable=False))


def test_api_errors_keep_their_attributes_across_processes():
    error = pickle.loads(pickle.dumps(APIError("busy", status=429, retryable=True, retry_after=3)))
    assert (error.status, error.retryable, error.retry_after) == (429, True, 3)


def test_run_batches_does_not_retry_what_cannot_pass_and_obeys_retry_after():
    masks = np.ones((4, 3), dtype=bool)
    calls: list[int] = []

    def refused(batch):
        calls.append(len(batch))
        raise APIError("HTTP 400: bad prompt", status=400, retryable=False)

    with ThreadPoolExecutor(1) as pool, pytest.raises(BatchFailedError, match="HTTP 400"):
        run_batches(refused, masks, [0, 4], executor=pool, on_result=lambda *a: None, retries=5)
    assert calls == [4]  # once: a refused request is not sent again

    seen: list[float] = []

    def busy_once(batch):
        seen.append(time.monotonic())
        if len(seen) == 1:
            raise APIError("HTTP 429", status=429, retryable=True, retry_after=0.3)
        return batch.sum(axis=1)

    results = {}
    with ThreadPoolExecutor(1) as pool:
        run_batches(
            busy_once,
            masks,
            [0, 4],
            executor=pool,
            on_result=results.__setitem__,
            retries=2,
            backoff=0.0,
        )
    assert len(seen) == 2 and seen[1] - seen[0] >= 0.3 - 1e-3
    assert results[0].tolist() == [3, 3, 3, 3]


def test_the_client_refuses_bad_addresses_and_missing_keys_before_any_request(monkeypatch):
    with pytest.raises(ValueError, match="http"):
        OpenAIClient("127.0.0.1:8765/v1")
    with pytest.raises(ConnectionError, match="Could not reach"):
        OpenAIClient(f"http://127.0.0.1:{free_port()}/v1")
    monkeypatch.delenv("PSX_TEST_MISSING_KEY", raising=False)
    with pytest.raises(ValueError, match="PSX_TEST_MISSING_KEY is not set"):
        OpenAIClient("http://127.0.0.1:1/v1", api_key_env="PSX_TEST_MISSING_KEY")


def test_scorer_options_are_checked():
    with pytest.raises(TypeError, match="OpenAIClient"):
        ChatScorer("http://127.0.0.1:8765/v1")
