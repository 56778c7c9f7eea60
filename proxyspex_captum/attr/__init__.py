"""Captum adapters: our methods, and LLM attribution for local and remote models.

Names follow Captum's, so a Captum user finds what they know: the
methods are ``captum.attr.PerturbationAttribution`` subclasses (over input
features, and over a model's attention heads), and
:class:`LLMAttribution` and :class:`RemoteLLMAttribution` are subclasses of
Captum's that also accept them.
"""

from .auto import AutoSPEXAttribution
from .base import InteractionAttribution
from .heads import HeadAttribution, ProxySPEXHeadAttribution, SPEXHeadAttribution
from .llm import LLMAttribution, LLMInteractionAttributionResult
from .proxyspex import ProxySPEXAttribution
from .remote import ProviderScorer, RemoteLLMAttribution
from .spex import SPEXAttribution

__all__ = [
    "AutoSPEXAttribution",
    "HeadAttribution",
    "InteractionAttribution",
    "LLMAttribution",
    "LLMInteractionAttributionResult",
    "ProviderScorer",
    "ProxySPEXAttribution",
    "ProxySPEXHeadAttribution",
    "RemoteLLMAttribution",
    "SPEXAttribution",
    "SPEXHeadAttribution",
]
