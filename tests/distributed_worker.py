"""One process of the data-parallel test (run by tests/test_distributed.py).

Reads RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT from the environment,
joins a gloo process group, fits DALLMiClassifier on the keyword task and
writes what the test compares to ``<out>/rank<RANK>.npz``.
"""

import os
import pickle
import sys

import numpy as np
import torch
import torch.distributed as dist

sys.path.insert(0, os.path.dirname(__file__))

from conftest import make_keyword_task  # noqa: E402

from sklearn_dallmi import DALLMiClassifier  # noqa: E402
from sklearn_dallmi.module import EncoderClassifier  # noqa: E402


def main(model_dir, out, batch_size):
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    train, test = make_keyword_task(64, seed=0), make_keyword_task(40, seed=1)
    common = dict(model=model_dir, max_length=24, lr=1e-3, device="cpu", random_state=0)

    # Supervised, no dropout, no label-balanced rows: the exact comparison.
    sup = DALLMiClassifier(batch_size=batch_size, max_epochs=2, dropout=0.0,
                           positive_fraction=0.0, **common)
    sup.fit(train.texts, train.Y_true)
    # DALLMi on partial labels: variational loss, MixUp, balanced rows.
    pu = DALLMiClassifier(batch_size=batch_size, max_epochs=2, **common)
    pu.fit(train.texts, train.Y_partial)
    pu.save_pretrained(os.path.join(out, f"model_rank{rank}"))
    # random_state=None: every process must still draw the same batches.
    unseeded = DALLMiClassifier(**{**common, "random_state": None, "max_epochs": 0})
    unseeded.fit(train.texts[:8], train.Y_partial[:8])

    # Different data on the two processes: a clear error on both, no hang.
    try:
        DALLMiClassifier(**common).fit(train.texts[:16 + 8 * rank], train.Y_partial[:16 + 8 * rank])
        mismatch_error = ""
    except ValueError as exc:
        mismatch_error = str(exc)

    restored = pickle.loads(pickle.dumps(pu))
    np.savez(
        os.path.join(out, f"rank{rank}.npz"),
        sup=sup.predict_proba(test.texts),
        pu=pu.predict_proba(test.texts),
        pu_restored=restored.predict_proba(test.texts),
        n_steps=len(sup.history_[-1, "batches"]),
        plain_module=type(pu.net_.module_) is EncoderClassifier,
        seed=unseeded.net_.seed,
        mismatch_error=mismatch_error,
    )
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
