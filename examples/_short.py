"""Short mode of the examples, for the test suite (not an example itself).

With ``DALLMI_EXAMPLES_SHORT=1`` in the environment every example shrinks
its data to a few dozen texts, trains one epoch at ``max_length=32`` and
uses the embedded encoder cut down to its first layer
(:func:`short_encoder`), so that the whole gallery runs in about a minute
on two CPU cores. The figures are then drawn
with matplotlib's non-interactive ``Agg`` backend. Without the variable the
examples run as written, on the full embedded encoder.

sphinx-gallery skips this file: ``ignore_pattern`` in ``docs/conf.py``
leaves out files whose name starts with an underscore.
"""

import atexit
import os
import shutil
import tempfile

SHORT = os.environ.get("DALLMI_EXAMPLES_SHORT") == "1"

if SHORT:
    import matplotlib

    matplotlib.use("Agg")


def short_encoder():
    """Directory of the embedded encoder keeping only its first layer.

    The directory is temporary and removed when the interpreter exits.

    Returns
    -------
    path : str
        A Hugging Face encoder directory, to pass as ``model=``.
    """
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging

    from sklearn_dallmi.models import default_model_path

    logging.disable_progress_bar()
    source = default_model_path()
    encoder = AutoModel.from_pretrained(source)
    encoder.encoder.layer = encoder.encoder.layer[:1]
    encoder.config.num_hidden_layers = 1
    path = tempfile.mkdtemp(prefix="dallmi-short-encoder-")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    encoder.save_pretrained(path)
    AutoTokenizer.from_pretrained(source).save_pretrained(path)
    return path

