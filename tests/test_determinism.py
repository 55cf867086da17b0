"""Same data and the same integer ``random_state`` on the CPU give the same
probabilities, bit for bit: within one process and across processes. And
``fit`` leaves the global random generators as it found them.
"""

import os
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from sklearn_dallmi import DALLMiClassifier

# The run, as a script: executed in this process and in child processes.
# Training exercises every random draw: head initialisation, dropout,
# label-balanced batches and MixUp (PU labels), over two epochs, then a
# partial_fit.
RUN = textwrap.dedent('''
    import sys

    import numpy as np
    import torch

    from sklearn_dallmi import DALLMiClassifier

    WORDS = "water fire road food help the a of in is on now please all".split()


    def texts(n, seed):
        rng = np.random.default_rng(seed)
        return [" ".join(rng.choice(WORDS, size=rng.integers(3, 8))) for _ in range(n)]


    def labels(t):
        y = np.array([[int("water" in s), int("fire" in s), int("road" in s)] for s in t])
        rng = np.random.default_rng(7)
        hidden = (y == 1) & (rng.random(y.shape) < 0.5)
        y[hidden] = -1
        y[y == 0] = -1  # PU: negatives unknown
        y[0, 2] = 0  # one known negative
        return y


    def run(model_dir, random_state=0):
        train, new = texts(24, 0), texts(10, 1)
        clf = DALLMiClassifier(model=model_dir, max_epochs=2, batch_size=8, max_length=16,
                               mixup_weight=0.3, dropout=0.2, random_state=random_state,
                               device="cpu")
        clf.fit(train, labels(train))
        first = clf.predict_proba(new)
        clf.partial_fit(train[:12], labels(train[:12]))
        return np.vstack([first, clf.predict_proba(new)])


    if __name__ == "__main__":
        torch.set_num_threads(int(sys.argv[3]))
        np.save(sys.argv[2], run(sys.argv[1]))
''')


def _run_in_process(model_dir, random_state=0):
    namespace = {"__name__": "determinism_run"}
    exec(compile(RUN, "<determinism run>", "exec"), namespace)
    return namespace["run"](model_dir, random_state)


@pytest.fixture(scope="module")
def _determinism_model(tiny_model_dir):
    """The tiny random BERT of ``conftest.py``."""
    return tiny_model_dir


@pytest.fixture(scope="module")
def _in_process(_determinism_model):
    return _run_in_process(_determinism_model)


def test_same_seed_same_probabilities_in_one_process(_determinism_model, _in_process):
    # Disturb every global generator in between: it must not matter.
    torch.manual_seed(12345)
    np.random.seed(12345)
    random.seed(12345)
    torch.rand(100)
    again = _run_in_process(_determinism_model)
    assert again.dtype == _in_process.dtype
    assert np.array_equal(again, _in_process)
    assert again.tobytes() == _in_process.tobytes()


def test_another_seed_gives_other_probabilities(_determinism_model, _in_process):
    """The comparison above can fail: the seed does reach the result."""
    other = _run_in_process(_determinism_model, random_state=1)
    assert not np.array_equal(other, _in_process)


def test_same_seed_same_probabilities_across_processes(_determinism_model, _in_process,
                                                      tmp_path):
    outputs = []
    for i, hash_seed in enumerate(["1", "2"]):
        out = tmp_path / f"proba_{i}.npy"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        proc = subprocess.run(
            [sys.executable, "-c", RUN, _determinism_model, str(out),
             str(torch.get_num_threads())],
            capture_output=True, text=True, env=env, timeout=600,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        outputs.append(np.load(out))
    assert np.array_equal(outputs[0], outputs[1])
    assert outputs[0].tobytes() == outputs[1].tobytes()
    # And the same as in this process (same number of torch threads).
    assert np.array_equal(outputs[0], _in_process)


@pytest.mark.parametrize("method", ["fit", "partial_fit", "warm_start"])
def test_fit_leaves_the_global_random_state_alone(_determinism_model, method):
    clf = DALLMiClassifier(model=_determinism_model, max_epochs=1, batch_size=4,
                           max_length=16, dropout=0.3, random_state=0, device="cpu")
    texts = ["need water", "fire here", "road blocked", "water and fire", "thanks", "ok"]
    y = [[1, -1], [-1, 1], [-1, -1], [1, 1], [-1, -1], [0, -1]]
    if method != "fit":
        clf.fit(texts, y)
    torch.manual_seed(2024)
    np.random.seed(2024)
    random.seed(2024)
    torch_state = torch.get_rng_state()
    numpy_state = np.random.get_state()
    python_state = random.getstate()
    if method == "partial_fit":
        clf.partial_fit(texts, y)
    else:
        clf.set_params(warm_start=method == "warm_start").fit(texts, y)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert random.getstate() == python_state
    after = np.random.get_state()
    assert after[0] == numpy_state[0]
    assert np.array_equal(after[1], numpy_state[1]) and after[2:] == numpy_state[2:]
