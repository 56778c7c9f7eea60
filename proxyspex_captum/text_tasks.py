"""Text split into features, and what an LLM is asked about it, as a value function.

The command line and the tutorials explain an LLM's behaviour on a text:
the text is cut into units (words, sentences or tokens), a prompt is built
around them (a sentiment question, a question about a passage, or the text
itself), and the value of a mask is a number the LLM gives to the prompt
with only the kept units: the positive-vs-negative logit gap, or the
log-probability of an answer.

Examples:
    >>> from proxyspex_captum.text_tasks import split_units
    >>> split_units("Not bad. Not bad at all!", "sentence")
    ['Not bad.', 'Not bad at all!']
    >>> split_units("Not bad at all", "word")
    ['Not', 'bad', 'at', 'all']
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import regex

from .core.executors import replica
from .examples import SENTIMENT_LABELS, chat_prompt, sentiment_gap_template, sentiment_question

__all__ = ["TASKS", "UNITS", "TaskValueFunction", "TextTask", "split_units"]

UNITS = ("word", "sentence", "token")
TASKS = ("sentiment", "truefalse", "answer", "generate")
#: The answers the ``"truefalse"`` task compares (the SPEX paper's closed-model protocol).
TRUE_FALSE = ("True", "False")
# A sentence ends at . ! ? (and their closing quotes or brackets) before a space, at
# 。！？ (no space follows them), or at a blank line (a title, a list item).
_SENTENCE_END = regex.compile(
    r"(?<=[.!?][\"'”’)\]]*)\s+"  # . ! ? then closing quotes or brackets, then a space
    r"|(?<=[。！？][\"'”’)\]」』]*)\s*"  # the CJK ones, spaced or not
    r"|\s*\n\s*\n\s*"  # a blank line
)
# One extended grapheme cluster (Unicode UAX #29): what a reader sees as one character,
# e.g. a family emoji joined by ZWJs, a flag, a heart with its variation selector.
_GRAPHEME = regex.compile(r"\X")


def split_units(text: str, unit: str, tokenizer: Any = None) -> list[str]:
    """Cut ``text`` into features: whitespace words, sentences, or the tokenizer's tokens.

    Token units are the decoded pieces of each token (leading spaces kept), so
    joining them gives the text back. Tokens never split a character a reader
    sees as one: the tokens of one grapheme cluster (a multi-byte character,
    an emoji with its skin tone, variation selector or zero-width joiners, a
    flag, a letter with its combining accent) form one unit.

    Args:
        text: The text (leading and trailing whitespace is dropped).
        unit: ``"word"`` (split on whitespace), ``"sentence"`` (after ``.``,
            ``!`` or ``?`` followed by whitespace) or ``"token"``.
        tokenizer: The model's tokenizer (``unit="token"`` only).

    Returns:
        The units, in order.
    """
    text = text.strip()
    if unit == "word":
        return text.split()
    if unit == "sentence":
        return [s for s in _SENTENCE_END.split(text) if s]
    if unit == "token":
        if tokenizer is None:
            raise ValueError("unit='token' needs the model's tokenizer.")
        return _whole_graphemes(_token_pieces(tokenizer, text))
    raise ValueError(f"Unknown unit {unit!r}; choose one of {', '.join(UNITS)}.")


def _token_pieces(tokenizer: Any, text: str) -> list[str]:
    """The text of each token of ``text``, such that the pieces join into its decoding.

    Each piece is what its token adds to the decoding of the tokens before it, not
    the token decoded alone: SentencePiece decoders (Llama 2, Mistral) drop the
    leading space of a decoding, so decoded alone every word lost its space and the
    kept units ran together. A character split over several byte-level tokens
    decodes to U+FFFD until its last byte: those tokens form one piece, so every
    piece is readable text.
    """
    ids = tokenizer.encode(text, add_special_tokens=False)
    pieces: list[str] = []
    done, start = "", 0  # the decoding of ids[:start], the tokens already in pieces
    for end in range(1, len(ids) + 1):
        decoded = tokenizer.decode(ids[:end])
        if end < len(ids) and (decoded.endswith("\ufffd") or decoded == done):
            continue  # an unfinished character, or a token that adds no text yet
        if decoded.startswith(done):
            pieces.append(decoded[len(done) :])
        else:  # the decoder rewrote earlier text (a clean-up of spaces): decode alone
            pieces.append(tokenizer.decode(ids[start:end]))
        done, start = decoded, end
    return [piece for piece in pieces if piece]


def _whole_graphemes(pieces: list[str]) -> list[str]:
    """Merge consecutive pieces so that no grapheme cluster is split between two of them.

    A tokenizer cuts ``"👨‍👩‍👧"`` into the three people and the two zero-width
    joiners, and ``"❤️"`` into the heart and its variation selector: as
    features, the halves would be masked apart and shown as invisible units.
    """
    boundaries = {match.end() for match in _GRAPHEME.finditer("".join(pieces))}
    units: list[str] = []
    current, offset = "", 0
    for piece in pieces:
        current += piece
        offset += len(piece)
        if offset in boundaries:
            units.append(current)
            current = ""
    if current:
        units.append(current)
    return units


def _escape(text: str) -> str:
    """Make fixed prompt text safe inside a ``str.format`` template."""
    return text.replace("{", "{{").replace("}", "}}")


@dataclass
class TextTask:
    """What is measured on a text, and the prompt template that carries its units.

    The same task runs on any :class:`~proxyspex_captum.scoring.LLMScorer`:
    a model that continues raw text (local, or a completions API) reads the
    prompt in SmolLM2's chat format with the answer begun; a chat API reads
    the user message alone (its own chat format applies).

    Args:
        units: The text's features, in order.
        task: ``"sentiment"`` (value: log p(positive) − log p(negative) as
            the answer's next token: after "The sentiment is" for a raw-text
            model, as the first answer token of a chat model), ``"truefalse"``
            (log p("True") − log p("False") as the answer's first token, to
            ``question`` about the text: the SPEX paper's protocol for
            closed models), ``"answer"`` (log-probability of ``answer`` to
            ``question`` about the text) or ``"generate"`` (the text is the
            prompt; log-probability of ``answer``, or of what the model
            generates when it is ``None``). ``answer`` and ``generate`` need a
            scorer with target log-probabilities (not a chat API).
        unit: How ``units`` were cut (``"token"`` joins them without spaces).
        question: The question for ``"answer"`` and ``"truefalse"`` (and
            optionally ``"generate"``).
        answer: The answer to score; ``None`` lets the model generate it.
        labels: The two next tokens ``"sentiment"`` compares on a raw-text model.
    """

    units: list[str]
    task: str = "sentiment"
    unit: str = "word"
    question: str | None = None
    answer: str | None = None
    labels: tuple[str, str] = SENTIMENT_LABELS
    target_tokens: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"Unknown task {self.task!r}; choose one of {', '.join(TASKS)}.")
        if not self.units:
            raise ValueError("The text is empty: there is nothing to explain.")
        if self.task in ("answer", "truefalse") and not self.question:
            raise ValueError(f"task={self.task!r} needs a question about the text (--question).")

    @property
    def candidates(self) -> tuple[str, str] | None:
        """The two next tokens compared (raw-text prompts), or ``None`` for a target's log-prob."""
        if self.task == "sentiment":
            return self.labels
        if self.task == "truefalse":
            return TRUE_FALSE
        return None

    @property
    def user_message(self) -> str:
        """The ``str.format`` template of the user's turn (one ``{}`` per unit)."""
        joiner = "" if self.unit == "token" else " "
        body = joiner.join("{}" for _ in self.units)
        if self.task == "sentiment":  # (a raw-text model's answer is begun for it instead)
            return sentiment_question(len(self.units), joiner) + "\nAnswer with one word."
        if self.task == "truefalse":
            return f"{body}\n\n{_escape(self.question or '')}\nAnswer True or False."
        if self.task == "answer" or self.question:
            return f"Context: {body}\n\nQuestion: {_escape(self.question or '')}\nAnswer briefly."
        return body

    @property
    def template(self) -> str:
        """The raw-text prompt template: the user's turn in chat format, the answer begun."""
        if self.task == "sentiment":
            return sentiment_gap_template(len(self.units), "" if self.unit == "token" else " ")
        return chat_prompt(self.user_message)

    def interpretable_input(self, *, chat: bool = False) -> Any:
        """Captum's ``TextTemplateInput`` over the units.

        A dropped unit is replaced by nothing and the spaces around it stay (two
        spaces where it stood between two kept words), as Captum's template
        inputs drop a value; words and sentences are joined by single spaces,
        so the full text's line breaks are not kept.

        Args:
            chat: The user message alone (for a chat API), not the raw-text prompt.
        """
        from captum.attr import TextTemplateInput

        return TextTemplateInput(
            self.user_message if chat else self.template, values=list(self.units)
        )

    def value_function(
        self,
        scorer: Any,
        *,
        batch_size: int | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> Callable[[np.ndarray], np.ndarray]:
        """Masks ``(k, n)`` -> values ``(k,)`` through ``scorer``.

        For answers, the target is fixed here (generated once from the full
        prompt when no answer was given, which needs a local model) and kept
        in ``target_tokens``.

        Args:
            scorer: An :class:`~proxyspex_captum.scoring.LLMScorer`, or a
                ``psx.LLMAttribution`` (its scorer is used).
            batch_size: Masked prompts per forward pass (local models).
            on_batch: Called with the number of prompts scored, as they are
                (a progress bar's ``update``), so a long request shows progress.
        """
        llm = scorer if hasattr(scorer, "scorer") else None
        scorer = getattr(scorer, "scorer", scorer)
        chat = bool(getattr(scorer, "chat", False))
        inp = self.interpretable_input(chat=chat)
        options = {"batch_size": batch_size, "on_batch": on_batch}

        def prompts(masks: np.ndarray) -> list[str]:
            import torch

            rows = torch.as_tensor(np.ascontiguousarray(masks), dtype=torch.bool)
            return [inp.to_model_input(row[None]) for row in rows]

        if self.candidates is not None:
            # A chat model's first answer token has no leading space, in any case.
            labels = [c.strip() for c in self.candidates] if chat else list(self.candidates)

            def gap(masks: np.ndarray) -> np.ndarray:
                lp = scorer.next_token_log_probs(prompts(masks), labels, **options)
                return lp[:, 0] - lp[:, 1]

            return gap
        if chat:
            raise ValueError(
                f"task={self.task!r} scores the log-probability of an answer, which a chat API "
                "does not give: use a completions endpoint (or a local model), or the "
                "'truefalse' or 'sentiment' task."
            )
        if self.target_tokens is None:
            if self.answer is not None:
                tokenizer = getattr(scorer, "tokenizer", None)
                self.target_tokens = (
                    self.answer
                    if tokenizer is None
                    else tokenizer.encode(self.answer, add_special_tokens=False)
                )
            elif llm is not None:
                self.target_tokens = llm.target_tokens(
                    inp, None, gen_args={"max_new_tokens": 20, "do_sample": False}
                )
            else:
                raise ValueError(
                    "Without an answer, the model generates one, which needs a local model "
                    "(a psx.LLMAttribution): give the answer to score."
                )
        target = self.target_tokens
        if not isinstance(target, str):
            target = np.asarray(target).reshape(-1).tolist()

        def answer(masks: np.ndarray) -> np.ndarray:
            return scorer.target_log_probs(prompts(masks), target, **options)[:, 0]

        return answer

    def fingerprint(self, model: str, *, chat: bool = False) -> str:
        """Names this task's values on ``model`` (for ``cache=``): units, question, answer.

        Args:
            model: Names the model and how it is scored (a scorer's ``identity``).
            chat: The prompts are user messages to a chat API (their wording counts).
        """
        target = self.target_tokens
        if target is not None and not isinstance(target, str):
            target = np.asarray(target).tolist()
        parts = (model, self.task, self.unit, self.units, self.question, self.answer)
        parts += (self.labels, target)
        if chat:
            parts += ("chat", self.user_message)
        digest = hashlib.sha256(repr(parts).encode()).hexdigest()
        return f"text:{model}:{self.task}:{digest[:32]}"

    def describe_value(self, tokenizer: Any = None) -> str:
        """What the value of a mask means, in words."""
        if self.candidates is not None:
            first, second = self.candidates
            where = "after 'The sentiment is'" if self.task == "sentiment" else "as the answer"
            return f"log p({first!r}) − log p({second!r}) {where}"
        text = self.answer
        if text is None and self.target_tokens is not None and tokenizer is not None:
            text = tokenizer.decode(self.target_tokens)
        return f"log p(answer {text!r})"


def load_llm(model: str) -> Any:
    """``psx.LLMAttribution`` over ``models.load_model(model)`` (what a worker builds once)."""
    from .attr import LLMAttribution, ProxySPEXAttribution
    from .models import load_model

    network, tokenizer = load_model(model)
    return LLMAttribution(ProxySPEXAttribution(network), tokenizer)


@dataclass
class TaskValueFunction:
    """A :class:`TextTask`'s value function that pickles: each worker loads the model once.

    Sent to processes, Dask or Ray, it carries only the task and the model's
    name; the first batch in a worker loads the model there
    (:func:`~proxyspex_captum.core.executors.replica`), later batches reuse it.
    In the process that already holds the model, :meth:`adopt` hands it over.

    Args:
        task: The task (its answer's tokens fixed already, for ``answer``/``generate``).
        model: Name or folder for :func:`proxyspex_captum.models.load_model`.
        batch_size: Masked prompts per forward pass.
    """

    task: TextTask
    model: str
    batch_size: int = 16

    @property
    def _key(self) -> tuple[str, str]:
        return ("proxyspex_captum.llm", self.model)

    def adopt(self, llm: Any) -> None:
        """Use ``llm`` (already loaded) in this process instead of loading the model again."""
        replica(lambda: llm, key=self._key, rebuild=True)

    @property
    def fingerprint(self) -> str:
        """Names the values (for ``cache=``): model, task, text units and answer."""
        return self.task.fingerprint(self.model)

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        llm = replica(functools.partial(load_llm, self.model), key=self._key)
        return self.task.value_function(llm.scorer, batch_size=self.batch_size)(masks)
