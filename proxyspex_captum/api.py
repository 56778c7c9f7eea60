"""Models behind an OpenAI-compatible API: a client, and scorers over it.

:class:`OpenAIClient` talks to any server that speaks the OpenAI HTTP API
(vLLM, llama.cpp's server, a hosted model). It checks the server, the model
and the key before anything is paid for, paces requests
(``requests_per_second``), counts what they cost (:class:`~proxyspex_captum.scoring.Usage`),
and turns every failure into an :class:`APIError` that says whether sending
the request again can help (``retryable``) and when (``retry_after``). It
does not retry by itself: the value function's executor does
(:func:`~proxyspex_captum.core.executors.run_batches`, with exponential
backoff and jitter), so a retried request is one more model call counted,
and every answer reaches the persistent cache as it arrives.

Two scorers (:class:`~proxyspex_captum.scoring.LLMScorer`) ask it:

- :class:`CompletionsScorer` (``/v1/completions``, raw text prompts): the
  top-k log-probabilities of the next token, and a target's log-probability
  from the prompt's echoed log-probabilities.
- :class:`ChatScorer` (``/v1/chat/completions``, a user message and an
  optional system prompt): the top-k log-probabilities of the first answer
  token: all a closed model exposes (the SPEX paper's protocol,
  e.g. log p("True") − log p("False")).

The API key is read from the environment and sent in the ``Authorization``
header only; it is never logged, printed or stored in the cache.

Examples:
    >>> from proxyspex_captum.api import APIError, top_k_log_prob
    >>> top = {"True": -0.2, " true": -2.5, "False": -1.9}
    >>> round(top_k_log_prob(top, "true", merge_variants=True), 4)  # True and " true"
    -0.1045
    >>> top_k_log_prob(top, "Maybe", merge_variants=True)  # absent: at most the k-th
    -2.5
    >>> APIError("busy", status=429, retryable=True, retry_after=2.0).retry_after
    2.0
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
import urllib.parse
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .core.checks import check_int, check_real
from .scoring import LLMScorer, Prompt, UnsupportedRequest, UsageMeter

__all__ = [
    "APIError",
    "AbsentCandidateWarning",
    "ChatScorer",
    "CompletionsScorer",
    "OpenAIClient",
    "RateLimiter",
    "is_transient",
    "top_k_log_prob",
]

#: What a token absent from the top k gets by default: the k-th listed
#: log-probability, the tightest value the answer allows (it is at most that).
KTH = "kth"
# Seconds the checks before a run wait for the server (listing its models).
CHECK_TIMEOUT = 15.0
#: Requests in flight at once, retries of a failed request and the first backoff
#: (seconds, doubling, with jitter) when the caller does not say: six retries wait
#: about a minute in all, long enough for a server to restart.
DEFAULT_CONCURRENCY = 8
DEFAULT_RETRIES = 6
DEFAULT_BACKOFF = 1.0
# Answers after which a candidate never listed among the top k is warned about.
ABSENT_AFTER = 20
#: Where ``OPENAI_API_KEY`` is sent without being asked for by name.
OPENAI_HOST = "api.openai.com"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class AbsentCandidateWarning(UserWarning):
    """A candidate token is never among the top k listed: its value is always the floor."""


class APIError(RuntimeError):
    """A request to the API failed.

    Attributes:
        status: The HTTP status (``None``: no answer: refused or dropped
            connection, timeout, unreadable body).
        retryable: Whether the same request may succeed later (429, 5xx,
            timeouts, dropped connections, malformed JSON); a refused request
            (400, 404, ...) or an answer without log-probabilities is not.
        retry_after: Seconds the server asked to wait (``Retry-After``), if any.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after

    def __reduce__(self) -> tuple:  # keep the attributes across processes
        return (_api_error, (str(self), self.status, self.retryable, self.retry_after))


def _api_error(message: str, status: Any, retryable: bool, retry_after: Any) -> APIError:
    return APIError(message, status=status, retryable=retryable, retry_after=retry_after)


# The exceptions of HTTP clients (httpx, requests, openai) for failures that may pass.
_TRANSIENT_NAMES = {
    "APIConnectionError",
    "APITimeoutError",
    "RateLimitError",
    "InternalServerError",
    "ConnectError",
    "ConnectTimeout",
    "ReadError",
    "ReadTimeout",
    "RemoteProtocolError",
    "ServiceUnavailableError",
}


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` (or an exception it was raised from) may pass if the request is retried.

    Dropped or refused connections, timeouts, rate limits (HTTP 429) and
    server errors (5xx) may; a malformed request or a missing model may not.
    Captum's providers re-raise the HTTP client's exception as a plain
    ``Exception``: the chain (``__cause__`` / ``__context__``) is searched.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, APIError):
            return current.retryable
        if isinstance(current, (ConnectionError, TimeoutError)):
            return True
        if type(current).__name__ in _TRANSIENT_NAMES:
            return True
        status = getattr(current, "status_code", None)
        if isinstance(status, int) and (status == 429 or status >= 500):
            return True
        current = current.__cause__ or current.__context__
    return False


class RateLimiter:
    """Spaces calls to :meth:`wait` at least ``1 / per_second`` seconds apart, across threads.

    Args:
        per_second: Calls per second; ``None`` does not wait.
    """

    def __init__(self, per_second: float | None) -> None:
        if per_second is not None:
            per_second = check_real("requests_per_second", per_second, 0.0, low_open=True)
        self.per_second = per_second
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if self.per_second is None:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + 1.0 / self.per_second
        if slot > now:
            time.sleep(slot - now)


def _api_key(api_base: str, api_key_env: str | None) -> tuple[str | None, str]:
    """The key to send to ``api_base`` and the variable it comes from.

    A key goes only where the user sends it: the variable they name, or
    ``OPENAI_API_KEY`` to OpenAI's own API. Never in clear text to another
    machine (plain http is for this machine's loopback only).
    """
    url = urllib.parse.urlsplit(api_base)
    if api_key_env is None:
        default = "OPENAI_API_KEY"
        return (os.environ.get(default) if url.hostname == OPENAI_HOST else None), default
    key = os.environ.get(api_key_env)
    if not key:
        raise ValueError(
            f"The API key variable {api_key_env} is not set (or empty): export it, or leave "
            "api_key_env out for a server that needs no key."
        )
    if url.scheme != "https" and url.hostname not in LOOPBACK:
        raise ValueError(
            f"Refusing to send the key in {api_key_env} in clear text to {url.hostname} "
            "(http://): use an https:// address."
        )
    return key, api_key_env


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:  # an HTTP date: not worth parsing, the backoff applies
        return None


class OpenAIClient:
    """An OpenAI-compatible HTTP API, checked before use; thread-safe.

    On construction it lists the server's models: an unreachable server, a
    refused key or a model the server does not serve is an error here, before
    any explanation starts.

    Args:
        api_base: The API's base URL, e.g. ``http://127.0.0.1:8765/v1``.
        model: The model to ask; ``None``: the first one the server lists.
        api_key_env: The environment variable holding the key (it must be set;
            over plain http only to this machine). ``None``: ``OPENAI_API_KEY``
            if set, to ``api.openai.com`` only; no key elsewhere (local
            servers need none).
        timeout: Seconds before a request is abandoned (and retried).
        requests_per_second: Pace requests (all threads together); ``None``: no limit.

    Attributes:
        model: The model's id, as the server names it.
        meter: What the requests cost so far (shared with the scorers).
    """

    def __init__(
        self,
        api_base: str,
        *,
        model: str | None = None,
        api_key_env: str | None = None,
        timeout: float = 60.0,
        requests_per_second: float | None = None,
    ) -> None:
        try:
            import httpx
        except ImportError as err:
            raise ImportError(
                "Remote models need httpx: pip install 'proxyspex-captum[remote]'."
            ) from err
        if not isinstance(api_base, str) or not api_base.startswith(("http://", "https://")):
            raise ValueError(
                "api_base must be an http(s) URL such as http://127.0.0.1:8765/v1, got "
                f"{api_base!r}."
            )
        timeout = check_real("timeout", timeout, 0.0, low_open=True)
        self.api_base = api_base.rstrip("/")
        self.limiter = RateLimiter(requests_per_second)
        self.meter = UsageMeter()
        key, self._key_env = _api_key(self.api_base, api_key_env)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._sent_key = bool(key)
        self._http = httpx.Client(headers=headers, timeout=timeout)
        self._httpx = httpx
        try:
            self.models = self._list_models()
            if model is None:
                if not self.models:
                    raise ValueError(f"The API at {self.api_base} serves no model.")
                model = self.models[0]
            elif model not in self.models:
                raise ValueError(
                    f"The API at {self.api_base} does not serve the model {model!r}; it serves: "
                    f"{', '.join(self.models) or 'nothing'}."
                )
        except BaseException:
            self._http.close()
            raise
        self.model = model

    def __repr__(self) -> str:  # never the key
        return f"OpenAIClient({self.api_base!r}, model={self.model!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OpenAIClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _list_models(self) -> list[str]:
        url = f"{self.api_base}/models"
        try:
            response = self._http.get(url, timeout=CHECK_TIMEOUT)
        except self._httpx.HTTPError as err:
            raise ConnectionError(
                f"Could not reach the API at {self.api_base} ({type(err).__name__}: {err}). Is "
                "the server running (`make serve` starts one on 127.0.0.1:8765), and is the "
                "address right (an OpenAI-compatible base URL usually ends in /v1)?"
            ) from None
        if response.status_code in (401, 403):
            hint = (
                f"the key in {self._key_env} was refused"
                if self._sent_key
                else f"no key was sent: set {self._key_env} or pass api_key_env"
            )
            raise PermissionError(
                f"The API at {self.api_base} refused access (HTTP {response.status_code}): {hint}."
            )
        if response.status_code == 404:
            raise ValueError(
                f"{url} does not exist (HTTP 404): is {self.api_base} an OpenAI-compatible "
                "base URL? It usually ends in /v1."
            )
        if response.status_code >= 400:
            raise ConnectionError(
                f"The API at {self.api_base} answered HTTP {response.status_code} to a list of "
                f"its models: {response.text[:200]}"
            )
        try:
            return [entry["id"] for entry in response.json()["data"]]
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(
                f"{url} did not answer with a list of models ({response.text[:200]!r})."
            ) from err

    def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST ``payload`` (the model filled in) to ``path``; the answer's JSON.

        Raises:
            APIError: The request failed; ``retryable`` says whether to try again.
        """
        self.limiter.wait()
        self.meter.count(requests=1)
        try:
            response = self._http.post(
                f"{self.api_base}{path}", json={"model": self.model, **payload}
            )
        except self._httpx.TimeoutException as err:
            self.meter.count(failed_requests=1)
            raise APIError(f"The request timed out ({err}).", retryable=True) from None
        except self._httpx.TransportError as err:  # refused, reset, dropped mid-answer
            self.meter.count(failed_requests=1)
            raise APIError(
                f"The connection failed ({type(err).__name__}: {err}).", retryable=True
            ) from None
        status = response.status_code
        if status >= 400:
            self.meter.count(failed_requests=1)
            transient = status in (408, 409, 429) or status >= 500
            raise APIError(
                f"HTTP {status} from {path}: {response.text[:300]}",
                status=status,
                retryable=transient,
                retry_after=_retry_after(response.headers) if transient else None,
            )
        try:
            body = response.json()
            if not isinstance(body, dict):
                raise ValueError("not a JSON object")
        except ValueError as err:
            self.meter.count(failed_requests=1)
            raise APIError(
                f"The answer from {path} is not valid JSON ({err}): {response.text[:200]!r}",
                status=status,
                retryable=True,
            ) from None
        usage = body.get("usage") or {}
        self.meter.count(
            prompt_tokens=usage.get("prompt_tokens") or 0,
            completion_tokens=usage.get("completion_tokens") or 0,
        )
        return body


def top_k_log_prob(
    top: Mapping[str, float],
    candidate: str,
    *,
    merge_variants: bool = False,
    floor: float | str = KTH,
) -> float:
    """A candidate token's log-probability, read off a top-k list.

    Args:
        top: The listed tokens and their log-probabilities.
        candidate: The token wanted.
        merge_variants: Also count the tokens that differ from ``candidate``
            only in case and surrounding spaces (``"True"``, ``" true"``), adding
            their probabilities: a chat model's first token may be any of them.
        floor: The value when no listed token matches: a number (the SPEX
            paper used -100), or ``"kth"``: the lowest listed log-probability,
            an upper bound on the absent token's.
    """
    found = _matching(top, candidate, merge_variants)
    if found:
        peak = max(found)
        return peak + math.log(sum(math.exp(lp - peak) for lp in found))
    if floor == KTH:
        return min(top.values()) if top else -math.inf
    return float(floor)


def _matching(top: Mapping[str, float], candidate: str, merge_variants: bool) -> list[float]:
    """The log-probabilities of the listed tokens that are ``candidate`` (or its variants)."""
    if merge_variants:
        wanted = candidate.strip().casefold()
        return [lp for token, lp in top.items() if token.strip().casefold() == wanted]
    return [top[candidate]] if candidate in top else []


def _check_floor(floor: Any) -> float | str:
    return KTH if floor == KTH else check_real("floor", floor)


class _APIScorer(LLMScorer):
    """What the two API scorers share: the client, one request per prompt, the top-k reading."""

    def __init__(
        self,
        client: OpenAIClient,
        *,
        top_logprobs: int,
        floor: float | str,
        merge_variants: bool,
    ) -> None:
        super().__init__()
        if not isinstance(client, OpenAIClient):
            raise TypeError(f"client must be an OpenAIClient, got {type(client).__name__}.")
        self.client = client
        self.meter = client.meter  # one account for everything sent through the client
        self.top_logprobs = check_int("top_logprobs", top_logprobs, 1, 20)
        self.floor = _check_floor(floor)
        self.merge_variants = bool(merge_variants)
        # Per candidate: answers read, and how many listed it (a candidate that is
        # never listed is probably not one token of this model: warned about once).
        self._seen: dict[str, list[int]] = {}
        self._target_widths: dict[str, int] = {}  # tokens of each target (all prompts agree)
        self._seen_lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return f"{self.client.api_base}:{self.client.model}"

    @property
    def identity(self) -> str:
        return (
            f"{type(self).__name__}({self.model_name}, top_logprobs={self.top_logprobs}, "
            f"floor={self.floor}, merge_variants={self.merge_variants})"
        )

    def _request(
        self,
        path: str,
        payload: dict[str, Any],
        read: Callable[[dict[str, Any]], np.ndarray],
    ) -> np.ndarray:
        """One request; its answer read by ``read``. An unreadable answer is a failed request."""
        body = self.client.post(path, payload)
        try:
            return read(body)
        except APIError:
            self.meter.count(failed_requests=1)
            raise
        except Exception as err:  # the same request would be answered the same way
            self.meter.count(failed_requests=1)
            raise APIError(
                f"The answer from {path} carries no usable log-probabilities "
                f"({type(err).__name__}: {err}; {json.dumps(body)[:200]}): the server or model "
                "must support `logprobs` (the OpenAI API's option).",
                retryable=False,
            ) from None

    def _candidates(self, top: Mapping[str, float], candidates: Sequence[str]) -> np.ndarray:
        if not top:
            raise ValueError("no log-probabilities are listed for the first token")
        values = [
            top_k_log_prob(top, c, merge_variants=self.merge_variants, floor=self.floor)
            for c in candidates
        ]
        self._note_absent(top, candidates)
        return np.array(values)

    def _note_absent(self, top: Mapping[str, float], candidates: Sequence[str]) -> None:
        """Warn once about a candidate no answer has listed after ``ABSENT_AFTER`` answers."""
        with self._seen_lock:
            for candidate in candidates:
                seen = self._seen.setdefault(candidate, [0, 0])
                seen[0] += 1
                seen[1] += bool(_matching(top, candidate, self.merge_variants))
                if seen[0] == ABSENT_AFTER and seen[1] == 0:
                    warnings.warn(
                        f"The candidate {candidate!r} was not among the top {self.top_logprobs} "
                        f"first tokens of {ABSENT_AFTER} answers: every mask gets the floor for "
                        "it. Is it one token of this model (e.g. without a leading space for a "
                        "chat answer)?",
                        AbsentCandidateWarning,
                        stacklevel=2,
                    )

    @staticmethod
    def _check_candidates(candidates: Sequence[str | int]) -> list[str]:
        if not all(isinstance(c, str) and c for c in candidates):
            raise UnsupportedRequest(
                f"A remote model's candidates are tokens as text, got {list(candidates)!r}."
            )
        return list(candidates)  # type: ignore[arg-type]


class CompletionsScorer(_APIScorer):
    """A model behind ``/v1/completions``: raw text prompts, as the local model reads them.

    Next-token scores come from the top ``top_logprobs`` log-probabilities of
    one generated token; target scores from the log-probabilities the server
    echoes for the prompt's own tokens (``echo=true``), the target appended.
    The same prompts give the values of :class:`~proxyspex_captum.scoring.HFScorer`
    on the same weights (to what the server's arithmetic changes), when the
    target starts at a token boundary (e.g. with a space): the server
    tokenizes prompt and target together.

    llama.cpp's Python server echoes log-probabilities shifted by one token
    (llama-cpp-python issue #1983): use vLLM (or a server that echoes them
    right) for :meth:`target_log_probs`; next-token scores are right on both.

    Args:
        client: The API.
        top_logprobs: How many next tokens the server lists (the API allows 20 at most).
        floor: The log-probability of a candidate not listed (see :func:`top_k_log_prob`).
        merge_variants: Count case and space variants of a candidate as one.
    """

    def __init__(
        self,
        client: OpenAIClient,
        *,
        top_logprobs: int = 20,
        floor: float | str = KTH,
        merge_variants: bool = False,
    ) -> None:
        super().__init__(
            client, top_logprobs=top_logprobs, floor=floor, merge_variants=merge_variants
        )

    def next_token_log_probs(
        self,
        prompts: Sequence[Prompt],
        candidates: Sequence[str | int],
        *,
        batch_size: int | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        wanted = self._check_candidates(candidates)

        def read(body: dict[str, Any]) -> np.ndarray:
            return self._candidates(body["choices"][0]["logprobs"]["top_logprobs"][0], wanted)

        def ask(prompt: str) -> np.ndarray:
            payload = {
                "prompt": prompt,
                "max_tokens": 1,
                "temperature": 0.0,
                "logprobs": self.top_logprobs,
            }
            return self._request("/completions", payload, read)

        rows = self._each_prompt(prompts, ask, on_batch)
        return rows.reshape(len(prompts), len(wanted))

    def target_log_probs(
        self,
        prompts: Sequence[Prompt],
        target: str | Sequence[int],
        *,
        batch_size: int | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        if not isinstance(target, str) or not target:
            raise UnsupportedRequest("A remote target must be non-empty text.")

        def ask(prompt: str) -> np.ndarray:
            payload = {
                "prompt": prompt + target,
                "max_tokens": 1,
                "temperature": 0.0,
                "echo": True,
                "logprobs": 0,
            }
            return self._request(
                "/completions", payload, lambda body: self._read_target(prompt, target, body)
            )

        return self._each_prompt(prompts, ask, on_batch)

    def _read_target(self, prompt: str, target: str, body: dict[str, Any]) -> np.ndarray:
        """``[total, *per token]`` of ``target``, read off the echo of ``prompt + target``."""
        echoed = body["choices"][0]["logprobs"]
        offsets, values = echoed["text_offset"], echoed["token_logprobs"]
        if len(prompt) not in offsets:
            raise APIError(
                "The prompt's last token runs into the target (no token starts where the "
                "target does): begin the target with a space, or end the prompt at a word "
                "boundary.",
                retryable=False,
            )
        # The target's tokens: those starting inside it (the generated one starts after).
        end = len(prompt) + len(target)
        picked = [float(v) for o, v in zip(offsets, values, strict=True) if len(prompt) <= o < end]
        with self._seen_lock:  # every prompt must split the target into the same tokens
            width = self._target_widths.setdefault(target, len(picked))
        if len(picked) != width:
            raise APIError(
                f"The target is {len(picked)} tokens after one prompt and {width} after "
                "another (it merges with the prompts' ends differently): begin it with a space.",
                retryable=False,
            )
        return np.array([sum(picked), *picked])


class ChatScorer(_APIScorer):
    """A chat model behind ``/v1/chat/completions``: prompts are user messages.

    Only the first answer token's top ``top_logprobs`` log-probabilities are
    read (``max_tokens=1``): all a closed model exposes. A candidate absent
    from the list gets ``floor``. Case and space variants of a candidate
    (``"True"``, ``" true"``) count as one by default.

    Args:
        client: The API.
        system_prompt: Sent before every user message (e.g. "Answer True or False.").
        top_logprobs: How many first tokens the server lists (the API allows 20 at most).
        floor: The log-probability of a candidate not listed (see :func:`top_k_log_prob`).
        merge_variants: Count case and space variants of a candidate as one.
    """

    chat = True

    def __init__(
        self,
        client: OpenAIClient,
        *,
        system_prompt: str | None = None,
        top_logprobs: int = 20,
        floor: float | str = KTH,
        merge_variants: bool = True,
    ) -> None:
        super().__init__(
            client, top_logprobs=top_logprobs, floor=floor, merge_variants=merge_variants
        )
        self.system_prompt = system_prompt

    @property
    def identity(self) -> str:
        return f"{super().identity[:-1]}, system_prompt={self.system_prompt!r})"

    def messages(self, prompt: str) -> list[dict[str, str]]:
        """The chat messages sent for ``prompt``."""
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return [*system, {"role": "user", "content": prompt}]

    def next_token_log_probs(
        self,
        prompts: Sequence[Prompt],
        candidates: Sequence[str | int],
        *,
        batch_size: int | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        wanted = self._check_candidates(candidates)

        def read(body: dict[str, Any]) -> np.ndarray:
            first = body["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
            top = {entry["token"]: float(entry["logprob"]) for entry in first}
            return self._candidates(top, wanted)

        def ask(prompt: str) -> np.ndarray:
            payload = {
                "messages": self.messages(prompt),
                "max_tokens": 1,
                "temperature": 0.0,
                "logprobs": True,
                "top_logprobs": self.top_logprobs,
            }
            return self._request("/chat/completions", payload, read)

        rows = self._each_prompt(prompts, ask, on_batch)
        return rows.reshape(len(prompts), len(wanted))

    def target_log_probs(
        self,
        prompts: Sequence[Prompt],
        target: str | Sequence[int],
        *,
        batch_size: int | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        raise UnsupportedRequest(
            "A chat API gives the log-probabilities of the tokens it generates only (the top k "
            "of the first): score next-token candidates (e.g. True vs False), or use a "
            "completions endpoint that echoes prompt log-probabilities (CompletionsScorer)."
        )
