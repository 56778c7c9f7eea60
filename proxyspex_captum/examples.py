"""Built-in example texts and prompts (original texts, written for this project).

No text corpus ships with the machines this project targets, so the demo,
the tests and the benchmarks share these.

Examples:
    >>> from proxyspex_captum.examples import NEGATION_REVIEW, sentiment_template
    >>> words = NEGATION_REVIEW.split()
    >>> words[3:6]
    ['not', 'bad', 'at']
    >>> sentiment_template(len(words)).count("{}") == len(words)
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .core.checks import check_int, check_real

__all__ = [
    "NEGATION_REVIEW",
    "RECALL_TASK",
    "RIDDLES",
    "SENTIMENT_LABELS",
    "SENTIMENT_QUESTION",
    "EmbeddingSentiment",
    "Riddle",
    "chat_prompt",
    "sentiment_question",
    "sentiment_template",
]

#: A short review whose sentiment hinges on a negation ("not bad").
NEGATION_REVIEW = "The acting was not bad at all , and the ending was great ."

SENTIMENT_QUESTION = "Is this movie review positive or negative? Review: {review}\n" + (
    "Answer with one word."
)


@dataclass(frozen=True)
class Riddle:
    """A classic riddle, altered so that the famous answer is wrong (a True/False question).

    Attributes:
        name: A short name.
        text: The riddle (explained word by word).
        question: Asked after it, answered True or False.
        answer: The right answer to the altered riddle.
    """

    name: str
    text: str
    question: str
    answer: bool


#: Prompts and the next word that answers each, written for the attention-head
#: game: factual recall (capitals, opposites) and in-context recall (a fact
#: stated earlier in the prompt). Only prompts SmolLM2-135M-Instruct answers
#: correctly (greedy, no chat template) were kept: 25 of 40 written.
RECALL_TASK: tuple[tuple[str, str], ...] = (
    ("The capital of France is", " Paris"),
    ("The capital of Japan is", " Tokyo"),
    ("The capital of Italy is", " Rome"),
    ("The capital of Germany is", " Berlin"),
    ("The capital of Spain is", " Madrid"),
    ("The capital of Russia is", " Moscow"),
    ("The capital of England is", " London"),
    ("The capital of China is", " Beijing"),
    ("The capital of Greece is", " Athens"),
    ("Anna likes apples. Ben likes grapes. Carl likes pears. Ben likes", " grapes"),
    ("Anna likes apples. Ben likes grapes. Carl likes pears. Anna likes", " apples"),
    ("Tom has a red car. Sue has a blue bike. Sue has a", " blue"),
    ("The key is under the mat. The coin is in the box. The coin is in the", " box"),
    ("The key is under the mat. The coin is in the box. The key is under the", " mat"),
    ("one, two, three, four,", " five"),
    ("A, B, C, D,", " E"),
    ("Mia lives in Oslo. Leo lives in Rome. Leo lives in", " Rome"),
    ("The opposite of hot is", " cold"),
    ("The opposite of up is", " down"),
    ("Water freezes at zero degrees", " Celsius"),
    ("The password is tulip. Remember it. The password is", " tul"),
    ("My dog is called Rex. What is my dog called? My dog is called", " Rex"),
    ("Red, green, blue. Red, green,", " blue"),
    ("Paris is in France. Berlin is in Germany. Madrid is in", " Spain"),
    ("Ice is frozen", " water"),
)


#: Five altered classic riddles, written for this project (the SPEX paper's
#: closed-model experiment asks such riddles of GPT-4o-mini): a model that
#: answers from memory of the classic gets them wrong.
RIDDLES = (
    Riddle(
        "monty hall",
        "A quiz show hides a car behind one of three doors. You pick door one. The host, who "
        "has no idea where the car is, stumbles against door three and it swings open on an "
        "empty stage.",
        "Does switching to door two give you a better than even chance of the car?",
        False,
    ),
    Riddle(
        "river crossing",
        "A farmer has to bring a wolf, a goat and a cabbage to the far bank of a river. His "
        "new ferry is wide enough to carry the farmer and all three of them at the same time.",
        "Can the farmer bring everything across in one trip?",
        True,
    ),
    Riddle(
        "bridge and torch",
        "Four hikers reach an old rope bridge at night with a single torch. The bridge can hold "
        "all four together, and each of them crosses it in exactly two minutes.",
        "Can all four hikers be on the other side within three minutes?",
        True,
    ),
    Riddle(
        "birthday",
        "Twenty-three cousins meet at a party, and it turns out that every one of them was "
        "born on the first of March.",
        "Is the chance that two of the cousins share a birthday below one half?",
        False,
    ),
    Riddle(
        "trolley",
        "A runaway tram is rolling toward a stretch of track where nobody stands. A lever "
        "would switch it onto a siding where five track workers are eating lunch.",
        "Would pulling the lever save lives?",
        False,
    ),
)


def chat_prompt(user_message: str) -> str:
    """``user_message`` in SmolLM2's (ChatML) chat format, ready for the assistant's answer."""
    return f"<|im_start|>user\n{user_message}<|im_end|>\n<|im_start|>assistant\n"


#: The next tokens compared by :func:`sentiment_gap_template`'s prompt.
SENTIMENT_LABELS = (" positive", " negative")


def sentiment_question(n_segments: int, joiner: str = " ") -> str:
    """The user's question about a review of ``n_segments`` pieces (a ``str.format`` template)."""
    review = joiner.join("{}" for _ in range(n_segments))
    return f"Review: {review}\nIs the sentiment of this review positive or negative?"


def sentiment_gap_template(n_segments: int, joiner: str = " ") -> str:
    """A template whose next token is the review's sentiment: ``... The sentiment is``.

    The prompt ends inside the assistant's answer, so the positive-vs-negative
    logit gap of the next token (:data:`SENTIMENT_LABELS`) measures the
    sentiment the model reads. On the built-in review this prompt gave the
    most faithful surrogates of the variants tried (R² 0.79 at 500 calls).
    """
    return chat_prompt(sentiment_question(n_segments, joiner)) + "The sentiment is"


def sentiment_template(n_segments: int) -> str:
    """A ``TextTemplateInput`` template asking for the sentiment of ``n_segments`` review pieces.

    The pieces are joined by spaces, so a whitespace-split review reads as written.
    """
    review = " ".join("{}" for _ in range(n_segments))
    return chat_prompt(SENTIMENT_QUESTION.replace("{review}", review))


class EmbeddingSentiment:
    """A zero-shot sentiment classifier from a sentence encoder: texts -> ``(k, 2)`` probabilities.

    Each text is embedded (mean of the encoder's last hidden states over real
    tokens) and compared by cosine similarity with a positive and a negative
    anchor sentence; a softmax over the two similarities (scaled by
    ``sharpness``) gives ``[P(negative), P(positive)]``. With
    ``proxyspex_captum.models.load_sentence_encoder()`` this is a real
    transformer text pipeline that runs offline, for SHAP's ``Text`` masker.

    Args:
        model: A ``transformers`` encoder.
        tokenizer: Its tokenizer.
        positive: The positive anchor sentence.
        negative: The negative anchor sentence.
        sharpness: Multiplies the similarities before the softmax.
        batch_size: Texts per forward pass.
    """

    output_names = ("negative", "positive")

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        positive: str = "This is wonderful, I loved it.",
        negative: str = "This is terrible, I hated it.",
        sharpness: float = 20.0,
        batch_size: int = 64,
    ) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.sharpness = check_real("sharpness", sharpness, 0.0, low_open=True)
        self.batch_size = check_int("batch_size", batch_size, 1)
        self._anchors = self.embed([negative, positive])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm sentence embeddings, ``(len(texts), dim)``."""
        import torch

        out = []
        device = next(self.model.parameters()).device
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                [str(t) for t in texts[start : start + self.batch_size]],
                padding=True,
                truncation=True,
                return_tensors="pt",
            ).to(device)
            with torch.no_grad():
                hidden = self.model(**batch).last_hidden_state.float()  # bf16 has no numpy
            weights = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0))

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, len(self.output_names)))
        logits = self.sharpness * self.embed(list(texts)) @ self._anchors.T
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        return probs / probs.sum(axis=1, keepdims=True)
