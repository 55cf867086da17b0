"""The real embedded encoder (all-MiniLM-L6-v2), shortened to 2 of its 6
layers so that a fit stays within seconds on 2 CPU cores."""

import numpy as np
import pytest

from sklearn_dallmi import DALLMiClassifier
from sklearn_dallmi.metrics import macro_average_precision
from sklearn_dallmi.models import default_model_path


@pytest.mark.slow
def test_real_encoder_two_layers_learns_from_partial_labels(tmp_path, keyword_task_factory):
    from transformers import AutoModel, AutoTokenizer

    src = default_model_path()
    encoder = AutoModel.from_pretrained(src)
    assert encoder.config.num_hidden_layers == 6
    encoder.encoder.layer = encoder.encoder.layer[:2]
    encoder.config.num_hidden_layers = 2
    encoder.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(src).save_pretrained(tmp_path)

    train = keyword_task_factory(100, seed=0)
    test = keyword_task_factory(60, seed=1)
    clf = DALLMiClassifier(model=str(tmp_path), max_length=32, max_epochs=2, batch_size=16,
                           lr=1e-4, random_state=0)
    clf.fit(train.texts, train.Y_partial)

    module = clf.net_.module_
    assert len(module.encoder.encoder.layer) == 2
    assert module.encoder.config.hidden_size == 384  # MiniLM's real weights
    proba = clf.predict_proba(test.texts)
    assert proba.shape == (60, 3) and np.all((proba >= 0) & (proba <= 1))
    chance = test.Y_true.mean()  # the AP of a random ranking, about 0.35
    assert chance < 0.45
    assert macro_average_precision(test.Y_true, proba) > 0.6
