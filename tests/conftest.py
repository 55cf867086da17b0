"""Shared fixtures: a tiny random BERT encoder on disk and a synthetic task.

The tiny encoder reuses the default tokenizer, so ``DALLMiClassifier(model=
tiny_model_dir)`` goes through the real ``AutoModel.from_pretrained(dir)`` /
``AutoTokenizer.from_pretrained(dir)`` path, in milliseconds.
"""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

import sklearn_dallmi.models

FILLER = (
    "the a of and to in is it that was for on are with as his they be at one "
    "have this from or had by but some what there we can out other were all "
    "your when up use word how said an each she which do their time if will "
    "way about many then them would write like so these her long make thing "
    "see him two has look more day could go come did my sound no most number "
    "who over know than call first people may down side been now find"
).split()

KEYWORDS = ("water", "fire", "road")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """Directory holding a tiny random BERT encoder and the default tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(sklearn_dallmi.models.default_model_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = BertModel(config)
    path = tmp_path_factory.mktemp("tiny_bert")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def make_keyword_task(n, seed, keywords=KEYWORDS, keyword_prob=0.35, keep=0.5):
    """Texts of filler words; label ``l`` is true when ``keywords[l]`` appears.

    Returns a namespace with ``texts``, ``Y_true`` (0/1) and ``Y_partial``: a
    share ``keep`` of each label's positives stays ``1`` (at least one), every
    other entry (hidden positives and all negatives) becomes ``-1``.
    """
    rng = np.random.default_rng(seed)
    n_labels = len(keywords)
    Y_true = (rng.random((n, n_labels)) < keyword_prob).astype(int)
    texts = []
    for i in range(n):
        words = list(rng.choice(FILLER, size=rng.integers(4, 9)))
        for label in np.flatnonzero(Y_true[i]):
            words.insert(int(rng.integers(0, len(words) + 1)), keywords[label])
        texts.append(" ".join(words))
    Y_partial = np.full_like(Y_true, -1)
    for label in range(n_labels):
        pos = np.flatnonzero(Y_true[:, label])
        n_keep = max(1, int(round(keep * pos.size))) if pos.size else 0
        Y_partial[rng.choice(pos, size=n_keep, replace=False), label] = 1
    return SimpleNamespace(texts=texts, Y_true=Y_true, Y_partial=Y_partial)


@pytest.fixture(scope="session")
def keyword_task():
    """A train and a test split of the synthetic keyword task (3 labels)."""
    train = make_keyword_task(300, seed=0)
    test = make_keyword_task(100, seed=1)
    return SimpleNamespace(train=train, test=test)


@pytest.fixture(scope="session")
def keyword_task_factory():
    """``make_keyword_task(n, seed, keywords=..., keyword_prob=..., keep=...)``."""
    return make_keyword_task
