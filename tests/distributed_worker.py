"""One process of the data-parallel test (run by tests/test_distributed.py).

Started by hand with RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT set (it
then joins a gloo process group itself, as a torchrun script would), or by
``accelerate launch``. Fits DALLMiClassifier on the keyword task, which
trains through Accelerate because the process belongs to a multi-process
launch, and writes what the test compares to ``<out>/rank<RANK>.npz``.
"""

import os
import pickle
import sys

import numpy as np
import torch
import torch.distributed as dist

sys.path.insert(0, os.path.dirname(__file__))

from conftest import make_keyword_task  # noqa: E402
from skorch.callbacks import Callback  # noqa: E402

from sklearn_dallmi import DALLMiClassifier  # noqa: E402
from sklearn_dallmi.module import EncoderClassifier  # noqa: E402


class RecordRows(Callback):
    """Records the token rows of every training batch this process takes."""

    def __init__(self):
        self.rows = []

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training:
            self.rows += [" ".join(map(str, r.tolist())) for r in batch[0]["input_ids"]]


def main(model_dir, out, batch_size):
    torch.set_num_threads(1)
    if "ACCELERATE_MIXED_PRECISION" not in os.environ:  # started by hand
        dist.init_process_group("gloo")
    rank = int(os.environ["RANK"])
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
    # random_state=None: every process must still take its share of one
    # sequence of batches (Accelerate synchronises the sampler's generator).
    record = RecordRows()
    unseeded = DALLMiClassifier(**{**common, "random_state": None}, batch_size=batch_size,
                                max_epochs=1, positive_fraction=0.0, callbacks=[record])
    unseeded.fit(train.texts, train.Y_partial)

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
        plain_optimizer=type(pu.net_.optimizer_) is torch.optim.AdamW,
        unseeded_rows=np.array(record.rows),
        unseeded=unseeded.predict_proba(test.texts),
        mismatch_error=mismatch_error,
    )
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
