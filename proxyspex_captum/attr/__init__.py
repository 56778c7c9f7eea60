"""Captum adapters: ``ProxySPEXAttribution``, ``SPEXAttribution`` and ``LLMAttribution``.

Names follow Captum's, so a Captum user finds what they know: the two
methods are ``captum.attr.PerturbationAttribution`` subclasses, and
:class:`LLMAttribution` is a subclass of Captum's that also accepts them.
"""

from .base import InteractionAttribution
from .llm import LLMAttribution, LLMInteractionAttributionResult
from .proxyspex import ProxySPEXAttribution
from .spex import SPEXAttribution

__all__ = [
    "InteractionAttribution",
    "LLMAttribution",
    "LLMInteractionAttributionResult",
    "ProxySPEXAttribution",
    "SPEXAttribution",
]
