"""Directories that hold a fitted model as data only: safetensors and JSON.

Two ways to persist a fitted :class:`~sklearn_dallmi.DALLMiClassifier`
--------------------------------------------------------------------------

``joblib.dump`` / ``pickle``
    Convenient, and it works across devices (a model trained on a GPU loads
    on a CPU-only machine). But **loading a joblib or pickle file runs code**:
    the file names Python callables that are called while it loads, so a
    crafted file can do anything your user account can do. Only load
    joblib/pickle files that you created yourself or that come from a source
    you trust. A pickle also ties the file to the library versions that
    wrote it.

``save_pretrained`` / ``from_pretrained``
    The safe format, written and read by this module. A directory holding:

    - ``config.json`` and ``model.safetensors``: the encoder, written by the
      Hugging Face model's own ``save_pretrained``, and the tokenizer's
      files: the directory is a Hugging Face encoder directory too;
    - ``dallmi.safetensors``: the tensors of the estimator (the head, the
      fitted arrays, optionally the optimizer's state);
    - ``history.json``: skorch's training history, in skorch's own format;
    - ``dallmi.json``: the manifest (format version, parameters, fitted
      scalars), written last, so that a directory without it is an
      incomplete save and does not load.

    Loading reads tensors with ``safetensors`` and everything else with
    ``json``: it never unpickles, never passes ``trust_remote_code`` and
    never runs code from the directory. Saving is atomic: the files go to a
    hidden sibling directory that replaces the target at the end, so an
    interrupted save leaves the previous save intact and never a
    half-written directory that loads.

The module knows directories, not estimators: the estimator turns its state
into a manifest and tensors and builds itself back from them.
"""

import contextlib
import json
import os
import secrets
import shutil
import warnings
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

__all__ = ["write_save", "read_save", "section", "is_save", "FORMAT_VERSION"]

FORMAT_VERSION = 2
"""Version of the layout of a saved directory; bumped on incompatible changes."""

MANIFEST = "dallmi.json"
TENSORS = "dallmi.safetensors"
HISTORY = "history.json"
_FORMAT_NAME = "sklearn_dallmi"
# File name endings of pickle-based formats, never written into a save.
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".bin", ".pt", ".pth", ".ckpt", ".npy", ".npz")


def _fsync(path):
    """Flush a file or directory to disk; best effort (not on every OS)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_text(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _remove_tree(path):
    shutil.rmtree(path, ignore_errors=True)


def _target(directory):
    if not isinstance(directory, (str, os.PathLike)):
        raise ValueError(f"directory must be a str or a path, got {type(directory).__name__}.")
    target = Path(directory).expanduser().absolute()
    if not target.name or target.name in (".", ".."):
        raise ValueError(f"directory={str(directory)!r} does not name a directory to save to.")
    if os.path.lexists(target):
        if not target.is_dir() or target.is_symlink():
            raise ValueError(f"{str(target)!r} exists and is not a directory.")
        if any(target.iterdir()) and not (target / MANIFEST).is_file():
            raise ValueError(
                f"{str(target)!r} is a non-empty directory that is not a saved "
                "DALLMiClassifier (it has no dallmi.json); refusing to replace it."
            )
    return target


def _sibling(target, kind):
    """A unique hidden sibling path; created as a directory for ``tmp``."""
    for _ in range(100):
        path = target.parent / f".{target.name}.{kind}-{secrets.token_hex(4)}"
        if kind != "tmp":
            if not os.path.lexists(path):
                return path
            continue
        try:
            os.mkdir(path)  # honours the umask, unlike tempfile.mkdtemp
            return path
        except FileExistsError:
            continue
    raise OSError(f"Could not create a temporary directory next to {target}.")


def _install(tmp, target):
    """Move the complete save ``tmp`` to ``target``, replacing a previous save."""
    if not os.path.lexists(target):
        os.replace(tmp, target)
        _fsync(target.parent)
        return
    old = _sibling(target, "old")
    os.replace(target, old)
    try:
        os.replace(tmp, target)
    except BaseException:
        os.replace(old, target)  # roll back to the previous save
        raise
    _fsync(target.parent)
    try:
        shutil.rmtree(old)
    except OSError as exc:  # the new save is in place: only a leftover remains
        warnings.warn(f"Could not remove the previous save at {old}: {exc}", UserWarning,
                      stacklevel=3)


def write_save(directory, manifest, tensors, write_files):
    """Write a save atomically.

    Parameters
    ----------
    directory : str or os.PathLike
        Where to save; parent directories are created. A previous save there
        is replaced; any other non-empty directory is refused.
    manifest : dict
        JSON-able content of ``dallmi.json``; the format name, version and
        library versions are added.
    tensors : dict of str to torch.Tensor
        Written to ``dallmi.safetensors``.
    write_files : callable
        ``write_files(tmp)`` writes the other files (encoder, tokenizer,
        history) into the temporary directory ``tmp``.

    Returns
    -------
    directory : str
        The absolute path of the saved directory.

    Raises
    ------
    ValueError
        If the manifest is not JSON-able (checked before anything is
        written) or ``directory`` is not a place for a save.
    """
    from . import __version__
    import torch
    import transformers

    manifest = {"format": _FORMAT_NAME, "format_version": FORMAT_VERSION,
                "versions": {"sklearn_dallmi": __version__, "torch": torch.__version__,
                             "transformers": transformers.__version__},
                **manifest}
    try:
        text = json.dumps(manifest, indent=1, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Cannot save as JSON: {exc}") from exc
    target = _target(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(target, "tmp")
    try:
        write_files(str(tmp))
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()},
                  str(tmp / TENSORS), metadata={"format": "pt"})
        for path in tmp.rglob("*"):
            if path.name.lower().endswith(_PICKLE_SUFFIXES):
                raise RuntimeError(f"save_pretrained: {path} would be a pickle-based file; "
                                   "the safe format must not contain one.")
            _fsync(path)
        # dallmi.json last, and complete or absent: write it aside, then rename.
        _write_text(tmp / (MANIFEST + ".partial"), text)
        os.replace(tmp / (MANIFEST + ".partial"), tmp / MANIFEST)
        _fsync(tmp)
        _install(tmp, target)
    except BaseException:
        _remove_tree(tmp)
        raise
    return str(target)


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{str(path)!r} cannot be read as JSON: {exc}") from exc


def read_save(directory):
    """Read and check a save.

    Parameters
    ----------
    directory : str or os.PathLike
        A directory written by :func:`write_save`.

    Returns
    -------
    path : str
        Its absolute path.
    manifest : dict
        The parsed ``dallmi.json``, with its ``params``, ``fitted`` and
        ``optimizer`` sections.
    tensors : dict of str to torch.Tensor
        The content of ``dallmi.safetensors``, on the CPU.

    Raises
    ------
    ValueError
        If ``directory`` is not a complete save of this format version.
    """
    if not isinstance(directory, (str, os.PathLike)):
        raise ValueError(f"directory must be a str or a path, got {type(directory).__name__}.")
    path = Path(directory).expanduser().absolute()
    if not path.is_dir():
        raise ValueError(f"{str(directory)!r} is not a directory.")
    if not (path / MANIFEST).is_file():
        raise ValueError(
            f"{str(directory)!r} is not a saved DALLMiClassifier: it has no {MANIFEST} "
            "(not written by save_pretrained, or an incomplete save)."
        )
    manifest = _read_json(path / MANIFEST)
    if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT_NAME:
        raise ValueError(f"{path / MANIFEST} is not a {_FORMAT_NAME} manifest.")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path / MANIFEST} has format version {manifest.get('format_version')!r}; this "
            f"version of sklearn_dallmi reads format version {FORMAT_VERSION}."
        )
    for key in ("params", "fitted"):
        if not isinstance(manifest.get(key), dict):
            raise ValueError(f"{path / MANIFEST} is corrupted: no {key!r} section.")
    for required in ("config.json", TENSORS, HISTORY):
        if not (path / required).is_file():
            raise ValueError(f"{str(path)!r} is an incomplete save: {required} is missing.")
    try:
        tensors = load_file(str(path / TENSORS), device="cpu")
    except (OSError, SafetensorError) as exc:
        raise ValueError(f"{path / TENSORS} cannot be read: {exc}") from exc
    return str(path), manifest, tensors


def section(tensors, prefix):
    """The tensors of one section of a save.

    Parameters
    ----------
    tensors : dict of str to torch.Tensor
        As returned by :func:`read_save`.
    prefix : str
        The section, such as ``"module"`` or ``"optimizer"``.

    Returns
    -------
    section : dict of str to torch.Tensor
        The tensors named ``<prefix>.<name>``, keyed by ``<name>``.
    """
    start = len(prefix) + 1
    return {k[start:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def is_save(directory):
    """Whether ``directory`` (a ``model`` parameter) is a save, complete or not.

    Parameters
    ----------
    directory : str or os.PathLike
        A save, any encoder directory, or a hub name.

    Returns
    -------
    is_save : bool
        True if it holds a ``dallmi.json``; :func:`read_save` then reads
        it or says what is wrong with it.
    """
    return (Path(directory).expanduser() / MANIFEST).is_file()
