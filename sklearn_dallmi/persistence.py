"""Saving and loading a fitted :class:`~sklearn_dallmi.DALLMiClassifier`
without pickle.

Two ways to persist a fitted estimator
--------------------------------------

``joblib.dump`` / ``pickle``
    Convenient, and it works across devices (a model trained on a GPU loads
    on a CPU-only machine). But **loading a joblib or pickle file runs code**:
    the file names Python callables that are called while it loads, so a
    crafted file can do anything your user account can do. Only load
    joblib/pickle files that you created yourself or that come from a source
    you trust, and never from an upload, an e-mail or an unverified
    download. A pickle also ties the file to the library versions that wrote
    it.

``save_pretrained`` / ``load_pretrained`` (this module)
    The safe format. A directory holding only data:

    - ``config.json`` and ``model.safetensors``: the encoder, written by the
      Hugging Face model's own ``save_pretrained``;
    - the tokenizer's files, written by ``tokenizer.save_pretrained``;
    - ``head.safetensors``: every weight of the classifier module outside
      the encoder (the linear head);
    - ``optimizer.safetensors`` (only with ``include_optimizer=True``): the
      AdamW moment estimates, whose hyper-parameters go to ``dallmi.json``;
    - ``history.json``: the training log;
    - ``dallmi.json``: the constructor parameters, the fitted attributes
      kept outside the network and a format version. It is written last, so
      a directory without it is an incomplete save and does not load.

    Tensors are read with ``safetensors`` and everything else with
    ``json``: loading never unpickles anything, never passes
    ``trust_remote_code`` and never imports or runs code from the
    directory. Saving is atomic: the files go to a hidden sibling directory
    that is renamed into place at the end, so an interrupted save leaves the
    previous save at that path intact and never a half-written directory
    that loads.

A saved directory is also a Hugging Face encoder directory: pass it as
``DALLMiClassifier(model=directory)`` to start a new fit (for instance a
target-domain adaptation) from the saved model; the saved head is reused
when the number of labels matches (:func:`load_head_if_compatible`).

Without ``include_optimizer=True``, ``partial_fit`` after loading starts
from a fresh AdamW state (zero moment estimates) with the saved weights.
"""

import json
import math
import numbers
import os
import secrets
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from skorch.exceptions import DeviceWarning
from skorch.history import History
from sklearn.utils.validation import check_is_fitted

__all__ = [
    "save_pretrained", "load_pretrained", "load_head_if_compatible", "read_manifest",
    "FORMAT_VERSION",
]

FORMAT_VERSION = 1
"""Version of the layout of a saved directory; bumped on incompatible changes."""

MANIFEST = "dallmi.json"
HEAD_FILE = "head.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
HISTORY_FILE = "history.json"
_FORMAT_NAME = "sklearn_dallmi"
_ENCODER_PREFIX = "encoder."
# Attributes held by the network or recomputed on load, not by dallmi.json.
_NET_ATTRIBUTES = {"net_", "tokenizer_", "device_", "history_"}
# Fitted attributes every DALLMiClassifier has after fit.
_REQUIRED_FITTED = (
    "classes_", "n_labels_", "pu_labels_", "proba_shift_", "n_positives_", "n_epochs_",
    "_binary",
)
# File name endings of pickle-based formats, never written into a save.
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".bin", ".pt", ".pth", ".ckpt", ".npy", ".npz")


# ---------------------------------------------------------------- JSON codec


def _encode(value, where):
    """Turn a value into plain JSON, with tags for tuples, arrays and dicts."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise ValueError(
                f"{where} is an array of dtype {value.dtype}; only boolean and numeric "
                "arrays can be saved as JSON."
            )
        values = value.ravel().tolist()
        if value.dtype.kind == "f":
            values = [v if math.isfinite(v) else repr(v) for v in values]
        return {"__ndarray__": values, "dtype": value.dtype.name, "shape": list(value.shape)}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise ValueError(f"{where} is a dict with a non-string key {bad[0]!r}.")
        return {"__dict__": {k: _encode(v, f"{where}[{k!r}]") for k, v in value.items()}}
    raise ValueError(
        f"{where} is a {type(value).__name__} ({value!r:.60}), which cannot be saved as "
        "JSON: only None, booleans, numbers, strings, lists, tuples, dicts and numeric "
        "arrays can."
    )


def _decode(value, where):
    """Inverse of :func:`_encode`; raises ValueError on anything unexpected."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_decode(v, where) for v in value]
    if isinstance(value, dict):
        keys = set(value)
        if keys == {"__float__"} and value["__float__"] in ("inf", "-inf", "nan"):
            return float(value["__float__"])
        if keys == {"__tuple__"} and isinstance(value["__tuple__"], list):
            return tuple(_decode(v, where) for v in value["__tuple__"])
        if keys == {"__dict__"} and isinstance(value["__dict__"], dict):
            return {k: _decode(v, where) for k, v in value["__dict__"].items()}
        if keys == {"__ndarray__", "dtype", "shape"}:
            try:
                dtype = np.dtype(value["dtype"])
                if dtype.kind not in "biuf":
                    raise TypeError(f"dtype {dtype} is not numeric")
                return np.asarray(value["__ndarray__"], dtype=dtype).reshape(value["shape"])
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{where}: invalid array: {exc}") from exc
    raise ValueError(f"{where}: unexpected JSON value {value!r:.60}.")


# -------------------------------------------------------------------- saving


def _head_state(module):
    """The module's state outside the encoder (the linear head, buffers)."""
    return {k: v for k, v in module.state_dict().items() if not k.startswith(_ENCODER_PREFIX)}


def _encode_params(estimator):
    params = estimator.get_params(deep=False)
    model = params.get("model")
    if isinstance(model, os.PathLike):
        params["model"] = os.fspath(model)
    out = {}
    for name, value in params.items():
        try:
            out[name] = _encode(value, f"parameter {name}")
        except ValueError as exc:
            raise ValueError(
                f"Cannot save {type(estimator).__name__} with save_pretrained: {exc} "
                f"Set {name} to a JSON-able value first (for random_state: an int or None), "
                "e.g. estimator.set_params(...)."
            ) from exc
    return out


def _encode_fitted(estimator, params):
    state = vars(estimator)
    missing = [name for name in _REQUIRED_FITTED if name not in state]
    if missing:
        raise ValueError(
            f"{type(estimator).__name__} lacks the fitted attributes {missing}; "
            "save_pretrained saves a fitted DALLMiClassifier."
        )
    fitted = {}
    for name, value in state.items():
        if name in params or name in _NET_ATTRIBUTES:
            continue
        if name == "_binary" or (name.endswith("_") and not name.startswith("_")):
            fitted[name] = _encode(value, f"fitted attribute {name}")
    return fitted


def _encode_optimizer(net):
    """Tensors and JSON description of the optimizer's state."""
    optimizer = net.optimizer_
    state_dict = optimizer.state_dict()
    tensors = {}
    scalars = {}
    for index, entries in state_dict["state"].items():
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{key}"] = _encode(value, f"optimizer state {index}.{key}")
    info = {
        "class": f"{type(optimizer).__module__}.{type(optimizer).__qualname__}",
        "param_names": [name for name, _ in net.get_all_learnable_params()],
        "param_groups": _encode(state_dict["param_groups"], "optimizer param_groups"),
        "scalars": scalars,
        "file": OPTIMIZER_FILE,
    }
    return tensors, info


def _jsonable_history(history):
    def default(obj):
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        raise TypeError(f"{type(obj).__name__} is not JSON serialisable")

    try:
        return json.dumps(list(history), default=default)
    except (TypeError, ValueError) as exc:
        warnings.warn(
            f"The training history cannot be saved as JSON ({exc}); it is left out.",
            UserWarning,
            stacklevel=3,
        )
        return None


def _build_manifest(estimator, include_optimizer):
    """Everything for dallmi.json, checked before anything is written."""
    from . import __version__
    import transformers

    params = _encode_params(estimator)
    fitted = _encode_fitted(estimator, params)
    net = estimator.net_
    rng = getattr(net, "rng_", None)
    manifest = {
        "format": _FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "estimator": type(estimator).__name__,
        "versions": {
            "sklearn_dallmi": __version__,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        },
        "params": params,
        "fitted": fitted,
        "head": {
            "file": HEAD_FILE,
            "n_labels": int(estimator.n_labels_),
            "pooling": getattr(net.module_, "pooling", None),
        },
        "net_rng_state": (
            _encode(rng.bit_generator.state, "net rng state")
            if isinstance(rng, np.random.Generator) else None
        ),
        "history": None,
        "optimizer": None,
    }
    optimizer_tensors = None
    if include_optimizer:
        optimizer_tensors, manifest["optimizer"] = _encode_optimizer(net)
    # Fail now, before touching the disk, if anything is not JSON.
    json.dumps(manifest, allow_nan=False)
    return manifest, optimizer_tensors


def _fsync(path):
    """Flush a file or directory to disk; best effort (not on every OS)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_text(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _write_contents(estimator, directory, manifest, optimizer_tensors):
    net = estimator.net_
    module = net.module_
    module.encoder.save_pretrained(directory)
    estimator.tokenizer_.save_pretrained(directory)
    head = {k: v.detach().cpu().contiguous() for k, v in _head_state(module).items()}
    save_file(head, os.path.join(directory, HEAD_FILE), metadata={"format": "pt"})
    if optimizer_tensors is not None:
        save_file(
            optimizer_tensors, os.path.join(directory, OPTIMIZER_FILE), metadata={"format": "pt"}
        )
    history = _jsonable_history(net.history)
    if history is not None:
        _write_text(os.path.join(directory, HISTORY_FILE), history)
        manifest["history"] = HISTORY_FILE
    for root, _, files in os.walk(directory):
        for name in files:
            if name.lower().endswith(_PICKLE_SUFFIXES):
                raise RuntimeError(
                    f"save_pretrained: {os.path.join(root, name)} would be a pickle-based "
                    "file; the safe format must not contain one."
                )
            _fsync(os.path.join(root, name))
    # dallmi.json last, and complete or absent: write it aside, then rename.
    partial = os.path.join(directory, MANIFEST + ".partial")
    _write_text(partial, json.dumps(manifest, indent=1, allow_nan=False))
    os.replace(partial, os.path.join(directory, MANIFEST))
    _fsync(directory)


def _sibling(target, kind):
    """Create (for ``tmp``) or name (for ``old``) a unique hidden sibling."""
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


def _remove_tree(path):
    shutil.rmtree(path, ignore_errors=True)


def _check_target(target):
    if os.path.lexists(target):
        if not target.is_dir() or target.is_symlink():
            raise ValueError(f"{str(target)!r} exists and is not a directory.")
        if any(target.iterdir()) and not (target / MANIFEST).is_file():
            raise ValueError(
                f"{str(target)!r} is a non-empty directory that is not a saved "
                "DALLMiClassifier (it has no dallmi.json); refusing to replace it."
            )


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


def save_pretrained(estimator, directory, *, include_optimizer=False):
    """Save a fitted estimator to a directory, without pickle.

    The directory gets the encoder (``config.json`` and
    ``model.safetensors``, by the Hugging Face model's ``save_pretrained``),
    the tokenizer files, the weights outside the encoder
    (``head.safetensors``), the training history (``history.json``) and,
    written last, ``dallmi.json`` with the constructor parameters, the
    fitted attributes and a format version. The write is atomic: the files
    are written to a hidden sibling directory that then replaces
    ``directory``. A previous save at ``directory`` is replaced; any other
    non-empty directory is left alone.

    Parameters
    ----------
    estimator : DALLMiClassifier
        A fitted estimator. Its parameters must be JSON-able (for instance,
        ``random_state`` an int or None, not a ``RandomState``).
    directory : str or os.PathLike
        Where to save. Parent directories are created.
    include_optimizer : bool, default=False
        Also save the AdamW state (about twice the size of the weights), so
        that ``partial_fit`` after loading continues exactly as it would have
        without saving. Without it, ``partial_fit`` after loading starts
        from a fresh AdamW state.

    Returns
    -------
    directory : str
        The absolute path of the saved directory.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted (a subclass of ValueError).
    ValueError
        If a parameter or fitted attribute cannot be saved as JSON, or if
        ``directory`` exists and is neither a previous save nor an empty
        directory.

    See Also
    --------
    load_pretrained : The inverse.

    Notes
    -----
    Unlike ``joblib.dump``, the result loads without running code; see the
    module documentation.
    """
    check_is_fitted(estimator, "net_")
    if not isinstance(directory, (str, os.PathLike)):
        raise ValueError(f"directory must be a str or a path, got {type(directory).__name__}.")
    target = Path(directory).expanduser().absolute()
    if not target.name or target.name in (".", ".."):
        raise ValueError(f"directory={str(directory)!r} does not name a directory to save to.")
    manifest, optimizer_tensors = _build_manifest(estimator, include_optimizer)
    _check_target(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(target, "tmp")
    try:
        _write_contents(estimator, str(tmp), manifest, optimizer_tensors)
        _install(tmp, target)
    except BaseException:
        _remove_tree(tmp)
        raise
    return str(target)


# ------------------------------------------------------------------- loading


def _read_json(path, what):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{what} {str(path)!r} cannot be read as JSON: {exc}") from exc


def read_manifest(directory):
    """Read and check the ``dallmi.json`` of a saved directory.

    Parameters
    ----------
    directory : str or os.PathLike
        A directory written by :func:`save_pretrained`.

    Returns
    -------
    manifest : dict
        The parsed ``dallmi.json``: format and version, ``params``,
        ``fitted`` and ``head`` sections, and the optional ones.

    Raises
    ------
    ValueError
        If ``directory`` is not a directory, has no ``dallmi.json`` (it is
        not a save, or an incomplete one), or the file is not valid or has
        another format version.
    """
    if not isinstance(directory, (str, os.PathLike)):
        raise ValueError(f"directory must be a str or a path, got {type(directory).__name__}.")
    path = Path(directory).expanduser()
    if not path.is_dir():
        raise ValueError(f"{str(directory)!r} is not a directory.")
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise ValueError(
            f"{str(directory)!r} is not a saved DALLMiClassifier: it has no {MANIFEST} "
            "(not written by save_pretrained, or an incomplete save)."
        )
    manifest = _read_json(manifest_path, MANIFEST)
    if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT_NAME:
        raise ValueError(f"{manifest_path} is not a {_FORMAT_NAME} manifest.")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{manifest_path} has format version {version!r}; this version of "
            f"sklearn_dallmi reads format version {FORMAT_VERSION}."
        )
    for key in ("params", "fitted", "head"):
        if not isinstance(manifest.get(key), dict):
            raise ValueError(f"{manifest_path} is corrupted: no {key!r} section.")
    return manifest


def _load_head_state(module, path, expected=None):
    """Copy the tensors of ``head.safetensors`` into the module (strict)."""
    tensors = load_file(str(path), device="cpu")
    current = _head_state(module)
    if set(tensors) != set(current):
        raise ValueError(
            f"{path} holds {sorted(tensors)} but the module expects {sorted(current)}."
        )
    for key, value in tensors.items():
        if value.shape != current[key].shape:
            raise ValueError(
                f"{path}: {key} has shape {tuple(value.shape)} but the module expects "
                f"{tuple(current[key].shape)}."
            )
    with torch.no_grad():
        for key, value in tensors.items():
            current[key].copy_(value)


def load_head_if_compatible(module, directory):
    """Load a saved head into a new module when it fits.

    This is what makes a saved directory usable as ``model=`` for a new
    estimator that starts from a source model: the encoder is loaded from
    the directory as from any Hugging Face directory, and this function
    reuses the saved head when the new module has the same number of
    labels and the same pooling.

    Parameters
    ----------
    module : EncoderClassifier
        A freshly built module whose encoder was loaded from ``directory``.
    directory : str or os.PathLike
        The ``model`` directory: a save of :func:`save_pretrained` or a
        plain Hugging Face encoder directory.

    Returns
    -------
    loaded : bool
        True if the head was loaded; False if ``directory`` is not a saved
        DALLMiClassifier, or (with a warning) if its head has another number
        of labels or pooling than ``module``.

    Raises
    ------
    ValueError
        If ``directory`` holds a ``dallmi.json`` that is invalid or of
        another format version, or a head file that does not match its
        manifest.
    """
    if not isinstance(directory, (str, os.PathLike)):
        return False
    path = Path(directory).expanduser()
    if not (path / MANIFEST).is_file():
        return False
    manifest = read_manifest(path)
    head = manifest["head"]
    n_labels = module.head.out_features
    saved_labels = head.get("n_labels")
    if saved_labels != n_labels:
        warnings.warn(
            f"{str(directory)!r} holds a head for {saved_labels} labels but the new model "
            f"has {n_labels}: the encoder is reused, the head starts from scratch.",
            UserWarning,
            stacklevel=2,
        )
        return False
    pooling = getattr(module, "pooling", None)
    if head.get("pooling") != pooling:
        warnings.warn(
            f"{str(directory)!r} holds a head trained with pooling={head.get('pooling')!r} "
            f"but the new model uses pooling={pooling!r}: the encoder is reused, the head "
            "starts from scratch.",
            UserWarning,
            stacklevel=2,
        )
        return False
    _load_head_state(module, path / head.get("file", HEAD_FILE))
    return True


def _resolve_device(device):
    """The device to load on, and the ``device`` parameter to keep.

    ``"auto"`` stays ``"auto"``; a CUDA device on a machine without CUDA
    falls back to the CPU, with a warning, as skorch does for pickles.
    """
    if device == "auto":
        return ("cuda" if torch.cuda.is_available() else "cpu"), device
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a torch device: {exc}") from exc
    if kind == "cuda" and not torch.cuda.is_available():
        warnings.warn(
            f"The model was saved with device={device!r} but CUDA is not available: "
            "it is loaded on the CPU and its device parameter is set to 'cpu'.",
            DeviceWarning,
            stacklevel=3,
        )
        return "cpu", "cpu"
    return device, device


def _check_fitted_layout(fitted, head, path):
    missing = [name for name in _REQUIRED_FITTED if name not in fitted]
    if missing:
        raise ValueError(f"{path} is corrupted: fitted attributes {missing} are missing.")
    n_labels = fitted["n_labels_"]
    if not isinstance(n_labels, int) or n_labels < 1 or head.get("n_labels") != n_labels:
        raise ValueError(f"{path} is corrupted: inconsistent number of labels.")
    for name in ("pu_labels_", "proba_shift_", "n_positives_"):
        value = fitted[name]
        if not isinstance(value, np.ndarray) or value.shape != (n_labels,):
            raise ValueError(f"{path} is corrupted: {name} is not an array of {n_labels} values.")
    fitted["pu_labels_"] = fitted["pu_labels_"].astype(bool)


def _restore_optimizer(net, path, info):
    names = [name for name, _ in net.get_all_learnable_params()]
    if info.get("param_names") != names:
        raise ValueError(
            f"{path}: the saved optimizer state does not match the module's parameters."
        )
    tensors = load_file(str(path / info.get("file", OPTIMIZER_FILE)), device="cpu")
    scalars = {k: _decode(v, "optimizer state") for k, v in info.get("scalars", {}).items()}
    state = {}
    for key, value in [*tensors.items(), *scalars.items()]:
        index, _, name = key.partition(".")
        state.setdefault(int(index), {})[name] = value
    groups = _decode(info["param_groups"], "optimizer param_groups")
    try:
        net.optimizer_.load_state_dict({"state": state, "param_groups": groups})
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise ValueError(f"{path}: the saved optimizer state does not load: {exc}") from exc


def load_pretrained(directory, cls, *, device=None):
    """Load an estimator saved by :func:`save_pretrained`.

    The estimator is built with the saved parameters, except ``model``,
    which becomes the saved directory (its absolute path): the saved
    ``model`` may not exist on this machine, and ``clone(loaded).fit(...)``
    should start from the saved encoder and head rather than from the
    original base encoder, which stays recorded in ``dallmi.json``. The
    network is rebuilt through the estimator's normal model-loading path
    (``AutoModel`` / ``AutoTokenizer`` on the directory, without
    ``trust_remote_code``), the head weights and fitted attributes are
    restored, and the module is placed on the resolved device.

    Parameters
    ----------
    directory : str or os.PathLike
        A directory written by :func:`save_pretrained`.
    cls : type
        The estimator class, :class:`~sklearn_dallmi.DALLMiClassifier` or a
        subclass.
    device : str or None, default=None
        Overrides the saved ``device`` parameter. With None, the saved one
        is used; ``"auto"`` means CUDA when available, else the CPU, and a
        CUDA device on a machine without CUDA falls back to the CPU with a
        :class:`skorch.exceptions.DeviceWarning` (the loaded estimator's
        ``device`` parameter is then ``"cpu"``).

    Returns
    -------
    estimator : cls
        A fitted estimator that predicts what the saved one predicted. If
        the save included the optimizer state, ``partial_fit`` continues
        exactly as the saved estimator would have; otherwise it starts
        from a fresh AdamW state.

    Raises
    ------
    ValueError
        If ``directory`` is not a complete save of a supported format
        version, or its content is inconsistent.

    See Also
    --------
    save_pretrained : The inverse.
    """
    if not isinstance(cls, type) or not hasattr(cls, "_build_net"):
        raise ValueError(f"cls must be DALLMiClassifier or a subclass, got {cls!r}.")
    if not isinstance(directory, (str, os.PathLike)):
        raise ValueError(f"directory must be a str or a path, got {type(directory).__name__}.")
    path = Path(directory).expanduser().absolute()
    manifest = read_manifest(path)
    for required in ("config.json", manifest["head"].get("file", HEAD_FILE)):
        if not (path / required).is_file():
            raise ValueError(f"{str(path)!r} is an incomplete save: {required} is missing.")
    if not ((path / "model.safetensors").is_file()
            or (path / "model.safetensors.index.json").is_file()):
        raise ValueError(f"{str(path)!r} has no model.safetensors: the encoder is missing.")

    params = {name: _decode(v, f"parameter {name}") for name, v in manifest["params"].items()}
    fitted = {name: _decode(v, f"attribute {name}") for name, v in manifest["fitted"].items()}
    _check_fitted_layout(fitted, manifest["head"], path / MANIFEST)
    params["model"] = str(path)
    if device is not None:
        params["device"] = device
    device_, params["device"] = _resolve_device(params.get("device", "auto"))
    try:
        estimator = cls(**params)
    except TypeError as exc:
        raise ValueError(f"{path / MANIFEST}: parameters not accepted by {cls.__name__}: "
                         f"{exc}") from exc
    estimator._validate_params()

    # Building the net draws a random head that is overwritten at once:
    # keep the caller's torch random state untouched.
    with torch.random.fork_rng(devices=[]):
        tokenizer, net = estimator._build_net(str(path), fitted["n_labels_"], 0, device_)
    _load_head_state(net.module_, path / manifest["head"].get("file", HEAD_FILE))
    net.criterion_.set_pu_labels(fitted["pu_labels_"])
    rng_state = manifest.get("net_rng_state")
    if rng_state is not None and hasattr(net, "rng_"):
        try:
            net.rng_.bit_generator.state = _decode(rng_state, "net rng state")
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"{path / MANIFEST}: invalid random state: {exc}") from exc
    if manifest.get("optimizer") is not None:
        _restore_optimizer(net, path, manifest["optimizer"])
    if manifest.get("history"):
        history = _read_json(path / manifest["history"], "History")
        if not isinstance(history, list):
            raise ValueError(f"{path / manifest['history']} is not a training history.")
        net.history = History(history)

    estimator.net_ = net
    estimator.tokenizer_ = tokenizer
    estimator.device_ = device_
    for name, value in fitted.items():
        setattr(estimator, name, value)
    return estimator
