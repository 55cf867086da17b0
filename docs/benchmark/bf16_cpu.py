"""Time one training step of the embedded encoder in float32 and under bfloat16 autocast.

A step is the forward and backward pass of the six-layer MiniLM on 32 texts
of 64 tokens, the benchmark's batch, on one thread; the two precisions
alternate, after one warm-up step each, and the script prints each step's
seconds, the medians and their ratio, with the CPU's bfloat16 units as
torch sees them. Used for the command line's choice of float32 where
bfloat16 is emulated (results page, "Command, machine, configuration")::

    python docs/benchmark/bf16_cpu.py
"""

import statistics
import time

import torch

from sklearn_dallmi.benchmark.adaptation import cpu_has_bf16_units
from sklearn_dallmi.models import default_model_path, load_encoder


def _step(encoder, ids, bf16):
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        states = encoder(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
    states.float().mean().backward()
    return time.perf_counter() - start


def main(repeats=5):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    encoder = load_encoder(default_model_path())
    ids = torch.randint(1000, 20000, (32, 64))
    seconds = {"float32": [], "bf16": []}
    for repeat in range(repeats + 1):
        for name in seconds:
            took = _step(encoder, ids, bf16=name == "bf16")
            if repeat:
                seconds[name].append(took)
    print(f"bfloat16 units (AMX or AVX512-BF16): {cpu_has_bf16_units()}")
    for name, values in seconds.items():
        print(f"{name:8} " + " ".join(f"{v:.2f}" for v in values)
              + f"  median {statistics.median(values):.2f} s")
    ratio = statistics.median(seconds["bf16"]) / statistics.median(seconds["float32"])
    print(f"bf16 / float32: {ratio:.1f}")


if __name__ == "__main__":
    main()
