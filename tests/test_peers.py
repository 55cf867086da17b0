"""The benchmark's peers (sklearn_dallmi.benchmark.peers) on a tiny encoder.

Every adapter runs on a few dozen synthetic texts with the tiny random BERT
of ``conftest.py``, in seconds; these tests pin the contract (shapes,
ranges, how ``-1`` is read, labels that cannot be learned), not quality.
"""

import sys

import numpy as np
import pytest
import sklearn

from sklearn_dallmi.benchmark import peers
from sklearn_dallmi.benchmark.peers import DEFAULTS, PEERS, frozen_embeddings, run_peer

EMBEDDING_PEERS = ("embeddings_logreg_source", "embeddings_logreg", "pu_embeddings",
                   "da_embeddings")
FAST = {"setfit": dict(max_steps=2, batch_size=4)}


@pytest.fixture(scope="module")
def cell(keyword_task_factory):
    """A small benchmark cell; label 2 ("road") has no source positive."""
    src = keyword_task_factory(50, seed=10)
    tgt = keyword_task_factory(40, seed=11, keep=0.5)
    test = keyword_task_factory(20, seed=12)
    Y_src = src.Y_true.copy()
    Y_src[:, 2] = 0
    return dict(X_src=src.texts, Y_src=Y_src, X_tgt=tgt.texts, Y_part=tgt.Y_partial,
                X_test=test.texts)


def _run(name, cell, model_dir, **params):
    return run_peer(name, **cell, seed=0, model_dir=model_dir, **{**FAST.get(name, {}), **params})


def test_peer_names_match_defaults():
    assert set(PEERS) == set(DEFAULTS)


def test_frozen_embeddings_shape_unit_norm_and_order(tiny_model_dir):
    texts = ["water", "fire on the road near the river and the old bridge", "a b c",
             "road closed", "the water is rising fast in the north of the town today"]
    E = frozen_embeddings(texts, model_dir=tiny_model_dir, batch_size=2)
    assert E.shape == (5, 32) and E.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, atol=1e-5)
    # Rows follow the input order whatever the length-sorted batching.
    np.testing.assert_allclose(frozen_embeddings(texts[::-1], model_dir=tiny_model_dir), E[::-1],
                               atol=1e-5)
    one_by_one = np.vstack([frozen_embeddings([t], model_dir=tiny_model_dir) for t in texts])
    np.testing.assert_allclose(one_by_one, E, atol=1e-5)
    assert frozen_embeddings([], model_dir=tiny_model_dir).shape == (0, 32)


def test_frozen_embeddings_match_sentence_transformers(tiny_model_dir):
    from sentence_transformers import SentenceTransformer

    texts = ["water everywhere", "fire", "the road to the north is closed"]
    reference = SentenceTransformer(tiny_model_dir, device="cpu").encode(
        texts, normalize_embeddings=True)
    np.testing.assert_allclose(frozen_embeddings(texts, model_dir=tiny_model_dir), reference,
                               atol=1e-5)


def test_frozen_embeddings_cache(tiny_model_dir, tmp_path, monkeypatch):
    texts = ["water", "fire"]
    E = frozen_embeddings(texts, model_dir=tiny_model_dir, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npy"))) == 1

    def no_encoder(*args):
        raise AssertionError("the cache should have answered")

    monkeypatch.setattr(peers, "_load", no_encoder)
    np.testing.assert_array_equal(
        frozen_embeddings(texts, model_dir=tiny_model_dir, cache_dir=tmp_path), E)
    with pytest.raises(AssertionError, match="cache"):
        frozen_embeddings(["road"], model_dir=tiny_model_dir, cache_dir=tmp_path)


@pytest.mark.parametrize("name", PEERS)
def test_peer_output_contract(name, cell, tiny_model_dir):
    proba, pred = _run(name, cell, tiny_model_dir)
    assert proba.shape == pred.shape == (20, 3)
    assert np.isfinite(proba).all() and (proba >= 0).all() and (proba <= 1).all()
    assert np.issubdtype(pred.dtype, np.integer) and set(np.unique(pred)) <= {0, 1}
    again = _run(name, cell, tiny_model_dir)
    np.testing.assert_allclose(again[0], proba, atol=1e-6)


def test_setfit_in_bf16_runs_under_autocast(cell, tiny_model_dir, monkeypatch):
    import torch
    from transformers import BertModel

    seen = []
    forward = BertModel.forward

    def spy(module, *args, **kwargs):
        seen.append(torch.is_autocast_enabled("cpu"))
        return forward(module, *args, **kwargs)

    monkeypatch.setattr(BertModel, "forward", spy)
    proba, pred = _run("setfit", cell, tiny_model_dir, precision="bf16")
    assert seen and all(seen)
    assert proba.shape == pred.shape == (20, 3) and np.isfinite(proba).all()
    seen.clear()
    _run("setfit", cell, tiny_model_dir)  # float32 by default
    assert seen and not any(seen)


@pytest.mark.parametrize("name", PEERS)
def test_label_without_positive_gets_zero(name, cell, tiny_model_dir):
    # Label 2 has no positive in the source; its target column is all -1:
    # reading -1 as a positive would make it learnable.
    Y_part = cell["Y_part"].copy()
    Y_part[:, 2] = -1
    proba, pred = _run(name, {**cell, "Y_part": Y_part}, tiny_model_dir)
    assert (proba[:, 2] == 0).all() and (pred[:, 2] == 0).all()
    assert proba[:, :2].any()


def test_target_positives_teach_a_label_the_source_lacks(cell, tiny_model_dir):
    for name in ("embeddings_logreg", "pu_embeddings"):
        assert _run(name, cell, tiny_model_dir)[0][:, 2].any()
    for name in ("embeddings_logreg_source", "da_embeddings"):
        assert not _run(name, cell, tiny_model_dir)[0][:, 2].any()


@pytest.mark.parametrize("name", ["embeddings_logreg", "pu_embeddings"])
def test_unknown_read_as_negative_or_unlabelled(name, cell, tiny_model_dir):
    # -1 and 0 are both "not an observed positive" for these peers.
    as_zero = {**cell, "Y_part": np.maximum(cell["Y_part"], 0)}
    np.testing.assert_allclose(_run(name, as_zero, tiny_model_dir)[0],
                               _run(name, cell, tiny_model_dir)[0])


@pytest.mark.parametrize("name", ["embeddings_logreg_source", "da_embeddings"])
def test_peers_that_ignore_target_labels(name, cell, tiny_model_dir):
    unlabelled = {**cell, "Y_part": -np.ones_like(cell["Y_part"])}
    np.testing.assert_allclose(_run(name, unlabelled, tiny_model_dir)[0],
                               _run(name, cell, tiny_model_dir)[0])


@pytest.mark.parametrize("source_rows", ["all", "positives", "none"])
@pytest.mark.parametrize("kind", ["elkanoto", "bagging"])
def test_pu_settings_and_decisions(kind, source_rows, cell, tiny_model_dir):
    proba, pred = _run("pu_embeddings", cell, tiny_model_dir, kind=kind,
                       source_rows=source_rows)
    assert (proba >= 0).all() and (proba <= 1).all()
    # Each tool's own predict: a positive score above one half.
    np.testing.assert_array_equal(pred[proba != 0.5], (proba > 0.5)[proba != 0.5])


def test_elkanoto_rescaling_is_increasing_and_keeps_decisions():
    class Fitted:
        c = 0.25  # so that g(x) / c ranges over [0, 4]

        def predict_proba(self, raw):
            return np.column_stack([1 - raw, raw])

    raw = np.array([0.0, 0.2, 0.5, 0.6, 1.0, 2.0, 4.0])
    scaled = peers._elkanoto_proba(Fitted(), raw)
    assert np.all(np.diff(scaled) > 0)
    np.testing.assert_allclose(scaled[[0, 1, 2, -1]], [0.0, 0.2, 0.5, 1.0])
    np.testing.assert_array_equal(scaled > 0.5, raw > 0.5)


def test_skada_leaves_metadata_routing_off(cell, tiny_model_dir):
    with sklearn.config_context(enable_metadata_routing=False):
        _run("da_embeddings", cell, tiny_model_dir, adapter="discriminator", reg=1.0)
        assert not sklearn.get_config()["enable_metadata_routing"]


@pytest.mark.parametrize("adapter,reg", [("coral", 0.5), ("density", 1.0), ("subspace", 4)])
def test_da_adapters(adapter, reg, cell, tiny_model_dir):
    proba, _ = _run("da_embeddings", cell, tiny_model_dir, adapter=adapter, reg=reg)
    assert proba.shape == (20, 3) and np.isfinite(proba).all()


def test_bad_names_and_settings(cell, tiny_model_dir):
    with pytest.raises(ValueError, match="Unknown peer"):
        _run("nope", cell, tiny_model_dir)
    with pytest.raises(ValueError, match="Unknown settings"):
        _run("embeddings_logreg", cell, tiny_model_dir, gamma=1.0)
    with pytest.raises(ValueError, match="kind"):
        _run("pu_embeddings", cell, tiny_model_dir, kind="nnpu")


@pytest.mark.parametrize("name,package", [("pu_embeddings", "pulearn"),
                                          ("da_embeddings", "skada"), ("setfit", "setfit")])
def test_missing_package_says_how_to_install(name, package, cell, tiny_model_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, package, None)
    with pytest.raises(ImportError, match=package) as info:
        _run(name, cell, tiny_model_dir)
    assert 'pip install -e ".[benchmark]"' in str(info.value)


def test_peers_fit_with_one_blas_thread_and_restore_it(cell, tiny_model_dir, monkeypatch):
    # NumPy's BLAS threads beside torch's OpenMP ones made the embedding
    # peers several times slower: their regressions run on one BLAS thread.
    import threadpoolctl

    if not any(p["user_api"] == "blas" for p in threadpoolctl.threadpool_info()):
        pytest.skip("NumPy's BLAS is not one threadpoolctl controls")
    seen = []
    fit = peers.LogisticRegression.fit

    def recording_fit(self, *args, **kwargs):
        seen.append({p["num_threads"] for p in threadpoolctl.threadpool_info()
                     if p["user_api"] == "blas"})
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(peers.LogisticRegression, "fit", recording_fit)
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        _run("pu_embeddings", cell, tiny_model_dir, n_estimators=2)
        after = {p["num_threads"] for p in threadpoolctl.threadpool_info()
                 if p["user_api"] == "blas"}
    assert seen and all(threads == {1} for threads in seen)
    assert after == {2}
