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

__all__ = ["NEGATION_REVIEW", "SENTIMENT_QUESTION", "chat_prompt", "sentiment_template"]

#: A short review whose sentiment hinges on a negation ("not bad").
NEGATION_REVIEW = "The acting was not bad at all , and the ending was great ."

SENTIMENT_QUESTION = "Is this movie review positive or negative? Review: {review}\n" + (
    "Answer with one word."
)


def chat_prompt(user_message: str) -> str:
    """``user_message`` in SmolLM2's (ChatML) chat format, ready for the assistant's answer."""
    return f"<|im_start|>user\n{user_message}<|im_end|>\n<|im_start|>assistant\n"


def sentiment_template(n_segments: int) -> str:
    """A ``TextTemplateInput`` template asking for the sentiment of ``n_segments`` review pieces.

    The pieces are joined by spaces, so a whitespace-split review reads as written.
    """
    review = " ".join("{}" for _ in range(n_segments))
    return chat_prompt(SENTIMENT_QUESTION.replace("{review}", review))
