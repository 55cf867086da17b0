"""The predict_proba memory benchmark runs end to end on a tiny encoder.

Only a few hundred texts here: the 10,000 / 100,000-text figures come from
``python -m sklearn_dallmi.benchmark.memory``, never from the test suite.
"""

import pytest

from sklearn_dallmi.benchmark.memory import measure_predict_memory, synthetic_texts


@pytest.fixture(scope="module")
def _memory_model(tiny_model_dir):
    """The tiny random BERT of ``conftest.py``."""
    return tiny_model_dir


def test_synthetic_texts_are_short_and_reproducible():
    a, b = synthetic_texts(500, seed=3), synthetic_texts(500, seed=3)
    assert a == b and len(a) == 500
    assert a != synthetic_texts(500, seed=4)
    lengths = [len(t.split()) for t in a]
    assert min(lengths) >= 4 and max(lengths) <= 12


def test_measure_predict_memory_in_a_child_process(_memory_model):
    n, n_labels = 300, 3
    r = measure_predict_memory(n, model=_memory_model, n_labels=n_labels, max_length=16,
                               batch_size=8, timeout=300)
    # What the child process measured, read back: the size it scored, memory
    # with torch and transformers loaded, a peak at least that, a duration.
    assert r["n_texts"] == n and r["n_labels"] == n_labels
    assert r["model"] == _memory_model and r["layers"] is None
    assert r["rss_before_mib"] > 50
    assert r["peak_rss_mib"] >= r["rss_before_mib"] - 1
    assert r["seconds"] > 0


def test_child_failure_is_reported(tmp_path):
    with pytest.raises(RuntimeError, match=r"memory measurement for 10 texts failed"):
        measure_predict_memory(10, model=str(tmp_path / "missing"), timeout=300)
