"""The embedded encoder and what a checkpoint says about its pooling."""

import json

import pytest

from sklearn_dallmi import DALLMiClassifier
from sklearn_dallmi.models import checkpoint_pooling, default_model_path, write_checkpoint_pooling


def test_embedded_minilm_pools_by_mean_and_normalizes():
    assert checkpoint_pooling(default_model_path()) == ("mean", True)


def test_plain_checkpoint_and_broken_files_mean_without_normalization(tiny_model_dir, tmp_path):
    assert checkpoint_pooling(tiny_model_dir) == ("mean", False)
    assert checkpoint_pooling("no-such-hub/name") == ("mean", False)
    (tmp_path / "modules.json").write_text("not json")
    assert checkpoint_pooling(tmp_path) == ("mean", False)


@pytest.mark.parametrize("pooling,normalize", [("cls", False), ("mean", True), ("cls", True)])
def test_written_pooling_files_read_back(tmp_path, pooling, normalize):
    write_checkpoint_pooling(str(tmp_path), pooling, normalize, hidden_size=32)
    assert checkpoint_pooling(tmp_path) == (pooling, normalize)
    config = json.loads((tmp_path / "1_Pooling" / "config.json").read_text())
    assert config["word_embedding_dimension"] == 32


def test_auto_pooling_follows_the_checkpoint_and_survives_a_save(tiny_model_dir, tmp_path,
                                                                 keyword_task):
    tr = keyword_task.train
    params = dict(max_epochs=0, max_length=16, random_state=0)
    plain = DALLMiClassifier(model=tiny_model_dir, **params).fit(tr.texts[:8], tr.Y_partial[:8])
    module = plain.net_.module_
    assert (module.pooling, module.normalize) == ("mean", False)
    cls = DALLMiClassifier(model=tiny_model_dir, pooling="cls", **params)
    cls.fit(tr.texts[:8], tr.Y_partial[:8])
    path = cls.save_pretrained(tmp_path / "saved")
    assert checkpoint_pooling(path) == ("cls", False)
    again = DALLMiClassifier(model=path, **params).fit(tr.texts[:8], tr.Y_partial[:8])
    assert again.net_.module_.pooling == "cls"
