"""GridSearchCV over DALLMi parameters on a local Dask cluster of two processes."""

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, KFold

from sklearn_dallmi import DALLMiClassifier

distributed = pytest.importorskip("distributed")


@pytest.mark.distributed
def test_grid_search_on_a_dask_cluster_matches_the_serial_search(
        tiny_model_dir, keyword_task, tmp_path):
    import joblib
    from distributed import Client, LocalCluster, get_task_stream

    tr = keyword_task.train
    X, Y = tr.texts[:48], tr.Y_partial[:48]

    def search():
        return GridSearchCV(
            DALLMiClassifier(model=tiny_model_dir, max_epochs=1, batch_size=8, max_length=24,
                             lr=1e-3, device="cpu", random_state=0),
            param_grid={"mixup_weight": [0.0, 0.3]},
            cv=KFold(n_splits=2, shuffle=True, random_state=0),
            error_score="raise",
        )

    serial = search().fit(X, Y)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, local_directory=str(tmp_path / "dask"),
                      ) as cluster, Client(cluster) as client:
        with get_task_stream(client) as tasks, joblib.parallel_backend("dask"):
            on_dask = search().set_params(n_jobs=-1).fit(X, Y)
        workers = {task["worker"] for task in tasks.data}
    # 2 candidates x 2 folds ran as tasks on the cluster's worker processes.
    assert len(tasks.data) >= 4 and len(workers) >= 1
    # Same seeds, one CPU thread per fit: the same scores as the serial search.
    np.testing.assert_allclose(on_dask.cv_results_["mean_test_score"],
                               serial.cv_results_["mean_test_score"], rtol=1e-6)
    assert on_dask.best_params_ == serial.best_params_
    assert on_dask.predict_proba(tr.texts[:4]).shape == (4, 3)
