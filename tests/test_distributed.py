"""Data-parallel training: two CPU processes with the gloo backend."""

import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

from conftest import make_keyword_task
from sklearn_dallmi import DALLMiClassifier

WORKER = os.path.join(os.path.dirname(__file__), "distributed_worker.py")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def no_dropout_model_dir(tiny_model_dir, tmp_path_factory):
    """The tiny encoder with its dropout switched off (deterministic forward)."""
    path = tmp_path_factory.mktemp("tiny_bert_no_dropout")
    shutil.copytree(tiny_model_dir, path, dirs_exist_ok=True)
    config = json.loads((path / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (path / "config.json").write_text(json.dumps(config))
    return str(path)


@pytest.fixture(scope="module")
def two_ranks(no_dropout_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()),
           "WORLD_SIZE": "2", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen([sys.executable, WORKER, no_dropout_model_dir, str(out), "8"],
                         env={**env, "RANK": str(rank)},
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for rank in range(2)
    ]
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=120)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log[-3000:]
    return out, [dict(np.load(out / f"rank{r}.npz")) for r in range(2)]


@pytest.mark.distributed
def test_two_processes_match_one_process_with_the_doubled_batch(two_ranks, no_dropout_model_dir):
    out, ranks = two_ranks
    train, test = make_keyword_task(64, seed=0), make_keyword_task(40, seed=1)
    single = DALLMiClassifier(
        no_dropout_model_dir, max_length=24, lr=1e-3, device="cpu", random_state=0,
        batch_size=16, max_epochs=2, dropout=0.0, positive_fraction=0.0,
    ).fit(train.texts, train.Y_true)
    reference = single.predict_proba(test.texts)
    untrained = DALLMiClassifier(
        no_dropout_model_dir, max_length=24, device="cpu", random_state=0, max_epochs=0,
        dropout=0.0,
    ).fit(train.texts, train.Y_true).predict_proba(test.texts)
    # Each process stepped through half of the batches of the doubled batch.
    assert int(ranks[0]["n_steps"]) == len(single.history_[-1, "batches"]) == 4
    # With all labels known, no label-balanced rows and no dropout, rank r's
    # batch i is the r-th half of the single run's batch i (same seeded
    # permutation), and the loss is a mean over entries: the averaged
    # gradient of the two halves is the gradient of the whole batch. Only
    # float32 summation order (per-half sums, gloo's reduction) differs, so
    # after 8 AdamW steps the probabilities agree to ~5e-8 (measured); 1e-4 leaves room
    # for other BLAS builds while staying far below what training moved
    # them (checked below).
    np.testing.assert_allclose(ranks[0]["sup"], reference, atol=1e-4)
    assert np.abs(reference - untrained).max() > 100 * 1e-4
    # Gradients averaged: every process holds the same weights, bit for bit.
    np.testing.assert_array_equal(ranks[0]["sup"], ranks[1]["sup"])


@pytest.mark.distributed
def test_distributed_dallmi_fit_is_a_plain_fitted_estimator(two_ranks):
    out, ranks = two_ranks
    np.testing.assert_array_equal(ranks[0]["pu"], ranks[1]["pu"])
    for r in ranks:
        # Unwrapped after training: the single-process kind of objects.
        assert bool(r["plain_module"]) and bool(r["plain_optimizer"])
        np.testing.assert_array_equal(r["pu_restored"], r["pu"])  # pickles
    for r in ranks:
        assert "every process must fit the same data" in str(r["mismatch_error"])
        assert "between 16 and 24 texts" in str(r["mismatch_error"])
    # random_state=None: the two processes took disjoint halves of one
    # sequence of batches (every text once in the epoch), and hold one model.
    rows = [list(r["unseeded_rows"]) for r in ranks]
    assert len(rows[0]) == len(rows[1]) == 32
    assert sorted(rows[0] + rows[1]) == sorted(set(rows[0] + rows[1]))
    np.testing.assert_array_equal(ranks[0]["unseeded"], ranks[1]["unseeded"])
    # Only rank 0 wrote its save; the save loads and predicts the same.
    assert (out / "model_rank0").is_dir() and not (out / "model_rank1").exists()
    loaded = DALLMiClassifier.from_pretrained(out / "model_rank0")
    test = make_keyword_task(40, seed=1)
    np.testing.assert_allclose(loaded.predict_proba(test.texts), ranks[0]["pu"], atol=1e-6)


@pytest.mark.distributed
def test_accelerate_launch_runs_the_same_data_parallel_fit(two_ranks, no_dropout_model_dir,
                                                           tmp_path):
    # `accelerate launch` starts the processes through torch's launcher,
    # which sets the variables the fit's process group reads: the worker is
    # unchanged and must reach the probabilities of the hand-launched run.
    pytest.importorskip("accelerate")
    _, manual = two_ranks
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
               "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
               "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
               WORKER, no_dropout_model_dir, str(tmp_path), "8"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    done = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:]
    launched = [dict(np.load(tmp_path / f"rank{r}.npz")) for r in range(2)]
    np.testing.assert_array_equal(launched[0]["sup"], launched[1]["sup"])
    np.testing.assert_allclose(launched[0]["sup"], manual[0]["sup"], atol=1e-6)
    np.testing.assert_allclose(launched[0]["pu"], manual[0]["pu"], atol=1e-6)
    assert (tmp_path / "model_rank0").is_dir() and not (tmp_path / "model_rank1").exists()
